"""What the viewer's routes answer, for any web framework: the WebUI's FastAPI routes and the
standard library server of ``python -m sd_sweep view`` both call one ``ViewerService``.

Every run is a direct child folder of ``runs_dir``; names and file paths that lead elsewhere are
refused, and only a run's ``images/``, ``grids/`` and ``thumbs/`` files are served.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from sd_sweep.core.errors import Problem, SpecError, SweepError
from sd_sweep.core.store import LOG, MANIFEST, PLAN, STATE, RunStore
from sd_sweep.viewer.files import images_zip, render_view, thumbnail, zip_bytes
from sd_sweep.viewer.index import build_index

SERVED_FOLDERS = ("images", "grids", "thumbs")
BUSY_SECONDS = 120
"""A run whose ``run.json`` says running and changed this recently is taken as running."""


class ViewerError(SweepError):
    """A refused viewer request: an HTTP status and problems naming field and value."""

    def __init__(self, status: int, field_name: str, value: Any, message: str) -> None:
        self.status = status
        self.problems = [Problem(field_name, value, message)]
        super().__init__(str(self.problems[0]))


class ViewerService:
    def __init__(self, runs_dir: Path | str, *, only: str | None = None) -> None:
        self.runs_dir = Path(runs_dir).resolve()
        self.only = only
        """Serve this one run folder of ``runs_dir`` and no other (``python -m sd_sweep view``)."""
        self._summaries: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # -- runs ---------------------------------------------------------------------------------

    def run_dir(self, name: str) -> Path:
        """The run folder called ``name``: a direct child of the runs folder that holds a run."""
        if not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\\" in name:
            raise ViewerError(404, "run", name, "no such run")
        if self.only is not None and name != self.only:
            raise ViewerError(404, "run", name, f"no such run (this server shows {self.only!r})")
        if len(name) > 255 or "\x00" in name:
            raise ViewerError(404, "run", name[:80], "no such run")
        try:
            path = (self.runs_dir / name).resolve()
            found = path.parent == self.runs_dir and any((path / f).exists() for f in (STATE, PLAN, MANIFEST))
        except (OSError, ValueError):
            found = False
        if not found:
            raise ViewerError(404, "run", name, "no such run")
        return path

    def runs(self) -> list[dict[str, Any]]:
        """Every run of the runs folder, newest first, from ``run.json`` (and the plan's axes, cached)."""
        if not self.runs_dir.is_dir():
            return []
        names = [self.only] if self.only is not None else sorted(p.name for p in self.runs_dir.iterdir())
        found = []
        for name in names:
            path = self.runs_dir / name
            if name.startswith(".") or not any((path / f).exists() for f in (STATE, PLAN, MANIFEST)):
                continue
            try:
                found.append(self.summary(name))
            except SweepError as exc:
                found.append({"name": name, "folder": name, "state": "unreadable", "error": str(exc), "counts": {}})
        found.sort(key=lambda r: (r.get("created") or "", r["folder"]), reverse=True)
        return found

    def summary(self, name: str) -> dict[str, Any]:
        path = self.run_dir(name)
        state = RunStore.read_state(path) or {}
        summary: dict[str, Any] = {
            "folder": name,
            "name": state.get("name") or name,
            "state": state.get("state"),
            "created": state.get("created"),
            "updated": state.get("updated"),
            "counts": state.get("counts") or {},
        }
        summary.update(self._plan_summary(path))
        return summary

    def _plan_summary(self, path: Path) -> dict[str, Any]:
        """The axes and the first finished cell of a run, cached by the plan's and the log's mtime."""

        def mtime(file: str) -> int:
            try:
                return (path / file).stat().st_mtime_ns
            except OSError:
                return 0

        key = (mtime(PLAN) or mtime(MANIFEST), mtime(LOG))
        with self._lock:
            cached = self._summaries.get(path.name)
        if cached and cached[0] == key and cached[1].get("thumb"):
            return cached[1]
        if (path / PLAN).exists() and key[0] == mtime(PLAN):
            try:
                plan = json.loads((path / PLAN).read_text(encoding="utf-8")).get("plan") or {}
            except (OSError, ValueError):
                plan = {}
            thumb = _first_done(path)
        else:
            store = RunStore.open(path)
            plan = store.plan_dict or {}
            done = [i for i in (str(c["id"]) for c in plan.get("cells", [])) if store.image_path(i)]
            thumb = done[0] if done else None
        result = {
            "axes": [
                {"name": d["name"], "title": d.get("title") or d["name"], "values": len(d.get("labels", []))}
                for d in plan.get("dimensions", [])
            ],
            "thumb": thumb,
        }
        with self._lock:
            self._summaries[path.name] = (key, result)
        return result

    def busy(self, name: str) -> bool:
        """Whether a run (a Script run, which has no job) looks alive: running and written lately."""
        state = RunStore.read_state(self.run_dir(name)) or {}
        if state.get("state") != "running":
            return False
        try:
            age = time.time() - (self.run_dir(name) / STATE).stat().st_mtime
        except OSError:
            return False
        return age < BUSY_SECONDS

    def delete(self, name: str) -> None:
        path = self.run_dir(name)
        if self.busy(name):
            raise ViewerError(409, "run", name, "this run is being written; stop it first")
        shutil.rmtree(path)
        with self._lock:
            self._summaries.pop(name, None)

    # -- one run --------------------------------------------------------------------------------

    def index(self, name: str) -> dict[str, Any]:
        return build_index(self.run_dir(name))

    def thumb(self, name: str, cell_id: str) -> Path:
        try:
            path = thumbnail(self.run_dir(name), cell_id)
        except SpecError as exc:
            raise ViewerError(404, "cell_id", cell_id, str(exc.problems[0].message)) from None
        if path is None:
            raise ViewerError(404, "cell_id", cell_id, "this cell has no image yet")
        return path

    def file(self, name: str, relative: str) -> Path:
        run_dir = self.run_dir(name)
        try:
            path = (run_dir / relative).resolve()
            parts = path.relative_to(run_dir).parts
            is_file = path.is_file()
        except (OSError, ValueError):
            raise ViewerError(404, "path", relative[:200], "outside the run folder or not a file") from None
        if len(parts) < 2 or parts[0] not in SERVED_FOLDERS or not is_file:
            raise ViewerError(404, "path", relative, f"no such file in {', '.join(SERVED_FOLDERS)} of this run")
        return path

    def sheets(self, name: str, body: Any) -> tuple[str, str, bytes]:
        """``(file name, media type, bytes)``: one PNG sheet, or a ZIP when the view makes several."""
        if not isinstance(body, dict):
            raise ViewerError(422, "body", None if body is None else type(body).__name__, "must be a JSON object")
        x, y, pages, hidden = body.get("x"), body.get("y"), body.get("pages") or [], body.get("hidden") or {}
        for field_name, value in (("x", x), ("y", y)):
            if value is not None and not isinstance(value, str):
                raise ViewerError(422, field_name, value, "must be a dimension name or null")
        if not isinstance(pages, list) or not all(isinstance(p, str) for p in pages):
            raise ViewerError(422, "pages", pages, "must be a list of dimension names")
        if not isinstance(hidden, dict):
            raise ViewerError(422, "hidden", hidden, "must be an object {dimension: [value index, ...]}")
        store = RunStore.open(self.run_dir(name))
        try:
            sheets = render_view(store, x=x, y=y, pages=pages, hidden=hidden)
        except SpecError as exc:
            problem = exc.problems[0]
            raise ViewerError(422, problem.field, problem.value, problem.message) from None
        except ValueError as exc:
            raise ViewerError(422, "layout", {"x": x, "y": y, "pages": pages}, str(exc)) from None
        if len(sheets) == 1:
            return sheets[0][0], "image/png", sheets[0][1]
        return f"{name}-sheets.zip", "application/zip", zip_bytes(sheets)

    def images(self, name: str, body: Any) -> tuple[str, str, bytes]:
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            raise ViewerError(422, "ids", ids, "must be a list of cell ids")
        store = RunStore.open(self.run_dir(name))
        try:
            data = images_zip(store, ids)
        except SpecError as exc:
            problem = exc.problems[0]
            raise ViewerError(422, problem.field, problem.value, problem.message) from None
        return f"{name}-images.zip", "application/zip", data


def _first_done(path: Path, limit: int = 1 << 16) -> str | None:
    """The id of the first finished cell in the log, from its first ``limit`` bytes."""
    try:
        with (path / LOG).open("rb") as handle:
            head = handle.read(limit)
    except OSError:
        return None
    for line in head.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("state") == "done" and isinstance(record.get("id"), str):
            return record["id"]
    return None
