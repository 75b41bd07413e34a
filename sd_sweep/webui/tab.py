"""The WebUI's top-level "Sweeps" tab: the runs list and the viewer (a page served by the
``/sweep/v1`` routes, shown in a frame), and a small hidden gradio block through which the
viewer's "Send to txt2img/img2img" buttons use the WebUI's own paste mechanism (the
``infotext_utils`` paste buttons that PNG Info uses)."""

from __future__ import annotations

import logging
from typing import Any

VIEWER = "/sweep/v1/viewer/runs.html"
TABS = ("txt2img", "img2img")
FRAME = (
    '<iframe id="sd_sweep_frame" class="sd-sweep-frame" src="{src}" title="Sweeps" ' 'allow="clipboard-write"></iframe>'
)


def _paste_module() -> Any:
    """``modules.infotext_utils`` (v1.10, Forge), or its older name; ``None`` outside a WebUI."""
    try:
        from modules import infotext_utils

        return infotext_utils
    except ImportError:
        pass
    try:
        from modules import generation_parameters_copypaste

        return generation_parameters_copypaste
    except ImportError:
        return None


def build_tab() -> Any:
    """The tab's blocks; its buttons are registered with the WebUI's paste mechanism when it has one."""
    import gradio as gr

    with gr.Blocks(analytics_enabled=False) as tab:
        gr.HTML(FRAME.format(src=VIEWER), elem_id="sd_sweep_viewer")
        with gr.Row(elem_id="sd_sweep_send", elem_classes=["sd-sweep-hidden"]):
            text = gr.Textbox(label="Infotext", elem_id="sd_sweep_infotext", lines=2)
            buttons = {name: gr.Button(f"Send to {name}", elem_id=f"sd_sweep_send_{name}") for name in TABS}
    paste = _paste_module()
    if paste is not None:
        try:
            for name, button in buttons.items():
                binding = paste.ParamBinding(paste_button=button, tabname=name, source_text_component=text)
                paste.register_paste_params_button(binding)
        except Exception:
            logging.getLogger("sd_sweep").exception("sd-webui-sweep: the Send to buttons are not available")
    return tab


def on_ui_tabs() -> list[tuple[Any, str, str]]:
    """``script_callbacks.on_ui_tabs`` handler."""
    return [(build_tab(), "Sweeps", "sd_sweep_tab")]
