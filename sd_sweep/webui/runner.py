"""Run a sweep inside the WebUI: the body of ``Script.run``.

Called with the caller's ``queue_lock`` held and ``state.begin()`` done (by the WebUI's txt2img/img2img
handlers and by ``/sdapi/v1/*2img``); this never takes the lock or calls ``state.begin/end``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sd_sweep.backends.webui import session
from sd_sweep.core.errors import Problem, SpecError, SweepError
from sd_sweep.core.params import PARAMS
from sd_sweep.core.resolve import coerce_base
from sd_sweep.core.run import RunResult
from sd_sweep.core.spec import Spec, parse_text, spec_from_dict
from sd_sweep.core.values import parse_values

log = logging.getLogger("sd_sweep.webui")

SPEC_FIELD = "spec"


class SweepInputError(RuntimeError):
    """The sweep given to the script is invalid; the message lists every problem (field and value)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"- {p}" for p in problems)
        super().__init__(f"the sweep is invalid ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n{lines}")


def spec_document(spec_input: Any) -> dict[str, Any]:
    """The spec as a mapping, from YAML/JSON text (the UI and ``script_args[0]``) or a mapping (raw API JSON)."""
    if isinstance(spec_input, dict):
        return dict(spec_input)
    if spec_input is None or (isinstance(spec_input, str) and not spec_input.strip()):
        raise SpecError.single(SPEC_FIELD, spec_input, "empty: add at least one axis (or paste a spec)")
    if not isinstance(spec_input, str):
        raise SpecError.single(SPEC_FIELD, spec_input, "must be YAML or JSON text, or a JSON object")
    return parse_text(spec_input, SPEC_FIELD)


def effective_document(document: dict[str, Any], ui_base: dict[str, Any], default_max_cells: int) -> dict[str, Any]:
    """The spec with the WebUI's values as its base; base values written in the spec win."""
    from sd_sweep.core.params import canonical_name

    doc = dict(document)
    spec_base = doc.get("base") or {}
    if not isinstance(spec_base, dict):
        return doc  # spec_from_dict reports it
    base = dict(ui_base)
    for key, value in spec_base.items():
        name = canonical_name(str(key))
        if name == "size":
            base.pop("width", None)
            base.pop("height", None)
        base[name] = value
    doc["base"] = base
    limits = doc.get("limits")
    if limits is None:
        doc["limits"] = {"max_cells": int(default_max_cells)}
    return doc


def load_effective_spec(spec_input: Any, ui_base: dict[str, Any], default_max_cells: int) -> Spec:
    return spec_from_dict(effective_document(spec_document(spec_input), ui_base, default_max_cells))


def run_folder(root: str | Path, spec: Spec, random_seeds: bool) -> Path:
    """The run folder of a sweep: the latest folder named after it (``NAME``, then ``NAME-2``, ...).

    A run folder is a cache of cells keyed by what makes each image, so an edited sweep (a grown or
    added axis, another layout) continues in it and generates only the cells it lacks; the seeds a
    seed of -1 drew there are kept, so the earlier images stay valid. Generating the very same sweep
    again after it finished with random seeds asks for new images, as the WebUI does with -1: the
    next numbered folder is started. With fixed seeds the same sweep again reuses every cell.
    """
    latest = latest_run_folder(root, spec.name)
    if random_seeds and _finished_with(latest, spec):
        return _numbered(Path(root), spec.name, _number(latest, spec.name) + 1)
    return latest


def latest_run_folder(root: str | Path, name: str) -> Path:
    """``root/NAME`` or its highest-numbered sibling ``root/NAME-N`` that holds a run."""
    root = Path(root)
    numbers = [1]
    try:
        entries = list(root.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        match = re.fullmatch(re.escape(name) + r"-(\d+)", entry.name)
        if match and int(match.group(1)) > 1 and _holds_run(entry):
            numbers.append(int(match.group(1)))
    return _numbered(root, name, max(numbers))


def _holds_run(folder: Path) -> bool:
    from sd_sweep.core.store import RunStore

    try:
        return RunStore.read_state(folder) is not None
    except SweepError:
        return True  # a damaged run is still that folder's; run_sweep says what is wrong


def _numbered(root: Path, name: str, number: int) -> Path:
    return root / (name if number == 1 else f"{name}-{number}")


def _number(folder: Path, name: str) -> int:
    return 1 if folder.name == name else int(folder.name.rsplit("-", 1)[1])


def _finished_with(folder: Path, spec: Spec) -> bool:
    """Whether the folder's last run finished the very same effective spec (nothing edited since)."""
    from sd_sweep.core.store import RunStore

    try:
        state = RunStore.read_state(folder)
        return bool(state) and state.get("state") == "finished" and RunStore.open(folder).spec == spec.source
    except SweepError:
        return False  # run_sweep reports the damaged folder


def has_random_seeds(spec: Spec) -> bool:
    """Whether the sweep draws seeds: a base seed of -1 (the WebUI's default) or -1 among the values of a
    seed or subseed axis (a base subseed of -1 only counts where a subseed strength makes it matter)."""
    base = coerce_base(spec.base, [])
    if base.get("seed", -1) == -1:
        return True
    strength = base.get("subseed_strength") or any(a.param == "subseed_strength" for a in spec.axes)
    if base.get("subseed") == -1 and strength:
        return True
    for axis in spec.axes:
        if axis.param in ("seed", "subseed"):
            try:
                values = parse_values(axis.values, "int", axis.name)
            except SpecError:
                continue
            if -1 in values:
                return True
    return False


@dataclass
class SweepOutcome:
    result: RunResult
    grids: list[Any] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)
    infotexts: list[str] = field(default_factory=list)
    grid_infotexts: list[str] = field(default_factory=list)


def run_in_webui(p: Any, spec_input: Any, *, is_img2img: bool) -> Any:
    """Run the sweep described by ``spec_input`` on top of ``p``; return a ``Processed``.

    Invalid input raises ``SweepInputError`` (every problem, naming field and value) before any image.
    """
    from modules import processing, shared
    from sd_sweep.backends.webui import settings
    from sd_sweep.backends.webui.backend import WebUIBackend, WebUIStopSignal, base_from_p
    from sd_sweep.core.planner import build_plan

    try:
        spec = load_effective_spec(spec_input, base_from_p(p, is_img2img), settings.get("sweep_max_cells"))
        random_seeds = has_random_seeds(spec)
        run_dir = run_folder(settings.runs_dir(), spec, random_seeds)
        backend = WebUIBackend(p, is_img2img=is_img2img, save_samples=bool(settings.get("sweep_save_samples")))
        plan = build_plan(spec, backend.capabilities(), seed_resolutions=_recorded_seeds(run_dir))
        backend.check_plan(plan)
    except SpecError as exc:
        raise SweepInputError(exc.problems) from None
    try:
        result = session.run_in_session(backend, plan, run_dir, WebUIStopSignal(shared.state))
    except SpecError as exc:
        raise SweepInputError(exc.problems) from None
    except SweepError as exc:
        msg = f"the sweep stopped: {exc}. Finished images are kept in {run_dir}; run the same sweep again to continue."
        raise RuntimeError(msg) from exc
    outcome = collect(result)
    _save_grids_like_webui(p, outcome, is_img2img)
    return make_processed(p, outcome, processing, random_seeds=random_seeds)


def _recorded_seeds(run_dir: Path) -> dict[str, int]:
    """The random seeds the run folder drew before, so the run is planned once, with them."""
    from sd_sweep.core.store import RunStore

    try:
        return RunStore.open(run_dir).seed_resolutions
    except SweepError:
        return {}  # a damaged folder: the run itself reports it


def collect(result: RunResult) -> SweepOutcome:
    """Grids then every finished image (display order), loaded from the run folder, with infotexts."""
    from PIL import Image

    from sd_sweep.core.store import RunStore

    store = RunStore.open(result.run_dir)
    outcome = SweepOutcome(result=result)
    for cell in result.plan.cells:
        path = store.image_path(cell.id)
        if path is None:
            continue
        image = _load(Image, path)
        text = store.cells[cell.id].get("infotext") or ""
        image.info["parameters"] = text
        outcome.images.append(image)
        outcome.infotexts.append(text)
    head = outcome.infotexts[0] if outcome.infotexts else ""
    for path in result.grids:
        grid = _load(Image, path)
        text = _grid_infotext(head, result)
        grid.info["parameters"] = text
        outcome.grids.append(grid)
        outcome.grid_infotexts.append(text)
    return outcome


def _load(image_module: Any, path: Path) -> Any:
    with image_module.open(path) as handle:
        image = handle.copy()
    image.already_saved_as = str(path)  # the gallery serves this file instead of a temp copy
    return image


def _grid_infotext(first: str, result: RunResult) -> str:
    axes = ", ".join(d.title for d in result.plan.dimensions)
    extra = f"Script: Sweep, Sweep run: {result.run_dir.name}" + (f", Sweep axes: {json.dumps(axes)}" if axes else "")
    if not first:
        return extra
    return f"{first}, {extra}"


def _save_grids_like_webui(p: Any, outcome: SweepOutcome, is_img2img: bool) -> None:
    """Save the grids where the user's grid settings say (``grid_save``, grid folder and format)."""
    from modules import images, shared

    opts = shared.opts
    if not outcome.grids or not getattr(opts, "grid_save", False) or getattr(p, "do_not_save_grid", False):
        return
    path = getattr(p, "outpath_grids", None) or getattr(
        opts, "outdir_img2img_grids" if is_img2img else "outdir_txt2img_grids", None
    )
    if not path:
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    for grid, text in zip(outcome.grids, outcome.grid_infotexts):
        try:
            images.save_image(
                grid, path, "sweep", extension=getattr(opts, "grid_format", "png"), info=text, grid=True, p=p
            )
        except Exception:  # noqa: PERF203 - one failed grid must not lose the others
            log.exception("sd-webui-sweep: could not save a grid in %s", path)


def make_processed(p: Any, outcome: SweepOutcome, processing: Any, *, random_seeds: bool = False) -> Any:
    images = [*outcome.grids, *outcome.images]
    infotexts = [*outcome.grid_infotexts, *outcome.infotexts]
    result = outcome.result
    cells = [c for c in result.plan.cells if c.id in set(result.generated) | set(result.reused)]
    prompts = [c.params.get("prompt", "") for c in cells]
    negatives = [c.params.get("negative_prompt", "") for c in cells]
    seeds = [int(c.params.get("seed", -1)) for c in cells]
    pad = len(outcome.grids)
    first_prompt = prompts[:1] * pad
    processed = processing.Processed(
        p,
        images,
        seed=seeds[0] if seeds else -1,
        info=infotexts[0] if infotexts else "",
        all_prompts=first_prompt + prompts or None,
        all_negative_prompts=negatives[:1] * pad + negatives or None,
        all_seeds=seeds[:1] * pad + seeds or None,
        index_of_first_image=pad,
        infotexts=infotexts or None,
    )
    # Processed(comments=...) is ignored: it reads p.comments
    processed.comments = summary_comment(result, random_seeds=random_seeds)
    if not hasattr(processed, "extra_images"):
        processed.extra_images = []  # Forge's UI and API append these
    return processed


def summary_comment(result: RunResult, *, random_seeds: bool = False) -> str:
    """The line under the gallery: what was generated, what the run folder already had, and where it is."""
    total = len(result.plan.cells)
    parts = [f"Sweep {result.state}: {len(result.generated)} new, {len(result.reused)} reused from the run folder"]
    if result.skipped:
        parts.append(f"{len(result.skipped)} skipped")
    missing = total - len(result.generated) - len(result.reused)
    if missing > 0:
        parts.append(f"{missing} of {total} cells not generated yet (run the same sweep again to continue)")
    parts.append(f"run folder: {result.run_dir}")
    if result.stale:
        images = f"{result.stale} image{'s' if result.stale != 1 else ''}"
        parts.append(f"it keeps {images} of earlier versions of the sweep (python -m sd_sweep prune removes them)")
    if random_seeds:
        parts.append(
            "seed -1: editing the sweep keeps the seeds drawn in this folder; "
            "the same sweep again draws new seeds in a new folder"
        )
    return "; ".join(parts)


def check_spec(spec_input: Any, ui_base: dict[str, Any] | None, *, is_img2img: bool) -> dict[str, Any]:
    """Validate and plan without generating: the UI's live summary. Never raises for bad input."""
    from sd_sweep.core.planner import build_plan

    try:
        from sd_sweep.backends.webui import settings
        from sd_sweep.backends.webui.backend import WebUIBackend

        max_cells = settings.get("sweep_max_cells")
        spec = load_effective_spec(spec_input, ui_base or {}, max_cells)
        backend = WebUIBackend(session.ValidationOnlyP(ui_base or {}), is_img2img=is_img2img)
        plan = build_plan(spec, backend.capabilities())
        backend.check_plan(plan)
    except SpecError as exc:
        return {"ok": False, "errors": [p.as_dict() for p in exc.problems], "estimate": None}
    except Exception as exc:
        log.debug("sweep summary failed", exc_info=True)
        return {
            "ok": False,
            "errors": [{"field": SPEC_FIELD, "value": None, "message": f"{type(exc).__name__}: {exc}"}],
            "estimate": None,
        }
    return {
        "ok": True,
        "errors": [],
        "estimate": plan.estimate,
        "dimensions": [d.as_dict() for d in plan.dimensions],
        "name": spec.name,
    }


KNOWN_PARAMS = tuple(PARAMS)
