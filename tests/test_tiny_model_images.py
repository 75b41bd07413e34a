"""The tiny model's pictures change visibly along every axis of the quickstart, and with steps and sampler.

A grid whose neighbouring cells look alike reads as broken. The measure is the mean absolute
difference of two cells' RGB pixels, in grey levels (0-255). The same request generated alone or in a
batch differs by less than 0.5 (test_diffusers_backend.py), and the earlier tiny model, whose
quickstart grid looked like one picture repeated, had 2-3 between CFG or prompt neighbours; at
``VISIBLE`` smooth colour areas visibly shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sd_sweep.core.plan import Cell
from sd_sweep.core.run import RunResult, run_sweep
from sd_sweep.core.spec import load_spec, parse_text

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

# the tiny model built into a temporary cache, and the backend on it, on one CPU thread
from tests.test_diffusers_backend import backend, model_dir  # noqa: E402, F401

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:__array:DeprecationWarning")]

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
VISIBLE = 5.0


def pixels(run_dir: Path, cell: Cell) -> np.ndarray:
    with Image.open(run_dir / "images" / f"{cell.id}.png") as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def neighbour_differences(result: RunResult, run_dir: Path, axis: str, **where: Any) -> dict[str, float]:
    """Mean absolute pixel difference of every two cells next to each other along ``axis``.

    ``where`` keeps the cells with those parameter values only.
    """
    by_coords = {tuple(sorted(cell.coords.items())): cell for cell in result.plan.cells}
    differences = {}
    for cell in result.plan.cells:
        if any(cell.params[key] != value for key, value in where.items()):
            continue
        other = by_coords.get(tuple(sorted({**cell.coords, axis: cell.coords[axis] + 1}.items())))
        if other is not None:
            pair = f"{cell.labels[axis]} -> {other.labels[axis]} ({cell.id} -> {other.id})"
            differences[pair] = float(np.abs(pixels(run_dir, cell) - pixels(run_dir, other)).mean())
    return differences


def run(spec: Any, on: Any, run_dir: Path) -> RunResult:
    result = run_sweep(spec, on, run_dir, draw_grids=False)
    assert result.state == "finished"
    return result


def assert_visible(differences: dict[str, float], count: int) -> None:
    assert len(differences) == count
    faint = {pair: round(value, 1) for pair, value in differences.items() if value < VISIBLE}
    assert not faint, f"neighbours that look alike: {faint}"


@pytest.fixture(scope="module")
def quickstart(backend: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:  # noqa: F811
    run_dir = tmp_path_factory.mktemp("runs") / "quickstart"
    return run(load_spec(QUICKSTART), backend, run_dir), run_dir


@pytest.mark.parametrize(("axis", "pairs"), [("cfg_scale", 2 * 3 * 2), ("prompt_sr", 3 * 2 * 2), ("seed", 3 * 3)])
def test_quickstart_neighbours_differ(quickstart: tuple[RunResult, Path], axis: str, pairs: int) -> None:
    result, run_dir = quickstart
    assert [d.name for d in result.plan.dimensions] == ["cfg_scale", "prompt_sr", "seed"]
    assert_visible(neighbour_differences(result, run_dir, axis), pairs)


def test_steps_and_samplers_change_the_picture(backend: Any, tmp_path: Path) -> None:  # noqa: F811
    """Samplers are compared at the quickstart's 4 steps.

    With more steps the deterministic samplers converge on one picture (DPM++ 2M and Heun at 8 steps
    differ by about 4), as with a trained model.
    """
    document = parse_text(QUICKSTART.read_text(encoding="utf-8"))
    document["axes"] = [
        {"param": "steps", "values": "2, 4, 8"},
        {"param": "sampler_name", "values": ["Euler a", "DPM++ 2M", "Heun", "DDIM", "UniPC", "DPM2 a"]},
    ]
    document["layout"] = {"x": "steps", "y": "sampler_name"}
    run_dir = tmp_path / "steps"
    result = run(load_spec(document), backend, run_dir)
    assert_visible(neighbour_differences(result, run_dir, "steps"), 2 * 6)
    assert_visible(neighbour_differences(result, run_dir, "sampler_name", steps=4), 5)
