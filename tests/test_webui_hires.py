# ruff: noqa: F811, PT018
"""The hires fix's second-pass settings in the WebUI backend (stand-in WebUI): hires sampler, schedule type,
prompts, resize and Forge's hires CFG applied as fields of ``p``, in the forms the WebUI accepts."""

from __future__ import annotations

import numpy as np

from tests.test_first_pass import backend_for, plain, plan_for, sweep_spec
from tests.webui_stub.fixtures import make_p, sweep_script, tiny_cache, webui, webui_session  # noqa: F401

HIRES = {"enable_hr": True, "hr_scale": 2.0, "hr_second_pass_steps": 1, "denoising_strength": 0.5}


def run(webui, spec, **p_kwargs):
    p = make_p(False, webui.tmp, **{**HIRES, **p_kwargs})
    return sweep_script(webui.scripts.scripts_txt2img).run(p, spec)


def settings_of(infotexts):
    from sd_sweep.core.infotext import parse_settings_line

    return [parse_settings_line(t.strip().splitlines()[-1]) for t in infotexts]


def cell_infotexts(res):
    return settings_of(res.infotexts[res.index_of_first_image :])


def test_hires_sampler_axis_sets_the_field_and_the_infotext(webui):
    spec = "axes:\n- param: hr_sampler_name\n  values: Use same sampler, Euler, DDIM\n"
    res = run(webui, spec, hr_upscaler="Latent")
    assert [c.hr_sampler_name for c in webui.processing.calls] == [None, "Euler", "DDIM"]
    assert [c.get("Hires sampler") for c in cell_infotexts(res)] == [None, "Euler", "DDIM"]
    assert all(c.get("Sampler") == "Euler a" for c in cell_infotexts(res))


def test_hires_prompt_axis_sets_the_fields_and_the_infotext(webui):
    spec = """
axes:
- param: hr_prompt
  values: ["", a blue dog]
- param: hr_negative_prompt
  values: ["", green]
"""
    res = run(webui, spec, hr_upscaler="Latent")
    calls = webui.processing.calls
    assert [(c.hr_prompt, c.hr_negative_prompt) for c in calls] == [
        ("", ""),
        ("", "green"),
        ("a blue dog", ""),
        ("a blue dog", "green"),
    ]
    written = [(c.get("Hires prompt"), c.get("Hires negative prompt")) for c in cell_infotexts(res)]
    # an empty hires prompt is the prompt's: the WebUI writes no key for it
    assert written == [(None, None), (None, "green"), ("a blue dog", None), ("a blue dog", "green")]
    assert calls[0].all_hr_prompts == ["a red cat"] and calls[2].all_hr_prompts == ["a blue dog"]


def test_hires_resize_axis_sets_the_fields_and_the_size(webui):
    res = run(webui, "axes:\n- param: hr_resize_x\n  values: 0, 96\n", hr_upscaler="Latent")
    assert [c.hr_resize_x for c in webui.processing.calls] == [0, 96]
    images = res.images[res.index_of_first_image :]
    assert [image.size for image in images] == [(128, 128), (96, 96)]
    assert [c.get("Hires resize") for c in cell_infotexts(res)] == [None, "96x0"]


def test_sampler_aliases_and_schedule_names_are_applied_as_the_webui_names_them(webui):
    spec = """
base:
  sampler_name: k_euler_a
axes:
- param: hr_sampler_name
  values: k_euler, Euler
- param: hr_scheduler
  values: karras, Karras, Use same scheduler
"""
    res = run(webui, spec, hr_upscaler="Latent")
    calls = webui.processing.calls
    assert {c.sampler_name for c in calls} == {"Euler a"}
    applied = [(c.hr_sampler_name, c.hr_scheduler) for c in calls]
    assert sorted(applied, key=str) == sorted([("Euler", "Karras"), ("Euler", "Karras"), ("Euler", None)] * 2, key=str)
    written = [(c["Hires sampler"], c.get("Hires schedule type")) for c in cell_infotexts(res)]
    assert written == [("Euler", "Karras"), ("Euler", "Karras"), ("Euler", None)] * 2


def test_the_catalog_offers_the_webuis_hires_lists(webui):
    caps = backend_for(webui, **HIRES).capabilities()
    assert caps.choices["hr_sampler_name"] == ("Use same sampler", *caps.choices["sampler_name"])
    assert caps.choices["hr_scheduler"] == ("Use same scheduler", "Automatic", "Uniform", "Karras", "Exponential")
    assert caps.spellings["hr_sampler_name"]["k_euler_a"] == "Euler a"
    assert caps.spellings["hr_scheduler"]["karras"] == "Karras"
    assert "k_euler_a" not in caps.choices["sampler_name"]  # the lists show each choice once, as the WebUI names it


def test_unknown_hires_sampler_is_refused_naming_field_value_and_a_suggestion(webui):
    res = run(webui, "axes:\n- param: hr_sampler_name\n  values: Eulr, Euler\n")
    assert res.images == [] and webui.processing.calls == []
    assert (
        "- axes[0].values: unknown hires sampler for the webui backend; did you mean Euler, Euler a? (got 'Eulr')"
        in res.info.splitlines()
    )


def test_hires_cfg_is_refused_on_the_v1101_host(webui):
    res = run(webui, "axes:\n- param: hr_cfg\n  values: 1, 7\n")
    assert res.images == [] and webui.processing.calls == []
    assert "axes[0].param: not supported by the webui backend: this WebUI's txt2img has no hires CFG scale" in res.info


def test_forge_applies_hires_cfg_where_its_processing_class_has_it(webui, monkeypatch):
    from sd_sweep.backends.webui import backend

    monkeypatch.setattr(backend, "is_forge", lambda: True)
    forge = webui.processing.StableDiffusionProcessingTxt2ImgForge
    monkeypatch.setattr(webui.processing, "StableDiffusionProcessingTxt2Img", forge)
    from sd_sweep.backends.webui.session import ValidationOnlyP

    assert backend.WebUIBackend(ValidationOnlyP({}), is_img2img=False).capabilities().supports("hr_cfg")
    spec = "axes:\n- param: hr_cfg\n  values: 3, 5\n- param: cfg_scale\n  values: 7\n"
    # the user's hires CFG follows the CFG (equal in p); a swept hires CFG is each cell's own
    res = run(webui, spec, hr_upscaler="Latent", hr_cfg=7.0)
    assert [(c.hr_cfg, c.cfg_scale) for c in webui.processing.calls] == [(3, 7), (5, 7)]
    assert [c["Hires CFG Scale"] for c in cell_infotexts(res)] == ["3.0", "5.0"]


def test_cells_differing_only_in_hires_sampler_and_prompt_share_one_first_pass(webui, tmp_path):
    from PIL import Image

    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.store import RunStore

    text = """
axes:
- param: hr_sampler_name
  values: Euler a, Euler
- param: hr_prompt
  values: ["", a blue dog]
"""
    backend = backend_for(webui, **HIRES, hr_upscaler="Lanczos")
    plan = plan_for(backend, text)
    assert (plan.estimate["first_passes"], plan.estimate["second_passes"]) == (1, 4)
    webui.processing.first_passes.clear()
    result = run_sweep(sweep_spec(backend, text), backend, tmp_path / "run", draw_grids=False)
    assert result.state == "finished" and len(result.generated) == 4
    assert webui.processing.first_passes == [("a red cat", 1234)] and backend.first_passes == 1
    store = RunStore.open(tmp_path / "run")
    for cell in result.plan.cells:
        expected = plain(webui, {**HIRES, "hr_upscaler": "Lanczos", **cell.params}, cell.params["seed"])
        with Image.open(store.image_path(cell.id)) as image:
            got = np.asarray(image.convert("RGB"), dtype=np.int16)
        assert np.abs(got - np.asarray(expected.convert("RGB"), dtype=np.int16)).max() == 0
