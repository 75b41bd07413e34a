"""Expand a spec into cells, resolve random seeds once, order execution and batch it."""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import math
import random
from collections.abc import Callable
from typing import Any

from sd_sweep.core.canonical import BatchKey, ParamsEncoder
from sd_sweep.core.errors import Problem, SpecError
from sd_sweep.core.params import PARAMS, ParamDef, param_def
from sd_sweep.core.plan import Cell, Dimension, Plan
from sd_sweep.core.ports import Capabilities
from sd_sweep.core.resolve import Assignment, CellResolver, coerce_base, random_seed_key
from sd_sweep.core.spec import AxisSpec, Spec
from sd_sweep.core.validate import canonical_value, check_axis_support, check_base_support, check_value
from sd_sweep.core.values import format_value, parse_values

RANDOM_SEED_LIMIT = 4294967294
"""Random seeds are drawn below this bound, as the WebUI does."""


def build_plan(
    spec: Spec,
    capabilities: Capabilities,
    *,
    seed_resolutions: dict[str, int] | None = None,
    rng: random.Random | None = None,
) -> Plan:
    """Validate ``spec`` against a backend and expand it into a plan.

    ``seed_resolutions`` carries the random seeds an earlier plan of the same run drew, so a
    resumed or repeated run regenerates the same images. Raises ``SpecError`` with every problem.
    """
    problems: list[Problem] = list(spec.problems)
    rng = rng or random.Random()
    resolutions = dict(seed_resolutions or {})
    base = _validated_base(spec, capabilities, problems)
    dimensions = _build_dimensions(spec, capabilities, base, problems)
    _check_matrix_targets(spec, problems)
    _check_layout(spec, dimensions, problems)
    if problems:
        _check_search_terms(base, dimensions, problems)
    total = math.prod(d.length for d in dimensions) if dimensions else 1
    if total > spec.limits.max_cells:
        problems.append(
            Problem(
                "limits.max_cells",
                spec.limits.max_cells,
                f"the sweep has {total} cells; raise limits.max_cells to at least {total} to run it",
            )
        )
    if problems:
        raise SpecError(problems)
    _resolve_random_seeds(base, dimensions, resolutions, rng)
    # A sweep makes hundreds of thousands of small containers that all live on; collecting while
    # they are made finds nothing and costs a fifth of the planning time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        cells, keys = _expand_cells(spec, base, dimensions, resolutions, problems, capabilities.implicit)
        if problems:
            raise SpecError(problems)
        alone = _runs_alone(cells, capabilities, spec)
        first_keys = _first_pass_keys(cells, capabilities, spec, alone)
        one_image = spec.batch_size < 2
        order = _execution_order(cells, keys, [k if one_image or alone[i] else None for i, k in enumerate(first_keys)])
        batch_by = [(*key, "alone", i) if alone[i] else key for i, key in enumerate(keys)] if any(alone) else keys
        batches = make_batches([cells[i] for i in order], spec.batch_size, [batch_by[i] for i in order])
        fp_keys = {cells[i].id: k for i, k in enumerate(first_keys) if k is not None}
        if not one_image and capabilities.batch_first_passes:
            batches = _first_pass_batches_together(batches, fp_keys)
        return Plan(
            spec=spec,
            dimensions=dimensions,
            cells=cells,
            batches=[[c.id for c in batch] for batch in batches],
            seed_resolutions=resolutions,
            estimate=estimate(
                cells,
                batches,
                shares_batch=capabilities.shares_batch,
                first_pass_keys=fp_keys,
                first_pass_unreused=capabilities.first_pass_unreused,
            ),
            backend=capabilities.name,
            first_pass_keys=fp_keys,
        )
    finally:
        if collecting:
            gc.enable()


def _validated_base(spec: Spec, caps: Capabilities, problems: list[Problem]) -> dict[str, Any]:
    if "size" in spec.base and ("width" in spec.base or "height" in spec.base):
        problems.append(Problem("base.size", spec.base["size"], "give either size or width and height, not both"))
    base = coerce_base(spec.base, problems)
    check_base_support(base, caps, problems)
    for name, value in base.items():
        if name in PARAMS:
            check_value(PARAMS[name], value, f"base.{name}", caps, problems)
    return {name: canonical_value(PARAMS[name], v, caps) if name in PARAMS else v for name, v in base.items()}


def _build_dimensions(spec: Spec, caps: Capabilities, base: dict[str, Any], problems: list[Problem]) -> list[Dimension]:
    groups: dict[str, list[tuple[int, AxisSpec]]] = {}
    for index, axis in enumerate(spec.axes):
        groups.setdefault(axis.zip or f"\0{axis.name}", []).append((index, axis))
    dimensions = []
    for key, members in groups.items():
        parsed = [_parse_axis(index, axis, caps, base, problems) for index, axis in members]
        if any(p is None for p in parsed):
            continue
        lengths = {len(values) for values, _ in parsed}  # type: ignore[misc]
        if len(lengths) > 1:
            problems.append(
                Problem(
                    f"axes[{members[0][0]}].zip",
                    members[0][1].zip,
                    f"zipped axes must have the same number of values, got {sorted(lengths)}",
                )
            )
            continue
        axes = [axis for _, axis in members]
        labels = [" / ".join(col) for col in zip(*(labels for _, labels in parsed))]  # type: ignore[misc]
        dimensions.append(
            Dimension(
                name=key if not key.startswith("\0") else axes[0].name,
                title=" / ".join(axis.title or param_def(axis.param, "").title for axis in axes),
                axes=axes,
                fields=[f"axes[{index}]" for index, _ in members],
                values=[values for values, _ in parsed],  # type: ignore[misc]
                labels=labels,
            )
        )
    return dimensions


_TEXT_SETTERS = frozenset({"prompt", "negative_prompt", "prompt_matrix", "prompt_sr", "negative_prompt_sr"})


def _check_search_terms(base: dict[str, Any], dimensions: list[Dimension], problems: list[Problem]) -> None:
    """S/R terms missing from the base prompts, found before the cells are made so that they are
    reported with the other problems (the cells' check finds the rest, once nothing else is wrong).
    Only where no other axis sets the prompts' text, which might bring the term in."""
    axes = [(axis, field, values) for d in dimensions for axis, field, values in zip(d.axes, d.fields, d.values)]
    for axis, field, values in axes:
        if axis.param not in ("prompt_sr", "negative_prompt_sr") or not values:
            continue
        if any(other is not axis and other.param in _TEXT_SETTERS for other, _, _ in axes):
            continue
        targets = ["negative_prompt"] if axis.param == "negative_prompt_sr" else ["prompt", "negative_prompt"]
        term = str(values[0])
        if not any(term in str(base.get(t) or "") for t in targets):
            where = "negative prompt" if axis.param == "negative_prompt_sr" else "prompt or negative prompt"
            problem = Problem(f"{field}.values", term, f"search term not found in the {where}")
            if problem not in problems:
                problems.append(problem)


def _check_matrix_targets(spec: Spec, problems: list[Problem]) -> None:
    """A prompt matrix replaces its whole target text, so nothing else may set that text per cell."""
    setters: dict[str, int] = {}
    for index, axis in enumerate(spec.axes):
        target = axis.options.get("target", "prompt") if axis.param == "prompt_matrix" else axis.param
        if target not in ("prompt", "negative_prompt"):
            continue
        if target in setters and "prompt_matrix" in (axis.param, spec.axes[setters[target]].param):
            message = f"axes[{setters[target]}] also sets the whole {target}; a prompt matrix replaces it"
            problems.append(Problem(f"axes[{index}].param", axis.param, message))
        setters.setdefault(target, index)


def _parse_axis(
    index: int, axis: AxisSpec, caps: Capabilities, base: dict[str, Any], problems: list[Problem]
) -> tuple[list[Any], list[str]] | None:
    where = f"axes[{index}]"
    try:
        definition = param_def(axis.param, f"{where}.param")
    except SpecError as exc:
        problems.extend(exc.problems)
        return None
    if not check_axis_support(definition, caps, f"{where}.param", problems):
        return None
    if definition.name == "prompt_matrix":
        return _matrix_values(axis, base, where, problems)
    try:
        values = parse_values(axis.values, _parse_kind(definition), f"{where}.values")
    except SpecError as exc:
        problems.extend(exc.problems)
        return None
    before = len(problems)
    for value in values:
        check_value(definition, value, f"{where}.values", caps, problems)
    if len(problems) > before:
        return None
    values = [canonical_value(definition, v, caps) for v in values]
    return values, [format_value(v) for v in values]


def _parse_kind(definition: ParamDef) -> str:
    if definition.kind == "styles":
        return "str"
    if definition.name.startswith("setting:") or definition.name.startswith("host:"):
        return "str"
    return definition.kind


def _matrix_values(
    axis: AxisSpec, base: dict[str, Any], where: str, problems: list[Problem]
) -> tuple[list[Any], list[str]] | None:
    from sd_sweep.core.prompts import prompt_matrix

    target = axis.options.get("target", "prompt")
    text = axis.values if axis.values is not None else base.get(target, "")
    if isinstance(text, list) and len(text) == 1:
        text = text[0]
    if not isinstance(text, str) or "|" not in text:
        problems.append(
            Problem(f"{where}.values", text, f"a prompt matrix needs a {target} with parts separated by '|'")
        )
        return None
    try:
        variants = prompt_matrix(
            text, at_start=bool(axis.options.get("at_start", False)), delimiter=axis.options.get("delimiter", "comma")
        )
    except ValueError as exc:
        problems.append(Problem(f"{where}.values", text, str(exc)))
        return None
    optional = [part.strip().strip(",") for part in text.split("|")[1:]]
    labels = []
    for mask in range(len(variants)):
        included = [part for n, part in enumerate(optional) if mask & (1 << n)]
        labels.append(" + ".join(included) if included else "(base)")
    return variants, labels


def _check_layout(spec: Spec, dimensions: list[Dimension], problems: list[Problem]) -> None:
    _resolve_layout_params(spec, dimensions)
    names = {d.name for d in dimensions} | {a.name for d in dimensions for a in d.axes}
    for key in ("x", "y"):
        value = getattr(spec.layout, key)
        if value is not None and value not in names:
            problems.append(Problem(f"layout.{key}", value, f"not an axis name; axes: {sorted(names)}"))
    problems.extend(
        Problem("layout.page", value, f"not an axis name; axes: {sorted(names)}")
        for value in spec.layout.page
        if value not in names
    )
    dimension_of = {a.name: d.name for d in dimensions for a in d.axes} | {d.name: d.name for d in dimensions}
    chosen = [v for v in (spec.layout.x, spec.layout.y, *spec.layout.page) if v is not None]
    placed = [dimension_of.get(v, v) for v in chosen]
    if len(placed) != len(set(placed)):
        problems.append(Problem("layout", chosen, "an axis (or zip group) may appear only once in the layout"))


def _resolve_layout_params(spec: Spec, dimensions: list[Dimension]) -> None:
    """Layout entries that name an axis by its parameter (canonical or as written, an alias such as
    ``sd_model_checkpoint``) become that axis's name; a name of an axis or group wins, and a parameter
    swept by several axes stays ambiguous (refused as not an axis name)."""
    names = {d.name for d in dimensions} | {a.name for d in dimensions for a in d.axes}
    by_param: dict[str, set[str]] = {}
    for dimension in dimensions:
        for axis in dimension.axes:
            for spelling in {axis.param, axis.written_param or axis.param}:
                by_param.setdefault(spelling, set()).add(axis.name)

    def resolved(value: str | None) -> str | None:
        if value is None or value in names:
            return value
        found = by_param.get(value, set())
        return next(iter(found)) if len(found) == 1 else value

    layout = spec.layout
    layout.x, layout.y = resolved(layout.x), resolved(layout.y)
    layout.page = [resolved(value) or value for value in layout.page]


def _resolve_random_seeds(
    base: dict[str, Any], dimensions: list[Dimension], resolutions: dict[str, int], rng: random.Random
) -> None:
    for name in ("seed", "subseed"):
        if base.get(name, -1 if name == "seed" else None) == -1:
            resolutions.setdefault(f"base.{name}", rng.randrange(RANDOM_SEED_LIMIT))
    for dimension in dimensions:
        for axis, values in zip(dimension.axes, dimension.values):
            if axis.param not in ("seed", "subseed"):
                continue
            for i, value in enumerate(values):
                if value == -1:
                    resolutions.setdefault(random_seed_key(axis.param, values, i), rng.randrange(RANDOM_SEED_LIMIT))


def _expand_cells(
    spec: Spec,
    base: dict[str, Any],
    dimensions: list[Dimension],
    resolutions: dict[str, int],
    problems: list[Problem],
    implicit: dict[str, str],
) -> tuple[list[Cell], list[BatchKey]]:
    """The cells in display order, and the batch key of each."""
    resolver = CellResolver(base, resolutions)
    contexts: dict[frozenset[str], str] = {}
    steps = [
        [
            resolver.prepare([Assignment(a, where, i, values) for a, where, values in zip(d.axes, d.fields, d.values)])
            for i in range(d.length)
        ]
        for d in dimensions
    ]
    names = [d.name for d in dimensions]
    labels = [d.labels for d in dimensions]
    cells: list[Cell] = []
    keys: list[BatchKey] = []
    seen_ids: dict[str, int] = {}
    combos = zip(
        itertools.product(*(range(d.length) for d in dimensions)), itertools.product(*steps), itertools.product(*labels)
    )
    for index, (combo, values, texts) in enumerate(combos):
        resolved = resolver.resolve(values, problems)
        if resolved is None:
            continue
        cells.append(
            Cell(
                id=_cell_id(resolved.identity + _implicit_text(implicit, resolved.params, contexts), seen_ids),
                index=index,
                coords=dict(zip(names, combo)),
                labels=dict(zip(names, texts)),
                params=resolved.params,
            )
        )
        keys.append(resolved.batch_key)
    return cells, keys


def _implicit_text(implicit: dict[str, str], params: dict[str, Any], cache: dict[frozenset[str], str]) -> str:
    """The backend's implicit state for the parameters this cell leaves unset, as text for its id."""
    if not implicit:
        return ""
    unset = frozenset(name for name in implicit if name not in params)
    if unset not in cache:
        cache[unset] = "\n" + json.dumps({name: implicit[name] for name in sorted(unset)}) if unset else ""
    return cache[unset]


def _cell_id(identity: str, seen: dict[str, int]) -> str:
    """A stable id from what defines the cell's image, so a re-plan finds finished cells.

    ``identity`` is the cell's parameters as sorted JSON, random seeds as symbols: the ids of
    existing run folders depend on exactly this text.
    """
    digest = hashlib.sha1(identity.encode()).hexdigest()[:12]
    count = seen.get(digest, 0)
    seen[digest] = count + 1
    return digest if count == 0 else f"{digest}-{count + 1}"


def _runs_alone(cells: list[Cell], caps: Capabilities, spec: Spec) -> list[bool]:
    """Which cells get a batch of their own because a batch would change their image.

    Only where the spec wants exact images (``limits.batch_exact``, the default) and batches at all;
    the backend says which cells a batch changes (``Capabilities.shares_batch``).
    """
    shares = caps.shares_batch
    if shares is None or spec.batch_size < 2 or not spec.limits.batch_exact:
        return [False] * len(cells)
    return [not shares(cell.params) for cell in cells]


def _first_pass_keys(cells: list[Cell], caps: Capabilities, spec: Spec, alone: list[bool]) -> list[str | None]:
    """The backend's first-pass key of each cell whose first pass it can reuse, else None.

    The WebUI reuses one first-pass image (its ``firstpass_image``), so there only cells in batches
    of one share it: every cell where ``batch_size`` is 1, else those that run alone. A backend with
    ``batch_first_passes`` reuses the first passes of whole batches too.
    """
    key_of = caps.first_pass_key
    if key_of is None:
        return [None] * len(cells)
    every = spec.batch_size < 2 or caps.batch_first_passes
    return [key_of(cell.params) if every or alone[i] else None for i, cell in enumerate(cells)]


def batch_first_pass_key(batch: list[Cell], first_pass_keys: dict[str, str]) -> tuple[str, ...] | None:
    """The first-pass keys of a batch's images in order (``Plan.first_pass_keys``), or None where
    one of them has none: batches with the same key can share their first passes."""
    keys = tuple(first_pass_keys.get(cell.id) for cell in batch)
    return None if None in keys else keys  # type: ignore[return-value]


def _first_pass_batches_together(batches: list[list[Cell]], first_pass_keys: dict[str, str]) -> list[list[Cell]]:
    """Move each batch next to the first batch with its first-pass key, so their first passes are
    made once; the rest keep their order.

    Batches that share the key share the checkpoint and VAE too (the key holds everything the first
    pass reads), so the moves add no model switch.
    """
    rank: dict[Any, int] = {}
    ranks = []
    for position, batch in enumerate(batches):
        key = batch_first_pass_key(batch, first_pass_keys)
        ranks.append(rank.setdefault(("position", position) if key is None else key, len(rank)))
    return [batches[i] for i in sorted(range(len(batches)), key=ranks.__getitem__)]


def first_pass_groups(plan: Plan, caps: Capabilities) -> dict[str, list[str]]:
    """The plan's first-pass groups of more than one batch: their names (``first_pass_group_name``)
    and cell ids."""
    groups: dict[str, list[str]] = {}
    batches: dict[str, int] = {}
    for ids in plan.batches:
        name = first_pass_group_name(caps, [plan.cell(i) for i in ids], plan.first_pass_keys)
        if name is not None:
            groups.setdefault(name, []).extend(ids)
            batches[name] = batches.get(name, 0) + 1
    return {name: ids for name, ids in groups.items() if batches[name] > 1}


def first_pass_group_name(caps: Capabilities, batch: list[Cell], first_pass_keys: dict[str, str]) -> str | None:
    """The name of the first-pass group of ``batch``, or None: a digest of its first-pass keys and
    the backend's implicit state, so another checkpoint makes another name."""
    key = batch_first_pass_key(batch, first_pass_keys)
    if key is None:
        return None
    context = json.dumps({"backend": caps.name, "implicit": caps.implicit}, sort_keys=True)
    return hashlib.sha1("\n".join((context, *key)).encode()).hexdigest()[:16]


def batch_keys(cells: list[Cell]) -> list[BatchKey]:
    """The batch key of each cell; cells with equal keys may share one generation call."""
    encoder = ParamsEncoder()
    return [encoder.encode(c.params)[1] for c in cells]


def execution_order(cells: list[Cell], keys: list[BatchKey] | None = None) -> list[Cell]:
    """Order cells so checkpoint, then VAE, then other switches happen as rarely as possible.

    Each level is ordered by first appearance in display order, so the run still follows
    the display order as closely as the switches allow. ``keys`` are the cells' batch keys
    where already known.
    """
    return [cells[i] for i in _execution_order(cells, keys if keys is not None else batch_keys(cells))]


def _execution_order(cells: list[Cell], keys: list[BatchKey], first_keys: list[str | None] | None = None) -> list[int]:
    """The positions of ``cells`` in execution order.

    Cells sharing a first pass (``first_keys``) follow each other, so the backend keeps one
    first-pass image at a time; the others are ranked by batch key as always.
    """
    switch_params = sorted((d for d in PARAMS.values() if d.switch_cost), key=lambda d: -d.switch_cost)
    levels: list[tuple[dict[str, int], str]] = [({}, d.name) for d in switch_params]
    group_rank: dict[Any, int] = {}
    batch_rank: dict[BatchKey, int] = {}
    item = ParamsEncoder().item
    ranks = []
    firsts = first_keys if first_keys is not None else [None] * len(cells)
    for cell, key, first in zip(cells, keys, firsts):
        params = cell.params
        rank = [seen.setdefault(item(name, params.get(name)), len(seen)) for seen, name in levels]
        rank.append(group_rank.setdefault(key if first is None else ("first pass", first), len(group_rank)))
        rank.append(batch_rank.setdefault(key, len(batch_rank)))
        rank.append(cell.index)
        ranks.append(rank)
    return sorted(range(len(cells)), key=ranks.__getitem__)


def make_batches(ordered: list[Cell], batch_size: int, keys: list[BatchKey] | None = None) -> list[list[Cell]]:
    """Consecutive cells with equal batch keys, at most ``batch_size`` a batch; ``keys`` in ``ordered``'s order."""
    batches: list[list[Cell]] = []
    current_key = None
    for cell, key in zip(ordered, keys if keys is not None else batch_keys(ordered)):
        if batches and key == current_key and len(batches[-1]) < batch_size:
            batches[-1].append(cell)
        else:
            batches.append([cell])
            current_key = key
    return batches


def estimate(
    cells: list[Cell],
    batches: list[list[Cell]],
    *,
    shares_batch: Callable[[dict[str, Any]], bool] | None = None,
    first_pass_keys: dict[str, str] | None = None,
    first_pass_unreused: Callable[[dict[str, Any]], tuple[str, str] | None] | None = None,
) -> dict[str, Any]:
    """What running ``batches`` (in order) costs, and how many images a batch may change.

    ``first_pass_keys`` (cell id -> key) are the cells whose first pass the backend reuses while
    consecutive cells share the key; ``shares_batch`` is the backend's rule for ``batch_inexact``:
    images made in a batch of several that the batch may change (their infotext says so).
    ``first_pass_not_reused`` (only where there are any) counts the cells that share a first pass
    with another cell but make it themselves, by the backend's reason (``first_pass_unreused``).
    """
    inexact = 0
    if shares_batch is not None:
        inexact = sum(1 for batch in batches if len(batch) > 1 for cell in batch if not shares_batch(cell.params))
    costs = batch_costs(batches, first_pass_keys)
    result = {
        "cells": len(cells),
        "images": len(cells),
        "batches": len(batches),
        "sampling_steps": sum(c[0] for c in costs),
        "first_passes": sum(c[1] for c in costs),
        "second_passes": sum(c[2] for c in costs),
        "batch_inexact": inexact,
        "checkpoint_loads": _switches(batches, "checkpoint"),
        "vae_loads": _switches(batches, "vae"),
    }
    if first_pass_unreused is not None and (unreused := unreused_first_passes(cells, first_pass_unreused)):
        result["first_pass_not_reused"] = unreused
    return result


def unreused_first_passes(
    cells: list[Cell], unreused: Callable[[dict[str, Any]], tuple[str, str] | None]
) -> list[dict[str, Any]]:
    """``[{"cells": 4, "why": ...}]``: the cells that share their first pass with another cell and
    still make it themselves, by reason (``unreused`` is ``Capabilities.first_pass_unreused``)."""
    groups: dict[tuple[str, str], int] = {}
    for cell in cells:
        found = unreused(cell.params)
        if found is not None:
            groups[found] = groups.get(found, 0) + 1
    counts: dict[str, int] = {}
    for (_, why), count in groups.items():
        if count > 1:
            counts[why] = counts.get(why, 0) + count
    return [{"cells": count, "why": why} for why, count in counts.items()]


def batch_costs(
    batches: list[list[Cell]],
    first_pass_keys: dict[str, str] | None = None,
    kept: frozenset[int] = frozenset(),
) -> list[tuple[int, int, int]]:
    """``(sampling steps, first passes, second passes)`` of each batch, run in this order.

    A hires batch's first passes are counted where they are made: not for a batch that follows
    another with the same first-pass key (``batch_first_pass_key``), which reuses them, nor for the
    batches numbered in ``kept``, whose first passes the run folder holds. The hires pass samples
    ``hr_second_pass_steps`` (or ``steps``) steps, as the WebUI's does.
    """
    fp_keys = first_pass_keys or {}
    costs = []
    last_key: tuple[str, ...] | None = None
    for number, batch in enumerate(batches):
        key = batch_first_pass_key(batch, fp_keys)
        made = number in kept or (key is not None and key == last_key)
        last_key = key
        steps = first_passes = second_passes = 0
        for cell in batch:
            params = cell.params
            first_steps = int(params.get("steps", 20))
            if not params.get("enable_hr"):
                steps += first_steps
                continue
            second_passes += 1
            steps += int(params.get("hr_second_pass_steps") or params.get("steps", 20))
            if not made:
                first_passes += 1
                steps += first_steps
        costs.append((steps, first_passes, second_passes))
    return costs


def _switches(batches: list[list[Cell]], name: str) -> int:
    values = [batch[0].params.get(name) for batch in batches]
    changes = sum(1 for a, b in itertools.pairwise(values) if a != b)
    return changes + (1 if values and values[0] is not None else 0)
