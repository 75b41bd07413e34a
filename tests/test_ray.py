"""One sweep on a local Ray pool (2 CPUs): same images as a local run, faults and Ctrl-C lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from sd_sweep import cli
from sd_sweep.core.errors import BackendError
from sd_sweep.core.ports import GeneratedImage, GenerationRequest, StepCallback, StopSignal
from sd_sweep.core.run import RunObserver, run_sweep
from sd_sweep.core.spec import spec_from_dict
from sd_sweep.core.store import LOG, RunStore
from tests.fakes import FakeBackend
from tests.live_server import LiveServer

ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install "sd-webui-sweep[ray]"')

from sd_sweep.backends.ray.pool import RayPool, WorkerSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


class SlowBackend(FakeBackend):
    """The fake backend, ``seconds`` per batch; ``fail`` makes every batch a backend error."""

    def __init__(self, seconds: float, fail: bool = False) -> None:
        super().__init__()
        self.seconds = seconds
        self.fail = fail

    def generate(
        self, request: GenerationRequest, on_step: StepCallback | None = None, stop: StopSignal | None = None
    ) -> list[GeneratedImage]:
        time.sleep(self.seconds)
        if self.fail:
            msg = "out of memory"
            raise RuntimeError(msg)
        return super().generate(request, on_step, stop)


@dataclass(frozen=True)
class Slow:
    seconds: float = 0.1
    fail: bool = False

    def __call__(self) -> SlowBackend:
        return SlowBackend(self.seconds, self.fail)


FAKE_DOC: dict[str, Any] = {
    "name": "pool",
    "base": {"prompt": "a cat", "steps": 2, "width": 16, "height": 16, "seed": 1, "batch_size": 2},
    "axes": [
        {"param": "checkpoint", "values": ["alpha.safetensors", "beta.safetensors"]},
        {"param": "cfg_scale", "values": "1-6"},
        {"param": "seed", "values": "1-2"},
    ],
}


def log_counts(run_dir: Path) -> Counter[str]:
    """How often each cell was recorded done in the cell log (exactly once is the goal)."""
    lines = (run_dir / LOG).read_text().splitlines()
    return Counter(json.loads(line)["id"] for line in lines if json.loads(line)["state"] == "done")


def fake_pool(n: int = 2, seconds: float = 0.1, fail: bool = False) -> RayPool:
    return RayPool([WorkerSpec(f"w{i}", Slow(seconds, fail)) for i in range(n)], backoff=0.2)


def test_fake_sweep_on_two_actors_is_the_local_run(tmp_path: Path):
    spec = spec_from_dict(FAKE_DOC)
    local = run_sweep(spec, FakeBackend(), tmp_path / "local")
    with fake_pool() as pool:
        result = run_sweep(spec, FakeBackend(), tmp_path / "ray", dispatcher=pool)
    assert result.state == "finished"
    assert sorted(result.generated) == sorted(local.generated)
    assert log_counts(tmp_path / "ray") == Counter({c.id: 1 for c in local.plan.cells})
    for cell in local.plan.cells:
        a = Image.open(tmp_path / "local" / "images" / f"{cell.id}.png")
        b = Image.open(tmp_path / "ray" / "images" / f"{cell.id}.png")
        assert a.tobytes() == b.tobytes()
        assert a.info["parameters"] == b.info["parameters"]
    assert [p.name for p in result.grids] == [p.name for p in local.grids]
    # both actors worked, and checkpoint loads stay within checkpoints + actors
    assert set(pool.stats.batches) == {"w0", "w1"}
    assert pool.stats.loads <= 2 + 2
    # resume: nothing left to do
    with fake_pool() as pool:
        again = run_sweep(spec, FakeBackend(), tmp_path / "ray", dispatcher=pool)
    assert again.generated == []
    assert len(again.reused) == len(local.plan.cells)


def test_killing_an_actor_mid_run_still_finishes_every_cell(tmp_path: Path):
    spec = spec_from_dict(FAKE_DOC)

    class KillAfterTwo(RunObserver):
        def __init__(self, pid: int) -> None:
            self.pid, self.finished_batches = pid, 0

        def batch_finished(self, number: int, cells: list, saved: int) -> None:
            self.finished_batches += 1
            if self.finished_batches == 2:
                os.kill(self.pid, signal.SIGKILL)

    with fake_pool(seconds=0.2) as pool:
        observer = KillAfterTwo(pool.pids()["w0"])
        result = run_sweep(spec, FakeBackend(), tmp_path / "run", dispatcher=pool, observer=observer)
    assert result.state == "finished"
    assert pool.stats.faults.get("w0", 0) >= 1
    assert log_counts(tmp_path / "run") == Counter({c.id: 1 for c in result.plan.cells})
    assert RunStore.open(tmp_path / "run").done_ids() == {c.id for c in result.plan.cells}


def test_interrupt_stops_handing_out_work_and_leaves_a_resumable_run(tmp_path: Path):
    spec = spec_from_dict(FAKE_DOC)
    stop = StopSignal()

    class StopAfterOne(RunObserver):
        def batch_finished(self, number: int, cells: list, saved: int) -> None:
            stop.interrupt()

    with fake_pool(seconds=0.2) as pool:
        first = run_sweep(spec, FakeBackend(), tmp_path / "run", dispatcher=pool, stop=stop, observer=StopAfterOne())
        assert first.state == "interrupted"
        assert 0 < len(first.generated) < len(first.plan.cells)
        second = run_sweep(spec, FakeBackend(), tmp_path / "run", dispatcher=pool)
    assert second.state == "finished"
    assert sorted(first.generated + second.generated) == sorted(c.id for c in first.plan.cells)
    assert log_counts(tmp_path / "run") == Counter({c.id: 1 for c in first.plan.cells})


def test_a_backend_error_fails_the_run_and_records_the_failed_cells(tmp_path: Path):
    spec = spec_from_dict(FAKE_DOC)
    with fake_pool(seconds=0.01, fail=True) as pool, pytest.raises(BackendError, match="out of memory"):
        run_sweep(spec, FakeBackend(), tmp_path / "run", dispatcher=pool)
    store = RunStore.open(tmp_path / "run")
    assert store.state == "failed"
    failed = [i for i, e in store.cells.items() if e["state"] == "failed"]
    assert failed
    assert all("out of memory" in store.cells[i]["error"] for i in failed)


# -- the embedded backend on two actors ------------------------------------------------------


TINY_DOC: dict[str, Any] = {
    "name": "tiny",
    "base": {"prompt": "a cat", "steps": 3, "width": 64, "height": 64, "seed": 5, "batch_size": 2},
    "axes": [{"param": "cfg_scale", "values": "5, 9"}, {"param": "seed", "values": "5-6"}],
}


def test_tiny_model_on_two_actors_gives_the_local_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from sd_sweep.backends.diffusers import tiny_model
    from sd_sweep.backends.diffusers.backend import DiffusersBackend

    model = tiny_model.ensure_tiny_model(tmp_path / "model")
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(TINY_DOC))
    spec = spec_from_dict(TINY_DOC)
    local = run_sweep(spec, DiffusersBackend(model, device="cpu"), tmp_path / "local", draw_grids=False)
    argv = ["run", str(spec_path), "--ray", "--ray-actors", "2", "--model", str(model), "--device", "cpu"]
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 0
    run_dir = tmp_path / "out" / "tiny"
    assert log_counts(run_dir) == Counter({c.id: 1 for c in local.plan.cells})
    for cell in local.plan.cells:
        a = np.asarray(Image.open(tmp_path / "local" / "images" / f"{cell.id}.png"), dtype=int)
        b = np.asarray(Image.open(run_dir / "images" / f"{cell.id}.png"), dtype=int)
        assert np.abs(a - b).max() <= 2, cell.id
    assert (run_dir / "grids" / "grid.png").exists()
    progress = capsys.readouterr().err
    assert "cpu0: CFG scale" in progress  # both actors worked
    assert "cpu1: CFG scale" in progress
    assert "Ray: 2 model loads handed out" in progress


# -- WebUI servers as workers ---------------------------------------------------------------


def slow_stock_webui(delay: float) -> tuple[Any, list[dict[str, Any]]]:
    from tests.test_client_cli import stock_webui

    app, calls = stock_webui()

    @app.middleware("http")
    async def slow(request: Any, call_next: Any) -> Any:
        import asyncio

        if request.url.path.endswith("txt2img"):
            await asyncio.sleep(delay)
        return await call_next(request)

    return app, calls


STOCK_DOC: dict[str, Any] = {
    "name": "stock",
    "base": {"prompt": "a cat", "steps": 2, "width": 64, "height": 64, "seed": 10, "sampler_name": "Euler"},
    "axes": [{"param": "cfg_scale", "values": "1-6"}, {"param": "seed", "values": "10-11"}],
}


def test_two_webui_servers_one_stopped_mid_run_still_finish_every_cell(tmp_path: Path):
    app_a, calls_a = slow_stock_webui(0.15)
    app_b, calls_b = slow_stock_webui(0.15)
    spec = tmp_path / "stock.yaml"
    spec.write_text(yaml.safe_dump(STOCK_DOC))
    server_a, server_b = LiveServer(app_a).start(), LiveServer(app_b).start()
    stopper: list[threading.Thread] = []

    def stop_a_after_two() -> None:
        while len(calls_a) < 2:
            time.sleep(0.02)
        server_a.stop()

    stopper.append(threading.Thread(target=stop_a_after_two, daemon=True))
    stopper[0].start()
    try:
        argv = ["run", str(spec), "--ray", "--url", server_a.url, "--url", server_b.url, "--no-grid"]
        assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 0
    finally:
        stopper[0].join(15)
        server_b.stop()
    run_dir = tmp_path / "out" / "stock"
    store = RunStore.open(run_dir)
    cells = {c["id"] for c in store.plan_dict["cells"]}
    assert len(cells) == 12
    assert log_counts(run_dir) == Counter(dict.fromkeys(cells, 1))
    assert 2 <= len(calls_a) < 12
    assert len(calls_a) + len(calls_b) >= 12


# -- the command line's one-line errors -----------------------------------------------------


def test_a_cluster_that_cannot_be_reached_is_one_line(tmp_path: Path):
    spec = tmp_path / "stock.yaml"
    spec.write_text(yaml.safe_dump(STOCK_DOC))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "sd_sweep", "run", str(spec), "--ray", "127.0.0.1:9", "--url", "http://127.0.0.1:9"]
    argv += ["--out", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot reach the Ray cluster at 127.0.0.1:9")


def test_bad_url_and_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    spec = tmp_path / "stock.yaml"
    spec.write_text(yaml.safe_dump(STOCK_DOC))
    out = ["--out", str(tmp_path)]
    assert cli.main(["run", str(spec), "--ray", "--url", "ftp://x", *out]) == 1
    assert capsys.readouterr().err.strip() == "error: not an http(s) URL: 'ftp://x'"
    assert cli.main(["run", str(spec), "--url", "http://a", "--url", "http://b", *out]) == 1
    assert "add --ray" in capsys.readouterr().err
    assert cli.main(["run", str(spec), "--ray", "--ray-actors", "0", *out]) == 1
    assert capsys.readouterr().err.strip() == "error: --ray-actors must be at least 1 (got 0)"
