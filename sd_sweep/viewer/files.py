"""Thumbnails (written with each image; else made lazily, cached in the run folder), sheets, ZIPs."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sd_sweep.core.errors import SpecError
from sd_sweep.core.store import (
    IMAGES,
    THUMB_SIZE,
    THUMBS,
    RunStore,
    atomic_write_bytes,
    png_bytes,
    thumb_bytes,
)
from sd_sweep.core.store import thumb_format as _thumb_format

CELL_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def thumb_media_type() -> str:
    return _thumb_format()[2]


def thumb_name(cell_id: str) -> str:
    """The file name of a cell's thumbnail inside ``thumbs/``."""
    return f"{cell_id}{_thumb_format()[0]}"


def thumbnail(run_dir: Path | str, cell_id: str, size: int = THUMB_SIZE) -> Path | None:
    """The cell's thumbnail (at most ``size`` px a side): the one the run wrote with the image, or
    made from ``images/ID.png`` on first use (folders written before thumbnails were saved).

    Cached as ``thumbs/ID.webp``; made again when the image is newer. ``None`` when the cell has
    no image (yet).
    """
    from PIL import Image

    if not CELL_ID.match(cell_id):
        raise SpecError.single("cell_id", cell_id, "not a cell id (letters, digits, - and _)")
    run_dir = Path(run_dir)
    source = run_dir / IMAGES / f"{cell_id}.png"
    try:
        mtime = source.stat().st_mtime_ns
    except OSError:
        return None
    suffix = _thumb_format()[0]
    target = run_dir / THUMBS / f"{cell_id}{suffix}"
    try:
        if target.stat().st_mtime_ns >= mtime:
            return target
    except OSError:
        pass
    with Image.open(source) as image:
        image.thumbnail((size, size))
        data = thumb_bytes(image, size)
    atomic_write_bytes(target, data, durable=False)
    return target


def _names(dimensions: list[dict[str, Any]]) -> list[str]:
    return [d["name"] for d in dimensions]


def render_view(
    store: RunStore,
    *,
    x: str | None,
    y: str | None,
    pages: Sequence[str] | None = None,
    hidden: dict[str, Sequence[int]] | None = None,
    pixel_budget: int = 64_000_000,
) -> list[tuple[str, bytes]]:
    """The sheets of one view, drawn by the grid code: ``[(file name, PNG bytes), ...]``.

    ``hidden`` maps a dimension name to the value indexes left out of the sheets.
    """
    from sd_sweep.core.grid import GridAxis, GridEntry, build_sheets

    plan = store.plan_dict
    if plan is None:
        raise SpecError.single("run", store.run_dir.name, "no run plan recorded in this folder")
    dimensions = plan.get("dimensions", [])
    names = _names(dimensions)
    for field_name, value in (("x", x), ("y", y), *(("pages", p) for p in pages or [])):
        if value is not None and value not in names:
            raise SpecError.single(field_name, value, f"not a dimension of this run; dimensions: {names}")
    hidden = dict(hidden or {})
    keep: dict[str, list[int]] = {}
    for dimension in dimensions:
        gone = hidden.pop(dimension["name"], ())
        if not isinstance(gone, (list, tuple)) or not all(isinstance(i, int) for i in gone):
            raise SpecError.single(f"hidden.{dimension['name']}", gone, "must be a list of value indexes")
        keep[dimension["name"]] = [i for i in range(len(dimension["labels"])) if i not in set(gone)]
        if not keep[dimension["name"]]:
            raise SpecError.single(f"hidden.{dimension['name']}", list(gone), "every value is hidden")
    if hidden:
        name = next(iter(hidden))
        raise SpecError.single(f"hidden.{name}", hidden[name], f"not a dimension of this run; dimensions: {names}")
    axes = [
        GridAxis(name=d["name"], title=d["title"], labels=[d["labels"][i] for i in keep[d["name"]]]) for d in dimensions
    ]
    position = {name: {old: new for new, old in enumerate(kept)} for name, kept in keep.items()}
    entries = []
    for cell in plan["cells"]:
        coords = cell["coords"]
        if all(coords[n] in position[n] for n in names):
            mapped = {n: position[n][coords[n]] for n in names}
            entries.append(GridEntry(coords=mapped, image=store.image_path(cell["id"])))
    if not axes:
        axes = [GridAxis(name="cell", title="", labels=[""])]
        entries = [GridEntry(coords={"cell": 0}, image=e.image) for e in entries]
        x = "cell"
    layout_pages = [p for p in pages or [] if p not in (x, y)]
    layout_pages += [n for n in names if n not in (x, y) and n not in layout_pages]
    sheets = build_sheets(axes, entries, x=x, y=y, pages=layout_pages, pixel_budget=pixel_budget, stem_prefix="view")
    return [(f"{sheet.stem}.png", png_bytes(sheet.image, None)) for sheet in sheets]


def zip_bytes(files: Sequence[tuple[str, bytes | Path]]) -> bytes:
    """A ZIP of ``(name, content or path)``; PNGs are stored, not compressed again."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files:
            if isinstance(content, Path):
                archive.write(content, name)
            else:
                archive.writestr(name, content)
    return buffer.getvalue()


def _safe(text: str, limit: int = 40) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:limit]


def images_zip(store: RunStore, cell_ids: Sequence[str]) -> bytes:
    """A ZIP of the done images among ``cell_ids``, named by their labels and id."""
    plan = store.plan_dict or {}
    by_id = {str(c["id"]): c for c in plan.get("cells", [])}
    files: list[tuple[str, bytes | Path]] = []
    for n, cell_id in enumerate(cell_ids):
        if not isinstance(cell_id, str) or cell_id not in by_id:
            raise SpecError.single(f"ids[{n}]", cell_id, "not a cell of this run")
        path = store.image_path(cell_id)
        if path is None:
            continue
        labels = "-".join(_safe(f"{k}={v}") for k, v in by_id[cell_id].get("labels", {}).items())
        files.append((f"{labels + '-' if labels else ''}{cell_id}.png", path))
    return zip_bytes(files)
