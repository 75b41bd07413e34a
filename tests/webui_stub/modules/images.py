# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/images.py: image_grid, save_image (sequence-numbered names, pnginfo, already_saved_as)."""

from __future__ import annotations

import math
import os
import re

from PIL import Image, PngImagePlugin

from modules import shared

saved = []


def image_grid(imgs, batch_size=1, rows=None):  # mirrors modules/images.py: image_grid
    if rows is None:
        rows = max(1, round(math.sqrt(len(imgs))))
    cols = math.ceil(len(imgs) / rows)
    w, h = imgs[0].size
    grid = Image.new("RGB", size=(cols * w, rows * h), color="black")
    for i, img in enumerate(imgs):
        grid.paste(img, box=(i % cols * w, i // cols * h))
    return grid


def get_next_sequence_number(path, basename):  # mirrors modules/images.py: get_next_sequence_number
    result = -1
    prefix = f"{basename}-" if basename else ""
    for name in os.listdir(path):
        if name.startswith(prefix):
            m = re.match(r"(\d+)", name[len(prefix) :])
            if m:
                result = max(int(m.group(1)), result)
    return result + 1


def save_image(
    image,
    path,
    basename,
    seed=None,
    prompt=None,
    extension="png",
    info=None,
    short_filename=False,
    no_prompt=False,
    grid=False,
    pnginfo_section_name="parameters",
    p=None,
    existing_info=None,
    forced_filename=None,
    suffix="",
    save_to_dirs=None,
):  # mirrors modules/images.py: save_image
    os.makedirs(path, exist_ok=True)
    if forced_filename is None:
        number = get_next_sequence_number(path, basename)
        decoration = "" if short_filename or seed is None else f"-{seed}"
        name = f"{basename}-{number:04}" if basename else f"{number:05}"
        filename = f"{name}{decoration}{suffix}"
    else:
        filename = forced_filename
    fullfn = os.path.join(path, f"{filename}.{extension}")
    pnginfo = PngImagePlugin.PngInfo()
    if info and shared.opts.enable_pnginfo:
        pnginfo.add_text(pnginfo_section_name, info)
    image.save(fullfn, pnginfo=pnginfo)
    image.already_saved_as = fullfn
    saved.append({"path": fullfn, "grid": grid, "info": info})
    return fullfn, None
