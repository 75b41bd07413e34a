"""sd-webui-sweep: the WebUI loads this file; everything else lives in the ``sd_sweep`` package."""

import logging

from modules import script_callbacks
from sd_sweep.backends.webui import settings as _sweep_settings
from sd_sweep.webui import ui as _sweep_ui  # noqa: F401 - imported now, while the extension is on sys.path
from sd_sweep.webui.script import SweepScript  # noqa: F401 - the WebUI registers Script subclasses found here
from sd_sweep.webui.tab import on_ui_tabs as _sweep_tab

try:
    from sd_sweep import api as _sweep_api
except ImportError as _exc:
    _sweep_api = None
    if getattr(_exc, "name", None) != "sd_sweep.api":
        logging.getLogger("sd_sweep").exception("sd-webui-sweep: the REST API (sd_sweep.api) failed to import")
except Exception:
    _sweep_api = None
    logging.getLogger("sd_sweep").exception("sd-webui-sweep: the REST API (sd_sweep.api) failed to import")


def _on_app_started(demo, app):
    if _sweep_api is None or not hasattr(_sweep_api, "on_app_started"):
        return
    try:
        _sweep_api.on_app_started(demo, app)
    except Exception:
        logging.getLogger("sd_sweep").exception("sd-webui-sweep: registering the /sweep/v1 routes failed")


script_callbacks.on_ui_settings(_sweep_settings.on_ui_settings)
script_callbacks.on_app_started(_on_app_started)
script_callbacks.on_ui_tabs(_sweep_tab)
