"""Which batch a worker runs next: grouped by checkpoint and VAE, few model loads, no idle worker.

Pure Python (no Ray), so the policy is tested on its own:

* The plan's batches are already in fewest-switches order; batches with equal checkpoint and VAE
  form one group (a queue shared by the workers that work on it).
* A worker keeps taking from the group of the model it has loaded.
* When that group is empty it claims the next group nobody works on (one load per group).
* When every group has a worker, an idle worker joins the group with the longest queue per worker
  (at least ``min_join_queue`` batches waiting, default one), splitting its remaining work. Joins are limited to
  one per worker, so a run loads at most ``distinct groups + workers`` models (not counting the
  reloads of a worker that was lost and came back).
* Within a group, a worker takes the next batch of the hires first-pass group it is on
  (``Job.first_pass``), so the first passes it made serve that group's other batches; else a batch
  of a first-pass group no other worker is on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Hashable, Sequence

    from sd_sweep.core.plan import Cell

_UNLOADED: Any = object()


def batch_key(cells: Sequence[Cell]) -> tuple[Any, Any]:
    """The models a batch needs: its checkpoint and VAE (``None`` where the plan leaves them alone)."""
    params = cells[0].params
    return (_hashable(params.get("checkpoint")), _hashable(params.get("vae")))


def _hashable(value: Any) -> Hashable:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


@dataclass
class Job:
    """One batch of the run: ``number`` is its index in the run's to-do list."""

    number: int
    cells: list[Cell]
    key: Hashable
    attempts: int = 0
    first_pass: Hashable | None = None
    """The batch's first-pass key (``planner.batch_first_pass_key``): batches with the same one share
    their first passes on the worker that made them."""


class Scheduler:
    """Hands out ``jobs`` (in plan order) to named workers; see the module docstring for the policy."""

    def __init__(self, jobs: Sequence[Job], workers: Sequence[str], *, min_join_queue: int = 1) -> None:
        self.groups: dict[Hashable, deque[Job]] = {}
        for job in jobs:
            self.groups.setdefault(job.key, deque()).append(job)
        self.owners: dict[Hashable, set[str]] = {key: set() for key in self.groups}
        self.loaded: dict[str, Hashable] = dict.fromkeys(workers, _UNLOADED)
        self.joins_left = len(workers)
        self.min_join_queue = min_join_queue
        self.first_pass_of: dict[str, Hashable | None] = {}
        """The first-pass key of each worker's last batch."""
        self.loads = 0
        """Model switches handed out: a worker's first group, and every change of group after."""

    @property
    def distinct_groups(self) -> int:
        return len(self.groups)

    def remaining(self) -> int:
        """Batches not handed out (or handed back)."""
        return sum(len(queue) for queue in self.groups.values())

    def next_for(self, worker: str) -> Job | None:
        """The next batch for ``worker``, or ``None`` when it should wait (or everything is handed out)."""
        key = self.loaded.get(worker, _UNLOADED)
        if key is not _UNLOADED and self.groups.get(key):
            return self._take(worker, self.groups[key])
        unclaimed = next((k for k, queue in self.groups.items() if queue and not self.owners[k]), _UNLOADED)
        if unclaimed is not _UNLOADED:
            return self._switch(worker, unclaimed)
        if self.joins_left <= 0:
            return None
        candidates = [(len(queue) / len(self.owners[k]), k) for k, queue in self.groups.items() if queue]
        candidates = [(share, k) for share, k in candidates if len(self.groups[k]) >= self.min_join_queue]
        if not candidates:
            return None
        _, busiest = max(candidates, key=lambda item: item[0])
        self.joins_left -= 1
        return self._switch(worker, busiest)

    def _switch(self, worker: str, key: Hashable) -> Job:
        self.leave(worker)
        self.owners[key].add(worker)
        self.loaded[worker] = key
        self.loads += 1
        return self._take(worker, self.groups[key])

    def _take(self, worker: str, queue: deque[Job]) -> Job:
        """The batch of ``queue`` for ``worker``: of its first-pass group, else of one nobody is on."""
        mine = self.first_pass_of.get(worker)
        others = {k for w, k in self.first_pass_of.items() if w != worker and k is not None}
        chosen = next((job for job in queue if job.first_pass == mine), None) if mine is not None else None
        if chosen is None:
            chosen = next((job for job in queue if job.first_pass is None or job.first_pass not in others), queue[0])
        queue.remove(chosen)
        self.first_pass_of[worker] = chosen.first_pass
        return chosen

    def leave(self, worker: str) -> None:
        """``worker`` no longer works on its group (it switches, or was lost)."""
        key = self.loaded.get(worker, _UNLOADED)
        if key is not _UNLOADED:
            self.owners[key].discard(worker)

    def give_back(self, job: Job) -> None:
        """A batch that did not finish goes back to the front of its group."""
        self.groups[job.key].appendleft(job)

    def lost(self, worker: str) -> None:
        """``worker``'s models are gone (its process died, its server went away): it loads again later."""
        self.leave(worker)
        if self.loaded.get(worker, _UNLOADED) is not _UNLOADED:
            self.joins_left += 1
        self.loaded[worker] = _UNLOADED
        self.first_pass_of.pop(worker, None)
