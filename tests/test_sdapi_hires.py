"""The hires fix over a stock WebUI's API (``SdapiBackend``, against the stand-in of ``test_client_cli``):
every hires field on txt2img, ``Use same ...`` as the field left out, Forge's ``hr_cfg`` where the
server's txt2img request model has it, and no hires field on img2img."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from sd_sweep import cli
from sd_sweep.backends.sdapi import SdapiBackend
from sd_sweep.backends.webui.params import HIRES_CFG_REFUSAL, HIRES_PARAMS, TXT2IMG_ONLY
from sd_sweep.core.errors import SpecError
from sd_sweep.core.params import SAME_SAMPLER, SAME_SCHEDULER
from sd_sweep.core.plan import Plan
from sd_sweep.core.planner import build_plan
from sd_sweep.core.run import request_for
from sd_sweep.core.spec import load_spec
from tests.live_server import LiveServer
from tests.test_client_cli import stock_webui, write_spec

HIRES_BASE = {
    "prompt": "a cat",
    "negative_prompt": "ugly",
    "steps": 2,
    "width": 64,
    "height": 64,
    "seed": 10,
    "sampler_name": "Euler a",
    "enable_hr": True,
    "hr_scale": 2.0,
    "hr_second_pass_steps": 1,
    "denoising_strength": 0.5,
    "hr_resize_x": 96,
    "hr_resize_y": 128,
    "hr_prompt": "a dog",
    "hr_negative_prompt": "blurry",
}
SAMPLER_AXES = [
    {"param": "hr_sampler_name", "values": f"{SAME_SAMPLER}, Euler"},
    {"param": "hr_scheduler", "values": f"{SAME_SCHEDULER}, Karras"},
]


def webui_with_schedulers() -> tuple[Any, list[dict[str, Any]]]:
    """The stand-in, with the schedule types a WebUI since v1.9 lists."""
    app, calls = stock_webui()

    @app.get("/sdapi/v1/schedulers")
    def schedulers() -> list:
        return [{"name": "automatic", "label": "Automatic"}, {"name": "karras", "label": "Karras"}]

    return app, calls


def serve_txt2img_model(app: Any, fields: dict[str, tuple[type, Any]]) -> None:
    """Make the stand-in's ``/openapi.json`` a WebUI's: the body of ``POST /sdapi/v1/txt2img`` a pydantic
    model named ``StableDiffusionProcessingTxt2Img`` with these fields, as ``modules/api/models.py``
    makes it, its schema written by this environment's FastAPI and pydantic (1 or 2)."""
    from fastapi import FastAPI
    from pydantic import create_model

    model = create_model("StableDiffusionProcessingTxt2Img", **fields)  # type: ignore[call-overload]

    def txt2img(body: Any) -> dict:
        return {}

    body = inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=model)
    txt2img.__signature__ = inspect.Signature([body])  # type: ignore[attr-defined]
    described = FastAPI()
    described.post("/sdapi/v1/txt2img")(txt2img)
    app.openapi_schema = described.openapi()


def serve_no_openapi(app: Any) -> None:
    """The stand-in without ``/openapi.json`` (a 404, as where the server's app serves none)."""
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != app.openapi_url]


def plan_on(backend: SdapiBackend, base: dict[str, Any], axes: list[dict[str, Any]]) -> Plan:
    return build_plan(load_spec({"name": "hires", "base": base, "axes": axes}), backend.capabilities())


def payload_of(backend: SdapiBackend, plan: Plan, index: int) -> dict[str, Any]:
    calls = backend.payloads(request_for([plan.cells[index]], plan))
    assert [count for count, _ in calls] == [1]
    return calls[0][1]


def test_txt2img_payload_carries_every_hires_parameter_and_use_same_as_absent():
    app, _ = webui_with_schedulers()
    with LiveServer(app) as server:
        backend = SdapiBackend(server.url)
        caps = backend.capabilities()
        plan = plan_on(backend, HIRES_BASE, SAMPLER_AXES)
    assert set(HIRES_PARAMS) <= caps.params
    assert caps.choices["hr_sampler_name"] == (SAME_SAMPLER, "Euler a", "Euler")
    assert caps.choices["hr_scheduler"] == (SAME_SCHEDULER, *caps.choices["scheduler"])
    assert "Karras" in caps.choices["hr_scheduler"]
    payloads = [payload_of(backend, plan, i) for i in range(len(plan.cells))]
    fields = {k: v for k, v in HIRES_BASE.items() if k not in ("prompt", "negative_prompt", "seed")}
    for payload in payloads:
        assert {k: payload[k] for k in fields} == fields
        assert (payload["prompt"], payload["negative_prompt"]) == ("a cat", "ugly")
    sent = sorted((p.get("hr_sampler_name", "absent"), p.get("hr_scheduler", "absent")) for p in payloads)
    assert sent == [("Euler", "Karras"), ("Euler", "absent"), ("absent", "Karras"), ("absent", "absent")]
    assert all(SAME_SAMPLER not in p.values() and SAME_SCHEDULER not in p.values() for p in payloads)


def test_hires_sampler_values_outside_the_servers_lists_are_refused():
    app, _ = webui_with_schedulers()
    with LiveServer(app) as server:
        backend = SdapiBackend(server.url)
        with pytest.raises(SpecError) as caught:
            plan_on(backend, HIRES_BASE, [{"param": "hr_sampler_name", "values": "DDIM, Euler"}])
    assert [(p.field, p.value) for p in caught.value.problems] == [("axes[0].values", "DDIM")]


def test_a_stock_api_run_sends_the_hires_fields_to_txt2img(tmp_path: Path):
    app, calls = webui_with_schedulers()
    doc = {"name": "hires", "base": HIRES_BASE, "axes": SAMPLER_AXES[:1]}
    with LiveServer(app) as server:
        command = ["run", str(write_spec(tmp_path, doc)), "--url", server.url, "--out", str(tmp_path / "out")]
        assert cli.main([*command, "--no-grid"]) == 0
    assert len(calls) == 2
    assert sorted(c.get("hr_sampler_name") or "" for c in calls) == ["", "Euler"]
    assert all((c["hr_resize_x"], c["hr_resize_y"], c["hr_prompt"]) == (96, 128, "a dog") for c in calls)


def test_hr_cfg_is_applied_where_the_txt2img_request_model_has_it():
    app, _ = stock_webui()
    serve_txt2img_model(app, {"prompt": (str, ""), "enable_hr": (bool, False), "hr_cfg": (float, 1.0)})
    with LiveServer(app) as server:
        backend = SdapiBackend(server.url)
        caps = backend.capabilities()
        plan = plan_on(backend, HIRES_BASE, [{"param": "hr_cfg", "values": "1, 4.5"}])
    assert "hr_cfg" in caps.params
    assert "hr_cfg" not in caps.refusals
    assert [payload_of(backend, plan, i)["hr_cfg"] for i in range(2)] == [1, 4.5]


@pytest.mark.parametrize("server", ["model without hr_cfg", "no schema model", "no openapi.json"])
def test_hr_cfg_is_refused_by_name_where_the_server_does_not_list_it(server: str):
    app, _ = stock_webui()
    if server == "model without hr_cfg":
        serve_txt2img_model(app, {"prompt": (str, ""), "enable_hr": (bool, False), "hr_scale": (float, 2.0)})
    elif server == "no openapi.json":
        serve_no_openapi(app)
    with LiveServer(app) as live:
        backend = SdapiBackend(live.url)
        caps = backend.capabilities()
        with pytest.raises(SpecError) as on_axis:
            plan_on(backend, HIRES_BASE, [{"param": "hr_cfg", "values": "1, 4.5"}])
        with pytest.raises(SpecError) as in_base:
            plan_on(backend, {**HIRES_BASE, "hr_cfg": 3}, [{"param": "seed", "values": "1, 2"}])
    assert "hr_cfg" not in caps.params
    assert caps.params >= TXT2IMG_ONLY
    assert caps.refusals["hr_cfg"] == HIRES_CFG_REFUSAL
    for caught, field in ((on_axis, "axes[0].param"), (in_base, "base.hr_cfg")):
        [problem] = caught.value.problems
        assert problem.field == field
        assert problem.message == f"not supported by the sdapi backend: {HIRES_CFG_REFUSAL}"
        assert "hr_cfg" in problem.message


IMG2IMG_VALUES = {
    "enable_hr": True,
    "hr_upscaler": "Latent",
    "hr_sampler_name": "Euler",
    "hr_scheduler": "Karras",
    "hr_prompt": "a dog",
    "hr_negative_prompt": "blurry",
}


@pytest.mark.parametrize("param", [*HIRES_PARAMS, "hr_cfg"])
def test_img2img_applies_no_hires_parameter(param: str):
    app, _ = stock_webui()
    serve_txt2img_model(app, {"prompt": (str, ""), "hr_cfg": (float, 1.0)})
    with LiveServer(app) as server:
        backend = SdapiBackend(server.url, mode="img2img")
        caps = backend.capabilities()
        value = IMG2IMG_VALUES.get(param, 2)
        base = {"prompt": "a cat", "steps": 2, "width": 64, "height": 64, "denoising_strength": 0.5}
        with pytest.raises(SpecError) as caught:
            plan_on(backend, {**base, param: value}, [{"param": "seed", "values": "1, 2"}])
    assert not (TXT2IMG_ONLY | {"hr_cfg"}) & caps.params
    [problem] = caught.value.problems
    assert problem.field == f"base.{param}"
    assert problem.message.startswith(f"not supported by the sdapi backend ({param})")


@pytest.mark.parametrize("forge", [True, False])
def test_hires_requests_to_forge_keep_its_hires_modules_as_its_ui_does(forge: bool):
    """Forge's hires pass raises TypeError on its API default ``hr_additional_modules=None``."""
    app, _ = stock_webui()
    fields = {"prompt": (str, ""), "enable_hr": (bool, False)}
    if forge:
        fields["hr_additional_modules"] = (list, None)
    serve_txt2img_model(app, fields)
    with LiveServer(app) as server:
        backend = SdapiBackend(server.url)
        hires = payload_of(backend, plan_on(backend, HIRES_BASE, [{"param": "seed", "values": "1"}]), 0)
        plain = payload_of(backend, plan_on(backend, {"prompt": "a cat", "steps": 2}, []), 0)
    assert hires.get("hr_additional_modules") == (["Use same choices"] if forge else None)
    assert "hr_additional_modules" not in plain


def test_sampler_aliases_and_schedule_names_are_taken_and_sent_as_the_webui_names_them():
    app, _ = webui_with_schedulers()
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != "/sdapi/v1/samplers"]

    @app.get("/sdapi/v1/samplers")
    def samplers() -> list:
        return [{"name": "Euler a", "aliases": ["k_euler_a", "k_euler_ancestral"]}, {"name": "Euler", "aliases": None}]

    axes = [{"param": "hr_sampler_name", "values": "k_euler_a"}, {"param": "hr_scheduler", "values": "karras"}]
    with LiveServer(app) as server:
        backend = SdapiBackend(server.url)
        plan = plan_on(backend, {**HIRES_BASE, "sampler_name": "k_euler_ancestral"}, axes)
        payload = payload_of(backend, plan, 0)
    assert (payload["sampler_name"], payload["hr_sampler_name"], payload["hr_scheduler"]) == (
        "Euler a",
        "Euler a",
        "Karras",
    )


def test_forge_hires_cfg_follows_the_cells_cfg_where_the_cell_leaves_it_unset():
    """Forge's UI starts both at 7; its API's default 1 would leave a swept CFG out of the hires pass."""
    app, _ = stock_webui()
    serve_txt2img_model(app, {"prompt": (str, ""), "enable_hr": (bool, False), "hr_cfg": (float, 1.0)})
    with LiveServer(app) as server:
        backend = SdapiBackend(server.url)
        swept = plan_on(backend, HIRES_BASE, [{"param": "cfg_scale", "values": "3, 9"}])
        given = plan_on(backend, {**HIRES_BASE, "hr_cfg": 1}, [{"param": "cfg_scale", "values": "3, 9"}])
        unset = plan_on(backend, {k: v for k, v in HIRES_BASE.items() if k != "cfg_scale"}, [])
        plain = plan_on(backend, {"prompt": "a cat", "cfg_scale": 3}, [])
        assert [payload_of(backend, swept, i)["hr_cfg"] for i in range(2)] == [3, 9]
        assert [payload_of(backend, given, i)["hr_cfg"] for i in range(2)] == [1, 1]
        assert payload_of(backend, unset, 0)["hr_cfg"] == 7.0
        assert "hr_cfg" not in payload_of(backend, plain, 0)


@pytest.mark.parametrize("forge", [True, False])
def test_batches_follow_the_measured_table_of_the_servers_host(forge: bool, monkeypatch):
    from sd_sweep.backends import sdapi

    seen = []
    monkeypatch.setattr(sdapi, "shares_batch", lambda host, *args: seen.append(host) or True)
    app, _ = stock_webui()
    fields = {"prompt": (str, ""), **({"hr_additional_modules": (list, None)} if forge else {})}
    serve_txt2img_model(app, fields)
    with LiveServer(app) as server:
        plan_on(SdapiBackend(server.url), {**HIRES_BASE, "batch_size": 2}, [{"param": "seed", "values": "1, 2"}])
    assert set(seen) == {"forge" if forge else "a1111"}
