"""Hires first-pass reuse: a sweep of the hires denoising strength with each first pass made once
per group, against the same sweep with every cell making its own, on one backend in one process.

    python benchmarks/bench_hires.py                                    # tiny model, CPU
    python benchmarks/bench_hires.py --size sd15 --width 512 --height 512 --steps 20 --device cuda
    python benchmarks/bench_hires.py --batch-size 2                     # the seeds of a group in one batch

One prompt, ``--seeds`` seeds, ``--denoising`` values, ``--scale`` upscale: each mode runs the whole
engine (plan, generate, save every PNG) into its own run folder, ``--repeats`` times, alternating
(the fastest run of each counts: a shared machine slows some). Prints the time per image of
each mode, their ratio (at ``--batch-size`` above 1 the other mode batches the seeds too, but makes
each batch's first passes again), and the best ratio reuse could give: by the plan's sampling steps (as if
every step cost the same), and by time (the one-cell-at-a-time time per image less the first passes
reuse leaves out, each timed alone: a hires step covers ``scale**2`` times the latent of a
first-pass step, so it costs more). Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_sweep import _sync, machine, make_backend
from sd_sweep.core.ports import GenerationRequest
from sd_sweep.core.run import run_sweep
from sd_sweep.core.spec import spec_from_dict


def sweep_document(args: argparse.Namespace, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "base": {
            "prompt": "a lighthouse on a cliff at dusk, highly detailed",
            "negative_prompt": "blurry",
            "steps": args.steps,
            "cfg_scale": 7,
            "sampler_name": args.sampler,
            "width": args.width,
            "height": args.height,
            "enable_hr": True,
            "hr_scale": args.scale,
            "hr_upscaler": args.upscaler,
            "hr_second_pass_steps": args.hr_steps,
            "batch_size": args.batch_size,
        },
        "axes": [
            {"param": "seed", "values": list(range(1, args.seeds + 1))},
            {"param": "denoising_strength", "values": args.denoising},
        ],
    }


def timed_sweep(backend: Any, args: argparse.Namespace, name: str, work: Path) -> tuple[float, dict[str, Any]]:
    """Seconds per image of the sweep, and its plan's estimate."""
    spec = spec_from_dict(sweep_document(args, name))
    _sync()
    started = time.perf_counter()
    result = run_sweep(spec, backend, work / name, draw_grids=False)
    _sync()
    elapsed = time.perf_counter() - started
    if result.state != "finished":
        raise RuntimeError(f"{name}: the sweep ended {result.state}: {result.error}")
    return elapsed / len(result.generated), result.plan.estimate


def first_pass_seconds(backend: Any, args: argparse.Namespace) -> float:
    """Seconds of a first pass (the txt2img of the seeds in batches of ``--batch-size``, nothing saved),
    per seed."""
    base = sweep_document(args, "first-pass")["base"]
    params = {k: v for k, v in base.items() if k not in ("prompt", "negative_prompt") and not k.startswith("hr_")}
    params["enable_hr"] = False
    seeds = list(range(1, args.seeds + 1))
    _sync()
    started = time.perf_counter()
    for start in range(0, len(seeds), args.batch_size):
        batch = seeds[start : start + args.batch_size]
        prompts, negatives = [base["prompt"]] * len(batch), [base["negative_prompt"]] * len(batch)
        backend.generate(GenerationRequest(params, prompts, negatives, batch, [str(s) for s in batch]))
    _sync()
    return (time.perf_counter() - started) / len(seeds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "sd15"), default="tiny")
    parser.add_argument("--model", help="a diffusers folder or checkpoint file instead of a random model")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--hr-steps", type=int, default=0, help="hires steps (0: as --steps)")
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--upscaler", default="Latent")
    parser.add_argument("--sampler", default="Euler a")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--denoising", type=float, nargs="+", default=[0.3, 0.45, 0.6, 0.75])
    parser.add_argument("--batch-size", type=int, default=1, help="images per generation call")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode, alternating; the fastest counts")
    args = parser.parse_args(argv)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        backend = make_backend(args, work)
        timed_sweep(backend, args, "warm-up", work)
        alone_times, reuse_times, first_times = [], [], []
        for repeat in range(args.repeats):
            backend.reuse_first_passes = False
            seconds, plain = timed_sweep(backend, args, f"one-cell-at-a-time-{repeat}", work)
            alone_times.append(seconds)
            backend.reuse_first_passes = True
            seconds, reused = timed_sweep(backend, args, f"reuse-{repeat}", work)
            reuse_times.append(seconds)
            first_times.append(first_pass_seconds(backend, args))
    per_image_alone, per_image_reuse, first_pass = min(alone_times), min(reuse_times), min(first_times)
    saved_share = 1 - reused["first_passes"] / plain["first_passes"]
    report = {
        "machine": machine(),
        "model": args.size if args.model is None else args.model,
        "size": f"{args.width}x{args.height} -> x{args.scale:g} ({args.upscaler})",
        "steps": f"{args.steps} + {args.hr_steps or args.steps} hires",
        "images": plain["cells"],
        "batch_size": args.batch_size,
        "first_passes": {"alone": plain["first_passes"], "reuse": reused["first_passes"]},
        "sampling_steps": {"alone": plain["sampling_steps"], "reuse": reused["sampling_steps"]},
        "s_per_image_alone": round(per_image_alone, 4),
        "s_per_image_reuse": round(per_image_reuse, 4),
        "speedup": round(per_image_alone / per_image_reuse, 3),
        "best_by_steps": round(plain["sampling_steps"] / reused["sampling_steps"], 3),
        "s_first_pass": round(first_pass, 4),
        "best_by_pass_times": round(per_image_alone / (per_image_alone - first_pass * saved_share), 3),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
