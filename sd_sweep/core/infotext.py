"""The WebUI's infotext ("parameters" PNG text chunk) format, written and read.

Mirrors ``modules.processing.create_infotext`` and ``modules.infotext_utils.quote`` of the
WebUI v1.10.1, so the WebUI's PNG Info tab and "Send to txt2img" read our images.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Canonical parameter name -> infotext key, in the order the WebUI writes them.
INFOTEXT_KEYS: dict[str, str] = {
    "steps": "Steps",
    "sampler_name": "Sampler",
    "scheduler": "Schedule type",
    "cfg_scale": "CFG scale",
    "seed": "Seed",
    "subseed": "Variation seed",
    "subseed_strength": "Variation seed strength",
    "size": "Size",
    "model_hash": "Model hash",
    "checkpoint": "Model",
    "vae": "VAE",
    "denoising_strength": "Denoising strength",
    "clip_skip": "Clip skip",
    "restore_faces": "Face restoration",
    "tiling": "Tiling",
    "hr_scale": "Hires upscale",
    "hr_second_pass_steps": "Hires steps",
    "hr_upscaler": "Hires upscaler",
}


def quote(value: Any) -> str:
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def build_infotext(
    prompt: str,
    negative_prompt: str,
    params: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Format one image's infotext from its resolved cell parameters."""
    fields: dict[str, Any] = {}
    for name, key in INFOTEXT_KEYS.items():
        value = f"{params['width']}x{params['height']}" if name == "size" and "width" in params else params.get(name)
        if name in ("subseed", "subseed_strength") and not params.get("subseed_strength"):
            continue
        if name in ("hr_scale", "hr_second_pass_steps", "hr_upscaler") and not params.get("enable_hr"):
            continue
        if value is None or value is False or value == "":
            continue
        fields[key] = value
    fields.update({k: v for k, v in (extra or {}).items() if v is not None})
    settings_line = ", ".join(f"{key}: {quote(value)}" for key, value in fields.items())
    negative_line = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative_line}\n{settings_line}"


def parse_settings_line(line: str) -> dict[str, str]:
    """Parse the last line of an infotext (``Key: value, Key: "quoted, value"``) into a dict."""
    result: dict[str, str] = {}
    decoder = json.JSONDecoder()
    i = 0
    while i < len(line):
        colon = line.find(":", i)
        if colon < 0:
            break
        key = line[i:colon].strip()
        j = colon + 1
        while j < len(line) and line[j] == " ":
            j += 1
        if j < len(line) and line[j] == '"':
            value, end = decoder.raw_decode(line, j)
            j = end
        else:
            end = line.find(",", j)
            end = len(line) if end < 0 else end
            value = line[j:end].strip()
            j = end
        result[key] = str(value)
        i = j + 1 if j < len(line) and line[j] == "," else j
    return result
