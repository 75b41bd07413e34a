# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/sd_models.py: CheckpointInfo, checkpoints_list, checkpoint_aliases, reload_model_weights.

Both stand-in checkpoints are the tiny model; which one is "loaded" is tracked, and loads are counted.
"""

from modules import shared

checkpoints_list = {}  # mirrors modules/sd_models.py: checkpoints_list
checkpoint_aliases = {}  # mirrors modules/sd_models.py: checkpoint_aliases
loaded = None
load_count = 0


class CheckpointInfo:  # mirrors modules/sd_models.py: CheckpointInfo
    def __init__(self, name, shorthash):
        self.filename = f"/models/Stable-diffusion/{name}"
        self.name = name
        self.name_for_extra = name.rsplit(".", 1)[0]
        self.model_name = self.name_for_extra
        self.hash = shorthash[:8]
        self.sha256 = shorthash * 6
        self.shorthash = shorthash
        self.title = f"{name} [{shorthash}]"
        self.short_title = f"{self.name_for_extra} [{shorthash}]"
        self.ids = [self.hash, self.model_name, self.title, name, self.name_for_extra, f"{name} [{self.hash}]"]
        self.ids += [self.shorthash, self.sha256, f"{name} [{shorthash}]", f"{self.name_for_extra} [{shorthash}]"]

    def register(self):
        checkpoints_list[self.title] = self
        for i in self.ids:
            checkpoint_aliases[i] = self


def list_models():  # mirrors modules/sd_models.py: list_models
    checkpoints_list.clear()
    checkpoint_aliases.clear()
    for name, short in (("tiny-a.safetensors", "aaaa111111"), ("tiny-b.safetensors", "bbbb222222")):
        CheckpointInfo(name, short).register()


def checkpoint_tiles(use_short=False):  # mirrors modules/sd_models.py: checkpoint_tiles
    return [x.short_title if use_short else x.title for x in checkpoints_list.values()]


def select_checkpoint():  # mirrors modules/sd_models.py: select_checkpoint
    info = checkpoint_aliases.get(shared.opts.sd_model_checkpoint)
    return info or next(iter(checkpoints_list.values()))


def reload_model_weights(sd_model=None, info=None, forced_reload=False):  # mirrors modules/sd_models.py
    global loaded, load_count
    info = info or select_checkpoint()
    if loaded is info and not forced_reload:
        return shared.sd_model
    loaded = info
    load_count += 1
    shared.sd_model.sd_checkpoint_info = info
    shared.sd_model.sd_model_hash = info.shorthash
    return shared.sd_model


def apply_token_merging(sd_model, ratio):  # mirrors modules/sd_models.py
    pass


list_models()
