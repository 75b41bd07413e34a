from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sd_sweep.core.errors import SpecError
from sd_sweep.core.planner import build_plan
from sd_sweep.core.spec import spec_from_dict
from tests.fakes import FakeBackend

CAPS = FakeBackend().capabilities()


def plan_of(document, **kw):
    return build_plan(spec_from_dict(document), CAPS, **kw)


def problems_of(document):
    with pytest.raises(SpecError) as info:
        plan_of(document)
    return [(p.field, p.value) for p in info.value.problems]


BASE = {"prompt": "a cat, photo", "negative_prompt": "blurry", "steps": 4, "width": 64, "height": 64, "seed": 1}


def test_lighthouse_cells_batches_and_params():
    plan = plan_of(
        {
            "base": {**BASE, "prompt": "a lighthouse at dusk, oil painting", "batch_size": 4},
            "axes": [
                {"param": "cfg_scale", "values": "5-9 (+2)"},
                {"param": "prompt_sr", "values": ["oil painting", "watercolor", "charcoal sketch"]},
                {"param": "seed", "values": [1, 2]},
            ],
            "layout": {"x": "cfg_scale", "y": "prompt_sr", "page": ["seed"]},
        }
    )
    assert len(plan.cells) == 18
    assert {c.params["cfg_scale"] for c in plan.cells} == {5.0, 7.0, 9.0}
    assert plan.cells[2].params["prompt"] == "a lighthouse at dusk, watercolor"
    assert all(len(b) <= 4 for b in plan.batches)
    assert sorted(i for b in plan.batches for i in b) == sorted(c.id for c in plan.cells)
    for batch in plan.batches:
        assert len({plan.cell(i).params["cfg_scale"] for i in batch}) == 1
    assert plan.estimate["batches"] == len(plan.batches) == 6


def test_cells_that_differ_in_anything_but_prompt_and_seed_are_never_batched():
    plan = plan_of(
        {
            "base": {**BASE, "batch_size": 8},
            "axes": [
                {"param": "steps", "values": "2, 3"},
                {"param": "sampler_name", "values": ["Euler", "Euler a"]},
                {"param": "negative_prompt", "values": ["x", "y"]},
                {"param": "seed", "values": "1-3"},
            ],
        }
    )
    for batch in plan.batches:
        shared = {(plan.cell(i).params["steps"], plan.cell(i).params["sampler_name"]) for i in batch}
        assert len(shared) == 1
    assert len(plan.batches) == 4
    assert all(len(b) == 6 for b in plan.batches)


def test_prompts_with_different_network_tags_are_not_batched():
    plan = plan_of(
        {
            "base": {**BASE, "prompt": "a cat <lora:style:1>", "batch_size": 8},
            "axes": [{"param": "lora:style", "values": "0.5, 1"}, {"param": "seed", "values": "1-2"}],
        }
    )
    assert len(plan.batches) == 2
    for batch in plan.batches:
        assert len({plan.cell(i).params["prompt"] for i in batch}) == 1


def test_lora_weight_and_name_axes_compose():
    plan = plan_of(
        {
            "base": {**BASE, "prompt": "a cat <lora:alpha:1> <lora:alpha2:0.3>"},
            "axes": [
                {"param": "lora:alpha", "values": "0.25, 0.75"},
                {"param": "prompt_sr", "values": "<lora:alpha:, <lora:beta:"},
            ],
        }
    )
    prompts = [c.params["prompt"] for c in plan.cells]
    assert prompts == [
        "a cat <lora:alpha:0.25> <lora:alpha2:0.3>",
        "a cat <lora:beta:0.25> <lora:alpha2:0.3>",
        "a cat <lora:alpha:0.75> <lora:alpha2:0.3>",
        "a cat <lora:beta:0.75> <lora:alpha2:0.3>",
    ]


def test_checkpoint_loads_never_exceed_distinct_checkpoints_whatever_the_axis():
    for position in range(3):
        axes = [{"param": "seed", "values": "1-3"}, {"param": "cfg_scale", "values": "5, 7"}]
        axes.insert(
            position, {"param": "checkpoint", "values": "alpha.safetensors, beta.safetensors, gamma.safetensors"}
        )
        plan = plan_of({"base": {**BASE, "batch_size": 2}, "axes": axes})
        order = [plan.cell(i).params["checkpoint"] for b in plan.batches for i in b]
        switches = 1 + sum(1 for a, b in itertools.pairwise(order) if a != b)
        assert switches == 3
        assert plan.estimate["checkpoint_loads"] == 3


def test_vae_switches_are_minimised_within_each_checkpoint():
    plan = plan_of(
        {
            "base": BASE,
            "axes": [
                {"param": "vae", "values": "None, vae-ft-mse.safetensors"},
                {"param": "checkpoint", "values": "alpha.safetensors, beta.safetensors"},
                {"param": "seed", "values": "1-2"},
            ],
        }
    )
    assert plan.estimate["checkpoint_loads"] == 2
    assert plan.estimate["vae_loads"] == 4


def test_random_seeds_are_resolved_once_and_reused():
    document = {"base": {**BASE, "seed": -1}, "axes": [{"param": "cfg_scale", "values": "5, 7"}]}
    first = plan_of(document, rng=random.Random(1))
    seeds = {c.params["seed"] for c in first.cells}
    assert len(seeds) == 1
    assert -1 not in seeds
    again = plan_of(document, seed_resolutions=first.seed_resolutions, rng=random.Random(2))
    assert [c.params for c in again.cells] == [c.params for c in first.cells]
    assert [c.id for c in again.cells] == [c.id for c in first.cells]


def test_random_seed_axis_values_each_get_their_own_seed():
    plan = plan_of({"base": BASE, "axes": [{"param": "seed", "values": "-1, -1, 5"}]}, rng=random.Random(3))
    seeds = [c.params["seed"] for c in plan.cells]
    assert seeds[2] == 5
    assert seeds[0] != seeds[1]
    assert len({c.id for c in plan.cells}) == 3


def test_adding_a_value_keeps_the_ids_of_existing_cells():
    small = plan_of(
        {"base": BASE, "axes": [{"param": "cfg_scale", "values": "5, 7"}, {"param": "seed", "values": "1, 2"}]}
    )
    large = plan_of(
        {"base": BASE, "axes": [{"param": "cfg_scale", "values": "5, 7, 9"}, {"param": "seed", "values": "1, 2"}]}
    )
    assert {c.id for c in small.cells} < {c.id for c in large.cells}


def test_zipped_axes_advance_together():
    plan = plan_of(
        {
            "base": BASE,
            "axes": [
                {"param": "steps", "values": "2, 4, 6", "zip": "quality"},
                {"param": "cfg_scale", "values": "3, 5, 7", "zip": "quality"},
                {"param": "seed", "values": "1, 2"},
            ],
            "layout": {"x": "quality", "y": "seed"},
        }
    )
    assert len(plan.cells) == 6
    assert {(c.params["steps"], c.params["cfg_scale"]) for c in plan.cells} == {(2, 3.0), (4, 5.0), (6, 7.0)}
    assert plan.dimensions[0].labels == ["2 / 3", "4 / 5", "6 / 7"]


def test_zipped_axes_of_different_lengths_are_an_error():
    assert problems_of(
        {
            "base": BASE,
            "axes": [{"param": "steps", "values": "2, 4", "zip": "q"}, {"param": "cfg", "values": "3", "zip": "q"}],
        }
    ) == [("axes[0].zip", "q")]


def test_prompt_matrix_axis_combines_with_other_axes():
    plan = plan_of(
        {
            "base": {**BASE, "prompt": "a cat|red|hat"},
            "axes": [{"param": "prompt_matrix"}, {"param": "seed", "values": "1, 2"}],
        }
    )
    prompts = [c.params["prompt"] for c in plan.cells if c.params["seed"] == 1]
    assert prompts == ["a cat", "a cat, red", "a cat, hat", "a cat, red, hat"]
    assert plan.dimensions[0].labels == ["(base)", "red", "hat", "red + hat"]


def test_negative_prompt_matrix_with_space_delimiter_at_start():
    plan = plan_of(
        {
            "base": {**BASE, "negative_prompt": "ugly|blurry"},
            "axes": [{"param": "prompt_matrix", "target": "negative_prompt", "delimiter": "space", "at_start": True}],
        }
    )
    assert [c.params["negative_prompt"] for c in plan.cells] == ["ugly", "blurry ugly"]


def test_prompt_sr_replaces_in_prompt_and_negative_prompt_like_the_builtin():
    plan = plan_of(
        {"base": {**BASE, "negative_prompt": "no cat"}, "axes": [{"param": "prompt_sr", "values": "cat, dog"}]}
    )
    assert [(c.params["prompt"], c.params["negative_prompt"]) for c in plan.cells] == [
        ("a cat, photo", "no cat"),
        ("a dog, photo", "no dog"),
    ]


def test_settings_and_size_axes():
    plan = plan_of(
        {
            "base": {**BASE, "override_settings": {"eta_noise_seed_delta": 31337}},
            "axes": [
                {"param": "setting:CLIP_stop_at_last_layers", "values": "1, 2"},
                {"param": "size", "values": "64x64, 128x64"},
            ],
        }
    )
    assert plan.cells[-1].params["override_settings"] == {"eta_noise_seed_delta": 31337, "CLIP_stop_at_last_layers": 2}
    assert (plan.cells[-1].params["width"], plan.cells[-1].params["height"]) == (128, 64)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"axes": [{"param": "stepz", "values": "1"}]}, [("axes[0].param", "stepz")]),
        ({"axes": [{"param": "steps", "values": "1-x"}]}, [("axes[0].values", "1-x")]),
        ({"base": {**BASE, "steps": "many"}}, [("base.steps", "many")]),
        ({"axes": [{"param": "prompt_sr", "values": "zebra, horse"}]}, [("axes[0].values", "zebra")]),
        ({"axes": [{"param": "sampler_name", "values": "Euler, Eulr"}]}, [("axes[0].values", "Eulr")]),
        ({"axes": [{"param": "checkpoint", "values": "missing.ckpt"}]}, [("axes[0].values", "missing.ckpt")]),
        ({"axes": [{"param": "vae", "values": "nope.pt"}]}, [("axes[0].values", "nope.pt")]),
        ({"axes": [{"param": "width", "values": "64, 65"}]}, [("axes[0].values", 65)]),
        ({"base": {**BASE, "height": 100000}}, [("base.height", 100000), ("base.height", 100000)]),
        ({"axes": [{"param": "lora:missing", "values": "1"}]}, [("axes[0].param", "lora:missing")]),
        ({"layout": {"x": "steps"}}, [("layout.x", "steps")]),
    ],
)
def test_validation_errors_name_field_and_value(document, expected):
    document = {"base": BASE, **document}
    found = problems_of(document)
    for item in expected:
        assert item in found
    assert len(found) == len(expected)


def test_cell_limit_is_explicit_and_can_be_raised():
    document = {"base": BASE, "axes": [{"param": "seed", "values": "1-40"}, {"param": "steps", "values": "1-30"}]}
    assert problems_of(document) == [("limits.max_cells", 1000)]
    assert len(plan_of({**document, "limits": {"max_cells": 1200}}).cells) == 1200


def test_backend_without_a_parameter_refuses_it():
    from sd_sweep.core.ports import Capabilities

    caps = Capabilities(name="small", params=frozenset({"prompt", "seed", "steps"}))
    with pytest.raises(SpecError) as info:
        build_plan(spec_from_dict({"base": {"prompt": "x"}, "axes": [{"param": "cfg_scale", "values": "1,2"}]}), caps)
    assert info.value.problems[0].field == "axes[0].param"
    assert "small backend" in info.value.problems[0].message


axis_param = st.sampled_from(
    [
        "steps",
        "cfg_scale",
        "seed",
        "sampler_name",
        "prompt_sr",
        "size",
        "checkpoint",
        "lora:a",
        "setting:x",
        "nope",
        "prompt_matrix",
    ]
)
axis_values = st.one_of(
    st.text(max_size=30),
    st.lists(
        st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=8), st.booleans(), st.none()),
        max_size=4,
    ),
    st.integers(),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.fixed_dictionaries({"param": axis_param, "values": axis_values}), max_size=3),
    st.dictionaries(
        st.sampled_from(["steps", "prompt", "width", "seed", "batch_size", "cfg_scale", "size"]),
        axis_values,
        max_size=3,
    ),
)
def test_planning_raises_nothing_but_spec_errors(axes, base):
    try:
        plan = plan_of({"base": base, "axes": axes})
    except SpecError as exc:
        assert exc.problems
        assert all(p.field for p in exc.problems)
    else:
        assert len(plan.cells) == len({c.id for c in plan.cells})


def test_random_seeds_survive_renaming_the_axis_and_inserting_a_value():
    first = plan_of({"base": BASE, "axes": [{"param": "seed", "values": "-1, -1"}]}, rng=random.Random(4))
    renamed = plan_of(
        {"base": BASE, "axes": [{"param": "seed", "values": "-1, -1", "name": "s"}]},
        seed_resolutions=first.seed_resolutions,
        rng=random.Random(5),
    )
    assert [c.id for c in renamed.cells] == [c.id for c in first.cells]
    assert [c.params["seed"] for c in renamed.cells] == [c.params["seed"] for c in first.cells]
    inserted = plan_of(
        {"base": BASE, "axes": [{"param": "seed", "values": "7, -1, -1"}]},
        seed_resolutions=first.seed_resolutions,
        rng=random.Random(6),
    )
    assert {c.id for c in first.cells} < {c.id for c in inserted.cells}


def test_checkpoint_as_a_setting_axis_is_the_checkpoint_parameter():
    plan = plan_of(
        {
            "base": BASE,
            "axes": [
                {"param": "seed", "values": "1-3"},
                {"param": "setting:sd_model_checkpoint", "values": "alpha.safetensors, beta.safetensors"},
            ],
        }
    )
    assert plan.estimate["checkpoint_loads"] == 2
    assert problems_of(
        {"base": BASE, "axes": [{"param": "setting:sd_model_checkpoint", "values": "nope.safetensors"}]}
    ) == [("axes[0].values", "nope.safetensors")]


ZIPPED = [
    {"param": "steps", "values": "2, 3", "zip": "q", "name": "st"},
    {"param": "cfg_scale", "values": "4, 5", "zip": "q"},
    {"param": "seed", "values": "1, 2"},
]


@pytest.mark.parametrize(
    "layout",
    [{"x": "q", "y": "st"}, {"x": "st", "y": "cfg_scale"}, {"x": "seed", "page": ["q", "cfg_scale"]}],
)
def test_layout_may_name_a_zipped_dimension_only_once(layout):
    assert [f for f, _ in problems_of({"base": BASE, "axes": ZIPPED, "layout": layout})] == ["layout"]


def test_zip_group_named_like_another_axis_is_an_error():
    axes = [
        {"param": "steps", "values": "2, 3", "zip": "seed"},
        {"param": "cfg_scale", "values": "4, 5", "zip": "seed"},
        {"param": "seed", "values": "1, 2"},
    ]
    assert problems_of({"base": BASE, "axes": axes}) == [("axes[0].zip", "seed")]


def test_base_size_with_width_or_height_is_an_error():
    assert problems_of({"base": {**BASE, "size": "128x128"}}) == [("base.size", "128x128")]


def test_prompt_matrix_with_too_many_parts_is_a_spec_error():
    text = "a cat" + "|x" * 20
    assert problems_of({"base": BASE, "axes": [{"param": "prompt_matrix", "values": text}]}) == [
        ("axes[0].values", text)
    ]


def test_a_prompt_matrix_and_a_prompt_axis_on_one_text_are_an_error():
    document = {
        "base": {**BASE, "prompt": "a cat|red"},
        "axes": [{"param": "prompt", "values": ["a dog|blue", "a cow|green"]}, {"param": "prompt_matrix"}],
    }
    assert problems_of(document) == [("axes[1].param", "prompt_matrix")]
    negative = {**document, "axes": [document["axes"][0], {"param": "prompt_matrix", "target": "negative_prompt"}]}
    negative["base"] = {**BASE, "negative_prompt": "ugly|blurry"}
    assert len(plan_of(negative).cells) == 4


def test_checkpoint_in_override_settings_is_the_checkpoint_parameter():
    plan = plan_of(
        {
            "base": {
                **BASE,
                "override_settings": {"sd_model_checkpoint": "beta.safetensors", "eta_noise_seed_delta": 1},
            },
            "axes": [{"param": "seed", "values": "1, 2"}],
        }
    )
    assert {c.params["checkpoint"] for c in plan.cells} == {"beta.safetensors"}
    assert plan.cells[0].params["override_settings"] == {"eta_noise_seed_delta": 1}
    assert problems_of({"base": {**BASE, "override_settings": {"sd_model_checkpoint": "nope.ckpt"}}}) == [
        ("base.checkpoint", "nope.ckpt")
    ]
    twice = {"base": {**BASE, "checkpoint": "alpha.safetensors", "override_settings": {"sd_model_checkpoint": "b"}}}
    assert problems_of(twice) == [("base.override_settings.sd_model_checkpoint", "b")]


def test_other_spellings_the_backend_accepts_become_its_names():
    """A sampler alias or a schedule type's name plans as the choice it spells (Capabilities.spellings):
    the cells, their ids and labels use the host's name, so the same sweep spelt another way reuses them."""
    from dataclasses import replace

    caps = replace(
        CAPS,
        spellings={"sampler_name": {"k_euler_a": "Euler a"}, "scheduler": {"karras": "Karras"}},
    )
    document = {
        "base": {**BASE, "scheduler": "karras"},
        "axes": [{"param": "sampler_name", "values": ["k_euler_a", "Euler"]}],
    }
    plan = build_plan(spec_from_dict(document), caps)
    assert [c.params["sampler_name"] for c in plan.cells] == ["Euler a", "Euler"]
    assert {c.params["scheduler"] for c in plan.cells} == {"Karras"}
    assert plan.dimensions[0].labels == ["Euler a", "Euler"]
    canonical = {**document, "base": {**BASE, "scheduler": "Karras"}}
    canonical["axes"] = [{"param": "sampler_name", "values": ["Euler a", "Euler"]}]
    assert [c.id for c in build_plan(spec_from_dict(canonical), caps).cells] == [c.id for c in plan.cells]
