"""The embedded backend on SD 1.x, SD 2.x and SDXL architectures: families, chunked weighted prompts,
checkpoint / VAE / LoRA axes. Tiny random models built locally (CPU, 64x64, 2 steps)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sd_sweep.backends.diffusers import tiny_model
from sd_sweep.backends.diffusers.catalog import DiffusersCatalog
from sd_sweep.backends.diffusers.families import detect_family
from sd_sweep.core.errors import BackendError
from sd_sweep.core.ports import GenerationRequest

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sd_sweep.backends.diffusers.backend import DiffusersBackend  # noqa: E402
from sd_sweep.backends.diffusers.conditioning import EncoderSpec, chunk_prompt, encode_prompts  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:__array:DeprecationWarning")]
PARAMS: dict[str, Any] = {"steps": 2, "sampler_name": "Euler", "width": 64, "height": 64, "cfg_scale": 7.0}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
