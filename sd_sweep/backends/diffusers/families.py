"""Model families (SD 1.x, SD 2.x, SDXL): telling them apart from a checkpoint, without torch.

A diffusers folder tells its family by its pipeline class and text encoder (SD 2.x's OpenCLIP
encoder uses "gelu", SD 1.x's OpenAI CLIP "quick_gelu"); a single ``.safetensors`` file by the
names of its tensors, read from its header; a ``.ckpt`` (a pickle) needs torch to be read.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path

from sd_sweep.core.errors import BackendError

SD1, SD2, SDXL = "sd1", "sd2", "sdxl"
FAMILIES = (SD1, SD2, SDXL)
TITLES = {SD1: "SD 1.x", SD2: "SD 2.x", SDXL: "SDXL"}


def family_from_keys(keys: Iterable[str], source: Path | str) -> str:
    """The family of an original-format (ldm/sgm) checkpoint from its tensor names.

    Raises ``BackendError`` naming ``source`` when it is none of SD 1.x, 2.x or SDXL base.
    """
    prefixes = {key.split(".resblocks.")[0].split(".text_model.")[0] for key in keys}
    names = set(prefixes)
    has_unet = any(p.startswith("model.diffusion_model.") for p in names)
    if any(p.startswith("conditioner.embedders.1.model.") for p in names) and any(
        p.startswith("conditioner.embedders.0.transformer") for p in names
    ):
        family = SDXL
    elif any(p.startswith("conditioner.embedders.0.model.") for p in names):
        msg = f"{source} is an SDXL refiner checkpoint; only SD 1.x, SD 2.x and SDXL base models are supported"
        raise BackendError(msg)
    elif any(p.startswith("cond_stage_model.model.") for p in names):
        family = SD2
    elif any(p.startswith("cond_stage_model.transformer") for p in names):
        family = SD1
    else:
        family = ""
    if not family or not has_unet:
        msg = (
            f"{source} is not an SD 1.x, SD 2.x or SDXL checkpoint "
            "(no Stable Diffusion UNet and text encoder tensors in it)"
        )
        raise BackendError(msg)
    return family


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of each tensor in a ``.safetensors`` header (no tensor is read)."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        return {k: tuple(int(n) for n in v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (OSError, ValueError, struct.error, TypeError, KeyError, AttributeError) as exc:
        msg = f"could not read {path}: not a readable .safetensors file ({type(exc).__name__}: {exc})"
        raise BackendError(msg) from None


def checkpoint_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of each tensor of a ``.ckpt`` (needs torch; loads it memory-mapped, weights only)."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as exc:
        msg = f"could not read {path}: {type(exc).__name__}: {exc}"
        raise BackendError(msg) from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        return {}
    return {str(k): tuple(v.shape) for k, v in data.items() if isinstance(v, torch.Tensor)}


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of a ``.safetensors`` or ``.ckpt`` file."""
    return safetensors_shapes(path) if path.suffix.lower() == ".safetensors" else checkpoint_shapes(path)


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names in a ``.safetensors`` header (no tensor is read)."""
    return list(safetensors_shapes(path))


def checkpoint_keys(path: Path) -> list[str]:
    """The tensor names of a ``.ckpt`` (needs torch)."""
    return list(checkpoint_shapes(path))


def folder_family(folder: Path) -> str:
    """The family of a diffusers folder, from its ``model_index.json`` and text encoder config."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"could not read {folder / 'model_index.json'}: {exc}"
        raise BackendError(msg) from None
    pipeline = str(index.get("_class_name", ""))
    if pipeline == "StableDiffusionXLPipeline" or "text_encoder_2" in index:
        return SDXL
    if pipeline and pipeline != "StableDiffusionPipeline":
        msg = f"{folder} holds a {pipeline}; only SD 1.x, SD 2.x and SDXL (text to image) models are supported"
        raise BackendError(msg)
    try:
        text = json.loads((folder / "text_encoder" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        text = {}
    return SD2 if text.get("hidden_act") == "gelu" else SD1


def detect_family(source: Path, *, allow_torch: bool = True) -> str:
    """The family of a model folder or checkpoint file; "" for a ``.ckpt`` when torch may not be used."""
    if source.is_dir():
        return folder_family(source)
    if source.suffix.lower() == ".safetensors":
        return family_from_keys(safetensors_keys(source), source)
    if not allow_torch:
        return ""
    return family_from_keys(checkpoint_keys(source), source)


__all__ = [
    "FAMILIES",
    "SD1",
    "SD2",
    "SDXL",
    "TITLES",
    "detect_family",
    "family_from_keys",
    "folder_family",
    "tensor_shapes",
]
