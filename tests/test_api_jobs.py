"""The /sweep/v1 routes over real HTTP (uvicorn on 127.0.0.1), driven by sd_sweep.client."""

from __future__ import annotations

import base64
import io
import itertools
import json
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from sd_sweep.api.jobs import ServerLimits
from sd_sweep.client import SweepClient, SweepHTTPError
from sd_sweep.core.planner import build_plan
from sd_sweep.core.spec import spec_from_dict
from sd_sweep.core.store import read_infotext
from tests.api_harness import SPEC, TimedBackend, live_api, make_app
from tests.fakes import FakeBackend
from tests.live_server import LiveServer


@pytest.fixture
def api(tmp_path: Path):
    with live_api(tmp_path / "runs") as api:
        yield api


@pytest.fixture
def slow_api(tmp_path: Path):
    with live_api(tmp_path / "runs", delay=0.15) as api:
        yield api


def test_axes_catalog_lists_params_types_and_choices(api):
    catalog = api.client.axes()
    params = {p["name"]: p for p in catalog["params"]}
    assert catalog["backend"] == "fake"
    assert params["sampler_name"]["choices"] == ["Euler", "Euler a", "DPM++ 2M"]
    assert params["steps"]["type"] == "int"
    assert params["steps"]["supported"] is True
    assert params["checkpoint"]["switch_cost"] > 0
    assert "sd_model_checkpoint" in params["checkpoint"]["aliases"]
    assert catalog["choices"]["checkpoint"] == ["alpha.safetensors", "beta.safetensors", "gamma.safetensors"]
    assert {f["pattern"] for f in catalog["families"]} >= {"setting:<key>", "lora:<name>"}
    assert catalog["limits"]["sync_max_cells"] == ServerLimits().sync_max_cells


def test_plan_is_the_same_plan_as_the_engine_builds(api):
    plan = api.client.plan(SPEC)
    local = build_plan(spec_from_dict(SPEC), FakeBackend().capabilities()).as_dict()
    assert [c["id"] for c in plan["cells"]] == [c["id"] for c in local["cells"]]
    assert plan["batches"] == local["batches"]
    assert plan["estimate"] == local["estimate"]
    assert plan["dimensions"] == local["dimensions"]


def test_job_runs_to_completion_and_serves_its_results(api):
    job = api.client.submit(SPEC)
    assert job["state"] in ("queued", "running")
    assert job["links"]["self"] == f"/sweep/v1/jobs/{job['id']}"
    status = api.client.wait(job["id"], poll=0.05, timeout=30)
    assert status["state"] == "finished"
    assert status["cells_done"] == status["cells_total"] == 4
    assert status["progress"] == 1.0
    assert status["errors"] == []
    assert status["grids"] == 1
    manifest = api.client.manifest(job["id"])
    assert manifest["state"] == "finished"
    assert {e["state"] for e in manifest["cells"].values()} == {"done"}
    for cell_id, entry in manifest["cells"].items():
        png = api.client.image(job["id"], cell_id)
        image = Image.open(io.BytesIO(png))
        assert image.size == (32, 32)
        assert image.info["parameters"] == entry["infotext"]
    grid = Image.open(io.BytesIO(api.client.grid(job["id"], 0)))
    assert grid.width > 64
    assert (api.runs_dir / "cats" / "job.json").exists()
    assert (api.runs_dir / "cats" / "run.json").exists()
    assert [j["id"] for j in api.client.jobs()] == [job["id"]]


def test_download_writes_the_layout_of_an_embedded_run(api, tmp_path: Path):
    job = api.client.submit(SPEC)
    api.client.wait(job["id"], poll=0.05, timeout=30)
    local = api.client.download(job["id"], tmp_path / "out" / "cats")
    manifest = json.loads((local / "manifest.json").read_text())
    for entry in manifest["cells"].values():
        assert read_infotext(local / entry["file"]) == entry["infotext"]
    assert [g["file"] for g in manifest["grids"]] == [
        str(p.relative_to(local)) for p in sorted((local / "grids").iterdir())
    ]
    from sd_sweep.core.run import run_sweep

    embedded = run_sweep(spec_from_dict(SPEC), FakeBackend(), tmp_path / "embedded" / "cats")
    assert sorted(p.name for p in (local / "images").iterdir()) == sorted(
        p.name for p in (embedded.run_dir / "images").iterdir()
    )


def test_job_status_shows_the_current_cell_step_and_eta(slow_api):
    job = slow_api.client.submit(SPEC)
    seen = []
    status = slow_api.client.wait(job["id"], poll=0.02, timeout=30, on_progress=seen.append)
    assert status["state"] == "finished"
    running = [s for s in seen if s["state"] == "running" and s["current_cell"]]
    assert running, "never saw the job running"
    sample = running[-1]
    assert set(sample["current_cell"]["labels"]) == {"cfg_scale", "sampler_name"}
    assert "CFG scale" in sample["current_cell"]["description"]
    assert any(s["step"] for s in running)
    assert any(s["eta_seconds"] is not None for s in running)
    progresses = [s["progress"] for s in seen]
    assert progresses == sorted(progresses)


def test_cancel_stops_after_the_current_batch_and_resume_finishes(slow_api):
    job = slow_api.client.submit(SPEC)
    deadline = time.monotonic() + 10
    while not slow_api.client.job(job["id"])["current_cell"]:  # the first batch is sampling
        assert time.monotonic() < deadline
        time.sleep(0.01)
    slow_api.client.cancel(job["id"])
    status = slow_api.client.wait(job["id"], poll=0.05, timeout=30)
    assert status["state"] == "cancelled"
    assert 0 < status["cells_done"] < status["cells_total"]
    done_before = status["cells_done"]
    calls_before = len(slow_api.backend.calls)

    resumed = slow_api.client.resume(job["id"])
    assert resumed["id"] == job["id"]
    assert resumed["state"] in ("queued", "running")
    status = slow_api.client.wait(job["id"], poll=0.05, timeout=30)
    assert status["state"] == "finished"
    assert status["cells_reused"] == done_before
    assert status["cells_done"] == 4
    assert len(slow_api.backend.calls) - calls_before == 4 - done_before


def test_cancel_a_queued_job_drops_it(slow_api):
    first = slow_api.client.submit(SPEC)
    second = slow_api.client.submit({**SPEC, "name": "dogs"})
    cancelled = slow_api.client.cancel(second["id"])
    assert cancelled["state"] == "cancelled"
    assert slow_api.client.wait(first["id"], poll=0.05, timeout=30)["state"] == "finished"
    assert slow_api.client.job(second["id"])["cells_done"] == 0
    assert all(not r.prompts[0].startswith("dogs") for r in slow_api.backend.calls)


def test_concurrent_submissions_all_finish_in_submission_order(tmp_path: Path):
    with live_api(tmp_path / "runs", delay=0.02) as api:
        accepted: list[dict] = []
        order_lock = threading.Lock()
        barrier = threading.Barrier(5)

        def submit(number: int) -> None:
            spec = {**SPEC, "name": f"job{number}", "base": {**SPEC["base"], "prompt": f"job{number}"}}
            client = SweepClient(api.url, timeout=30)
            barrier.wait()
            with order_lock:  # the order the server accepts them in is the order we record
                accepted.append(client.submit(spec))

        threads = [threading.Thread(target=submit, args=(n,)) for n in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(accepted) == 5
        finals = [api.client.wait(job["id"], poll=0.05, timeout=60) for job in accepted]
        assert {s["state"] for s in finals} == {"finished"}
        ran = []
        for _, _, prompt in sorted(api.backend.intervals):
            if not ran or ran[-1] != prompt:
                ran.append(prompt)
        assert ran == [j["name"] for j in accepted]
        starts = [s["started"] for s in finals]
        assert starts == sorted(starts)
        # one at a time: no two generation calls overlap
        intervals = sorted(api.backend.intervals)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(intervals))


def test_ui_generation_under_queue_lock_never_overlaps_a_job(tmp_path: Path):
    with live_api(tmp_path / "runs", delay=0.1) as api:
        ui_intervals: list[tuple[float, float]] = []
        stop = threading.Event()

        def ui_generations() -> None:
            for _ in range(50):  # bounded
                if stop.is_set():
                    return
                with api.lock:  # what wrap_gradio_gpu_call does around a UI generation
                    start = time.monotonic()
                    time.sleep(0.03)
                    ui_intervals.append((start, time.monotonic()))
                time.sleep(0.005)

        ui = threading.Thread(target=ui_generations)
        ui.start()
        jobs = [api.client.submit({**SPEC, "name": f"n{i}"}) for i in range(2)]
        finals = [api.client.wait(j["id"], poll=0.05, timeout=60) for j in jobs]
        stop.set()
        ui.join(30)
        assert {s["state"] for s in finals} == {"finished"}
        assert ui_intervals
        for start, end, _ in api.backend.intervals:
            for ui_start, ui_end in ui_intervals:
                assert end <= ui_start or ui_end <= start, "a UI generation overlapped a sweep batch"


def test_a_job_waits_for_a_ui_generation_holding_the_lock(tmp_path: Path):
    with live_api(tmp_path / "runs") as api:
        api.lock.acquire()
        try:
            job = api.client.submit(SPEC)
            time.sleep(0.3)
            status = api.client.job(job["id"])
            assert status["state"] == "running"  # taken by the worker, waiting for the lock
            assert status["cells_done"] == 0
            assert api.backend.calls == []
        finally:
            api.lock.release()
        assert api.client.wait(job["id"], poll=0.05, timeout=30)["state"] == "finished"


def test_restart_lists_past_jobs_and_resumes_an_unfinished_one(tmp_path: Path):
    runs = tmp_path / "runs"
    with live_api(runs) as api:
        done = api.client.submit({**SPEC, "name": "done"})
        api.client.wait(done["id"], poll=0.05, timeout=30)
    # a server that stops in the middle of a job
    with live_api(runs, delay=0.2) as api:
        cut = api.client.submit({**SPEC, "name": "cut"})
        while api.client.job(cut["id"])["cells_done"] < 1:
            time.sleep(0.02)
        api.manager.close()  # the WebUI going away: stops after the current batch
    record = json.loads((runs / "cut" / "job.json").read_text())
    assert record["state"] in ("running", "interrupted")
    with live_api(runs) as api:
        jobs = {j["id"]: j for j in api.client.jobs()}
        assert jobs[done["id"]]["state"] == "finished"
        assert jobs[cut["id"]]["state"] == "interrupted"
        before = jobs[cut["id"]]["cells_done"]
        assert 0 < before < 4
        api.client.resume(cut["id"])
        status = api.client.wait(cut["id"], poll=0.05, timeout=30)
        assert status["state"] == "finished"
        assert status["cells_reused"] == before
        assert sum(r.size for r in api.backend.calls) == 4 - before
        manifest = api.client.manifest(cut["id"])
        assert {e["state"] for e in manifest["cells"].values()} == {"done"}


def test_same_folder_cannot_run_twice_at_once(slow_api):
    first = slow_api.client.submit(SPEC)
    with pytest.raises(SweepHTTPError) as error:
        slow_api.client.submit(SPEC)
    assert error.value.status == 409
    assert error.value.problems[0]["field"] == "folder"
    assert first["id"] in error.value.problems[0]["message"]
    slow_api.client.wait(first["id"], poll=0.05, timeout=30)
    again = slow_api.client.submit(SPEC)  # same spec again: resumes the folder, nothing to do
    status = slow_api.client.wait(again["id"], poll=0.05, timeout=30)
    assert status["state"] == "finished"
    assert status["cells_reused"] == 4


def test_run_answers_like_sdapi_txt2img(api):
    answer = api.client.run(SPEC)
    info = json.loads(answer["info"])
    assert info["index_of_first_image"] == 1  # one grid, first
    assert len(answer["images"]) == 1 + 4
    assert len(info["infotexts"]) == len(answer["images"])
    grid = Image.open(io.BytesIO(base64.b64decode(answer["images"][0])))
    cell = Image.open(io.BytesIO(base64.b64decode(answer["images"][1])))
    assert grid.width > cell.width
    assert cell.size == (32, 32)
    assert info["all_seeds"] == [7, 7, 7, 7]
    assert answer["parameters"]["base"]["prompt"] == "a cat"


def test_run_refuses_large_sweeps(api):
    big = {**SPEC, "axes": [{"param": "seed", "values": "1-40"}], "layout": None}
    with pytest.raises(SweepHTTPError) as error:
        api.client.run(big)
    assert error.value.status == 422
    assert error.value.problems[0]["field"] == "limits.max_cells"
    assert "at most 16" in error.value.problems[0]["message"]
    assert "/sweep/v1/jobs" in error.value.problems[0]["message"]


def test_root_runs_dir_default_and_on_app_started(tmp_path: Path, monkeypatch):
    """on_app_started(None, app) registers the routes with defaults (demo is None under --nowebui)."""
    from fastapi import FastAPI

    import sd_sweep.api as sweep_api

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep_api, "webui_backend_factory", lambda mode: FakeBackend())
    monkeypatch.setattr(sweep_api, "webui_runner", None)  # run_sweep on the factory's backend
    monkeypatch.setattr(sweep_api, "_manager", None)
    app = FastAPI()
    sweep_api.on_app_started(None, app)
    try:
        again = FastAPI()  # Reload UI: a new app, the same job queue
        sweep_api.on_app_started(None, again)
        with LiveServer(again) as server:
            client = SweepClient(server.url)
            assert client.has_sweep_api()
            job = client.submit(SPEC)
            assert client.wait(job["id"], poll=0.05, timeout=30)["state"] == "finished"
        assert (sweep_api.default_runs_dir() / "cats" / "run.json").exists()
        paths = [r.path for r in app.routes if getattr(r, "path", "").startswith("/sweep/v1")]
        assert len(paths) == len({(r.path, tuple(sorted(r.methods))) for r in app.routes if r.path in paths})
    finally:
        sweep_api.shutdown()


def test_routes_are_in_the_openapi_document(api):
    document = json.loads(api.client.http.request("GET", "/openapi.json"))
    paths = document["paths"]
    for path in (
        "/sweep/v1/axes",
        "/sweep/v1/plan",
        "/sweep/v1/jobs",
        "/sweep/v1/jobs/{job_id}",
        "/sweep/v1/jobs/{job_id}/cancel",
        "/sweep/v1/jobs/{job_id}/resume",
        "/sweep/v1/jobs/{job_id}/manifest",
        "/sweep/v1/jobs/{job_id}/images/{cell_id}",
        "/sweep/v1/jobs/{job_id}/grids/{n}",
        "/sweep/v1/run",
        "/sweep/v1/schema",
    ):
        assert path in paths
    schemas = document["components"]["schemas"]
    assert {"JobStatus", "ErrorResponse"} <= set(schemas)
    spec = api.client.schema()
    del spec["$schema"]
    for path in ("/sweep/v1/plan", "/sweep/v1/jobs", "/sweep/v1/run"):
        body = paths[path]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"] == spec
    axis = spec["properties"]["axes"]["items"]
    assert axis["required"] == ["param"]
    assert "steps" in axis["properties"]["param"]["anyOf"][0]["enum"]
    assert paths["/sweep/v1/jobs"]["post"]["responses"]["422"]["content"]["application/json"]["schema"][
        "$ref"
    ].endswith("/ErrorResponse")


def test_schema_route_is_the_spec_schema_plus_mode(api):
    from sd_sweep.core.schema import spec_schema
    from sd_sweep.core.spec_model import NAME_PATTERN

    schema = api.client.schema()
    assert schema["properties"]["mode"]["enum"] == ["txt2img", "img2img", None]
    assert schema["properties"]["folder"]["pattern"] == NAME_PATTERN
    assert schema["properties"]["axes"]["items"] == spec_schema()["properties"]["axes"]["items"]


def test_a_failing_backend_fails_the_job_with_its_error(tmp_path: Path):
    backend = TimedBackend(fail_on_call=2)
    with live_api(tmp_path / "runs", backend=backend) as api:
        job = api.client.submit(SPEC)
        status = api.client.wait(job["id"], poll=0.05, timeout=30)
        assert status["state"] == "failed"
        assert "out of memory" in status["errors"][0]
        assert status["cells_done"] == 1
        later = api.client.submit({**SPEC, "name": "after"})  # the worker survived
        assert api.client.wait(later["id"], poll=0.05, timeout=30)["state"] == "finished"


def test_make_app_without_server_is_cheap(tmp_path: Path):
    _app, manager, _ = make_app(tmp_path / "runs", FakeBackend())
    assert manager.jobs() == []
    assert not (tmp_path / "runs").exists()


def test_default_runs_dir_outside_a_webui(tmp_path: Path):
    import subprocess
    import sys

    code = "from sd_sweep.api import default_runs_dir; print(default_runs_dir())"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(out) == tmp_path / "outputs" / "sweeps"


def test_a_job_whose_run_folder_is_deleted_leaves_the_listing(api):
    """Deleted on disk or through ``DELETE /sweep/v1/runs/{name}`` (the Sweeps tab): the job is no longer
    listed, and asking for it answers 410 naming the folder."""
    import shutil

    on_disk = api.client.submit({**SPEC, "name": "on-disk"})
    by_tab = api.client.submit({**SPEC, "name": "by-tab"})
    kept = api.client.submit({**SPEC, "name": "kept"})
    for job in (on_disk, by_tab, kept):
        api.client.wait(job["id"], poll=0.05, timeout=30)
    shutil.rmtree(api.runs_dir / "on-disk")
    assert [j["id"] for j in api.client.jobs()] == [by_tab["id"], kept["id"]]
    assert api.client.http.json("DELETE", "/sweep/v1/runs/by-tab") == {"deleted": "by-tab"}
    assert [j["id"] for j in api.client.jobs()] == [kept["id"]]
    assert [r["folder"] for r in api.client.http.json("GET", "/sweep/v1/runs")["runs"]] == ["kept"]
    for job in (on_disk, by_tab):
        with pytest.raises(SweepHTTPError) as gone:
            api.client.job(job["id"])
        assert gone.value.status == 410
        assert gone.value.problems[0]["message"] == f"its run folder {job['folder']} was deleted"
    with pytest.raises(SweepHTTPError) as unknown:
        api.client.job("0123456789ab")
    assert unknown.value.status == 404
    # the folder's name is free again: a new job there is listed
    again = api.client.submit({**SPEC, "name": "by-tab"})
    api.client.wait(again["id"], poll=0.05, timeout=30)
    assert [j["id"] for j in api.client.jobs()] == [kept["id"], again["id"]]
