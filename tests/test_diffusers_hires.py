"""The hires fix on the embedded backend: the WebUI's two passes, first passes made once per group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sd_sweep.backends.diffusers.backend import DiffusersBackend, hires_schedule, hires_target
from sd_sweep.backends.diffusers.catalog import DiffusersCatalog
from sd_sweep.core.errors import SpecError
from sd_sweep.core.infotext import parse_settings_line
from sd_sweep.core.ports import GenerationRequest
from tests.test_diffusers_backend import backend, model_dir  # noqa: F401

pytestmark = [pytest.mark.filterwarnings("ignore:__array:DeprecationWarning")]

HIRES: dict[str, Any] = {
    "steps": 3,
    "sampler_name": "Euler a",
    "width": 64,
    "height": 64,
    "enable_hr": True,
    "hr_scale": 2.0,
    "hr_second_pass_steps": 2,
}

SEEDS_X_DENOISE = """
name: hires
base:
  prompt: a red cat
  steps: 3
  sampler_name: Euler a
  width: 64
  height: 64
  enable_hr: true
  hr_second_pass_steps: 2
axes:
- param: seed
  values: 1, 2
- param: denoising_strength
  values: 0.3, 0.6
- param: hr_upscaler
  values: Latent, Lanczos
"""


def spec_of(text: str) -> Any:
    from sd_sweep.core.spec import load_spec

    return load_spec(text)


def request(params: dict[str, Any], seeds: tuple[int, ...] = (1,), prompt: str = "a red cat") -> GenerationRequest:
    return GenerationRequest(
        params=params,
        prompts=[prompt] * len(seeds),
        negative_prompts=[""] * len(seeds),
        seeds=list(seeds),
        cell_ids=[f"c{s}" for s in seeds],
    )


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def alone(made_by: DiffusersBackend, params: dict[str, Any], seed: int) -> np.ndarray:
    """The image of a cell made alone, its first pass sampled for it (no reuse)."""
    made_by._first_pass = None
    return pixels(made_by.generate(request(params, (seed,)))[0].image)


def test_hires_schedule_samples_the_steps_the_webui_samples() -> None:
    for steps in (1, 2, 3, 10, 20, 37):
        for denoising in (0.05, 0.3, 0.33, 0.5, 0.7, 0.75, 0.999, 1.0):
            total, strength = hires_schedule(steps, denoising)
            assert total == max(steps, int(steps / min(denoising, 0.999)))
            assert min(int(total * strength), total) == steps  # what diffusers' img2img samples


def test_hires_target_follows_the_webui() -> None:
    assert hires_target(512, 768, {"hr_scale": 1.5}, 8) == (768, 1152, 0, 0)
    assert hires_target(512, 768, {"hr_resize_x": 1024}, 8) == (1024, 1536, 0, 0)
    assert hires_target(512, 768, {"hr_resize_y": 1024}, 8) == (682, 1024, 0, 0)
    # both given: cover the box, cut the overhang from the latent (in latent pixels)
    assert hires_target(512, 512, {"hr_resize_x": 1024, "hr_resize_y": 768}, 8) == (1024, 1024, 0, 32)


def test_unknown_upscaler_is_refused_before_the_first_image() -> None:
    from sd_sweep.core.planner import build_plan

    caps = DiffusersCatalog(installed=False).capabilities()
    spec = spec_of(SEEDS_X_DENOISE.replace("Latent, Lanczos", "Latent, Lanczoz"))
    with pytest.raises(SpecError) as raised:
        build_plan(spec, caps)
    (problem,) = raised.value.problems
    assert (problem.field, problem.value) == ("axes[2].values", "Lanczoz")
    assert "did you mean Lanczos" in problem.message


def test_denoising_zero_is_refused_by_the_plan_check() -> None:
    from sd_sweep.core.planner import build_plan

    catalog = DiffusersCatalog(installed=False)
    plan = build_plan(spec_of(SEEDS_X_DENOISE.replace("0.3, 0.6", "0, 0.6")), catalog.capabilities())
    with pytest.raises(SpecError) as raised:
        catalog.check_plan(plan)
    assert [(p.field, p.value) for p in raised.value.problems] == [("axes[1].values", 0.0)]


def test_the_plan_makes_each_first_pass_once() -> None:
    from sd_sweep.core.planner import build_plan

    plan = build_plan(spec_of(SEEDS_X_DENOISE), DiffusersCatalog(installed=False).capabilities())
    seeds = [plan.cell(b[0]).params["seed"] for b in plan.batches]
    assert seeds == [1, 1, 1, 1, 2, 2, 2, 2]  # a group's cells one after the other
    est = plan.estimate
    assert (est["first_passes"], est["second_passes"]) == (2, 8)
    assert est["sampling_steps"] == 2 * 3 + 8 * 2


def batched(text: str, size: int) -> str:
    return text.replace("  prompt: a red cat\n", f"  prompt: a red cat\n  batch_size: {size}\n")


def test_batches_of_one_first_pass_key_run_one_after_the_other_and_make_it_once() -> None:
    from sd_sweep.core.planner import build_plan

    plan = build_plan(spec_of(batched(SEEDS_X_DENOISE, 4)), DiffusersCatalog(installed=False).capabilities())
    assert [[plan.cell(i).params["seed"] for i in b] for b in plan.batches] == [[1, 2]] * 4
    assert (plan.estimate["first_passes"], plan.estimate["second_passes"]) == (2, 8)
    assert plan.estimate["sampling_steps"] == 2 * 3 + 8 * 2


def test_more_seeds_than_a_batch_holds_keep_their_batches_aligned() -> None:
    from sd_sweep.core.planner import build_plan

    text = batched(SEEDS_X_DENOISE, 4).replace("values: 1, 2\n", "values: 1, 2, 3, 4, 5, 6\n")
    text = text.replace("- param: hr_upscaler\n  values: Latent, Lanczos\n", "")
    plan = build_plan(spec_of(text), DiffusersCatalog(installed=False).capabilities())
    seeds = [[plan.cell(i).params["seed"] for i in b] for b in plan.batches]
    assert seeds == [[1, 2, 3, 4], [1, 2, 3, 4], [5, 6], [5, 6]]
    assert [plan.cell(b[0]).params["denoising_strength"] for b in plan.batches] == [0.3, 0.6, 0.3, 0.6]
    assert (plan.estimate["first_passes"], plan.estimate["second_passes"]) == (6, 12)


def test_the_webui_keeps_no_first_pass_of_a_batch_of_several() -> None:
    """Without ``batch_first_passes`` (the WebUI's one first-pass image) batches keep their first passes."""
    import dataclasses

    from sd_sweep.core.planner import build_plan

    caps = dataclasses.replace(DiffusersCatalog(installed=False).capabilities(), batch_first_passes=False)
    plan = build_plan(spec_of(batched(SEEDS_X_DENOISE, 4)), caps)
    assert (plan.estimate["first_passes"], plan.estimate["second_passes"]) == (8, 8)
    assert plan.first_pass_keys == {}


@pytest.mark.slow
def test_hires_images_sizes_and_infotext(backend: DiffusersBackend) -> None:  # noqa: F811
    for upscaler in ("Latent", "Latent (nearest)", "Lanczos", "Nearest"):
        (made,) = backend.generate(request({**HIRES, "hr_upscaler": upscaler, "denoising_strength": 0.5}))
        assert made.image.size == (128, 128)
        settings = parse_settings_line(made.infotext.splitlines()[-1])
        assert settings["Size"] == "64x64"
        assert settings["Denoising strength"] == "0.5"
        hires = (settings["Hires upscale"], settings["Hires steps"], settings["Hires upscaler"])
        assert hires == ("2.0", "2", upscaler)
    params = {**HIRES, "hr_resize_x": 96, "hr_resize_y": 160, "hr_sampler_name": "Euler", "hr_prompt": "a dog"}
    (made,) = backend.generate(request(params))
    assert made.image.size == (96, 160)
    settings = parse_settings_line(made.infotext.splitlines()[-1])
    assert "Hires upscale" not in settings
    hires = (settings["Hires resize"], settings["Hires sampler"], settings["Hires prompt"])
    assert hires == ("96x160", "Euler", "a dog")
    assert settings["Hires upscaler"] == "Latent"  # the WebUI's default


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 2])
def test_a_reused_first_pass_makes_the_image_of_the_cell_alone(
    backend: DiffusersBackend,  # noqa: F811
    tmp_path: Path,
    batch_size: int,
) -> None:
    """At batch size 2 one batch of the two seeds' first passes serves all four batches."""
    from PIL import Image

    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.store import FIRST_PASSES, RunStore

    backend._first_pass = None  # the last test's first pass may be this sweep's
    before = backend.first_passes
    result = run_sweep(spec_of(batched(SEEDS_X_DENOISE, batch_size)), backend, tmp_path / "run", draw_grids=False)
    assert result.state == "finished"
    assert len(result.generated) == 8
    assert backend.first_passes - before == 2
    assert not (tmp_path / "run" / FIRST_PASSES).exists()
    store = RunStore.open(tmp_path / "run")
    for cell in result.plan.cells:
        params = {k: v for k, v in cell.params.items() if k not in ("prompt", "negative_prompt", "seed")}
        with Image.open(store.image_path(cell.id)) as image:
            made = pixels(image)
        assert np.abs(made - alone(backend, params, cell.params["seed"])).max() <= 2


@pytest.mark.slow
def test_an_interrupted_run_of_batches_resumes_from_the_kept_first_passes_of_a_batch(
    backend: DiffusersBackend,  # noqa: F811
    tmp_path: Path,
) -> None:
    from sd_sweep.core.ports import StopSignal
    from sd_sweep.core.progress import StepProgress
    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.store import FIRST_PASSES, RunStore

    spec_text = batched(SEEDS_X_DENOISE.replace("- param: hr_upscaler\n  values: Latent, Lanczos\n", ""), 2)
    backend._first_pass = None
    whole = run_sweep(spec_of(spec_text), backend, tmp_path / "whole", draw_grids=False)
    assert [len(b) for b in whole.plan.batches] == [2, 2]

    backend._first_pass = None
    stop = StopSignal()
    first = run_sweep(
        spec_of(spec_text), backend, tmp_path / "run", draw_grids=False, stop=stop, observer=InterruptAfter(stop, 1)
    )
    assert first.state == "interrupted"
    assert len(first.generated) == 2
    (kept,) = (tmp_path / "run" / FIRST_PASSES).glob("*.bin")
    assert np.load(kept).shape[0] == 2  # the latents of both seeds' first passes

    class Started(InterruptAfter):
        def started(self, plan: Any, todo: Any, first_passes_kept: frozenset[int] = frozenset()) -> None:
            self.total = StepProgress(plan, todo, first_passes_kept).total
            self.kept = first_passes_kept

    watch = Started(StopSignal(), 99)
    backend._first_pass = None  # as a new process: only the run folder has the first passes
    before = backend.first_passes
    resumed = run_sweep(spec_of(spec_text), backend, tmp_path / "run", draw_grids=False, observer=watch)
    assert resumed.state == "finished"
    assert len(resumed.generated) == 2
    assert backend.first_passes == before
    assert (watch.kept, watch.total) == (frozenset({0}), 2 * 2)  # only the two hires passes are left
    assert not (tmp_path / "run" / FIRST_PASSES).exists()
    done, expected = RunStore.open(tmp_path / "run"), RunStore.open(tmp_path / "whole")
    for cell in whole.plan.cells:
        assert done.image_path(cell.id).read_bytes() == expected.image_path(cell.id).read_bytes()


@pytest.mark.slow
def test_hires_batches_make_the_images_of_their_cells_alone(backend: DiffusersBackend) -> None:  # noqa: F811
    """Measured: the backend sets no ``shares_batch`` rule, so hires cells share batches too."""
    assert DiffusersCatalog(installed=False).capabilities().shares_batch is None
    for upscaler in ("Latent", "Lanczos"):
        params = {**HIRES, "hr_upscaler": upscaler, "denoising_strength": 0.5}
        batch = [pixels(g.image) for g in backend.generate(request(params, (1, 2, 3)))]
        for seed, made in zip((1, 2, 3), batch):
            assert np.abs(made - alone(backend, params, seed)).max() <= 2


class InterruptAfter:
    """A run observer that interrupts the run once ``count`` batches are finished."""

    def __init__(self, stop: Any, count: int) -> None:
        self.stop, self.count = stop, count

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None

    def batch_finished(self, number: int, cells: Any, saved: int) -> None:
        if number + 1 >= self.count:
            self.stop.interrupt()


@pytest.mark.slow
def test_an_interrupted_group_resumes_from_its_kept_first_pass(backend: DiffusersBackend, tmp_path: Path) -> None:  # noqa: F811
    from sd_sweep.core.ports import StopSignal
    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.store import FIRST_PASSES, RunStore

    spec_text = SEEDS_X_DENOISE.replace("- param: hr_upscaler\n  values: Latent, Lanczos\n", "")
    backend._first_pass = None
    whole = run_sweep(spec_of(spec_text), backend, tmp_path / "whole", draw_grids=False)
    assert whole.state == "finished"
    assert not (tmp_path / "whole" / FIRST_PASSES).exists()

    backend._first_pass = None
    stop = StopSignal()
    before = backend.first_passes
    first = run_sweep(
        spec_of(spec_text), backend, tmp_path / "run", draw_grids=False, stop=stop, observer=InterruptAfter(stop, 1)
    )
    assert first.state == "interrupted"
    assert len(first.generated) == 1
    assert backend.first_passes - before == 1
    assert len(list((tmp_path / "run" / FIRST_PASSES).glob("*.bin"))) == 1  # the group of seed 1, half done

    backend._first_pass = None  # as a new process: only the run folder has the first pass
    before = backend.first_passes
    resumed = run_sweep(spec_of(spec_text), backend, tmp_path / "run", draw_grids=False)
    assert resumed.state == "finished"
    assert len(resumed.generated) == 3
    assert backend.first_passes - before == 1  # seed 2's; seed 1's was read back
    assert not (tmp_path / "run" / FIRST_PASSES).exists()  # every group finished: nothing kept
    done, expected = RunStore.open(tmp_path / "run"), RunStore.open(tmp_path / "whole")
    for cell in whole.plan.cells:
        assert done.image_path(cell.id).read_bytes() == expected.image_path(cell.id).read_bytes()


def test_kept_first_passes_of_finished_or_unknown_groups_are_deleted_at_the_start(tmp_path: Path) -> None:
    from sd_sweep.core.planner import build_plan, first_pass_groups
    from sd_sweep.core.run import KeptFirstPasses
    from sd_sweep.core.store import FIRST_PASSES, RunStore

    caps = DiffusersCatalog(installed=False).capabilities()
    plan = build_plan(spec_of(SEEDS_X_DENOISE), caps)
    groups = first_pass_groups(plan, caps)
    assert sorted(len(ids) for ids in groups.values()) == [4, 4]
    store = RunStore.open(tmp_path)
    (finished, ids), (pending, _) = groups.items()
    for name in (finished, pending, "0123456789abcdef"):
        store.kept_first_pass(name).save(b"latent")
    kept = KeptFirstPasses(store, plan, caps, done=set(ids))
    assert store.kept_first_passes() == {pending}
    assert store.kept_first_pass(pending).load() == b"latent"
    assert kept.for_batch([plan.cell(ids[0])]) is not None
    kept.saved(groups[pending])
    assert not (tmp_path / FIRST_PASSES).exists()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_hires_runs_on_the_other_families(tmp_path: Path, family: str) -> None:
    from sd_sweep.backends.diffusers import tiny_model

    folder = tmp_path / family
    tiny_model.build_tiny_family_dir(folder, family)
    made_by = DiffusersBackend(folder, device="cpu")
    try:
        for upscaler in ("Latent", "Lanczos"):
            params = {**HIRES, "hr_upscaler": upscaler, "denoising_strength": 0.5}
            batch = made_by.generate(request(params, (1, 2)))
            assert [g.image.size for g in batch] == [(128, 128)] * 2
            assert made_by.family == family
            assert np.abs(pixels(batch[1].image) - alone(made_by, params, 2)).max() <= 2
    finally:
        made_by.close()


@pytest.mark.slow
def test_a_killed_run_resumes_its_group_from_the_kept_first_pass(
    backend: DiffusersBackend,  # noqa: F811
    model_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from PIL import Image

    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.store import FIRST_PASSES, RunStore

    values = ", ".join(f"{0.2 + i * 0.02:.2f}" for i in range(40))
    text = f"""
name: killed
base: {{prompt: a red cat, seed: 3, steps: 3, sampler_name: Euler a, width: 64, height: 64,
        enable_hr: true, hr_second_pass_steps: 4}}
axes:
- {{param: denoising_strength, values: "{values}"}}
"""
    (tmp_path / "killed.yaml").write_text(text)
    env = {**os.environ, "SD_SWEEP_CACHE": str(model_dir.parent), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "sd_sweep",
        "run",
        str(tmp_path / "killed.yaml"),
        "--out",
        str(tmp_path),
        "--no-grid",
    ]
    process = subprocess.Popen(
        command, cwd=Path(__file__).resolve().parents[1], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    run_dir = tmp_path / "killed"
    deadline = time.monotonic() + 120
    try:
        while not (RunStore.open(run_dir).done_ids() and list((run_dir / FIRST_PASSES).glob("*.bin"))):
            assert process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    done = len(RunStore.open(run_dir).done_ids())
    assert 1 <= done < 40

    backend._first_pass = None
    before = backend.first_passes
    resumed = run_sweep(spec_of(text), backend, run_dir, draw_grids=False)
    assert resumed.state == "finished"
    assert len(resumed.generated) == 40 - done
    assert backend.first_passes == before  # the group's first pass came from the run folder
    assert not (run_dir / FIRST_PASSES).exists()
    cell = resumed.plan.cell(resumed.generated[0])
    params = {k: v for k, v in cell.params.items() if k not in ("prompt", "negative_prompt", "seed")}
    with Image.open(RunStore.open(run_dir).image_path(cell.id)) as image:
        assert np.abs(pixels(image) - alone(backend, params, 3)).max() <= 2
