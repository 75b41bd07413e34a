# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""Stand-in for scripts/xyz_grid.py of v1.10.1: AxisOption and the ``axis_options`` list extensions append to.

Only the axis catalog is mirrored (the plot itself is not needed by the extension).
"""

from modules import scripts, sd_models, sd_samplers, shared


def apply_field(field):  # mirrors scripts/xyz_grid.py: apply_field
    def fun(p, x, xs):
        setattr(p, field, x)

    return fun


def apply_override(field):  # mirrors scripts/xyz_grid.py: apply_override
    def fun(p, x, xs):
        p.override_settings[field] = x

    return fun


def confirm_samplers(p, xs):  # mirrors scripts/xyz_grid.py: confirm_samplers
    for x in xs:
        if x.lower() not in sd_samplers.samplers_map:
            raise RuntimeError(f"Unknown sampler: {x}")


def apply_checkpoint(p, x, xs):  # mirrors scripts/xyz_grid.py: apply_checkpoint
    info = sd_models.checkpoint_aliases.get(x)
    if info is None:
        raise RuntimeError(f"Unknown checkpoint: {x}")
    p.override_settings["sd_model_checkpoint"] = info.name


def confirm_checkpoints(p, xs):  # mirrors scripts/xyz_grid.py: confirm_checkpoints (an alias lookup here)
    for x in xs:
        if sd_models.checkpoint_aliases.get(x) is None:
            raise RuntimeError(f"Unknown checkpoint: {x}")


def apply_order(p, x, xs):  # mirrors scripts/xyz_grid.py: apply_order (x is a tuple of tokens)
    tokens = sorted(x, key=p.prompt.find)
    for old, new in zip(tokens, x):
        p.prompt = p.prompt.replace(old, f"\0{new}\0", 1)
    p.prompt = p.prompt.replace("\0", "")


def str_permutations(x):  # mirrors scripts/xyz_grid.py: str_permutations (a marker type)
    return x


def do_nothing(p, x, xs):
    pass


class AxisOption:  # mirrors scripts/xyz_grid.py: AxisOption
    def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label = label
        self.type = type
        self.apply = apply
        self.format_value = format_value
        self.confirm = confirm
        self.cost = cost
        self.prepare = prepare
        self.choices = choices


class AxisOptionImg2Img(AxisOption):  # mirrors scripts/xyz_grid.py: AxisOptionImg2Img
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_img2img = True


class AxisOptionTxt2Img(AxisOption):  # mirrors scripts/xyz_grid.py: AxisOptionTxt2Img
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_img2img = False


axis_options = [  # mirrors scripts/xyz_grid.py: axis_options (a subset)
    AxisOption("Nothing", str, do_nothing),
    AxisOption("Seed", int, apply_field("seed")),
    AxisOption("Steps", int, apply_field("steps")),
    AxisOptionTxt2Img("Hires steps", int, apply_field("hr_second_pass_steps")),
    AxisOption("CFG Scale", float, apply_field("cfg_scale")),
    AxisOption("Prompt order", str_permutations, apply_order),
    AxisOptionImg2Img("Image CFG Scale", float, apply_field("image_cfg_scale")),
    AxisOptionTxt2Img(
        "Sampler",
        str,
        apply_field("sampler_name"),
        confirm=confirm_samplers,
        choices=lambda: [x.name for x in sd_samplers.samplers if x.name not in shared.opts.hide_samplers],
    ),
    AxisOptionImg2Img(
        "Sampler",
        str,
        apply_field("sampler_name"),
        confirm=confirm_samplers,
        choices=lambda: [x.name for x in sd_samplers.samplers_for_img2img if x.name not in shared.opts.hide_samplers],
    ),
    AxisOption(
        "Checkpoint name",
        str,
        apply_checkpoint,
        confirm=confirm_checkpoints,
        cost=1.0,
        choices=lambda: sorted(sd_models.checkpoints_list, key=str.casefold),
    ),
    AxisOption("Clip skip", int, apply_override("CLIP_stop_at_last_layers")),
    AxisOption("Denoising", float, apply_field("denoising_strength")),
    AxisOption("Eta", float, apply_field("eta")),
]


class Script(scripts.Script):  # mirrors scripts/xyz_grid.py: Script (title only)
    def title(self):
        return "X/Y/Z plot"

    def ui(self, is_img2img):
        return []
