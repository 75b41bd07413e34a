"""Checks of values against what a backend can do: support, choices, ranges and sizes."""

from __future__ import annotations

import difflib
from typing import Any

from sd_sweep.core.errors import Problem
from sd_sweep.core.params import PARAMS, REQUIRES, ParamDef, unknown_param_message
from sd_sweep.core.ports import Capabilities

BASE_ALWAYS = frozenset({"batch_size", "prompt", "negative_prompt", "seed"})
BASE_KEYS = frozenset({"batch_size", "override_settings", "init_images", "mask", "n_iter", "size"})
"""Base keys that are not parameters of ``PARAMS`` but are known (a backend may still refuse them)."""


def check_axis_support(definition: ParamDef, caps: Capabilities, field: str, problems: list[Problem]) -> bool:
    needed = REQUIRES.get(definition.name, (definition.name,))
    if definition.name.split(":", 1)[0] in ("lora", "lyco", "hypernet"):
        needed = (definition.name, "prompt")
    missing = [name for name in needed if not caps.supports(name)]
    if missing:
        problems.append(Problem(field, definition.name, _unsupported(caps, missing)))
        return False
    return True


def check_base_support(base: dict[str, Any], caps: Capabilities, problems: list[Problem]) -> None:
    for name, value in base.items():
        if name in BASE_ALWAYS:
            continue
        if name == "override_settings":
            if value and not caps.supports("setting:any"):
                problems.append(Problem("base.override_settings", value, _unsupported(caps, ["settings"])))
        elif name not in PARAMS and name not in BASE_KEYS and ":" not in name:
            problems.append(Problem(f"base.{name}", value, unknown_param_message(name, tuple(BASE_KEYS))))
        elif not caps.supports(name):
            problems.append(Problem(f"base.{name}", value, _unsupported(caps, [name])))


def _unsupported(caps: Capabilities, names: list[str]) -> str:
    reasons = [caps.refusals[name] for name in names if name in caps.refusals]
    if reasons:
        return f"not supported by the {caps.name} backend: {'; '.join(reasons)}"
    supported = ", ".join(sorted(caps.params))
    return f"not supported by the {caps.name} backend ({', '.join(names)}); it supports: {supported}"


def check_value(definition: ParamDef, value: Any, field: str, caps: Capabilities, problems: list[Problem]) -> None:
    """Append a problem when ``value`` is outside the parameter's range or the backend's choices."""
    name = definition.name
    if name in ("width", "height"):
        _check_side(value, field, caps, problems)
    elif name == "size":
        for side in value:
            _check_side(side, field, caps, problems)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if definition.minimum is not None and value < definition.minimum:
            problems.append(Problem(field, value, f"{definition.title} must be at least {definition.minimum:g}"))
        if definition.maximum is not None and value > definition.maximum:
            problems.append(Problem(field, value, f"{definition.title} must be at most {definition.maximum:g}"))
    choices = caps.choices.get(definition.choices_from or "")
    if choices is None:
        return
    spellings = caps.spellings.get(definition.choices_from or "", {})
    items = (
        value
        if isinstance(value, list)
        else [s.strip() for s in str(value).split(",")]
        if name == "styles"
        else [value]
    )
    problems.extend(
        Problem(field, item, _not_a_choice(definition, item, choices, caps))
        for item in items
        if item not in choices and not (isinstance(item, str) and item in spellings)
    )


def canonical_value(definition: ParamDef, value: Any, caps: Capabilities) -> Any:
    """``value`` as the backend names it: another spelling it accepts (``Capabilities.spellings``,
    e.g. a sampler's alias) becomes its choice, so cells, labels and records use the host's name."""
    spellings = caps.spellings.get(definition.choices_from or "")
    if not spellings or not isinstance(value, str) or value in caps.choices.get(definition.choices_from or "", ()):
        return value
    return spellings.get(value, value)


def _not_a_choice(definition: ParamDef, value: Any, choices: tuple[str, ...], caps: Capabilities) -> str:
    close = difflib.get_close_matches(str(value), choices, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; available: {', '.join(choices[:30])}"
    return f"unknown {definition.title.lower()} for the {caps.name} backend{hint}"


def _check_side(value: Any, field: str, caps: Capabilities, problems: list[Problem]) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        return
    if value % caps.size_multiple:
        problems.append(Problem(field, value, f"image sides must be multiples of {caps.size_multiple}"))
    if not caps.min_side <= value <= caps.max_side:
        problems.append(Problem(field, value, f"image sides must be between {caps.min_side} and {caps.max_side}"))
