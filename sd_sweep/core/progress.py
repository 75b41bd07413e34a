"""A run's progress in sampling steps, the unit its time goes by.

Counting images makes a bad clock where a hires cell of a first-pass group costs its first pass and
the next cells of the group only their second: the estimate (``planner.batch_costs``) says what each
batch samples, so the fraction done and a time left follow the work, not the cell count.
"""

from __future__ import annotations

from sd_sweep.core.plan import Cell, Plan
from sd_sweep.core.planner import batch_costs


class StepProgress:
    """Steps done and to do of a run's ``todo`` batches (numbered by their index in ``todo``).

    ``step`` takes the backend's ``(step, total)`` reports, which start again at 1 for each pass
    (the first and the second pass of a hires cell), and never runs past what the batch was
    planned to cost; ``batch_finished`` sets the count to the plan's figure for the batches done.
    """

    def __init__(self, plan: Plan, todo: list[list[Cell]], first_passes_kept: frozenset[int] = frozenset()) -> None:
        self.costs = [steps for steps, _, _ in batch_costs(todo, plan.first_pass_keys, first_passes_kept)]
        self.total = sum(self.costs)
        self.finished = 0
        """Planned steps of the batches finished so far."""
        self._current = 0
        self._in_batch = 0
        self._last = 0

    @property
    def done(self) -> int:
        return self.finished + self._in_batch

    def batch_started(self, number: int) -> None:
        self._current = number
        self._in_batch = self._last = 0

    def step(self, step: int, total: int) -> int:
        """Count one report of the batch in progress; returns the steps done in all."""
        advanced = step if step <= self._last else step - self._last
        self._last = step
        cost = self.costs[self._current] if 0 <= self._current < len(self.costs) else 0
        self._in_batch = min(self._in_batch + max(advanced, 0), cost)
        return self.done

    def batch_finished(self, number: int) -> int:
        """The batch's planned steps count as done (also when it was skipped); returns the steps done."""
        if 0 <= number < len(self.costs):
            self.finished += self.costs[number]
        self._in_batch = self._last = 0
        return self.done
