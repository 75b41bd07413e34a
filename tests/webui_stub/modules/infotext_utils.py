# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/infotext_utils.py: ParamBinding, PasteField, add_paste_fields, register_paste_params_button,
connect_paste_params_buttons, parse_generation_parameters.

A paste button registered with a source text box, once connected, parses the box's infotext on the
server and fills the target tab's paste fields with it, then switches to that tab in the page
(``switch_to_<tab>`` of javascript/ui.js). Only text sources: the image and ``source_tabname``
sources of the WebUI are not mirrored.
"""

from __future__ import annotations

import json
import re
import sys

import gradio as gr

sys.modules["modules.generation_parameters_copypaste"] = sys.modules[__name__]  # mirrors the old name's alias

GRADIO_3 = gr.__version__.startswith("3.")
JS_KWARG = "_js" if GRADIO_3 else "js"
"""gradio 3 names an event's JS step ``_js``; gradio 4 ``js`` (Forge maps ``_js`` to it in modules/gradio_extensions.py)."""
PARAM = re.compile(r'\s*([\w][\w /-]*?):\s*("(?:\\.|[^"\\])*"|[^,]*)(?:,|$)')
SIZE = re.compile(r"^(\d+)x(\d+)$")


class ParamBinding:  # mirrors modules/infotext_utils.py: ParamBinding
    def __init__(
        self,
        paste_button,
        tabname,
        source_text_component=None,
        source_image_component=None,
        source_tabname=None,
        override_settings_component=None,
        paste_field_names=None,
    ):
        self.paste_button = paste_button
        self.tabname = tabname
        self.source_text_component = source_text_component
        self.source_image_component = source_image_component
        self.source_tabname = source_tabname
        self.override_settings_component = override_settings_component
        self.paste_field_names = paste_field_names or []


class PasteField(tuple):  # mirrors modules/infotext_utils.py: PasteField (component, infotext label or function)
    def __new__(cls, component, target, *, api=None):
        return super().__new__(cls, (component, target))

    def __init__(self, component, target, *, api=None):
        super().__init__()
        self.api = api
        self.component = component
        self.label = target if isinstance(target, str) else None
        self.function = target if callable(target) else None


paste_fields = {}  # mirrors modules/infotext_utils.py: paste_fields (tab -> init_img, fields, override settings)
registered_param_bindings = []  # mirrors modules/infotext_utils.py: registered_param_bindings


def reset():  # mirrors modules/infotext_utils.py: reset
    paste_fields.clear()
    registered_param_bindings.clear()


def add_paste_fields(tabname, init_img, fields, override_settings_component=None):  # mirrors add_paste_fields
    fields = [f if isinstance(f, PasteField) else PasteField(*f) for f in fields or []]
    paste_fields[tabname] = {
        "init_img": init_img,
        "fields": fields,
        "override_settings_component": override_settings_component,
    }


def create_buttons(tabs_list):  # mirrors modules/infotext_utils.py: create_buttons
    return {tab: gr.Button(f"Send to {tab}", elem_id=f"{tab}_tab") for tab in tabs_list}


def register_paste_params_button(binding):  # mirrors modules/infotext_utils.py: register_paste_params_button
    registered_param_bindings.append(binding)


def _js_step(button, js):
    button.click(fn=None, inputs=None, outputs=None, show_progress=False, **{JS_KWARG: js})


def connect_paste_params_buttons():  # mirrors modules/infotext_utils.py: connect_paste_params_buttons
    for binding in registered_param_bindings:
        target = paste_fields.get(binding.tabname)
        if target is None:
            raise KeyError(binding.tabname)  # the WebUI fails the same way for a tab without paste fields
        if binding.source_text_component is not None and target["fields"]:
            connect_paste(binding.paste_button, target["fields"], binding.source_text_component, None, binding.tabname)
        _js_step(binding.paste_button, f"switch_to_{binding.tabname}")


def _unquote(value):
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse_generation_parameters(x, skip_fields=None):  # mirrors modules/infotext_utils.py: parse_generation_parameters
    """The infotext's prompt, negative prompt and ``Key: value`` pairs; ``Size: WxH`` gives ``Size-1``/``Size-2``."""
    lines = x.strip().split("\n")
    params = {}
    if len(lines) > 0 and len(PARAM.findall(lines[-1])) >= 3:
        for key, raw in PARAM.findall(lines.pop()):
            value = _unquote(raw.strip())
            size = SIZE.match(value) if isinstance(value, str) else None
            if size:
                params[f"{key}-1"], params[f"{key}-2"] = size.group(1), size.group(2)
            else:
                params[key] = value
    prompt, negative, in_negative = [], [], False
    for raw in lines:
        line = raw.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line.removeprefix("Negative prompt:").strip()
        (negative if in_negative else prompt).append(line)
    params["Prompt"] = "\n".join(prompt)
    params["Negative prompt"] = "\n".join(negative)
    params.setdefault("Clip skip", "1")
    for key in skip_fields or []:
        params.pop(key, None)
    return params


def _field_update(component, value):
    """A value cast to the component's current type (a float for an int slider, like the WebUI), or no change."""
    if value is None:
        return gr.update()
    if isinstance(value, dict):
        return value
    kind = type(component.value)
    try:
        if kind is bool:
            return gr.update(value=value not in ("False", False))
        return gr.update(value=float(value) if kind is int else kind(value))
    except (TypeError, ValueError):
        return gr.update()


def connect_paste(button, paste_fields, input_comp, override_settings_component, tabname):  # mirrors connect_paste
    def paste_func(prompt):
        params = parse_generation_parameters(prompt or "")
        out = []
        for component, key in paste_fields:
            value = key(params) if callable(key) else params.get(key)
            out.append(_field_update(component, value))
        return out

    button.click(fn=paste_func, inputs=[input_comp], outputs=[c for c, _ in paste_fields], show_progress=False)
    _js_step(button, f"recalculate_prompts_{tabname}")
