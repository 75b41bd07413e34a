"""Drive a backend through a plan, saving every finished batch before the next starts."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.core.errors import BackendError, UsageError
from sd_sweep.core.plan import Cell, Plan
from sd_sweep.core.planner import build_plan, first_pass_group_name, first_pass_groups
from sd_sweep.core.ports import Backend, Capabilities, GeneratedImage, GenerationRequest, KeptFirstPass, StopSignal
from sd_sweep.core.store import RunStore

if TYPE_CHECKING:
    from sd_sweep.core.spec import Spec

DEFAULT_PIXEL_BUDGET = 64_000_000


class RunObserver:
    """Receives a run's progress; every method is optional."""

    def started(self, plan: Plan, todo: list[list[Cell]], first_passes_kept: frozenset[int] = frozenset()) -> None:
        """The run makes ``todo``; the batches numbered in ``first_passes_kept`` continue first passes
        the run folder kept from an earlier run, so they sample only their hires passes."""

    def batch_assigned(self, number: int, cells: list[Cell], worker: str) -> None:
        """A dispatcher handed batch ``number`` to ``worker`` (before ``batch_started``)."""

    def batch_started(self, number: int, cells: list[Cell]) -> None: ...

    def step(self, step: int, total: int) -> None: ...

    def batch_finished(self, number: int, cells: list[Cell], saved: int) -> None: ...

    def finished(self, result: RunResult) -> None: ...


class ObserverGroup(RunObserver):
    """Hands every event of a run to each of ``observers``, in order."""

    def __init__(self, *observers: RunObserver) -> None:
        self.observers = observers

    def started(self, plan: Plan, todo: list[list[Cell]], first_passes_kept: frozenset[int] = frozenset()) -> None:
        for observer in self.observers:
            observer.started(plan, todo, first_passes_kept)

    def batch_assigned(self, number: int, cells: list[Cell], worker: str) -> None:
        for observer in self.observers:
            observer.batch_assigned(number, cells, worker)

    def batch_started(self, number: int, cells: list[Cell]) -> None:
        for observer in self.observers:
            observer.batch_started(number, cells)

    def step(self, step: int, total: int) -> None:
        for observer in self.observers:
            observer.step(step, total)

    def batch_finished(self, number: int, cells: list[Cell], saved: int) -> None:
        for observer in self.observers:
            observer.batch_finished(number, cells, saved)

    def finished(self, result: RunResult) -> None:
        for observer in self.observers:
            observer.finished(result)


@dataclass
class RunResult:
    run_dir: Path
    plan: Plan
    state: str
    """finished, interrupted or failed."""
    generated: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    grids: list[Path] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    stale: int = 0
    """Finished images in the folder that are not cells of this plan (``python -m sd_sweep prune``)."""

    def image_paths(self) -> list[Path]:
        """Every image of the plan that is on disk, in display order."""
        store = RunStore.open(self.run_dir)
        paths = (store.image_path(c.id) for c in self.plan.cells)
        return [p for p in paths if p is not None]


def describe_cell(plan: Plan, cell: Cell) -> str:
    """``CFG scale 7, Sampler Euler a``: the cell's axis values, for progress text."""
    titles = {d.name: d.title for d in plan.dimensions}
    return ", ".join(f"{titles[name]} {label}" for name, label in cell.labels.items())


def request_for(batch: list[Cell], plan: Plan, first_pass: KeptFirstPass | None = None) -> GenerationRequest:
    shared = {k: v for k, v in batch[0].params.items() if k not in ("prompt", "negative_prompt", "seed")}
    return GenerationRequest(
        params=shared,
        prompts=[c.params["prompt"] for c in batch],
        negative_prompts=[c.params["negative_prompt"] for c in batch],
        seeds=[int(c.params["seed"]) for c in batch],
        cell_ids=[c.id for c in batch],
        cell_labels=[describe_cell(plan, c) for c in batch],
        first_pass=first_pass,
    )


class KeptFirstPasses:
    """The run's first-pass groups (``planner.first_pass_groups``) and their first passes kept in the
    run folder: each request of a group gets its ``KeptFirstPass``, and what the backend kept is
    deleted once every cell of the group is saved.

    Kept first passes of groups that are finished or not in the plan are deleted at the start.
    """

    def __init__(self, store: RunStore, plan: Plan, caps: Capabilities, done: set[str]) -> None:
        groups = first_pass_groups(plan, caps)
        self._store = store
        self._first_pass_keys = plan.first_pass_keys
        self._caps = caps
        self._group_of = {cell_id: name for name, ids in groups.items() for cell_id in ids}
        self._left = {name: {i for i in ids if i not in done} for name, ids in groups.items()}
        self._lock = threading.Lock()
        finished = {name for name, left in self._left.items() if not left}
        store.drop_first_passes((store.kept_first_passes() - set(self._left)) | finished)

    def _group(self, batch: list[Cell]) -> str | None:
        name = first_pass_group_name(self._caps, batch, self._first_pass_keys)
        return name if name is not None and name in self._left else None

    def for_batch(self, batch: list[Cell]) -> KeptFirstPass | None:
        name = self._group(batch)
        return None if name is None else self._store.kept_first_pass(name)

    def already_made(self, todo: list[list[Cell]]) -> frozenset[int]:
        """The numbers of the ``todo`` batches whose first passes the run folder already holds."""
        saved = self._store.kept_first_passes()
        return frozenset(n for n, batch in enumerate(todo) if self._group(batch) in saved)

    def saved(self, cell_ids: Iterable[str]) -> None:
        finished = []
        with self._lock:
            for cell_id in cell_ids:
                name = self._group_of.get(cell_id)
                left = self._left.get(name) if name is not None else None
                if left and cell_id in left:
                    left.discard(cell_id)
                    if not left:
                        finished.append(name)
        if finished:
            self._store.drop_first_passes(finished)


class BatchSink:
    """Where a ``Dispatcher`` reports batches: saved in the run folder as they finish, in any order.

    Called from one thread (the dispatcher's); ``finished`` hands the images to the run's saver.
    """

    def __init__(self, saver: BackgroundSaver, observer: RunObserver, stop: StopSignal, result: RunResult) -> None:
        self._saver = saver
        self._observer = observer
        self._stop = stop
        self._result = result
        self._in_flight: dict[int, list[Cell]] = {}

    def started(self, number: int, cells: list[Cell], worker: str) -> None:
        self._in_flight[number] = cells
        self._observer.batch_assigned(number, cells, worker)
        self._observer.batch_started(number, cells)

    def returned(self, number: int) -> None:
        """Batch ``number`` went back to the queue unfinished (its worker was lost)."""
        self._in_flight.pop(number, None)

    def finished(self, number: int, cells: list[Cell], images: list[GeneratedImage]) -> None:
        self._in_flight.pop(number, None)
        if len(images) < len(cells) and not self._stop.interrupted:
            msg = f"a worker returned {len(images)} images for a batch of {len(cells)}"
            raise BackendError(msg)
        saved = cells[: len(images)]
        if saved:
            self._saver.submit(saved, images)
        self._result.generated.extend(c.id for c in saved)
        self._observer.batch_finished(number, cells, len(images))

    def in_flight(self) -> list[Cell]:
        return [cell for cells in self._in_flight.values() for cell in cells]


class Dispatcher(ABC):
    """Generates a run's batches somewhere else than in this thread (a pool of workers), in any order."""

    @abstractmethod
    def dispatch(self, plan: Plan, todo: list[list[Cell]], sink: BatchSink, stop: StopSignal) -> None:
        """Generate every batch of ``todo`` (``number`` is its index there), reporting each to ``sink``.

        Returns when every batch is finished, or once ``stop`` is interrupted and what was in flight
        has finished or was cancelled. Raises on an error that ends the run (after reporting every
        batch that did finish).
        """


def run_sweep(  # noqa: PLR0912, PLR0915 - one sequence: plan, begin, generate, save, grid, finish
    spec: Spec,
    backend: Backend,
    run_dir: Path | str,
    *,
    plan: Plan | None = None,
    observer: RunObserver | None = None,
    stop: StopSignal | None = None,
    draw_grids: bool = True,
    pixel_budget: int = DEFAULT_PIXEL_BUDGET,
    dispatcher: Dispatcher | None = None,
) -> RunResult:
    """Plan ``spec`` (reusing the run folder's seeds), generate what is missing, save and grid it.

    ``plan`` is ``spec``'s plan where the caller already made it and had the backend check it; it
    is run as it is unless the run folder drew other random seeds for it, then ``spec`` is planned
    again with the folder's seeds (so a resumed run regenerates the same images).

    Raises ``SpecError`` before anything is generated when the spec is invalid. A backend error
    stops the run after saving everything finished; the failed cells are retried next time.

    ``dispatcher`` generates the batches elsewhere (``backend`` then only plans and checks); the
    run folder, grids and resume are the same.
    """
    started = time.monotonic()
    observer = observer or RunObserver()
    stop = stop or StopSignal()
    if draw_grids and (isinstance(pixel_budget, bool) or not isinstance(pixel_budget, int) or pixel_budget < 1):
        raise UsageError(f"pixel_budget: must be a whole number of pixels, at least 1 (got {pixel_budget!r})")
    store = RunStore.open(run_dir)
    recorded = store.seed_resolutions
    if plan is None or any(recorded.get(key, seed) != seed for key, seed in plan.seed_resolutions.items()):
        plan = build_plan(spec, backend.capabilities(), seed_resolutions=recorded)
        backend.check_plan(plan)
    store.begin(plan, spec.source)
    done = store.done_ids()
    kept = KeptFirstPasses(store, plan, backend.capabilities(), done)
    todo = [[plan.cell(i) for i in batch if i not in done] for batch in plan.batches]
    todo = [batch for batch in todo if batch]
    result = RunResult(run_dir=Path(run_dir), plan=plan, state="finished")
    result.reused = [c.id for c in plan.cells if c.id in done]
    observer.started(plan, todo, kept.already_made(todo))
    current: list[Cell] = []
    sink: BatchSink | None = None
    try:
        with BackgroundSaver(store, on_saved=kept.saved) as saver:
            if dispatcher is not None:
                sink = BatchSink(saver, observer, stop, result)
                dispatcher.dispatch(plan, todo, sink, stop)
                todo_left: list[list[Cell]] = []
            else:
                todo_left = todo
            for number, current in enumerate(todo_left):
                if stop.interrupted:
                    result.state = "interrupted"
                    break
                _run_batch(number, current, plan, backend, saver, observer, stop, result, kept.for_batch(current))
            else:
                current = []
        if stop.interrupted and len(result.generated) + len(result.skipped) < sum(map(len, todo)):
            result.state = "interrupted"
    except KeyboardInterrupt:
        # A second Ctrl-C: what was saved stays, the batch in flight is generated again next time.
        store.finish("interrupted")
        raise
    except Exception as exc:
        if sink is not None:
            current = sink.in_flight()
        result.state = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
        store.record_failure([c.id for c in current if c.id not in result.generated], result.error)
        store.finish("failed")
        raise BackendError(result.error) from exc
    try:
        if draw_grids:
            from sd_sweep.core.sheets import render_run_grids

            try:
                result.grids = render_run_grids(store, pixel_budget=pixel_budget)
            except (ValueError, OSError) as exc:
                store.finish(result.state)
                msg = f"grids: not drawn ({exc}); the images are saved, redraw with python -m sd_sweep grid"
                raise UsageError(msg) from None
        result.stale = len(store.stale_ids(plan))
    except KeyboardInterrupt:
        store.finish("interrupted")
        raise
    store.finish(result.state)
    result.seconds = time.monotonic() - started
    observer.finished(result)
    return result


class BackgroundSaver:
    """Encodes and writes finished batches on one worker thread, so the next batch samples meanwhile.

    At most ``max_pending`` batches wait in memory; leaving the ``with`` block waits for every
    save, so nothing generated is lost, and re-raises the first save error.
    """

    def __init__(
        self, store: RunStore, max_pending: int = 2, on_saved: Callable[[list[str]], None] | None = None
    ) -> None:
        self._store = store
        self._on_saved = on_saved
        self._max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sd-sweep-save")
        self._pending: deque[Future[None]] = deque()

    def submit(self, cells: list[Cell], images: list[GeneratedImage]) -> None:
        while len(self._pending) >= self._max_pending:
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(self._save, cells, images))

    def _save(self, cells: list[Cell], images: list[GeneratedImage]) -> None:
        self._store.record_batch([(c.id, g.image, g.infotext) for c, g in zip(cells, images)])
        if self._on_saved is not None:
            self._on_saved([c.id for c in cells])

    def __enter__(self) -> BackgroundSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._executor.shutdown(wait=True)


def _run_batch(
    number: int,
    batch: list[Cell],
    plan: Plan,
    backend: Backend,
    saver: BackgroundSaver,
    observer: RunObserver,
    stop: StopSignal,
    result: RunResult,
    first_pass: KeptFirstPass | None = None,
) -> None:
    observer.batch_started(number, batch)
    images = backend.generate(request_for(batch, plan, first_pass), on_step=observer.step, stop=stop)
    if stop.consume_skip():
        result.skipped.extend(c.id for c in batch)
        observer.batch_finished(number, batch, 0)
        return
    if len(images) < len(batch) and not stop.interrupted:
        msg = f"{type(backend).__name__} returned {len(images)} images for a batch of {len(batch)}"
        raise BackendError(msg)
    saved = batch[: len(images)]
    saver.submit(saved, images)
    result.generated.extend(c.id for c in saved)
    observer.batch_finished(number, batch, len(images))


def summary(result: RunResult) -> dict[str, Any]:
    return {
        "run_dir": str(result.run_dir),
        "state": result.state,
        "generated": len(result.generated),
        "reused": len(result.reused),
        "skipped": len(result.skipped),
        "stale": result.stale,
        "grids": [str(p) for p in result.grids],
        "images": str(result.run_dir / "images"),
        "seconds": round(result.seconds, 2),
    }
