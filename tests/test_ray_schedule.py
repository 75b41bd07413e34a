"""The pool's scheduling policy, without Ray: groups by checkpoint and VAE, few loads, no idle worker."""

from __future__ import annotations

import heapq
import itertools
import random

import pytest

from sd_sweep.backends.ray.schedule import Job, Scheduler, batch_key
from sd_sweep.core.plan import Cell


def cell(checkpoint: str | None, vae: str | None = None, n: int = 0) -> Cell:
    params = {"prompt": "p", "negative_prompt": "", "seed": n}
    if checkpoint is not None:
        params["checkpoint"] = checkpoint
    if vae is not None:
        params["vae"] = vae
    return Cell(id=f"{checkpoint}-{vae}-{n}", index=n, coords={}, labels={}, params=params)


def jobs_of(keys: list[str]) -> list[Job]:
    return [Job(i, [cell(k, n=i)], batch_key([cell(k, n=i)])) for i, k in enumerate(keys)]


def simulate(jobs: list[Job], workers: list[str], durations: dict[int, float], load: float = 0.0):
    """Runs the scheduler as the pool does (one batch at a time per worker); returns (order, idle gaps)."""
    scheduler = Scheduler(jobs, workers)
    clock: list[tuple[float, str]] = [(0.0, w) for w in workers]
    done: list[tuple[str, int]] = []
    loaded: dict[str, object] = {}
    waiting: list[str] = []
    while clock:
        now, worker = heapq.heappop(clock)
        job = scheduler.next_for(worker)
        if job is None:
            waiting.append(worker)
            continue
        cost = durations[job.number] + (load if loaded.get(worker) != job.key else 0.0)
        loaded[worker] = job.key
        done.append((worker, job.number))
        heapq.heappush(clock, (now + cost, worker))
    return scheduler, done


def test_batch_key_is_checkpoint_and_vae():
    assert batch_key([cell("a", "v")]) == ("a", "v")
    assert batch_key([cell(None)]) == (None, None)


def test_a_worker_keeps_the_checkpoint_it_has():
    scheduler = Scheduler(jobs_of(["a", "a", "b", "b"]), ["w0", "w1"])
    first = scheduler.next_for("w0")
    second = scheduler.next_for("w1")
    assert (first.key, second.key) == (("a", None), ("b", None))
    assert scheduler.next_for("w0").key == ("a", None)
    assert scheduler.next_for("w1").key == ("b", None)
    assert scheduler.loads == 2


def test_one_checkpoint_is_shared_by_every_worker():
    scheduler, done = simulate(jobs_of(["a"] * 12), ["w0", "w1", "w2", "w3"], dict.fromkeys(range(12), 1.0))
    assert sorted(n for _, n in done) == list(range(12))
    assert {w for w, _ in done} == {"w0", "w1", "w2", "w3"}
    assert scheduler.loads == 4


@pytest.mark.parametrize("seed", range(20))
def test_every_batch_once_and_loads_within_groups_plus_workers(seed: int):
    rng = random.Random(seed)
    groups = [chr(97 + i) for i in range(rng.randint(1, 7))]
    keys = [g for g in groups for _ in range(rng.randint(1, 9))]
    workers = [f"w{i}" for i in range(rng.randint(1, 8))]
    durations = {i: rng.uniform(0.5, 2.0) for i in range(len(keys))}
    scheduler, done = simulate(jobs_of(keys), workers, durations, load=3.0)
    assert sorted(n for _, n in done) == list(range(len(keys)))
    assert scheduler.loads <= len(groups) + len(workers)
    assert scheduler.remaining() == 0


def test_an_idle_worker_splits_the_longest_queue():
    # two workers, two checkpoints: the worker done with the short group helps with the long one
    scheduler, done = simulate(jobs_of(["a"] * 2 + ["b"] * 10), ["w0", "w1"], dict.fromkeys(range(12), 1.0))
    on_b = {w for w, n in done if n >= 2}
    assert on_b == {"w0", "w1"}
    assert scheduler.loads == 3


def test_a_lost_worker_gives_its_batch_back_and_may_load_again():
    scheduler = Scheduler(jobs_of(["a", "a", "a"]), ["w0", "w1"])
    job = scheduler.next_for("w0")
    scheduler.lost("w0")
    scheduler.give_back(job)
    again = scheduler.next_for("w1")
    assert again.number == job.number
    assert scheduler.next_for("w0") is not None


def test_workers_on_one_checkpoint_keep_to_their_own_first_pass_groups():
    """Two workers, one checkpoint, two hires first-pass groups of four batches each: each worker
    makes one group's first passes once, instead of taking the batches in turn."""
    jobs = [Job(i, [cell("a", n=i)], ("a", None), first_pass=f"group {i // 4}") for i in range(8)]
    scheduler, done = simulate(jobs, ["w0", "w1"], dict.fromkeys(range(8), 1.0))
    assert sorted(n for _, n in done) == list(range(8))
    groups_of = {w: [jobs[n].first_pass for ww, n in done if ww == w] for w in ("w0", "w1")}
    first_passes = sum(1 + sum(a != b for a, b in itertools.pairwise(g)) for g in groups_of.values())
    assert first_passes == 2
    assert groups_of["w0"] != groups_of["w1"]


def test_batches_without_a_first_pass_key_keep_their_order():
    scheduler = Scheduler(jobs_of(["a"] * 4), ["w0"])
    assert [scheduler.next_for("w0").number for _ in range(4)] == [0, 1, 2, 3]
