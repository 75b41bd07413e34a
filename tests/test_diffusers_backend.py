"""The embedded diffusers backend, on the locally built tiny random model (CPU, 64x64, 4 steps)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sd_sweep.backends.diffusers import tiny_model
from sd_sweep.backends.diffusers.backend import SAMPLERS, DiffusersBackend
from sd_sweep.core.errors import BackendError
from sd_sweep.core.infotext import parse_settings_line
from sd_sweep.core.ports import GenerationRequest, StopSignal

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

pytestmark = [
    pytest.mark.slow,
    # diffusers' schedulers hand torch tensors to numpy 2 functions, which warns thousands of times.
    pytest.mark.filterwarnings("ignore:__array:DeprecationWarning"),
]

ROOT = Path(__file__).resolve().parents[1]
BASE_PARAMS: dict[str, Any] = {
    "steps": 4,
    "cfg_scale": 7.0,
    "sampler_name": "Euler a",
    "scheduler": "Automatic",
    "width": 64,
    "height": 64,
}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tiny model, built once into a temporary cache that the backend finds via $SD_SWEEP_CACHE."""
    cache = tmp_path_factory.mktemp("sd-sweep-cache")
    old = os.environ.get(tiny_model.CACHE_ENV)
    os.environ[tiny_model.CACHE_ENV] = str(cache)
    try:
        path = tiny_model.ensure_tiny_model()
        assert path == cache / tiny_model.TINY_MODEL_NAME
        yield path
    finally:
        if old is None:
            os.environ.pop(tiny_model.CACHE_ENV, None)
        else:
            os.environ[tiny_model.CACHE_ENV] = old


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> Iterator[DiffusersBackend]:
    """One loaded backend for the module, on one CPU thread.

    The tiny model's kernels are too small to gain from threads, and on a busy 2-core machine
    torch's thread pool spins and makes each image 10-20 times slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    instance = DiffusersBackend(device="cpu")
    try:
        yield instance
    finally:
        instance.close()
        torch.set_num_threads(threads)


def request(
    prompts: list[str], seeds: list[int], negatives: list[str] | None = None, **params: Any
) -> GenerationRequest:
    return GenerationRequest(
        params={**BASE_PARAMS, **params},
        prompts=prompts,
        negative_prompts=negatives if negatives is not None else [""] * len(prompts),
        seeds=seeds,
        cell_ids=[f"c{i}" for i in range(len(prompts))],
    )


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def max_diff(a: Any, b: Any) -> float:
    return float(np.abs(pixels(a) - pixels(b)).max())


def mean_diff(a: Any, b: Any) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


def weights_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (".safetensors", ".json", ".txt") and path.name != tiny_model.MARKER_FILE:
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_importing_the_backend_does_not_import_torch() -> None:
    code = (
        "import sys; import sd_sweep.backends.diffusers.backend, sd_sweep.backends.diffusers.tiny_model; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_build_is_deterministic_and_cached(model_dir: Path, tmp_path: Path) -> None:
    again = tiny_model.ensure_tiny_model(tmp_path / "other")
    assert weights_digest(again) == weights_digest(model_dir)
    assert (again / "unet" / "diffusion_pytorch_model.safetensors").is_file()

    marker = again / tiny_model.MARKER_FILE
    before = marker.stat().st_mtime_ns
    assert tiny_model.ensure_tiny_model(again) == again
    assert marker.stat().st_mtime_ns == before

    marker.write_text(json.dumps({"format": tiny_model.FORMAT_VERSION - 1, "size": "tiny", "seed": 0}))
    assert tiny_model.ensure_tiny_model(again) == again
    assert json.loads(marker.read_text())["format"] == tiny_model.FORMAT_VERSION
    assert weights_digest(again) == weights_digest(model_dir)
    assert not [p for p in again.parent.iterdir() if p.name.startswith(".")]


def test_tokenizer_is_local_and_splits_words(model_dir: Path) -> None:
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(model_dir / "tokenizer", local_files_only=True)
    ids = tokenizer("a photo of a cat").input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert ids[-1] == tokenizer.eos_token_id
    assert len(ids) == 2 + 5
    assert len(tokenizer) <= 1000


def test_capabilities(backend: DiffusersBackend) -> None:
    caps = backend.capabilities()
    assert caps.name == "diffusers"
    assert {
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "cfg_scale",
        "sampler_name",
        "scheduler",
        "width",
        "height",
    } <= caps.params
    samplers = caps.choices["sampler_name"]
    assert {"Euler", "Euler a", "DPM++ 2M", "Heun", "DDIM", "PLMS", "UniPC", "DPM2", "DPM2 a"} <= set(samplers)
    assert set(samplers) <= set(SAMPLERS)
    assert {"Automatic", "Karras"} <= set(caps.choices["scheduler"])
    assert caps.size_multiple == 8
    assert backend.model_name == tiny_model.TINY_MODEL_NAME


def test_images_are_finite_and_not_blank(backend: DiffusersBackend) -> None:
    images = backend.generate(request(["a photo of a cat"], [1]))
    assert len(images) == 1
    image = images[0].image
    assert image.size == (64, 64)
    values = pixels(image)
    assert np.isfinite(values).all()
    assert values.std() > 10
    assert len(np.unique(values.reshape(-1, 3), axis=0)) > 100


@pytest.mark.parametrize("sampler", ["Euler", "Euler a", "DPM++ 2M SDE", "DPM2 a"])
def test_same_seed_same_image_alone_or_in_a_batch(backend: DiffusersBackend, sampler: str) -> None:
    if sampler not in backend.capabilities().choices["sampler_name"]:
        pytest.skip(backend.combination_problem(sampler, "Automatic") or f"{sampler} unavailable")
    alone = backend.generate(request(["a red fox"], [5], sampler_name=sampler))[0]
    batch = backend.generate(
        request(["a blue car", "a red fox", "mountains at night"], [11, 5, 12], sampler_name=sampler)
    )
    assert len(batch) == 3
    assert max_diff(alone.image, batch[1].image) <= 3
    assert mean_diff(alone.image, batch[1].image) < 0.5
    assert mean_diff(batch[0].image, batch[1].image) > 5


def test_repeated_request_is_reproducible(backend: DiffusersBackend) -> None:
    first = backend.generate(request(["a castle"], [3]))[0]
    second = backend.generate(request(["a castle"], [3]))[0]
    assert max_diff(first.image, second.image) == 0


def test_different_seeds_give_different_images(backend: DiffusersBackend) -> None:
    a, b = backend.generate(request(["a castle", "a castle"], [1, 2]))
    assert mean_diff(a.image, b.image) > 10


def test_prompts_and_negative_prompts_are_per_image(backend: DiffusersBackend) -> None:
    a, b, c = backend.generate(
        request(
            ["a photo of a cat", "a red dog in the forest", "a photo of a cat"], [1, 1, 1], ["", "", "blurry, ugly"]
        )
    )
    assert mean_diff(a.image, b.image) > 2
    assert mean_diff(a.image, c.image) > 2
    assert "Negative prompt: blurry, ugly" in c.infotext
    assert "Negative prompt" not in a.infotext


def test_cfg_scale_and_steps_change_the_image(backend: DiffusersBackend) -> None:
    base = backend.generate(request(["a cat"], [1], sampler_name="Euler"))[0]
    low_cfg = backend.generate(request(["a cat"], [1], sampler_name="Euler", cfg_scale=2.0))[0]
    more_steps = backend.generate(request(["a cat"], [1], sampler_name="Euler", steps=10))[0]
    assert mean_diff(base.image, low_cfg.image) > 1
    assert mean_diff(base.image, more_steps.image) > 0.5


def test_every_listed_sampler_and_schedule_runs(backend: DiffusersBackend) -> None:
    caps = backend.capabilities()
    ran = set()
    for sampler in caps.choices["sampler_name"]:
        first = backend.generate(request(["a tree"], [2], sampler_name=sampler, steps=3))
        assert len(first) == 1, sampler
        assert pixels(first[0].image).std() > 10, sampler
        backend.generate(request(["a tree"], [2], sampler_name=sampler, steps=5))
        again = backend.generate(request(["a tree"], [2], sampler_name=sampler, steps=3))
        assert max_diff(first[0].image, again[0].image) == 0, f"{sampler} kept state between calls"
        ran.add(sampler)
    for schedule in caps.choices["scheduler"]:
        sampler = next(s for s in caps.choices["sampler_name"] if backend.combination_problem(s, schedule) is None)
        images = backend.generate(request(["a tree"], [2], sampler_name=sampler, scheduler=schedule, steps=3))
        assert len(images) == 1, (sampler, schedule)
    assert ran == set(caps.choices["sampler_name"])


def test_schedule_types_change_the_sigmas(backend: DiffusersBackend) -> None:
    automatic = backend.generate(request(["a tree"], [2], sampler_name="Euler"))[0]
    karras = backend.generate(request(["a tree"], [2], sampler_name="Euler", scheduler="Karras"))[0]
    assert mean_diff(automatic.image, karras.image) > 1


def test_unsupported_combination_is_a_backend_error(backend: DiffusersBackend) -> None:
    problem = backend.combination_problem("DDIM", "Karras")
    assert problem is not None
    assert "DDIM" in problem
    with pytest.raises(BackendError, match="Karras"):
        backend.generate(request(["a tree"], [2], sampler_name="DDIM", scheduler="Karras"))
    with pytest.raises(BackendError, match="unknown sampler"):
        backend.generate(request(["a tree"], [2], sampler_name="No Such Sampler"))


def test_infotext_has_the_webui_fields(backend: DiffusersBackend) -> None:
    images = backend.generate(
        request(["a cat, on a sofa", "a dog"], [7, 8], ["blurry", ""], sampler_name="Euler", cfg_scale=6.5)
    )
    lines = images[0].infotext.split("\n")
    assert lines[0] == "a cat, on a sofa"
    assert lines[1] == "Negative prompt: blurry"
    fields = parse_settings_line(lines[-1])
    assert fields["Steps"] == "4"
    assert fields["Sampler"] == "Euler"
    assert fields["CFG scale"] == "6.5"
    assert fields["Seed"] == "7"
    assert fields["Size"] == "64x64"
    assert fields["Model"] == tiny_model.TINY_MODEL_NAME
    assert parse_settings_line(images[1].infotext.split("\n")[-1])["Seed"] == "8"


def test_progress_is_reported_in_sampling_steps(backend: DiffusersBackend) -> None:
    for sampler in ("Euler", "Heun"):
        calls: list[tuple[int, int]] = []
        backend.generate(request(["a cat"], [1], sampler_name=sampler), on_step=lambda s, t, c=calls: c.append((s, t)))
        assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)], sampler


def test_skip_during_sampling_returns_no_images(backend: DiffusersBackend) -> None:
    stop = StopSignal()
    calls: list[int] = []

    def on_step(step: int, total: int) -> None:
        calls.append(step)
        stop.skip()

    images = backend.generate(request(["a cat", "a dog"], [1, 2], steps=4), on_step=on_step, stop=stop)
    assert images == []
    assert calls == [1]
    assert stop.consume_skip()


def test_interrupt_during_sampling_finishes_the_batch(backend: DiffusersBackend) -> None:
    stop = StopSignal()
    calls: list[int] = []

    def on_step(step: int, total: int) -> None:
        calls.append(step)
        stop.interrupt()

    images = backend.generate(request(["a cat", "a dog"], [1, 2], steps=4), on_step=on_step, stop=stop)
    assert len(images) == 2
    assert calls == [1, 2, 3, 4]


def test_stop_before_start_returns_at_once(backend: DiffusersBackend) -> None:
    stop = StopSignal()
    stop.interrupt()
    calls: list[int] = []
    assert backend.generate(request(["a cat"], [1]), on_step=lambda s, t: calls.append(s), stop=stop) == []
    assert calls == []


def test_variation_seed(backend: DiffusersBackend) -> None:
    plain = backend.generate(request(["a cat"], [1], sampler_name="Euler"))[0]
    zero = backend.generate(request(["a cat"], [1], sampler_name="Euler", subseed=9, subseed_strength=0.0))[0]
    half = backend.generate(request(["a cat"], [1], sampler_name="Euler", subseed=9, subseed_strength=0.5))[0]
    full = backend.generate(request(["a cat"], [1], sampler_name="Euler", subseed=9, subseed_strength=1.0))[0]
    other_seed = backend.generate(request(["a cat"], [9], sampler_name="Euler"))[0]
    assert max_diff(plain.image, zero.image) == 0
    assert max_diff(full.image, other_seed.image) <= 3
    assert mean_diff(half.image, plain.image) > 5
    assert mean_diff(half.image, other_seed.image) > 5
    fields = parse_settings_line(half.infotext.split("\n")[-1])
    assert fields["Variation seed"] == "9"
    assert fields["Variation seed strength"] == "0.5"


def test_clip_skip(backend: DiffusersBackend) -> None:
    one = backend.generate(request(["a cat"], [1], clip_skip=1))[0]
    two = backend.generate(request(["a cat"], [1], clip_skip=2))[0]
    assert mean_diff(one.image, two.image) > 1
    with pytest.raises(BackendError, match="clip_skip"):
        backend.generate(request(["a cat"], [1], clip_skip=12))


def test_bad_size_is_a_backend_error(backend: DiffusersBackend) -> None:
    with pytest.raises(BackendError, match="multiples of 8"):
        backend.generate(request(["a cat"], [1], width=60))


def test_close_frees_and_reloads(model_dir: Path) -> None:
    instance = DiffusersBackend(model_dir, device="cpu")
    first = instance.generate(request(["a cat"], [4]))[0]
    assert instance.loaded
    instance.close()
    assert not instance.loaded
    second = instance.generate(request(["a cat"], [4]))[0]
    assert max_diff(first.image, second.image) == 0
    assert parse_settings_line(second.infotext.split("\n")[-1])["Model"] == model_dir.name
    instance.close()


@pytest.mark.parametrize("kind", ["missing_dir", "missing_file", "not_a_model_dir", "garbage_file", "wrong_suffix"])
def test_bad_model_is_a_backend_error(tmp_path: Path, kind: str) -> None:
    path = {
        "missing_dir": tmp_path / "nope",
        "missing_file": tmp_path / "nope.safetensors",
        "not_a_model_dir": tmp_path,
        "garbage_file": tmp_path / "model.safetensors",
        "wrong_suffix": tmp_path / "model.bin",
    }[kind]
    if kind in ("garbage_file", "wrong_suffix"):
        path.write_bytes(b"not a checkpoint")
    instance = DiffusersBackend(path, device="cpu")
    with pytest.raises(BackendError, match=r"model|checkpoint|folder"):
        instance.capabilities()
    with pytest.raises(BackendError):
        instance.generate(request(["a cat"], [1]))


def test_bad_dtype_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="dtype"):
        DiffusersBackend(dtype="int8")


def test_sampler_and_schedule_pairs_are_checked_before_the_first_image(backend: DiffusersBackend) -> None:
    from sd_sweep.core.errors import SpecError
    from sd_sweep.core.planner import build_plan
    from sd_sweep.core.spec import spec_from_dict

    spec = spec_from_dict(
        {
            "base": {"prompt": "a cat", "steps": 2, "width": 64, "height": 64},
            "axes": [
                {"param": "sampler_name", "values": "Euler, Euler a"},
                {"param": "scheduler", "values": "Automatic, Karras"},
            ],
        }
    )
    plan = build_plan(spec, backend.capabilities())
    with pytest.raises(SpecError) as info:
        backend.check_plan(plan)
    assert [(p.field, p.value) for p in info.value.problems] == [("axes[1].values", "Euler a + Karras")]
