"""Run folders for the viewer's tests, made with the fake backend: done, failed and pending cells."""

from __future__ import annotations

import json
from pathlib import Path

from sd_sweep.core.run import run_sweep
from sd_sweep.core.spec import spec_from_dict
from sd_sweep.core.store import LOG, PLAN, RunStore
from tests.fakes import FakeBackend

DOC = {
    "name": "look",
    "base": {
        "prompt": "a cat",
        "negative_prompt": "",
        "steps": 1,
        "width": 24,
        "height": 24,
        "seed": 3,
        "batch_size": 2,
    },
    "axes": [
        {"param": "cfg_scale", "values": "3-5"},
        {"param": "prompt_sr", "values": "cat, dog"},
        {"param": "sampler_name", "values": ["Euler", "Euler a"]},
    ],
    "layout": {"x": "cfg_scale", "y": "prompt_sr"},
}


def make_run(run_dir: Path, *, failing: bool = True, pending: int = 1) -> dict:
    """A finished 3 x 2 x 2 run, then: its second cell failed (when ``failing``) and the last
    ``pending`` cells of the plan without a record. Returns the plan dict."""
    run_sweep(spec_from_dict(DOC), FakeBackend(), run_dir, draw_grids=False)
    plan = json.loads((run_dir / PLAN).read_text())["plan"]
    if failing:
        store = RunStore.open(run_dir)
        store.record_failure([plan["cells"][1]["id"]], "RuntimeError: out of memory")
        store.close()
        (run_dir / "images" / f"{plan['cells'][1]['id']}.png").unlink()
    drop = {c["id"] for c in plan["cells"][len(plan["cells"]) - pending :]} if pending else set()
    lines = (run_dir / LOG).read_text().splitlines(keepends=True)
    (run_dir / LOG).write_text("".join(line for line in lines if json.loads(line)["id"] not in drop))
    for cell_id in drop:
        (run_dir / "images" / f"{cell_id}.png").unlink(missing_ok=True)
    RunStore.open(run_dir).save()  # run.json's counts, as a writer would leave them
    return plan


def cell_at(plan: dict, **coords: int) -> dict:
    return next(c for c in plan["cells"] if all(c["coords"][k] == v for k, v in coords.items()))
