# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/script_callbacks.py: on_ui_settings, on_app_started, on_ui_tabs, ... and their runners."""

from collections import defaultdict

from modules import errors

callback_map = defaultdict(list)  # mirrors modules/script_callbacks.py: callback_map


def clear_callbacks():  # mirrors modules/script_callbacks.py: clear_callbacks
    callback_map.clear()


def _add(category, fn):
    callback_map[category].append(fn)


def on_ui_settings(callback, *, name=None):  # mirrors modules/script_callbacks.py: on_ui_settings
    _add("callbacks_ui_settings", callback)


def on_app_started(callback, *, name=None):  # mirrors modules/script_callbacks.py: on_app_started
    _add("callbacks_app_started", callback)


def on_ui_tabs(callback, *, name=None):  # mirrors modules/script_callbacks.py: on_ui_tabs
    _add("callbacks_ui_tabs", callback)


def on_script_unloaded(callback, *, name=None):  # mirrors modules/script_callbacks.py: on_script_unloaded
    _add("callbacks_script_unloaded", callback)


def ui_settings_callback():  # mirrors modules/script_callbacks.py: ui_settings_callback
    for fn in callback_map["callbacks_ui_settings"]:
        try:
            fn()
        except Exception:
            errors.report("Error executing callback ui_settings", exc_info=True)


def ui_tabs_callback():  # mirrors modules/script_callbacks.py: ui_tabs_callback
    tabs = []
    for fn in callback_map["callbacks_ui_tabs"]:
        try:
            tabs += fn() or []
        except Exception:
            errors.report("Error executing callback ui_tabs", exc_info=True)
    return tabs


def app_started_callback(demo, app):  # mirrors modules/script_callbacks.py: app_started_callback
    for fn in callback_map["callbacks_app_started"]:
        try:
            fn(demo, app)
        except Exception:
            errors.report("Error executing callback app_started", exc_info=True)
