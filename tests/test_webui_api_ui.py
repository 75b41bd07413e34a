# ruff: noqa: F811, PT018
"""The WebUI API path (``script_name: "sweep"``), the UI under the installed gradio, and the opt-in real WebUI test."""

from __future__ import annotations

import json

from tests.webui_stub.fixtures import sweep_script, tiny_cache, webui, webui_session  # noqa: F401

SPEC_JSON = json.dumps({"axes": [{"param": "steps", "values": [2, 3]}]})


def test_api_runs_the_sweep_by_script_name(webui):
    body = {
        "prompt": "a dog",
        "steps": 2,
        "width": 64,
        "height": 64,
        "sampler_name": "Euler",
        "seed": 7,
        "script_name": "sweep",
        "script_args": [SPEC_JSON],
    }
    res = webui.stub.api_generate(webui.scripts.scripts_txt2img, body, outdir=str(webui.tmp / "api"))
    assert res.status_code == 200
    info = json.loads(res.json["info"])
    assert info["index_of_first_image"] == 1 and len(res.json["images"]) == 3
    assert ["Steps: 2" in t and "Steps: 3" not in t for t in info["infotexts"][1:]] == [True, False]
    # the API's default save_images=false saves nothing in the WebUI's folders (the run folder has all)
    assert webui.images.saved == []


def test_api_unknown_script_and_bad_spec(webui):
    bad = webui.stub.api_generate(webui.scripts.scripts_txt2img, {"script_name": "nope", "script_args": []})
    assert bad.status_code == 422
    body = {
        "prompt": "x",
        "width": 64,
        "height": 64,
        "steps": 2,
        "script_name": "Sweep",
        "script_args": ["axes:\n- param: cfg_scale\n  values: abc\n"],
    }
    res = webui.stub.api_generate(webui.scripts.scripts_txt2img, body)
    assert res.status_code == 422
    assert [(p["field"], p["value"]) for p in res.json["detail"]] == [("axes[0].values", "abc")]


def test_ui_builds_and_returns_one_control(webui):
    from sd_sweep.webui import ui

    for runner, tab in ((webui.scripts.scripts_txt2img, "txt2img"), (webui.scripts.scripts_img2img, "img2img")):
        demo, inputs = webui.stub.build_ui(runner, tab)
        script = sweep_script(runner)
        assert script.args_to - script.args_from == 1
        assert f"{tab}_prompt" in script.sweep_tab_components
        names, _ = ui._tab_inputs(script, tab)
        assert names == ["prompt", "negative_prompt", "steps", "batch_size"]
        defaults = webui.stub.default_script_args(runner)  # ui() again in a throwaway Blocks, like the API
        assert len(defaults) == len(inputs)


def test_rows_write_the_spec_and_load_back():
    from sd_sweep.webui import ui

    text = ui.rows_to_spec(
        "name: keep\nbase:\n  steps: 3\naxes:\n- param: cfg_scale\n  values: 1\n  title: CFG\n",
        [
            ("CFG scale (cfg_scale)", "5, 7"),
            ("Prompt matrix (prompt_matrix)", ""),
            ("X/Y/Z: Sampler (host:Sampler)", "Euler"),
        ],
        {"at_start": True, "delimiter": "space", "target": "prompt"},
        {"x": "Axis 3", "y": "Axis 1", "page": []},
    )
    import yaml

    doc = yaml.safe_load(text)
    assert doc["name"] == "keep" and doc["base"] == {"steps": 3}
    assert doc["axes"][0] == {"param": "cfg_scale", "values": "5, 7", "title": "CFG"}
    assert doc["axes"][1] == {"param": "prompt_matrix", "delimiter": "space", "at_start": True, "target": "prompt"}
    assert doc["layout"] == {"x": "host:Sampler", "y": "cfg_scale"}
    rows, matrix, layout, error = ui.spec_to_rows(text)
    assert error is None and rows[0] == ("cfg_scale", "5, 7") and rows[2] == ("host:Sampler", "Euler")
    assert matrix["delimiter"] == "space" and layout["x"] == "Axis 3" and layout["y"] == "Axis 1"
    assert ui.spec_to_rows("axes: [")[3].startswith("spec: cannot parse")


def test_live_summary_counts_and_lists_every_error(webui):
    from sd_sweep.webui import ui
    from sd_sweep.webui.runner import check_spec

    ok = check_spec(
        "axes:\n- param: cfg_scale\n  values: 5, 7\n- param: seed\n  values: 1-3\n", {"prompt": "a"}, is_img2img=False
    )
    assert ok["ok"] and ok["estimate"]["cells"] == 6
    with_tab_batch = check_spec(
        "axes:\n- param: seed\n  values: 1-6\n", {"prompt": "a", "batch_size": 4, "steps": 3}, is_img2img=False
    )
    assert with_tab_batch["estimate"]["batches"] == 2
    assert with_tab_batch["estimate"]["sampling_steps"] == 18
    assert "6 cells, 6 images" in ui.summary_html(ok)
    bad = check_spec(
        "axes:\n- param: prompt_sr\n  values: dog, cat\n- param: steps\n  values: x\n",
        {"prompt": "a cat"},
        is_img2img=False,
    )
    fields = {e["field"] for e in bad["errors"]}
    assert not bad["ok"] and "axes[1].values" in fields
    assert "Cannot run this sweep" in ui.summary_html(bad)
    choices = ui.param_choices(False)
    assert "X/Y/Z: [Fake] Strength (host:[Fake] Strength)" in choices
    assert ui.values_for("sampler_name", False) == ["DPM++ 2M", "Euler a", "Euler", "DDIM"]
    assert ui.values_for("checkpoint", False)[0] == "tiny-a.safetensors [aaaa111111]"


def _controls(rows, at_start=False, delimiter="comma", target="prompt", x="(auto)", y="(auto)", pages=()):
    from sd_sweep.webui import ui

    params = [r[0] for r in rows] + [None] * (ui.MAX_ROWS - len(rows))
    texts = [r[1] for r in rows] + [""] * (ui.MAX_ROWS - len(rows))
    return [*params, *texts, at_start, delimiter, target, x, y, list(pages)]


def test_row_edits_never_drop_a_spec_the_rows_were_not_loaded_from():
    from sd_sweep.webui import ui

    pasted = "# mine\nname: pasted\naxes:\n- param: seed\n  values: 1-4\n- param: steps\n  values: 4, 8\n"
    # the rows are still empty (the text was pasted, the rows not yet loaded): an edit of row 1 keeps the text
    stale = _controls([("CFG scale (cfg_scale)", "")])
    assert ui.controls_to_spec(pasted, stale, edited=0) is None
    # once loaded, editing a row rewrites the text from the rows, keeping its other keys
    rows, _matrix, _layout, error = ui.spec_to_rows(pasted)
    assert error is None
    synced = _controls([(ui.entry_of(p, ui.param_choices(False)), t) for p, t in rows])
    assert ui.controls_to_spec(pasted, synced, edited=None) is None  # nothing changed: the text stays as typed
    synced[ui.MAX_ROWS + 1] = "4, 8, 12"
    text = ui.controls_to_spec(pasted, synced, edited=ui.MAX_ROWS + 1)
    assert "name: pasted" in text and "values: 4, 8, 12" in text and "values: 1-4" in text
    # a text that does not parse is the user's, half typed: a row edit keeps it; an empty one is replaced
    assert ui.controls_to_spec("axes: [", _controls([("cfg_scale", "5, 7")]), edited=1) is None
    assert "cfg_scale" in ui.controls_to_spec("", _controls([("cfg_scale", "5, 7")]), edited=1)
    # prompt-matrix options left at their defaults do not count as a change
    matrix = "axes:\n- param: prompt_matrix\n"
    assert ui.controls_to_spec(matrix, _controls([("prompt_matrix", "")]), edited=0) is None
    assert "delimiter: space" in ui.controls_to_spec(
        matrix, _controls([("prompt_matrix", "")], delimiter="space"), edited=2 * ui.MAX_ROWS + 1
    )


def test_summary_names_rows_and_fill_values_read_back():
    from sd_sweep.core.values import split_csv
    from sd_sweep.webui import ui

    html = ui.summary_html(
        {"ok": False, "errors": [{"field": "axes[2].values", "value": "x", "message": "not an integer"}]}
    )
    assert "Axis 3 values" in html and "axes[2]" not in html
    assert "No axes yet" in ui.summary_html({"empty": True})
    assert ui.join_values(["Euler a", "DPM++ 2M"]) == "Euler a, DPM++ 2M"
    tricky = ["a, b", 'say "hi"', "c"]
    assert split_csv(ui.join_values(tricky), "values") == tricky
