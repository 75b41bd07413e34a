"""The job queue behind ``/sweep/v1/jobs``: one job at a time, in submission order.

Each job runs ``sd_sweep.core.run.run_sweep`` in a worker thread, under the host's queue lock (the
WebUI's ``modules.call_queue.queue_lock`` when present, so API sweeps and UI generations never
share the GPU) with ``shared.state.begin/end`` and ``modules.progress`` task bookkeeping, so the
WebUI's own progress tracking sees it. A job's record is ``job.json`` in its run folder, beside
the run's files (``docs/run-folder.md``): after a restart past jobs are listed again and unfinished
ones can be resumed by id (the run folder's cell log makes the resumed run skip finished cells).

Nothing here imports the WebUI at import time; ``webui_host()`` looks for it when called.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.core.errors import Problem, SpecError, SweepError
from sd_sweep.core.ports import Backend, StopSignal
from sd_sweep.core.progress import StepProgress
from sd_sweep.core.run import RunObserver, RunResult, describe_cell, run_sweep
from sd_sweep.core.spec import Spec, spec_from_dict
from sd_sweep.core.spec_model import NAME_PATTERN, NAME_RULE, Key
from sd_sweep.core.store import RunStore, atomic_write_bytes

if TYPE_CHECKING:
    from sd_sweep.core.plan import Cell, Plan

JOB_FILE = "job.json"
JOB_FORMAT = "sd-sweep-job/1"
MODES = ("txt2img", "img2img")
REQUEST_KEYS: dict[str, Key] = {
    "mode": Key(
        "mode",
        ("string", "null"),
        "txt2img (default) or img2img.",
        "must be txt2img or img2img",
        enum=MODES,
        default="txt2img",
    ),
    "folder": Key(
        "folder",
        ("string", "null"),
        "The run folder (one name) under the server's runs folder; defaults to the sweep's name.",
        f"must be one folder name: {NAME_RULE}",
        pattern=NAME_PATTERN,
    ),
}
"""Body keys that say how to run the sweep; the rest of the body is the spec."""
REQUEST_ONLY_KEYS = tuple(REQUEST_KEYS)
ACTIVE = frozenset({"queued", "running"})
RESUMABLE = frozenset({"interrupted", "cancelled", "failed"})
_ID_RE = re.compile(r"^[0-9a-f]{12}$")

BackendFactory = Callable[[str], Backend]
"""Builds the backend for a mode (``txt2img`` or ``img2img``); used to validate and, by default, to run."""
JobRunner = Callable[["Plan", str, Path, RunObserver, StopSignal], RunResult]
"""Runs one job's checked plan: ``(plan, mode, run_dir, observer, stop) -> RunResult``. The WebUI's builds a
``p`` per job (img2img input images, settings restored afterwards); the default runs ``run_sweep``
on the factory's backend."""


class JobError(SweepError):
    """A job request that cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, problems: list[Problem]) -> None:
        self.status = status
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))

    @classmethod
    def single(cls, status: int, field_name: str, value: Any, message: str) -> JobError:
        return cls(status, [Problem(field_name, value, message)])


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask of the server."""

    max_cells: int = 5000
    """Cells of one job, whatever the spec's own ``limits.max_cells`` says."""
    sync_max_cells: int = 16
    """Cells of one synchronous ``POST /sweep/v1/run``."""
    max_pixels: int = 4096 * 4096
    """Pixels of one generated image (width x height, times hr_scale squared with hires fix)."""
    max_init_image_pixels: int = 4096 * 4096
    max_body_bytes: int = 64 * 1024 * 1024
    max_queued: int = 1000

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Host:
    """The host's lock and progress bookkeeping; a local lock and no bookkeeping outside a WebUI."""

    lock: Any = field(default_factory=threading.Lock)
    state: Any = None
    """``modules.shared.state``."""
    progress: Any = None
    """``modules.progress``."""

    @contextlib.contextmanager
    def job(self, task_id: str) -> Iterator[None]:
        """Hold the queue lock with the host's state and progress tracking around one job."""
        with self.lock:
            if self.state is not None:
                self.state.begin(job=task_id)
            if self.progress is not None:
                self.progress.start_task(task_id)
            try:
                yield
            finally:
                if self.progress is not None:
                    self.progress.finish_task(task_id)
                if self.state is not None:
                    self.state.end()

    def queued(self, task_id: str) -> None:
        if self.progress is not None:
            self.progress.add_task_to_queue(task_id)

    def dequeued(self, task_id: str) -> None:
        """A queued task dropped before it started: only ``start_task`` takes it out of ``pending_tasks``."""
        if self.progress is not None:
            pending = getattr(self.progress, "pending_tasks", None)
            if pending is not None:
                pending.pop(task_id, None)
            self.progress.finish_task(task_id)


def webui_host() -> Host:
    """The running WebUI's ``queue_lock``, ``shared.state`` and ``progress``, where they exist.

    Only looks at an already imported ``modules`` package, so it never imports a stray one.
    """
    if "modules" not in sys.modules:
        return Host()
    import importlib

    host = Host()
    with contextlib.suppress(ImportError, AttributeError):
        host.lock = importlib.import_module("modules.call_queue").queue_lock
    with contextlib.suppress(ImportError, AttributeError):
        host.state = importlib.import_module("modules.shared").state
    with contextlib.suppress(ImportError):
        host.progress = importlib.import_module("modules.progress")
    return host


@dataclass
class Job:
    id: str
    name: str
    mode: str
    folder: str
    request: dict[str, Any]
    """The request body, spec and ``mode``/``folder``, as given (kept for resume)."""
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    errors: list[str] = field(default_factory=list)
    cells_total: int = 0
    cells_done: int = 0
    cells_reused: int = 0
    batches_total: int = 0
    batches_done: int = 0
    current_cell: dict[str, Any] | None = None
    step: int | None = None
    steps: int | None = None
    sampling_steps_total: int = 0
    """The steps this attempt samples (``core.progress.StepProgress``): a reused first pass counts once."""
    sampling_steps_done: int = 0
    run_started: float | None = None
    """``time.monotonic()`` when this attempt started sampling (for the ETA)."""
    cancel_requested: bool = False
    stop: StopSignal = field(default_factory=StopSignal)
    done: threading.Event = field(default_factory=threading.Event)
    result: RunResult | None = None
    plan: Plan | None = field(default=None, repr=False)
    """The plan the job was admitted with, run as it is; None after a restart or once run (a resume plans again)."""

    @property
    def task_id(self) -> str:
        """The id the WebUI's progress tracking knows this job by."""
        return f"task(sweep-{self.id})"

    @property
    def progress(self) -> float:
        """The share of this attempt's sampling steps done, so the ETA follows the work: a hires cell
        continuing its group's first pass costs only its hires pass."""
        if self.state == "finished":
            return 1.0
        if not self.sampling_steps_total:
            return 0.0
        return min(1.0, self.sampling_steps_done / self.sampling_steps_total)

    @property
    def eta_seconds(self) -> float | None:
        if self.state != "running" or self.run_started is None:
            return None
        progress = self.progress
        if progress <= 0:
            return None
        elapsed = time.monotonic() - self.run_started
        return round(max(0.0, elapsed / progress - elapsed), 2)

    def record(self) -> dict[str, Any]:
        """What ``job.json`` holds."""
        return {
            "format": JOB_FORMAT,
            "id": self.id,
            "name": self.name,
            "mode": self.mode,
            "folder": self.folder,
            "state": self.state,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "errors": self.errors,
            "cells_total": self.cells_total,
            "cells_done": self.cells_done,
            "cells_reused": self.cells_reused,
            "batches_total": self.batches_total,
            "batches_done": self.batches_done,
            "request": self.request,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        job = cls(
            id=str(record["id"]),
            name=str(record["name"]),
            mode=str(record.get("mode", "txt2img")),
            folder=str(record["folder"]),
            request=dict(record.get("request") or {}),
        )
        job.state = str(record.get("state", "interrupted"))
        for key in ("created", "started", "finished"):
            setattr(job, key, record.get(key))
        job.errors = [str(e) for e in record.get("errors") or []]
        for key in ("cells_total", "cells_done", "cells_reused", "batches_total", "batches_done"):
            setattr(job, key, int(record.get(key) or 0))
        return job


def split_request(body: Any) -> tuple[dict[str, Any], str, str | None]:
    """``(spec document, mode, folder)`` from a request body; raises ``SpecError``."""
    if not isinstance(body, dict):
        raise SpecError.single("body", _short(body), "must be a JSON object: a sweep spec plus mode")
    problems = [
        Problem(name, body[name], key.message)
        for name, key in REQUEST_KEYS.items()
        if name in body and not key.fits(body[name])
    ]
    mode = body.get("mode") if REQUEST_KEYS["mode"].fits(body.get("mode")) else None
    mode = mode or "txt2img"
    folder = body.get("folder")
    document = {k: v for k, v in body.items() if k not in REQUEST_ONLY_KEYS}
    document = {k: v for k, v in document.items() if v is not None}
    if problems:
        raise SpecError(problems)
    return document, mode, folder


def _short(value: Any, limit: int = 80) -> Any:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


class JobManager:
    """Jobs over one runs folder, executed one at a time by a worker thread."""

    def __init__(
        self,
        runs_dir: Path | str,
        backend_factory: BackendFactory,
        *,
        host: Host | None = None,
        limits: ServerLimits | None = None,
        draw_grids: bool = True,
        runner: JobRunner | None = None,
    ) -> None:
        self.runs_dir = Path(runs_dir).resolve()
        self.runner = runner
        self.backend_factory = backend_factory
        self.host = host or Host()
        self.limits = limits or ServerLimits()
        self.draw_grids = draw_grids
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []
        self._deleted: dict[str, str] = {}
        """Ids of jobs forgotten with their run folder -> the folder, so they answer 410 rather than 404."""
        self._pending: list[str] = []
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._closing = False
        self._current: Job | None = None
        self._backends: dict[str, Backend] = {}
        self.load()

    # -- records ------------------------------------------------------------------------------

    def load(self) -> None:
        """List the jobs recorded under the runs folder; unfinished ones become ``interrupted``."""
        if not self.runs_dir.is_dir():
            return
        found: list[Job] = []
        for path in sorted(self.runs_dir.glob(f"*/{JOB_FILE}")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                if record.get("format") != JOB_FORMAT or not _ID_RE.match(str(record.get("id"))):
                    continue
                job = Job.from_record(record)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if job.folder != path.parent.name:
                continue
            if job.state in ACTIVE:
                job.state = "interrupted"
                job.errors.append("the server stopped before the job finished; resume it to continue")
            job.done.set()
            found.append(job)
        with self._lock:
            for job in sorted(found, key=lambda j: j.created or 0):
                if job.id not in self._jobs:
                    self._jobs[job.id] = job
                    self._order.append(job.id)

    def run_dir(self, job: Job) -> Path:
        return self.runs_dir / job.folder

    def _save(self, job: Job) -> None:
        data = json.dumps(job.record(), indent=1, ensure_ascii=False, default=str).encode()
        atomic_write_bytes(self.run_dir(job) / JOB_FILE, data)

    # -- validation ---------------------------------------------------------------------------

    def backend(self, mode: str) -> Backend:
        """The backend of ``mode``, built once and reused."""
        with self._lock:
            if mode not in self._backends:
                self._backends[mode] = self.backend_factory(mode)
            return self._backends[mode]

    def check(self, body: Any, *, max_cells: int | None = None) -> tuple[Spec, str, str, Plan]:
        """Validate a request body: ``(spec, mode, folder, plan)``; raises ``SpecError``."""
        from sd_sweep.core.planner import build_plan

        document, mode, folder = split_request(body)
        spec = spec_from_dict(document)
        cap = min(max_cells or self.limits.max_cells, self.limits.max_cells)
        if spec.limits.max_cells > cap and "max_cells" in (document.get("limits") or {}):
            raise SpecError.single(
                "limits.max_cells", spec.limits.max_cells, f"this server runs at most {cap} cells per request"
            )
        capped = spec.limits.max_cells > cap
        spec.limits.max_cells = min(spec.limits.max_cells, cap)
        problems = self._check_init_images(spec, mode)
        if problems:
            raise SpecError(problems)
        # Planned with the random seeds the run folder already drew, so the run keeps this plan.
        path = (self.runs_dir / (folder or spec.name)).resolve()
        recorded = RunStore.open(path).seed_resolutions if path.parent == self.runs_dir else {}
        try:
            plan = build_plan(spec, self.backend(mode).capabilities(), seed_resolutions=recorded)
        except SpecError as exc:
            if capped:
                hint = " (POST /sweep/v1/jobs runs larger sweeps)" if cap < self.limits.max_cells else ""
                exc.problems = [
                    Problem(
                        p.field, p.value, f"{p.message.split(';')[0]}; this server runs at most {cap} per request{hint}"
                    )
                    if p.field == "limits.max_cells"
                    else p
                    for p in exc.problems
                ]
            raise
        problems = self._check_sizes(plan)
        if problems:
            raise SpecError(problems)
        self.backend(mode).check_plan(plan)
        folder = folder or spec.name
        self._check_folder(folder)
        return spec, mode, folder, plan

    def _check_folder(self, folder: str) -> None:
        path = (self.runs_dir / folder).resolve()
        if path.parent != self.runs_dir:
            raise SpecError.single("folder", folder, "must name a folder directly inside the runs folder")

    def _check_sizes(self, plan: Plan) -> list[Problem]:
        problems: list[Problem] = []
        for cell in plan.cells:
            params = cell.params
            width, height = int(params.get("width", 512)), int(params.get("height", 512))
            scale = float(params.get("hr_scale") or 1) if params.get("enable_hr") else 1.0
            pixels = width * height * scale * scale
            if pixels > self.limits.max_pixels:
                problems.append(
                    Problem(
                        f"cells[{cell.index}]",
                        f"{width}x{height}" + (f" x{scale:g}" if scale != 1 else ""),
                        f"images may have at most {self.limits.max_pixels} pixels on this server",
                    )
                )
                break
        return problems

    def _check_init_images(self, spec: Spec, mode: str) -> list[Problem]:
        images = spec.base.get("init_images")
        if mode == "txt2img":
            if images:
                return [Problem("base.init_images", "...", "only used with mode img2img")]
            return []
        if not isinstance(images, list) or not images:
            return [Problem("base.init_images", _short(images), "img2img needs a list of base64 images")]
        problems: list[Problem] = []
        for index, item in enumerate(images):
            message = _check_base64_image(item, self.limits.max_init_image_pixels)
            if message:
                problems.append(Problem(f"base.init_images[{index}]", _short(item, 40), message))
        return problems

    # -- jobs ---------------------------------------------------------------------------------

    def submit(self, body: Any, *, max_cells: int | None = None) -> Job:
        """Validate and queue a job; raises ``SpecError`` (422) or ``JobError``."""
        spec, mode, folder, plan = self.check(body, max_cells=max_cells)
        with self._lock:
            self._check_capacity()
            self._check_folder_free(folder)
            job = Job(id=self._new_id(), name=spec.name, mode=mode, folder=folder, request=dict(body))
            job.cells_total = len(plan.cells)
            job.batches_total = len(plan.batches)
            job.plan = plan
            self._jobs[job.id] = job
            self._order.append(job.id)
            self._save(job)
            self._enqueue(job)
        return job

    def _check_capacity(self) -> None:
        if len(self._pending) >= self.limits.max_queued:
            raise JobError.single(429, "jobs", len(self._pending), "the queue is full; try again later")

    def _check_folder_free(self, folder: str, except_id: str | None = None) -> None:
        for other in self._jobs.values():
            if other.folder == folder and other.state in ACTIVE and other.id != except_id:
                raise JobError.single(
                    409, "folder", folder, f"job {other.id} is {other.state} in this run folder; wait or cancel it"
                )

    def _new_id(self) -> str:
        while True:
            job_id = secrets.token_hex(6)
            if job_id not in self._jobs and job_id not in self._deleted:
                return job_id

    def _enqueue(self, job: Job) -> None:
        job.done.clear()
        self.host.queued(job.task_id)
        self._pending.append(job.id)
        self._ensure_worker()
        self._wake.notify_all()

    def get(self, job_id: str) -> Job:
        """The job; 410 once its run folder was deleted, 404 for an id never seen."""
        with self._lock:
            self._forget_deleted()
            job = self._jobs.get(job_id)
            folder = self._deleted.get(job_id)
        if folder is not None:
            raise JobError.single(410, "id", job_id, f"its run folder {folder} was deleted")
        if job is None:
            raise JobError.single(404, "id", _short(job_id, 40), "no such job")
        return job

    def jobs(self) -> list[Job]:
        """The jobs in submission order, without those whose run folder was deleted."""
        with self._lock:
            self._forget_deleted()
            return [self._jobs[i] for i in self._order]

    def forget_folder(self, folder: str) -> None:
        """Drop the jobs of a run folder just deleted (a queued or running one would write it again)."""
        with self._lock:
            for job in [j for j in self._jobs.values() if j.folder == folder and j.state not in ACTIVE]:
                self._forget(job)

    def _forget_deleted(self) -> None:
        """Forget the jobs whose ``job.json`` is gone: their run folder was deleted, from the tab or on disk."""
        for job in list(self._jobs.values()):
            if job.state not in ACTIVE and not (self.run_dir(job) / JOB_FILE).is_file():
                self._forget(job)

    def _forget(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        self._order.remove(job.id)
        self._deleted[job.id] = job.folder

    def queue_position(self, job: Job) -> int | None:
        with self._lock:
            return self._pending.index(job.id) + 1 if job.id in self._pending else None

    def cancel(self, job_id: str) -> Job:
        """Drop a queued job, or stop a running one after its current batch."""
        job = self.get(job_id)
        with self._lock:
            if job.state == "queued":
                self._pending.remove(job.id)
                job.state = "cancelled"
                job.finished = time.time()
                self.host.dequeued(job.task_id)
                self._save(job)
                job.done.set()
            elif job.state == "running":
                job.cancel_requested = True
                job.stop.interrupt()
        return job

    def resume(self, job_id: str) -> Job:
        """Queue an interrupted, cancelled or failed job again; finished cells are kept."""
        job = self.get(job_id)
        with self._lock:
            if job.state in ACTIVE:
                return job
            if job.state not in RESUMABLE:
                raise JobError.single(409, "state", job.state, "only interrupted, cancelled or failed jobs resume")
            self._check_capacity()
            self._check_folder_free(job.folder, except_id=job.id)
            if not (self.run_dir(job) / JOB_FILE).exists():
                raise JobError.single(410, "folder", job.folder, "the run folder is gone")
            job.state = "queued"
            job.cancel_requested = False
            job.stop = StopSignal()
            job.finished = None
            self._save(job)
            self._enqueue(job)
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        job = self.get(job_id)
        job.done.wait(timeout)
        return job

    def manifest(self, job: Job) -> dict[str, Any]:
        """The run folder's whole manifest, derived from its files (it reads every cell)."""
        store = RunStore.open(self.run_dir(job))
        if not store.exists:
            raise JobError.single(404, "manifest", job.id, "the job has not written a manifest yet")
        return store.manifest

    def run_state(self, job: Job) -> dict[str, Any]:
        """The run folder's small state (state, counts, grids), read without its cells; empty before the run starts."""
        return RunStore.read_state(self.run_dir(job)) or {}

    def image_file(self, job: Job, cell_id: str) -> Path:
        store = RunStore.open(self.run_dir(job))
        path = store.image_path(cell_id) if cell_id in store.cells else None
        if path is None:
            raise JobError.single(404, "cell_id", _short(cell_id, 40), "no finished image with this cell id")
        return self._inside(job, path)

    def grid_file(self, job: Job, number: int) -> Path:
        grids = self.run_state(job).get("grids") or []
        if not 0 <= number < len(grids):
            raise JobError.single(404, "n", number, f"the job has {len(grids)} grid pages (numbered from 0)")
        return self._inside(job, self.run_dir(job) / str(grids[number]["file"]))

    def _inside(self, job: Job, path: Path) -> Path:
        resolved = path.resolve()
        if self.run_dir(job).resolve() not in resolved.parents or not resolved.is_file():
            raise JobError.single(404, "file", path.name, "not a file of this run")
        return resolved

    # -- the worker ---------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._closing = False
            self._worker = threading.Thread(target=self._work, name="sd-sweep-jobs", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if self._closing:
                    return
                job = self._jobs[self._pending.pop(0)]
                job.state = "running"
                self._current = job
            try:
                self._execute(job)
            finally:
                with self._lock:
                    self._current = None
                job.done.set()

    def _execute(self, job: Job) -> None:
        job.started = time.time()
        job.errors = []
        job.current_cell = job.step = job.steps = None
        try:
            with self.host.job(job.task_id):
                self._save(job)
                plan, job.plan = job.plan, None
                if plan is None:
                    _, _, _, plan = self.check(job.request)
                mode = job.mode
                observer = _JobObserver(self, job)
                if self.runner is not None:
                    result = self.runner(plan, mode, self.run_dir(job), observer, job.stop)
                else:
                    result = run_sweep(
                        plan.spec,
                        self.backend(mode),
                        self.run_dir(job),
                        plan=plan,
                        observer=observer,
                        stop=job.stop,
                        draw_grids=self.draw_grids,
                    )
                job.result = result
                job.state = "cancelled" if result.state == "interrupted" and job.cancel_requested else result.state
        except SpecError as exc:
            job.state = "failed"
            job.errors.extend(str(p) for p in exc.problems)
        except Exception as exc:  # a job's failure must never kill the worker
            job.state = "failed"
            job.errors.append(f"{type(exc).__name__}: {exc}" if not isinstance(exc, SweepError) else str(exc))
        finally:
            job.finished = time.time()
            job.current_cell = None
            with contextlib.suppress(OSError):
                self._save(job)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker after the current batch; queued jobs stay queued on disk (resumable)."""
        with self._lock:
            self._closing = True
            current = self._current
            if current is not None:
                current.stop.interrupt()
            self._wake.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
        for backend in self._backends.values():
            with contextlib.suppress(Exception):
                backend.close()


class _JobObserver(RunObserver):
    """Copies a run's progress into its job (the WebUI's own progress is ``run_in_session``'s)."""

    def __init__(self, manager: JobManager, job: Job) -> None:
        self.manager = manager
        self.job = job
        self.plan: Plan | None = None
        self.steps: StepProgress | None = None

    def started(self, plan: Plan, todo: list[list[Cell]], first_passes_kept: frozenset[int] = frozenset()) -> None:
        job = self.job
        self.plan = plan
        self.steps = StepProgress(plan, todo, first_passes_kept)
        job.sampling_steps_total = self.steps.total
        job.sampling_steps_done = 0
        job.cells_total = len(plan.cells)
        job.batches_total = len(todo)
        job.batches_done = 0
        job.cells_reused = job.cells_done = len(plan.cells) - sum(len(b) for b in todo)
        job.run_started = time.monotonic()
        self.manager._save(job)

    def batch_started(self, number: int, cells: list[Cell]) -> None:
        job = self.job
        assert self.plan is not None
        first = cells[0]
        job.current_cell = {
            "id": first.id,
            "index": first.index,
            "labels": dict(first.labels),
            "batch": [c.id for c in cells],
            "description": describe_cell(self.plan, first),
        }
        job.step, job.steps = 0, int(first.params.get("steps", 20))
        if self.steps is not None:
            self.steps.batch_started(number)

    def step(self, step: int, total: int) -> None:
        self.job.step, self.job.steps = step, total
        if self.steps is not None:
            self.job.sampling_steps_done = self.steps.step(step, total)

    def batch_finished(self, number: int, cells: list[Cell], saved: int) -> None:
        job = self.job
        if self.steps is not None:
            job.sampling_steps_done = self.steps.batch_finished(number)
        job.batches_done = number + 1
        job.cells_done += saved
        job.step = job.steps = None
        self.manager._save(job)


def _check_base64_image(item: Any, max_pixels: int) -> str | None:
    """``None`` when ``item`` is a base64 (or data URI) image within ``max_pixels``, else why not."""
    import base64
    import binascii
    import io

    if not isinstance(item, str) or not item:
        return "must be a base64 encoded image"
    if item.startswith("data:"):
        item = item.partition(",")[2]
    try:
        data = base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        return "not valid base64"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "not a PNG, JPEG or WebP image"
    if width * height > max_pixels:
        return f"{width}x{height} is larger than {max_pixels} pixels"
    return None
