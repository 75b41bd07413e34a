"""The "Sweep" Script of txt2img and img2img (a selectable script: ``run()`` is its only entry)."""

from __future__ import annotations

import logging
from typing import Any

from modules import scripts
from sd_sweep.webui.ui import TAB_FIELDS

log = logging.getLogger("sd_sweep.webui")

TITLE = "Sweep"


class SweepScript(scripts.Script):
    """Runs a prompt matrix / parameter sweep over the values set in the tab.

    ``ui()`` returns exactly one control, the spec text (YAML or JSON), so the WebUI API's positional
    ``script_args`` is simply ``[spec]``: ``{"script_name": "sweep", "script_args": ["<spec>"]}``.
    The axis rows and options of the UI write that text.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sweep_tab_components: dict[str, Any] = {}
        for tab in ("txt2img", "img2img"):
            for suffix in TAB_FIELDS:
                self.on_after_component(self._remember_component, elem_id=f"{tab}_{suffix}")

    def _remember_component(self, on_component: Any) -> None:
        """Keep the tab's own controls, so the live summary plans with what the user set there."""
        component = getattr(on_component, "component", None)
        elem_id = getattr(component, "elem_id", None)
        if elem_id:
            self.sweep_tab_components[elem_id] = component

    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> bool:
        return True

    def ui(self, is_img2img: bool) -> list[Any]:
        from sd_sweep.webui.ui import build_ui

        return build_ui(self, is_img2img)

    def run(self, p: Any, spec_text: Any = None, *rest: Any) -> Any:
        from sd_sweep.webui.runner import SweepInputError, run_in_webui

        is_img2img = bool(getattr(self, "is_img2img", False)) or hasattr(p, "init_images")
        try:
            return run_in_webui(p, spec_text, is_img2img=is_img2img)
        except SweepInputError as exc:
            if getattr(p, "is_api", False):
                raise _api_error(exc) from None
            return _error_result(p, str(exc))


def _api_error(exc: Any) -> Exception:
    """A 422 naming every field and value: the WebUI's API answers other script exceptions with a 500.

    Both hosts' handlers take the status and ``detail`` of an ``HTTPException`` (v1.10.1:
    ``api_middleware.handle_exception``; Forge: FastAPI's own handler).
    """
    from fastapi import HTTPException

    return HTTPException(status_code=422, detail=[problem.as_dict() for problem in exc.problems])


def _error_result(p: Any, message: str) -> Any:
    """An empty result whose info shows the problem in the UI (no traceback, no normal generation)."""
    from modules import processing

    processed = processing.Processed(p, [], -1, message)
    processed.comments = message  # Processed(comments=...) is ignored: it reads p.comments
    if not hasattr(processed, "extra_images"):
        processed.extra_images = []
    return processed
