"""Turn a cell's axis values into its fully resolved generation parameters."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sd_sweep.core.canonical import BatchKey, ItemTexts, ParamsEncoder
from sd_sweep.core.errors import Problem, SpecError
from sd_sweep.core.params import NETWORK_TYPES, PARAMS, SETTING_KEYS, param_def
from sd_sweep.core.prompts import has_network_tag, search_replace, set_network_weight
from sd_sweep.core.spec import AxisSpec

MAX_BATCH_SIZE = 64
AXIS_ONLY = frozenset({"prompt_sr", "negative_prompt_sr", "prompt_matrix"})


@dataclass(frozen=True)
class Assignment:
    """One axis's value in one cell."""

    axis: AxisSpec
    field: str
    index: int
    values: list[Any]

    @property
    def value(self) -> Any:
        return self.values[self.index]


def coerce_base(base: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """Check and convert the base parameters to their types; settings move into override_settings."""
    result: dict[str, Any] = {}
    overrides = dict(base.get("override_settings") or {}) if isinstance(base.get("override_settings"), dict) else {}
    for name, value in base.items():
        where = f"base.{name}"
        if name == "override_settings":
            continue
        if name == "batch_size":
            result[name] = _coerce_batch_size(value, where, problems)
        elif name in ("init_images", "mask"):
            result[name] = value
        elif name in AXIS_ONLY or name.split(":", 1)[0] in NETWORK_TYPES:
            problems.append(Problem(where, value, "only valid on an axis"))
        elif name.startswith("setting:"):
            overrides[name.split(":", 1)[1]] = value
        elif name == "size":
            try:
                result["width"], result["height"] = coerce_scalar(value, "size", where)
            except SpecError as exc:
                problems.extend(exc.problems)
        elif name in PARAMS:
            try:
                result[name] = coerce_scalar(value, PARAMS[name].kind, where)
            except SpecError as exc:
                problems.extend(exc.problems)
        else:
            result[name] = value
    _models_from_overrides(overrides, result, problems)
    if overrides:
        result["override_settings"] = overrides
    return result


def _models_from_overrides(overrides: dict[str, Any], result: dict[str, Any], problems: list[Problem]) -> None:
    """``override_settings`` naming a checkpoint or VAE sets the parameter, so order and checks see it."""
    for name in ("checkpoint", "vae"):
        key = SETTING_KEYS[name]
        if key not in overrides:
            continue
        value = overrides.pop(key)
        where = f"base.override_settings.{key}"
        if name in result:
            problems.append(Problem(where, value, f"given twice (also as base.{name})"))
            continue
        try:
            result[name] = coerce_scalar(value, "str", where)
        except SpecError as exc:
            problems.extend(exc.problems)


def _coerce_batch_size(value: Any, where: str, problems: list[Problem]) -> int:
    try:
        size = coerce_scalar(value, "int", where)
    except SpecError as exc:
        problems.extend(exc.problems)
        return 1
    if not 1 <= size <= MAX_BATCH_SIZE:
        problems.append(Problem(where, value, f"must be between 1 and {MAX_BATCH_SIZE}"))
        return 1
    return size


def coerce_scalar(value: Any, kind: str, field: str) -> Any:
    """Convert one base value to ``kind``; raise ``SpecError`` naming ``field`` when it can't be."""
    return _COERCERS.get(kind, _coerce_str)(value, kind, field)


def _coerce_number(value: Any, kind: str, field: str) -> int | float:
    number = _number(value)
    if number is None or (kind == "int" and not float(number).is_integer()):
        raise SpecError.single(field, value, f"must be {'an integer' if kind == 'int' else 'a number'}")
    return int(number) if kind == "int" else float(number)


def _coerce_one_value(value: Any, kind: str, field: str) -> Any:
    """Booleans and sizes parse as axis values do, but a base takes exactly one."""
    from sd_sweep.core.values import parse_values

    if isinstance(value, list) and kind != "size":
        raise SpecError.single(field, value, f"must be one {kind} value, not a list")
    values = parse_values(value, kind, field)
    if len(values) != 1:
        raise SpecError.single(field, value, f"must be one {kind} value")
    return values[0]


def _coerce_styles(value: Any, kind: str, field: str) -> list[str]:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise SpecError.single(field, value, "must be a list of style names")


def _coerce_str(value: Any, kind: str, field: str) -> str:
    if not isinstance(value, str):
        raise SpecError.single(field, value, "must be a string")
    return value


_COERCERS = {
    "int": _coerce_number,
    "float": _coerce_number,
    "bool": _coerce_one_value,
    "size": _coerce_one_value,
    "styles": _coerce_styles,
}


def _number(value: Any) -> float | None:
    """A finite number from an int, a float or numeric text; None for anything else (bools too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value.strip()) if isinstance(value, str) else value
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def coerce_setting(value: Any) -> Any:
    """Setting values from text become numbers or booleans where they look like one."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


_SET, _STYLES, _OVERRIDE, _TEXT = range(4)
_SCALAR_TYPES = (str, int, float, bool, type(None))

ValueSteps = tuple[tuple[int, str, Any, Any], ...]
"""What one dimension value does to a cell, worked out once: ``(kind, name, value, extra)`` steps."""

Tags = tuple[tuple[str, ...], tuple[str, ...]]


@dataclass
class ResolvedCell:
    params: dict[str, Any]
    identity: str
    """The parameters as canonical JSON, random seeds as symbols: what the cell id hashes."""
    batch_key: BatchKey


class CellResolver:
    """Applies axis values to the base in a fixed order.

    Whole-value parameters first, then the prompt matrix, then extra-network weights, then
    search/replace in axis order: so a LoRA-weight axis and a search/replace axis over LoRA
    names compose (the weight is set on the tag before its name is replaced).

    Sweeps run to a hundred thousand cells, so each dimension value is turned into steps once
    (``prepare``, for every value before the first ``resolve``) and ``resolve`` replays the steps of
    a cell's values; the prompt edits of each combination of text values are made once per
    distinct starting prompt.
    """

    def __init__(self, base: dict[str, Any], seed_resolutions: dict[str, int]) -> None:
        self.base = {k: v for k, v in base.items() if k not in ("batch_size",)}
        self.seed_resolutions = seed_resolutions
        template = copy.deepcopy(self.base)
        template.setdefault("prompt", "")
        template.setdefault("negative_prompt", "")
        symbols: dict[str, str] = {}
        for name in ("seed", "subseed"):
            if template.get(name, -1 if name == "seed" else None) == -1:
                template[name] = seed_resolutions[f"base.{name}"]
                symbols[name] = f"random:base.{name}"
        self._overrides = dict(template.pop("override_settings", {}))
        self._template = template
        self._mutable = [k for k, v in template.items() if not isinstance(v, _SCALAR_TYPES)]
        self._mutable_overrides = any(not isinstance(v, _SCALAR_TYPES) for v in self._overrides.values())
        self._encoder = ParamsEncoder(template, symbols)
        self._varying: set[str] = set()
        self._text_ops: list[Assignment] = []
        self._text_results: dict[tuple[str, str, tuple[int, ...]], tuple[dict[str, Any], list[Problem], Any]] = {}

    def prepare(self, assignments: list[Assignment]) -> ValueSteps:
        """The steps that apply ``assignments`` (one dimension value, its zipped axes in order)."""
        steps: list[tuple[int, str, Any, Any]] = []
        texts = self._encoder.texts
        for item in assignments:
            name, value = item.axis.param, item.value
            if name == "size":
                steps += [(_SET, "width", value[0], texts("width", value[0]))]
                steps += [(_SET, "height", value[1], texts("height", value[1]))]
            elif name in ("seed", "subseed") and value == -1:
                key = random_seed_key(name, item.values, item.index)
                resolved = self.seed_resolutions[key]
                steps.append((_SET, name, resolved, texts(name, resolved, f"random:{key}")))
            elif name == "styles":
                steps.append((_STYLES, name, tuple(s.strip() for s in str(value).split(",") if s.strip()), None))
                self._varying.add("styles")
            elif name.startswith("setting:"):
                steps.append((_OVERRIDE, name.split(":", 1)[1], coerce_setting(value), None))
                self._varying.add("override_settings")
            elif name in AXIS_ONLY or name.split(":", 1)[0] in NETWORK_TYPES:
                self._text_ops.append(item)
                steps.append((_TEXT, name, len(self._text_ops) - 1, None))
                self._varying.update(("prompt", "negative_prompt"))
                if name == "prompt_matrix":
                    self._varying.add(item.axis.options.get("target", "prompt"))
            else:
                steps.append((_SET, name, value, texts(name, value)))
        self._varying.update(name for kind, name, _, _ in steps if kind == _SET)
        return tuple(steps)

    def resolve(self, values: Sequence[ValueSteps], problems: list[Problem]) -> ResolvedCell | None:  # noqa: PLR0912
        """The cell that takes ``values`` (one prepared value of each dimension).

        None when the cell has a problem (added to ``problems``).
        """
        encoder = self._encoder
        if encoder.constant is None:
            encoder.constant = frozenset(self._template) - self._varying
        params = dict(self._template)
        for name in self._mutable:
            params[name] = copy.deepcopy(params[name])
        known: dict[str, ItemTexts] = {}
        overrides: dict[str, Any] | None = None
        text: list[int] = []
        for steps in values:
            for kind, name, value, extra in steps:
                if kind == _SET:
                    params[name] = value
                    known[name] = extra
                elif kind == _STYLES:
                    params["styles"] = [*params.get("styles", []), *value]
                elif kind == _OVERRIDE:
                    if overrides is None:
                        overrides = dict(self._overrides)
                    overrides[name] = value
                else:
                    text.append(value)
        tags = None
        if text:
            edits, found, tags = self._text_edits(params["prompt"], params["negative_prompt"], tuple(text))
            before = len(problems)
            for problem in found:
                _add_once(problems, problem)
            if len(problems) > before:
                return None
            params.update(edits)
            known.update(tags[1])
            tags = tags[0]
        if overrides is None and self._overrides:
            overrides = dict(self._overrides)
        if overrides:
            if self._mutable_overrides:
                overrides = copy.deepcopy(overrides)
            params["override_settings"] = overrides
        identity, key = encoder.encode(params, known, tags)
        return ResolvedCell(params, identity, key)

    def _text_edits(
        self, prompt: str, negative_prompt: str, ops: tuple[int, ...]
    ) -> tuple[dict[str, Any], list[Problem], tuple[Tags, dict[str, ItemTexts]]]:
        key = (prompt, negative_prompt, ops)
        result = self._text_results.get(key)
        if result is None:
            edits: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative_prompt}
            found: list[Problem] = []
            for item in sorted((self._text_ops[i] for i in ops), key=_text_op_order):
                _apply_text_op(edits, item, found)
            encoder = self._encoder
            tags = (encoder.tags(edits["prompt"]), encoder.tags(edits["negative_prompt"]))
            result = (edits, found, (tags, {name: encoder.texts(name, value) for name, value in edits.items()}))
            self._text_results[key] = result
        return result


def random_seed_key(param: str, values: list[Any], index: int) -> str:
    """The key of the random seed drawn for ``values[index]`` (a -1) of a seed or subseed axis.

    It counts the -1 values before it, not the axis name or the position, so renaming the axis
    or adding explicit seeds keeps the seeds (and the ids) of the random cells already made.
    """
    return f"{param}[random {sum(1 for v in values[:index] if v == -1)}]"


def _text_op_order(item: Assignment) -> int:
    if item.axis.param == "prompt_matrix":
        return 0
    if item.axis.param.split(":", 1)[0] in NETWORK_TYPES:
        return 1
    return 2


def _apply_text_op(params: dict[str, Any], item: Assignment, problems: list[Problem]) -> None:
    name, value = item.axis.param, item.value
    if name == "prompt_matrix":
        params[item.axis.options.get("target", "prompt")] = value
        return
    if name in ("prompt_sr", "negative_prompt_sr"):
        term = str(item.values[0])
        targets = ["negative_prompt"] if name == "negative_prompt_sr" else ["prompt", "negative_prompt"]
        if not any(term in params[t] for t in targets):
            where = "negative prompt" if name == "negative_prompt_sr" else "prompt or negative prompt"
            _add_once(problems, Problem(f"{item.field}.values", term, f"search term not found in the {where}"))
            return
        for target in targets:
            params[target] = search_replace(params[target], term, str(value))
        return
    network, tag_name = name.split(":", 1)
    if not has_network_tag(params["prompt"], network, tag_name):
        message = f"the prompt has no <{network}:{tag_name}:...> tag whose weight to set"
        _add_once(problems, Problem(f"{item.field}.param", name, message))
        return
    params["prompt"] = set_network_weight(params["prompt"], network, tag_name, value)


def _add_once(problems: list[Problem], problem: Problem) -> None:
    if problem not in problems:
        problems.append(problem)


__all__ = ["Assignment", "CellResolver", "ResolvedCell", "coerce_base", "coerce_scalar", "param_def", "random_seed_key"]
