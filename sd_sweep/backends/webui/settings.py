"""The "Sweep" section of the WebUI's Settings, and reading it with defaults."""

from __future__ import annotations

from typing import Any

SECTION = ("sweep", "Sweep")

DEFAULTS: dict[str, Any] = {
    "sweep_max_cells": 1000,
    "sweep_runs_dir": "",
    "sweep_grid_pixel_budget": 64_000_000,
    "sweep_save_samples": True,
}
LABELS = {
    "sweep_max_cells": "Default cell limit of a sweep (a spec's limits.max_cells overrides it)",
    "sweep_runs_dir": "Folder for sweep runs (manifest, images, grids); empty: outputs/sweeps",
    "sweep_grid_pixel_budget": "Largest grid sheet in pixels (bigger grids are paged and downscaled)",
    "sweep_save_samples": "Also save every sweep image with the normal samples (WebUI output folders)",
}


def on_ui_settings() -> None:
    """Registered with ``script_callbacks.on_ui_settings``: adds the options to Settings."""
    from modules import shared

    for key, default in DEFAULTS.items():
        info = shared.OptionInfo(default, LABELS[key], section=SECTION)
        shared.opts.add_option(key, info)


def get(key: str) -> Any:
    """An option's value; its default outside a WebUI or before the option is registered."""
    try:
        from modules import shared

        value = getattr(shared.opts, key)
    except (ImportError, AttributeError):
        value = None
    return DEFAULTS[key] if value is None else value


def runs_dir() -> str:
    from pathlib import Path

    configured = str(get("sweep_runs_dir") or "").strip()
    if configured:
        return configured
    try:
        from modules import paths_internal

        root = paths_internal.data_path
    except Exception:
        root = str(Path.cwd())
    return str(Path(root) / "outputs" / "sweeps")
