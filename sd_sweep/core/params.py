"""The sweepable parameters: their names (the WebUI txt2img/img2img API's), types and roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sd_sweep.core.errors import SpecError

BATCHABLE = frozenset({"prompt", "negative_prompt", "seed"})
"""Parameters that may differ between the images of one generation call."""


@dataclass(frozen=True)
class ParamDef:
    name: str
    kind: str
    """Value type for parsing: int, float, str, bool, size, or styles."""
    title: str
    aliases: tuple[str, ...] = ()
    switch_cost: int = 0
    """Relative cost of changing this parameter between calls (model loads); orders execution."""
    choices_from: str | None = None
    """The capabilities' ``choices`` key whose values are the allowed values."""
    minimum: float | None = None
    maximum: float | None = None


def _p(name: str, kind: str, title: str, *aliases: str, **kw: object) -> ParamDef:
    return ParamDef(name, kind, title, tuple(aliases), **kw)  # type: ignore[arg-type]


PARAMS: dict[str, ParamDef] = {
    d.name: d
    for d in (
        _p("prompt", "str", "Prompt"),
        _p("negative_prompt", "str", "Negative prompt"),
        _p("seed", "int", "Seed", minimum=-1, maximum=2**32 - 1),
        _p("subseed", "int", "Variation seed", "var_seed", minimum=-1, maximum=2**32 - 1),
        _p("subseed_strength", "float", "Variation strength", "var_strength", minimum=0, maximum=1),
        _p("steps", "int", "Steps", minimum=1, maximum=1000),
        _p("cfg_scale", "float", "CFG scale", "cfg", minimum=0, maximum=100),
        _p("sampler_name", "str", "Sampler", "sampler", choices_from="sampler_name"),
        _p("scheduler", "str", "Schedule type", choices_from="scheduler"),
        _p("width", "int", "Width", minimum=8, maximum=16384),
        _p("height", "int", "Height", minimum=8, maximum=16384),
        _p("size", "size", "Size"),
        _p("denoising_strength", "float", "Denoising", "hr_denoising_strength", minimum=0, maximum=1),
        _p("clip_skip", "int", "Clip skip", "CLIP_stop_at_last_layers", minimum=1, maximum=12),
        _p(
            "checkpoint",
            "str",
            "Checkpoint",
            "sd_model_checkpoint",
            "model",
            switch_cost=100,
            choices_from="checkpoint",
        ),
        _p("vae", "str", "VAE", "sd_vae", switch_cost=10, choices_from="vae"),
        _p("enable_hr", "bool", "Hires fix", "hires_fix"),
        _p("hr_scale", "float", "Hires upscale", minimum=1, maximum=8),
        _p("hr_upscaler", "str", "Hires upscaler", choices_from="hr_upscaler"),
        _p("hr_second_pass_steps", "int", "Hires steps", minimum=0, maximum=1000),
        _p("hr_resize_x", "int", "Hires resize width", minimum=0, maximum=16384),
        _p("hr_resize_y", "int", "Hires resize height", minimum=0, maximum=16384),
        _p("hr_sampler_name", "str", "Hires sampler", choices_from="hr_sampler_name"),
        _p("hr_scheduler", "str", "Hires schedule type", choices_from="hr_scheduler"),
        _p("hr_cfg", "float", "Hires CFG scale", minimum=0, maximum=100),
        _p("hr_prompt", "str", "Hires prompt"),
        _p("hr_negative_prompt", "str", "Hires negative prompt"),
        _p("restore_faces", "bool", "Restore faces"),
        _p("tiling", "bool", "Tiling"),
        _p("styles", "styles", "Styles", choices_from="styles"),
        _p("prompt_sr", "str", "Prompt S/R"),
        _p("negative_prompt_sr", "str", "Negative prompt S/R"),
        _p("prompt_matrix", "str", "Prompt matrix"),
    )
}

HIRES_SECOND_PASS = frozenset(
    {
        "denoising_strength",
        "hr_scale",
        "hr_resize_x",
        "hr_resize_y",
        "hr_upscaler",
        "hr_second_pass_steps",
        "hr_sampler_name",
        "hr_scheduler",
        "hr_cfg",
        "hr_prompt",
        "hr_negative_prompt",
    }
)
"""What only the hires pass of a txt2img cell reads: cells differing only in these share a first pass."""

WEBUI_DEFAULTS: dict[str, Any] = {
    "steps": 20,
    "cfg_scale": 7.0,
    "sampler_name": "DPM++ 2M",
    "scheduler": "Automatic",
    "width": 512,
    "height": 512,
}
"""What the WebUI (v1.10) uses when a request leaves these out."""

SAME_SAMPLER = "Use same sampler"
SAME_SCHEDULER = "Use same scheduler"
"""The WebUI's ``hr_sampler_name`` and ``hr_scheduler`` values for "as the first pass" (``modules/txt2img.py``
passes them on as None)."""

HIRES_SAME: dict[str, tuple[str, str]] = {
    "hr_sampler_name": ("sampler_name", SAME_SAMPLER),
    "hr_scheduler": ("scheduler", SAME_SCHEDULER),
}
"""Per hires sampler field: the first pass's field, whose choices and spellings it takes, and its value
for "as the first pass"."""


def with_hires_choices(choices: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """``choices`` with the hires sampler fields' (``HIRES_SAME``): "as the first pass", then the first pass's."""
    hires = {name: (same, *choices[first]) for name, (first, same) in HIRES_SAME.items() if first in choices}
    return {**choices, **hires}


def with_hires_spellings(spellings: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``spellings`` with the hires sampler fields', the first pass's fields' (``HIRES_SAME``)."""
    hires = {name: spellings[first] for name, (first, _) in HIRES_SAME.items() if first in spellings}
    return {**spellings, **hires}


NETWORK_TYPES = ("lora", "lyco", "hypernet")
"""Extra-network tag names whose weight an axis ``<type>:<name>`` sweeps."""

_ALIASES = {alias: d.name for d in PARAMS.values() for alias in d.aliases}

SETTING_KEYS = {"checkpoint": "sd_model_checkpoint", "vae": "sd_vae", "clip_skip": "CLIP_stop_at_last_layers"}
"""Parameters the WebUI applies as override settings, and their setting keys."""

_SETTING_PARAMS = {f"setting:{SETTING_KEYS[name]}": name for name in ("checkpoint", "vae")}

DERIVED = frozenset({"size", "prompt_sr", "negative_prompt_sr", "prompt_matrix"})
"""Axis parameters that are resolved into other parameters (and need those to be supported)."""

REQUIRES = {
    "size": ("width", "height"),
    "prompt_sr": ("prompt",),
    "negative_prompt_sr": ("negative_prompt",),
    "prompt_matrix": ("prompt",),
}


def canonical_name(name: str) -> str:
    """The canonical spelling of a parameter name; dynamic names (``setting:``, ``lora:``) kept as given.

    ``setting:sd_model_checkpoint`` and ``setting:sd_vae`` become ``checkpoint`` and ``vae``, so they
    are checked against the backend's catalog and ordered to load each model once.
    """
    return _ALIASES.get(name, _SETTING_PARAMS.get(name, name))


def param_def(name: str, field: str) -> ParamDef:
    """The definition of a parameter, including the dynamic families.

    ``setting:KEY`` (a WebUI setting, applied as an override), ``<network>:<name>`` (the weight of an
    extra-network tag in the prompt) and ``host:<label>`` (an axis the host applies).
    """
    name = canonical_name(name)
    if name in PARAMS:
        return PARAMS[name]
    family, sep, rest = name.partition(":")
    if sep and rest:
        if family == "setting":
            return ParamDef(name, "str", rest)
        if family in NETWORK_TYPES:
            return ParamDef(name, "float", f"{family} {rest}")
        if family == "host":
            return ParamDef(name, "str", rest)
    raise SpecError.single(field, name, unknown_param_message(name))


def unknown_param_message(name: str, extra: tuple[str, ...] = ()) -> str:
    """``unknown parameter; did you mean width?`` for a close name (a spelling of ``PARAMS`` or
    ``extra``), else the list of known ones."""
    import difflib

    spellings = sorted({*PARAMS, *_ALIASES, *extra})
    close = difflib.get_close_matches(name, spellings, n=3)
    if close:
        return f"unknown parameter; did you mean {', '.join(close)}?"
    known = ", ".join(sorted(PARAMS))
    return f"unknown parameter; known: {known}, setting:<key>, lora:<name>, host:<axis>"


def capability_key(name: str) -> str:
    """The name a backend's ``Capabilities.params`` lists for a parameter (families as ``lora:*``)."""
    family, sep, _ = name.partition(":")
    return f"{family}:*" if sep and family in (*NETWORK_TYPES, "setting") else name
