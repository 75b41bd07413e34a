"""Raw generation throughput of the diffusers backend: images/s at batch size 1 against batch size N.

Builds (or reuses) a randomly initialised model locally, so it runs offline:

    python benchmarks/bench_backend.py --size tiny --width 64 --height 64 --steps 4
    python benchmarks/bench_backend.py --size sd15 --width 512 --height 512 --steps 20 --device cuda --batch 8
    python benchmarks/bench_backend.py --size sdxl --device cuda --dtype float16 --batch 4   # 1024 px, 20 steps
    python benchmarks/bench_backend.py --size sdxl-tiny --steps 2 --batch 2                  # CPU smoke run

Random weights compute exactly as much as trained ones, so the timings hold for a real SD 1.5
checkpoint of the same size (``--model`` benchmarks one of those instead).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sd_sweep.core.ports import Backend, GenerationRequest

PROMPTS = (
    "a photo of a cat",
    "a red fox in the snow",
    "a castle on a mountain at sunset",
    "portrait of an old man, oil painting",
    "a city street at night, rain",
    "a bowl of fruit on a table",
    "a dragon flying over the sea",
    "a forest with a river, morning fog",
)


def synchronize(backend: Backend) -> None:
    """Wait for queued GPU work, so a timer reads the work done and not only the work queued."""
    device = str(getattr(backend, "device", "cpu"))
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def make_request(params: dict[str, Any], batch_size: int, first_seed: int) -> GenerationRequest:
    seeds = list(range(first_seed, first_seed + batch_size))
    return GenerationRequest(
        params=dict(params),
        prompts=[PROMPTS[s % len(PROMPTS)] for s in seeds],
        negative_prompts=["blurry"] * batch_size,
        seeds=seeds,
        cell_ids=[f"bench-{s}" for s in seeds],
    )


def measure(backend: Backend, batch_size: int, n_images: int, params: dict[str, Any], *, warmup: int = 1) -> float:
    """Images per second for ``n_images`` generated in batches of ``batch_size`` (after ``warmup`` batches).

    ``n_images`` is rounded up to whole batches; every image has its own seed and a rotating prompt.
    """
    if batch_size < 1 or n_images < 1:
        raise ValueError("batch_size and n_images must be at least 1")
    for i in range(warmup):
        backend.generate(make_request(params, batch_size, 10_000 + i * batch_size))
    batches = -(-n_images // batch_size)
    synchronize(backend)
    start = time.perf_counter()
    for i in range(batches):
        images = backend.generate(make_request(params, batch_size, i * batch_size))
        if len(images) != batch_size:
            raise RuntimeError(f"expected {batch_size} images, got {len(images)}")
    synchronize(backend)
    return batches * batch_size / (time.perf_counter() - start)


def model_path(size: str, model: str | None, cache: Path | None) -> Path:
    """The model to benchmark: ``--model``, or a random one of ``size``, built once and reused."""
    from sd_sweep.backends.diffusers import tiny_model

    if model:
        return Path(model)
    if size == "tiny":
        return tiny_model.ensure_tiny_model(cache / tiny_model.TINY_MODEL_NAME if cache else None)
    if size in ("sdxl", "sdxl-tiny"):
        folder = (cache or tiny_model.default_model_dir().parent) / f"random-{size}-seed0"
        if not (folder / tiny_model.MARKER_FILE).is_file():
            started = time.perf_counter()
            if size == "sdxl-tiny":
                tiny_model.build_tiny_family_dir(folder, "sdxl")
            else:
                build_random_sdxl(folder)
            print(f"built random {size} model in {folder} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return folder
    folder = (cache or tiny_model.default_model_dir().parent) / "random-sd15-seed0"
    marker = folder / tiny_model.MARKER_FILE
    if not (marker.is_file() and json.loads(marker.read_text()).get("format") == tiny_model.FORMAT_VERSION):
        started = time.perf_counter()
        tiny_model.build_tiny_pipeline_dir(folder, seed=0, size="sd15")
        print(f"built random SD 1.5 model in {folder} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return folder


def sdxl_base_configs() -> dict[str, dict[str, Any]]:
    """The component configs of SDXL base at its real dimensions (CLIP-L and the VAE as SD 1.5's)."""
    from sd_sweep.backends.diffusers import tiny_model

    sd15 = tiny_model._configs("sd15")
    return {
        "unet": {
            "sample_size": 128,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            "block_out_channels": [320, 640, 1280],
            "layers_per_block": 2,
            "transformer_layers_per_block": [1, 2, 10],
            "cross_attention_dim": 2048,
            "attention_head_dim": [5, 10, 20],
            "use_linear_projection": True,
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": 2816,
            "norm_num_groups": 32,
        },
        "vae": {**sd15["vae"], "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
        "text_encoder": sd15["text_encoder"],
        "text_encoder_2": {
            **sd15["text_encoder"],
            "hidden_size": 1280,
            "intermediate_size": 5120,
            "num_hidden_layers": 32,
            "num_attention_heads": 20,
            "projection_dim": 1280,
            "hidden_act": "gelu",
        },
        "scheduler": {
            **{k: v for k, v in sd15["scheduler"].items() if k not in ("skip_prk_steps", "set_alpha_to_one")},
            "timestep_spacing": "leading",
        },
    }


def build_random_sdxl(folder: Path) -> None:
    """A randomly initialised SDXL-base-sized pipeline (2.6 G UNet parameters) saved in float16."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from sd_sweep.backends.diffusers import tiny_model

    configs = sdxl_base_configs()
    strip = lambda c: {k: v for k, v in c.items() if not k.startswith("_") and k != "architectures"}  # noqa: E731
    tokenizers = folder / "tok"
    tokenizers.mkdir(parents=True, exist_ok=True)
    tiny_model._tokenizer_files(tokenizers)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**strip(configs["unet"])).half()
        vae = AutoencoderKL(**strip(configs["vae"])).half()
        text_encoder = CLIPTextModel(CLIPTextConfig(**strip(configs["text_encoder"]))).half()
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**strip(configs["text_encoder_2"]))).half()
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=CLIPTokenizer.from_pretrained(tokenizers, model_max_length=77),
        tokenizer_2=CLIPTokenizer.from_pretrained(tokenizers, model_max_length=77, pad_token="!"),
        unet=unet,
        scheduler=EulerDiscreteScheduler(**strip(configs["scheduler"])),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    (folder / tiny_model.MARKER_FILE).write_text(json.dumps({"size": "sdxl", "seed": 0}), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "sd15", "sdxl", "sdxl-tiny"), default="tiny")
    parser.add_argument("--model", help="a diffusers folder or checkpoint file instead of a random model")
    parser.add_argument("--cache", type=Path, help="where random models are built (default: the sd-sweep cache)")
    parser.add_argument("--width", type=int, default=None, help="default: 64 for tiny, 512 for sd15")
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="default: 4 for tiny, 20 for sd15")
    parser.add_argument("--cfg-scale", type=float, default=7.0)
    parser.add_argument("--sampler", default="Euler a")
    parser.add_argument("--scheduler", default="Automatic")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--dtype", default=None, help="float16, bfloat16 or float32")
    parser.add_argument("--batch", type=int, default=8, help="the batch size compared with 1")
    parser.add_argument("--images", type=int, default=None, help="images timed per batch size (default: 2 batches)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sd_sweep.backends.diffusers.backend import DiffusersBackend

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    tiny = args.size in ("tiny", "sdxl-tiny") and not args.model
    side = 64 if tiny else 1024 if args.size == "sdxl" else 512
    params = {
        "steps": args.steps or (4 if tiny else 20),
        "cfg_scale": args.cfg_scale,
        "sampler_name": args.sampler,
        "scheduler": args.scheduler,
        "width": args.width or side,
        "height": args.height or args.width or side,
    }
    n_images = args.images or 2 * args.batch
    backend = DiffusersBackend(model_path(args.size, args.model, args.cache), device=args.device, dtype=args.dtype)
    try:
        backend.capabilities()
        single = measure(backend, 1, n_images, params)
        batched = measure(backend, args.batch, n_images, params)
    finally:
        backend.close()
    result = {
        "model": backend.model_name,
        "size": args.size,
        "device": backend.device,
        "params": params,
        "images": n_images,
        "batch": args.batch,
        "images_per_s_batch_1": round(single, 3),
        f"images_per_s_batch_{args.batch}": round(batched, 3),
        "ms_per_image_batch_1": round(1000 / single, 2),
        f"ms_per_image_batch_{args.batch}": round(1000 / batched, 2),
        "speedup": round(batched / single, 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} on {result['device']}, {params['width']}x{params['height']}, "
            f"{params['steps']} steps, {params['sampler_name']}, {n_images} images per run"
        )
        print(f"batch 1: {single:8.2f} images/s ({1000 / single:8.1f} ms/image)")
        print(f"batch {args.batch}: {batched:8.2f} images/s ({1000 / batched:8.1f} ms/image)")
        print(f"batch {args.batch} / batch 1: {batched / single:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
