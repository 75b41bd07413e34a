# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/paths.py: script_path, data_path."""

from modules.paths_internal import data_path, script_path  # noqa: F401
