"""Batching benchmark: a prompt-by-seed sweep run one cell per call (as the X/Y/Z plot does) and
as planned batches, on one backend in one process; also the raw backend rate at batch 1 and N.

    python benchmarks/bench_sweep.py                      # tiny model, CPU
    python benchmarks/bench_sweep.py --size sd15 --width 512 --height 512 --steps 20 --batch 8

Prints images/s for each mode and their ratios; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sd_sweep.core.ports import GenerationRequest
from sd_sweep.core.run import run_sweep
from sd_sweep.core.spec import spec_from_dict

PROMPTS = ["a lighthouse at dusk", "a red fox in snow", "a bowl of ramen", "a castle on a hill"]


def sweep_document(args: argparse.Namespace, batch_size: int) -> dict:
    seeds = ", ".join(str(s) for s in range(1, args.seeds + 1))
    return {
        "name": f"bench-b{batch_size}",
        "base": {
            "prompt": "PROMPT, highly detailed",
            "negative_prompt": "blurry",
            "steps": args.steps,
            "cfg_scale": 7,
            "width": args.width,
            "height": args.height,
            "sampler_name": "Euler",
            "batch_size": batch_size,
        },
        "axes": [
            {"param": "prompt_sr", "values": ["PROMPT", *PROMPTS[1:]]},
            {"param": "seed", "values": seeds},
        ],
        "limits": {"max_cells": 100_000},
    }


def raw_rate(backend, args: argparse.Namespace, batch: int, images: int) -> float:
    params = {
        "steps": args.steps,
        "cfg_scale": 7.0,
        "width": args.width,
        "height": args.height,
        "sampler_name": "Euler",
    }
    request = GenerationRequest(
        params=params,
        prompts=[PROMPTS[0]] * batch,
        negative_prompts=["blurry"] * batch,
        seeds=list(range(batch)),
        cell_ids=[str(i) for i in range(batch)],
    )
    backend.generate(request)
    _sync()
    started = time.perf_counter()
    done = 0
    while done < images:
        backend.generate(request)
        done += batch
    _sync()
    return done / (time.perf_counter() - started)


def sweep_rate(backend, args: argparse.Namespace, batch_size: int, work: Path) -> tuple[float, int]:
    spec = spec_from_dict(sweep_document(args, batch_size))
    _sync()
    started = time.perf_counter()
    result = run_sweep(spec, backend, work / spec.name, draw_grids=False)
    _sync()
    elapsed = time.perf_counter() - started
    return len(result.generated) / elapsed, len(result.plan.batches)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def make_backend(args: argparse.Namespace, work: Path) -> Any:
    """The embedded backend on ``--model``, else the tiny model or an SD 1.5-sized random one built in ``work``."""
    from sd_sweep.backends.diffusers.backend import DiffusersBackend
    from sd_sweep.backends.diffusers.tiny_model import build_tiny_pipeline_dir, ensure_tiny_model

    model = args.model
    if model is None:
        model = ensure_tiny_model() if args.size == "tiny" else build_tiny_pipeline_dir(work / "sd15", size="sd15")
    return DiffusersBackend(model, device=args.device)


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu} x{torch.get_num_threads()} threads, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=8, help="seeds per prompt; 4 prompts")
    parser.add_argument("--device")
    parser.add_argument("--model", help="model folder (default: a tiny or SD 1.5-sized random model)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        backend = make_backend(args, work)
        images = 4 * args.seeds
        raw_1 = raw_rate(backend, args, 1, max(4, images // 4))
        raw_n = raw_rate(backend, args, args.batch, images)
        per_cell, calls_1 = sweep_rate(backend, args, 1, work)
        planned, calls_n = sweep_rate(backend, args, args.batch, work)
    report = {
        "machine": machine(),
        "model": args.size if args.model is None else args.model,
        "size": f"{args.width}x{args.height}",
        "steps": args.steps,
        "images": images,
        "raw_batch_1_img_s": round(raw_1, 3),
        f"raw_batch_{args.batch}_img_s": round(raw_n, 3),
        "sweep_one_cell_per_call_img_s": round(per_cell, 3),
        "sweep_planned_batches_img_s": round(planned, 3),
        "calls_one_cell_per_call": calls_1,
        "calls_planned": calls_n,
        "speedup_planned_vs_per_cell": round(planned / per_cell, 2),
        "planned_vs_raw_batched": round(planned / raw_n, 3),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
