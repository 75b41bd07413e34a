from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sd_sweep.core.errors import BackendError, SpecError
from sd_sweep.core.infotext import parse_settings_line
from sd_sweep.core.ports import StopSignal
from sd_sweep.core.run import RunObserver, run_sweep
from sd_sweep.core.spec import spec_from_dict
from sd_sweep.core.store import RunStore, read_infotext
from tests.fakes import FakeBackend

DOC = {
    "name": "cats",
    "base": {
        "prompt": "a cat, photo",
        "negative_prompt": "blurry",
        "steps": 3,
        "width": 32,
        "height": 32,
        "seed": 1,
        "batch_size": 3,
    },
    "axes": [
        {"param": "cfg_scale", "values": "5, 7"},
        {"param": "prompt_sr", "values": "cat, dog"},
        {"param": "seed", "values": "1-2"},
    ],
    "layout": {"x": "cfg_scale", "y": "prompt_sr", "page": ["seed"]},
}


def manifest(run_dir: Path) -> dict:
    return RunStore.open(run_dir).manifest


def test_run_saves_every_image_with_its_own_infotext(tmp_path: Path):
    backend = FakeBackend()
    result = run_sweep(spec_from_dict(DOC), backend, tmp_path / "cats")
    assert result.state == "finished"
    assert len(backend.calls) == len(result.plan.batches) == 4
    data = manifest(tmp_path / "cats")
    assert {e["state"] for e in data["cells"].values()} == {"done"}
    for cell in result.plan.cells:
        text = read_infotext(tmp_path / "cats" / "images" / f"{cell.id}.png")
        prompt, negative, settings_line = text.split("\n")
        assert prompt == cell.params["prompt"]
        assert negative == "Negative prompt: blurry"
        fields = parse_settings_line(settings_line)
        assert fields["CFG scale"] == str(cell.params["cfg_scale"])
        assert fields["Seed"] == str(cell.params["seed"])
        assert fields["Size"] == "32x32"
    assert [p.name for p in result.grids] == ["grid-seed_1.png", "grid-seed_2.png"]
    assert [g["title"] for g in data["grids"]] == ["Seed: 1", "Seed: 2"]


def test_rerun_generates_only_what_is_missing(tmp_path: Path):
    run_sweep(spec_from_dict(DOC), FakeBackend(), tmp_path / "cats")
    again = FakeBackend()
    result = run_sweep(spec_from_dict(DOC), again, tmp_path / "cats")
    assert again.calls == []
    assert len(result.reused) == 8

    extended = {**DOC, "axes": [{"param": "cfg_scale", "values": "5, 7, 9"}, *DOC["axes"][1:]]}
    third = FakeBackend()
    result = run_sweep(spec_from_dict(extended), third, tmp_path / "cats")
    assert sum(r.size for r in third.calls) == 4
    assert {c.params["cfg_scale"] for c in result.plan.cells if c.id in result.generated} == {9.0}


def test_interrupt_stops_after_the_current_batch_and_resumes(tmp_path: Path):
    stop = StopSignal()
    backend = FakeBackend(interrupt_after=2)
    result = run_sweep(spec_from_dict(DOC), backend, tmp_path / "cats", stop=stop)
    assert result.state == "interrupted"
    assert len(backend.calls) == 2
    assert len(result.generated) == sum(r.size for r in backend.calls)
    assert manifest(tmp_path / "cats")["state"] == "interrupted"
    resumed = FakeBackend()
    result = run_sweep(spec_from_dict(DOC), resumed, tmp_path / "cats")
    assert result.state == "finished"
    assert len(result.generated) + len(result.reused) == 8
    assert len(result.reused) == sum(r.size for r in backend.calls)


def test_skip_drops_only_the_current_batch(tmp_path: Path):
    stop = StopSignal()

    class SkipSecond(RunObserver):
        def batch_started(self, number, cells):
            if number == 1:
                stop.skip()

    result = run_sweep(spec_from_dict(DOC), FakeBackend(), tmp_path / "cats", stop=stop, observer=SkipSecond())
    assert result.state == "finished"
    assert len(result.skipped) == len(result.plan.batches[1])
    assert len(result.generated) == 8 - len(result.skipped)


def test_backend_failure_keeps_finished_work_and_marks_the_batch(tmp_path: Path):
    with pytest.raises(BackendError, match="out of memory"):
        run_sweep(spec_from_dict(DOC), FakeBackend(fail_on_call=3), tmp_path / "cats")
    data = manifest(tmp_path / "cats")
    states = [e["state"] for e in data["cells"].values()]
    assert states.count("done") == 4
    assert states.count("failed") == 3
    assert data["state"] == "failed"
    result = run_sweep(spec_from_dict(DOC), FakeBackend(), tmp_path / "cats")
    assert len(result.generated) == 4


def test_invalid_spec_generates_nothing_and_writes_nothing(tmp_path: Path):
    backend = FakeBackend()
    bad = {**DOC, "axes": [{"param": "sampler_name", "values": "Euler, Nope"}]}
    with pytest.raises(SpecError):
        run_sweep(spec_from_dict(bad), backend, tmp_path / "cats")
    assert backend.calls == []
    assert not (tmp_path / "cats").exists()


def test_random_seed_run_repeats_the_same_images(tmp_path: Path):
    doc = {**DOC, "base": {**DOC["base"], "seed": -1}, "axes": DOC["axes"][:2], "layout": None}
    first = run_sweep(spec_from_dict(doc), FakeBackend(), tmp_path / "r")
    (tmp_path / "r" / "images" / f"{first.plan.cells[0].id}.png").unlink()
    second = run_sweep(spec_from_dict(doc), FakeBackend(), tmp_path / "r")
    assert second.generated == [first.plan.cells[0].id]
    assert [c.params["seed"] for c in second.plan.cells] == [c.params["seed"] for c in first.plan.cells]


def test_grid_pages_and_size(tmp_path: Path):
    result = run_sweep(spec_from_dict(DOC), FakeBackend(), tmp_path / "cats")
    with Image.open(result.grids[0]) as sheet:
        assert sheet.width > 2 * 32
        assert sheet.height > 2 * 32


def test_saved_files_get_ordinary_permissions(tmp_path: Path):
    import os
    import stat

    result = run_sweep(spec_from_dict(DOC), FakeBackend(), tmp_path / "cats")
    mask = os.umask(0)
    os.umask(mask)
    folder = tmp_path / "cats"
    for path in [
        folder / "run.json",
        folder / "plan.json",
        folder / "cells.jsonl",
        *result.grids,
        *result.image_paths(),
    ]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_a_backend_that_returns_too_few_images_fails_the_run_without_losing_work(tmp_path: Path):
    class Short(FakeBackend):
        def generate(self, request, on_step=None, stop=None):
            images = super().generate(request, on_step, stop)
            return images[:-1] if len(self.calls) == 3 else images

    with pytest.raises(BackendError, match="returned 2 images for a batch of 3"):
        run_sweep(spec_from_dict(DOC), Short(), tmp_path / "cats")
    states = [e["state"] for e in manifest(tmp_path / "cats")["cells"].values()]
    assert states.count("done") == 4
    assert states.count("failed") == 3
