"""The JSON Schema of the sweep spec (``python -m sd_sweep schema``), generated from ``core.spec_model``."""

from __future__ import annotations

from typing import Any

from sd_sweep.core.params import NETWORK_TYPES, PARAMS
from sd_sweep.core.spec_model import AXIS, LAYOUT, LIMITS, OPTIONS, SEMANTIC_CHECKS, TOP, Key, nullable

PARAM_NAME_PATTERN = rf"^(?:setting|{'|'.join(NETWORK_TYPES)}|host):[\s\S]"
"""The dynamic families: anything after the colon (``[\\s\\S]`` is any character, newlines too)."""

AXIS_ONLY_PARAMS = ("prompt_sr", "negative_prompt_sr", "prompt_matrix")

_KIND_TEXT = {
    "int": "an integer (or numeric text)",
    "float": "a number (or numeric text)",
    "str": "text",
    "bool": "true or false (or text such as on/off, yes/no)",
    "size": "WIDTHxHEIGHT text such as 512x768, or [width, height]",
    "styles": "a list of style names, or comma-separated text",
}


def _object(keys: dict[str, Key], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: key.schema() for name, key in keys.items()},
        **extra,
    }


def param_names() -> list[str]:
    """Every fixed parameter name and alias an axis may use."""
    return sorted({*PARAMS, *(alias for d in PARAMS.values() for alias in d.aliases)})


def spec_schema() -> dict[str, Any]:
    """The sweep spec's JSON Schema (draft 2020-12).

    A document is valid under it exactly when it passes the parser's structural stage, except for
    the checks the schema cannot express, which its ``description`` lists.
    """
    axis = _object(AXIS)
    axis["properties"]["param"] = {
        **axis["properties"]["param"],
        "anyOf": [{"enum": param_names()}, {"pattern": PARAM_NAME_PATTERN}],
    }
    axis["properties"]["options"] = {**axis["properties"]["options"], **_object(OPTIONS, additionalProperties=True)}
    axis["required"] = ["param"]
    axis["anyOf"] = [
        {"required": ["values"]},
        {"properties": {"param": {"enum": ["prompt_matrix"]}}, "description": "a prompt matrix splits the base prompt"},
    ]
    layout = _object(LAYOUT, **{"not": {"type": "object", "required": ["page", "pages"]}})
    properties = {name: key.schema() for name, key in TOP.items()}
    properties["base"].update(base_schema())
    properties["axes"]["items"] = axis
    properties["layout"].update(layout, type=["object", "null"])
    properties["limits"].update(_object(LIMITS), type=["object", "null"])
    checks = "; ".join(f"{c.field}: {c.rule}" for c in SEMANTIC_CHECKS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sd-webui-sweep spec",
        "description": f"A sweep: base parameters, axes, layout and limits. Checked beyond this schema: {checks}.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


def request_schema(request_keys: dict[str, Key]) -> dict[str, Any]:
    """A request body's schema: the spec's plus ``request_keys`` (how to run it, e.g. ``mode``).

    Every top-level key may also be ``null``, which a request treats as absent.
    """
    schema = spec_schema()
    properties = {name: nullable(value) for name, value in schema["properties"].items()}
    properties.update((name, key.schema()) for name, key in request_keys.items())
    schema["properties"] = properties
    schema["title"] = "sd-webui-sweep request"
    return schema


def base_schema() -> dict[str, Any]:
    """``base``: every parameter is described; their values are read per kind when the plan is built."""
    properties: dict[str, Any] = {
        name: {"title": d.title, "description": _KIND_TEXT[d.kind] + _range(d.minimum, d.maximum)}
        for name, d in PARAMS.items()
        if name not in AXIS_ONLY_PARAMS
    }
    properties["batch_size"] = {
        "title": "Batch size",
        "description": "Images per generation call (cells that differ only in prompt or seed share one); 1-64.",
        "default": 1,
    }
    properties["override_settings"] = {
        "type": "object",
        "title": "WebUI settings for every cell",
        "description": "Setting keys and values, as in /sdapi/v1/txt2img.",
    }
    properties["init_images"] = {"title": "img2img input images", "description": "base64 PNG or JPEG images"}
    return {
        "properties": properties,
        "description": TOP["base"].description
        + " Also setting:<key> entries (a WebUI setting). Values are read per parameter kind when the plan is built.",
    }


def _range(minimum: float | None, maximum: float | None) -> str:
    return f", {minimum:g} to {maximum:g}" if minimum is not None and maximum is not None else ""
