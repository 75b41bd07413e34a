"""The WebUI's own progress (``shared.state`` and the console's total bar) for a sweep run in it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from sd_sweep.core.ports import GenerationRequest
from sd_sweep.core.run import RunObserver, describe_cell, request_for


class WebUIProgress(RunObserver):
    """Drives the WebUI's progress: its jobs are sampler runs, its console total the steps they sample.

    ``state.job_count`` counts the sampler runs of the batches still to make (a hires cell's first
    pass and its hires pass are two, a hires pass that continues a kept first pass one), as the
    WebUI's own hires fix refines it (``processing_has_refined_job_count``); ``job_no`` is set to the
    runs done at each batch's start and end. The console's ``shared.total_tqdm`` counts one step
    per sampler callback, so its total is set to the steps those runs sample. ``sampler_runs`` is
    the backend's ``WebUIBackend.sampler_runs``; without it every batch is one run.
    """

    def __init__(
        self,
        state: Any,
        sampler_runs: Callable[[list[GenerationRequest], frozenset[int]], list[list[int]]] | None = None,
        total_tqdm: Any = None,
    ) -> None:
        self.state = state
        self.sampler_runs = sampler_runs
        self.total_tqdm = total_tqdm
        self.total = 0
        self.done = 0
        self.plan = None
        self.jobs_before: list[int] = []
        self.steps = 0

    def started(self, plan: Any, todo: list[list[Any]], first_passes_kept: frozenset[int] = frozenset()) -> None:
        self.plan = plan
        self.total = len(plan.cells)
        self.done = self.total - sum(len(batch) for batch in todo)
        if self.sampler_runs is not None:
            runs = self.sampler_runs([request_for(batch, plan) for batch in todo], first_passes_kept)
        else:
            runs = [[int(batch[0].params.get("steps", 20))] for batch in todo]
        self.jobs_before = list(itertools.accumulate((len(r) for r in runs), initial=0))
        self.steps = sum(map(sum, runs))
        self.state.job_count = max(self.jobs_before[-1], 1)
        self.state.job_no = 0
        self.state.processing_has_refined_job_count = True  # the WebUI's hires fix must not double our count
        if self.total_tqdm is not None and self.steps:
            self.total_tqdm.updateTotal(self.steps)

    def batch_started(self, number: int, cells: list[Any]) -> None:
        first = self.done + 1
        last = self.done + len(cells)
        where = f"cell {first}/{self.total}" if first == last else f"cells {first}-{last}/{self.total}"
        text = describe_cell(self.plan, cells[0]) if self.plan is not None else ""
        self.state.job = where
        self.state.textinfo = f"{where}: {text}" if text else where
        self.state.job_no = self._jobs_before(number)

    def batch_finished(self, number: int, cells: list[Any], saved: int) -> None:
        self.done += len(cells)
        self.state.job_no = self._jobs_before(number + 1)

    def _jobs_before(self, number: int) -> int:
        return self.jobs_before[min(number, len(self.jobs_before) - 1)] if self.jobs_before else number
