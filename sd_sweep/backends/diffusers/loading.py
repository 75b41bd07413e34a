"""Loading what a diffusers folder does not bring: single-file checkpoints, VAEs and LoRAs, offline.

A single ``.safetensors``/``.ckpt`` checkpoint holds weights only; diffusers needs the configs of its
components too. ``config_dir`` writes them for each family (SD 1.5, SD 2.1, SDXL base dimensions)
into the sd-sweep cache, with a tokenizer: the CLIP tokenizer files from the Hugging Face cache when
they are there, else the locally built byte-pair tokenizer of ``tiny_model`` (whose token ids do
not match a real model's: a warning says so). Nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from sd_sweep.backends.diffusers.families import SD1, SD2, SDXL
from sd_sweep.backends.diffusers.tiny_model import _tokenizer_files, default_model_dir, quiet_hf_output
from sd_sweep.core.errors import BackendError

CONFIG_VERSION = 1
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
_VAE = {
    "_class_name": "AutoencoderKL",
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
_CLIP_L = {
    "architectures": ["CLIPTextModel"],
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
    "model_type": "clip_text_model",
}
_SD_UNET = {
    "_class_name": "UNet2DConditionModel",
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}


def family_configs(family: str, *, v_prediction: bool = False) -> dict[str, dict[str, Any]]:
    """The diffusers component configs of a real model of ``family`` (SD 1.5, SD 2.1, SDXL base)."""
    if family == SD1:
        return {"unet": _SD_UNET, "vae": _VAE, "text_encoder": _CLIP_L, "scheduler": _SCHEDULER}
    if family == SD2:
        return {
            "unet": {
                **_SD_UNET,
                "sample_size": 96 if v_prediction else 64,
                "cross_attention_dim": 1024,
                "attention_head_dim": [5, 10, 20, 20],
                "use_linear_projection": True,
                "upcast_attention": v_prediction,
            },
            "vae": _VAE,
            "text_encoder": {
                **_CLIP_L,
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_hidden_layers": 23,
                "num_attention_heads": 16,
                "projection_dim": 512,
                "hidden_act": "gelu",
                "pad_token_id": 0,
            },
            "scheduler": {**_SCHEDULER, "prediction_type": "v_prediction" if v_prediction else "epsilon"},
        }
    if family == SDXL:
        return {
            "unet": {
                "_class_name": "UNet2DConditionModel",
                "sample_size": 128,
                "in_channels": 4,
                "out_channels": 4,
                "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                "block_out_channels": [320, 640, 1280],
                "layers_per_block": 2,
                "transformer_layers_per_block": [1, 2, 10],
                "cross_attention_dim": 2048,
                "attention_head_dim": [5, 10, 20],
                "use_linear_projection": True,
                "addition_embed_type": "text_time",
                "addition_time_embed_dim": 256,
                "projection_class_embeddings_input_dim": 2816,
                "norm_num_groups": 32,
            },
            "vae": {**_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
            "text_encoder": _CLIP_L,
            "text_encoder_2": {
                **_CLIP_L,
                "architectures": ["CLIPTextModelWithProjection"],
                "hidden_size": 1280,
                "intermediate_size": 5120,
                "num_hidden_layers": 32,
                "num_attention_heads": 20,
                "projection_dim": 1280,
                "hidden_act": "gelu",
                "pad_token_id": 0,
            },
            "scheduler": {
                **{k: v for k, v in _SCHEDULER.items() if k not in ("skip_prk_steps", "set_alpha_to_one")},
                "_class_name": "EulerDiscreteScheduler",
                "timestep_spacing": "leading",
            },
        }
    msg = f"unknown model family {family!r}"
    raise ValueError(msg)


def _is_v_prediction(source: Path) -> bool:
    """SD 2.x: a sibling ``.yaml`` (the WebUI's convention) decides; else the 768-v models are
    assumed unless the file name says "base" (SD 2.x 512-base models predict noise)."""
    yaml = source.with_suffix(".yaml")
    if yaml.is_file():
        return "parameterization" in (text := yaml.read_text(encoding="utf-8", errors="replace")) and '"v"' in text
    return "base" not in source.stem.lower()


def config_dir(family: str, *, v_prediction: bool = False, root: Path | None = None) -> Path:
    """A diffusers config folder (no weights) for single-file checkpoints of ``family``, built once."""
    name = f"{family}{'-v' if v_prediction else ''}-configs-{CONFIG_VERSION}"
    target = (root or default_model_dir().parent) / name
    if (target / "model_index.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        configs = family_configs(family, v_prediction=v_prediction)
        pipeline = "StableDiffusionXLPipeline" if family == SDXL else "StableDiffusionPipeline"
        index: dict[str, Any] = {"_class_name": pipeline, "_diffusers_version": "0.32.2"}
        for component, config in configs.items():
            folder = building / component
            folder.mkdir()
            (folder / ("scheduler_config.json" if component == "scheduler" else "config.json")).write_text(
                json.dumps(config, indent=1), encoding="utf-8"
            )
            library = "transformers" if component.startswith("text_encoder") else "diffusers"
            cls = config.get("_class_name") or config["architectures"][0]
            index[component] = [library, cls]
        tokenizers = ["tokenizer", "tokenizer_2"] if family == SDXL else ["tokenizer"]
        for tokenizer in tokenizers:
            open_clip = family == SD2 or tokenizer == "tokenizer_2"
            _write_tokenizer(building / tokenizer, pad="!" if open_clip else "<|endoftext|>")
            index[tokenizer] = ["transformers", "CLIPTokenizer"]
        if family != SDXL:
            index.update(safety_checker=[None, None], feature_extractor=[None, None], requires_safety_checker=False)
        (building / "model_index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
        try:
            building.rename(target)
        except OSError:
            if not (target / "model_index.json").is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _write_tokenizer(folder: Path, *, pad: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cached = _cached_clip_tokenizer()
    if cached is not None:
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(cached / name, folder / name)
    else:
        _tokenizer_files(folder)
    config = {"model_max_length": 77, "pad_token": pad, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>"}
    config["unk_token"] = "<|endoftext|>"
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "sd_sweep_tokenizer.json").write_text(json.dumps({"real": cached is not None}), encoding="utf-8")


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


def single_file_options(source: Path, family: str) -> dict[str, Any]:
    """``from_single_file`` keyword arguments that make it load ``source`` with local configs only."""
    folder = config_dir(family, v_prediction=family == SD2 and _is_v_prediction(source))
    marker = folder / "tokenizer" / "sd_sweep_tokenizer.json"
    if marker.is_file() and not json.loads(marker.read_text(encoding="utf-8")).get("real"):
        warnings.warn(
            f"{source.name}: the CLIP tokenizer (openai/clip-vit-large-patch14) is not in the Hugging Face "
            "cache, so a locally built tokenizer is used and prompts will not mean what they mean to this "
            "model; put the tokenizer in the cache, or use a diffusers folder",
            stacklevel=2,
        )
    return {"config": str(folder)}


def load_vae(path: Path, family: str, *, dtype: Any, device: str) -> Any:
    """An ``AutoencoderKL`` from a diffusers VAE folder or a single VAE file."""
    from diffusers import AutoencoderKL

    try:
        with quiet_hf_output():
            if path.is_dir():
                vae = AutoencoderKL.from_pretrained(path, torch_dtype=dtype, local_files_only=True)
            else:
                folder = config_dir(family)
                vae = AutoencoderKL.from_single_file(
                    str(path), config=str(folder), subfolder="vae", torch_dtype=dtype, local_files_only=True
                )
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


__all__ = ["config_dir", "family_configs", "load_lora", "load_vae", "single_file_options"]
