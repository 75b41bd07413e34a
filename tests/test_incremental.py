# ruff: noqa: F811, PT018
"""A run folder is a cache of cells: an edited sweep generates only the cells it lacks, in the Script
(txt2img and img2img), over /sdapi/v1 with ``script_name``, over /sweep/v1 and on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sd_sweep import cli
from sd_sweep.core.naming import default_name, slug
from sd_sweep.core.spec import spec_from_dict
from sd_sweep.core.store import RunStore
from tests.api_harness import SPEC as API_SPEC
from tests.api_harness import live_api
from tests.fakes import FakeBackend
from tests.webui_stub.fixtures import make_p, sweep_script, tiny_cache, webui, webui_session  # noqa: F401

CFG = {"param": "cfg_scale", "values": "5, 9"}
CFG_GROWN = {"param": "cfg_scale", "values": "5, 9, 11"}
STEPS_FROM_BASE = {"param": "steps", "values": "2, 3"}
"""The stand-in's ``p`` has steps=2: the first value is the base value."""


def spec_text(*axes, **top):
    return yaml.safe_dump({**top, "axes": list(axes)}, sort_keys=False)


def run(webui, spec, *, is_img2img=False, **p_kwargs):
    runner = webui.scripts.scripts_img2img if is_img2img else webui.scripts.scripts_txt2img
    p = make_p(is_img2img, webui.tmp, **p_kwargs)
    return sweep_script(runner).run(p, spec)


def generated(webui, spec, **kwargs):
    """Run the sweep; the number of images the stand-in generated, and the result."""
    webui.processing.calls.clear()
    res = run(webui, spec, **kwargs)
    return sum(len(c.prompt) for c in webui.processing.calls), res


def run_folders(webui):
    return sorted(p.name for p in (webui.tmp / "sweeps").iterdir())


def cell_infotexts(res):
    return res.infotexts[res.index_of_first_image :]


def settings_line(infotext):
    from sd_sweep.core.infotext import parse_settings_line

    return parse_settings_line(infotext.strip().splitlines()[-1])


# --- the Script -------------------------------------------------------------------------------


@pytest.mark.parametrize("is_img2img", [False, True], ids=["txt2img", "img2img"])
def test_script_generates_only_the_cells_an_edit_adds(webui, is_img2img):
    count, res = generated(webui, spec_text(CFG), is_img2img=is_img2img)
    assert count == 2 and "2 new, 0 reused" in res.comments

    count, res = generated(webui, spec_text(CFG_GROWN), is_img2img=is_img2img)
    assert count == 1 and "1 new, 2 reused" in res.comments
    assert len(cell_infotexts(res)) == 3

    count, res = generated(webui, spec_text(CFG_GROWN, STEPS_FROM_BASE), is_img2img=is_img2img)
    assert count == 3 and "3 new, 3 reused" in res.comments  # only the steps=3 column is new
    assert sorted(settings_line(t)["Steps"] for t in cell_infotexts(res)) == ["2"] * 3 + ["3"] * 3

    layout = {"x": "steps", "y": "cfg_scale"}
    count, res = generated(webui, spec_text(CFG_GROWN, STEPS_FROM_BASE, layout=layout), is_img2img=is_img2img)
    assert count == 0 and "0 new, 6 reused" in res.comments
    assert res.index_of_first_image == 1 and len(res.images) == 7  # the grid, redrawn, and every cell
    assert run_folders(webui) == ["a-red-cat"]  # named after the prompt, whatever the axes


def test_script_default_name_follows_the_tab_prompt_and_the_name_box_wins(webui):
    run(webui, spec_text(CFG), prompt="A Portrait of <lora:x:0.5> (an old man:1.2), BREAK oil")
    assert run_folders(webui) == ["a-portrait-of-an-old-man-oil"]
    run(webui, spec_text(CFG, name="my study"))
    assert run_folders(webui) == ["a-portrait-of-an-old-man-oil", "my study"]


def test_script_changing_the_base_makes_new_cells_and_shows_only_them(webui):
    generated(webui, spec_text(CFG))
    count, res = generated(webui, spec_text(CFG), steps=3)  # the tab's steps changed
    assert count == 2 and "2 new, 0 reused" in res.comments
    assert [settings_line(t)["Steps"] for t in cell_infotexts(res)] == ["3", "3"]
    assert len(res.images) == 3  # one grid and the two new cells, none of the steps=2 images

    checkpoint = {"checkpoint": "tiny-b.safetensors [bbbb222222]"}
    count, res = generated(webui, spec_text(CFG, base=checkpoint), steps=3)
    assert count == 2 and "2 new, 0 reused" in res.comments
    assert {settings_line(t)["Model"] for t in cell_infotexts(res)} == {"tiny-b"}

    count, res = generated(webui, spec_text(CFG), steps=2)  # back to the first base: all still there
    assert count == 0 and "0 new, 2 reused" in res.comments
    assert [settings_line(t)["Steps"] for t in cell_infotexts(res)] == ["2", "2"]
    assert run_folders(webui) == ["a-red-cat"]


def test_script_seed_minus_one_keeps_the_folder_seeds_while_the_sweep_changes(webui):
    count, first = generated(webui, spec_text(CFG), seed=-1)
    assert count == 2 and "seed -1" in first.comments
    seeds = {settings_line(t)["Seed"] for t in cell_infotexts(first)}

    count, grown = generated(webui, spec_text(CFG_GROWN), seed=-1)
    assert count == 1 and "1 new, 2 reused" in grown.comments
    assert {settings_line(t)["Seed"] for t in cell_infotexts(grown)} == seeds
    assert run_folders(webui) == ["a-red-cat"]

    # the same sweep again, unchanged, after it finished: new random images, in a new folder
    count, again = generated(webui, spec_text(CFG_GROWN), seed=-1)
    assert count == 3 and "3 new, 0 reused" in again.comments
    assert run_folders(webui) == ["a-red-cat", "a-red-cat-2"]
    assert {settings_line(t)["Seed"] for t in cell_infotexts(again)}.isdisjoint(seeds)

    # editing it again continues in that newest folder
    count, relaid = generated(webui, spec_text(CFG_GROWN, layout={"y": "cfg_scale"}), seed=-1)
    assert count == 0 and "a-red-cat-2" in relaid.comments
    assert run_folders(webui) == ["a-red-cat", "a-red-cat-2"]


def test_script_fixed_seeds_reuse_everything_when_nothing_changed(webui):
    generated(webui, spec_text(CFG))
    count, res = generated(webui, spec_text(CFG))
    assert count == 0 and "0 new, 2 reused" in res.comments and "seed -1" not in res.comments
    assert run_folders(webui) == ["a-red-cat"]


@pytest.mark.parametrize("seed", [1234, -1], ids=["fixed-seed", "random-seed"])
def test_script_interrupted_run_continues_where_it_stopped(webui, seed):
    state = webui.shared.state

    def stop_in_second(p, n):
        if len(webui.processing.calls) == 2:
            state.stop_generating()

    webui.processing.before_batch_hook = stop_in_second
    spec = spec_text({"param": "steps", "values": "2, 3, 4, 5"})
    count, res = generated(webui, spec, seed=seed)
    assert count == 2 and "interrupted" in res.comments and "2 of 4 cells not generated yet" in res.comments
    webui.processing.before_batch_hook = None
    state.interrupted = state.stopping_generation = False
    first_seeds = {settings_line(t)["Seed"] for t in cell_infotexts(res)}

    count, res = generated(webui, spec, seed=seed)
    assert count == 2 and "2 new, 2 reused" in res.comments and "finished" in res.comments
    assert run_folders(webui) == ["a-red-cat"]  # also with seed -1: the run had not finished
    assert {settings_line(t)["Seed"] for t in cell_infotexts(res)} == first_seeds


# --- /sdapi/v1/txt2img with script_name ---------------------------------------------------------


def test_sdapi_script_name_generates_only_the_new_cells(webui):
    def call(*axes):
        body = {
            "prompt": "a dog",
            "steps": 2,
            "width": 64,
            "height": 64,
            "seed": -1,
            "script_name": "sweep",
            "script_args": [json.dumps({"axes": list(axes)})],
        }
        webui.processing.calls.clear()
        res = webui.stub.api_generate(webui.scripts.scripts_txt2img, body, outdir=str(webui.tmp / "api"))
        assert res.status_code == 200
        return sum(len(c.prompt) for c in webui.processing.calls), json.loads(res.json["info"])

    count, info = call(CFG)
    assert count == 2
    count, info = call(CFG_GROWN)
    assert count == 1 and len(info["infotexts"]) == 4  # the grid and three cells
    count, info = call(CFG_GROWN, STEPS_FROM_BASE)
    assert count == 3
    assert run_folders(webui) == ["a-dog"]


# --- /sweep/v1 ------------------------------------------------------------------------------


def test_sweep_api_resubmitting_a_grown_spec_generates_only_the_new_cells(tmp_path: Path):
    with live_api(tmp_path / "runs") as api:
        first = api.client.wait(api.client.submit(API_SPEC)["id"], poll=0.05, timeout=30)
        assert first["state"] == "finished" and first["cells_done"] == 4
        calls = len(api.backend.calls)

        grown = {**API_SPEC, "axes": [{"param": "cfg_scale", "values": "5, 7, 9"}, API_SPEC["axes"][1]]}
        status = api.client.wait(api.client.submit(grown)["id"], poll=0.05, timeout=30)
        assert status["state"] == "finished"
        assert status["cells_total"] == 6 and status["cells_reused"] == 4
        assert sum(len(r.cell_ids) for r in api.backend.calls[calls:]) == 2

        calls = len(api.backend.calls)
        relaid = {**grown, "layout": {"x": "sampler_name", "y": "cfg_scale"}}
        status = api.client.wait(api.client.submit(relaid)["id"], poll=0.05, timeout=30)
        assert status["state"] == "finished" and status["cells_reused"] == 6
        assert api.backend.calls[calls:] == []
        assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["cats"]


def test_sweep_api_without_a_name_uses_the_prompt_for_its_folder(tmp_path: Path):
    unnamed = {k: v for k, v in API_SPEC.items() if k != "name"}
    with live_api(tmp_path / "runs") as api:
        job = api.client.submit(unnamed)
        assert api.client.wait(job["id"], poll=0.05, timeout=30)["state"] == "finished"
    assert RunStore.open(tmp_path / "runs" / "a-cat").state == "finished"


# --- the command line -----------------------------------------------------------------------


def test_cli_run_twice_into_the_same_out_generates_only_the_new_cells(tmp_path: Path, monkeypatch, capsys):
    backend = FakeBackend()
    monkeypatch.setattr(cli, "_backend", lambda args: backend)
    path = tmp_path / "study.yaml"
    base = {"prompt": "a lighthouse at dusk", "steps": 2, "width": 32, "height": 32, "seed": 3}

    def run_cli(*axes, **top):
        path.write_text(yaml.safe_dump({"base": base, "axes": list(axes), **top}))
        assert cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    summary = run_cli(CFG)
    assert (summary["generated"], summary["reused"]) == (2, 0)
    summary = run_cli(CFG_GROWN)
    assert (summary["generated"], summary["reused"]) == (1, 2)
    summary = run_cli(CFG_GROWN, {"param": "steps", "values": "2, 4"})
    assert (summary["generated"], summary["reused"]) == (3, 3)
    summary = run_cli(CFG_GROWN, {"param": "steps", "values": "2, 4"}, layout={"x": "steps"})
    assert (summary["generated"], summary["reused"]) == (0, 6)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-lighthouse-at-dusk"]


# --- names ----------------------------------------------------------------------------------


def test_default_name_is_readable_short_and_ignores_the_axes():
    assert default_name({"prompt": "A red cat, in the snow"}) == "a-red-cat-in-the-snow"
    assert default_name({"prompt": "(masterpiece:1.3), <lora:detail:0.7> Café AND tea BREAK dawn"}) == (
        "masterpiece-cafe-tea-dawn"
    )
    long = default_name({"prompt": "portrait of a woman with long flowing hair in a garden at sunset"})
    assert long == "portrait-of-a-woman-with-long-flowing" and len(long) <= 40
    assert len(slug("x" * 100)) == 40
    assert default_name({"prompt": "  ,,, !!"}) == default_name({}) == default_name(None) == "sweep"
    base = {"prompt": "a red cat"}
    names = {
        spec_from_dict({"base": base}).name,
        spec_from_dict({"base": base, "axes": [CFG]}).name,
        spec_from_dict({"base": base, "axes": [CFG_GROWN, STEPS_FROM_BASE], "layout": {"x": "steps"}}).name,
    }
    assert names == {"a-red-cat"}
    assert spec_from_dict({"name": "mine", "base": base}).name == "mine"


def test_name_box_writes_the_spec_and_reads_it_back(webui):
    from sd_sweep.webui import ui
    from sd_sweep.webui.runner import check_spec

    text = ui.name_to_spec("axes:\n- param: cfg_scale\n  values: 5, 7\n", "portraits")
    assert yaml.safe_load(text) == {"name": "portraits", "axes": [{"param": "cfg_scale", "values": "5, 7"}]}
    assert text.startswith("name: portraits")
    assert ui.spec_name(text) == "portraits"
    assert ui.name_to_spec(text, "portraits") is None  # unchanged: the text stays as typed
    assert "name" not in yaml.safe_load(ui.name_to_spec(text, "  "))  # blank: the default name again
    assert ui.name_to_spec("axes: [", "x") is None  # half-typed text is the user's
    assert ui.name_to_spec("", "x") == "name: x\n"
    # the rows rewrite the axes and keep the name
    rows = ui.rows_to_spec(text, [("CFG scale (cfg_scale)", "5, 7, 9")], {}, {})
    assert ui.spec_name(rows) == "portraits"
    # the live summary names the folder: the default one from the tab's prompt, or the box's
    summary = check_spec("axes:\n- param: cfg_scale\n  values: 5, 7\n", {"prompt": "An owl"}, is_img2img=False)
    assert summary["name"] == "an-owl" and "Sweep name (run folder): an-owl" in ui.summary_html(summary)
    bad = check_spec(ui.name_to_spec(text, "../up"), {"prompt": "An owl"}, is_img2img=False)
    assert not bad["ok"] and [(e["field"], e["value"]) for e in bad["errors"]] == [("name", "../up")]


def test_script_makes_new_cells_when_the_webui_checkpoint_changes(webui):
    from modules import shared

    assert generated(webui, spec_text(CFG))[0] == 2
    assert generated(webui, spec_text(CFG))[0] == 0
    previous = shared.opts.sd_model_checkpoint
    shared.opts.sd_model_checkpoint = "another.safetensors"
    try:
        assert generated(webui, spec_text(CFG))[0] == 2
    finally:
        shared.opts.sd_model_checkpoint = previous
    assert generated(webui, spec_text(CFG))[0] == 0  # back to the first model: its cells again


def test_script_makes_new_cells_for_another_img2img_input_image(webui):
    from PIL import Image

    assert generated(webui, spec_text(CFG), is_img2img=True)[0] == 2
    other = Image.new("RGB", (64, 64), (30, 200, 30))
    assert generated(webui, spec_text(CFG), is_img2img=True, init_images=[other])[0] == 2
    assert generated(webui, spec_text(CFG), is_img2img=True, init_images=[other])[0] == 0


def test_the_script_and_the_api_say_how_many_images_of_earlier_versions_the_folder_keeps(webui, tmp_path: Path):
    generated(webui, spec_text(CFG_GROWN))
    count, res = generated(webui, spec_text(CFG))
    assert count == 0 and "it keeps 1 image of earlier versions" in res.comments

    with live_api(tmp_path / "runs") as api:
        api.client.wait(api.client.submit(API_SPEC)["id"], poll=0.05, timeout=30)
        shrunk = {**API_SPEC, "axes": [{"param": "cfg_scale", "values": "5"}, API_SPEC["axes"][1]]}
        status = api.client.wait(api.client.submit(shrunk)["id"], poll=0.05, timeout=30)
    assert status["state"] == "finished" and status["stale_images"] == 2
