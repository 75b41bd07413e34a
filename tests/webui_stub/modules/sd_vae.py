# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/sd_vae.py: vae_dict, unspecified, reload_vae_weights (tracked, nothing loaded)."""

from modules import shared

vae_dict = {"tiny-vae.safetensors": "/models/VAE/tiny-vae.safetensors"}  # mirrors modules/sd_vae.py: vae_dict
unspecified = object()  # mirrors modules/sd_vae.py: unspecified
loaded_vae_file = None
reload_count = 0


def reload_vae_weights(sd_model=None, vae_file=unspecified):  # mirrors modules/sd_vae.py: reload_vae_weights
    global loaded_vae_file, reload_count
    if vae_file is unspecified:
        name = shared.opts.sd_vae
        vae_file = vae_dict.get(name) if name not in ("Automatic", "None") else None
    if vae_file != loaded_vae_file:
        reload_count += 1
    loaded_vae_file = vae_file
    return sd_model


def get_loaded_vae_name():  # mirrors modules/sd_vae.py
    return None if loaded_vae_file is None else loaded_vae_file.rsplit("/", 1)[-1]


def refresh_vae_list():  # mirrors modules/sd_vae.py
    pass
