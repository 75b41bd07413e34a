"""``/sweep/v1``: the extension's REST routes on the WebUI's FastAPI app.

The WebUI shim calls ``on_app_started(demo, app)`` from ``script_callbacks.on_app_started``.
Tests and other hosts call ``register(app, ...)`` with their own runs folder, backend factory
and lock. Importing this package imports nothing heavy; FastAPI is imported when routes are
registered.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sd_sweep.api.jobs import BackendFactory, Host, JobManager, JobRunner, ServerLimits
    from sd_sweep.core.plan import Plan
    from sd_sweep.core.ports import StopSignal
    from sd_sweep.core.run import RunObserver, RunResult

__all__ = ["on_app_started", "register", "shutdown"]

_lock = threading.Lock()
_manager: JobManager | None = None
"""The job manager of this process: kept across Reload UI (a new app), so running jobs go on."""


def on_app_started(demo: Any, app: Any) -> None:
    """``script_callbacks.on_app_started`` handler: add the routes to the WebUI's app."""
    register(app)


def register(
    app: Any,
    *,
    runs_dir: Path | str | None = None,
    backend_factory: BackendFactory | None = None,
    host: Host | None = None,
    api_auth: str | None = None,
    limits: ServerLimits | None = None,
    manager: JobManager | None = None,
    runner: JobRunner | None = None,
) -> JobManager:
    """Add the ``/sweep/v1`` routes to ``app`` and return the job manager behind them.

    Defaults come from the running WebUI: its runs folder, the in-process webui backend, its
    ``queue_lock``/``shared.state``/``progress`` and its ``--api-auth``. Passing ``manager``
    reuses one (a restart test passes a new one over the same runs folder). ``api_auth`` is
    ``"user:pass,..."``; ``None`` reads the WebUI's ``--api-auth``, ``""`` turns auth off.
    """
    global _manager  # noqa: PLW0603 - one job queue per process
    from sd_sweep.api.auth import parse_api_auth, webui_api_auth
    from sd_sweep.api.jobs import JobManager, webui_host
    from sd_sweep.api.routes import install

    with _lock:
        if manager is None:
            explicit = any(x is not None for x in (runs_dir, backend_factory, host, limits, runner))
            if _manager is not None and not explicit:
                manager = _manager
            else:
                manager = JobManager(
                    runs_dir if runs_dir is not None else default_runs_dir(),
                    backend_factory or webui_backend_factory,
                    host=host if host is not None else webui_host(),
                    limits=limits,
                    runner=runner if runner is not None or backend_factory is not None else webui_runner,
                )
                if not explicit:
                    _manager = manager
        credentials = parse_api_auth(webui_api_auth() if api_auth is None else api_auth)
        install(app, manager, credentials)
        return manager


def shutdown() -> None:
    """Stop the process's job worker; unfinished jobs stay resumable.

    For tests and other hosts: the WebUI shim does not register it with ``on_script_unloaded``, which
    runs on every Reload UI, so that running jobs go on across a reload.
    """
    global _manager  # noqa: PLW0603
    with _lock:
        if _manager is not None:
            _manager.close()
            _manager = None


def default_runs_dir() -> Path:
    """Where API runs are stored: the ``sweep_runs_dir`` setting, else ``outputs/sweeps`` of the WebUI."""
    from sd_sweep.backends.webui import settings

    return Path(settings.runs_dir())


def webui_backend_factory(mode: str) -> Any:
    """The in-process WebUI backend for ``mode``, for the catalog and validation."""
    from sd_sweep.backends.webui.backend import WebUIBackend
    from sd_sweep.backends.webui.session import ValidationOnlyP

    return WebUIBackend(ValidationOnlyP({}), is_img2img=mode == "img2img", base_init_images=True)


def webui_runner(plan: Plan, mode: str, run_dir: Path, observer: RunObserver, stop: StopSignal) -> RunResult:
    """Run an API job's checked plan in the WebUI: a fresh ``p`` and backend, the user's settings restored after."""
    from sd_sweep.backends.webui import settings
    from sd_sweep.backends.webui.backend import WebUIBackend
    from sd_sweep.backends.webui.session import run_in_session, template_p

    backend = WebUIBackend(
        template_p(plan.spec, mode),
        is_img2img=mode == "img2img",
        save_samples=bool(settings.get("sweep_save_samples")),
        base_init_images=True,
    )
    return run_in_session(backend, plan, run_dir, stop, observer)
