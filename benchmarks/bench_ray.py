"""Ray pool benchmark: a simulated GPU (a backend that only waits a fixed time per image, and per
checkpoint load) on 1, 2, 4 and 8 actors of a local Ray, through ``run_sweep`` and the run folder.

    python benchmarks/bench_ray.py
    python benchmarks/bench_ray.py --actors 1,2,4,8,16 --per-image 0.05 --batches 256

Two sweeps per pool size: one checkpoint (pure scaling: throughput against N x one actor) and a
checkpoint axis with a load cost (model loads against distinct checkpoints + actors). Nothing here
is a pass/fail test; the figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from sd_sweep.backends.ray.pool import RayPool, WorkerSpec, connect, shutdown
from sd_sweep.core.ports import (
    Backend,
    Capabilities,
    GeneratedImage,
    GenerationRequest,
    StepCallback,
    StopSignal,
)
from sd_sweep.core.run import run_sweep
from sd_sweep.core.spec import spec_from_dict

CHECKPOINTS = tuple(f"model-{i}.safetensors" for i in range(16))


class SimulatedGPU(Backend):
    """Waits ``per_image`` seconds per image, and ``load`` seconds when the checkpoint changes."""

    def __init__(self, per_image: float, load: float) -> None:
        self.per_image = per_image
        self.load = load
        self.model_loads = 0
        self._checkpoint: Any = object()

    def capabilities(self) -> Capabilities:
        params = frozenset({"prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height"})
        return Capabilities(
            name="simulated", params=params | {"checkpoint", "batch_size"}, choices={"checkpoint": CHECKPOINTS}
        )

    def generate(
        self, request: GenerationRequest, on_step: StepCallback | None = None, stop: StopSignal | None = None
    ) -> list[GeneratedImage]:
        checkpoint = request.params.get("checkpoint")
        if checkpoint != self._checkpoint:
            self._checkpoint = checkpoint
            self.model_loads += 1
            time.sleep(self.load)
        time.sleep(self.per_image * request.size)
        return [
            GeneratedImage(Image.new("RGB", (8, 8), (seed % 256, 0, 0)), f"{prompt}\nSeed: {seed}")
            for prompt, seed in zip(request.prompts, request.seeds)
        ]


@dataclass(frozen=True)
class Simulated:
    per_image: float
    load: float

    def __call__(self) -> SimulatedGPU:
        return SimulatedGPU(self.per_image, self.load)


def document(args: argparse.Namespace, checkpoints: int) -> dict[str, Any]:
    per_checkpoint = args.batches // checkpoints
    axes: list[dict[str, Any]] = [{"param": "seed", "values": f"1-{per_checkpoint * args.batch_size}"}]
    if checkpoints > 1:
        axes.insert(0, {"param": "checkpoint", "values": list(CHECKPOINTS[:checkpoints])})
    return {
        "name": f"ray-{checkpoints}",
        "base": {"prompt": "a cat", "steps": 1, "width": 8, "height": 8, "seed": 1, "batch_size": args.batch_size},
        "axes": axes,
    }


def measure(args: argparse.Namespace, actors: int, checkpoints: int, load: float) -> dict[str, Any]:
    spec = spec_from_dict(document(args, checkpoints))
    workers = [WorkerSpec(f"w{i}", Simulated(args.per_image, load)) for i in range(actors)]
    with tempfile.TemporaryDirectory() as folder, RayPool(workers) as pool:
        pool.pids()  # every actor started before the clock starts
        started = time.perf_counter()
        result = run_sweep(spec, SimulatedGPU(0, 0), Path(folder) / "run", dispatcher=pool, draw_grids=False)
        seconds = time.perf_counter() - started
        backend_loads = sum(n or 0 for n in pool.model_loads().values())
    images = len(result.generated)
    return {
        "actors": actors,
        "checkpoints": checkpoints,
        "images": images,
        "seconds": round(seconds, 3),
        "images_per_s": round(images / seconds, 2),
        "loads": backend_loads,
        "load_bound": checkpoints + actors,
        "batches_per_actor": dict(sorted(pool.stats.batches.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", default="1,2,4,8")
    parser.add_argument("--per-image", type=float, default=0.025, help="simulated seconds per image")
    parser.add_argument("--load", type=float, default=0.5, help="simulated seconds per checkpoint load")
    parser.add_argument("--batches", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--checkpoints", type=int, default=4, help="of the sweep with a checkpoint axis")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    counts = [int(n) for n in args.actors.split(",")]
    connect(None, num_cpus=2, object_store_memory=100 * 1024 * 1024)
    rows: list[dict[str, Any]] = []
    try:
        for checkpoints, load in ((1, 0.0), (args.checkpoints, args.load)):
            base: float | None = None
            for actors in counts:
                row = measure(args, actors, checkpoints, load)
                if actors == 1:
                    base = row["images_per_s"]
                row["vs_ideal"] = round(row["images_per_s"] / (base * actors), 3) if base else None
                rows.append(row)
                if not args.json:
                    print(
                        f"checkpoints {checkpoints} (load {load}s)  actors {actors}: {row['images']} images in "
                        f"{row['seconds']}s = {row['images_per_s']} img/s, {row['vs_ideal']} of ideal; "
                        f"loads {row['loads']} (bound {row['load_bound']}); batches {row['batches_per_actor']}"
                    )
    finally:
        shutdown()
    if args.json:
        print(json.dumps({"python": platform.python_version(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
