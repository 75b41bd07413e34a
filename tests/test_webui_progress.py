# ruff: noqa: F811
"""The WebUI's own progress during a Script sweep: its jobs are sampler runs, and the console's
``Total progress`` bar (``shared.total_tqdm``) ends at exactly its total; the dry run says which
hires cells make a shared first pass again."""

from __future__ import annotations

from tests.webui_stub.fixtures import make_p, sweep_script, tiny_cache, webui, webui_session  # noqa: F401

GRID = """
name: progress
axes:
  - param: cfg_scale
    values: 5, 9
  - param: seed
    values: 1, 2
"""

HIRES = """
name: progress-hires
axes:
  - param: seed
    values: 1, 2
  - param: denoising_strength
    values: 0.3, 0.6
"""
HIRES_P = {"enable_hr": True, "hr_scale": 2.0, "hr_second_pass_steps": 1, "denoising_strength": 0.5, "steps": 2}


def sweep(webui, spec, *, is_img2img=False, **p_kwargs):
    """Run the Script as the WebUI does, then close the console bar as ``ScriptRunner.run`` does
    (scripts.py 782): the closed bar's count and total."""
    runner = webui.scripts.scripts_img2img if is_img2img else webui.scripts.scripts_txt2img
    tqdm = webui.shared.total_tqdm
    tqdm.clear()
    sweep_script(runner).run(make_p(is_img2img, webui.tmp, **p_kwargs), spec)
    tqdm.clear()
    return tqdm.closed[-1]


def test_total_progress_ends_at_its_total_at_batch_size_2(webui):
    counted, total = sweep(webui, GRID, batch_size=2, steps=3)
    assert (counted, total) == (6, 6)  # 2 batches of 2 seeds, 3 steps each: 100%
    state = webui.shared.state
    assert (state.job_count, state.job_no) == (2, 2)


def test_hires_first_passes_made_once_are_counted_once(webui):
    counted, total = sweep(webui, HIRES, hr_upscaler="Lanczos", **HIRES_P)
    # one first pass per seed (2 steps), then each cell's hires pass (1 step) continues it
    assert (counted, total) == (2 * 2 + 4 * 1, 8)
    state = webui.shared.state
    assert (state.job_count, state.job_no) == (2 + 4, 6)


def test_hires_with_a_latent_upscaler_counts_every_first_pass(webui):
    counted, total = sweep(webui, HIRES, hr_upscaler="Latent", **HIRES_P)
    assert (counted, total) == (4 * (2 + 1), 12)
    state = webui.shared.state
    assert (state.job_count, state.job_no) == (8, 8)


def test_img2img_counts_the_steps_its_denoising_strength_samples(webui):
    counted, total = sweep(webui, GRID, is_img2img=True, batch_size=2, steps=3, denoising_strength=0.6)
    # img2img cells run alone (a batch changes them); each samples int(0.6 * 3) + 1 = 2 steps
    assert (counted, total) == (4 * 2, 8)
    assert webui.shared.state.job_count == 4


def test_a_resumed_sweep_counts_only_what_is_left(webui):
    sweep(webui, GRID, batch_size=2, steps=3)
    grown = GRID.replace("values: 5, 9", "values: 5, 9, 13")
    counted, total = sweep(webui, grown, batch_size=2, steps=3)
    assert (counted, total) == (3, 3)
    assert webui.shared.state.job_count == 1


def summary(webui, text, **p_kwargs):
    from sd_sweep.backends.webui.backend import base_from_p
    from sd_sweep.webui.runner import check_spec

    p = make_p(False, webui.tmp, **p_kwargs)
    return check_spec(text, base_from_p(p, False), is_img2img=False)


def test_the_dry_run_says_which_first_passes_are_made_again_and_why(webui):
    from sd_sweep.webui.ui import summary_html

    result = summary(webui, HIRES, hr_upscaler="Latent", **HIRES_P)
    why = "the WebUI cannot continue a latent upscaler from a kept image"
    assert result["estimate"]["first_pass_not_reused"] == [{"cells": 4, "why": why}]
    assert f"first pass not reused for 4 cells: {why}" in summary_html(result)
    pixel = summary(webui, HIRES, hr_upscaler="Lanczos", **HIRES_P)
    assert "first_pass_not_reused" not in pixel["estimate"]
    assert pixel["estimate"]["first_passes"] == 2


def test_cells_that_share_no_first_pass_get_no_note(webui):
    result = summary(webui, GRID.replace("cfg_scale", "steps").replace("5, 9", "2, 3"), hr_upscaler="Latent", **HIRES_P)
    assert result["ok"]
    assert "first_pass_not_reused" not in result["estimate"]


def test_the_cli_dry_run_of_a_webui_plan_prints_the_note(webui, capsys):
    from sd_sweep.cli import _print_plan

    plan = summary(webui, HIRES, hr_upscaler="Latent", **HIRES_P)["estimate"]
    _print_plan(
        {"name": "progress-hires", "backend": "webui", "estimate": plan, "batches": []},
        {"planned_by": "http://127.0.0.1:7860 (/sweep/v1/plan)"},
        {"exists": False, "path": "runs/progress-hires", "to_generate": 4},
    )
    assert "first pass not reused for 4 cells: the WebUI cannot continue a latent upscaler" in capsys.readouterr().out


def test_forge_plans_by_its_own_measured_table(webui, monkeypatch):
    from sd_sweep.backends.webui import backend

    monkeypatch.setattr(backend, "is_forge", lambda: True)
    pixel = summary(webui, HIRES, hr_upscaler="Lanczos", **HIRES_P)["estimate"]
    assert (pixel["first_passes"], pixel["second_passes"]) == (2, 4)  # a kept first pass: 0 levels there
    latent = summary(webui, HIRES, hr_upscaler="Latent", **HIRES_P)["estimate"]
    assert latent["first_pass_not_reused"][0]["cells"] == 4
    seeds = summary(webui, GRID, batch_size=2)["estimate"]
    assert seeds["batches"] == 2  # txt2img seeds share a batch in Forge too


def test_a_sweep_resumed_in_the_middle_of_a_group_counts_no_first_pass_it_kept(webui, tmp_path):
    from sd_sweep.backends.webui.backend import WebUIBackend, base_from_p
    from sd_sweep.backends.webui.session import run_in_session
    from sd_sweep.core.planner import build_plan
    from sd_sweep.core.ports import StopSignal
    from sd_sweep.core.spec import parse_text, spec_from_dict
    from tests.test_first_pass import InterruptAfter

    def backend():
        return WebUIBackend(make_p(False, webui.tmp, hr_upscaler="Lanczos", **HIRES_P), is_img2img=False)

    document = parse_text(HIRES)
    document["base"] = base_from_p(backend().p, False)
    spec = spec_from_dict(document)
    stop = StopSignal()
    first = backend()
    tqdm = webui.shared.total_tqdm
    tqdm.clear()
    interrupted = run_in_session(first, build_plan(spec, first.capabilities()), tmp_path, stop, InterruptAfter(stop, 1))
    assert (interrupted.state, len(interrupted.generated)) == ("interrupted", 1)
    assert tqdm.closed[-1] == (2 + 1, 2 * 2 + 4 * 1)  # closed after the run: the next one starts at 0

    again = backend()  # as after a restart: only the run folder has seed 1's first pass
    resumed = run_in_session(again, build_plan(spec, again.capabilities()), tmp_path, StopSignal())
    assert (resumed.state, len(resumed.generated), again.first_passes) == ("finished", 3, 1)
    # seed 1's other hires pass (1 step), then seed 2's first pass (2 steps) and its two hires passes
    assert tqdm.closed[-1] == (1 + 2 + 2 * 1, 5)
    state = webui.shared.state
    assert (state.job_count, state.job_no) == (1 + 1 + 2, 4)
