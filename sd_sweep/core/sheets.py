"""Grids of a run folder, from its recorded plan alone, so a finished run can be re-sliced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sd_sweep.core.errors import SpecError
from sd_sweep.core.store import RunStore, atomic_write_bytes, png_bytes


def _dimension_of(name: str, dimensions: list[dict[str, Any]]) -> str:
    from sd_sweep.core.params import canonical_name

    for spelling in (name, canonical_name(name)):
        for dimension in dimensions:
            if spelling in (dimension["name"], *dimension.get("axes", ()), *dimension["params"]):
                return dimension["name"]
    known = [d["name"] for d in dimensions]
    raise SpecError.single("layout", name, f"not an axis of this run; axes: {known}")


def render_run_grids(
    store: RunStore,
    *,
    x: str | None = None,
    y: str | None = None,
    pages: list[str] | None = None,
    pixel_budget: int = 64_000_000,
    prefix: str = "grid",
) -> list[Path]:
    """Draw the run's sheets into ``grids/``; with no layout given, the spec's layout is used."""
    from sd_sweep.core.grid import GridAxis, GridEntry, build_sheets

    plan = store.plan_dict
    if plan is None:
        raise SpecError.single("run_dir", str(store.run_dir), "no run plan recorded in this folder")
    dimensions = plan["dimensions"]
    if x is None and y is None and pages is None:
        layout = plan.get("layout", {})
        x, y, pages = layout.get("x"), layout.get("y"), layout.get("page") or None
    x = _dimension_of(x, dimensions) if x else None
    y = _dimension_of(y, dimensions) if y else None
    pages = [_dimension_of(p, dimensions) for p in pages] if pages else None
    chosen = [n for n in (x, y, *(pages or [])) if n is not None]
    if len(chosen) != len(set(chosen)):
        raise SpecError.single("layout", chosen, "an axis (or zip group) may appear only once in the layout")
    if x is None and y is None and not pages:
        x = dimensions[0]["name"] if dimensions else None
        y = dimensions[1]["name"] if len(dimensions) > 1 else None
    axes = [GridAxis(name=d["name"], title=d["title"], labels=list(d["labels"])) for d in dimensions]
    entries = [GridEntry(coords=c["coords"], image=store.image_path(c["id"])) for c in plan["cells"]]
    if not axes:
        axes = [GridAxis(name="cell", title="", labels=[""])]
        entries = [GridEntry(coords={"cell": 0}, image=e.image) for e in entries]
        x = "cell"
    out_dir = store.run_dir / "grids"
    written: list[Path] = []
    records: list[dict[str, Any]] = []
    sheets = build_sheets(axes, entries, x=x, y=y, pages=pages, pixel_budget=pixel_budget, stem_prefix=prefix)
    for sheet in sheets:
        path = out_dir / f"{sheet.stem}.png"
        atomic_write_bytes(path, png_bytes(sheet.image, None))
        written.append(path)
        records.append({"file": str(path.relative_to(store.run_dir)), "title": sheet.title})
    store.record_grids(records)
    return written
