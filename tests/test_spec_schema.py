"""The parser and the JSON Schema are one definition: a document passes the parser's structural stage
exactly when it is valid under the generated schema, apart from the checks the schema lists as beyond
it (``SEMANTIC_CHECKS`` of stage ``spec``, which these tests recognise by their problem messages)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sd_sweep.core.errors import Problem, SpecError
from sd_sweep.core.params import param_def
from sd_sweep.core.schema import spec_schema
from sd_sweep.core.spec import spec_from_dict
from sd_sweep.core.spec_model import AXIS, LAYOUT, LIMITS, SEMANTIC_CHECKS, TOP

VALIDATOR = jsonschema.Draft202012Validator(spec_schema())
BEYOND_SCHEMA = ("given twice", "another axis has this name")
"""Messages of the parser's checks that a JSON Schema cannot express (uniqueness across items)."""


def parser_problems(document: dict[str, Any]) -> list[Problem]:
    """The structural stage's problems, plus the parameter-name check the schema also makes (the
    planner makes it, so that it is reported with the values' problems)."""
    try:
        spec = spec_from_dict(document)
    except SpecError as exc:
        axes = document.get("axes") if isinstance(document.get("axes"), list) else []
        names = [(i, a.get("param")) for i, a in enumerate(axes) if isinstance(a, dict)]
        return exc.problems + [p for i, param in names if isinstance(param, str) for p in param_problems(param, i)]
    deferred = list(spec.problems)  # unknown top-level keys: the planner reports them with the rest
    return deferred + [problem for index, axis in enumerate(spec.axes) for problem in param_problems(axis.param, index)]


def param_problems(param: str, index: int) -> list[Problem]:
    try:
        param_def(param, f"axes[{index}].param")
    except SpecError as exc:
        return exc.problems
    return []


def structural_verdict(document: dict[str, Any]) -> bool:
    return not [p for p in parser_problems(document) if not p.message.startswith(BEYOND_SCHEMA)]


def text(alphabet: str, max_size: int = 6) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, max_size=max_size)


ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False) | text("ab1 ,-|", 4),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text("abx", 3), children, max_size=2),
    max_leaves=6,
)
NAMES = st.sampled_from(
    ["lighthouse", "a.b", "x_1-2", "A" * 100, "A" * 101, "x.", "x ", ".x", " x", "", "x\n", "../etc", "a/b", "é"]
) | text("a. _-/\n", 4)
PARAMS = st.sampled_from(
    [
        "steps",
        "cfg",
        "cfg_scale",
        "seed",
        "prompt_sr",
        "prompt_matrix",
        "size",
        "setting:eta",
        "setting:",
        "lora:x",
        "lora:",
        "host:X/Y",
        "bogus",
        "Steps",
        "",
    ]
)
VALUES = st.sampled_from(["5, 7", "1-3", "", "a|b", 4, 2.5, True, [], [1, 2], ["a"], {}, None]) | ANY
OPTION_VALUES = {
    "delimiter": st.sampled_from(["comma", "space", "tab", 1, None]),
    "at_start": st.sampled_from([True, False, "yes", 0, 1, None]),
    "target": st.sampled_from(["prompt", "negative_prompt", "prompt ", None]),
}
LABELS = st.sampled_from(["steps", "cfg_scale", "q", "", 3, None, ["steps"]])
AXIS_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "param": PARAMS | ANY,
        "values": VALUES,
        "name": LABELS,
        "title": st.sampled_from(["Steps", "", 3, None]),
        "label": st.sampled_from(["CFG", 3, None]),
        "zip": LABELS,
        "options": st.fixed_dictionaries({}, optional={**OPTION_VALUES, "other": ANY}) | ANY,
        **OPTION_VALUES,
        "bogus": ANY,
    },
)
LAYOUT_DOC = st.fixed_dictionaries(
    {},
    optional={
        "x": LABELS,
        "y": LABELS,
        "page": LABELS | st.lists(LABELS, max_size=2),
        "pages": LABELS | st.lists(LABELS, max_size=2),
        "z": ANY,
    },
)
BASE = st.dictionaries(
    st.sampled_from(["prompt", "steps", "sampler", "sampler_name", "setting:eta", "batch_size", "override_settings"]),
    ANY,
    max_size=3,
)
DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "name": NAMES | ANY,
        "version": st.sampled_from([1, 1.0, 2, "1", True, None]),
        "description": st.sampled_from(["text", "", 3, None]),
        "base": BASE | ANY,
        "axes": st.lists(AXIS_ITEM | ANY, max_size=3) | ANY,
        "layout": LAYOUT_DOC | ANY,
        "limits": st.fixed_dictionaries(
            {}, optional={"max_cells": st.sampled_from([1, 0, -1, 5.0, 5.5, True, "5", None]), "cells": ANY}
        )
        | ANY,
        "colour": ANY,
    },
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nine times in ten, so that documents are often valid or off by one key."""
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda use_good: good if use_good else bad)


GOOD_OPTIONS = {
    "delimiter": st.sampled_from(["comma", "space"]),
    "at_start": st.booleans(),
    "target": st.sampled_from(["prompt", "negative_prompt"]),
}
GOOD_AXIS = st.fixed_dictionaries(
    {
        "param": mostly(st.sampled_from(["steps", "cfg", "seed", "prompt_sr", "setting:eta", "lora:x"]), PARAMS),
        "values": mostly(st.sampled_from(["5, 7", [1, 2], 4, 2.5, True, "a|b", ["x"]]), VALUES),
    },
    optional={
        "name": mostly(st.sampled_from(["a", "b", "steps", None]), LABELS),
        "title": mostly(st.sampled_from(["Steps", "", None]), ANY),
        "zip": mostly(st.sampled_from(["q", "r", None]), LABELS),
        "options": mostly(st.fixed_dictionaries({}, optional={**GOOD_OPTIONS, "other": ANY}), ANY),
        **{key: mostly(good, OPTION_VALUES[key]) for key, good in GOOD_OPTIONS.items()},
    },
)
GOOD_MATRIX = st.fixed_dictionaries(
    {"param": st.just("prompt_matrix")}, optional={"values": mostly(st.just("a|b"), VALUES), **GOOD_OPTIONS}
)
NEAR_DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "name": mostly(st.sampled_from(["lighthouse", "a.b c", "", None]), NAMES | ANY),
        "version": mostly(st.sampled_from([1, 1.0]), ANY),
        "description": mostly(st.just("text"), ANY),
        "base": mostly(st.just({"prompt": "a cat", "steps": 4, "override_settings": {"eta": 1}}), BASE | ANY),
        "axes": mostly(st.lists(mostly(GOOD_AXIS, AXIS_ITEM) | GOOD_MATRIX, max_size=3), ANY),
        "layout": mostly(
            st.fixed_dictionaries(
                {},
                optional={
                    "x": mostly(st.sampled_from(["a", "steps", None]), LABELS),
                    "y": mostly(st.sampled_from(["b", "q"]), LABELS),
                    "page": mostly(st.sampled_from(["a", ["b"], []]), LABELS),
                },
            ),
            LAYOUT_DOC | ANY,
        ),
        "limits": mostly(
            st.fixed_dictionaries({"max_cells": st.integers(1, 10**6)}) | st.none(),
            st.fixed_dictionaries({"max_cells": st.sampled_from([0, 5.5, True, "5", None])}) | ANY,
        ),
    },
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENT | NEAR_DOCUMENT)
@example({"version": "abc"})
@example({"axes": [{"param": "enable_hr", "values": True}]})
@example({"axes": [{"param": "steps", "values": [1]}], "layout": {"page": "steps"}})
@example({"axes": [{"param": "steps", "values": [1], "title": 3}]})
@example({"name": "x."})
@example({"name": "x\n"})
@example({"axes": [{"param": "steps"}]})
@example({"axes": [{"param": "prompt_matrix"}]})
@example({"limits": {"max_cells": 5.0}})
@example({"layout": {"page": ["a"], "pages": ["a"]}})
def test_parser_accepts_exactly_what_the_schema_allows(document):
    valid = VALIDATOR.is_valid(document)
    accepted = structural_verdict(document)
    assert accepted == valid, (parser_problems(document), [e.message for e in VALIDATOR.iter_errors(document)])


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"version": "abc"}, "version"),
        ({"axes": [{"param": "steps", "values": [1], "title": 3}]}, "axes[0].title"),
        ({"name": "x."}, "name"),
        ({"axes": [{"param": "steps"}]}, "axes[0].values"),
        ({"axes": [{"param": "steps", "values": {}}]}, "axes[0].values"),
        ({"axes": [{"param": "prompt_matrix", "options": {"delimiter": "tab"}}]}, "axes[0].options.delimiter"),
        ({"layout": {"page": ["a"], "pages": ["a"]}}, "layout.pages"),
    ],
)
def test_both_refuse_and_the_parser_names_the_field(document, field):
    assert not VALIDATOR.is_valid(document)
    assert field in [p.field for p in parser_problems(document)]


def test_the_axis_forms_the_schema_allows_parse():
    document = {
        "name": "lighthouse",
        "version": 1,
        "base": {"prompt": "a cat | red | hat", "steps": "20"},
        "axes": [
            {"param": "prompt_matrix", "delimiter": "space"},
            {"param": "enable_hr", "values": True, "title": None},
            {"param": "steps", "values": [4, 8], "name": "s", "zip": "q"},
            {"param": "cfg", "values": "5, 7", "zip": "q"},
        ],
        "layout": {"x": "q", "page": "prompt_matrix"},
        "limits": {"max_cells": 8.0},
    }
    assert VALIDATOR.is_valid(document)
    spec = spec_from_dict(document)
    assert spec.limits.max_cells == 8
    assert spec.layout.page == ["prompt_matrix"]
    assert [a.name for a in spec.axes] == ["prompt_matrix", "enable_hr", "s", "cfg_scale"]


def test_every_key_of_the_table_is_in_the_schema_with_its_description():
    schema = spec_schema()
    axis = schema["properties"]["axes"]["items"]
    for keys, properties in (
        (TOP, schema["properties"]),
        (AXIS, axis["properties"]),
        (LAYOUT, schema["properties"]["layout"]["properties"]),
        (LIMITS, schema["properties"]["limits"]["properties"]),
    ):
        assert set(properties) == set(keys)
        assert all(properties[name]["description"].startswith(key.description) for name, key in keys.items())
    assert schema["properties"]["limits"]["properties"]["max_cells"]["default"] == 1000
    assert all(check.rule in schema["description"] for check in SEMANTIC_CHECKS)
