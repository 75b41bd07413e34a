"""The keys of the sweep spec, in one table.

The parser (``sd_sweep.core.spec``) takes its keys and their structural checks from here, and the
JSON Schema (``sd_sweep.core.schema``, served at ``GET /sweep/v1/schema`` and in the request bodies
of ``/openapi.json``) is generated from the same table, so a document passes the parser's
structural stage exactly when it is valid under the schema, apart from ``SEMANTIC_CHECKS``.

``Key.fits`` follows JSON Schema's meaning of each constraint (an integer is any number without a
fraction, ``1.0`` included; a boolean is never a number; a pattern is searched for, as
``jsonschema`` and ECMA 262 do), so the two cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_CELLS = 1000
SPEC_VERSION = 1

_NAME_BODY = r"[A-Za-z0-9](?:[A-Za-z0-9 _.\-]{0,98}[A-Za-z0-9_\-])?"
NAME_PATTERN = rf"^{_NAME_BODY}$(?!\n)"
"""1-100 letters, digits, spaces, ``_``, ``-`` or ``.``; starts with a letter or digit, ends with neither
``.`` nor a space (so it is a folder name on every file system). ``(?!\\n)`` makes ``$`` the end of the
text in Python too, where ``$`` also matches before a final newline."""
NAME_RULE = "1-100 letters, digits, spaces, '_', '-' or '.', starting with a letter or digit, not ending in '.' or ' '"

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


_PLAIN_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "boolean": bool,
    "null": type(None),
    "array": list,
    "object": dict,
}


def json_type_fits(kind: str, value: Any) -> bool:
    """Whether ``value`` (parsed JSON or YAML) has the JSON Schema type ``kind``."""
    if kind in _PLAIN_TYPES:
        return isinstance(value, _PLAIN_TYPES[kind])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return kind == "number" or isinstance(value, int) or value.is_integer()


@dataclass(frozen=True)
class Key:
    """One key of a spec mapping: its JSON types, constraints, default and description."""

    name: str
    types: tuple[str, ...]
    description: str
    message: str
    """The parser's message when a value does not fit."""
    default: Any = None
    pattern: str | None = None
    enum: tuple[Any, ...] | None = None
    min_length: int | None = None
    minimum: int | None = None
    min_items: int | None = None
    item_type: str | None = None
    """The JSON type of an array's items."""
    title: str | None = None

    def fits(self, value: Any) -> bool:
        """Whether ``value`` is valid under ``self.schema()`` (a JSON Schema validator's verdict)."""
        if value is None:
            return "null" in self.types
        if not any(json_type_fits(kind, value) for kind in self.types):
            return False
        if self.enum is not None and value not in self.enum:
            return False
        if isinstance(value, str):
            return (self.pattern is None or re.search(self.pattern, value) is not None) and len(value) >= (
                self.min_length or 0
            )
        if isinstance(value, list):
            return len(value) >= (self.min_items or 0) and (
                self.item_type is None or all(json_type_fits(self.item_type, v) for v in value)
            )
        return self.minimum is None or not json_type_fits("number", value) or value >= self.minimum

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of this key's value."""
        schema: dict[str, Any] = {"type": self.types[0] if len(self.types) == 1 else list(self.types)}
        if self.title:
            schema["title"] = self.title
        schema["description"] = self.description
        constraints = {
            "enum": list(self.enum) if self.enum is not None else None,
            "pattern": self.pattern,
            "minLength": self.min_length,
            "minimum": self.minimum,
            "minItems": self.min_items,
            "items": {"type": self.item_type} if self.item_type else None,
            "default": self.default,
        }
        schema.update((word, value) for word, value in constraints.items() if value is not None)
        return nullable(schema) if "null" in self.types else schema


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` that also allows ``null`` (added to its ``type`` and its ``enum``)."""
    result = dict(schema)
    types = result.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if types and "null" not in types:
        result["type"] = [*types, "null"]
    if "enum" in result and None not in result["enum"]:
        result["enum"] = [*result["enum"], None]
    return result


def _table(*keys: Key) -> dict[str, Key]:
    return {key.name: key for key in keys}


TOP: dict[str, Key] = _table(
    Key(
        "name",
        ("string", "null"),
        "The run's name and its folder; empty or absent: the first words of the base prompt.",
        f"must be {NAME_RULE}",
        pattern=rf"^(?:{_NAME_BODY})?$(?!\n)",
    ),
    Key("description", ("string",), "Free text kept in the manifest.", "must be a string"),
    Key(
        "version",
        ("integer",),
        "The spec format's version.",
        f"must be {SPEC_VERSION}",
        enum=(SPEC_VERSION,),
        default=SPEC_VERSION,
    ),
    Key(
        "base",
        ("object",),
        "Generation parameters of every cell, named as in /sdapi/v1/txt2img.",
        "must be a mapping of parameter names to values",
        default={},
    ),
    Key("axes", ("array",), "The axes: a list of {param, values}.", "must be a list of {param, values}", default=[]),
    Key(
        "layout",
        ("object", "null"),
        "Which axes are the columns (x), the rows (y) and the pages; default: first axis x, second y, the rest pages.",
        "must be a mapping with x, y and page",
    ),
    Key("limits", ("object", "null"), "Guards against sweeps larger than meant.", "must be a mapping"),
)

OPTIONS: dict[str, Key] = _table(
    Key(
        "delimiter",
        ("string",),
        "Prompt matrix: what joins the parts.",
        "must be comma or space",
        enum=("comma", "space"),
        default="comma",
    ),
    Key(
        "at_start",
        ("boolean",),
        "Prompt matrix: put the optional parts before the prompt.",
        "must be true or false",
        default=False,
    ),
    Key(
        "target",
        ("string",),
        "Prompt matrix: which prompt it splits at '|'.",
        "must be prompt or negative_prompt",
        enum=("prompt", "negative_prompt"),
        default="prompt",
    ),
)
"""Parameter-specific options: in an axis's ``options`` mapping, or as keys of the axis itself."""

VALUES_TYPES = ("string", "number", "boolean", "array")

AXIS: dict[str, Key] = _table(
    Key(
        "param",
        ("string",),
        "A parameter of GET /sweep/v1/axes (or an alias), or setting:<key>, lora:<name>, lyco:<name>,"
        " hypernet:<name>, host:<axis label>.",
        "must name a parameter",
        min_length=1,
    ),
    Key(
        "values",
        VALUES_TYPES,
        "X/Y/Z plot text ('5, 7, 9', '1-10 (+3)', '1-10 [4]', CSV with quotes), a list of values, or one value."
        " Required except for prompt_matrix, which defaults to the base prompt.",
        "must be text like '1, 2, 5-8', a non-empty list of values, or one value",
        min_items=1,
    ),
    Key(
        "name",
        ("string", "null"),
        "The key layouts use; defaults to the parameter name (made unique with a suffix _2, _3, ...).",
        "must be a non-empty string",
        min_length=1,
    ),
    Key("title", ("string", "null"), "The grid label; defaults to the parameter's title.", "must be a string"),
    Key("label", ("string", "null"), "Another word for title (title wins).", "must be a string"),
    Key(
        "zip",
        ("string", "null"),
        "A group name: axes with the same zip group advance together instead of multiplying.",
        "must be a group name",
        min_length=1,
    ),
    Key("options", ("object",), "Parameter-specific options (delimiter, at_start, target).", "must be a mapping"),
    *OPTIONS.values(),
)

LAYOUT: dict[str, Key] = _table(
    Key("x", ("string", "null"), "The axis (or zip group) of the columns.", "must be an axis name"),
    Key("y", ("string", "null"), "The axis (or zip group) of the rows.", "must be an axis name"),
    Key(
        "page",
        ("string", "array"),
        "The axes that split pages: one name or a list.",
        "must be an axis name or a list of axis names",
        item_type="string",
    ),
    Key(
        "pages",
        ("string", "array"),
        "Another word for page (give one of them).",
        "must be an axis name or a list of axis names",
        item_type="string",
    ),
)

LIMITS: dict[str, Key] = _table(
    Key(
        "max_cells",
        ("integer",),
        "Refuse a sweep with more cells than this.",
        "must be a positive integer",
        minimum=1,
        default=DEFAULT_MAX_CELLS,
    ),
    Key(
        "batch_exact",
        ("boolean",),
        "Batch only cells whose images a batch does not change (the backend says which); false batches "
        "every cell it can for speed, and the infotext of each image a batch may have changed says so.",
        "must be true or false",
        default=True,
    ),
)


@dataclass(frozen=True)
class SemanticCheck:
    """A check of the spec that its JSON Schema does not express."""

    field: str
    rule: str
    stage: str = "plan"
    """``spec``: the parser checks it with the structure; ``plan``: checked when the plan is built."""


SEMANTIC_CHECKS: tuple[SemanticCheck, ...] = (
    SemanticCheck("base", "a parameter given twice (as itself and an alias) is refused", "spec"),
    SemanticCheck("axes[].name", "axis names are unique", "spec"),
    SemanticCheck("axes[].zip", "a zip group is not the name of an axis outside it", "spec"),
    SemanticCheck("axes[].param", "the backend supports the parameter"),
    SemanticCheck("axes[].values", "values parse per parameter kind and are allowed by the backend"),
    SemanticCheck("axes[].values", "the first prompt_sr value occurs in the prompt"),
    SemanticCheck("axes[].values", "a prompt matrix's text has parts separated by '|'"),
    SemanticCheck("axes[].zip", "axes of one zip group have the same number of values"),
    SemanticCheck("base", "each value parses per parameter kind; axis-only parameters are refused here"),
    SemanticCheck("layout", "x, y and page name axes or zip groups, each at most once"),
    SemanticCheck("limits.max_cells", "the sweep has at most this many cells"),
)
"""What the schema's ``description`` lists as checked beyond it; the parser keeps these checks."""
