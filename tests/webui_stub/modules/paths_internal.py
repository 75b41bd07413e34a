# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/paths_internal.py: data_path (the stand-in points it at a test folder)."""

import os

data_path = os.environ.get("SD_SWEEP_STUB_DATA", os.getcwd())
script_path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
