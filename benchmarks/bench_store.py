"""Run store benchmark: the engine's cost per cell on a backend that costs nothing.

    python benchmarks/bench_store.py                     # 1,000, 4,000 and 16,000 cells
    python benchmarks/bench_store.py --cells 1000 4000

A seed sweep at batch size 1 whose backend returns the same 8x8 image at once, so what is timed
is the engine: request building, PNG encoding and writing, the cell log (one fsync per batch)
and the small state file. Planning (and writing ``plan.json``) is timed apart, as are reopening
the folder as a resume would and, with ``--grids``, drawing the grids. Prints a table and the 16k/1k ratio of the
run loop's time per cell, then what the viewer's thumbnail (written with every image) costs per
cell beside the PNG at ``--thumb-size`` px (512 by default); nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from sd_sweep.backends.webui.params import TXT2IMG_ONLY, WEBUI_PARAMS
from sd_sweep.core.infotext import build_infotext
from sd_sweep.core.plan import Cell, Plan
from sd_sweep.core.ports import Backend, Capabilities, GeneratedImage, GenerationRequest
from sd_sweep.core.run import RunObserver, RunResult, run_sweep
from sd_sweep.core.sheets import render_run_grids
from sd_sweep.core.spec import spec_from_dict
from sd_sweep.core.store import RunStore, png_bytes, thumb_bytes


class FreeBackend(Backend):
    """Returns one ready 8x8 image per prompt with a real infotext, instantly."""

    def __init__(self) -> None:
        self.image = Image.new("RGB", (8, 8), (200, 120, 40))

    def capabilities(self) -> Capabilities:
        return Capabilities(name="free", params=WEBUI_PARAMS | TXT2IMG_ONLY, choices={"sampler_name": ("Euler",)})

    def generate(self, request: GenerationRequest, on_step=None, stop=None) -> list[GeneratedImage]:
        return [
            GeneratedImage(self.image, build_infotext(p, n, {**request.params, "seed": s}))
            for p, n, s in zip(request.prompts, request.negative_prompts, request.seeds)
        ]


class Clock(RunObserver):
    def __init__(self) -> None:
        self.started_at = 0.0
        self.finished_at = 0.0

    def started(self, plan: Plan, todo: list[list[Cell]], first_passes_kept: frozenset[int] = frozenset()) -> None:
        self.started_at = time.perf_counter()

    def finished(self, result: RunResult) -> None:
        self.finished_at = time.perf_counter()


def document(cells: int) -> dict:
    return {
        "name": f"store-{cells}",
        "base": {
            "prompt": "a lighthouse at dusk, oil painting, highly detailed",
            "negative_prompt": "blurry, lowres",
            "steps": 20,
            "cfg_scale": 7,
            "width": 8,
            "height": 8,
            "sampler_name": "Euler",
            "batch_size": 1,
        },
        "axes": [{"param": "seed", "values": f"1-{cells}"}],
        "limits": {"max_cells": cells},
    }


def measure(cells: int, root: Path, grids: bool) -> dict[str, float]:
    run_dir = root / f"run-{cells}"
    clock = Clock()
    called = time.perf_counter()
    result = run_sweep(spec_from_dict(document(cells)), FreeBackend(), run_dir, observer=clock, draw_grids=False)
    assert result.state == "finished"
    assert len(result.generated) == cells
    opened = time.perf_counter()
    store = RunStore.open(run_dir)
    done = len(store.done_ids())
    reopen = time.perf_counter() - opened
    assert done == cells
    drawn = time.perf_counter()
    if grids:
        render_run_grids(store)
    drawing = time.perf_counter() - drawn if grids else float("nan")
    loop = clock.finished_at - clock.started_at
    return {
        "cells": cells,
        "setup_s": clock.started_at - called,
        "loop_s": loop,
        "ms_per_cell": 1000 * loop / cells,
        "reopen_s": reopen,
        "grids_s": drawing,
    }


def thumb_cost(size: int, repeats: int = 20) -> dict[str, float]:
    """ms per image for the PNG (with infotext) and for its thumbnail, on a noisy ``size`` px image."""
    import os

    image = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).resize((size, size))
    image = image.resize((size // 8, size // 8)).resize((size, size), Image.Resampling.BICUBIC)
    infotext = "a lighthouse at dusk\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1"
    timings = {}
    for name, call in (("png_ms", lambda: png_bytes(image, infotext)), ("thumb_ms", lambda: thumb_bytes(image))):
        call()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        timings[name] = 1000 * (time.perf_counter() - start) / repeats
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--grids", action="store_true", help="also time drawing the grids (apart from the loop)")
    parser.add_argument("--thumb-size", type=int, default=512, help="image size for the thumbnail cost (px)")
    parser.add_argument("--dir", type=Path, help="where the run folders go (default: a temporary folder)")
    args = parser.parse_args()
    print(f"{platform.platform()}, Python {platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for cells in args.cells:
            rows.append(measure(cells, Path(tmp), args.grids))
            row = rows[-1]
            print(
                f"{row['cells']:>6} cells: run loop {row['loop_s']:7.2f} s = {row['ms_per_cell']:.2f} ms/cell; "
                f"planning + plan.json {row['setup_s']:.2f} s; reopen {row['reopen_s']:.2f} s; "
                + (f"grids {row['grids_s']:.2f} s" if args.grids else "grids not drawn"),
                flush=True,
            )
    if len(rows) > 1:
        ratio = rows[-1]["ms_per_cell"] / rows[0]["ms_per_cell"]
        print(f"time per cell, {rows[-1]['cells']} / {rows[0]['cells']} cells: {ratio:.2f}x")
    cost = thumb_cost(args.thumb_size)
    print(
        f"{args.thumb_size} px image: PNG {cost['png_ms']:.1f} ms, thumbnail {cost['thumb_ms']:.1f} ms "
        f"({100 * cost['thumb_ms'] / cost['png_ms']:.0f}% of the PNG), on the saving thread"
    )


if __name__ == "__main__":
    main()
