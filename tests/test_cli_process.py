"""The command line as a user runs it: a real process on the embedded tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sd_sweep.core.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("diffusers")

LONG_SWEEP = """
name: long
base: {prompt: "a lighthouse at dusk", steps: 2, width: 32, height: 32, seed: 1, batch_size: 1}
axes:
  - {param: seed, values: "1-400"}
limits: {max_cells: 400}
"""


def sweep_process(args: list[str], cache: Path) -> subprocess.Popen:
    env = {**os.environ, "SD_SWEEP_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "sd_sweep", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_ctrl_c_stops_after_the_batch_and_the_same_command_resumes(tmp_path: Path):
    spec = tmp_path / "long.yaml"
    spec.write_text(LONG_SWEEP)
    out = tmp_path / "runs"
    cache = tmp_path / "cache"
    process = sweep_process(["run", str(spec), "--out", str(out), "--no-grid"], cache)
    images = out / "long" / "images"
    deadline = time.monotonic() + 120
    while not (images.exists() and len(list(images.glob("*.png"))) >= 3):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "stopping after the current batch" in stderr
    manifest = RunStore.open(out / "long").manifest
    assert manifest["state"] == "interrupted"
    done = [c for c in manifest["cells"].values() if c["state"] == "done"]
    assert 3 <= len(done) < 400
    assert all((out / "long" / c["file"]).exists() for c in done)
    assert "run the same command again" in stdout

    small = spec.read_text().replace('"1-400"', f'"1-{len(done) + 2}"').replace("400}", f"{len(done) + 2}}}")
    spec.write_text(small)
    again = sweep_process(["run", str(spec), "--out", str(out), "--no-grid", "--json"], cache)
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary == {**summary, "state": "finished", "generated": 2, "reused": len(done)}


def test_importing_the_engine_pulls_in_nothing_heavy():
    code = (
        "import sys, sd_sweep, sd_sweep.cli, sd_sweep.core.planner, sd_sweep.core.run, sd_sweep.core.grid, "
        "sd_sweep.core.sheets, "
        "sd_sweep.core.schema, sd_sweep.client, sd_sweep.api, sd_sweep.backends.diffusers.backend, "
        "sd_sweep.backends.webui.backend, sd_sweep.backends.sdapi; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'modules', 'gradio', 'fastapi') "
        "if m in sys.modules]; "
        "sys.exit(f'imported at import time: {heavy}' if heavy else 0)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_invalid_spec_in_a_real_process_is_one_clear_message(tmp_path: Path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("base: {prompt: x}\naxes:\n  - {param: sampler_name, values: 'Euler, Eulr'}\n")
    process = sweep_process(["plan", str(spec)], tmp_path / "cache")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "axes[0].values: unknown sampler for the diffusers backend; did you mean Euler" in stderr
    assert "Traceback" not in stderr
