"""``python -m sd_sweep plan``: a dry run without torch, against a server, and over an existing run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sd_sweep import cli
from sd_sweep.backends.diffusers import catalog
from tests.api_harness import SPEC, live_api
from tests.fakes import FakeBackend
from tests.live_server import LiveServer
from tests.test_client_cli import FALLBACK_SPEC, stock_webui

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "quickstart.yaml"

WITHOUT_TORCH = (
    "import sys\n"
    "for name in ('torch', 'diffusers', 'transformers'):\n"
    "    sys.modules[name] = None  # import fails as if not installed; find_spec gives None\n"
    "import runpy\n"
    "runpy.run_module('sd_sweep', run_name='__main__', alter_sys=True)\n"
)
"""``python -c`` code running the command line where torch, diffusers and transformers cannot be imported."""


def without_torch(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cache = tmp_path / "cache"
    env = {**os.environ, "SD_SWEEP_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, *args],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert not cache.exists(), "a dry run must not build the tiny model"
    return done


def write_spec(tmp_path: Path, doc: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


# -- without torch -------------------------------------------------------------------------------


def test_plan_without_torch_prints_the_plan(tmp_path: Path):
    done = without_torch(["plan", str(EXAMPLE)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = done.stdout
    assert "quickstart: 18 cells in 6 batches on diffusers" in out
    assert "CFG scale 5, Prompt S/R oil painting, Seed 1" in out
    assert "model: tiny-sd-v1 (not loaded by the dry run" in out
    assert f"built-in table of diffusers {catalog.TABLE_VERSION}" in out
    assert "checkpoint load" not in out  # the embedded model is not a checkpoint the sweep switches
    assert "run folder sweep-runs/quickstart: nothing there yet, 18 to generate" in out


def test_the_hires_example_plans_one_first_pass_per_seed_without_torch(tmp_path: Path):
    done = without_torch(["plan", str(ROOT / "examples" / "hires.yaml")], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "hires: 16 cells in 8 batches on diffusers" in done.stdout
    assert "56 sampling steps, 2 first passes and 16 hires passes" in done.stdout


def test_plan_json_without_torch(tmp_path: Path):
    done = without_torch(["plan", str(EXAMPLE), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert len(plan["cells"]) == 18
    assert plan["estimate"]["images"] == 18
    assert plan["dry_run"]["model"] == "tiny-sd-v1"
    assert plan["dry_run"]["model_loaded"] is False
    assert "built-in table" in plan["dry_run"]["pairs_checked_with"]
    assert plan["run_folder"] == {
        "path": str(Path("sweep-runs") / "quickstart"),
        "exists": False,
        "done": 0,
        "to_generate": 18,
        "stale": 0,
    }


def test_plan_without_torch_still_refuses_pairs_and_sizes(tmp_path: Path):
    spec = write_spec(
        tmp_path,
        {
            "base": {"prompt": "a cat", "width": 60, "height": 64},
            "axes": [
                {"param": "sampler_name", "values": "Euler, Euler a"},
                {"param": "scheduler", "values": "Automatic, Karras"},
            ],
        },
    )
    done = without_torch(["plan", str(spec)], tmp_path)
    assert done.returncode == 2
    assert "  base.width: image sides must be multiples of 8 (got 60)\n" in done.stderr
    assert "Traceback" not in done.stderr
    spec.write_text(spec.read_text().replace("width: 60", "width: 64"))
    done = without_torch(["plan", str(spec)], tmp_path)
    assert done.returncode == 2
    assert (
        f"axes[1].values: sampler 'Euler a' does not support schedule type 'Karras' in diffusers "
        f"{catalog.TABLE_VERSION} (EulerAncestralDiscreteScheduler has no use_karras_sigmas) (got 'Euler a + Karras')"
    ) in done.stderr


def test_run_without_torch_is_one_line_saying_how_to_install(tmp_path: Path):
    done = without_torch(["run", str(EXAMPLE), "--out", str(tmp_path / "runs")], tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: the embedded backend needs torch")
    assert 'pip install ".[embedded]"' in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_model_size_rules_come_from_its_config_files(tmp_path: Path):
    """A diffusers folder's VAE and UNet configs give the size rules; no weights are needed."""
    model = tmp_path / "model"
    (model / "vae").mkdir(parents=True)
    (model / "unet").mkdir()
    (model / "model_index.json").write_text("{}")
    (model / "vae" / "config.json").write_text(json.dumps({"block_out_channels": [128, 256, 512, 512]}))
    (model / "unet" / "config.json").write_text(json.dumps({"block_out_channels": [320, 640, 1280, 1280]}))
    caps = catalog.DiffusersCatalog(model, installed=False).capabilities()
    assert (caps.size_multiple, caps.min_side) == (8, 64)
    assert catalog.DiffusersCatalog(None, installed=False).capabilities().min_side == 16  # the tiny model
    spec = write_spec(tmp_path, {"base": {"prompt": "a cat", "width": 32, "height": 64}})
    done = without_torch(["plan", str(spec), "--model", str(model)], tmp_path)
    assert done.returncode == 2
    assert "  base.width: " in done.stderr
    assert "between 64 and 4096" in done.stderr
    assert "(got 32)" in done.stderr
    done = without_torch(["plan", str(spec), "--model", str(tmp_path / "missing.safetensors")], tmp_path)
    assert done.returncode == 1
    missing = tmp_path / "missing.safetensors"
    assert done.stderr.strip().splitlines() == [
        f"error: model not found: {missing} (give a diffusers folder or a .safetensors/.ckpt file)"
    ]


def test_the_built_in_table_agrees_with_the_installed_diffusers():
    diffusers = pytest.importorskip("diffusers")
    if not diffusers.__version__.startswith(catalog.TABLE_VERSION):
        pytest.skip(f"the table describes diffusers {catalog.TABLE_VERSION}, this is {diffusers.__version__}")
    for sampler in catalog.SAMPLERS:
        for schedule in catalog.SCHEDULES:
            table = catalog.combination_problem(sampler, schedule, installed=False)
            installed = catalog.combination_problem(sampler, schedule, installed=True)
            assert (table is None) == (installed is None), (sampler, schedule, table, installed)


# -- on a server -------------------------------------------------------------------------------


def test_plan_url_asks_the_sweep_route(tmp_path: Path, capsys):
    with live_api(tmp_path / "server", api_auth="me:pw", auth="me:pw") as api:
        spec = write_spec(tmp_path, SPEC)
        out = ["--out", str(tmp_path / "out")]
        assert cli.main(["plan", str(spec), "--url", api.url, "--auth", "me:pw", "--json", *out]) == 0
        plan = json.loads(capsys.readouterr().out)
        assert plan["backend"] == "fake"
        assert len(plan["cells"]) == 4
        assert plan["dry_run"]["planned_by"] == f"{api.url} (/sweep/v1/plan)"
        assert plan["run_folder"]["to_generate"] == 4
        assert api.backend.calls == []
        assert api.client.jobs() == []

        assert cli.main(["plan", str(spec), "--url", api.url, "--auth", "me:pw", *out]) == 0
        text = capsys.readouterr().out
        assert text.startswith("cats: 4 cells in 4 batches on fake\n")
        assert f"planned by {api.url} (/sweep/v1/plan)" in text
        assert "model:" not in text

        bad = write_spec(tmp_path, {**SPEC, "axes": [{"param": "sampler_name", "values": "Eular, Euler"}]}, "bad.yaml")
        assert cli.main(["plan", str(bad), "--url", api.url, "--auth", "me:pw"]) == 2
        err = capsys.readouterr().err
        assert "  axes[0].values: " in err
        assert "(got 'Eular')" in err
        assert "Traceback" not in err

        assert cli.main(["plan", str(spec), "--url", api.url, "--auth", "me:no"]) == 1
        assert "HTTP 401" in capsys.readouterr().err


def test_plan_url_on_a_stock_webui_plans_against_its_catalog(tmp_path: Path, capsys):
    app, calls = stock_webui()
    with LiveServer(app) as server:
        spec = write_spec(tmp_path, FALLBACK_SPEC)
        assert cli.main(["plan", str(spec), "--url", server.url, "--json", "--out", str(tmp_path / "out")]) == 0
        plan = json.loads(capsys.readouterr().out)
        assert plan["backend"] == "sdapi"
        assert len(plan["cells"]) == 8
        assert "no /sweep/v1 routes" in plan["dry_run"]["planned_by"]

        bad = write_spec(tmp_path, {**FALLBACK_SPEC, "base": {**FALLBACK_SPEC["base"], "sampler_name": "DDIM"}})
        assert cli.main(["plan", str(bad), "--url", server.url]) == 2
        err = capsys.readouterr().err
        assert "  base.sampler_name: " in err
        assert "(got 'DDIM')" in err
        assert calls == []


# -- the run folder ----------------------------------------------------------------------------


def test_plan_counts_what_the_run_folder_holds(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_backend", lambda args: FakeBackend())
    doc = yaml.safe_load(EXAMPLE.read_text())
    spec = write_spec(tmp_path, doc)
    assert cli.main(["run", str(spec), "--no-grid"]) == 0  # into the default sweep-runs/
    capsys.readouterr()

    assert cli.main(["plan", str(spec), "--json"]) == 0
    folder = json.loads(capsys.readouterr().out)["run_folder"]
    assert folder == {
        "path": str(Path("sweep-runs") / "quickstart"),
        "exists": True,
        "done": 18,
        "to_generate": 0,
        "stale": 0,
    }

    # a changed spec: one seed dropped, one CFG scale added
    doc["axes"][0]["values"] = "5-11 (+2)"
    doc["axes"][2]["values"] = [1]
    spec = write_spec(tmp_path, doc)
    assert cli.main(["plan", str(spec), "--json"]) == 0
    folder = json.loads(capsys.readouterr().out)["run_folder"]
    assert (folder["done"], folder["to_generate"], folder["stale"]) == (9, 3, 9)
    assert cli.main(["plan", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "run folder sweep-runs/quickstart: 9 cells done (reused), 3 to generate, 9 stale images" in out

    # another --out: nothing there
    assert cli.main(["plan", str(spec), "--out", str(tmp_path / "elsewhere"), "--json"]) == 0
    folder = json.loads(capsys.readouterr().out)["run_folder"]
    assert (folder["exists"], folder["done"], folder["to_generate"], folder["stale"]) == (False, 0, 12, 0)


def test_plan_url_counts_a_downloaded_run(tmp_path: Path, capsys):
    app, _ = stock_webui()
    with LiveServer(app) as server:
        spec = write_spec(tmp_path, FALLBACK_SPEC)
        out = ["--out", str(tmp_path / "out")]
        assert cli.main(["run", str(spec), "--url", server.url, *out]) == 0
        capsys.readouterr()
        smaller = {**FALLBACK_SPEC, "axes": [FALLBACK_SPEC["axes"][0], {"param": "seed", "values": "10-11"}]}
        assert cli.main(["plan", str(write_spec(tmp_path, smaller)), "--url", server.url, "--json", *out]) == 0
        folder = json.loads(capsys.readouterr().out)["run_folder"]
        assert (folder["done"], folder["to_generate"], folder["stale"]) == (4, 0, 4)


def test_cells_made_with_another_model_are_new_cells(tmp_path: Path) -> None:
    from sd_sweep.backends.diffusers.catalog import DiffusersCatalog
    from sd_sweep.core.planner import build_plan
    from sd_sweep.core.spec import spec_from_dict

    spec = spec_from_dict({"base": {"prompt": "a cat", "seed": 1}, "axes": [{"param": "cfg_scale", "values": "5, 7"}]})
    folders = []
    for name in ("model-a", "model-b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "model_index.json").write_text("{}")
        folders.append(folder)

    def ids(model: Path | None) -> list[str]:
        return [c.id for c in build_plan(spec, DiffusersCatalog(model, installed=False).capabilities()).cells]

    assert ids(folders[0]) != ids(folders[1])
    assert ids(folders[0]) == ids(tmp_path / "model-a")
    assert set(ids(None)).isdisjoint(ids(folders[0]))
