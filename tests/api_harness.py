"""Shared set-up of the HTTP tests: an app with the routes, a live server, and slow fakes."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sd_sweep.api import register
from sd_sweep.api.jobs import Host, JobManager, ServerLimits
from sd_sweep.client import SweepClient
from sd_sweep.core.ports import GeneratedImage, GenerationRequest, StepCallback, StopSignal
from tests.fakes import FakeBackend
from tests.live_server import LiveServer

SPEC: dict[str, Any] = {
    "name": "cats",
    "base": {"prompt": "a cat", "negative_prompt": "blurry", "steps": 4, "width": 32, "height": 32, "seed": 7},
    "axes": [{"param": "cfg_scale", "values": "5, 7"}, {"param": "sampler_name", "values": ["Euler", "DPM++ 2M"]}],
    "layout": {"x": "cfg_scale", "y": "sampler_name"},
}


class TimedBackend(FakeBackend):
    """A FakeBackend whose calls take ``delay`` seconds and are logged with their times."""

    def __init__(self, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay
        self.intervals: list[tuple[float, float, str]] = []
        self._log = threading.Lock()

    def generate(
        self, request: GenerationRequest, on_step: StepCallback | None = None, stop: StopSignal | None = None
    ) -> list[GeneratedImage]:
        start = time.monotonic()
        steps = int(request.params.get("steps", 20))
        for step in range(1, steps + 1):
            time.sleep(self.delay / max(1, steps))
            if on_step:
                on_step(step, steps)
        images = super().generate(request, None, stop)
        with self._log:
            self.intervals.append((start, time.monotonic(), request.prompts[0]))
        return images


@dataclass
class Api:
    url: str
    client: SweepClient
    manager: JobManager
    backend: TimedBackend
    lock: threading.Lock
    runs_dir: Path
    app: Any
    extra: dict[str, Any] = field(default_factory=dict)


def make_app(
    runs_dir: Path,
    backend: FakeBackend,
    *,
    api_auth: str = "",
    lock: Any = None,
    limits: ServerLimits | None = None,
) -> tuple[Any, JobManager, Any]:
    from fastapi import FastAPI

    lock = lock if lock is not None else threading.Lock()
    app = FastAPI()
    manager = register(
        app,
        runs_dir=runs_dir,
        backend_factory=lambda mode: backend,
        host=Host(lock=lock),
        api_auth=api_auth,
        limits=limits,
    )
    return app, manager, lock


@contextlib.contextmanager
def live_api(
    runs_dir: Path,
    *,
    delay: float = 0.0,
    api_auth: str = "",
    auth: str | None = None,
    limits: ServerLimits | None = None,
    backend: TimedBackend | None = None,
) -> Iterator[Api]:
    backend = backend or TimedBackend(delay)
    app, manager, lock = make_app(runs_dir, backend, api_auth=api_auth, limits=limits)
    server = LiveServer(app).start()
    try:
        yield Api(server.url, SweepClient(server.url, auth=auth, timeout=30), manager, backend, lock, runs_dir, app)
    finally:
        manager.close()
        server.stop()
