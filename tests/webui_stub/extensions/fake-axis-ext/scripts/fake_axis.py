# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""Stands in for an extension (ControlNet, ADetailer, ...) that appends its own axis to the X/Y/Z plot."""

from modules import scripts


def _find_xyz():
    for data in scripts.scripts_data:
        if data.script_class.__module__ == "xyz_grid.py" and hasattr(data.module, "axis_options"):
            return data.module
    return None


def _apply_fake_strength(p, x, xs):
    p.extra_generation_params["Fake strength"] = x


def _confirm_fake_strength(p, xs):
    for x in xs:
        if x < 0:
            raise RuntimeError(f"Fake strength must not be negative: {x}")


xyz = _find_xyz()
if xyz is not None:
    xyz.axis_options.append(
        xyz.AxisOption("[Fake] Strength", float, _apply_fake_strength, confirm=_confirm_fake_strength)
    )
