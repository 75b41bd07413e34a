"""The embedded backend on SD 1.x, SD 2.x and SDXL architectures: families, chunked weighted prompts,
checkpoint / VAE / LoRA axes, single-file checkpoints (.safetensors and .ckpt in the original key
layout, written by ``ldm_checkpoint`` from the folders) giving their folder's images, their configs read
off the tensors at full size too, SD 2.x v-prediction as the WebUI tells it. Tiny random models built
locally (CPU, 64x64, 2 steps)."""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sd_sweep import cli
from sd_sweep.backends.diffusers import tiny_model
from sd_sweep.backends.diffusers.catalog import DiffusersCatalog
from sd_sweep.backends.diffusers.families import detect_family
from sd_sweep.core.errors import BackendError
from sd_sweep.core.ports import GenerationRequest
from tests import ldm_checkpoint

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sd_sweep.backends.diffusers import loading  # noqa: E402
from sd_sweep.backends.diffusers.backend import DiffusersBackend  # noqa: E402
from sd_sweep.backends.diffusers.conditioning import EncoderSpec, chunk_prompt, encode_prompts  # noqa: E402
from sd_sweep.backends.diffusers.loading import infer_configs  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:__array:DeprecationWarning")]
PARAMS: dict[str, Any] = {"steps": 2, "sampler_name": "Euler", "width": 64, "height": 64, "cfg_scale": 7.0}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Config folders of single files go to a cache of this module's own."""
    saved = os.environ.get(tiny_model.CACHE_ENV)
    os.environ[tiny_model.CACHE_ENV] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        del os.environ[tiny_model.CACHE_ENV]
    else:
        os.environ[tiny_model.CACHE_ENV] = saved


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --models folder with a tiny model of each family."""
    root = tmp_path_factory.mktemp("models")
    for family in ("sd1", "sd2", "sdxl"):
        tiny_model.build_tiny_family_dir(root / f"tiny-{family}", family)
    return root


@pytest.fixture(scope="module")
def vaes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diffusers import AutoencoderKL

    root = tmp_path_factory.mktemp("vaes")
    torch.manual_seed(5)
    vae = AutoencoderKL(**tiny_model._configs("tiny")["vae"])
    tiny_model._perturb_norms(vae)
    vae.save_pretrained(root / "other-vae")
    return root


@pytest.fixture(scope="module")
def loras(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Path:
    """A LoRA of the tiny SD 1.x UNet's attention projections, in the diffusers (peft) format."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    root = tmp_path_factory.mktemp("loras")
    unet = UNet2DConditionModel.from_pretrained(models / "tiny-sd1" / "unet")
    torch.manual_seed(9)
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    )
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    StableDiffusionPipeline.save_lora_weights(
        root, unet_lora_layers=get_peft_model_state_dict(unet), weight_name="ink.safetensors"
    )
    return root


def request(prompts: list[str], negatives: list[str] | None = None, **params: Any) -> GenerationRequest:
    return GenerationRequest(
        params={**PARAMS, **params},
        prompts=prompts,
        negative_prompts=negatives or [""] * len(prompts),
        seeds=list(range(1, len(prompts) + 1)),
        cell_ids=[f"c{i}" for i in range(len(prompts))],
    )


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def write_safetensors(path: Path, keys: list[str]) -> Path:
    header = {k: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i, k in enumerate(keys)}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4 * len(keys))
    return path


UNET = "model.diffusion_model.input_blocks.0.0.weight"


@pytest.mark.parametrize(
    ("keys", "family"),
    [
        ([UNET, "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"], "sd1"),
        ([UNET, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"], "sd2"),
        (
            [
                UNET,
                "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight",
                "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias",
            ],
            "sdxl",
        ),
    ],
)
def test_single_file_family_from_its_tensor_names(tmp_path: Path, keys: list[str], family: str) -> None:
    assert detect_family(write_safetensors(tmp_path / "m.safetensors", keys)) == family


def test_a_file_of_no_family_is_named(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "upscaler.safetensors", ["first_stage_model.encoder.conv_in.weight"])
    with pytest.raises(BackendError, match=r"upscaler\.safetensors is not an SD 1\.x, SD 2\.x or SDXL checkpoint"):
        detect_family(path)
    refiner = write_safetensors(tmp_path / "ref.safetensors", [UNET, "conditioner.embedders.0.model.text_projection"])
    with pytest.raises(BackendError, match=r"ref\.safetensors is an SDXL refiner"):
        detect_family(refiner)


def test_folder_families(models: Path) -> None:
    assert [detect_family(models / f"tiny-{f}") for f in ("sd1", "sd2", "sdxl")] == ["sd1", "sd2", "sdxl"]


def test_the_catalog_lists_the_folders_without_loading(models: Path, vaes: Path, loras: Path) -> None:
    caps = DiffusersCatalog(models_dir=models, vae_dir=vaes, lora_dir=loras, installed=False).capabilities()
    assert caps.choices["checkpoint"] == ("tiny-sd1", "tiny-sd2", "tiny-sdxl")
    assert caps.choices["vae"] == ("Automatic", "None", "other-vae")
    assert caps.supports("checkpoint")
    assert caps.supports("vae")
    assert caps.supports("lora:ink")
    assert not DiffusersCatalog(installed=False).capabilities().supports("lora:ink")
    with pytest.raises(BackendError, match="--models .*nowhere: no such folder"):
        DiffusersCatalog(models_dir=models / "nowhere")


def test_long_prompts_are_chunked_to_154_tokens(models: Path) -> None:
    backend = DiffusersBackend(models / "tiny-sd1", device="cpu")
    pipe = backend._load()
    words = " ".join(["cat"] * 100)
    chunks = chunk_prompt(pipe.tokenizer, words)
    assert [len(c.tokens) for c in chunks] == [77, 77]
    assert chunks[0].tokens[0] == pipe.tokenizer.bos_token_id
    assert chunks[0].tokens[76] == pipe.tokenizer.eos_token_id
    assert len(chunk_prompt(pipe.tokenizer, "a cat BREAK a dog")) == 2
    spec = [EncoderSpec(pipe.tokenizer, pipe.text_encoder)]
    with torch.inference_mode():
        cond, _ = encode_prompts(spec, [words, "a cat"], 1, "cpu", torch.float32)
    assert tuple(cond.shape) == (2, 154, 32)
    call = backend._conditioning(pipe, request([words], ["blurry"]), 1)
    assert call["prompt_embeds"].shape[1] == call["negative_prompt_embeds"].shape[1] == 154
    assert len(backend.generate(request([words]))) == 1


def test_the_comma_moves_the_chunk_boundary(models: Path) -> None:
    backend = DiffusersBackend(models / "tiny-sd1", device="cpu")
    tokenizer = backend._load().tokenizer
    cat = tokenizer("cat", add_special_tokens=False).input_ids
    assert len(cat) == 1
    chunks = chunk_prompt(tokenizer, " ".join(["cat"] * 70) + ", " + " ".join(["cat"] * 10))
    assert chunks[0].tokens[1:73].count(cat[0]) == 70
    assert chunks[0].tokens[72] != cat[0]
    assert chunks[1].tokens[1:11] == tuple(cat * 10)


def test_weights_scale_tokens_and_keep_the_mean(models: Path) -> None:
    backend = DiffusersBackend(models / "tiny-sd1", device="cpu")
    pipe = backend._load()
    spec = [EncoderSpec(pipe.tokenizer, pipe.text_encoder)]
    with torch.inference_mode():
        plain, _ = encode_prompts(spec, ["a cat"], 1, "cpu", torch.float32)
        weighted, _ = encode_prompts(spec, ["a (cat:1.5)"], 1, "cpu", torch.float32)
    n_a = len(pipe.tokenizer("a ", add_special_tokens=False).input_ids)
    cat = slice(1 + n_a, 1 + n_a + len(pipe.tokenizer("cat", add_special_tokens=False).input_ids))
    expected = plain.clone()
    expected[:, cat] *= 1.5
    expected *= plain.mean() / expected.mean()
    assert torch.allclose(weighted, expected, atol=1e-5)
    assert float(weighted.mean()) == pytest.approx(float(plain.mean()), abs=1e-6)


@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_sd2_and_sdxl_generate(models: Path, family: str) -> None:
    backend = DiffusersBackend(models / f"tiny-{family}", device="cpu")
    plain = backend.generate(request(["a cat", "a dog"], ["", ""]))
    assert backend.family == family
    assert [i.image.size for i in plain] == [(64, 64)] * 2
    weighted = backend.generate(request(["(a cat:1.6)", "a dog"], ["", ""]))
    assert np.abs(pixels(plain[0].image) - pixels(weighted[0].image)).mean() > 0.5
    assert np.array_equal(pixels(plain[1].image), pixels(weighted[1].image))
    backend.close()


def test_checkpoint_axis_loads_each_checkpoint_once(models: Path) -> None:
    backend = DiffusersBackend(models_dir=models, device="cpu")
    names = []
    for checkpoint in ("tiny-sd1", "tiny-sd1", "tiny-sdxl", "tiny-sdxl"):
        image = backend.generate(request(["a cat"], checkpoint=checkpoint))[0]
        names.append((backend.family, "Model: " + checkpoint in image.infotext))
    assert names == [("sd1", True), ("sd1", True), ("sdxl", True), ("sdxl", True)]
    assert backend.loads == 2
    with pytest.raises(BackendError, match="unknown checkpoint 'nope'"):
        backend.generate(request(["a cat"], checkpoint="nope"))


def test_vae_axis_swaps_the_decoder(models: Path, vaes: Path) -> None:
    backend = DiffusersBackend(models / "tiny-sd1", vae_dir=vaes, device="cpu")
    auto = pixels(backend.generate(request(["a cat"], vae="Automatic"))[0].image)
    other = pixels(backend.generate(request(["a cat"], vae="other-vae"))[0].image)
    again = pixels(backend.generate(request(["a cat"]))[0].image)
    assert np.abs(auto - other).mean() > 1
    assert np.array_equal(auto, again)


def test_lora_tags_apply_the_lora_at_their_weight(models: Path, loras: Path) -> None:
    backend = DiffusersBackend(models / "tiny-sd1", lora_dir=loras, device="cpu")
    plain = pixels(backend.generate(request(["a cat"]))[0].image)
    full = backend.generate(request(["a cat <lora:ink:1>"]))[0]
    zero = pixels(backend.generate(request(["a cat <lora:ink:0>"]))[0].image)
    after = pixels(backend.generate(request(["a cat"]))[0].image)
    assert np.abs(plain - pixels(full.image)).mean() > 1
    assert np.abs(plain - zero).max() <= 1
    assert np.abs(plain - after).max() <= 1
    assert "<lora:ink:1>" in full.infotext
    with pytest.raises(BackendError, match="unknown LoRA 'missing'"):
        backend.generate(request(["a <lora:missing:1>"]))


# -- single files ---------------------------------------------------------------------------


def images(backend: DiffusersBackend, prompts: list[str]) -> list[np.ndarray]:
    request = GenerationRequest(
        params=PARAMS,
        prompts=prompts,
        negative_prompts=["blurry"] * len(prompts),
        seeds=list(range(3, 3 + len(prompts))),
        cell_ids=[f"c{i}" for i in range(len(prompts))],
    )
    return [np.asarray(i.image.convert("RGB"), dtype=np.int16) for i in backend.generate(request)]


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_a_single_file_gives_the_images_of_its_folder(models: Path, tmp_path: Path, family: str, suffix: str) -> None:
    folder = models / f"tiny-{family}"
    path = ldm_checkpoint.write_checkpoint(folder, tmp_path / f"model{suffix}")
    prompts = ["a red cat", "a dog in the snow"]
    expected = images(DiffusersBackend(folder, device="cpu"), prompts)
    backend = DiffusersBackend(path, device="cpu")
    got = images(backend, prompts)
    assert backend.family == family
    assert "Model: model" in backend.generate(GenerationRequest(PARAMS, ["a"], [""], [1], ["c"]))[0].infotext
    assert [g.shape for g in got] == [(64, 64, 3)] * 2
    assert all(np.abs(g - e).max() <= 2 for g, e in zip(got, expected, strict=True))
    assert np.abs(got[0] - got[1]).mean() > 1


def test_the_command_line_runs_a_single_file(models: Path, tmp_path: Path) -> None:
    path = ldm_checkpoint.write_checkpoint(models / "tiny-sd2", tmp_path / "models" / "tiny.safetensors")
    doc = {"name": "one", "base": {"prompt": "a cat", **PARAMS}, "axes": [{"param": "seed", "values": [1, 2]}]}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["run", str(spec), "--model", str(path), "--device", "cpu", "--out", str(out), "--no-grid"]
    assert cli.main(argv) == 0
    folder_run = tmp_path / "folder"
    argv = ["run", str(spec), "--model", str(models / "tiny-sd2"), "--device", "cpu", "--out", str(folder_run)]
    assert cli.main([*argv, "--no-grid"]) == 0
    from PIL import Image

    def by_seed(run: Path) -> dict[str, np.ndarray]:
        found = {}
        for image in (run / "one" / "images").glob("*.png"):
            with Image.open(image) as opened:
                seed = re.search(r"Seed: (\d+)", str(opened.info.get("parameters")))
                found[seed.group(1) if seed else image.name] = np.asarray(opened.convert("RGB"), dtype=np.int16)
        return found

    made, expected = by_seed(out), by_seed(folder_run)
    assert sorted(made) == sorted(expected) == ["1", "2"]
    assert all(np.abs(made[s] - expected[s]).max() <= 2 for s in made)


def test_bad_files_are_one_line_naming_the_file(models: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(BackendError, match=r"corrupt\.safetensors: not a readable \.safetensors"):
        DiffusersBackend(corrupt, device="cpu")._load()
    pickle = tmp_path / "broken.ckpt"
    pickle.write_bytes(b"not a pickle")
    with pytest.raises(BackendError, match=r"broken\.ckpt: not a readable \.ckpt"):
        DiffusersBackend(pickle, device="cpu")._load()
    path = ldm_checkpoint.write_checkpoint(models / "tiny-sd1", tmp_path / "cut.safetensors")
    from safetensors.torch import load_file, save_file

    state = load_file(path)
    del state["model.diffusion_model.out.2.weight"]
    save_file(state, path)
    with pytest.raises(
        BackendError, match=r"cut\.safetensors: tensor model\.diffusion_model\.out\.2\.weight is missing"
    ):
        DiffusersBackend(path, device="cpu")._load()
    path.with_suffix(".yaml").unlink()
    state["model.diffusion_model.out.2.weight"] = torch.zeros(4, 32, 3, 3)
    save_file(state, path)
    with pytest.raises(BackendError, match=r"cut\.safetensors: the text encoder width 32 is not a multiple of 64"):
        DiffusersBackend(path, device="cpu")._load()


def test_a_single_vae_file_decodes_as_its_folder(vaes: Path, tmp_path: Path) -> None:
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    folder = vaes / "other-vae"
    expected = AutoencoderKL.from_pretrained(folder)
    state = ldm_checkpoint.vae_to_ldm(expected.state_dict(), dict(expected.config))
    path = tmp_path / "other.vae.safetensors"
    save_file({k.removeprefix("first_stage_model."): v.contiguous() for k, v in state.items()}, path)
    groups = {"diffusers": {"vae": {"norm_num_groups": expected.config.norm_num_groups}}}
    path.with_suffix(".yaml").write_text(yaml.safe_dump(groups), encoding="utf-8")
    vae = loading.load_vae(path, "sd1", dtype=torch.float32, device="cpu")
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(vae.decode(latent).sample, expected.decode(latent).sample, atol=1e-5)
    assert vae.config.block_out_channels == expected.config.block_out_channels


def prediction(path: Path) -> str:
    backend = DiffusersBackend(path, device="cpu")
    return str(backend._load().scheduler.config.prediction_type)


def test_sd2_v_prediction_is_what_the_webui_probe_says(models: Path, tmp_path: Path) -> None:
    """Without an ldm config beside it, an SD 2.x file is run once at t=999 on a constant input: v
    when the mean of output minus input is below -1. Random weights give about 0 (noise prediction);
    the same weights with -6 added to the output layer's bias stand for a v model."""
    folder = models / "tiny-sd2"
    eps = ldm_checkpoint.write_checkpoint(folder, tmp_path / "eps.safetensors", ldm_keys=False)
    shift = {"model.diffusion_model.out.2.bias": -6.0}
    v = ldm_checkpoint.write_checkpoint(folder, tmp_path / "v.ckpt", ldm_keys=False, change=shift)
    assert prediction(eps) == "epsilon"
    assert prediction(v) == "v_prediction"
    configured = ldm_checkpoint.write_checkpoint(folder, tmp_path / "configured.safetensors", change=shift)
    assert prediction(configured) == "epsilon"
    config = yaml.safe_load(configured.with_suffix(".yaml").read_text(encoding="utf-8"))
    config["model"]["params"]["parameterization"] = "v"
    eps.with_suffix(".yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert prediction(eps) == "v_prediction"
    sd1 = ldm_checkpoint.write_checkpoint(models / "tiny-sd1", tmp_path / "sd1.safetensors", change=shift)
    assert prediction(sd1) == "epsilon"


def meta_state(make: Callable[[], Any]) -> dict[str, Any]:
    with torch.device("meta"):
        return make().state_dict()


def full_size_shapes(family: str) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of a real-size checkpoint of ``family`` (built on the meta device: no weights)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    sd15 = tiny_model._configs("sd15")
    unet = dict(sd15["unet"])
    clip_l = CLIPTextConfig(**sd15["text_encoder"])
    state: dict[str, Any] = ldm_checkpoint.vae_to_ldm(meta_state(lambda: AutoencoderKL(**sd15["vae"])), sd15["vae"])
    if family == "sd2":
        unet |= {"cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20), "use_linear_projection": True}
        text = CLIPTextConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16)
        prefix = "cond_stage_model.model."
        state |= ldm_checkpoint.open_clip_to_ldm(meta_state(lambda: CLIPTextModel(text)), prefix, extra_layer=True)
    elif family == "sdxl":
        from benchmarks.bench_backend import sdxl_base_configs

        sdxl = sdxl_base_configs()
        unet = sdxl["unet"]
        big_g = CLIPTextConfig(**sdxl["text_encoder_2"])
        state |= ldm_checkpoint.clip_to_ldm(
            meta_state(lambda: CLIPTextModel(clip_l)), "conditioner.embedders.0.transformer."
        )
        second = meta_state(lambda: CLIPTextModelWithProjection(big_g))
        state |= ldm_checkpoint.open_clip_to_ldm(second, "conditioner.embedders.1.model.", extra_layer=False)
    else:
        state |= ldm_checkpoint.clip_to_ldm(meta_state(lambda: CLIPTextModel(clip_l)), "cond_stage_model.transformer.")
    state |= ldm_checkpoint.unet_to_ldm(meta_state(lambda: UNet2DConditionModel(**unet)), unet)
    return {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize(
    ("family", "unet", "text"),
    [
        ("sd1", {"block_out_channels": [320, 640, 1280, 1280], "attention_head_dim": 8}, [(768, 12, 12)]),
        (
            "sd2",
            {"attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024, "use_linear_projection": True},
            [(1024, 23, 16)],
        ),
        (
            "sdxl",
            {"transformer_layers_per_block": [1, 2, 10], "projection_class_embeddings_input_dim": 2816},
            [(768, 12, 12), (1280, 32, 20)],
        ),
    ],
)
def test_real_sizes_are_read_off_the_tensors(family: str, unet: dict[str, Any], text: list[tuple[int, ...]]) -> None:
    configs = infer_configs(full_size_shapes(family), family, Path(f"real-{family}.safetensors"))
    assert {k: configs["unet"][k] for k in unet} == unet
    assert configs["unet"]["layers_per_block"] == 2
    assert configs["unet"]["norm_num_groups"] == 32
    encoders = [configs[n] for n in ("text_encoder", "text_encoder_2") if n in configs]
    assert [(c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]) for c in encoders] == text
    assert configs["vae"]["block_out_channels"] == [128, 256, 512, 512]
    assert configs["vae"]["scaling_factor"] == (0.13025 if family == "sdxl" else 0.18215)
    if family == "sdxl":
        assert configs["unet"]["addition_time_embed_dim"] == 256
        assert configs["text_encoder_2"]["projection_dim"] == 1280


# -- the CLIP vocabulary -------------------------------------------------------------------------

RECORDED_IDS = {
    "a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407],
    "masterpiece, (best quality:1.2), 1girl, looking at viewer": [
        *(49406, 12066, 267, 263, 949, 3027, 281, 272, 269, 273, 2361, 272, 1611, 267, 1312, 536, 15061, 49407)
    ],
}
"""Token ids of openai/clip-vit-large-patch14's own tokenizer."""
PROMPTS = [*RECORDED_IDS, "Ünïcode café naïve 東京", "an astronaut riding a horse on mars, 4k, trending on artstation"]


def clip_tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(folder, model_max_length=77)


def test_the_packaged_clip_vocabulary_gives_the_real_token_ids(tmp_path: Path) -> None:
    folder = loading._packaged_clip_tokenizer(tmp_path)
    assert folder is not None, "the openai-clip package (requirements/embedded.txt) ships the CLIP vocabulary"
    tokenizer = clip_tokenizer(folder)
    assert len(tokenizer) == 49408
    assert {p: tokenizer(p).input_ids for p in RECORDED_IDS} == RECORDED_IDS
    assert loading._packaged_clip_tokenizer(tmp_path) == folder


def test_the_packaged_clip_vocabulary_is_the_hugging_face_one(tmp_path: Path) -> None:
    cached = loading._cached_clip_tokenizer()
    if cached is None:
        pytest.skip("openai/clip-vit-large-patch14 is not in the Hugging Face cache (set HF_HOME)")
    built = loading._packaged_clip_tokenizer(tmp_path)
    assert built is not None
    vocab = [json.loads((f / "vocab.json").read_text(encoding="utf-8")) for f in (cached, built)]
    assert vocab[0] == vocab[1]
    merges = [(f / "merges.txt").read_text(encoding="utf-8").splitlines() for f in (cached, built)]
    assert merges[0] == merges[1]
    real, ours = clip_tokenizer(cached), clip_tokenizer(built)
    assert [real(p).input_ids for p in PROMPTS] == [ours(p).input_ids for p in PROMPTS]
