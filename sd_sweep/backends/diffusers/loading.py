"""Loading what a diffusers folder does not bring: single-file checkpoints, VAEs and LoRAs, offline.

A single ``.safetensors``/``.ckpt`` checkpoint holds weights only; diffusers needs the configs of its
components too. ``infer_configs`` reads them off the tensors' names and shapes (block widths, layers
per block, transformer depths, context and text encoder widths, VAE widths), so a checkpoint of any
size loads, not only the base sizes of SD 1.5, 2.1 and SDXL. What tensors cannot tell (attention head
counts, GroupNorm groups, the VAE's scaling factor) takes each family's fixed value, unless a sibling
``.yaml`` (the WebUI's convention for a checkpoint's config) says otherwise: the ldm/sgm keys
``model.params.scale_factor``, ``model.params.parameterization`` and ``unet_config.params.num_heads``
/ ``num_head_channels``, and, for architectures no ldm key describes, a top-level ``diffusers``
mapping of component name to config entries. ``single_file_options`` writes the configs, with a
tokenizer, into the sd-sweep cache. Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sd_sweep.backends.diffusers.families import SD1, SD2, SDXL, tensor_shapes
from sd_sweep.backends.diffusers.tiny_model import (
    _bytes_to_unicode,
    _tokenizer_files,
    default_model_dir,
    quiet_hf_output,
)
from sd_sweep.core.errors import BackendError

Shapes = dict[str, tuple[int, ...]]
CONFIG_VERSION = 2
CLIP_VOCAB_SIZE = 49408
"""Rows of the token embedding of every real SD text encoder (the CLIP BPE vocabulary)."""
CLIP_BPE = "bpe_simple_vocab_16e6.txt.gz"
"""OpenAI's CLIP byte-pair vocabulary, as the ``clip`` package (PyPI: openai-clip) ships it."""
HEAD_WIDTH = 64
"""Channels per attention head in SD 2.x and SDXL UNets and in every CLIP/OpenCLIP text encoder."""
SD1_UNET_HEADS = 8
NORM_GROUPS = 32
SCALING = {SD1: 0.18215, SD2: 0.18215, SDXL: 0.13025}
V_PROBE_THRESHOLD = -1.0
"""The WebUI's threshold for the mean of (UNet output - input) at t=999 above which SD 2.x predicts noise."""

_UNET = "model.diffusion_model."
_CLIP = {SD1: "cond_stage_model.transformer.text_model.", SDXL: "conditioner.embedders.0.transformer.text_model."}
_OPEN_CLIP = {SD2: "cond_stage_model.model.", SDXL: "conditioner.embedders.1.model."}
_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}


def _indices(shapes: Shapes, prefix: str) -> list[int]:
    """The distinct integers right after ``prefix`` in the tensor names (block or layer numbers)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in shapes if (m := pattern.match(k))})


def _shape(shapes: Shapes, key: str, source: Path) -> tuple[int, ...]:
    try:
        return shapes[key]
    except KeyError:
        msg = f"{source}: tensor {key} is missing, so the checkpoint's architecture cannot be read"
        raise BackendError(msg) from None


def _heads(width: int, fixed: int | None, head_width: int | None, what: str, source: Path) -> int:
    if fixed:
        return fixed
    size = head_width or HEAD_WIDTH
    if width % size:
        msg = (
            f"{source}: the {what} width {width} is not a multiple of {size} channels per attention head; "
            "a .yaml beside the checkpoint must give its head count"
        )
        raise BackendError(msg)
    return width // size


def unet_config(shapes: Shapes, family: str, source: Path, yaml: dict[str, Any]) -> dict[str, Any]:
    """The ``UNet2DConditionModel`` config of the ldm/sgm UNet tensors (``model.diffusion_model.*``)."""
    params = _dig(yaml, "model", "params", "unet_config", "params")
    conv_in = _shape(shapes, f"{_UNET}input_blocks.0.0.weight", source)
    blocks = _indices(shapes, f"{_UNET}input_blocks.")
    downsamplers = sum(f"{_UNET}input_blocks.{i}.0.op.weight" in shapes for i in blocks)
    levels = downsamplers + 1
    per_level = (len(blocks) - 1 - downsamplers) // levels
    if per_level < 1 or len(blocks) != 1 + levels * per_level + downsamplers:
        msg = f"{source}: its UNet's {len(blocks)} input blocks do not make a Stable Diffusion UNet"
        raise BackendError(msg)
    widths, attention, depths = [], [], []
    cross_dim, linear = 0, False
    for level in range(levels):
        first = f"{_UNET}input_blocks.{1 + level * (per_level + 1)}."
        widths.append(_shape(shapes, f"{first}0.out_layers.3.weight", source)[0])
        depth = len(_indices(shapes, f"{first}1.transformer_blocks."))
        attention.append(depth > 0)
        depths.append(max(depth, 1))
        if depth and not cross_dim:
            cross_dim = _shape(shapes, f"{first}1.transformer_blocks.0.attn2.to_k.weight", source)[1]
            linear = len(_shape(shapes, f"{first}1.proj_in.weight", source)) == 2
    if not cross_dim:
        msg = f"{source}: its UNet has no cross-attention blocks"
        raise BackendError(msg)
    num_heads = int(params.get("num_heads", -1) or -1)
    head_width = int(params.get("num_head_channels", -1) or -1)
    if num_heads < 1 and head_width < 1 and family == SD1:
        num_heads = SD1_UNET_HEADS
    heads = _dig(yaml, "diffusers", "unet").get("attention_head_dim") or [
        _heads(w, num_heads if num_heads > 0 else None, head_width if head_width > 0 else None, "UNet", source)
        for w in widths
    ]
    if isinstance(heads, list) and len(set(heads)) == 1:
        heads = heads[0]
    config: dict[str, Any] = {
        "_class_name": "UNet2DConditionModel",
        "sample_size": {SD1: 64, SD2: 96, SDXL: 128}[family],
        "in_channels": conv_in[1],
        "out_channels": _shape(shapes, f"{_UNET}out.2.weight", source)[0],
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
        "block_out_channels": widths,
        "layers_per_block": per_level,
        "transformer_layers_per_block": depths,
        "cross_attention_dim": cross_dim,
        "attention_head_dim": heads,
        "use_linear_projection": linear,
        "norm_num_groups": NORM_GROUPS,
    }
    embedding = shapes.get(f"{_UNET}label_emb.0.0.weight")
    if family == SDXL and embedding is not None:
        pooled = _shape(shapes, f"{_OPEN_CLIP[SDXL]}text_projection", source)[1]
        config.update(
            addition_embed_type="text_time",
            addition_time_embed_dim=(embedding[1] - pooled) // 6,
            projection_class_embeddings_input_dim=embedding[1],
        )
    return config


def vae_prefix(shapes: Shapes) -> str:
    """Where the VAE's tensors are: ``first_stage_model.`` in a checkpoint, nothing in a VAE file."""
    for prefix in ("first_stage_model.", "vae.", ""):
        if f"{prefix}encoder.conv_in.weight" in shapes:
            return prefix
    return "first_stage_model."


def vae_config(shapes: Shapes, family: str, source: Path, yaml: dict[str, Any]) -> dict[str, Any]:
    """The ``AutoencoderKL`` config of ldm VAE tensors (``encoder.down.N.block.M``, ``decoder.up.N``)."""
    prefix = vae_prefix(shapes)
    levels = _indices(shapes, f"{prefix}encoder.down.")
    if not levels:
        msg = f"{source}: no VAE encoder tensors ({prefix}encoder.down.*) in it"
        raise BackendError(msg)
    widths = [_shape(shapes, f"{prefix}encoder.down.{i}.block.0.conv2.weight", source)[0] for i in levels]
    scale = _dig(yaml, "model", "params").get("scale_factor", SCALING[family])
    return {
        "_class_name": "AutoencoderKL",
        "in_channels": _shape(shapes, f"{prefix}encoder.conv_in.weight", source)[1],
        "out_channels": _shape(shapes, f"{prefix}decoder.conv_out.weight", source)[0],
        "down_block_types": ["DownEncoderBlock2D"] * len(widths),
        "up_block_types": ["UpDecoderBlock2D"] * len(widths),
        "block_out_channels": widths,
        "layers_per_block": len(_indices(shapes, f"{prefix}encoder.down.0.block.")),
        "latent_channels": _shape(shapes, f"{prefix}decoder.conv_in.weight", source)[1],
        "norm_num_groups": NORM_GROUPS,
        "sample_size": {SD1: 512, SD2: 768, SDXL: 1024}[family],
        "scaling_factor": float(scale),
        **({"force_upcast": True} if family == SDXL else {}),
    }


def _text_config(
    *, vocab: int, width: int, positions: int, layers: int, intermediate: int, open_clip: bool, projection: int
) -> dict[str, Any]:
    return {
        "architectures": ["CLIPTextModel"],
        "vocab_size": vocab,
        "hidden_size": width,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": 0,
        "max_position_embeddings": positions,
        "projection_dim": projection,
        "hidden_act": "gelu" if open_clip else "quick_gelu",
        "model_type": "clip_text_model",
    }


def clip_config(shapes: Shapes, prefix: str, source: Path) -> dict[str, Any]:
    """An OpenAI CLIP text encoder stored in the transformers layout (SD 1.x, SDXL's first)."""
    vocab, width = _shape(shapes, f"{prefix}embeddings.token_embedding.weight", source)
    return _text_config(
        vocab=vocab,
        width=width,
        positions=_shape(shapes, f"{prefix}embeddings.position_embedding.weight", source)[0],
        layers=len(_indices(shapes, f"{prefix}encoder.layers.")),
        intermediate=_shape(shapes, f"{prefix}encoder.layers.0.mlp.fc1.weight", source)[0],
        open_clip=False,
        projection=width,
    )


def open_clip_config(shapes: Shapes, prefix: str, source: Path, *, skip_last: bool) -> dict[str, Any]:
    """An OpenCLIP text encoder (SD 2.x, SDXL's second). SD 2.x conditions on the penultimate layer
    (``skip_last``), so its diffusers encoder has one layer fewer than the checkpoint."""
    vocab, width = _shape(shapes, f"{prefix}token_embedding.weight", source)
    layers = len(_indices(shapes, f"{prefix}transformer.resblocks."))
    return _text_config(
        vocab=vocab,
        width=width,
        positions=_shape(shapes, f"{prefix}positional_embedding", source)[0],
        layers=layers - 1 if skip_last else layers,
        intermediate=_shape(shapes, f"{prefix}transformer.resblocks.0.mlp.c_fc.weight", source)[0],
        open_clip=True,
        projection=shapes.get(f"{prefix}text_projection", (width, width))[-1],
    )


def infer_configs(shapes: Shapes, family: str, source: Path, yaml: dict[str, Any] | None = None) -> dict[str, Any]:
    """The diffusers component configs of a single-file checkpoint of ``family`` (no tokenizers).

    ``yaml``: the checkpoint's sibling config, if any (see the module's docstring).
    """
    yaml = yaml or {}
    configs: dict[str, Any] = {
        "unet": unet_config(shapes, family, source, yaml),
        "vae": vae_config(shapes, family, source, yaml),
    }
    if family == SD1:
        configs["text_encoder"] = clip_config(shapes, _CLIP[SD1], source)
    elif family == SD2:
        configs["text_encoder"] = open_clip_config(shapes, _OPEN_CLIP[SD2], source, skip_last=True)
    else:
        configs["text_encoder"] = clip_config(shapes, _CLIP[SDXL], source)
        second = open_clip_config(shapes, _OPEN_CLIP[SDXL], source, skip_last=False)
        configs["text_encoder_2"] = {**second, "architectures": ["CLIPTextModelWithProjection"]}
    overrides = yaml.get("diffusers") or {}
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        msg = f"{source}: the 'diffusers' entry of its .yaml must map component names to config entries"
        raise BackendError(msg)
    for name in [n for n in configs if n.startswith("text_encoder")]:
        config = configs[name]
        fixed = overrides.get(name, {}).get("num_attention_heads")
        config["num_attention_heads"] = _heads(config["hidden_size"], fixed, None, "text encoder", source)
    if family == SDXL:
        configs["scheduler"] = {
            **{k: v for k, v in _SCHEDULER.items() if k not in ("skip_prk_steps", "set_alpha_to_one")},
            "_class_name": "EulerDiscreteScheduler",
            "timestep_spacing": "leading",
        }
    else:
        configs["scheduler"] = dict(_SCHEDULER)
    if yaml_v_prediction(yaml) is True:
        configs["scheduler"]["prediction_type"] = "v_prediction"
    for name, entries in overrides.items():
        if name in configs:
            configs[name].update(entries)
    return configs


def _dig(data: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def sibling_yaml(source: Path) -> dict[str, Any]:
    """The checkpoint's ``NAME.yaml`` beside it, parsed; ``{}`` when there is none."""
    path = source.with_suffix(".yaml")
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        msg = f"could not read {path}: {type(exc).__name__}: {exc}"
        raise BackendError(msg) from None
    return data if isinstance(data, dict) else {}


def yaml_v_prediction(yaml: dict[str, Any]) -> bool | None:
    """What a sibling ldm config says: True for ``parameterization: v``, False for any other, None
    without one (no ``model`` section), as the WebUI takes a config beside the checkpoint before guessing."""
    if not isinstance(yaml.get("model"), dict):
        return None
    return _dig(yaml, "model", "params").get("parameterization") == "v"


def _built_once(target: Path, marker: str, build: Callable[[Path], None]) -> Path:
    """``target``, built by ``build`` into a temporary sibling and renamed into place unless its
    ``marker`` file is there already (two processes building at once both end with one good copy)."""
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(building)
        try:
            building.rename(target)
        except OSError:
            if not (target / marker).is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def config_dir(configs: dict[str, Any], family: str, *, root: Path | None = None) -> tuple[Path, bool]:
    """A diffusers config folder (no weights) for ``configs``, with tokenizers; built once per configs.

    Returns the folder and whether its tokenizer has the real CLIP vocabulary.
    """
    vocab = int(configs.get("text_encoder", {}).get("vocab_size", CLIP_VOCAB_SIZE))
    real = vocab == CLIP_VOCAB_SIZE and clip_vocabulary() is not None
    key = json.dumps([CONFIG_VERSION, family, real, configs], sort_keys=True)
    name = f"{family}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    target = (root or default_model_dir().parent / "single-file-configs") / name
    return _built_once(target, "model_index.json", lambda folder: _write_configs(folder, configs, family, real)), real


def _write_configs(building: Path, configs: dict[str, Any], family: str, real: bool) -> None:
    pipeline = "StableDiffusionXLPipeline" if family == SDXL else "StableDiffusionPipeline"
    index: dict[str, Any] = {"_class_name": pipeline, "_diffusers_version": "0.32.2"}
    tokens: dict[str, int] = {}
    if "text_encoder" in configs:
        vocab = int(configs["text_encoder"]["vocab_size"])
        tokenizers = ["tokenizer", "tokenizer_2"] if family == SDXL else ["tokenizer"]
        for tokenizer in tokenizers:
            open_clip = family == SD2 or tokenizer == "tokenizer_2"
            tokens = _write_tokenizer(building / tokenizer, pad="!" if open_clip else "<|endoftext|>", real=real)
            index[tokenizer] = ["transformers", "CLIPTokenizer"]
        if max(tokens.values()) >= vocab:
            msg = f"no tokenizer for a text encoder of {vocab} tokens: only real (CLIP) vocabularies are known"
            raise BackendError(msg)
    for component, entries in configs.items():
        config = dict(entries)
        if component.startswith("text_encoder"):
            pad = tokens["!"] if component == "text_encoder_2" or family == SD2 else tokens["<|endoftext|>"]
            config.update(bos_token_id=tokens["<|startoftext|>"], eos_token_id=tokens["<|endoftext|>"])
            config["pad_token_id"] = pad
        folder = building / component
        folder.mkdir()
        (folder / ("scheduler_config.json" if component == "scheduler" else "config.json")).write_text(
            json.dumps(config, indent=1), encoding="utf-8"
        )
        library = "transformers" if component.startswith("text_encoder") else "diffusers"
        index[component] = [library, config.get("_class_name") or config["architectures"][0]]
    if family != SDXL:
        index.update(safety_checker=[None, None], feature_extractor=[None, None], requires_safety_checker=False)
    (building / "model_index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")


def _write_tokenizer(folder: Path, *, pad: str, real: bool) -> dict[str, int]:
    """Write a CLIP tokenizer: the real vocabulary when ``real``, else the locally built small one."""
    folder.mkdir(parents=True, exist_ok=True)
    if real:
        found = clip_vocabulary()
        assert found is not None
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(found / name, folder / name)
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    else:
        vocab, _ = _tokenizer_files(folder)
    config = {"model_max_length": 77, "pad_token": pad, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>"}
    config["unk_token"] = "<|endoftext|>"
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return vocab


def clip_vocabulary(root: Path | None = None) -> Path | None:
    """A folder with the CLIP tokenizer's ``vocab.json`` and ``merges.txt``: the Hugging Face cache's,
    else one built (once, into ``root`` or the sd-sweep cache) from the BPE file of the ``clip``
    package (openai-clip); None when neither is on this machine."""
    return _cached_clip_tokenizer() or _packaged_clip_tokenizer(root)


def _packaged_clip_tokenizer(root: Path | None = None) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec("clip")
    except (ImportError, ValueError):
        return None
    found = [Path(p) / CLIP_BPE for p in (spec.submodule_search_locations or [])] if spec else []
    bpe = next((f for f in found if f.is_file()), None)
    if bpe is None:
        return None
    target = (root or default_model_dir().parent) / f"clip-tokenizer-{CONFIG_VERSION}"
    return _built_once(target, "merges.txt", lambda folder: clip_tokenizer_files(bpe, folder))


def clip_tokenizer_files(bpe: Path, folder: Path) -> None:
    """Write transformers' CLIP ``vocab.json`` and ``merges.txt`` from OpenAI's BPE file.

    The file is a header line, then merges; CLIP uses the first 48,894. Its vocabulary is the 256
    byte symbols, the same with the end-of-word mark, one token per merge, then the start and end tokens.
    """
    lines = gzip.decompress(bpe.read_bytes()).decode("utf-8").split("\n")
    merges = [line.split() for line in lines[1 : 1 + CLIP_VOCAB_SIZE - 2 * 256 - 2]]
    symbols = list(_bytes_to_unicode().values())
    tokens = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    if len(tokens) != CLIP_VOCAB_SIZE or any(len(m) != 2 for m in merges):
        msg = f"{bpe} is not the CLIP byte-pair vocabulary"
        raise BackendError(msg)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    text = "\n".join(["#version: 0.2", *(" ".join(m) for m in merges)]) + "\n"
    (folder / "merges.txt").write_text(text, encoding="utf-8")


def _cached_clip_tokenizer() -> Path | None:
    """The CLIP tokenizer files of openai/clip-vit-large-patch14 in the Hugging Face cache, if present."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = [try_to_load_from_cache("openai/clip-vit-large-patch14", name) for name in ("vocab.json", "merges.txt")]
    if all(isinstance(f, str) for f in found):
        return Path(str(found[0])).parent
    return None


def v_probe(unet: Any) -> float:
    """The WebUI's test of SD 2.x v-prediction: the mean of (output - input) of the UNet at t=999 on
    a constant 0.5 latent and a constant 0.5 two-token context. A v-prediction model predicts about
    minus the clean image there, a noise-predicting one about its input."""
    import torch

    param = next(unet.parameters())
    x = torch.full((1, unet.config.in_channels, 8, 8), 0.5, device=param.device, dtype=param.dtype)
    context = torch.full((1, 2, unet.config.cross_attention_dim), 0.5, device=param.device, dtype=param.dtype)
    with torch.inference_mode():
        out = unet(x, torch.tensor([999], device=param.device), encoder_hidden_states=context).sample
    return float((out.float() - x.float()).mean())


def _probe_file(source: Path, folder: Path) -> bool:
    from diffusers import UNet2DConditionModel

    try:
        with quiet_hf_output():
            unet = UNet2DConditionModel.from_single_file(
                str(source), config=str(folder), subfolder="unet", local_files_only=True
            )
    except Exception as exc:
        msg = f"could not load the UNet of {source}: {type(exc).__name__}: {exc}"
        raise BackendError(msg) from exc
    return v_probe(unet) < V_PROBE_THRESHOLD


def single_file_configs(source: Path, family: str) -> tuple[Path, bool]:
    """The config folder of checkpoint ``source``; SD 2.x's prediction type from its sibling ``.yaml``,
    else by the WebUI's probe of the UNet (``v_probe``). Returns the folder and whether the tokenizer
    is the real CLIP one."""
    yaml = sibling_yaml(source)
    configs = infer_configs(tensor_shapes(source), family, source, yaml)
    folder, real = config_dir(configs, family)
    if family == SD2 and yaml_v_prediction(yaml) is None and _probe_file(source, folder):
        configs["scheduler"]["prediction_type"] = "v_prediction"
        folder, real = config_dir(configs, family)
    return folder, real


def single_file_options(source: Path, family: str) -> dict[str, Any]:
    """``from_single_file`` keyword arguments that make it load ``source`` with local configs only."""
    folder, real = single_file_configs(source, family)
    vocab = json.loads((folder / "text_encoder" / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    if not real and vocab == CLIP_VOCAB_SIZE:
        warnings.warn(
            f"{source.name}: no CLIP vocabulary here (neither the openai-clip package nor "
            "openai/clip-vit-large-patch14 in the Hugging Face cache), so a locally built tokenizer is used "
            "and prompts will not mean what they mean to this model; pip install openai-clip==1.0.1",
            stacklevel=2,
        )
    options: dict[str, Any] = {"config": str(folder)}
    if family == SDXL:
        widths = [
            json.loads((folder / name / "config.json").read_text(encoding="utf-8"))["hidden_size"]
            for name in ("text_encoder", "text_encoder_2")
        ]
        if widths[0] == widths[1]:
            options["text_encoder_2"] = _second_sdxl_encoder(source, folder)
    return options


def _second_sdxl_encoder(source: Path, folder: Path) -> Any:
    """SDXL's OpenCLIP encoder, converted from its tensors alone (in float32).

    diffusers tells SDXL's two text encoders apart by their widths; when they are equal (small test
    models; real ones are 768 and 1280 wide) it would fill the second with the first one's weights.
    """
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm, load_single_file_checkpoint
    from transformers import CLIPTextModelWithProjection

    prefix = _OPEN_CLIP[SDXL]
    with quiet_hf_output():
        state = {k: v for k, v in load_single_file_checkpoint(str(source)).items() if k.startswith(prefix)}
        return create_diffusers_clip_model_from_ldm(
            CLIPTextModelWithProjection, state, config=str(folder), subfolder="text_encoder_2", local_files_only=True
        )


def load_vae(path: Path, family: str, *, dtype: Any, device: str) -> Any:
    """An ``AutoencoderKL`` from a diffusers VAE folder or a single VAE file (its config read off its tensors)."""
    from diffusers import AutoencoderKL

    try:
        with quiet_hf_output():
            if path.is_dir():
                vae = AutoencoderKL.from_pretrained(path, torch_dtype=dtype, local_files_only=True)
            else:
                config = vae_config(tensor_shapes(path), family, path, sibling_yaml(path))
                config.update((sibling_yaml(path).get("diffusers") or {}).get("vae") or {})
                folder, _ = config_dir({"vae": config}, family)
                vae = AutoencoderKL.from_single_file(
                    str(path), config=str(folder), subfolder="vae", torch_dtype=dtype, local_files_only=True
                )
    except BackendError:
        raise
    except Exception as exc:
        msg = f"could not load VAE {path}: {type(exc).__name__}: {exc}"
        raise BackendError(msg) from exc
    return vae.to(device)


def load_lora(pipe: Any, path: Path, index: int) -> str:
    """Load the LoRA file into the pipeline as adapter ``lora<index>`` (kohya or diffusers format)."""
    from diffusers.utils import USE_PEFT_BACKEND

    if not USE_PEFT_BACKEND:
        msg = f"applying LoRA {path.name} needs peft installed (pip install 'peft>=0.13,<0.14')"
        raise BackendError(msg)
    adapter = f"lora{index}"
    try:
        with quiet_hf_output():
            pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter)
    except Exception as exc:
        msg = f"could not load LoRA {path}: {type(exc).__name__}: {exc}"
        raise BackendError(msg) from exc
    return adapter


__all__ = [
    "config_dir",
    "infer_configs",
    "load_lora",
    "load_vae",
    "sibling_yaml",
    "single_file_configs",
    "single_file_options",
    "v_probe",
]
