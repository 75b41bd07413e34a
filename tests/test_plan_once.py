"""Every way into a run plans it once and has the backend check the whole plan once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sd_sweep import cli
from sd_sweep.core import planner
from sd_sweep.core import run as run_module
from sd_sweep.core.run import run_sweep
from sd_sweep.core.spec import spec_from_dict
from tests.api_harness import make_app
from tests.fakes import FakeBackend
from tests.webui_stub.fixtures import make_p, sweep_script, tiny_cache, webui, webui_session  # noqa: F401

RANDOM = {
    "name": "random",
    "base": {"prompt": "a cat", "steps": 4, "width": 32, "height": 32, "seed": -1},
    "axes": [{"param": "cfg_scale", "values": "5, 7"}, {"param": "seed", "values": "-1, 3"}],
}


class Counts:
    def __init__(self) -> None:
        self.plans = 0
        self.checks = 0


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counts:
    """Counts ``build_plan`` calls (wherever imported from) and whole-plan checks of every backend."""
    seen = Counts()
    real_build = planner.build_plan

    def counting_build(*args: Any, **kwargs: Any) -> Any:
        seen.plans += 1
        return real_build(*args, **kwargs)

    monkeypatch.setattr(planner, "build_plan", counting_build)
    monkeypatch.setattr(run_module, "build_plan", counting_build)
    from sd_sweep.backends.webui.backend import WebUIBackend

    for cls in (FakeBackend, WebUIBackend):
        real_check = cls.check_plan

        def counting_check(self: Any, plan: Any, _real: Any = real_check) -> None:
            seen.checks += 1
            _real(self, plan)

        monkeypatch.setattr(cls, "check_plan", counting_check)
    return seen


def test_cli_run_plans_and_checks_once(counts: Counts, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    backend = FakeBackend()
    monkeypatch.setattr(cli, "_backend", lambda args: backend)
    spec = tmp_path / "random.json"
    spec.write_text(json.dumps(RANDOM), encoding="utf-8")
    assert cli.main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-grid"]) == 0
    assert (counts.plans, counts.checks) == (1, 1)
    assert len(backend.calls) == 4


def test_a_given_plan_runs_as_it_is(counts: Counts, tmp_path: Path) -> None:
    backend = FakeBackend()
    spec = spec_from_dict(RANDOM)
    plan = planner.build_plan(spec, backend.capabilities())
    backend.check_plan(plan)
    result = run_sweep(spec, backend, tmp_path / "run", plan=plan, draw_grids=False)
    assert result.plan is plan
    assert (counts.plans, counts.checks) == (1, 1)


def test_a_plan_whose_seeds_the_folder_drew_otherwise_is_made_again(counts: Counts, tmp_path: Path) -> None:
    backend = FakeBackend()
    spec = spec_from_dict(RANDOM)
    first = run_sweep(spec, backend, tmp_path / "run", draw_grids=False)
    other = planner.build_plan(spec, backend.capabilities())
    assert other.seed_resolutions != first.plan.seed_resolutions
    again = run_sweep(spec, backend, tmp_path / "run", plan=other, draw_grids=False)
    assert again.plan is not other
    assert again.plan.seed_resolutions == first.plan.seed_resolutions
    assert len(again.reused) == 4
    assert not again.generated
    assert (counts.plans, counts.checks) == (3, 2)


def test_api_job_plans_and_checks_once_and_once_more_on_resume(counts: Counts, tmp_path: Path) -> None:
    backend = FakeBackend()
    _, manager, _ = make_app(tmp_path / "runs", backend)
    try:
        job = manager.wait(manager.submit(dict(RANDOM)).id, timeout=30)
        assert job.state == "finished", job.errors
        assert (counts.plans, counts.checks) == (1, 1)
        job.state = "failed"  # as if it had failed: a resume plans once, with the folder's seeds
        job = manager.wait(manager.resume(job.id).id, timeout=30)
        assert job.state == "finished", job.errors
        assert (counts.plans, counts.checks) == (2, 2)
        assert job.cells_reused == 4
    finally:
        manager.close()


def test_script_plans_and_checks_once(counts: Counts, webui: Any) -> None:  # noqa: F811
    runner = webui.scripts.scripts_txt2img
    p = make_p(False, webui.tmp, batch_size=2)
    spec = "name: t\naxes:\n  - param: cfg_scale\n    values: 5, 9\n  - param: seed\n    values: 1, 2\n"
    sweep_script(runner).run(p, spec)
    assert len(webui.processing.calls) == 2
    assert (counts.plans, counts.checks) == (1, 1)


def test_script_with_random_seeds_plans_once_with_the_folder_seeds(counts: Counts, webui: Any) -> None:  # noqa: F811
    runner = webui.scripts.scripts_txt2img
    grown = "name: r\naxes:\n  - param: cfg_scale\n    values: 5, 9, 11\n"
    sweep_script(runner).run(
        make_p(False, webui.tmp, seed=-1), "name: r\naxes:\n  - param: cfg_scale\n    values: 5, 9\n"
    )
    counts.plans = counts.checks = 0
    calls = len(webui.processing.calls)
    sweep_script(runner).run(make_p(False, webui.tmp, seed=-1), grown)
    assert (counts.plans, counts.checks) == (1, 1)
    assert len(webui.processing.calls) - calls == 1
