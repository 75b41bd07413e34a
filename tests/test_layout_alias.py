"""An axis is reachable in the layout by its name, by its parameter as written and by the canonical one."""

from __future__ import annotations

import pytest

from sd_sweep.core.errors import SpecError
from sd_sweep.core.planner import build_plan
from sd_sweep.core.sheets import _dimension_of
from sd_sweep.core.spec import spec_from_dict
from tests.fakes import FakeBackend

CAPS = FakeBackend().capabilities()


def plan_with(layout: dict, axis: dict | None = None):
    axis = axis or {"param": "sd_model_checkpoint", "values": "alpha.safetensors, beta.safetensors"}
    document = {
        "base": {"prompt": "a cat"},
        "axes": [axis, {"param": "steps", "values": "10, 20"}],
        "layout": layout,
    }
    return build_plan(spec_from_dict(document), CAPS)


@pytest.mark.parametrize("written", ["sd_model_checkpoint", "checkpoint"])
def test_alias_axis_in_the_layout_by_its_parameter(written: str):
    plan = plan_with({"page": [written], "x": "steps"})
    assert plan.as_dict()["layout"] == {"x": "steps", "y": None, "page": ["checkpoint"]}


def test_named_axis_by_its_written_parameter():
    axis = {"param": "sd_model_checkpoint", "name": "model", "values": "alpha.safetensors, beta.safetensors"}
    plan = plan_with({"page": ["sd_model_checkpoint"]}, axis)
    assert plan.as_dict()["layout"]["page"] == ["model"]


def test_unknown_layout_name_is_still_refused():
    with pytest.raises(SpecError) as caught:
        plan_with({"page": ["sd_vae"]})
    assert [(p.field, p.value) for p in caught.value.problems] == [("layout.page", "sd_vae")]


def test_regrid_by_an_alias():
    dimensions = [{"name": "checkpoint", "params": ["checkpoint"], "axes": ["checkpoint"]}]
    assert _dimension_of("sd_model_checkpoint", dimensions) == "checkpoint"
