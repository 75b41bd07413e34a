"""A run's folder: images with their infotext, grids, and what is known about each cell.

Format 2 (``docs/run-folder.md``) keeps the cost of a finished batch independent of the run's
size: the plan is written once per run start (``plan.json``), finished cells are appended to a
log (``cells.jsonl``, one fsync per batch) and a small ``run.json`` holds the state, counts and
grids. The whole manifest of format 1 is derived on demand (``RunStore.manifest``). Folders of
format 1 (one ``manifest.json``) are read as they are and migrated on the first write.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.core.errors import RunFolderError, SweepError
from sd_sweep.core.ports import KeptFirstPass

if TYPE_CHECKING:
    from PIL import Image

    from sd_sweep.core.plan import Plan

FORMAT = "sd-sweep-run/2"
FORMAT_1 = "sd-sweep-run/1"
MANIFEST = "manifest.json"
"""Format 1's single file; also what ``client.download`` writes (a whole manifest of any format)."""
MIGRATED_MANIFEST = "manifest-1.json"
"""Where a format 1 manifest is kept once its folder is migrated."""
STATE = "run.json"
PLAN = "plan.json"
LOG = "cells.jsonl"
IMAGES = "images"
THUMBS = "thumbs"
THUMB_SIZE = 256
"""Thumbnails for the viewer: at most this many px a side, written beside each saved image."""
FIRST_PASSES = "first-passes"
"""First passes of hires groups whose cells are not all done yet (``RunStore.kept_first_pass``)."""


def _umask() -> int:
    """The process umask, read without setting it (``os.umask`` would race other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


_FILE_MODE = 0o666 & ~_umask()
"""What an ordinary ``open()`` would give; temporary files start private."""


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` so that readers see the old file or the new one, never a part.

    ``durable=False`` skips the fsync: still atomic for readers and after a killed process, but
    a power cut may leave the old content (used for files that can be rebuilt from others).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        Path(tmp).chmod(_FILE_MODE)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def png_bytes(image: Image.Image, infotext: str | None) -> bytes:
    import io

    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if infotext:
        info.add_text("parameters", infotext)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@functools.cache
def thumb_format() -> tuple[str, str, str]:
    """``(suffix, PIL format, media type)`` of thumbnails: WebP where Pillow has it, else JPEG."""
    from PIL import features

    if features.check("webp"):
        return ".webp", "WEBP", "image/webp"
    return ".jpg", "JPEG", "image/jpeg"


def thumb_bytes(image: Image.Image, size: int = THUMB_SIZE) -> bytes:
    """A small copy of ``image`` (at most ``size`` px a side) in the thumbnail format."""
    import io

    small = image.copy() if max(image.size) > size else image
    if small is not image:
        small.thumbnail((size, size))
    buffer = io.BytesIO()
    small.convert("RGB").save(buffer, format=thumb_format()[1], quality=82)
    return buffer.getvalue()


def read_infotext(path: Path) -> str | None:
    from PIL import Image

    with Image.open(path) as image:
        return image.info.get("parameters")


def _json_bytes(document: Any, indent: int | None = 1) -> bytes:
    return json.dumps(document, indent=indent, ensure_ascii=False, default=str).encode()


def _log_line(cell_id: str, entry: dict[str, Any]) -> bytes:
    """One line of ``cells.jsonl``; JSON escapes newlines, so a record never spans lines."""
    return json.dumps({"id": cell_id, **entry}, ensure_ascii=False, separators=(",", ":"), default=str).encode() + b"\n"


def _parse_lines(data: bytes, into: dict[str, dict[str, Any]]) -> int:
    """Add the complete lines of ``data`` to ``into`` (the last record of an id wins); returns the unreadable ones."""
    bad = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            cell_id = record.pop("id")
        except (ValueError, AttributeError, KeyError, TypeError):
            bad += 1
            continue
        if not isinstance(cell_id, str) or record.get("state") not in ("done", "failed"):
            bad += 1
            continue
        into[cell_id] = record
    return bad


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"{path}: not a readable {what} ({exc})"
        raise RunFolderError(msg) from None
    if not isinstance(document, dict):
        msg = f"{path}: not a readable {what} (a JSON object was expected, got {type(document).__name__})"
        raise RunFolderError(msg)
    return document


_SHAPES: dict[str, type | tuple[type, ...]] = {
    "plan": dict,
    "spec": dict,
    "seed_resolutions": dict,
    "cells": (dict, list),
    "grids": list,
    "state": str,
    "name": str,
}


def _check_shape(path: Path, document: dict[str, Any], keys: Sequence[str]) -> None:
    """Refuse a document whose ``keys`` hold values of the wrong JSON type, naming the key and the file."""
    for key in keys:
        value = document.get(key)
        if value is None:
            continue
        expected = _SHAPES[key]
        if key == "cells" and path.name == MANIFEST:
            expected = dict
        if not isinstance(value, expected):
            msg = f"{path}: {key!r} is not of the shape this version writes (got {type(value).__name__})"
            raise RunFolderError(msg)
    plan = document.get("plan")
    if isinstance(plan, dict):
        cells = plan.get("cells", [])
        if not isinstance(cells, list) or not all(isinstance(c, dict) and "id" in c for c in cells):
            msg = f"{path}: 'plan.cells' is not a list of cells with ids"
            raise RunFolderError(msg)


def _plan_ids(plan: Plan | dict[str, Any] | None) -> list[str]:
    if plan is None:
        return []
    if isinstance(plan, dict):
        return [str(c["id"]) for c in plan.get("cells", [])]
    return [c.id for c in plan.cells]


class RunStore:
    """The cells of one run folder and the files they name: one writer, any number of readers.

    Cell states: ``done`` (its image is on disk), ``failed`` (with ``error``) or, for a cell of the
    plan with no record, ``pending``. Records of cells of earlier plans stay (cell ids are content
    hashes, so a spec that shrinks and grows again loses nothing) until ``prune`` removes them.
    """

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self._state: dict[str, Any] = {"format": FORMAT, "grids": []}
        self._plan_doc: dict[str, Any] = {}
        self._cells: dict[str, dict[str, Any]] = {}
        self._legacy = False
        """Read from a single ``manifest.json``; the first write migrates the folder."""
        self._log_end = 0
        """Bytes of the log up to its last complete line, as read."""
        self._log_fd: int | None = None
        self._lock = threading.RLock()
        self._plan_set: set[str] = set()
        self._counts: dict[str, int] = {}
        self.ignored_lines = 0
        """Log lines that could not be read (a torn last line is not counted)."""

    # -- reading ------------------------------------------------------------------------------

    @classmethod
    def open(cls, run_dir: Path | str) -> RunStore:
        """Read a run folder (of either format); a folder with no run yet gives an empty store."""
        store = cls(run_dir)
        if _newest(store.run_dir, (STATE, PLAN, MANIFEST)) == MANIFEST:
            store._read_manifest()
        elif store.exists:
            store._read_format_2()
        return store

    def _read_format_2(self) -> None:
        state_path = self.run_dir / STATE
        try:
            state = _read_json(state_path, "run state")
        except SweepError:
            if not (self.run_dir / PLAN).exists():
                raise
            state = {"format": FORMAT, "state": "interrupted"}
        if state.get("format") != FORMAT:
            msg = f"{state_path}: unknown run folder format {state.get('format')!r}"
            raise RunFolderError(msg)
        _check_shape(state_path, state, ("grids", "state", "name"))
        self._state = {"grids": [], **state}
        if (self.run_dir / PLAN).exists():
            self._plan_doc = _read_json(self.run_dir / PLAN, "run plan")
            _check_shape(self.run_dir / PLAN, self._plan_doc, ("plan", "spec", "seed_resolutions", "name"))
        try:
            data = (self.run_dir / LOG).read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            msg = f"{self.run_dir / LOG}: not a readable cell log ({exc})"
            raise RunFolderError(msg) from None
        self._log_end = data.rfind(b"\n") + 1
        self.ignored_lines = _parse_lines(data[: self._log_end], self._cells)
        self._plan_set = set(_plan_ids(self._plan_doc.get("plan")))

    def _read_manifest(self) -> None:
        path = self.run_dir / MANIFEST
        manifest = _read_json(path, "run manifest")
        if manifest.get("format") not in (FORMAT_1, FORMAT):
            msg = f"{path}: unknown manifest format {manifest.get('format')!r}"
            raise RunFolderError(msg)
        _check_shape(path, manifest, ("plan", "spec", "seed_resolutions", "cells", "grids", "state", "name"))
        self._legacy = True
        self._state = {
            "format": FORMAT,
            "name": manifest.get("name"),
            "state": manifest.get("state"),
            "created": manifest.get("created"),
            "updated": manifest.get("updated"),
            "grids": list(manifest.get("grids") or []),
        }
        keys = ("name", "backend", "spec", "plan", "seed_resolutions")
        self._plan_doc = {k: manifest[k] for k in keys if k in manifest}
        for cell_id, entry in (manifest.get("cells") or {}).items():
            if isinstance(entry, dict) and entry.get("state") in ("done", "failed"):
                self._cells[str(cell_id)] = dict(entry)
        self._plan_set = set(_plan_ids(self._plan_doc.get("plan")))

    @staticmethod
    def read_state(run_dir: Path | str) -> dict[str, Any] | None:
        """The small state of a run folder (format, name, state, counts, grids) without reading its cells.

        Only a format 1 folder is read whole (once, until its first write migrates it). ``None``
        when the folder holds no run.
        """
        run_dir = Path(run_dir)
        if (run_dir / STATE).exists():
            state = _read_json(run_dir / STATE, "run state")
            if state.get("format") != FORMAT:
                msg = f"{run_dir / STATE}: unknown run folder format {state.get('format')!r}"
                raise RunFolderError(msg)
            return {"grids": [], "counts": {}, **state}
        if not (run_dir / MANIFEST).exists() and not (run_dir / PLAN).exists():
            return None
        store = RunStore.open(run_dir)
        return {**store._state, "counts": store.counts()}

    @property
    def exists(self) -> bool:
        return any((self.run_dir / name).exists() for name in (STATE, PLAN, MANIFEST))

    @property
    def format(self) -> str:
        """``sd-sweep-run/1`` while a format 1 folder is not yet migrated, else ``sd-sweep-run/2``."""
        return FORMAT_1 if self._legacy else FORMAT

    @property
    def state(self) -> str | None:
        return self._state.get("state")

    @property
    def grids(self) -> list[dict[str, Any]]:
        return list(self._state.get("grids") or [])

    @property
    def plan_dict(self) -> dict[str, Any] | None:
        """The plan of the latest run start, as ``Plan.as_dict()`` wrote it."""
        return self._plan_doc.get("plan")

    @property
    def spec(self) -> dict[str, Any] | None:
        """The spec document of the latest run start."""
        return self._plan_doc.get("spec")

    @property
    def seed_resolutions(self) -> dict[str, int]:
        return dict(self._plan_doc.get("seed_resolutions") or {})

    @property
    def cells(self) -> dict[str, dict[str, Any]]:
        """The latest record of every finished or failed cell, of this plan or earlier ones."""
        return self._cells

    def image_path(self, cell_id: str) -> Path | None:
        entry = self._cells.get(cell_id)
        if not entry or entry.get("state") != "done":
            return None
        path = self.run_dir / entry["file"]
        return path if path.exists() else None

    def done_ids(self) -> set[str]:
        """Cells recorded done whose image is on disk (one listing of ``images/``, not a stat per cell)."""
        try:
            listed = {f"{IMAGES}/{entry.name}" for entry in os.scandir(self.run_dir / IMAGES)}
        except OSError:
            listed = set()
        return {
            cell_id
            for cell_id, entry in self._cells.items()
            if entry.get("state") == "done"
            and (
                entry.get("file") in listed
                or (not str(entry.get("file", "")).startswith(f"{IMAGES}/") and self.image_path(cell_id))
            )
        }

    def stale_ids(self, plan: Plan | dict[str, Any] | None = None) -> list[str]:
        """Finished images on disk that are not cells of ``plan`` (default: the stored plan)."""
        wanted = set(_plan_ids(plan if plan is not None else self.plan_dict))
        return sorted(i for i in self._cells if i not in wanted and self.image_path(i))

    def counts(self) -> dict[str, int]:
        """Cells of the stored plan: total, done, failed, pending; and ``stale`` images of earlier plans."""
        ids = _plan_ids(self.plan_dict)
        done = self.done_ids()
        failed = sum(1 for i in ids if i not in done and self._cells.get(i, {}).get("state") == "failed")
        in_plan = sum(1 for i in ids if i in done)
        return {
            "cells": len(ids),
            "done": in_plan,
            "failed": failed,
            "pending": len(ids) - in_plan - failed,
            "stale": len(done) - in_plan,
        }

    @property
    def manifest(self) -> dict[str, Any]:
        """The whole manifest (format 1's shape), derived from the folder's files: O(cells), for readers."""
        cells: dict[str, dict[str, Any]] = {}
        for cell_id in _plan_ids(self.plan_dict):
            entry = self._cells.get(cell_id)
            if entry is None or (entry.get("state") == "done" and not self.image_path(cell_id)):
                cells[cell_id] = {"state": "pending"}
            else:
                cells[cell_id] = dict(entry)
        for cell_id, entry in self._cells.items():
            if cell_id not in cells and (entry.get("state") != "done" or self.image_path(cell_id)):
                cells[cell_id] = dict(entry)
        manifest: dict[str, Any] = {"format": FORMAT}
        for key in ("name", "state", "backend", "spec", "plan", "seed_resolutions"):
            if key in self._state or key in self._plan_doc:
                manifest[key] = self._state.get(key, self._plan_doc.get(key))
        manifest["cells"] = cells
        manifest["grids"] = self.grids
        manifest["created"] = self._state.get("created")
        manifest["updated"] = self._state.get("updated")
        return manifest

    # -- writing (one writer) -------------------------------------------------------------------

    def begin(self, plan: Plan, spec_source: dict[str, Any]) -> None:
        """Start (or resume) a run of ``plan``: writes the plan once and the run's state."""
        with self._lock:
            self._migrate()
            now = _now()
            self._plan_doc = {
                "format": FORMAT,
                "name": plan.spec.name,
                "written": now,
                "backend": plan.backend,
                "spec": spec_source,
                "seed_resolutions": plan.seed_resolutions,
                "plan": plan.as_dict(),
            }
            atomic_write_bytes(self.run_dir / PLAN, _json_bytes(self._plan_doc, indent=None))
            self._plan_set = {c.id for c in plan.cells}
            missing = [i for i, e in self._cells.items() if e.get("state") == "done" and not self.image_path(i)]
            for cell_id in missing:
                del self._cells[cell_id]
            self._counts = self.counts()
            old = self.run_dir / MANIFEST
            if old.exists():
                old.replace(self.run_dir / MIGRATED_MANIFEST)
            self._state.setdefault("created", now)
            self._state.update({"name": plan.spec.name, "state": "running"})
            self.save()

    def record_batch(self, items: Sequence[tuple[str, Image.Image, str]]) -> list[Path]:
        """Save finished cells ``(cell_id, image, infotext)``: images first, then their log lines, one fsync.

        Batches may arrive in any order (from several workers, through this one writer): the log
        keeps the last record of each cell, wherever it is.
        """
        paths: list[Path] = []
        entries: list[tuple[str, dict[str, Any]]] = []
        for cell_id, image, infotext in items:
            relative = f"{IMAGES}/{cell_id}.png"
            atomic_write_bytes(self.run_dir / relative, png_bytes(image, infotext))
            self._write_thumb(cell_id, image)
            entries.append((cell_id, {"state": "done", "file": relative, "infotext": infotext, "finished": _now()}))
            paths.append(self.run_dir / relative)
        self._append(entries)
        return paths

    def _write_thumb(self, cell_id: str, image: Image.Image) -> None:
        """``thumbs/ID.webp`` for the viewer, written after the image (so it is never older); best effort."""
        try:
            data = thumb_bytes(image)
            atomic_write_bytes(self.run_dir / THUMBS / f"{cell_id}{thumb_format()[0]}", data, durable=False)
        except (OSError, ValueError):
            pass  # the viewer makes it from the image on first request

    def kept_first_pass(self, name: str) -> KeptFirstPass:
        """Where the first pass of the hires group ``name`` is kept (``first-passes/NAME.bin``)."""
        return _FirstPassFile(self.run_dir / FIRST_PASSES / f"{name}.bin")

    def kept_first_passes(self) -> set[str]:
        """The names of the groups whose first pass is kept in the folder."""
        folder = self.run_dir / FIRST_PASSES
        if not folder.is_dir():
            return set()
        return {path.stem for path in folder.glob("*.bin") if path.is_file()}

    def drop_first_passes(self, names: Iterable[str]) -> None:
        """Delete the kept first passes of finished groups (and the folder once it is empty)."""
        folder = self.run_dir / FIRST_PASSES
        for name in names:
            (folder / f"{name}.bin").unlink(missing_ok=True)
        if folder.is_dir() and not any(p.suffix == ".bin" for p in folder.iterdir()):
            for leftover in folder.iterdir():
                leftover.unlink(missing_ok=True)
            folder.rmdir()

    def record_image(self, cell_id: str, image: Image.Image, infotext: str) -> Path:
        return self.record_batch([(cell_id, image, infotext)])[0]

    def record_failure(self, cell_ids: Iterable[str], error: str) -> None:
        now = _now()
        self._append([(cell_id, {"state": "failed", "error": error, "finished": now}) for cell_id in cell_ids])

    def record_grids(self, grids: list[dict[str, Any]]) -> None:
        with self._lock:
            self._migrate()
            self._state["grids"] = grids
            self.save()

    def finish(self, state: str) -> None:
        with self._lock:
            self._migrate()
            self._state["state"] = state
            self.save()
            self.close()

    def save(self, *, durable: bool = True) -> None:
        """Rewrite ``run.json`` (state, counts, grids): small, whatever the run's size."""
        with self._lock:
            self._migrate()
            if not self._counts:
                self._counts = self.counts()
            self._state.update({"format": FORMAT, "updated": _now(), "counts": dict(self._counts)})
            atomic_write_bytes(self.run_dir / STATE, _json_bytes(self._state), durable=durable)

    def close(self) -> None:
        with self._lock:
            if self._log_fd is not None:
                os.close(self._log_fd)
                self._log_fd = None

    def prune(self) -> tuple[list[str], list[Path]]:
        """Delete the images that are not cells of the stored plan and compact the log to the plan's cells.

        Returns the pruned cell ids and every file removed (stale images, unrecorded images of a
        killed batch, leftover temporary files).
        """
        with self._lock:
            if self.plan_dict is None:
                msg = f"{self.run_dir}: no plan recorded, so nothing can be called stale"
                raise SweepError(msg)
            self._migrate()
            self.close()
            wanted = self._plan_set
            stale = self.stale_ids()
            removed: list[Path] = []
            images = self.run_dir / IMAGES
            if images.is_dir():
                for path in sorted(images.iterdir()):
                    leftover = path.name.startswith(".") and path.name.endswith(".tmp")
                    if path.is_file() and (leftover or (path.suffix == ".png" and path.stem not in wanted)):
                        path.unlink()
                        removed.append(path)
            thumbs = self.run_dir / THUMBS
            if thumbs.is_dir():
                for path in sorted(thumbs.iterdir()):
                    if path.is_file() and path.name.split(".", 1)[0] not in wanted:
                        path.unlink()
                        removed.append(path)
            self._cells = {i: e for i, e in self._cells.items() if i in wanted}
            data = b"".join(_log_line(i, e) for i, e in self._cells.items())
            atomic_write_bytes(self.run_dir / LOG, data)
            self._log_end = len(data)
            self.ignored_lines = 0
            self._counts = self.counts()
            self.save()
            return stale, removed

    def _append(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        if not entries:
            return
        data = b"".join(_log_line(cell_id, entry) for cell_id, entry in entries)
        with self._lock:
            self._migrate()
            fd = self._open_log()
            if not self._counts:
                self._counts = self.counts()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            self._log_end += len(data)
            for cell_id, entry in entries:
                self._count(cell_id, self._cells.get(cell_id), entry)
                self._cells[cell_id] = entry
            self.save(durable=False)

    def _count(self, cell_id: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if cell_id not in self._plan_set:
            if new["state"] == "done" and not (old and old.get("state") == "done"):
                self._counts["stale"] += 1
            return
        before = old.get("state") if old else "pending"
        self._counts[before] = self._counts.get(before, 0) - 1
        self._counts[new["state"]] = self._counts.get(new["state"], 0) + 1

    def _open_log(self) -> int:
        """The log, opened for appending: lines appended since it was read are taken in, a torn tail cut off."""
        if self._log_fd is not None:
            return self._log_fd
        path = self.run_dir / LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), _FILE_MODE)
        size = os.fstat(fd).st_size
        if size > self._log_end:
            os.lseek(fd, self._log_end, os.SEEK_SET)
            tail = b""
            while len(tail) < size - self._log_end:
                chunk = os.read(fd, size - self._log_end - len(tail))
                if not chunk:
                    break
                tail += chunk
            complete = tail.rfind(b"\n") + 1
            self.ignored_lines += _parse_lines(tail[:complete], self._cells)
            self._log_end += complete
        if size != self._log_end:
            os.ftruncate(fd, self._log_end)
            os.fsync(fd)
        self._log_fd = fd
        return fd

    def _migrate(self) -> None:
        """Turn a folder read from one ``manifest.json`` into format 2 (log, plan, then state last)."""
        if not self._legacy:
            return
        data = b"".join(_log_line(i, e) for i, e in self._cells.items())
        atomic_write_bytes(self.run_dir / LOG, data)
        self._log_end = len(data)
        atomic_write_bytes(self.run_dir / PLAN, _json_bytes({"format": FORMAT, **self._plan_doc}, indent=None))
        self._legacy = False
        self._counts = self.counts()
        self.save()
        old = self.run_dir / MANIFEST
        if old.exists():
            old.replace(self.run_dir / MIGRATED_MANIFEST)

    def __del__(self) -> None:
        fd = getattr(self, "_log_fd", None)
        if fd is not None:
            os.close(fd)


class _FirstPassFile(KeptFirstPass):
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def save(self, data: bytes) -> None:
        atomic_write_bytes(self.path, data)


def _newest(run_dir: Path, names: Sequence[str]) -> str | None:
    """The most recently written of ``names`` in ``run_dir``: a ``manifest.json`` written over a
    format 2 folder (a new download) is newer than its ``run.json``; one left by a migration is older."""
    best: tuple[int, str] | None = None
    for name in names:
        try:
            mtime = (run_dir / name).stat().st_mtime_ns
        except OSError:
            continue
        if best is None or mtime > best[0]:
            best = (mtime, name)
    return best[1] if best else None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
