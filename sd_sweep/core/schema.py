"""The JSON Schema of the sweep spec (``python -m sd_sweep schema``)."""

from __future__ import annotations

from typing import Any

from sd_sweep.core.params import PARAMS
from sd_sweep.core.spec import DEFAULT_MAX_CELLS

_KIND_SCHEMA: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "size": {"type": "string", "pattern": r"^\s*\d+\s*[xX]\s*\d+\s*$"},
    "styles": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
}

PARAM_NAME_PATTERN = r"^(setting|lora|lyco|hypernet|host):.+$"


def spec_schema() -> dict[str, Any]:
    names = sorted({*PARAMS, *(a for d in PARAMS.values() for a in d.aliases)})
    param_name = {"anyOf": [{"enum": names}, {"type": "string", "pattern": PARAM_NAME_PATTERN}]}
    base_properties = {
        name: {**_KIND_SCHEMA[d.kind], "title": d.title}
        for name, d in PARAMS.items()
        if name not in ("prompt_sr", "negative_prompt_sr", "prompt_matrix")
    }
    base_properties["batch_size"] = {"type": "integer", "minimum": 1, "maximum": 64, "default": 1}
    base_properties["override_settings"] = {"type": "object", "title": "WebUI settings for every cell"}
    base_properties["init_images"] = {"type": "array", "items": {"type": "string"}, "title": "img2img input images"}
    axis_values = {
        "oneOf": [
            {"type": "string", "description": "X/Y/Z plot syntax: CSV with quotes, 1-5, 1-10 (+3), 1-10 [4]"},
            {"type": "array", "minItems": 1},
            {"type": "number"},
        ]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sd-webui-sweep spec",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "version": {"type": "integer"},
            "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$", "default": "sweep"},
            "description": {"type": "string"},
            "base": {
                "type": "object",
                "description": "Generation parameters of every cell, named as in /sdapi/v1/txt2img.",
                "properties": base_properties,
            },
            "axes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["param"],
                    "additionalProperties": False,
                    "properties": {
                        "param": param_name,
                        "values": axis_values,
                        "name": {"type": "string", "description": "key used by layout; defaults to param"},
                        "title": {"type": "string"},
                        "label": {"type": "string"},
                        "zip": {"type": "string", "description": "axes with the same zip group advance together"},
                        "delimiter": {"enum": ["comma", "space"]},
                        "at_start": {"type": "boolean"},
                        "target": {"enum": ["prompt", "negative_prompt"]},
                        "options": {"type": "object"},
                    },
                },
            },
            "layout": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "x": {"type": ["string", "null"]},
                    "y": {"type": ["string", "null"]},
                    "page": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                    "pages": {"type": "array", "items": {"type": "string"}},
                },
            },
            "limits": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"max_cells": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_CELLS}},
            },
        },
    }
