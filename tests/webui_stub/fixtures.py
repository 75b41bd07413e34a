# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""pytest fixtures: the stand-in WebUI with this repository loaded as an extension."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

STUB = Path(__file__).resolve().parent
REPO = STUB.parents[1]


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    """The tiny model, built once per session into a temporary cache ($SD_SWEEP_CACHE)."""
    from sd_sweep.backends.diffusers import tiny_model

    cache = tmp_path_factory.mktemp("sd-sweep-cache")
    old = os.environ.get(tiny_model.CACHE_ENV)
    os.environ[tiny_model.CACHE_ENV] = str(cache)
    try:
        tiny_model.ensure_tiny_model()
        yield cache
    finally:
        if old is None:
            os.environ.pop(tiny_model.CACHE_ENV, None)
        else:
            os.environ[tiny_model.CACHE_ENV] = old


@pytest.fixture(scope="session")
def webui_session(tiny_cache):
    """Import the stand-in ``modules`` and load the extension's scripts the way the WebUI does."""
    if str(STUB) not in sys.path:
        sys.path.insert(0, str(STUB))
    from tests.webui_stub import webui as stub_webui

    scripts = stub_webui.start([str(REPO), stub_webui.FAKE_EXTENSION])
    return SimpleNamespace(scripts=scripts, stub=stub_webui)


@pytest.fixture
def webui(webui_session, tmp_path, monkeypatch):
    """A clean WebUI state per test: default options, output folders in tmp_path, counters reset."""
    from modules import images, processing, sd_models, sd_vae, shared, shared_options

    shared.opts.data.clear()
    shared.opts.data.update({k: v.default for k, v in shared.opts.data_labels.items()})
    shared.opts.data.update({k: v.default for k, v in shared_options.options_templates.items()})
    shared.opts.data["sd_model_checkpoint"] = "tiny-a.safetensors [aaaa111111]"
    shared.opts.data["sweep_runs_dir"] = str(tmp_path / "sweeps")
    for key in ("outdir_txt2img_samples", "outdir_img2img_samples", "outdir_txt2img_grids", "outdir_img2img_grids"):
        shared.opts.data[key] = str(tmp_path / key.replace("outdir_", ""))
    sd_models.loaded = None
    sd_models.reload_model_weights()
    sd_models.load_count = 0
    sd_vae.reload_count = 0
    processing.calls.clear()
    processing.before_batch_hook = None
    images.saved.clear()
    shared.state.begin(job="test")
    yield SimpleNamespace(
        scripts=webui_session.scripts,
        stub=webui_session.stub,
        tmp=tmp_path,
        shared=shared,
        processing=processing,
        images=images,
        sd_models=sd_models,
        sd_vae=sd_vae,
    )
    shared.state.end()
    processing.before_batch_hook = None


def make_p(is_img2img=False, tmp=None, **kwargs):
    """``p`` as the WebUI's txt2img/img2img handlers build it (modules/txt2img.py, modules/img2img.py)."""
    from modules import processing, scripts

    defaults = dict(
        prompt="a red cat",
        negative_prompt="blurry",
        steps=2,
        cfg_scale=7.0,
        sampler_name="Euler a",
        scheduler="Automatic",
        width=64,
        height=64,
        batch_size=1,
        n_iter=1,
        seed=1234,
    )
    defaults.update(kwargs)
    tmp = Path(tmp or ".")
    if is_img2img:
        from PIL import Image

        defaults.setdefault("init_images", [Image.new("RGB", (64, 64), (200, 30, 30))])
        defaults.setdefault("denoising_strength", 0.5)
        p = processing.StableDiffusionProcessingImg2Img(
            outpath_samples=str(tmp / "img2img-images"), outpath_grids=str(tmp / "img2img-grids"), **defaults
        )
        p.scripts = scripts.scripts_img2img
    else:
        p = processing.StableDiffusionProcessingTxt2Img(
            outpath_samples=str(tmp / "txt2img-images"), outpath_grids=str(tmp / "txt2img-grids"), **defaults
        )
        p.scripts = scripts.scripts_txt2img
    return p


def sweep_script(runner):
    for script in runner.selectable_scripts:
        if script.title() == "Sweep":
            return script
    raise AssertionError("the Sweep script is not among the selectable scripts")
