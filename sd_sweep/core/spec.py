"""The sweep spec: one document (YAML or JSON) for the UI, the REST body and the command line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sd_sweep.core.errors import Problem, SpecError
from sd_sweep.core.naming import default_name
from sd_sweep.core.params import canonical_name

DEFAULT_MAX_CELLS = 1000
BASE_ONLY = frozenset({"batch_size", "override_settings", "init_images", "mask", "n_iter"})
"""Base keys that are not sweep parameters but shape every generation call."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$")


@dataclass
class AxisSpec:
    param: str
    values: Any
    name: str = ""
    """The key layouts use; defaults to the parameter name (made unique with a suffix)."""
    title: str = ""
    zip: str | None = None
    """Axes with the same zip group advance together instead of multiplying."""
    options: dict[str, Any] = field(default_factory=dict)
    """Parameter-specific options, e.g. a prompt matrix's ``delimiter`` and ``at_start``."""


@dataclass
class Layout:
    x: str | None = None
    y: str | None = None
    page: list[str] = field(default_factory=list)
    explicit: bool = False


@dataclass
class Limits:
    max_cells: int = DEFAULT_MAX_CELLS


@dataclass
class Spec:
    name: str
    base: dict[str, Any]
    axes: list[AxisSpec]
    layout: Layout
    limits: Limits
    source: dict[str, Any] = field(default_factory=dict)
    """The document as given, kept in the manifest."""

    @property
    def batch_size(self) -> int:
        return int(self.base.get("batch_size", 1))


AXIS_KEYS = {"param", "values", "name", "title", "label", "zip", "options", "delimiter", "at_start", "target"}
TOP_KEYS = {"name", "base", "axes", "layout", "limits", "version", "description"}


def parse_text(text: str, field_name: str = "spec") -> dict[str, Any]:
    """Parse YAML or JSON text into a mapping; errors name the line where the parser stopped."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML/JSON"
        raise SpecError.single(field_name, _excerpt(text), f"cannot parse{where}: {problem}") from None
    except Exception as exc:  # yaml can raise ValueError/RecursionError on hostile input
        raise SpecError.single(field_name, _excerpt(text), f"cannot parse: {exc}") from None
    if not isinstance(document, dict):
        raise SpecError.single(field_name, _excerpt(text), "must be a mapping with base and axes")
    return document


def _excerpt(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def load_spec(source: str | Path | dict[str, Any]) -> Spec:
    """Read a spec from a mapping, a file path, or YAML/JSON text."""
    if isinstance(source, dict):
        return spec_from_dict(source)
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError.single("spec", str(path), f"cannot read file: {exc.strerror or exc}") from None
        return spec_from_dict(parse_text(text, str(path)))
    return spec_from_dict(parse_text(str(source)))


def spec_from_dict(document: dict[str, Any]) -> Spec:
    """Check the document's structure and build a ``Spec``; every problem is reported at once."""
    problems: list[Problem] = []
    problems.extend(
        Problem(str(key), value, f"unknown key; expected one of {sorted(TOP_KEYS)}")
        for key, value in document.items()
        if key not in TOP_KEYS
    )
    name = _parse_name(document.get("name") or default_name(document.get("base")), problems)
    base = _parse_base(document.get("base", {}), problems)
    axes = _parse_axes(document.get("axes", []), problems)
    layout = _parse_layout(document.get("layout"), problems)
    limits = _parse_limits(document.get("limits"), problems)
    if problems:
        raise SpecError(problems)
    return Spec(name=name, base=base, axes=axes, layout=layout, limits=limits, source=_json_safe(document))


def _json_safe(document: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(document, default=str))


def _parse_name(value: Any, problems: list[Problem]) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value) or value.strip(". ") != value:
        problems.append(Problem("name", value, "must be 1-100 letters, digits, spaces, '_', '-' or '.'"))
        return "sweep"
    return value


def _parse_base(value: Any, problems: list[Problem]) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.append(Problem("base", value, "must be a mapping of parameter names to values"))
        return {}
    base: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(Problem("base", key, "parameter names must be strings"))
            continue
        name = canonical_name(key)
        if name in base:
            problems.append(Problem(f"base.{key}", item, f"given twice (also as {name})"))
        base[name] = item
    overrides = base.get("override_settings", {})
    if not isinstance(overrides, dict):
        problems.append(Problem("base.override_settings", overrides, "must be a mapping of setting keys to values"))
    return base


def _parse_axes(value: Any, problems: list[Problem]) -> list[AxisSpec]:
    if not isinstance(value, list):
        problems.append(Problem("axes", value, "must be a list of {param, values}"))
        return []
    axes: list[tuple[int, AxisSpec]] = []
    used_names: set[str] = set()
    for index, item in enumerate(value):
        where = f"axes[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, item, "must be a mapping with param and values"))
            continue
        unknown = sorted((k for k in item if k not in AXIS_KEYS), key=str)
        if unknown:
            problems.append(
                Problem(f"{where}.{unknown[0]}", item[unknown[0]], f"unknown key; expected {sorted(AXIS_KEYS)}")
            )
        param = item.get("param")
        if not isinstance(param, str) or not param:
            problems.append(Problem(f"{where}.param", param, "must name a parameter"))
            continue
        param = canonical_name(param)
        if "values" not in item and param != "prompt_matrix":
            problems.append(Problem(f"{where}.values", None, "missing"))
            continue
        axis = AxisSpec(param=param, values=item.get("values"))
        axis.options = _axis_options(item, where, problems)
        axis.name = _axis_name(item.get("name"), param, used_names, where, problems)
        axis.title = str(item.get("title") or item.get("label") or "")
        zip_group = item.get("zip")
        if zip_group is not None and (not isinstance(zip_group, str) or not zip_group):
            problems.append(Problem(f"{where}.zip", zip_group, "must be a group name"))
            zip_group = None
        axis.zip = zip_group
        axes.append((index, axis))
    clashing: set[str] = set()
    for index, axis in axes:
        group = axis.zip
        if group is not None and group not in clashing and any(a.name == group and a.zip != group for _, a in axes):
            clashing.add(group)
            problems.append(Problem(f"axes[{index}].zip", group, "another axis has this name; name the group apart"))
    return [axis for _, axis in axes]


def _axis_options(item: dict[str, Any], where: str, problems: list[Problem]) -> dict[str, Any]:
    options = item.get("options", {})
    if not isinstance(options, dict):
        problems.append(Problem(f"{where}.options", options, "must be a mapping"))
        return {}
    options = dict(options)
    for key in ("delimiter", "at_start", "target"):
        if key in item:
            options[key] = item[key]
    if "delimiter" in options and options["delimiter"] not in ("comma", "space"):
        problems.append(Problem(f"{where}.delimiter", options["delimiter"], "must be comma or space"))
    if "target" in options and options["target"] not in ("prompt", "negative_prompt"):
        problems.append(Problem(f"{where}.target", options["target"], "must be prompt or negative_prompt"))
    if "at_start" in options and not isinstance(options["at_start"], bool):
        problems.append(Problem(f"{where}.at_start", options["at_start"], "must be true or false"))
    return options


def _axis_name(value: Any, param: str, used: set[str], where: str, problems: list[Problem]) -> str:
    if value is not None:
        if not isinstance(value, str) or not value:
            problems.append(Problem(f"{where}.name", value, "must be a non-empty string"))
            return param
        if value in used:
            problems.append(Problem(f"{where}.name", value, "another axis has this name"))
        used.add(value)
        return value
    name, n = param, 2
    while name in used:
        name, n = f"{param}_{n}", n + 1
    used.add(name)
    return name


def _parse_layout(value: Any, problems: list[Problem]) -> Layout:
    if value is None:
        return Layout()
    if not isinstance(value, dict):
        problems.append(Problem("layout", value, "must be a mapping with x, y and page"))
        return Layout()
    layout = Layout(explicit=True)
    problems.extend(
        Problem(f"layout.{key}", item, "unknown key; expected x, y, page")
        for key, item in value.items()
        if key not in ("x", "y", "page", "pages")
    )
    for key in ("x", "y"):
        item = value.get(key)
        if item is not None and not isinstance(item, str):
            problems.append(Problem(f"layout.{key}", item, "must be an axis name"))
            item = None
        setattr(layout, key, item)
    pages = value.get("page", value.get("pages", []))
    if isinstance(pages, str):
        pages = [pages]
    if not isinstance(pages, list) or not all(isinstance(p, str) for p in pages):
        problems.append(Problem("layout.page", pages, "must be a list of axis names"))
        pages = []
    layout.page = list(pages)
    return layout


def _parse_limits(value: Any, problems: list[Problem]) -> Limits:
    if value is None:
        return Limits()
    if not isinstance(value, dict):
        problems.append(Problem("limits", value, "must be a mapping"))
        return Limits()
    limits = Limits()
    for key, item in value.items():
        if key != "max_cells":
            problems.append(Problem(f"limits.{key}", item, "unknown key; expected max_cells"))
        elif isinstance(item, bool) or not isinstance(item, int) or item < 1:
            problems.append(Problem("limits.max_cells", item, "must be a positive integer"))
        else:
            limits.max_cells = item
    return limits
