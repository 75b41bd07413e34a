# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/errors.py: report (log an exception and go on)."""

import traceback

reported = []


def report(message, *, exc_info=False):  # mirrors modules/errors.py: report
    reported.append((message, traceback.format_exc() if exc_info else None))
