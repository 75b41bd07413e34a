"""``python -m sd_sweep export``: a folder that shows a run from disk (``file://``), no server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sd_sweep.core.errors import SweepError
from sd_sweep.core.store import RunStore, atomic_write_bytes
from sd_sweep.viewer import STATIC
from sd_sweep.viewer.files import THUMBS, thumb_name, thumbnail
from sd_sweep.viewer.index import build_index

DATA_MARKER = "<!--sweep-data-->"
PAGE_FILES = ("dom.js", "viewer.js", "viewer.css")


def export_run(run_dir: Path | str, out_dir: Path | str) -> Path:
    """Write ``index.html``, the page's script and style, ``index.js`` (the index as data),
    ``thumbs/`` and ``images/`` into ``out_dir``; returns the ``index.html``."""
    run_dir, out_dir = Path(run_dir).resolve(), Path(out_dir).resolve()
    store = RunStore.open(run_dir)
    if store.plan_dict is None:
        msg = f"{run_dir}: no run here (no plan.json, run.json or manifest.json with a plan)"
        raise SweepError(msg)
    if out_dir == run_dir or run_dir in out_dir.parents:
        msg = f"{out_dir}: the export folder must be outside the run folder {run_dir}"
        raise SweepError(msg)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = build_index(run_dir, store)
    index["thumb_name"] = thumb_name("ID")
    for cell in index["cells"]:
        if cell["state"] != "done":
            continue
        target = out_dir / cell["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / cell["file"], target)
        thumb = thumbnail(run_dir, cell["id"])
        if thumb is not None:
            (out_dir / THUMBS).mkdir(exist_ok=True)
            shutil.copyfile(thumb, out_dir / THUMBS / thumb.name)
    for grid in index["grids"]:
        source = run_dir / grid["file"]
        if source.is_file():
            (out_dir / grid["file"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out_dir / grid["file"])
    data = json.dumps(index, ensure_ascii=False).replace("</", "<\\/")
    atomic_write_bytes(out_dir / "index.js", f"window.SWEEP_INDEX = {data};\n".encode(), durable=False)
    for name in PAGE_FILES:
        shutil.copyfile(STATIC / name, out_dir / name)
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace(DATA_MARKER, '<script src="index.js"></script>')
    atomic_write_bytes(out_dir / "index.html", page.encode(), durable=False)
    return out_dir / "index.html"
