"""A run's index: the JSON document the viewer page reads (dimensions, layout and every cell)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sd_sweep.core.store import STATE, RunStore

INDEX_FORMAT = "sd-sweep-view/1"


def build_index(run_dir: Path | str, store: RunStore | None = None) -> dict[str, Any]:
    """The viewer's document for one run folder (format 1 or 2), read through ``RunStore``.

    ``dimensions`` are the plan's (a zip group is one dimension with several ``axes``), each cell
    carries its ``coords`` (value index per dimension name), ``labels``, ``state`` (``done``,
    ``failed`` or ``pending``), and when done its ``file`` (relative to the run folder) and
    ``infotext``; a failed cell has its ``error``.
    """
    store = store or RunStore.open(run_dir)
    plan = store.plan_dict or {}
    cells: list[dict[str, Any]] = []
    done = store.done_ids()
    for cell in plan.get("cells", []):
        cell_id = str(cell["id"])
        entry = store.cells.get(cell_id) or {}
        item: dict[str, Any] = {
            "id": cell_id,
            "coords": dict(cell.get("coords") or {}),
            "labels": dict(cell.get("labels") or {}),
        }
        if entry.get("state") == "done" and cell_id in done:
            item.update(state="done", file=entry["file"], infotext=entry.get("infotext") or "")
        elif entry.get("state") == "failed":
            item.update(state="failed", error=entry.get("error") or "")
        else:
            item["state"] = "pending"
        cells.append(item)
    dimensions = [
        {
            "name": d["name"],
            "title": d.get("title") or d["name"],
            "labels": [str(label) for label in d.get("labels", [])],
            "axes": list(d.get("axes") or [d["name"]]),
            "params": list(d.get("params") or []),
        }
        for d in plan.get("dimensions", [])
    ]
    state = (RunStore.read_state(store.run_dir) or {}) if (store.run_dir / STATE).exists() else {}
    return {
        "format": INDEX_FORMAT,
        "name": state.get("name") or plan.get("name") or store.run_dir.name,
        "folder": store.run_dir.name,
        "state": store.state,
        "created": state.get("created"),
        "updated": state.get("updated"),
        "counts": store.counts(),
        "dimensions": dimensions,
        "zip_groups": [d["axes"] for d in dimensions if len(d["axes"]) > 1],
        "layout": dict(plan.get("layout") or {}),
        "cells": cells,
        "grids": store.grids,
    }
