"""Every mistake on the command line is one line on stderr, exit status 2 (130 for Ctrl-C), no
traceback, checked before the first image where it can be, and no run is left "running"."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sd_sweep.core.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("diffusers")

TINY = """
name: tiny
base: {prompt: "a lighthouse", steps: 1, width: 32, height: 32, seed: 1, batch_size: 1}
axes:
  - {param: seed, values: "1-2"}
"""

LONG = """
name: long
base: {prompt: "a lighthouse at dusk", steps: 12, width: 64, height: 64, seed: 1, batch_size: 1}
axes:
  - {param: seed, values: "1-400"}
limits: {max_cells: 400}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SD_SWEEP_CACHE": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


def sweep(tmp_path: Path, *args: str, preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 - the status is what is checked
        [sys.executable, "-m", "sd_sweep", *args],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec_fn,
    )


PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1


def bound_by_file_modes() -> None:
    """In the child before exec: give up root's right to write where the file modes forbid it.

    Dropped from the bounding set (inheritable is empty), ``CAP_DAC_OVERRIDE`` is not given back by
    exec, so the CLI runs as root, reads its interpreter and code as before, and meets a read-only
    folder as any other user would.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def write_guard(folder: Path) -> Callable[[], None] | None:
    """What keeps a CLI child from writing into ``folder`` (mode 0555): nothing for a user, dropping
    ``CAP_DAC_OVERRIDE`` for root; skips the test where root cannot drop it."""
    if os.geteuid() != 0:
        return None
    if not sys.platform.startswith("linux"):
        pytest.skip("root writes read-only folders, and only Linux lets a child drop that right here")
    probe = [sys.executable, "-c", "import os, sys; os.mkdir(os.path.join(sys.argv[1], 'probe'))", str(folder)]
    try:
        done = subprocess.run(probe, preexec_fn=bound_by_file_modes, capture_output=True, check=False)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"root cannot drop CAP_DAC_OVERRIDE here: {exc}")
    assert done.returncode != 0, "the child still wrote into a read-only folder"
    assert b"PermissionError" in done.stderr, done.stderr
    return bound_by_file_modes


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str, status: int = 2) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]


def assert_never_running(folder: Path) -> None:
    state = RunStore.read_state(folder) if folder.exists() else None
    assert state is None or state["state"] != "running", state


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def finished_run(tmp_path: Path, spec: Path) -> Path:
    done = sweep(tmp_path, "run", str(spec), "--out", str(tmp_path / "runs"), "--no-grid")
    assert done.returncode == 0, done.stderr
    return tmp_path / "runs" / "tiny"


def test_out_that_cannot_hold_a_run_folder_is_one_line(tmp_path: Path, spec: Path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert_one_line_error(sweep(tmp_path, "run", str(spec), "--out", str(a_file)), "--out", "is a file")
    assert_one_line_error(sweep(tmp_path, "run", str(spec), "--out", str(a_file / "below")), "--out", "is a file")
    assert_one_line_error(sweep(tmp_path, "run", str(spec), "--out", "/proc/sd-sweep-runs"), "--out", "/proc")
    assert a_file.read_text() == "x"


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX file modes")
def test_out_on_a_read_only_folder_is_one_line(tmp_path: Path, spec: Path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        guard = write_guard(folder)
        done = sweep(tmp_path, "run", str(spec), "--out", str(folder), preexec_fn=guard)
        assert_one_line_error(done, "--out", "cannot write")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_pixel_budget_zero_is_refused_before_the_first_image(tmp_path: Path, spec: Path):
    out = tmp_path / "runs"
    done = sweep(tmp_path, "run", str(spec), "--out", str(out), "--pixel-budget", "0")
    assert_one_line_error(done, "--pixel-budget", "0")
    assert not (out / "tiny" / "images").exists()
    assert_never_running(out / "tiny")
    run_dir = finished_run(tmp_path, spec)
    assert_one_line_error(sweep(tmp_path, "grid", str(run_dir), "--pixel-budget", "0"), "--pixel-budget")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("plan.json", "[]"),
        ("plan.json", '{"plan": [1, 2]}'),
        ("plan.json", '{"plan": {"cells": [1]}}'),
        ("manifest.json", '"a string"'),
        ("manifest.json", '{"format": "sd-sweep-run/1", "cells": [1]}'),
    ],
)
def test_run_folder_with_json_that_is_not_an_object_is_one_line(tmp_path: Path, spec: Path, name: str, content: str):
    run_dir = finished_run(tmp_path, spec)
    (run_dir / name).write_text(content)
    time.sleep(0.01)
    os.utime(run_dir / name)  # newest file: a manifest.json is then what is read
    for command in (["run", str(spec), "--out", str(run_dir.parent)], ["grid", str(run_dir)], ["prune", str(run_dir)]):
        done = sweep(tmp_path, *command)
        assert_one_line_error(done, name)
    assert (run_dir / name).read_text() == content


@pytest.mark.slow
def test_second_ctrl_c_stops_at_once_and_leaves_the_run_interrupted(tmp_path: Path):
    spec = tmp_path / "long.yaml"
    spec.write_text(LONG)
    out = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "sd_sweep", "run", str(spec), "--out", str(out), "--no-grid"],
        cwd=ROOT,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    images = out / "long" / "images"
    deadline = time.monotonic() + 180
    while not (images.exists() and len(list(images.glob("*.png"))) >= 2):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted; run the same command again to resume"
    manifest = RunStore.open(out / "long").manifest
    assert manifest["state"] == "interrupted"
    done = [c for c in manifest["cells"].values() if c["state"] == "done"]
    assert len(done) >= 2
    assert all((out / "long" / c["file"]).exists() for c in done)
    assert json.loads((out / "long" / "run.json").read_text())["state"] == "interrupted"
