"""Progress in sampling steps: a hires cell reusing its group's first pass counts only its second."""

from __future__ import annotations

from sd_sweep.backends.diffusers.catalog import DiffusersCatalog
from sd_sweep.core.planner import build_plan
from sd_sweep.core.progress import StepProgress
from sd_sweep.core.spec import load_spec, spec_from_dict

SPEC = {
    "name": "hires-progress",
    "base": {
        "prompt": "a red cat",
        "steps": 3,
        "width": 64,
        "height": 64,
        "enable_hr": True,
        "hr_second_pass_steps": 2,
    },
    "axes": [{"param": "seed", "values": [1, 2]}, {"param": "denoising_strength", "values": [0.3, 0.6, 0.9]}],
}


def plan_and_todo():
    plan = build_plan(spec_from_dict(SPEC), DiffusersCatalog(installed=False).capabilities())
    return plan, [[plan.cell(i) for i in batch] for batch in plan.batches]


def test_the_total_is_the_estimate_and_reused_first_passes_are_not_counted():
    plan, todo = plan_and_todo()
    progress = StepProgress(plan, todo)
    assert progress.total == plan.estimate["sampling_steps"] == 2 * 3 + 6 * 2
    assert progress.costs == [5, 2, 2, 5, 2, 2]


def test_reports_of_both_passes_add_up_and_a_batch_ends_at_its_planned_cost():
    plan, todo = plan_and_todo()
    progress = StepProgress(plan, todo)
    progress.batch_started(0)
    seen = [progress.step(step, total) for step, total in ((1, 3), (2, 3), (3, 3), (1, 2), (2, 2))]
    assert seen == [1, 2, 3, 4, 5]
    assert progress.batch_finished(0) == 5
    progress.batch_started(1)
    assert [progress.step(s, 2) for s in (1, 2, 1, 2)] == [6, 7, 7, 7]  # never past the batch's cost
    assert progress.batch_finished(1) == 7
    progress.batch_started(2)
    assert progress.batch_finished(2) == 9  # a skipped batch (no reports) counts as done


def test_a_resumed_run_counts_only_the_batches_it_has_left():
    plan, todo = plan_and_todo()
    progress = StepProgress(plan, todo[2:])
    # the first batch left makes its group's first pass again unless the run folder kept it
    assert progress.costs == [5, 5, 2, 2]
    kept = StepProgress(plan, todo[2:], first_passes_kept=frozenset({0}))
    assert kept.costs == [2, 5, 2, 2]


def test_the_terminal_bar_counts_steps_and_images(tmp_path, capsys):
    from sd_sweep.cli import TerminalProgress
    from sd_sweep.core.run import run_sweep
    from tests.fakes import FakeBackend

    spec = load_spec("name: bar\nbase:\n  steps: 4\naxes:\n- param: seed\n  values: 1, 2, 3\n")
    with TerminalProgress() as progress:
        result = run_sweep(spec, FakeBackend(), tmp_path / "run", observer=progress, draw_grids=False)
        assert progress.steps is not None
        assert (progress.steps.done, progress.steps.total) == (12, 12)
        assert (progress.images, progress.total_images) == (3, 3)
    assert result.state == "finished"
    assert "12/12" in capsys.readouterr().err


def test_a_jobs_progress_and_eta_follow_the_sampling_steps():
    """A job's progress counts steps: the second cell of a group costs only its hires pass."""
    from sd_sweep.api.jobs import Job, _JobObserver

    class Saves:
        def _save(self, job):
            pass

    plan, todo = plan_and_todo()
    job = Job(id="j", name="hires-progress", mode="txt2img", folder="hires-progress", request={}, state="running")
    observer = _JobObserver(Saves(), job)
    observer.started(plan, todo)
    assert job.sampling_steps_total == 18
    observer.batch_started(0, todo[0])
    for step in (1, 2, 3):
        observer.step(step, 3)
    assert job.progress == 3 / 18  # the first pass of the group's first cell
    observer.batch_finished(0, todo[0], 1)
    assert job.progress == 5 / 18
    observer.batch_started(1, todo[1])
    observer.batch_finished(1, todo[1], 1)
    assert job.progress == 7 / 18  # a hires pass alone: 2 steps, not a sixth of the images
    resumed = Job(id="k", name="hires-progress", mode="txt2img", folder="hires-progress", request={}, state="running")
    _JobObserver(Saves(), resumed).started(plan, todo[2:], frozenset({0}))
    assert resumed.sampling_steps_total == 2 + 5 + 2 + 2
