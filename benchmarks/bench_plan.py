"""Planning benchmark: the time ``build_plan`` takes for a 100,000-cell sweep over three axes.

    python benchmarks/bench_plan.py               # 100 prompt S/R values x 100 CFG values x 10 seeds
    python benchmarks/bench_plan.py --repeat 5

Plans with batch size 1 and 8 and prints the best time of each, plus a digest of the plan (cell
ids, params, batches, estimate) so two versions of the planner can be shown to agree. Nothing
here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sd_sweep.core.plan import Plan
from sd_sweep.core.planner import build_plan
from sd_sweep.core.ports import Capabilities
from sd_sweep.core.spec import spec_from_dict

CAPS = Capabilities(
    name="bench",
    params=frozenset({"prompt", "negative_prompt", "seed", "cfg_scale", "steps", "width", "height", "sampler_name"}),
)


def sweep_document(prompts: int, cfgs: int, seeds: int, batch_size: int) -> dict:
    words = [f"subject{n}" for n in range(prompts)]
    return {
        "name": f"plan-b{batch_size}",
        "base": {
            "prompt": "subject0, highly detailed",
            "negative_prompt": "blurry",
            "steps": 20,
            "width": 512,
            "height": 512,
            "sampler_name": "Euler",
            "batch_size": batch_size,
        },
        "axes": [
            {"param": "prompt_sr", "values": words},
            {"param": "cfg_scale", "values": [1 + n * 0.1 for n in range(cfgs)]},
            {"param": "seed", "values": list(range(1, seeds + 1))},
        ],
        "limits": {"max_cells": prompts * cfgs * seeds},
    }


def digest(plan: Plan) -> str:
    """A hash of everything a run takes from the plan, in order."""
    sha = hashlib.sha256()
    for cell in plan.cells:
        sha.update(json.dumps([cell.id, cell.index, cell.params], sort_keys=True).encode())
    sha.update(json.dumps([plan.batches, plan.estimate], sort_keys=True).encode())
    return sha.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--cfgs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}")
    for batch_size in (1, 8):
        spec = spec_from_dict(sweep_document(args.prompts, args.cfgs, args.seeds, batch_size))
        times = []
        plan = None
        for _ in range(args.repeat):
            started = time.perf_counter()
            plan = build_plan(spec, CAPS, rng=random.Random(0))
            times.append(time.perf_counter() - started)
        assert plan is not None
        print(
            f"batch size {batch_size}: {len(plan.cells)} cells, {len(plan.batches)} batches, "
            f"best {min(times):.3f} s of {args.repeat} (digest {digest(plan)})"
        )


if __name__ == "__main__":
    main()
