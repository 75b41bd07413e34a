# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/sd_schedulers.py: Scheduler, schedulers, schedulers_map."""

from collections import namedtuple

Scheduler = namedtuple(
    "Scheduler", ["name", "label", "function", "default_rho", "need_inner_model", "aliases"], defaults=(-1, False, None)
)  # mirrors modules/sd_schedulers.py: Scheduler

schedulers = [  # mirrors modules/sd_schedulers.py: schedulers (labels the tiny model runs)
    Scheduler("automatic", "Automatic", None),
    Scheduler("uniform", "Uniform", None),
    Scheduler("karras", "Karras", None),
    Scheduler("exponential", "Exponential", None),
]
schedulers_map = {**{x.name: x for x in schedulers}, **{x.label: x for x in schedulers}}
