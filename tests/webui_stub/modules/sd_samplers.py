# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/sd_samplers.py: all_samplers, samplers_map, visible_samplers (names the tiny model runs)."""

from collections import namedtuple

from modules import shared

SamplerData = namedtuple(
    "SamplerData", ["name", "constructor", "aliases", "options"]
)  # mirrors modules/sd_samplers_common.py

all_samplers = [  # mirrors modules/sd_samplers.py: all_samplers (a subset the diffusers backend implements)
    SamplerData("DPM++ 2M", None, ["k_dpmpp_2m"], {"scheduler": "karras"}),
    SamplerData("Euler a", None, ["k_euler_a"], {"uses_ensd": True}),
    SamplerData("Euler", None, ["k_euler"], {}),
    SamplerData("DDIM", None, [], {}),
]
all_samplers_map = {x.name: x for x in all_samplers}
samplers = list(all_samplers)
samplers_for_img2img = list(all_samplers)
samplers_map = {}
for _s in all_samplers:
    samplers_map[_s.name.lower()] = _s.name
    for _alias in _s.aliases:
        samplers_map[_alias.lower()] = _s.name


def visible_samplers():  # mirrors modules/sd_samplers.py: visible_samplers
    return [x for x in samplers if x.name not in shared.opts.hide_samplers]


def fix_p_invalid_sampler_and_scheduler(p):  # mirrors modules/sd_samplers.py
    if p.sampler_name not in all_samplers_map:
        p.sampler_name = samplers[0].name
    if p.scheduler is None:
        p.scheduler = "Automatic"
