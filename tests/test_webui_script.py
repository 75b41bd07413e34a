# ruff: noqa: F811, PT018
"""The Sweep script through the stand-in WebUI (tests/webui_stub): txt2img, img2img, batching, saving,
settings restored after success/error/interrupt, Interrupt and Skip, X/Y/Z axes of other extensions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.webui_stub.fixtures import REPO, make_p, sweep_script, tiny_cache, webui, webui_session  # noqa: F401

SPEC = """
name: t
axes:
  - param: cfg_scale
    values: 5, 9
  - param: seed
    values: 1, 2
"""


def run(webui, spec, *, is_img2img=False, **p_kwargs):
    runner = webui.scripts.scripts_img2img if is_img2img else webui.scripts.scripts_txt2img
    p = make_p(is_img2img, webui.tmp, **p_kwargs)
    return p, sweep_script(runner).run(p, spec)


def settings_line(infotext):
    from sd_sweep.core.infotext import parse_settings_line

    return parse_settings_line(infotext.strip().splitlines()[-1])


def test_importing_the_backend_does_not_import_modules():
    code = (
        "import sd_sweep.backends.webui.backend, sd_sweep.webui.runner, sd_sweep.webui.ui, sys; "
        "print('modules' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_script_is_registered_in_both_tabs(webui):
    from modules import errors

    assert not [e for e in errors.reported if "sweep" in e[0].lower()]
    for runner in (webui.scripts.scripts_txt2img, webui.scripts.scripts_img2img):
        assert sweep_script(runner).title() == "Sweep"
    assert "sweep_max_cells" in webui.shared.opts.data_labels  # on_ui_settings registered the section
    assert webui.shared.opts.data_labels["sweep_max_cells"].section == ("sweep", "Sweep")


def test_txt2img_sweep_batches_infotexts_and_files(webui):
    p, res = run(webui, SPEC, batch_size=2)
    # cells differing only in seed share a call: 2 CFG values -> 2 process_images calls of 2 images
    assert len(webui.processing.calls) == 2
    assert [len(c.prompt) for c in webui.processing.calls] == [2, 2]
    assert all(c.n_iter == 1 and c.batch_size == 2 for c in webui.processing.calls)
    assert res.index_of_first_image == 1 and len(res.images) == 5
    assert len(res.infotexts) == len(res.images)
    cells = [settings_line(t) for t in res.infotexts[1:]]
    assert [(c["CFG scale"], c["Seed"]) for c in cells] == [("5.0", "1"), ("5.0", "2"), ("9.0", "1"), ("9.0", "2")]
    assert all(img.info["parameters"] == t for img, t in zip(res.images, res.infotexts))
    assert "Script: Sweep" in res.infotexts[0]
    assert hasattr(res, "extra_images") and res.extra_images == []
    # the run folder has every image and the manifest; the WebUI's folders got samples and the grid
    runs = list((webui.tmp / "sweeps").iterdir())
    assert len(runs) == 1 and (runs[0] / "run.json").exists()
    assert len(list((runs[0] / "images").glob("*.png"))) == 4
    samples = [s for s in webui.images.saved if not s["grid"]]
    grids = [s for s in webui.images.saved if s["grid"]]
    assert len(samples) == 4 and all(Path(s["path"]).parent == webui.tmp / "txt2img-images" for s in samples)
    assert len(grids) == 1 and Path(grids[0]["path"]).parent == webui.tmp / "txt2img-grids"
    assert webui.shared.state.job_count == 2 and webui.shared.state.job_no == 2  # two sampler runs
    assert webui.shared.state.textinfo.startswith("cells 3-4/4: CFG scale 9")


def test_same_sweep_again_continues_in_the_same_folder(webui):
    run(webui, SPEC)
    webui.processing.calls.clear()
    _, res = run(webui, SPEC)
    assert webui.processing.calls == []  # fixed seeds: every cell reused
    assert len(res.images) == 5 and "4 reused" in res.comments


def test_img2img_sweep(webui):
    spec = "axes:\n- param: denoising_strength\n  values: 0.2, 0.9\n"
    _, res = run(webui, spec, is_img2img=True)
    assert len(webui.processing.calls) == 2
    assert all(c.init_images for c in webui.processing.calls)
    strengths = [settings_line(t)["Denoising strength"] for t in res.infotexts[res.index_of_first_image :]]
    assert strengths == ["0.2", "0.9"]
    assert all(Path(s["path"]).parent == webui.tmp / "img2img-images" for s in webui.images.saved if not s["grid"])


def test_prompt_matrix_and_spec_base_override(webui):
    spec = "base:\n  prompt: a cat | red | blue\n  batch_size: 4\naxes:\n- param: prompt_matrix\n"
    _, res = run(webui, spec, batch_size=1)
    assert len(webui.processing.calls) == 1  # four prompts, one call (the spec's batch size wins)
    assert [s.replace(" ,", ",").strip() for s in webui.processing.calls[0].prompt] == [
        "a cat",
        "a cat, red",
        "a cat, blue",
        "a cat, red, blue",
    ]
    assert len(res.images) == 5


def test_settings_and_checkpoint_restored_after_success(webui):
    opts = webui.shared.opts
    spec = """
axes:
  - param: checkpoint
    values: tiny-b.safetensors [bbbb222222], tiny-a.safetensors [aaaa111111]
  - param: clip_skip
    values: 1, 2
  - param: setting:eta_noise_seed_delta
    values: 0, 31337
"""
    run(webui, spec, batch_size=4)
    assert len(webui.processing.calls) == 8
    overridden = [c.override_settings["sd_model_checkpoint"] for c in webui.processing.calls]
    assert overridden == ["tiny-b.safetensors [bbbb222222]"] * 4 + ["tiny-a.safetensors [aaaa111111]"] * 4
    assert opts.sd_model_checkpoint == "tiny-a.safetensors [aaaa111111]"
    assert opts.CLIP_stop_at_last_layers == 1
    assert opts.eta_noise_seed_delta == 0
    assert webui.sd_models.loaded.title == "tiny-a.safetensors [aaaa111111]"
    assert webui.sd_models.load_count == 2  # one switch to b, one back to a: as few as the plan promises


def test_settings_restored_and_work_kept_after_an_error(webui):
    opts = webui.shared.opts

    def fail_second(p, n):
        if len(webui.processing.calls) == 2:
            raise RuntimeError("CUDA out of memory (simulated)")

    webui.processing.before_batch_hook = fail_second
    spec = "axes:\n- param: steps\n  values: 2, 3, 4\n- param: setting:eta_noise_seed_delta\n  values: 31337\n"
    with pytest.raises(RuntimeError, match="out of memory.*run the same sweep again"):
        run(webui, spec)
    assert opts.eta_noise_seed_delta == 0
    webui.processing.before_batch_hook = None
    webui.processing.calls.clear()
    _, res = run(webui, spec)
    assert len(webui.processing.calls) == 2  # the finished cell is reused
    assert "1 reused" in res.comments and len(res.images) == 4


def test_interrupt_after_current_keeps_finished_work(webui):
    state = webui.shared.state

    def stop_in_second(p, n):
        if len(webui.processing.calls) == 2:
            state.stop_generating()  # the Interrupt button with "interrupt after current"

    webui.processing.before_batch_hook = stop_in_second
    spec = "axes:\n- param: steps\n  values: 2, 3, 4, 5\n- param: clip_skip\n  values: 2\n"
    _, res = run(webui, spec)
    assert len(webui.processing.calls) == 2
    assert len(res.images) == 3 and res.index_of_first_image == 1  # grid + 2 finished cells
    assert "interrupted" in res.comments
    assert webui.shared.opts.CLIP_stop_at_last_layers == 1


def test_hard_interrupt_drops_the_partial_batch(webui):
    state = webui.shared.state

    def interrupt_second(p, n):
        if len(webui.processing.calls) == 2:
            state.interrupt()

    webui.processing.before_batch_hook = interrupt_second
    _, res = run(webui, "axes:\n- param: steps\n  values: 2, 3, 4\n")
    assert len(webui.processing.calls) == 2
    assert len(res.images) - res.index_of_first_image == 1


def test_skip_drops_only_the_current_batch(webui):
    state = webui.shared.state

    def skip_second(p, n):
        if len(webui.processing.calls) == 2:
            state.skip()

    webui.processing.before_batch_hook = skip_second
    _, res = run(webui, "axes:\n- param: steps\n  values: 2, 3, 4\n")
    assert len(webui.processing.calls) == 3
    steps = [settings_line(t)["Steps"] for t in res.infotexts[res.index_of_first_image :]]
    assert steps == ["2", "4"]
    assert "1 skipped" in res.comments


def test_xyz_axes_of_other_extensions_are_applied_by_their_own_function(webui):
    spec = "axes:\n- param: host:[Fake] Strength\n  values: 0.5, 1.5\n- param: host:Sampler\n  values: Euler, DDIM\n"
    _, res = run(webui, spec)
    cells = [settings_line(t) for t in res.infotexts[res.index_of_first_image :]]
    assert [(c["Fake strength"], c["Sampler"]) for c in cells] == [
        ("0.5", "Euler"),
        ("0.5", "DDIM"),
        ("1.5", "Euler"),
        ("1.5", "DDIM"),
    ]


def test_bad_input_is_a_clear_message_not_a_generation(webui):
    spec = "axes:\n- param: sampler_name\n  values: Euler, Nope\n- param: steps\n  values: 0\n"
    _, res = run(webui, spec)
    assert res.images == [] and webui.processing.calls == []
    assert "axes[0].values" in res.info and "Nope" in res.info
    assert "axes[1].values" in res.info and "Steps must be at least 1" in res.info
    _, res = run(webui, "axes:\n- param: host:[Fake] Strength\n  values: 1, -1\n")
    assert res.images == [] and "axes[0].values" in res.info and "must not be negative" in res.info
    _, res = run(webui, "")
    assert "spec" in res.info and "empty" in res.info


def test_unknown_setting_key_is_refused_before_any_image(webui):
    # Options.set raises KeyError for a key the WebUI does not know, in the middle of a run
    _, res = run(webui, "axes:\n- param: setting:no_such_option\n  values: 1, 2\n")
    assert res.images == [] and webui.processing.calls == []
    assert "axes[0].param" in res.info and "not a setting" in res.info
    _, res = run(webui, "base:\n  setting:no_such_option: 1\naxes:\n- param: steps\n  values: 2, 3\n")
    assert res.images == [] and "base.setting:no_such_option" in res.info


def test_permutation_axes_of_the_xyz_plot_are_not_offered(webui):
    from sd_sweep.backends.webui.backend import host_axes

    assert "Prompt order" not in host_axes(False) and "CFG Scale" in host_axes(False)
    _, res = run(webui, "axes:\n- param: host:Prompt order\n  values: a, b\n")
    assert res.images == [] and webui.processing.calls == [] and "host:Prompt order" in res.info


def test_forge_copies_get_their_own_result_lists_and_hires_cfg(webui, monkeypatch):
    from sd_sweep.backends.webui import backend
    from sd_sweep.core.ports import GenerationRequest

    monkeypatch.setattr(backend, "is_forge", lambda: True)
    p = make_p(False, webui.tmp, cfg_scale=7.0)
    p.hr_cfg = 7.0
    p.extra_result_images, p.latents_after_sampling, p.pixels_after_sampling = [], [], []
    wb = backend.WebUIBackend(p, is_img2img=False)

    def job(cfg):
        request = GenerationRequest({"cfg_scale": cfg}, ["a"], [""], [1], ["c"])
        return wb.job_for(request)

    pc = job(9.0)
    assert pc.hr_cfg == 9.0 and pc.cfg_scale == 9.0
    for name in backend.FORGE_RESULT_LISTS:
        assert getattr(pc, name) == [] and getattr(pc, name) is not getattr(p, name)
    p.hr_cfg = 1.0  # a hires CFG of its own is kept in every cell
    assert job(9.0).hr_cfg == 1.0 and job(7.0).hr_cfg == 1.0
    p.hr_additional_modules = None  # Forge's default: its hires pass raises TypeError on it
    assert job(9.0).hr_additional_modules == ["Use same choices"] and p.hr_additional_modules is None
    p.hr_additional_modules = ["ae.safetensors"]  # the user's own hires modules are kept
    assert job(9.0).hr_additional_modules == ["ae.safetensors"]


def test_forge_refuses_the_vae_axis_with_a_clear_message(webui, monkeypatch):
    from sd_sweep.backends.webui import backend

    monkeypatch.setattr(backend, "is_forge", lambda: True)
    _, res = run(webui, "axes:\n- param: vae\n  values: None, tiny-vae.safetensors\n")
    assert res.images == [] and webui.processing.calls == []
    assert "axes[0].param: not supported by the forge backend: Forge picks the VAE as a module" in res.info


def test_vae_axis_is_restored_in_a1111(webui):
    run(webui, "axes:\n- param: vae\n  values: tiny-vae.safetensors, None\n")
    assert [c.override_settings["sd_vae"] for c in webui.processing.calls] == ["tiny-vae.safetensors", "None"]
    assert webui.shared.opts.sd_vae == "Automatic" and webui.sd_vae.loaded_vae_file is None


@pytest.mark.slow
def test_a_sweep_runs_after_the_extension_folder_left_sys_path(tmp_path, tiny_cache):
    """The WebUI puts an extension's folder on sys.path only while its scripts load."""
    stub = Path(__file__).resolve().parent / "webui_stub"
    repo = stub.parents[1]
    code = f"""
import sys
from pathlib import Path
sys.path[:] = [{str(stub)!r}] + [p for p in sys.path if p not in ("", {str(repo)!r})]
import webui
from modules import shared
runner = webui.start([{str(repo)!r}]).scripts_txt2img
assert {str(repo)!r} not in sys.path
shared.opts.data["sweep_runs_dir"] = {str(tmp_path / "runs")!r}
spec = "base: {{steps: 2, width: 64, height: 64}}\\naxes: [{{param: seed, values: '1-2'}}]"
request = {{"prompt": "a cat", "seed": 1, "batch_size": 2, "script_name": "sweep", "script_args": [spec]}}
response = webui.api_generate(runner, request, outdir={str(tmp_path / "out")!r})
assert response.status_code == 200, response.json
assert len(list(Path({str(tmp_path / "runs")!r}).rglob("images/*.png"))) == 2
"""
    env = {"SD_SWEEP_CACHE": str(tiny_cache), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
