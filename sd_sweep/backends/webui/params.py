"""The WebUI's own parameter tables: what it applies, and how (fields of ``p`` or its API request)."""

from __future__ import annotations

from sd_sweep.core.params import NETWORK_TYPES

WEBUI_PARAMS = frozenset(
    {
        "prompt",
        "negative_prompt",
        "seed",
        "subseed",
        "subseed_strength",
        "steps",
        "cfg_scale",
        "sampler_name",
        "scheduler",
        "width",
        "height",
        "checkpoint",
        "vae",
        "clip_skip",
        "denoising_strength",
        "restore_faces",
        "tiling",
        "styles",
        "setting:*",
        *(f"{n}:*" for n in NETWORK_TYPES),
    }
)
"""What a WebUI applies on both tabs, in-process or over its API."""

HIRES_PARAMS = ("enable_hr", "hr_scale", "hr_upscaler", "hr_second_pass_steps")
"""The hires fix switch, then its settings."""

TXT2IMG_ONLY = frozenset(HIRES_PARAMS)

PROCESSING_FIELDS = (
    "steps",
    "cfg_scale",
    "sampler_name",
    "scheduler",
    "width",
    "height",
    "subseed",
    "subseed_strength",
    "denoising_strength",
    "restore_faces",
    "tiling",
    "enable_hr",
    "hr_scale",
    "hr_upscaler",
    "hr_second_pass_steps",
)
"""Parameters that are fields of the same name on the WebUI's processing object and API request."""
