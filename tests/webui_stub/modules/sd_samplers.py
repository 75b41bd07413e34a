# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/sd_samplers.py: all_samplers, samplers_map, visible_samplers (names the tiny model runs)."""

from collections import namedtuple

from modules import sd_schedulers, shared

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
samplers = []
samplers_for_img2img = []
samplers_hidden = set()
samplers_map = {}


def set_samplers():  # mirrors modules/sd_samplers.py: set_samplers (hidden samplers are read here, not live)
    global samplers, samplers_for_img2img, samplers_hidden
    samplers_hidden = set(shared.opts.hide_samplers)
    samplers = all_samplers
    samplers_for_img2img = all_samplers
    samplers_map.clear()
    for sampler in all_samplers:
        samplers_map[sampler.name.lower()] = sampler.name
        for alias in sampler.aliases:
            samplers_map[alias.lower()] = sampler.name


def visible_samplers():  # mirrors modules/sd_samplers.py: visible_samplers
    return [x for x in samplers if x.name not in samplers_hidden]


def get_sampler_and_scheduler(
    sampler_name, scheduler_name, *, convert_automatic=True
):  # mirrors modules/sd_samplers.py
    default_sampler = samplers[0]
    found_scheduler = sd_schedulers.schedulers_map.get(scheduler_name, sd_schedulers.schedulers[0])
    name = sampler_name or default_sampler.name
    for scheduler in sd_schedulers.schedulers:
        for name_option in [scheduler.label, scheduler.name, *(scheduler.aliases or [])]:
            if name.endswith(" " + name_option):
                found_scheduler = scheduler
                name = name[0 : -(len(name_option) + 1)]
                break
    sampler = all_samplers_map.get(name, default_sampler)
    if convert_automatic and sampler.options.get("scheduler", None) == found_scheduler.name:
        found_scheduler = sd_schedulers.schedulers[0]
    return sampler.name, found_scheduler.label


def fix_p_invalid_sampler_and_scheduler(p):  # mirrors modules/sd_samplers.py (names the scheduler by its label)
    p.sampler_name, p.scheduler = get_sampler_and_scheduler(p.sampler_name, p.scheduler, convert_automatic=False)


set_samplers()
