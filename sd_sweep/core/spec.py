"""The sweep spec: one document (YAML or JSON) for the UI, the REST body and the command line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sd_sweep.core.errors import Problem, SpecError
from sd_sweep.core.naming import default_name
from sd_sweep.core.params import canonical_name
from sd_sweep.core.spec_model import AXIS, DEFAULT_MAX_CELLS, LAYOUT, LIMITS, OPTIONS, TOP, Key

BASE_ONLY = frozenset({"batch_size", "override_settings", "init_images", "mask", "n_iter"})
"""Base keys that are not sweep parameters but shape every generation call."""


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
    written_param: str = ""
    """The parameter as the document wrote it (an alias such as ``sd_model_checkpoint``); a layout
    may name the axis by it, by ``param`` or by ``name``."""


@dataclass
class Layout:
    x: str | None = None
    y: str | None = None
    page: list[str] = field(default_factory=list)
    explicit: bool = False


@dataclass
class Limits:
    max_cells: int = DEFAULT_MAX_CELLS
    batch_exact: bool = True
    """Whether only cells whose images a batch leaves unchanged share a batch (see ``Capabilities.shares_batch``)."""


@dataclass
class Spec:
    name: str
    base: dict[str, Any]
    axes: list[AxisSpec]
    layout: Layout
    limits: Limits
    source: dict[str, Any] = field(default_factory=dict)
    """The document as given, kept in the manifest."""
    problems: list[Problem] = field(default_factory=list)
    """Problems that do not stop the spec being planned (unknown top-level keys): ``build_plan``
    reports them together with everything else it finds, and refuses the spec."""

    @property
    def batch_size(self) -> int:
        return int(self.base.get("batch_size", 1))


AXIS_KEYS = frozenset(AXIS)
TOP_KEYS = frozenset(TOP)


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
    """Check the document's structure and build a ``Spec``; every problem is reported at once.

    The structure is that of ``sd_sweep.core.spec_model`` (and so of the JSON Schema); beyond it,
    this stage refuses a parameter given twice, axis names given twice and zip groups named like
    an axis. Values, parameter names and the layout's axis names are checked by the planner.
    Unknown top-level keys alone do not stop it: they are kept in ``Spec.problems`` and the
    planner reports them with the rest.
    """
    unknown: list[Problem] = []
    _unknown_keys(document, TOP, "", unknown)
    problems: list[Problem] = []
    fits = _check_keys(document, TOP, "", problems)
    name = document.get("name") if fits["name"] else "sweep"
    name = name or default_name(document.get("base"))
    base = _parse_base(document.get("base", {}), problems) if fits["base"] else {}
    axes = _parse_axes(document.get("axes", []), problems) if fits["axes"] else []
    layout = _parse_layout(document.get("layout"), problems) if fits["layout"] else Layout()
    limits = _parse_limits(document.get("limits"), problems) if fits["limits"] else Limits()
    if problems:
        raise SpecError(unknown + problems)
    spec = Spec(name=name, base=base, axes=axes, layout=layout, limits=limits, source=_json_safe(document))
    spec.problems = unknown
    return spec


def _unknown_keys(mapping: dict[Any, Any], keys: dict[str, Key], where: str, problems: list[Problem]) -> None:
    expected = ", ".join(keys)
    problems.extend(
        Problem(f"{where}{key}", value, f"unknown key; expected one of {expected}")
        for key, value in mapping.items()
        if key not in keys
    )


def _check_keys(mapping: dict[str, Any], keys: dict[str, Key], where: str, problems: list[Problem]) -> dict[str, bool]:
    """Whether each key of ``keys`` is absent or fits; a problem for each that does not."""
    fits = {}
    for name, key in keys.items():
        fits[name] = name not in mapping or key.fits(mapping[name])
        if not fits[name]:
            problems.append(Problem(f"{where}{name}", mapping[name], key.message))
    return fits


def _json_safe(document: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(document, default=str))


def _parse_base(value: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
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


def _parse_axes(value: list[Any], problems: list[Problem]) -> list[AxisSpec]:
    axes: list[tuple[int, AxisSpec]] = []
    used_names: set[str] = set()
    for index, item in enumerate(value):
        where = f"axes[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, item, "must be a mapping with param and values"))
            continue
        axis = _parse_axis(item, where, used_names, problems)
        if axis is not None:
            axes.append((index, axis))
    clashing: set[str] = set()
    for index, axis in axes:
        group = axis.zip
        if group is not None and group not in clashing and any(a.name == group and a.zip != group for _, a in axes):
            clashing.add(group)
            problems.append(Problem(f"axes[{index}].zip", group, "another axis has this name; name the group apart"))
    return [axis for _, axis in axes]


def _parse_axis(item: dict[Any, Any], where: str, used_names: set[str], problems: list[Problem]) -> AxisSpec | None:
    before = len(problems)
    _unknown_keys(item, AXIS, f"{where}.", problems)
    fits = _check_keys(item, AXIS, f"{where}.", problems)
    param = canonical_name(item["param"]) if fits["param"] and "param" in item else None
    if "param" not in item:
        problems.append(Problem(f"{where}.param", None, AXIS["param"].message))
    elif param is not None and "values" not in item and param != "prompt_matrix":
        problems.append(Problem(f"{where}.values", None, "missing"))
    options = {}
    if fits["options"]:
        options = dict(item.get("options", {}))
        _check_keys(options, OPTIONS, f"{where}.options.", problems)
    options.update((key, item[key]) for key in OPTIONS if key in item)
    if param is None or len(problems) > before:
        return None
    axis = AxisSpec(param=param, values=item.get("values"), options=options, written_param=str(item["param"]))
    axis.name = _axis_name(item.get("name"), param, used_names, where, problems)
    axis.title = item.get("title") or item.get("label") or ""
    axis.zip = item.get("zip")
    return axis


def _axis_name(value: str | None, param: str, used: set[str], where: str, problems: list[Problem]) -> str:
    if value is not None:
        if value in used:
            problems.append(Problem(f"{where}.name", value, "another axis has this name"))
        used.add(value)
        return value
    name, n = param, 2
    while name in used:
        name, n = f"{param}_{n}", n + 1
    used.add(name)
    return name


def _parse_layout(value: dict[str, Any] | None, problems: list[Problem]) -> Layout:
    if value is None:
        return Layout()
    _unknown_keys(value, LAYOUT, "layout.", problems)
    fits = _check_keys(value, LAYOUT, "layout.", problems)
    if "page" in value and "pages" in value:
        problems.append(Problem("layout.pages", value["pages"], "give page or pages, not both"))
    layout = Layout(explicit=True)
    layout.x = value.get("x") if fits["x"] else None
    layout.y = value.get("y") if fits["y"] else None
    pages = value.get("page", value.get("pages", [])) if fits["page"] and fits["pages"] else []
    layout.page = [pages] if isinstance(pages, str) else list(pages)
    return layout


def _parse_limits(value: dict[str, Any] | None, problems: list[Problem]) -> Limits:
    if value is None:
        return Limits()
    _unknown_keys(value, LIMITS, "limits.", problems)
    fits = _check_keys(value, LIMITS, "limits.", problems)
    limits = Limits()
    if fits["max_cells"] and "max_cells" in value:
        limits.max_cells = int(value["max_cells"])
    if fits["batch_exact"] and "batch_exact" in value:
        limits.batch_exact = bool(value["batch_exact"])
    return limits
