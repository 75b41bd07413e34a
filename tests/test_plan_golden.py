"""Plans pinned to saved JSON: ids, params, execution order, batches and estimates must not change.

Cell ids name the images in existing run folders, so any change to them regenerates every image
of a resumed run. Rewrite the data only for a deliberate change:

    python -m tests.test_plan_golden --write
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from sd_sweep.core.errors import SpecError
from sd_sweep.core.planner import build_plan
from sd_sweep.core.spec import spec_from_dict
from tests.fakes import FakeBackend

DATA = Path(__file__).parent / "data" / "plan-golden"
BASE = {"prompt": "a cat, photo", "negative_prompt": "blurry", "steps": 4, "width": 64, "height": 64, "seed": 1}

SPECS: dict[str, dict[str, Any]] = {
    "prompt-sr-cfg-seed": {
        "base": {**BASE, "prompt": "a lighthouse at dusk, oil painting", "batch_size": 4},
        "axes": [
            {"param": "cfg_scale", "values": "5-9 (+2)"},
            {"param": "prompt_sr", "values": ["oil painting", "watercolor", "charcoal sketch"]},
            {"param": "seed", "values": [1, 2]},
        ],
        "layout": {"x": "cfg_scale", "y": "prompt_sr", "page": ["seed"]},
    },
    "negative-sr-and-sampler": {
        "base": {**BASE, "negative_prompt": "blurry, low quality", "batch_size": 3},
        "axes": [
            {"param": "negative_prompt_sr", "values": ["blurry", "noisy", "dark"]},
            {"param": "sampler_name", "values": ["Euler", "Euler a", "DPM++ 2M"]},
            {"param": "scheduler", "values": ["Automatic", "Karras"]},
        ],
    },
    "prompt-matrix": {
        "base": {**BASE, "prompt": "a house|at night|in snow|watercolor", "batch_size": 8},
        "axes": [{"param": "prompt_matrix"}, {"param": "seed", "values": "1-2"}],
    },
    "prompt-matrix-negative-at-start": {
        "base": {**BASE, "negative_prompt": "blurry|ugly|dark", "batch_size": 2},
        "axes": [
            {
                "param": "prompt_matrix",
                "options": {"target": "negative_prompt", "at_start": True, "delimiter": "space"},
            },
            {"param": "steps", "values": "2, 3"},
        ],
    },
    "zipped-axes": {
        "base": {**BASE, "batch_size": 4},
        "axes": [
            {"param": "steps", "values": "10, 20, 30", "zip": "quality"},
            {"param": "cfg_scale", "values": "4, 6, 8", "zip": "quality"},
            {"param": "prompt_sr", "values": ["cat", "dog", "bird"]},
            {"param": "seed", "values": "1-2"},
        ],
        "layout": {"x": "quality", "y": "prompt_sr"},
    },
    "lora-weights-and-sr": {
        "base": {**BASE, "prompt": "a cat <lora:style:1> <lora:detail:0.5>", "batch_size": 8},
        "axes": [
            {"param": "lora:style", "values": "0.25, 0.5, 1"},
            {"param": "prompt_sr", "values": ["style", "other"]},
            {"param": "lora:detail", "values": "0, 1"},
            {"param": "seed", "values": "1-2"},
        ],
    },
    "random-seeds": {
        "base": {**BASE, "seed": -1, "subseed": -1, "subseed_strength": 0.3, "batch_size": 4},
        "axes": [
            {"param": "seed", "values": "-1, 5, -1, 7, -1"},
            {"param": "cfg_scale", "values": "5, 7"},
        ],
    },
    "random-base-seed-subseed-axis": {
        "base": {**BASE, "seed": -1, "batch_size": 2},
        "axes": [{"param": "subseed", "values": "-1, 3, -1"}, {"param": "subseed_strength", "values": "0.1, 0.5"}],
    },
    "checkpoint-vae-ordering": {
        "base": {**BASE, "batch_size": 4},
        "axes": [
            {"param": "cfg_scale", "values": "5, 7"},
            {"param": "vae", "values": ["vae-ft-mse.safetensors", "Automatic", "None"]},
            {"param": "checkpoint", "values": ["beta.safetensors", "alpha.safetensors", "gamma.safetensors"]},
            {"param": "seed", "values": "1-3"},
        ],
    },
    "setting-checkpoint-and-override": {
        "base": {
            **BASE,
            "batch_size": 2,
            "override_settings": {"sd_vae": "Automatic", "eta_noise_seed_delta": 31337},
        },
        "axes": [
            {"param": "setting:sd_model_checkpoint", "values": ["gamma.safetensors", "alpha.safetensors"]},
            {"param": "setting:CLIP_stop_at_last_layers", "values": "1, 2"},
            {"param": "setting:eta_noise_seed_delta", "values": ["0", "31337", "text"]},
            {"param": "seed", "values": "1-2"},
        ],
    },
    "styles": {
        "base": {**BASE, "styles": ["anime"], "batch_size": 4},
        "axes": [
            {"param": "styles", "values": ["cinematic", "anime", "cinematic, anime"]},
            {"param": "seed", "values": "1-3"},
        ],
    },
    "size-hires-estimate": {
        "base": {**BASE, "enable_hr": True, "hr_second_pass_steps": 3, "hr_upscaler": "Latent", "batch_size": 4},
        "axes": [
            {"param": "size", "values": "64x64, 64x96"},
            {"param": "hr_scale", "values": "1.5, 2"},
            {"param": "enable_hr", "values": "true, false"},
            {"param": "seed", "values": "1-3"},
        ],
    },
    "duplicate-cells": {
        "base": {**BASE, "batch_size": 8},
        "axes": [{"param": "seed", "values": "1, 1, 2"}, {"param": "cfg_scale", "values": "7, 7"}],
    },
    "flags-and-clip-skip": {
        "base": {**BASE, "clip_skip": 2, "batch_size": 8},
        "axes": [
            {"param": "tiling", "values": "true, false"},
            {"param": "restore_faces", "values": "false, true"},
            {"param": "clip_skip", "values": "1, 2"},
            {"param": "seed", "values": "1-4"},
        ],
    },
    "medium-three-axes": {
        "base": {**BASE, "prompt": "a red fox in snow, photo", "batch_size": 8},
        "axes": [
            {"param": "prompt_sr", "values": ["red fox", "wolf", "bear", "owl", "deer"]},
            {"param": "cfg_scale", "values": "1-10"},
            {"param": "seed", "values": "1-6"},
        ],
    },
    "error-search-term-missing": {
        "base": {**BASE, "prompt": "a cat <lora:style:1>", "batch_size": 2},
        "axes": [
            {"param": "prompt", "values": ["a cat <lora:style:1>", "a dog", "a cat"]},
            {"param": "prompt_sr", "values": ["cat", "fox"]},
            {"param": "lora:style", "values": "0.5, 1"},
        ],
    },
}

CAPS = FakeBackend().capabilities()


def plan_data(document: dict[str, Any]) -> dict[str, Any]:
    """The plan as JSON data, with seeds drawn from a fixed generator."""
    spec = spec_from_dict({**document, "name": "golden"})
    try:
        plan = build_plan(spec, CAPS, rng=random.Random(1234))
    except SpecError as exc:
        return {"problems": [[p.field, p.value, p.message] for p in exc.problems]}
    return json.loads(json.dumps(plan.as_dict()))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_plan_matches_saved_data(name: str) -> None:
    expected = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    actual = plan_data(SPECS[name])
    if "cells" in expected:
        assert [c["id"] for c in actual["cells"]] == [c["id"] for c in expected["cells"]]
        assert actual["cells"] == expected["cells"]
        assert [list(c["params"]) for c in actual["cells"]] == [list(c["params"]) for c in expected["cells"]]
        assert actual["batches"] == expected["batches"]
    assert actual == expected


def test_every_spec_has_saved_data_and_no_data_is_stale() -> None:
    assert sorted(p.stem for p in DATA.glob("*.json")) == sorted(SPECS)


def test_saved_seed_resolutions_give_the_same_plan_with_any_generator() -> None:
    document = SPECS["random-seeds"]
    expected = json.loads((DATA / "random-seeds.json").read_text(encoding="utf-8"))
    spec = spec_from_dict({**document, "name": "golden"})
    plan = build_plan(spec, CAPS, seed_resolutions=expected["seed_resolutions"], rng=random.Random(99))
    assert json.loads(json.dumps(plan.as_dict())) == expected


def _write() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    for name, document in SPECS.items():
        text = json.dumps(plan_data(document), indent=1) + "\n"
        (DATA / f"{name}.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.test_plan_golden --write")
    _write()
