from __future__ import annotations

import json
from pathlib import Path

import pytest

from sd_sweep import cli
from tests.fakes import FakeBackend

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"


@pytest.fixture
def fake_cli(monkeypatch):
    backend = FakeBackend()
    monkeypatch.setattr(cli, "_backend", lambda args: backend)
    return backend


def test_plan_json_lists_cells_and_batches(fake_cli, capsys):
    assert cli.main(["plan", str(EXAMPLE), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["cells"]) == 18
    assert {"id", "params"} <= set(plan["cells"][0])
    assert plan["cells"][0]["params"]["cfg_scale"] == 5.0
    ids = {c["id"] for c in plan["cells"]}
    assert sorted(i for batch in plan["batches"] for i in batch) == sorted(ids)
    assert plan["estimate"]["images"] == 18
    assert fake_cli.calls == []


def test_plan_text_names_cells(fake_cli, capsys):
    assert cli.main(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "18 cells in 6 batches" in out
    assert "CFG scale 5, Prompt S/R oil painting, Seed 1" in out


def test_run_then_regrid(fake_cli, tmp_path, capsys):
    assert cli.main(["run", str(EXAMPLE), "--out", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert summary["generated"] == 18
    assert len(summary["grids"]) == 2
    assert cli.main(["grid", str(tmp_path / "quickstart"), "--x", "seed", "--y", "cfg_scale"]) == 0
    slices = capsys.readouterr().out.split()
    assert [Path(p).name for p in slices] == [
        "slice-prompt_sr_oil_painting.png",
        "slice-prompt_sr_watercolor.png",
        "slice-prompt_sr_charcoal_sketch.png",
    ]
    assert all(Path(p).exists() for p in slices)


def test_invalid_spec_exits_2_with_every_problem_and_no_traceback(fake_cli, tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "base: {steps: many}\naxes:\n  - {param: cfg_scale, values: '5-x'}\n  - {param: samplr, values: Euler}\n"
    )
    assert cli.main(["run", str(spec), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "base.steps" in err
    assert "'many'" in err
    assert "axes[0].values" in err
    assert "axes[1].param" in err
    assert "Traceback" not in err
    assert not (tmp_path / "sweep").exists()


def test_grid_on_a_folder_without_a_run(tmp_path, capsys):
    assert cli.main(["grid", str(tmp_path)]) == 1
    assert "no run manifest" in capsys.readouterr().err


def test_grid_with_an_unknown_axis(fake_cli, tmp_path, capsys):
    cli.main(["run", str(EXAMPLE), "--out", str(tmp_path)])
    capsys.readouterr()
    assert cli.main(["grid", str(tmp_path / "quickstart"), "--x", "steps"]) == 2
    assert "steps" in capsys.readouterr().err


def test_schema_is_json(capsys):
    assert cli.main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "axes" in schema["properties"]


def test_grid_names_zipped_axes_by_name_or_param(fake_cli, tmp_path, capsys):
    spec = tmp_path / "zip.yaml"
    spec.write_text(
        "name: zipped\n"
        "base: {prompt: a cat, steps: 2, width: 32, height: 32, seed: 1}\n"
        "axes:\n"
        "  - {param: steps, values: '2, 3', zip: q, name: st}\n"
        "  - {param: cfg_scale, values: '4, 5', zip: q}\n"
        "  - {param: seed, values: '1, 2'}\n"
        "layout: {x: seed, y: st}\n"
    )
    assert cli.main(["run", str(spec), "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["grids"]
    run_dir = str(tmp_path / "zipped")
    assert cli.main(["grid", run_dir, "--x", "st", "--y", "seed"]) == 0
    assert len(capsys.readouterr().out.split()) == 1
    assert cli.main(["grid", run_dir, "--x", "q", "--y", "steps"]) == 2
    assert "layout" in capsys.readouterr().err


def test_a_plain_run_prints_text_only_and_json_prints_one_object_only(fake_cli, tmp_path, capsys):
    assert cli.main(["run", str(EXAMPLE), "--out", str(tmp_path / "text"), "--no-grid"]) == 0
    text = capsys.readouterr().out
    assert "run folder:" in text
    assert not [line for line in text.splitlines() if line.lstrip().startswith("{")]
    assert cli.main(["run", str(EXAMPLE), "--out", str(tmp_path / "json"), "--no-grid", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["generated"] == 18
    assert "run folder:" in captured.err
