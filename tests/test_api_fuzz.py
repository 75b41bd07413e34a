"""Fuzz the /sweep/v1 routes from their OpenAPI document (a small hypothesis fuzzer: schemathesis would
upgrade anyio past what FastAPI 0.104 allows). Every answer must be a non-5xx; every 4xx is our JSON."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api_harness import SPEC, live_api

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
SEGMENT = st.text(max_size=16) | st.sampled_from(
    ["..", ".", "%2e%2e", "../../etc", "0", "-1", "999999999999", "a" * 300]
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_api(tmp_path_factory.mktemp("fuzz") / "runs") as api:
        job = api.client.submit(SPEC)
        api.client.wait(job["id"], poll=0.05, timeout=30)
        document = json.loads(api.client.http.request("GET", "/openapi.json"))
        yield api, document, job["id"]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return resolve(document, schema["allOf"][0])
    return schema


def from_schema(document: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like ``schema`` most of the time, anything JSON some of the time."""
    schema = resolve(document, schema)
    if depth > 4:
        return JSON
    options: list[st.SearchStrategy[Any]] = [JSON]
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    for key in ("anyOf", "oneOf"):
        options.extend(from_schema(document, s, depth + 1) for s in schema.get(key, []))
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        options.append(
            st.fixed_dictionaries(
                {}, optional={name: from_schema(document, sub, depth + 1) for name, sub in properties.items()}
            )
        )
    elif kind == "array":
        options.append(st.lists(from_schema(document, schema.get("items", {}), depth + 1), max_size=3))
    elif kind == "integer":
        options.append(st.integers(-5, 5000))
    elif kind == "number":
        options.append(st.floats(-10, 1e6, allow_nan=False))
    elif kind == "string":
        options.append(
            st.text(max_size=30) | st.sampled_from(["5, 7", "1-3", "Euler", "cfg_scale", "seed", "prompt_sr"])
        )
    elif kind == "boolean":
        options.append(st.booleans())
    return st.one_of(options)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path.startswith("/sweep/v1/")
        for method, operation in item.items()
    ]


def call(url: str, method: str, path: str, body: Any, query: dict[str, str]) -> tuple[int, bytes]:
    target = url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        target, data=data, method=method.upper(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_openapi_document_is_complete(server):
    _, document, _ = server
    assert document["openapi"].startswith("3.")
    text = json.dumps(document)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        resolve(document, {"$ref": ref})  # every reference resolves
    assert len(operations(document)) == 21  # 12 of jobs and sweeps, 9 of runs (the viewer's)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_request_makes_a_5xx(server, data):
    api, document, job_id = server
    path, method, operation = data.draw(st.sampled_from(operations(document)))
    concrete = path
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            value = data.draw(st.sampled_from([job_id]) | SEGMENT if parameter["name"] == "job_id" else SEGMENT)
            concrete = concrete.replace("{" + parameter["name"] + "}", urllib.parse.quote(str(value), safe="") or "x")
    query = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and data.draw(st.booleans()):
            query[parameter["name"]] = data.draw(st.text(max_size=10) | st.sampled_from(["txt2img", "img2img"]))
    body = None
    if "requestBody" in operation:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        body = data.draw(from_schema(document, schema))
        if method == "post" and path.endswith("/run"):
            body = body if not isinstance(body, dict) else {**body, "limits": {"max_cells": 4}}
    status, answer = call(api.url, method, concrete, body, query)
    assert status < 500, (method, concrete, body, answer[:300])
    if (400 <= status < 500 and status != 404) or (status == 404 and answer.startswith(b'{"detail":[')):
        detail = json.loads(answer)["detail"]
        if isinstance(detail, list):
            assert all({"field", "value", "message"} <= set(p) for p in detail), answer[:300]


def test_fuzzed_jobs_did_not_break_the_queue(server):
    api, _, _ = server
    job = api.client.submit({**SPEC, "name": "after-fuzz"})
    assert api.client.wait(job["id"], poll=0.05, timeout=60)["state"] == "finished"
    states = {j["state"] for j in api.client.jobs()}
    assert "failed" not in states
