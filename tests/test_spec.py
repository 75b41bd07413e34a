from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sd_sweep.core.errors import SpecError
from sd_sweep.core.schema import spec_schema
from sd_sweep.core.spec import load_spec, spec_from_dict

LIGHTHOUSE = """
name: lighthouse
base: {prompt: "a lighthouse at dusk, oil painting", negative_prompt: blurry,
       steps: 4, width: 64, height: 64, seed: 1, batch_size: 4}
axes:
  - {param: cfg_scale, values: "5-9 (+2)"}
  - {param: prompt_sr, values: [oil painting, watercolor, charcoal sketch]}
  - {param: seed, values: [1, 2]}
layout: {x: cfg_scale, y: prompt_sr, page: [seed]}
"""


def test_issue_example_parses_unchanged():
    spec = load_spec(LIGHTHOUSE)
    assert spec.name == "lighthouse"
    assert spec.batch_size == 4
    assert [a.param for a in spec.axes] == ["cfg_scale", "prompt_sr", "seed"]
    assert spec.layout.x == "cfg_scale"
    assert spec.layout.page == ["seed"]


def test_json_and_yaml_are_the_same_spec():
    yaml_spec = load_spec(LIGHTHOUSE)
    json_spec = load_spec(json.dumps(yaml_spec.source))
    assert json_spec.base == yaml_spec.base
    assert [(a.param, a.values) for a in json_spec.axes] == [(a.param, a.values) for a in yaml_spec.axes]


def test_spec_from_file(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(LIGHTHOUSE)
    assert load_spec(path).name == "lighthouse"


def test_missing_file_names_the_path(tmp_path: Path):
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value)


def test_aliases_become_canonical_names():
    spec = spec_from_dict(
        {"base": {"sampler": "Euler", "cfg": 5}, "axes": [{"param": "sd_model_checkpoint", "values": "a"}]}
    )
    assert spec.base == {"sampler_name": "Euler", "cfg_scale": 5}
    assert spec.axes[0].param == "checkpoint"


def test_every_structural_problem_is_reported_at_once():
    with pytest.raises(SpecError) as info:
        spec_from_dict(
            {
                "name": "../etc",
                "axes": [{"values": [1]}, {"param": "steps"}, "oops"],
                "layout": {"x": 3},
                "limits": {"max_cells": 0},
                "colour": "red",
            }
        )
    fields = [p.field for p in info.value.problems]
    assert fields == ["colour", "name", "axes[0].param", "axes[1].values", "axes[2]", "layout.x", "limits.max_cells"]
    assert all(p.message for p in info.value.problems)


def test_duplicate_params_get_unique_axis_names():
    spec = spec_from_dict(
        {"axes": [{"param": "prompt_sr", "values": "a, b"}, {"param": "prompt_sr", "values": "c, d"}]}
    )
    assert [a.name for a in spec.axes] == ["prompt_sr", "prompt_sr_2"]


def test_bad_yaml_names_the_line():
    with pytest.raises(SpecError) as info:
        load_spec("name: x\nbase: {prompt: [unclosed\n")
    assert "line" in info.value.problems[0].message


def test_schema_accepts_the_issue_example_and_rejects_unknown_keys():
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(load_spec(LIGHTHOUSE).source, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"axes": [{"param": "steps", "values": [1], "bogus": 1}]}, schema)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_spec_or_a_spec_error(text):
    try:
        load_spec(text + "\n")
    except SpecError as exc:
        assert exc.problems


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "name": json_values,
            "base": json_values,
            "axes": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "param": st.sampled_from(["steps", "cfg", "x", 3]),
                        "values": json_values,
                        "zip": json_values,
                    },
                )
                | json_values,
                max_size=3,
            ),
            "layout": json_values,
            "limits": json_values,
        },
    )
)
def test_any_document_gives_a_spec_or_a_spec_error(document):
    try:
        spec_from_dict(document)
    except SpecError as exc:
        assert exc.problems


def test_non_string_axis_keys_are_spec_errors():
    with pytest.raises(SpecError) as info:
        spec_from_dict({"axes": [{"param": "steps", "values": [1, 2], 3: 4}]})
    assert [(p.field, p.value) for p in info.value.problems] == [("axes[0].3", 4)]
