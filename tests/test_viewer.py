"""The viewer's index, thumbnails, sheets and ZIPs, its routes on the WebUI's app (folder
confinement, errors naming field and value), the Sweeps tab, and ``view``/``export`` commands."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from sd_sweep.cli import main
from sd_sweep.core.run import run_sweep
from sd_sweep.core.spec import spec_from_dict
from sd_sweep.core.store import RunStore
from sd_sweep.viewer.files import images_zip, render_view, thumbnail
from sd_sweep.viewer.index import build_index
from sd_sweep.viewer.service import ViewerError, ViewerService
from tests.api_harness import make_app
from tests.fakes import FakeBackend
from tests.live_server import LiveServer
from tests.viewer_runs import DOC, cell_at, make_run

ROOT = Path(__file__).resolve().parents[1]
FORMAT_1_RUN = ROOT / "tests" / "data" / "run-format-1"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    runs_dir = tmp_path / "runs"
    make_run(runs_dir / "look")
    return runs_dir


def test_the_index_has_dimensions_zip_groups_and_every_cell_with_its_state(runs: Path):
    index = build_index(runs / "look")
    assert [d["title"] for d in index["dimensions"]] == ["CFG scale", "Prompt S/R", "Sampler"]
    assert index["dimensions"][0]["labels"] == ["3", "4", "5"]
    assert index["counts"] == {"cells": 12, "done": 10, "failed": 1, "pending": 1, "stale": 0}
    states = {c["id"]: c["state"] for c in index["cells"]}
    assert sorted(states.values()).count("done") == 10
    done = next(c for c in index["cells"] if c["state"] == "done")
    assert done["file"] == f"images/{done['id']}.png"
    assert done["infotext"].startswith("a cat")
    failed = next(c for c in index["cells"] if c["state"] == "failed")
    assert failed["error"] == "RuntimeError: out of memory"
    assert "file" not in failed
    assert index["zip_groups"] == []

    zipped = {
        **DOC,
        "name": "zipped",
        "axes": [
            {"param": "cfg_scale", "values": "3, 5", "zip": "pair"},
            {"param": "steps", "values": "1, 2", "zip": "pair"},
        ],
        "layout": {"x": "pair"},
    }
    run_sweep(spec_from_dict(zipped), FakeBackend(), runs / "zipped", draw_grids=False)
    index = build_index(runs / "zipped")
    assert len(index["dimensions"]) == 1
    assert index["zip_groups"] == [index["dimensions"][0]["axes"]]
    assert len(index["dimensions"][0]["axes"]) == 2


def test_a_format_1_folder_has_an_index(tmp_path: Path):
    index = build_index(FORMAT_1_RUN)
    assert index["cells"]
    assert any(c["state"] == "done" for c in index["cells"])


def test_thumbnails_are_made_once_small_and_cached_in_the_run_folder(tmp_path: Path):
    run_dir = tmp_path / "big"
    doc = {
        **DOC,
        "base": {**DOC["base"], "width": 640, "height": 320},
        "axes": [{"param": "cfg_scale", "values": "3"}],
        "layout": {"x": "cfg_scale"},
    }
    plan = run_sweep(spec_from_dict(doc), FakeBackend(), run_dir, draw_grids=False).plan
    cell_id = plan.cells[0].id
    path = run_dir / "thumbs" / f"{cell_id}.webp"
    assert path.is_file(), "the run writes the thumbnail with the image"
    with Image.open(path) as image:
        assert image.size == (256, 128)
    path.unlink()  # a folder written before thumbnails were saved: made on first request
    assert thumbnail(run_dir, cell_id) == path
    with Image.open(path) as image:
        assert image.format == "WEBP"
        assert image.size == (256, 128)
    made = path.stat().st_mtime_ns
    assert thumbnail(run_dir, cell_id) == path
    assert path.stat().st_mtime_ns == made
    assert thumbnail(run_dir, "0" * 12) is None
    with pytest.raises(Exception, match="cell_id"):
        thumbnail(run_dir, "../plan")


def test_sheets_of_a_view_follow_its_layout_and_leave_hidden_values_out(runs: Path):
    store = RunStore.open(runs / "look")
    full = render_view(store, x="cfg_scale", y="prompt_sr", pages=["sampler_name"])
    assert len(full) == 2  # one sheet per sampler
    less = render_view(store, x="cfg_scale", y="prompt_sr", hidden={"cfg_scale": [1], "sampler_name": [1]})
    assert len(less) == 1
    with Image.open(io.BytesIO(full[0][1])) as a, Image.open(io.BytesIO(less[0][1])) as b:
        assert b.height == a.height
        assert b.width < a.width
    pivoted = render_view(store, x="prompt_sr", y="cfg_scale", hidden={"sampler_name": [0]})
    with Image.open(io.BytesIO(full[0][1])) as a, Image.open(io.BytesIO(pivoted[0][1])) as c:
        assert c.height > a.height  # three rows of CFG scale instead of two of prompts
        assert c.width < a.width
    with pytest.raises(Exception, match="every value is hidden"):
        render_view(store, x="cfg_scale", y=None, hidden={"prompt_sr": [0, 1]})
    with pytest.raises(Exception, match="not a dimension"):
        render_view(store, x="nope", y=None)


def test_the_images_zip_names_files_by_their_labels(runs: Path):
    store = RunStore.open(runs / "look")
    plan = store.plan_dict
    first = cell_at(plan, cfg_scale=0, prompt_sr=0, sampler_name=0)
    failed = cell_at(plan, cfg_scale=0, prompt_sr=0, sampler_name=1)
    with zipfile.ZipFile(io.BytesIO(images_zip(store, [first["id"], failed["id"]]))) as archive:
        assert archive.namelist() == [f"cfg_scale=3-prompt_sr=cat-sampler_name=Euler-{first['id']}.png"]
    with pytest.raises(Exception, match=r"ids\[0\]"):
        images_zip(store, ["nope"])


@pytest.fixture
def client(runs: Path):
    import httpx

    app, manager, _ = make_app(runs, FakeBackend())
    server = LiveServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield http
    finally:
        manager.close()
        server.stop()


def test_the_routes_list_runs_newest_first_with_axes_thumbnail_and_what_can_be_done(client, runs: Path):
    time.sleep(1.1)
    make_run(runs / "later", failing=False, pending=0)
    (runs / "not-a-run").mkdir()
    listed = client.get("/sweep/v1/runs").json()["runs"]
    assert [r["folder"] for r in listed] == ["later", "look"]
    look = listed[1]
    assert look["counts"]["done"] == 10
    assert [a["title"] for a in look["axes"]] == ["CFG scale", "Prompt S/R", "Sampler"]
    assert look["can_resume"] is False
    assert "Script" in look["note"]
    thumb = client.get(f"/sweep/v1/runs/look/thumbs/{look['thumb']}")
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/webp"


def test_the_routes_serve_the_index_files_sheets_and_zips_of_a_run(client, runs: Path):
    index = client.get("/sweep/v1/runs/look/index").json()
    done = next(c for c in index["cells"] if c["state"] == "done")
    image = client.get(f"/sweep/v1/runs/look/files/{done['file']}")
    assert image.status_code == 200
    assert image.content == (runs / "look" / done["file"]).read_bytes()
    sheet = client.post(
        "/sweep/v1/runs/look/sheets", json={"x": "cfg_scale", "y": "prompt_sr", "hidden": {"sampler_name": [1]}}
    )
    assert sheet.status_code == 200
    assert sheet.headers["content-type"] == "image/png"
    assert sheet.content.startswith(b"\x89PNG")
    sheets = client.post("/sweep/v1/runs/look/sheets", json={"x": "cfg_scale", "y": "prompt_sr"})
    assert sheets.headers["content-type"] == "application/zip"
    assert len(zipfile.ZipFile(io.BytesIO(sheets.content)).namelist()) == 2
    archive = client.post("/sweep/v1/runs/look/zip", json={"ids": [done["id"]]})
    assert zipfile.ZipFile(io.BytesIO(archive.content)).namelist()[0].endswith(f"{done['id']}.png")
    page = client.get("/sweep/v1/viewer/index.html")
    assert page.status_code == 200
    assert "viewer.js" in page.text
    assert client.get("/sweep/v1/viewer/runs.js").status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "field"),
    [
        ("get", "/sweep/v1/runs/nope/index", None, 404, "run"),
        ("get", "/sweep/v1/runs/..%2F..%2Fetc/index", None, 404, None),
        ("get", "/sweep/v1/runs/look/files/plan.json", None, 404, "path"),
        ("get", "/sweep/v1/runs/look/files/images/../../look/run.json", None, 404, None),
        ("get", "/sweep/v1/runs/look/thumbs/..%2Fplan", None, 404, None),
        ("get", "/sweep/v1/viewer/../routes.py", None, 404, None),
        ("post", "/sweep/v1/runs/look/sheets", {"x": "nope"}, 422, "x"),
        (
            "post",
            "/sweep/v1/runs/look/sheets",
            {"x": "cfg_scale", "hidden": {"cfg_scale": "1"}},
            422,
            "hidden.cfg_scale",
        ),
        ("post", "/sweep/v1/runs/look/sheets", [1], 422, "body"),
        ("post", "/sweep/v1/runs/look/zip", {"ids": "x"}, 422, "ids"),
        ("post", "/sweep/v1/runs/look/resume", None, 409, "run"),
        ("post", "/sweep/v1/runs/look/cancel", None, 409, "run"),
        # every route that names a run or a file stays inside the runs folder
        ("get", "/sweep/v1/runs/look/files/images%2F..%2F..%2Flook%2Fplan.json", None, 404, "path"),
        ("get", "/sweep/v1/runs/look/files/%2Fetc%2Fpasswd", None, 404, "path"),
        ("get", "/sweep/v1/runs/..%2Fruns%2Flook/thumbs/x", None, 404, None),
        ("get", "/sweep/v1/runs/..%2Fruns%2Flook/files/images%2Fx.png", None, 404, None),
        ("post", "/sweep/v1/runs/..%2Fruns%2Flook/sheets", {"x": "cfg_scale"}, 404, None),
        ("post", "/sweep/v1/runs/..%2Fruns%2Flook/zip", {"ids": []}, 404, None),
        ("post", "/sweep/v1/runs/..%2Fruns%2Flook/resume", None, 404, None),
        ("post", "/sweep/v1/runs/..%2Fruns%2Flook/cancel", None, 404, None),
        ("delete", "/sweep/v1/runs/..%2Fruns%2Flook", None, 404, None),
        ("delete", "/sweep/v1/runs/..", None, 404, None),
        ("get", "/sweep/v1/viewer/..%2F..%2Fapi%2Froutes.py", None, 404, "path"),
    ],
)
def test_refused_requests_name_the_field_and_the_value(client, runs: Path, method, url, body, status, field):
    response = getattr(client, method)(url, **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    assert (runs / "look" / "plan.json").is_file()
    if field is not None:  # else the path never reaches a route of ours (the client or the app normalises it)
        problem = response.json()["detail"][0]
        assert problem["field"] == field
        assert problem["message"]


VIEWER_ROUTES = [
    ("GET", "/sweep/v1/runs", None),
    ("GET", "/sweep/v1/runs/look/index", None),
    ("GET", "/sweep/v1/runs/look/thumbs/{id}", None),
    ("GET", "/sweep/v1/runs/look/files/images/{id}.png", None),
    ("GET", "/sweep/v1/runs/look/files/thumbs/{id}.webp", None),
    ("POST", "/sweep/v1/runs/look/sheets", {"x": "cfg_scale", "y": "prompt_sr"}),
    ("POST", "/sweep/v1/runs/look/zip", {"ids": ["{id}"]}),
    ("POST", "/sweep/v1/runs/look/resume", None),
    ("POST", "/sweep/v1/runs/look/cancel", None),
    ("GET", "/sweep/v1/viewer/runs.html", None),
    ("GET", "/sweep/v1/viewer/index.html", None),
    ("GET", "/sweep/v1/viewer/viewer.js", None),
    ("GET", "/sweep/v1/jobs", None),
    ("DELETE", "/sweep/v1/runs/look", None),
]


def _viewer_requests(http, cell_id: str, **kwargs) -> list[tuple[str, int]]:
    answers = []
    for method, path, body in VIEWER_ROUTES:
        payload = json.loads(json.dumps(body).replace("{id}", cell_id)) if body is not None else None
        response = http.request(method, path.replace("{id}", cell_id), json=payload, **kwargs)
        answers.append((f"{method} {path}", response.status_code))
    return answers


@pytest.mark.parametrize("api_auth", ["", "alice:s3cret"])
def test_with_gradio_auth_every_viewer_route_takes_the_webui_login_or_the_api_auth(runs: Path, api_auth: str):
    """--gradio-auth: a browser logged into the WebUI (gradio's cookie, checked against the app's
    tokens) sees the runs; without the cookie (or with a made-up one) every route answers 401."""
    import gradio as gr
    import httpx
    from gradio.routes import App

    from sd_sweep.api import register
    from sd_sweep.api.jobs import Host

    with gr.Blocks() as demo:
        gr.Textbox(label="Prompt")
    demo.auth = [("u", "p")]  # what Blocks.launch(auth=...) sets before it makes the app
    app = App.create_app(demo)
    assert app.auth == {"u": "p"}
    manager = register(app, runs_dir=runs, backend_factory=lambda mode: FakeBackend(), host=Host(), api_auth=api_auth)
    cell_id = next(c["id"] for c in build_index(runs / "look")["cells"] if c["state"] == "done")
    server = LiveServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as anonymous:
            answers = _viewer_requests(anonymous, cell_id)
            assert {status for _, status in answers} == {401}, answers
            problem = anonymous.get("/sweep/v1/runs").json()["detail"][0]
            assert problem["field"] == "authorization"
            assert ("www-authenticate" in anonymous.get("/sweep/v1/runs").headers) == bool(api_auth)
            anonymous.cookies.set("access-token-unsecure", "made-up")
            anonymous.cookies.set("access-token", "made-up")
            assert anonymous.get("/sweep/v1/runs/look/index").status_code == 401
            wrong = httpx.BasicAuth("u", "p")  # the UI's login is not an --api-auth credential
            assert anonymous.get("/sweep/v1/runs", auth=wrong).status_code == 401
        assert (runs / "look" / "plan.json").is_file()
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            assert browser.post("/login", data={"username": "u", "password": "wrong"}).status_code == 400
            assert browser.post("/login", data={"username": "u", "password": "p"}).status_code == 200
            assert any(name.startswith("access-token") for name in browser.cookies)
            answers = dict(_viewer_requests(browser, cell_id))
            assert answers.pop("DELETE /sweep/v1/runs/look") == 200
            assert answers.pop("POST /sweep/v1/runs/look/resume") == 409  # a Script run: answered, not refused
            assert answers.pop("POST /sweep/v1/runs/look/cancel") == 409
            assert set(answers.values()) == {200}, answers
        if api_auth:
            make_run(runs / "look")
            with httpx.Client(base_url=server.url, timeout=30, auth=httpx.BasicAuth("alice", "s3cret")) as client:
                answers = dict(_viewer_requests(client, cell_id))
                assert answers.pop("DELETE /sweep/v1/runs/look") == 200
                assert set(answers.values()) <= {200, 409}, answers
    finally:
        manager.close()
        server.stop()


@pytest.mark.parametrize(
    ("call", "args", "field"),
    [
        ("run_dir", ("..",), "run"),
        ("run_dir", ("../runs/look",), "run"),
        ("run_dir", ("",), "run"),
        ("run_dir", ("a" * 4000,), "run"),
        ("file", ("look", "images/" + "a" * 4000), "path"),
        ("file", ("look", "../look/run.json"), "path"),
        ("file", ("look", "images/../plan.json"), "path"),
        ("file", ("look", "/etc/passwd"), "path"),
        ("file", ("look", "cells.jsonl"), "path"),
        ("thumb", ("look", "../plan"), "cell_id"),
    ],
)
def test_the_service_serves_nothing_outside_a_runs_images_grids_and_thumbs(runs: Path, call, args, field):
    service = ViewerService(runs)
    with pytest.raises(ViewerError) as refused:
        getattr(service, call)(*args)
    assert refused.value.status == 404
    assert refused.value.problems[0].field == field


def test_a_run_is_deleted_and_a_job_run_resumes_through_the_runs_routes(client, runs: Path):
    assert client.delete("/sweep/v1/runs/look").json() == {"deleted": "look"}
    assert not (runs / "look").exists()
    assert client.get("/sweep/v1/runs").json()["runs"] == []

    job = client.post("/sweep/v1/jobs", json={**DOC, "folder": "api-run"}).json()
    for _ in range(200):
        if client.get(f"/sweep/v1/jobs/{job['id']}").json()["state"] == "finished":
            break
        time.sleep(0.05)
    listed = client.get("/sweep/v1/runs").json()["runs"]
    assert listed[0]["job"]["id"] == job["id"]
    resumed = client.post("/sweep/v1/runs/api-run/resume")
    assert resumed.status_code == 409  # a finished job has nothing to resume
    assert resumed.json()["detail"][0]["field"] == "state"


def test_the_sweeps_tab_frames_the_runs_page_and_has_the_paste_block():
    pytest.importorskip("gradio")
    from sd_sweep.webui.tab import on_ui_tabs

    [(blocks, title, elem_id)] = on_ui_tabs()
    assert (title, elem_id) == ("Sweeps", "sd_sweep_tab")
    config = json.dumps(blocks.get_config_file())
    assert "/sweep/v1/viewer/runs.html" in config
    for element in ("sd_sweep_infotext", "sd_sweep_send_txt2img", "sd_sweep_send_img2img"):
        assert element in config


def test_export_writes_a_folder_that_needs_no_server(runs: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(runs / "look"), str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    page = (out / "index.html").read_text()
    assert '<script src="index.js"></script>' in page
    data = (out / "index.js").read_text()
    assert data.startswith("window.SWEEP_INDEX = ")
    index = json.loads(data[len("window.SWEEP_INDEX = ") :].rstrip().rstrip(";"))
    done = [c for c in index["cells"] if c["state"] == "done"]
    assert all((out / c["file"]).is_file() and (out / "thumbs" / f"{c['id']}.webp").is_file() for c in done)


def test_export_and_view_refuse_what_is_not_a_run_in_one_line(runs: Path, tmp_path: Path, capsys):
    assert main(["export", str(tmp_path / "none"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'none'}: no run here")
    assert err.count("\n") == 1
    assert main(["export", str(runs / "look"), str(runs / "look" / "web")]) == 1
    assert "must be outside the run folder" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "none")]) == 1
    assert "no run here" in capsys.readouterr().err


def test_view_serves_the_viewer_on_localhost_and_prints_its_address(runs: Path):
    process = subprocess.Popen(
        [sys.executable, "-m", "sd_sweep", "view", str(runs / "look")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/sweep/v1/viewer/?run=look")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"viewer.js" in response.read()
        base = url.split("/sweep/v1/")[0]
        with urllib.request.urlopen(f"{base}/sweep/v1/runs/look/index", timeout=10) as response:
            assert json.loads(response.read())["counts"]["done"] == 10
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/sweep/v1/runs/other/index", timeout=10)
        assert refused.value.code == 404
        assert json.loads(refused.value.read())["detail"][0]["field"] == "run"
    finally:
        process.terminate()
        process.wait(10)
