"""A small client for the ``/sweep/v1`` routes of a WebUI with this extension.

Standard library only (``urllib.request``), so it works wherever the engine does::

    from sd_sweep.client import SweepClient

    client = SweepClient("http://127.0.0.1:7860", auth="user:pass")
    spec = {"name": "cfg", "base": {"prompt": "a cat"}, "axes": [{"param": "cfg_scale", "values": "5, 7"}]}
    job = client.submit(spec)
    client.wait(job["id"])
    client.download(job["id"], "sweep-runs/cfg")  # the same layout as an embedded run
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from sd_sweep.backends.http import HTTP, SweepHTTPError
from sd_sweep.core.errors import SweepError

PREFIX = "/sweep/v1"
FINAL_STATES = frozenset({"finished", "interrupted", "cancelled", "failed"})
_RUN_FILE_FOLDERS = ("images", "grids")


class SweepClient:
    """The ``/sweep/v1`` routes as methods; errors raise ``SweepHTTPError`` (or ``SweepError``)."""

    def __init__(self, url: str, auth: str | tuple[str, str] | None = None, timeout: float = 600.0) -> None:
        """A client of the server at ``url`` (``http://127.0.0.1:7860``); ``auth`` is ``user:password``
        (or a pair) of its ``--api-auth``; ``timeout`` is the seconds one request may take."""
        self.http = HTTP(url, auth, timeout)

    @property
    def url(self) -> str:
        """The server's base URL, as requests use it."""
        return self.http.url

    # -- discovery ----------------------------------------------------------------------------

    def has_sweep_api(self) -> bool:
        """True when the server has the extension's routes (False on 404)."""
        try:
            self.axes()
        except SweepHTTPError as exc:
            if exc.status in (404, 405):
                return False
            raise
        return True

    def axes(self, mode: str = "txt2img") -> dict[str, Any]:
        """What can be swept on this server in ``mode``: parameters, their kinds and choices."""
        return self.http.json("GET", f"{PREFIX}/axes", query={"mode": mode})

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the sweep spec."""
        return self.http.json("GET", f"{PREFIX}/schema")

    # -- sweeps -------------------------------------------------------------------------------

    @staticmethod
    def _body(spec: dict[str, Any], mode: str | None, folder: str | None) -> dict[str, Any]:
        body = dict(spec)
        if mode is not None:
            body["mode"] = mode
        if folder is not None:
            body["folder"] = folder
        return body

    def plan(self, spec: dict[str, Any], mode: str | None = None) -> dict[str, Any]:
        """The dry run: cells, batches and estimate (``SweepHTTPError`` 422 lists every problem)."""
        return self.http.json("POST", f"{PREFIX}/plan", self._body(spec, mode, None))

    def submit(self, spec: dict[str, Any], mode: str | None = None, folder: str | None = None) -> dict[str, Any]:
        """Queue a job; returns its status (``id``, ``state``, ``links``)."""
        return self.http.json("POST", f"{PREFIX}/jobs", self._body(spec, mode, folder))

    def run(self, spec: dict[str, Any], mode: str | None = None) -> dict[str, Any]:
        """Run a small sweep and wait: ``{"images": [base64...], "parameters", "info"}``."""
        return self.http.json("POST", f"{PREFIX}/run", self._body(spec, mode, None))

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the server knows, each as its status."""
        return self.http.json("GET", f"{PREFIX}/jobs")["jobs"]

    def job(self, job_id: str) -> dict[str, Any]:
        """The status of one job: ``state``, counts, progress and links."""
        return self.http.json("GET", f"{PREFIX}/jobs/{_quote(job_id)}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Stop a job after its current batch (what is finished stays); returns its status."""
        return self.http.json("POST", f"{PREFIX}/jobs/{_quote(job_id)}/cancel")

    def resume(self, job_id: str) -> dict[str, Any]:
        """Run an interrupted or failed job again, generating only its missing cells; returns its status."""
        return self.http.json("POST", f"{PREFIX}/jobs/{_quote(job_id)}/resume")

    def manifest(self, job_id: str) -> dict[str, Any]:
        """The job's whole manifest: spec, plan, every cell's state, file and infotext, grids."""
        return self.http.json("GET", f"{PREFIX}/jobs/{_quote(job_id)}/manifest")

    def image(self, job_id: str, cell_id: str) -> bytes:
        """One cell's PNG (with its infotext)."""
        return self.http.request("GET", f"{PREFIX}/jobs/{_quote(job_id)}/images/{_quote(cell_id)}")

    def grid(self, job_id: str, number: int) -> bytes:
        """Grid sheet ``number`` (0-based, as the manifest lists them) as PNG."""
        return self.http.request("GET", f"{PREFIX}/jobs/{_quote(job_id)}/grids/{int(number)}")

    def wait(
        self,
        job_id: str,
        *,
        poll: float = 0.5,
        timeout: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job is finished, interrupted, cancelled or failed; returns its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.job(job_id)
            if on_progress is not None:
                on_progress(status)
            if status["state"] in FINAL_STATES:
                return status
            if deadline is not None and time.monotonic() > deadline:
                msg = f"job {job_id} still {status['state']} after {timeout} s"
                raise SweepError(msg)
            time.sleep(poll)

    def download(self, job_id: str, run_dir: Path | str) -> Path:
        """Copy the job's images, grids and manifest into ``run_dir`` (an embedded run's layout).

        Images already there are kept (cell ids name their content), so downloading a resumed
        job again only fetches the new cells. The manifest is written last.
        """
        from sd_sweep.core.store import MANIFEST, atomic_write_bytes

        run_dir = Path(run_dir)
        manifest = self.manifest(job_id)
        for cell_id, entry in (manifest.get("cells") or {}).items():
            if entry.get("state") != "done":
                continue
            target = _local_file(run_dir, entry.get("file"), f"cells.{cell_id}.file")
            if not target.exists():
                atomic_write_bytes(target, self._fetch(entry["file"], lambda c=cell_id: self.image(job_id, c)))
        for number, grid in enumerate(manifest.get("grids") or []):
            target = _local_file(run_dir, grid.get("file"), f"grids[{number}].file")
            atomic_write_bytes(target, self._fetch(grid["file"], lambda n=number: self.grid(job_id, n)))
        atomic_write_bytes(run_dir / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False).encode())
        return run_dir

    @staticmethod
    def _fetch(name: str, get: Callable[[], bytes]) -> bytes:
        try:
            return get()
        except SweepError as exc:
            msg = f"could not download {name}: {exc}"
            raise SweepError(msg) from None


def _local_file(run_dir: Path, relative: Any, field: str) -> Path:
    """Where a file the server lists goes in ``run_dir``; any name is kept, but never outside its folder."""
    path = PurePosixPath(str(relative or ""))
    if len(path.parts) != 2 or path.parts[0] not in _RUN_FILE_FOLDERS or path.name in ("", ".", ".."):
        msg = f"the server's manifest lists an unexpected file in {field}: {relative!r}"
        raise SweepError(msg)
    return run_dir / path.parts[0] / path.name


def _quote(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")
