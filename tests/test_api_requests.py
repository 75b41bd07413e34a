"""Bad bodies, limits, path traversal and --api-auth on the /sweep/v1 routes, over real HTTP."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from sd_sweep.api.auth import check_credentials, parse_api_auth
from sd_sweep.api.jobs import ServerLimits
from sd_sweep.client import SweepClient, SweepHTTPError
from tests.api_harness import SPEC, TimedBackend, live_api


@pytest.fixture
def api(tmp_path: Path):
    limits = ServerLimits(max_body_bytes=200_000, max_pixels=1024 * 1024, max_init_image_pixels=1024 * 1024)
    with live_api(tmp_path / "runs", limits=limits) as api:
        yield api


def raw(url: str, method: str, path: str, data: bytes | None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def problems_of(api, path: str, body) -> tuple[int, list[dict]]:
    status, _, data = raw(api.url, "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return status, json.loads(data)["detail"]


BAD_BODIES = [
    ({"name": "../../etc"}, "name", "../../etc"),
    ({"name": "x", "folder": "../outside"}, "folder", "../outside"),
    ({"name": "x", "folder": "a/b"}, "folder", "a/b"),
    ({"name": "x", "folder": ".hidden"}, "folder", ".hidden"),
    ({**SPEC, "mode": "upscale"}, "mode", "upscale"),
    ({**SPEC, "axes": "cfg_scale"}, "axes", "cfg_scale"),
    ({**SPEC, "axes": [{"param": "cfg_scale", "values": "5, x"}]}, "axes[0].values", None),
    ({**SPEC, "axes": [{"param": "sampler_name", "values": "Eular"}]}, "axes[0].values", "Eular"),
    ({**SPEC, "axes": [{"param": "no_such_param", "values": "1"}]}, "axes[0].param", "no_such_param"),
    ({**SPEC, "axes": [5]}, "axes[0]", 5),
    ({**SPEC, "base": {"steps": "many"}}, "base.steps", "many"),
    ({**SPEC, "base": []}, "base", None),
    ({**SPEC, "base": {**SPEC["base"], "width": 4096, "height": 4096}}, "cells[0]", "4096x4096"),
    ({**SPEC, "limits": {"max_cells": 10**9}}, "limits.max_cells", 10**9),
    ({**SPEC, "unknown": 1}, "unknown", 1),
    ({**SPEC, "layout": {"x": "nope"}}, "layout.x", "nope"),
    ({**SPEC, "mode": "img2img"}, "base.init_images", None),
    (
        {**SPEC, "mode": "img2img", "base": {**SPEC["base"], "init_images": ["not base64!"]}},
        "base.init_images[0]",
        None,
    ),
    ([1, 2, 3], "body", None),
    ("a string", "body", None),
]


@pytest.mark.parametrize(("body", "field", "value"), BAD_BODIES)
@pytest.mark.parametrize("path", ["/sweep/v1/plan", "/sweep/v1/jobs", "/sweep/v1/run"])
def test_bad_bodies_get_422_naming_field_and_value(api, path, body, field, value):
    status, problems = problems_of(api, path, body)
    assert status == 422, problems
    assert all(set(p) == {"field", "value", "message"} for p in problems)
    match = [p for p in problems if p["field"] == field]
    assert match, problems
    if value is not None:
        assert match[0]["value"] == value
    assert api.manager.jobs() == []


def test_not_json_and_empty_bodies(api):
    for data in (b"{not json", b"\xff\xfe", b"", b"[" * 5000 + b"]" * 5000):
        status, _, answer = raw(api.url, "POST", "/sweep/v1/jobs", data, {"Content-Type": "application/json"})
        assert status == 422, (data[:10], answer)
        assert json.loads(answer)["detail"][0]["field"] == "body"


def test_body_over_the_limit_gets_413(api):
    huge = {**SPEC, "base": {**SPEC["base"], "prompt": "x" * 300_000}}
    status, _, answer = raw(
        api.url, "POST", "/sweep/v1/jobs", json.dumps(huge).encode(), {"Content-Type": "application/json"}
    )
    assert status == 413
    assert json.loads(answer)["detail"][0]["field"] == "body"


def test_img2img_with_a_valid_init_image_is_checked_for_size(api):
    buffer = io.BytesIO()
    Image.new("RGB", (2048, 2048)).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    status, problems = problems_of(
        api, "/sweep/v1/plan", {**SPEC, "mode": "img2img", "base": {**SPEC["base"], "init_images": [encoded]}}
    )
    assert status == 422
    assert problems[0]["field"] == "base.init_images[0]"
    assert "larger than" in problems[0]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/sweep/v1/jobs/..%2F..%2Fetc",
        "/sweep/v1/jobs/../../etc/passwd",
        "/sweep/v1/jobs/%2e%2e/manifest",
        "/sweep/v1/jobs/nope/images/..%2Fmanifest.json",
        "/sweep/v1/jobs/nope/grids/-1",
    ],
)
def test_unknown_and_traversing_paths_get_404(api, path):
    status, _, answer = raw(api.url, "GET", path, None)
    assert status == 404, answer


def test_a_job_s_files_cannot_be_escaped(api):
    client = api.client
    job = client.submit(SPEC)
    client.wait(job["id"], poll=0.05, timeout=30)
    (api.runs_dir / "secret.png").write_bytes(b"secret")
    for cell_id in ("..%2F..%2Fsecret", "..", "%2e%2e%2fsecret.png", "manifest.json"):
        status, _, _ = raw(api.url, "GET", f"/sweep/v1/jobs/{job['id']}/images/{cell_id}", None)
        assert status == 404
    status, _, answer = raw(api.url, "GET", f"/sweep/v1/jobs/{job['id']}/grids/7", None)
    assert status == 404
    assert json.loads(answer)["detail"][0]["field"] == "n"
    status, _, answer = raw(api.url, "GET", f"/sweep/v1/jobs/{job['id']}/grids/x", None)
    assert status == 422
    assert json.loads(answer)["detail"][0]["field"] == "n"


def test_cancel_and_resume_of_unknown_jobs(api):
    for path in ("/sweep/v1/jobs/nope/cancel", "/sweep/v1/jobs/nope/resume"):
        status, _, answer = raw(api.url, "POST", path, None)
        assert status == 404
        assert json.loads(answer)["detail"][0]["field"] == "id"
    job = api.client.submit(SPEC)
    api.client.wait(job["id"], poll=0.05, timeout=30)
    with pytest.raises(SweepHTTPError) as error:
        api.client.resume(job["id"])
    assert error.value.status == 409


# -- --api-auth ------------------------------------------------------------------------------


def test_parse_api_auth_like_the_webui():
    assert parse_api_auth("a:b,c:d:e, bad ,") == {"a": "b", "c": "d:e"}
    assert parse_api_auth(None) == {}
    credentials = parse_api_auth("a:b")
    assert check_credentials(credentials, "a", "b")
    assert not check_credentials(credentials, "a", "c")
    assert not check_credentials(credentials, "b", "b")


ROUTES = [
    ("GET", "/sweep/v1/axes", None),
    ("GET", "/sweep/v1/schema", None),
    ("POST", "/sweep/v1/plan", SPEC),
    ("POST", "/sweep/v1/plan", {"name": "../bad"}),
    ("POST", "/sweep/v1/jobs", {"axes": "bad"}),
    ("GET", "/sweep/v1/jobs", None),
    ("GET", "/sweep/v1/jobs/abc", None),
    ("POST", "/sweep/v1/jobs/abc/cancel", None),
    ("POST", "/sweep/v1/jobs/abc/resume", None),
    ("GET", "/sweep/v1/jobs/abc/manifest", None),
    ("GET", "/sweep/v1/jobs/abc/images/x", None),
    ("GET", "/sweep/v1/jobs/abc/grids/0", None),
    ("POST", "/sweep/v1/run", SPEC),
]


def test_with_api_auth_every_route_demands_credentials(tmp_path: Path):
    with live_api(tmp_path / "runs", api_auth="alice:s3cret:x,bob:pw") as api:
        for method, path, body in ROUTES:
            data = json.dumps(body).encode() if body is not None else None
            for headers in (
                {},
                {"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()},
                {"Authorization": "Basic " + base64.b64encode(b"mallory:pw").decode()},
                {"Authorization": "Basic !!!notbase64"},
                {"Authorization": "Bearer abc"},
            ):
                status, answer_headers, answer = raw(
                    api.url, method, path, data, {"Content-Type": "application/json", **headers}
                )
                assert status == 401, (method, path, headers, answer)
                assert answer_headers.get("www-authenticate", answer_headers.get("WWW-Authenticate")) == "Basic"
        assert api.manager.jobs() == []
        for auth in ("alice:s3cret:x", ("bob", "pw")):
            client = SweepClient(api.url, auth=auth)
            assert client.axes()["backend"] == "fake"
        client = SweepClient(api.url, auth="alice:s3cret:x")
        job = client.submit(SPEC)
        assert client.wait(job["id"], poll=0.05, timeout=30)["state"] == "finished"
        assert client.image(job["id"], next(iter(client.manifest(job["id"])["cells"])))[:4] == b"\x89PNG"
        with pytest.raises(SweepHTTPError) as error:
            SweepClient(api.url).jobs()
        assert error.value.status == 401
        document = json.loads(raw(api.url, "GET", "/openapi.json", None)[2])
        assert document["components"]["securitySchemes"]["HTTPBasic"]["scheme"] == "basic"


def test_without_api_auth_the_routes_are_open(tmp_path: Path):
    with live_api(tmp_path / "runs") as api:
        for method, path, body in ROUTES:
            data = json.dumps(body).encode() if body is not None else None
            status, _, _ = raw(api.url, method, path, data, {"Content-Type": "application/json"})
            assert status != 401
        document = json.loads(raw(api.url, "GET", "/openapi.json", None)[2])
        assert "securitySchemes" not in document.get("components", {})


def test_api_auth_is_read_from_the_webui_cmd_opts(tmp_path: Path, monkeypatch):
    import sys
    import types

    shared = types.ModuleType("modules.shared")
    shared.cmd_opts = types.SimpleNamespace(api_auth="u:p")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "modules.shared", shared)
    from fastapi import FastAPI

    from sd_sweep.api import register
    from sd_sweep.api.jobs import Host
    from tests.fakes import FakeBackend
    from tests.live_server import LiveServer

    app = FastAPI()
    manager = register(app, runs_dir=tmp_path, backend_factory=lambda mode: FakeBackend(), host=Host())
    try:
        with LiveServer(app) as server:
            assert raw(server.url, "GET", "/sweep/v1/axes", None)[0] == 401
            assert SweepClient(server.url, auth="u:p").axes()["backend"] == "fake"
    finally:
        manager.close()


def test_what_only_the_backend_can_judge_is_a_422_at_submission(tmp_path):
    from sd_sweep.core.errors import Problem, SpecError

    class Picky(TimedBackend):
        def check_plan(self, plan):
            pairs = {(c.params["sampler_name"], c.params.get("scheduler")) for c in plan.cells}
            if ("DPM++ 2M", "Karras") in pairs:
                raise SpecError(Problem("axes[1].values", "DPM++ 2M + Karras", "not a pair this backend runs"))

    body = {**SPEC, "base": {**SPEC["base"], "scheduler": "Karras"}}
    with live_api(tmp_path, backend=Picky()) as api:
        for path in ("/sweep/v1/plan", "/sweep/v1/jobs"):
            status, problems = problems_of(api, path, body)
            assert status == 422
            assert problems == [
                {"field": "axes[1].values", "value": "DPM++ 2M + Karras", "message": "not a pair this backend runs"}
            ]
        assert api.backend.calls == []
        assert api.client.jobs() == []


@pytest.mark.parametrize(
    "body",
    [b"Infinity", b"NaN", b'{"base": {"steps": Infinity}}', b'{"axes": [{"param": "cfg_scale", "values": [NaN]}]}'],
)
def test_non_finite_numbers_are_a_422_not_a_500(api, body):
    for path in ("/sweep/v1/plan", "/sweep/v1/jobs", "/sweep/v1/run"):
        status, _, data = raw(api.url, "POST", path, body, {"Content-Type": "application/json"})
        assert status == 422, (path, body, data[:200])
        assert json.loads(data)["detail"]
