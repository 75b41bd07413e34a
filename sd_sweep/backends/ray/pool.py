"""The Ray side: connect to a cluster, start one actor per worker, and dispatch a run's batches.

``RayPool`` is a ``Dispatcher`` for ``run_sweep``: the driver plans, ``Scheduler`` picks each
worker's next batch, and every finished batch comes back to the driver, which saves it in the run
folder in whatever order batches finish. A worker whose process dies (Ray restarts it) or whose
WebUI stops answering loses nothing: its unfinished batches go back to the queue and run on
another worker, or on it once it answers again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sd_sweep.backends.http import SweepHTTPError
from sd_sweep.backends.ray.schedule import Job, Scheduler, batch_key
from sd_sweep.core.errors import BackendError, SweepError
from sd_sweep.core.planner import batch_first_pass_key
from sd_sweep.core.run import BatchSink, Dispatcher, request_for

if TYPE_CHECKING:
    from sd_sweep.core.plan import Cell, Plan
    from sd_sweep.core.ports import Backend, GenerationRequest, StopSignal

INSTALL_HINT = 'Ray is not installed: pip install "sd-webui-sweep[ray]"'


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SweepError(INSTALL_HINT) from None
    return ray


# -- the cluster ------------------------------------------------------------------------------


def connect(address: str | None = None, *, num_cpus: int | None = None, object_store_memory: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` (``host:port``, ``ray://host:port`` or ``auto``), or start
    a local one when ``address`` is None. Returns whether this call started Ray (so it shuts it down).

    A cluster that cannot be reached is a ``SweepError`` of one line.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address is None:
        options.update(num_cpus=num_cpus, object_store_memory=object_store_memory)
    else:
        _check_reachable(address)
    try:
        ray.init(address=address, **options)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        msg = f"cannot start or join {where}: {first}"
        raise SweepError(msg) from None
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (one line) when ``host:port`` does not accept connections; ``auto`` is left to Ray."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        default = 10001 if address.startswith("ray://") else 6379
        host, port = target, str(default)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        msg = f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}"
        raise SweepError(msg) from None


def shutdown() -> None:
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()


# -- workers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddedFactory:
    """Builds the embedded diffusers backend inside an actor (on its GPU, or on the CPU)."""

    model: str | None = None
    device: str | None = None
    dtype: str | None = None
    cache: str | None = field(default_factory=lambda: os.environ.get("SD_SWEEP_CACHE"))
    """The driver's tiny-model cache, for actors on the same machine."""

    def __call__(self) -> Backend:
        from sd_sweep.backends.diffusers.backend import DiffusersBackend

        if self.cache and "SD_SWEEP_CACHE" not in os.environ:
            os.environ["SD_SWEEP_CACHE"] = self.cache
        return DiffusersBackend(self.model, device=self.device, dtype=self.dtype)


@dataclass(frozen=True)
class SdapiFactory:
    """Drives one WebUI server's stock API (``/sdapi/v1``) from an actor."""

    url: str
    auth: str | None = None
    mode: str = "txt2img"

    def __call__(self) -> Backend:
        from sd_sweep.backends.sdapi import SdapiBackend

        return SdapiBackend(self.url, auth=self.auth, mode=self.mode)


@dataclass(frozen=True)
class WorkerSpec:
    """One actor of the pool: ``factory`` (picklable) builds its backend in the actor's process."""

    name: str
    factory: Callable[[], Backend]
    num_cpus: float = 0.0
    num_gpus: float = 0.0


def embedded_workers(
    model: str | None, device: str | None, dtype: str | None = None, actors: int | None = None
) -> list[WorkerSpec]:
    """One actor per GPU of the cluster, or ``actors`` CPU actors (default 1) where it has none."""
    ray = import_ray()
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    factory = EmbeddedFactory(model, device, dtype)
    if gpus and device not in ("cpu", "mps"):
        count = actors or gpus
        return [WorkerSpec(f"gpu{i}", factory, num_gpus=min(1.0, gpus / count)) for i in range(count)]
    count = actors or 1
    cpus = float(resources.get("CPU", 1))
    return [WorkerSpec(f"cpu{i}", factory, num_cpus=min(1.0, cpus / count)) for i in range(count)]


def webui_workers(urls: list[str], *, auth: str | None = None, mode: str = "txt2img") -> list[WorkerSpec]:
    """One actor per WebUI server, each driving its stock API."""
    from urllib.parse import urlparse

    names: list[str] = []
    for url in urls:
        name = urlparse(url).netloc or url
        names.append(name if name not in names else f"{name}#{len(names)}")
    return [WorkerSpec(name, SdapiFactory(url, auth, mode)) for name, url in zip(names, urls)]


def _is_fault(exc: BaseException) -> bool:
    """A worker's fault, not the batch's: its server cannot be reached or answers 5xx."""
    if isinstance(exc, SweepHTTPError):
        return exc.status >= 500 or exc.status in (408, 429)
    if isinstance(exc, (OSError, urllib.error.URLError, TimeoutError)):
        return True
    return isinstance(exc, SweepError) and isinstance(exc.__context__, OSError)


class _Worker:
    """The actor: builds its backend on first use and keeps it (and its loaded models)."""

    def __init__(self, factory: Callable[[], Backend]) -> None:
        self._factory = factory
        self._backend: Backend | None = None

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "model_loads": getattr(self._backend, "model_loads", None)}

    def generate(self, request: GenerationRequest) -> tuple[str, Any]:
        """``("ok", images)``, ``("fault", text)`` (this worker's fault) or ``("error", text)``."""
        try:
            if self._backend is None:
                self._backend = self._factory()
            return "ok", self._backend.generate(request)
        except Exception as exc:
            kind = "fault" if _is_fault(exc) else "error"
            return kind, f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


# -- the pool ---------------------------------------------------------------------------------


@dataclass
class _Slot:
    worker: str
    job: Job
    started: float


@dataclass
class PoolStats:
    loads: int = 0
    """Model loads handed out by the scheduler (group switches of the workers)."""
    distinct_groups: int = 0
    batches: dict[str, int] = field(default_factory=dict)
    """Finished batches per worker."""
    faults: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


class RayPool(Dispatcher):
    """A pool of Ray actors, one per ``WorkerSpec``, that ``run_sweep`` hands its batches to.

    ``depth``: batches queued on a worker at once (the second hides the round trip while enough
    work is left). A worker that faults rests (``backoff`` seconds, doubling to ``max_backoff``) and
    is dropped after ``max_faults`` faults in a row; a batch that fails with a backend error is
    tried ``max_attempts`` times before the run fails with that error.
    """

    def __init__(
        self,
        workers: list[WorkerSpec],
        *,
        depth: int = 2,
        max_restarts: int = 3,
        max_faults: int = 6,
        max_attempts: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        poll: float = 0.25,
    ) -> None:
        if not workers:
            msg = "a Ray pool needs at least one worker"
            raise SweepError(msg)
        self.workers = workers
        self.depth = max(1, depth)
        self.max_restarts = max_restarts
        self.max_faults = max_faults
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.poll = poll
        self.actors: dict[str, Any] = {}
        self.stats = PoolStats()

    def start(self) -> RayPool:
        ray = import_ray()
        if not ray.is_initialized():
            connect(None)
        actor_class = ray.remote(_Worker)
        for spec in self.workers:
            if spec.name in self.actors:
                continue
            self.actors[spec.name] = actor_class.options(
                num_cpus=spec.num_cpus,
                num_gpus=spec.num_gpus,
                max_restarts=self.max_restarts,
                max_task_retries=0,
            ).remote(spec.factory)
        return self

    def pids(self) -> dict[str, int]:
        """Each worker's process id (waits for the actors to start)."""
        ray = import_ray()
        names = list(self.actors)
        infos = ray.get([self.actors[name].info.remote() for name in names])
        return {name: int(info["pid"]) for name, info in zip(names, infos)}

    def model_loads(self) -> dict[str, int | None]:
        """What each worker's backend counted as model loads, where it counts them (``model_loads``)."""
        ray = import_ray()
        names = list(self.actors)
        infos = ray.get([self.actors[name].info.remote() for name in names])
        return {name: info.get("model_loads") for name, info in zip(names, infos)}

    def close(self) -> None:
        if not self.actors:
            return
        ray = import_ray()
        for actor in self.actors.values():
            try:
                ray.kill(actor)
            except Exception:  # noqa: PERF203 - an actor already gone
                continue
        self.actors.clear()

    def __enter__(self) -> RayPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dispatch(self, plan: Plan, todo: list[list[Cell]], sink: BatchSink, stop: StopSignal) -> None:
        self.start()
        run = _Dispatch(self, plan, todo, sink, stop)
        try:
            run.loop()
        finally:
            run.abandon()
            self.stats.loads = run.scheduler.loads
            self.stats.distinct_groups = run.scheduler.distinct_groups


class _Dispatch:
    """One run's bookkeeping: what is in flight where, which workers rest or are dropped."""

    def __init__(self, pool: RayPool, plan: Plan, todo: list[list[Cell]], sink: BatchSink, stop: StopSignal) -> None:
        self.ray = import_ray()
        self.pool = pool
        self.plan = plan
        self.sink = sink
        self.stop = stop
        names = [spec.name for spec in pool.workers]
        first_pass_keys = plan.first_pass_keys
        jobs = [
            Job(number, cells, batch_key(cells), first_pass=batch_first_pass_key(cells, first_pass_keys))
            for number, cells in enumerate(todo)
        ]
        self.scheduler = Scheduler(jobs, names)
        self.in_flight: dict[Any, _Slot] = {}
        self.queued: dict[str, list[Any]] = {name: [] for name in names}
        self.resting: dict[str, float] = {}
        self.faults: dict[str, int] = dict.fromkeys(names, 0)
        self.dropped: set[str] = set()
        self.failure: str | None = None
        self.last_fault = ""

    def active(self) -> list[str]:
        now = time.monotonic()
        return [n for n in self.queued if n not in self.dropped and self.resting.get(n, 0.0) <= now]

    def fill(self) -> None:
        if self.stop.interrupted or self.failure is not None:
            return
        active = self.active()
        for depth in range(1, self.pool.depth + 1):
            for name in active:
                if len(self.queued[name]) >= depth:
                    continue
                if depth > 1 and self.scheduler.remaining() < len(active):
                    return
                job = self.scheduler.next_for(name)
                if job is None:
                    continue
                self.resting.pop(name, None)
                request = request_for(job.cells, self.plan)
                ref = self.pool.actors[name].generate.remote(request)
                self.in_flight[ref] = _Slot(name, job, time.monotonic())
                self.queued[name].append(ref)
                self.sink.started(job.number, job.cells, name)

    def loop(self) -> None:
        """Hand out batches and collect them until none is left or the run is interrupted.

        On an interrupt nothing new is handed out and the batches already queued on each actor
        (``depth``) finish and are saved: a queued actor task is not cancelled, as that left the
        actor's later tasks waiting forever in a run that reused the pool.
        """
        while True:
            self.fill()
            if not self.in_flight:
                if self.failure is not None:
                    raise BackendError(self.failure)
                if self.stop.interrupted or self.scheduler.remaining() == 0:
                    return
                if len(self.dropped) == len(self.queued):
                    msg = f"every worker of the Ray pool failed; the last: {self.last_fault}"
                    raise BackendError(msg)
                time.sleep(min(self.pool.poll, max(0.01, min(self.resting.values(), default=0) - time.monotonic())))
                continue
            ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=self.pool.poll)
            for ref in ready:
                self.collect(ref)

    def collect(self, ref: Any) -> None:
        slot = self.in_flight.pop(ref)
        self.queued[slot.worker].remove(ref)
        try:
            kind, payload = self.ray.get(ref)
        except self.ray.exceptions.TaskCancelledError:
            self.hand_back(slot)
            return
        except self.ray.exceptions.RayActorError as exc:
            self.hand_back(slot)
            self.fault(slot.worker, f"{slot.worker}: its process died ({type(exc).__name__})")
            return
        except self.ray.exceptions.RayError as exc:
            kind, payload = "error", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        if kind == "ok":
            self.faults[slot.worker] = 0
            self.pool.stats.batches[slot.worker] = self.pool.stats.batches.get(slot.worker, 0) + 1
            self.sink.finished(slot.job.number, slot.job.cells, payload)
        elif kind == "fault":
            self.hand_back(slot)
            self.fault(slot.worker, f"{slot.worker}: {payload}")
        else:
            slot.job.attempts += 1
            if slot.job.attempts >= self.pool.max_attempts:
                self.failure = self.failure or str(payload)  # the batch stays in the sink: recorded as failed
            else:
                self.hand_back(slot)

    def hand_back(self, slot: _Slot) -> None:
        self.sink.returned(slot.job.number)
        self.scheduler.give_back(slot.job)

    def fault(self, worker: str, text: str) -> None:
        self.last_fault = text
        self.pool.stats.faults[worker] = self.pool.stats.faults.get(worker, 0) + 1
        self.scheduler.lost(worker)
        if self.resting.get(worker, 0.0) > time.monotonic():
            return  # the same outage, seen by its second queued batch
        self.faults[worker] += 1
        if self.faults[worker] > self.pool.max_faults:
            self.dropped.add(worker)
            self.pool.stats.dropped.append(worker)
            return
        pause = min(self.pool.max_backoff, self.pool.backoff * 2 ** (self.faults[worker] - 1))
        self.resting[worker] = time.monotonic() + pause

    def abandon(self) -> None:
        """Leaving early (an error, a second Ctrl-C): cancel what is still in flight."""
        for ref, slot in list(self.in_flight.items()):
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=False)
            self.sink.returned(slot.job.number)
        self.in_flight.clear()
