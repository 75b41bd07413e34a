"""A run's folder: images with their infotext, grids, and a manifest written atomically."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.core.errors import SweepError

if TYPE_CHECKING:
    from PIL import Image

    from sd_sweep.core.plan import Plan

MANIFEST = "manifest.json"


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
FORMAT = "sd-sweep-run/1"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
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


def read_infotext(path: Path) -> str | None:
    from PIL import Image

    with Image.open(path) as image:
        return image.info.get("parameters")


class RunStore:
    """The manifest of one run folder and the files it names.

    Cell states: ``pending``, ``done`` (its image is on disk) or ``failed`` (with ``error``).
    Cells of earlier plans stay listed, so a spec that shrinks and grows again loses nothing.
    """

    def __init__(self, run_dir: Path, manifest: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.manifest = manifest

    @classmethod
    def open(cls, run_dir: Path | str) -> RunStore:
        run_dir = Path(run_dir)
        path = run_dir / MANIFEST
        if not path.exists():
            return cls(run_dir, {"format": FORMAT, "cells": {}, "seed_resolutions": {}, "grids": []})
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"{path}: not a readable run manifest ({exc})"
            raise SweepError(msg) from None
        if manifest.get("format") != FORMAT:
            msg = f"{path}: unknown manifest format {manifest.get('format')!r}"
            raise SweepError(msg)
        return cls(run_dir, manifest)

    @property
    def exists(self) -> bool:
        return (self.run_dir / MANIFEST).exists()

    @property
    def seed_resolutions(self) -> dict[str, int]:
        return dict(self.manifest.get("seed_resolutions", {}))

    @property
    def cells(self) -> dict[str, dict[str, Any]]:
        return self.manifest["cells"]

    def image_path(self, cell_id: str) -> Path | None:
        entry = self.cells.get(cell_id)
        if not entry or entry.get("state") != "done":
            return None
        path = self.run_dir / entry["file"]
        return path if path.exists() else None

    def done_ids(self) -> set[str]:
        return {cell_id for cell_id in self.cells if self.image_path(cell_id)}

    def begin(self, plan: Plan, spec_source: dict[str, Any]) -> None:
        now = _now()
        self.manifest.setdefault("created", now)
        self.manifest.update(
            {
                "name": plan.spec.name,
                "updated": now,
                "state": "running",
                "backend": plan.backend,
                "spec": spec_source,
                "plan": plan.as_dict(),
                "seed_resolutions": plan.seed_resolutions,
            }
        )
        for cell in plan.cells:
            entry = self.cells.setdefault(cell.id, {"state": "pending"})
            if entry.get("state") == "done" and not self.image_path(cell.id):
                entry.clear()
                entry["state"] = "pending"
        self.save()

    def record_image(self, cell_id: str, image: Image.Image, infotext: str) -> Path:
        relative = f"images/{cell_id}.png"
        atomic_write_bytes(self.run_dir / relative, png_bytes(image, infotext))
        self.cells[cell_id] = {"state": "done", "file": relative, "infotext": infotext, "finished": _now()}
        return self.run_dir / relative

    def record_failure(self, cell_ids: list[str], error: str) -> None:
        for cell_id in cell_ids:
            self.cells[cell_id] = {"state": "failed", "error": error}

    def record_grids(self, grids: list[dict[str, Any]]) -> None:
        self.manifest["grids"] = grids

    def finish(self, state: str) -> None:
        self.manifest["state"] = state
        self.save()

    def save(self) -> None:
        self.manifest["updated"] = _now()
        data = json.dumps(self.manifest, indent=1, ensure_ascii=False, default=str).encode()
        atomic_write_bytes(self.run_dir / MANIFEST, data)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
