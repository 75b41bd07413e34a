"""The run viewer: one static page (``static/``) over a run's index, shared by the WebUI's Sweeps
tab and routes, ``python -m sd_sweep view`` and ``python -m sd_sweep export``.

``index`` derives the page's JSON document from a run folder, ``files`` makes thumbnails, sheets
and ZIPs, ``runs`` lists a runs folder, ``server`` serves it all with the standard library and
``export`` writes a folder that opens from disk. Only the engine and Pillow are imported.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
"""The page: ``index.html``, ``viewer.js``, ``viewer.css`` and the runs list ``runs.html``; ``dom.js`` serves both."""

__all__ = ["STATIC"]
