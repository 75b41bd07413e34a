"""``python -m sd_sweep run SPEC --url``: against our routes (a job, downloaded into the embedded layout)
and against a stock WebUI API (the sdapi fallback), both real servers on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from sd_sweep import cli
from sd_sweep.backends.sdapi import SdapiBackend
from sd_sweep.core.ports import GenerationRequest
from sd_sweep.core.store import RunStore, read_infotext
from tests.api_harness import SPEC, live_api
from tests.live_server import LiveServer


def write_spec(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_cli_url_runs_a_job_and_downloads_the_run(tmp_path: Path, capsys):
    with live_api(tmp_path / "server", api_auth="me:pw") as api:
        spec = write_spec(tmp_path, SPEC)
        out = str(tmp_path / "out")
        code = cli.main(["run", str(spec), "--url", api.url, "--auth", "me:pw", "--out", out, "--json"])
        assert code == 0
        run_dir = tmp_path / "out" / "cats"
        manifest = RunStore.open(run_dir).manifest
        assert manifest["state"] == "finished"
        assert len(list((run_dir / "images").glob("*.png"))) == 4
        assert (run_dir / manifest["grids"][0]["file"]).exists()
        for entry in manifest["cells"].values():
            assert read_infotext(run_dir / entry["file"]) == entry["infotext"]
        summary = json.loads(capsys.readouterr().out)
        assert summary["state"] == "finished"
        # the same command again: nothing new is generated
        calls = len(api.backend.calls)
        assert cli.main(["run", str(spec), "--url", api.url, "--auth", "me:pw", "--out", str(tmp_path / "out")]) == 0
        assert len(api.backend.calls) == calls
        # wrong credentials: an error, not a fallback
        assert cli.main(["run", str(spec), "--url", api.url, "--auth", "me:no", "--out", str(tmp_path / "out")]) == 1


def test_cli_url_resumes_the_recorded_job(tmp_path: Path):
    with live_api(tmp_path / "server", delay=0.15) as api:
        job = api.client.submit(SPEC)
        while not api.client.job(job["id"])["current_cell"]:
            pass
        api.client.cancel(job["id"])
        api.client.wait(job["id"], poll=0.05, timeout=30)
        run_dir = tmp_path / "out" / "cats"
        run_dir.mkdir(parents=True)
        (run_dir / "remote-job.json").write_text(json.dumps({"url": api.url, "id": job["id"]}))
        assert cli.main(["run", str(write_spec(tmp_path, SPEC)), "--url", api.url, "--out", str(tmp_path / "out")]) == 0
        assert api.client.job(job["id"])["state"] == "finished"
        assert len(api.client.jobs()) == 1  # resumed, not submitted again


def test_cli_url_does_not_resume_a_recorded_job_of_another_spec(tmp_path: Path):
    with live_api(tmp_path / "server", delay=0.15) as api:
        job = api.client.submit(SPEC)
        while not api.client.job(job["id"])["current_cell"]:
            pass
        api.client.cancel(job["id"])
        api.client.wait(job["id"], poll=0.05, timeout=30)
        run_dir = tmp_path / "out" / "cats"
        run_dir.mkdir(parents=True)
        record = {"url": api.url, "id": job["id"], "spec": SPEC, "mode": "txt2img"}
        (run_dir / "remote-job.json").write_text(json.dumps(record))
        bigger = {**SPEC, "axes": [{"param": "cfg_scale", "values": "5, 7, 9"}, *SPEC["axes"][1:]]}
        spec = write_spec(tmp_path, bigger)
        assert cli.main(["run", str(spec), "--url", api.url, "--out", str(tmp_path / "out")]) == 0
        manifest = RunStore.open(run_dir).manifest
        assert len(manifest["plan"]["cells"]) == 6
        assert manifest["state"] == "finished"
        assert len(api.client.jobs()) == 2


def test_cli_url_reports_spec_problems(tmp_path: Path, capsys):
    with live_api(tmp_path / "server") as api:
        bad = {**SPEC, "axes": [{"param": "sampler_name", "values": "Eular"}]}
        code = cli.main(["run", str(write_spec(tmp_path, bad)), "--url", api.url, "--out", str(tmp_path / "out")])
        assert code == 1
        assert "axes[0].values" in capsys.readouterr().err


# -- the stock /sdapi/v1 fallback ------------------------------------------------------------


def stock_webui() -> tuple[Any, list[dict[str, Any]]]:
    """A FastAPI app with the few /sdapi/v1 routes the fallback uses, answering like the WebUI."""
    from fastapi import FastAPI

    app = FastAPI()
    calls: list[dict[str, Any]] = []

    @app.get("/sdapi/v1/samplers")
    def samplers() -> list:
        return [{"name": "Euler a", "aliases": [], "options": {}}, {"name": "Euler", "aliases": [], "options": {}}]

    @app.get("/sdapi/v1/sd-models")
    def models() -> list:
        return [{"title": "a.safetensors [abc]", "model_name": "a"}]

    app.state.options = {"sd_model_checkpoint": "a.safetensors [abc]", "sd_vae": "Automatic"}

    @app.get("/sdapi/v1/options")
    def get_options() -> dict:
        return app.state.options

    @app.get("/sdapi/v1/progress")
    def progress() -> dict:
        return {"progress": 0.5, "state": {"sampling_step": 1, "sampling_steps": 2}}

    @app.post("/sdapi/v1/txt2img")
    def txt2img(body: dict) -> dict:
        calls.append(body)
        images, infotexts = [], []
        for i in range(body["batch_size"]):
            seed = body["seed"] + i
            buffer = io.BytesIO()
            Image.new("RGB", (body["width"], body["height"]), (seed % 256, 0, 0)).save(buffer, format="PNG")
            images.append(base64.b64encode(buffer.getvalue()).decode())
            infotexts.append(
                f"{body['prompt']}\nSteps: {body['steps']}, CFG scale: {body.get('cfg_scale', 7)}, Seed: {seed}"
            )
        info = {
            "infotexts": infotexts,
            "index_of_first_image": 0,
            "all_seeds": [body["seed"] + i for i in range(len(images))],
        }
        return {"images": images, "parameters": body, "info": json.dumps(info)}

    return app, calls


FALLBACK_SPEC = {
    "name": "stock",
    "base": {
        "prompt": "a cat",
        "steps": 2,
        "width": 64,
        "height": 64,
        "seed": 10,
        "batch_size": 4,
        "sampler_name": "Euler",
    },
    "axes": [{"param": "prompt_sr", "values": "cat, dog"}, {"param": "seed", "values": "10-13"}],
}


def test_cli_url_falls_back_to_the_stock_api(tmp_path: Path):
    app, calls = stock_webui()
    with LiveServer(app) as server:
        spec = write_spec(tmp_path, FALLBACK_SPEC)
        assert cli.main(["run", str(spec), "--url", server.url, "--out", str(tmp_path / "out")]) == 0
        run_dir = tmp_path / "out" / "stock"
        manifest = RunStore.open(run_dir).manifest
        assert {e["state"] for e in manifest["cells"].values()} == {"done"}
        assert len(manifest["cells"]) == 8
        # consecutive seeds with one prompt share a call; the two prompts never do
        assert sorted((c["prompt"], c["seed"], c["batch_size"]) for c in calls) == [("a cat", 10, 4), ("a dog", 10, 4)]
        assert all(c["override_settings_restore_afterwards"] and not c["save_images"] for c in calls)
        for entry in manifest["cells"].values():
            assert "Seed:" in read_infotext(run_dir / entry["file"])
        # resume: the same command again generates nothing
        before = len(calls)
        assert cli.main(["run", str(spec), "--url", server.url, "--out", str(tmp_path / "out")]) == 0
        assert len(calls) == before


def test_stock_api_cells_are_made_again_when_the_server_selects_another_model(tmp_path: Path):
    app, calls = stock_webui()
    with LiveServer(app) as server:
        spec = write_spec(tmp_path, FALLBACK_SPEC)
        command = ["run", str(spec), "--url", server.url, "--out", str(tmp_path / "out")]
        assert cli.main(command) == 0
        assert len(calls) == 2
        app.state.options = {**app.state.options, "sd_model_checkpoint": "b.safetensors [def]"}
        assert cli.main(command) == 0
        assert len(calls) == 4
        app.state.options = {**app.state.options, "sd_model_checkpoint": "a.safetensors [abc]"}
        assert cli.main(command) == 0
        assert len(calls) == 4


def test_sdapi_backend_catalog_and_payloads(tmp_path: Path):
    app, _ = stock_webui()
    with LiveServer(app) as server:
        backend = SdapiBackend(server.url)
        caps = backend.capabilities()
        assert caps.choices["sampler_name"] == ("Euler a", "Euler")
        assert caps.choices["checkpoint"] == ("a.safetensors [abc]", "a")
        request = GenerationRequest(
            params={
                "steps": 2,
                "cfg_scale": 7,
                "checkpoint": "a",
                "clip_skip": 2,
                "setting:eta_ddim": 0.1,
                "width": 64,
                "height": 64,
            },
            prompts=["x", "x", "y", "x"],
            negative_prompts=["n"] * 4,
            seeds=[1, 2, 3, 5],
            cell_ids=["a", "b", "c", "d"],
        )
        payloads = backend.payloads(request)
        assert [(n, p["prompt"], p["seed"]) for n, p in payloads] == [(2, "x", 1), (1, "y", 3), (1, "x", 5)]
        assert payloads[0][1]["override_settings"] == {
            "sd_model_checkpoint": "a",
            "CLIP_stop_at_last_layers": 2,
            "eta_ddim": 0.1,
        }
        steps: list[tuple[int, int]] = []
        images = backend.generate(request, on_step=lambda s, t: steps.append((s, t)))
        assert len(images) == 4
        assert images[3].infotext.endswith("Seed: 5")


def test_client_rejects_non_http_urls():
    from sd_sweep.client import SweepClient
    from sd_sweep.core.errors import SweepError

    with pytest.raises(SweepError):
        SweepClient("file:///etc/passwd")


def test_client_reports_unreachable_servers():
    import socket

    from sd_sweep.client import SweepClient
    from sd_sweep.core.errors import SweepError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SweepError, match="cannot reach"):
        SweepClient(f"http://127.0.0.1:{port}", timeout=5).axes()


def test_download_fetches_every_grid_the_run_lists_whatever_its_name(tmp_path: Path):
    spec = {
        "name": "pages",
        "base": {"prompt": "a cat", "steps": 2},
        "axes": [
            {"param": "cfg_scale", "values": "5, 7"},
            {"param": "sampler_name", "values": "Euler a, DPM++ 2M"},
        ],
        "layout": {"x": "cfg_scale", "page": ["sampler_name"]},
    }
    with live_api(tmp_path / "server") as api:
        job = api.client.submit(spec)
        api.client.wait(job["id"], timeout=60)
        run_dir = api.client.download(job["id"], tmp_path / "out")
    grids = RunStore.open(run_dir).manifest["grids"]
    names = [grid["file"] for grid in grids]
    assert any("+" in name for name in names)
    for name in names:
        assert (run_dir / name).is_file()


def test_download_names_a_file_it_cannot_fetch(tmp_path: Path):
    from sd_sweep.client import SweepClient
    from sd_sweep.core.errors import SweepError

    with live_api(tmp_path / "server") as api:
        job = api.client.submit({**SPEC, "name": "gone"})
        api.client.wait(job["id"], timeout=60)
        manifest = api.client.manifest(job["id"])
        grid = manifest["grids"][0]["file"]
        (tmp_path / "server" / "gone" / grid).unlink()
        client = SweepClient(api.url, timeout=30)
        with pytest.raises(SweepError, match=f"could not download {grid}"):
            client.download(job["id"], tmp_path / "out")
