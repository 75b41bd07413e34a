"""Exact images in the WebUI backend: which cells share a batch, and hires first passes made once per group."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.webui_stub.fixtures import make_p, tiny_cache, webui, webui_session  # noqa: F401

HIRES = {"enable_hr": True, "hr_scale": 2.0, "hr_second_pass_steps": 1, "denoising_strength": 0.5}


def spec_of(text: str):
    from sd_sweep.core.spec import load_spec

    return load_spec(text)


def backend_for(webui, *, is_img2img=False, **p_kwargs):  # noqa: F811
    from sd_sweep.backends.webui.backend import WebUIBackend

    return WebUIBackend(make_p(is_img2img, webui.tmp, **p_kwargs), is_img2img=is_img2img)


def sweep_spec(backend, text):
    """The spec as the Script makes it: the base from the user's ``p``, then the document's own."""
    from sd_sweep.backends.webui.backend import base_from_p
    from sd_sweep.core.spec import parse_text, spec_from_dict

    document = parse_text(text)
    document["base"] = {**base_from_p(backend.p, backend.is_img2img), **(document.get("base") or {})}
    return spec_from_dict(document)


def plan_for(backend, text):
    from sd_sweep.core.planner import build_plan

    return build_plan(sweep_spec(backend, text), backend.capabilities())


SEEDS_X_DENOISE = """
base:
  batch_size: 4
axes:
- param: seed
  values: 1, 2
- param: denoising_strength
  values: 0.3, 0.5, 0.7
"""


def plain(webui, params: dict, seed: int):  # noqa: F811
    """The image a plain generation of these parameters makes alone (batch size 1, no reuse)."""
    p = make_p(False, webui.tmp, **{**params, "seed": seed, "batch_size": 1})
    p.do_not_save_samples = True
    processed = webui.processing.process_images(p)
    return processed.images[processed.index_of_first_image]


def test_pixel_upscaler_cells_share_first_passes_in_the_plan(webui):  # noqa: F811
    backend = backend_for(webui, **HIRES, hr_upscaler="Lanczos")
    plan = plan_for(backend, SEEDS_X_DENOISE)
    # a pixel upscaler's hires pass encodes inside the batch: every cell alone, ordered by first pass
    assert [len(b) for b in plan.batches] == [1] * 6
    seeds = [plan.cell(b[0]).params["seed"] for b in plan.batches]
    assert seeds == [1, 1, 1, 2, 2, 2]
    est = plan.estimate
    assert (est["first_passes"], est["second_passes"], est["batch_inexact"]) == (2, 6, 0)
    assert est["sampling_steps"] == 2 * 2 + 6 * 1  # 2 first passes of 2 steps, 6 hires passes of 1


def test_backend_makes_one_first_pass_per_group_and_the_images_of_plain_calls(webui, tmp_path):  # noqa: F811
    from PIL import Image

    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.store import RunStore

    backend = backend_for(webui, **HIRES, hr_upscaler="Lanczos")
    spec = sweep_spec(backend, SEEDS_X_DENOISE)
    webui.processing.first_passes.clear()
    result = run_sweep(spec, backend, tmp_path / "run", draw_grids=False)
    assert result.state == "finished"
    assert len(result.generated) == 6
    assert webui.processing.first_passes == [("a red cat", 1), ("a red cat", 2)]
    assert backend.first_passes == 2
    assert backend.calls == 2 + 6
    reused = [c for c in webui.processing.calls if getattr(c, "firstpass_image", None) is not None]
    assert len(reused) == 6
    assert all(c.batch_size == 1 and c.enable_hr for c in reused)
    store = RunStore.open(tmp_path / "run")
    for cell in result.plan.cells:
        made = store.image_path(cell.id)
        expected = plain(webui, {**HIRES, "hr_upscaler": "Lanczos", **cell.params}, cell.params["seed"])
        with Image.open(made) as image:
            got = np.asarray(image.convert("RGB"), dtype=np.int16)
        assert np.abs(got - np.asarray(expected.convert("RGB"), dtype=np.int16)).max() == 0


def test_exact_firstpass_pixels_survive_the_webui_round_trip():
    from PIL import Image

    from sd_sweep.backends.webui.backend import exact_firstpass_pixels

    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = Image.fromarray(np.stack([values] * 3, axis=-1))
    for given in (np.asarray(image), exact_firstpass_pixels(image)):
        # processing.py 1314 then 1405-1410, in float32 as there
        back = (255.0 * np.clip((given.astype(np.float32) / 255.0 * 2.0 - 1.0 + 1.0) / 2.0, 0, 1)).astype(np.uint8)
        exact = (back == np.asarray(image)).all()
        assert exact == (given.dtype == np.float32)  # a plain image loses a level on about a quarter of values


def test_latent_upscaler_cells_batch_and_make_their_own_first_pass(webui):  # noqa: F811
    backend = backend_for(webui, **HIRES, hr_upscaler="Latent")
    plan = plan_for(backend, SEEDS_X_DENOISE)
    # within the batch tolerance (1 level measured) and re-encoding a first pass would change the image
    assert [len(b) for b in plan.batches] == [2, 2, 2]
    assert (plan.estimate["first_passes"], plan.estimate["second_passes"]) == (6, 6)
    webui.processing.first_passes.clear()
    from sd_sweep.core.run import request_for

    for batch in plan.batches:
        backend.generate(request_for([plan.cell(i) for i in batch], plan))
    assert len(webui.processing.first_passes) == 6
    assert backend.first_passes == 0
    assert not [c for c in webui.processing.calls if getattr(c, "firstpass_image", None) is not None]


@pytest.mark.parametrize("exact", [True, False])
def test_img2img_cells_run_alone_unless_the_spec_prefers_speed(webui, tmp_path, exact):  # noqa: F811
    from sd_sweep.core.run import run_sweep

    backend = backend_for(webui, is_img2img=True)
    text = "base:\n  batch_size: 2\naxes:\n- param: seed\n  values: 1, 2, 3\n"
    if not exact:
        text += "limits:\n  batch_exact: false\n"
    spec = sweep_spec(backend, text)
    plan = plan_for(backend, text)
    assert [len(b) for b in plan.batches] == ([1, 1, 1] if exact else [2, 1])
    assert plan.estimate["batch_inexact"] == (0 if exact else 2)
    result = run_sweep(spec, backend, tmp_path / "run", draw_grids=False)
    assert [c.batch_size for c in webui.processing.calls] == ([1, 1, 1] if exact else [2, 1])
    infotexts = {cell.id: _infotext(tmp_path / "run", cell.id) for cell in result.plan.cells}
    marked = sorted(t.rsplit("Sweep batch: ", 1)[1] for t in infotexts.values() if "Sweep batch: " in t)
    assert marked == ([] if exact else ["1 of 2", "2 of 2"])


def test_txt2img_cells_keep_sharing_batches(webui):  # noqa: F811
    backend = backend_for(webui)
    plan = plan_for(backend, "base:\n  batch_size: 4\naxes:\n- param: seed\n  values: 1, 2, 3\n")
    assert [len(b) for b in plan.batches] == [3]
    assert plan.estimate["first_passes"] == 0


def _infotext(run_dir, cell_id) -> str:
    from PIL import Image

    from sd_sweep.core.store import RunStore

    with Image.open(RunStore.open(run_dir).image_path(cell_id)) as image:
        return str(image.info.get("parameters", ""))


class InterruptAfter:
    """A run observer that interrupts the run once ``count`` batches are finished."""

    def __init__(self, stop, count: int) -> None:
        self.stop, self.count = stop, count

    def __getattr__(self, name):
        return lambda *args, **kwargs: None

    def batch_finished(self, number, cells, saved) -> None:
        if number + 1 >= self.count:
            self.stop.interrupt()


def test_a_run_resumed_in_the_middle_of_a_group_continues_its_kept_first_pass(webui, tmp_path):  # noqa: F811
    from sd_sweep.core.ports import StopSignal
    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.store import FIRST_PASSES, RunStore

    text = SEEDS_X_DENOISE.replace("batch_size: 4", "batch_size: 1")
    backend = backend_for(webui, **HIRES, hr_upscaler="Lanczos")
    spec = sweep_spec(backend, text)
    whole = run_sweep(spec, backend_for(webui, **HIRES, hr_upscaler="Lanczos"), tmp_path / "whole", draw_grids=False)
    assert whole.state == "finished"

    stop = StopSignal()
    first = run_sweep(spec, backend, tmp_path / "run", draw_grids=False, stop=stop, observer=InterruptAfter(stop, 1))
    assert (first.state, len(first.generated), backend.first_passes) == ("interrupted", 1, 1)
    assert len(list((tmp_path / "run" / FIRST_PASSES).glob("*"))) == 1  # seed 1's group, a third done

    webui.processing.first_passes.clear()
    again = backend_for(webui, **HIRES, hr_upscaler="Lanczos")  # as after a restart: only the folder has it
    resumed = run_sweep(spec, again, tmp_path / "run", draw_grids=False)
    assert (resumed.state, len(resumed.generated)) == ("finished", 5)
    assert webui.processing.first_passes == [("a red cat", 2)]  # seed 1's first pass was read back
    assert not (tmp_path / "run" / FIRST_PASSES).exists()
    done, expected = RunStore.open(tmp_path / "run"), RunStore.open(tmp_path / "whole")
    for cell in whole.plan.cells:
        with Image.open(done.image_path(cell.id)) as a, Image.open(expected.image_path(cell.id)) as b:
            assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))
