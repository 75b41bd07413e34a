"""``python -m sd_sweep run SPEC --url URL``: run a sweep as a job of a WebUI with this extension.

Starts the job (or resumes the one this run folder recorded), shows a progress bar from the
job's status, and downloads images, grids and manifest into the same layout as an embedded run.
Returns ``None`` when the server has no ``/sweep/v1`` routes, so the caller can fall back to
the stock ``/sdapi/v1`` API.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.client import SweepClient, SweepHTTPError
from sd_sweep.core.store import atomic_write_bytes

if TYPE_CHECKING:
    from sd_sweep.core.spec import Spec

REMOTE_JOB = "remote-job.json"
"""What a run folder remembers of its server job: url and id (for resume)."""


def run_remote(
    spec: Spec, url: str, run_dir: Path, *, auth: str | None = None, mode: str = "txt2img", as_json: bool = False
) -> int | None:
    """Run ``spec`` as a job of the server's ``/sweep/v1`` routes into ``run_dir``; None where it has none.

    The summary is text on stdout, or with ``as_json`` one JSON line there (the text on stderr).
    """
    client = SweepClient(url, auth=auth)
    if not client.has_sweep_api():
        return None
    body = dict(spec.source)
    job = _resume_recorded(client, run_dir, body, mode) or client.submit(body, mode=mode)
    record = {"url": client.url, "id": job["id"], "spec": body, "mode": mode}
    atomic_write_bytes(run_dir / REMOTE_JOB, json.dumps(record).encode())
    print(f"{spec.name}: job {job['id']} on {client.url} ({job['cells_total']} cells)", file=sys.stderr)
    status = _follow(client, job["id"])
    client.download(job["id"], run_dir)
    text = sys.stderr if as_json else sys.stdout
    print(f"run folder: {run_dir}", file=text)
    print(f"  state: {status['state']}; {status['cells_done']} of {status['cells_total']} cells done", file=text)
    for error in status.get("errors") or []:
        print(f"  error: {error}", file=sys.stderr)
    if status["state"] in ("interrupted", "cancelled"):
        print("  run the same command again to resume it", file=text)
    if as_json:
        print(json.dumps({"run_dir": str(run_dir), "state": status["state"], "job": job["id"], "url": client.url}))
    return {"finished": 0, "failed": 1}.get(status["state"], 130)


def _resume_recorded(client: SweepClient, run_dir: Path, body: dict[str, Any], mode: str) -> dict[str, Any] | None:
    """The job this folder ran on this server, resumed (or followed) when unfinished.

    Only a job of the same spec and mode: a changed spec is a new job (in the same server folder,
    so its finished cells are still reused).
    """
    try:
        record = json.loads((run_dir / REMOTE_JOB).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("url") != client.url or not isinstance(record.get("id"), str):
        return None
    if record.get("spec", body) != body or record.get("mode", mode) != mode:
        return None
    try:
        job = client.job(record["id"])
        if job["state"] in ("interrupted", "cancelled", "failed"):
            return client.resume(record["id"])
    except SweepHTTPError:
        return None
    return job if job["state"] in ("queued", "running") else None


def _follow(client: SweepClient, job_id: str) -> dict[str, Any]:
    """Poll with a tqdm bar; the first Ctrl-C cancels the job (after its batch), the second leaves."""
    from tqdm import tqdm

    bar = tqdm(unit="img", dynamic_ncols=True, file=sys.stderr)
    cancelled = False
    previous = signal.getsignal(signal.SIGINT)

    def on_ctrl_c(signum: int, frame: Any) -> None:
        nonlocal cancelled
        if cancelled:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        cancelled = True
        print("\ncancelling the job after its current batch (Ctrl-C again to leave it running)", file=sys.stderr)
        client.cancel(job_id)

    def show(status: dict[str, Any]) -> None:
        bar.total = status["cells_total"]
        bar.n = status["cells_done"]
        cell = status.get("current_cell") or {}
        queued = status.get("queue_position")
        bar.set_description((f"queued #{queued}" if queued else cell.get("description", status["state"]))[:40])
        if status.get("step") and status.get("steps"):
            eta = status.get("eta_seconds")
            bar.set_postfix_str(f"step {status['step']}/{status['steps']}" + (f", eta {eta:.0f}s" if eta else ""))
        bar.refresh()

    main = threading.current_thread() is threading.main_thread()
    if main:
        signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        return client.wait(job_id, poll=0.5, on_progress=show)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
        bar.close()
