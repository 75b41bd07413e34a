"""A spec with several mistakes reports all of them in one go, each with field, value and a hint."""

from __future__ import annotations

import pytest

from sd_sweep.core.errors import SpecError
from sd_sweep.core.planner import build_plan
from sd_sweep.core.spec import spec_from_dict
from tests.fakes import FakeBackend

CAPS = FakeBackend().capabilities()


def problems_of(document: dict) -> list[tuple[str, object, str]]:
    with pytest.raises(SpecError) as caught:
        build_plan(spec_from_dict(document), CAPS)
    return [(p.field, p.value, p.message) for p in caught.value.problems]


def test_every_mistake_is_reported_at_once():
    found = problems_of(
        {
            "colour": "red",
            "base": {"prompt": "a cat", "widht": 512},
            "axes": [{"param": "prompt_sr", "values": "dog, bird"}, {"param": "cfg_scale", "values": "5, x"}],
            "layout": {"x": "cfgg", "page": ["nope", "nope2"]},
        }
    )
    fields = [(field, value) for field, value, _ in found]
    assert ("colour", "red") in fields
    assert ("base.widht", 512) in fields
    assert ("axes[1].values", "x") in fields
    assert ("layout.x", "cfgg") in fields
    assert ("layout.page", "nope") in fields
    assert ("layout.page", "nope2") in fields
    assert ("axes[0].values", "dog") in fields
    assert len(found) == 7


def test_base_typo_is_an_unknown_parameter_with_a_suggestion():
    [(field, value, message)] = problems_of({"base": {"prompt": "a cat", "widht": 512}, "axes": []})
    assert (field, value) == ("base.widht", 512)
    assert message == "unknown parameter; did you mean width?"


def test_unknown_top_level_key_alone_is_still_refused():
    [(field, value, message)] = problems_of({"colour": "red", "base": {"prompt": "a cat"}, "axes": []})
    assert (field, value) == ("colour", "red")
    assert message.startswith("unknown key")


def test_missing_search_term_is_reported_with_other_problems():
    found = problems_of(
        {"base": {"prompt": "a cat", "steps": 0}, "axes": [{"param": "prompt_sr", "values": "dog, bird"}]}
    )
    fields = [field for field, _, _ in found]
    assert "base.steps" in fields
    assert ("axes[0].values", "dog", "search term not found in the prompt or negative prompt") in found


def test_search_term_a_prompt_axis_brings_in_is_not_refused_early():
    plan = build_plan(
        spec_from_dict(
            {
                "base": {"prompt": "a cat"},
                "axes": [
                    {"param": "prompt", "values": ["a dog", "a dog again"]},
                    {"param": "prompt_sr", "values": "dog, bird"},
                ],
            }
        ),
        CAPS,
    )
    assert len(plan.cells) == 4
