"""The Sweep script's gradio UI; builds under gradio 3.41.2 (AUTOMATIC1111 v1.10.1) and 4.40.0 (Forge).

Only APIs common to both are used: ``gr.update``, constructor keywords both accept, ``.change`` and
``.click`` with ``fn/inputs/outputs``. ``ui()`` returns one control, the spec text; the axis rows,
prompt-matrix options and layout write that text, so what runs is always what the text says.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

log = logging.getLogger("sd_sweep.webui")

MAX_ROWS = 8
"""Axis rows built (hidden until "Add axis"); ``ui()`` always returns the same controls."""
START_ROWS = 2
AUTO = "(auto)"
MATRIX = "prompt_matrix"

PARAM_HINT = (
    "Pick a parameter per axis and type its values: comma-separated (`7, 9, 11`), ranges (`10-30 (+10)`, "
    "`1-2 [5]`). 📒 fills in every choice the WebUI offers. The spec below is what runs; paste one there and "
    "press *Load spec into rows* to edit it here."
)


def param_choices(is_img2img: bool) -> list[str]:
    """Dropdown entries ``"Title (name)"``: the engine's parameters, then the X/Y/Z plot's axes of this tab."""
    from sd_sweep.params import PARAMS

    skip = {"enable_hr", "hr_scale", "hr_upscaler", "hr_second_pass_steps"} if is_img2img else set()
    entries = [f"{d.title} ({d.name})" for d in PARAMS.values() if d.name not in skip]
    entries += ["LoRA weight (lora:NAME)", "Setting (setting:KEY)"]
    try:
        from sd_sweep.backends.webui import host_axes

        entries += [f"X/Y/Z: {label} (host:{label})" for label in host_axes(is_img2img)]
    except Exception:
        log.debug("no X/Y/Z axes", exc_info=True)
    return entries


def param_of(entry: str | None) -> str:
    """``"CFG scale (cfg_scale)"`` -> ``cfg_scale``; a typed name is kept as is."""
    text = (entry or "").strip()
    if text.endswith(")") and " (" in text:
        return text[text.rindex(" (") + 2 : -1].strip()
    return text


def entry_of(param: str, choices: list[str]) -> str:
    for entry in choices:
        if param_of(entry) == param:
            return entry
    return param


def values_for(param: str, is_img2img: bool) -> list[str]:
    """Every value the running WebUI offers for ``param`` (samplers, checkpoints, ...), or []."""
    from sd_sweep.params import param_def

    try:
        from sd_sweep.backends.webui import WebUIBackend, host_axes, host_choices

        if param.startswith("host:"):
            axis = host_axes(is_img2img).get(param[5:])
            return host_choices(axis) if axis else []
        definition = param_def(param, "param")
        if definition.kind == "bool":
            return ["true", "false"]
        key = definition.choices_from
        if not key:
            return []
        backend = WebUIBackend(None, is_img2img=is_img2img)
        caps = backend.capabilities()
        values = list(caps.choices.get(key, ()))
        if key == "checkpoint":
            from modules import sd_models

            values = [info.title for info in sd_models.checkpoints_list.values()]
        return values
    except Exception:
        log.debug("no choices for %s", param, exc_info=True)
        return []


def join_values(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue().strip()


def rows_to_spec(current: str, rows: list[tuple[str, str]], matrix: dict[str, Any], layout: dict[str, Any]) -> str:
    """Rewrite the axes and layout of the spec text from the rows; keep its other keys (name, base, limits).

    An axis keeps extra keys it had in the text (title, zip, options) when its row still names the same
    parameter.
    """
    import yaml

    try:
        document = yaml.safe_load(current) if current and current.strip() else {}
    except yaml.YAMLError:
        document = None
    if not isinstance(document, dict):
        document = {}
    old_axes = document.get("axes") if isinstance(document.get("axes"), list) else []
    axes = []
    for index, (entry, values) in enumerate(rows):
        param = param_of(entry)
        if not param:
            continue
        old = old_axes[index] if index < len(old_axes) and isinstance(old_axes[index], dict) else {}
        axis: dict[str, Any] = dict(old) if old.get("param") == param else {}
        axis["param"] = param
        text = (values or "").strip()
        if param == MATRIX:
            axis.pop("values", None)
            if text:
                axis["values"] = text
            axis["delimiter"] = matrix.get("delimiter", "comma")
            axis["at_start"] = bool(matrix.get("at_start", False))
            axis["target"] = matrix.get("target", "prompt")
        else:
            axis["values"] = text
        axes.append(axis)
    document["axes"] = axes
    names = _axis_names(axes)
    chosen = {k: _layout_name(layout.get(k), names) for k in ("x", "y")}
    pages = [n for n in (_layout_name(v, names) for v in layout.get("page") or []) if n]
    if chosen["x"] or chosen["y"] or pages:
        document["layout"] = {k: v for k, v in (("x", chosen["x"]), ("y", chosen["y"]), ("page", pages)) if v}
    else:
        document.pop("layout", None)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000)


def _axis_names(axes: list[dict[str, Any]]) -> list[str]:
    used: list[str] = []
    for axis in axes:
        name = axis.get("name") or axis["param"]
        candidate, n = name, 2
        while candidate in used:
            candidate, n = f"{name}_{n}", n + 1
        used.append(candidate)
    return used


def _layout_name(choice: str | None, names: list[str]) -> str | None:
    if not choice or choice == AUTO or not str(choice).startswith("Axis "):
        return None
    try:
        index = int(str(choice).split()[1]) - 1
    except (IndexError, ValueError):
        return None
    return names[index] if 0 <= index < len(names) else None


def spec_to_rows(text: str) -> tuple[list[tuple[str, str]], dict[str, Any], dict[str, Any], str | None]:
    """The rows, matrix options and layout a spec text describes; an error message if it can't be read."""
    from sd_sweep.errors import SpecError
    from sd_sweep.spec import parse_text

    try:
        document = parse_text(text or "", "spec")
    except SpecError as exc:
        return [], {}, {}, str(exc)
    axes = document.get("axes") if isinstance(document.get("axes"), list) else []
    rows: list[tuple[str, str]] = []
    matrix: dict[str, Any] = {}
    for axis in axes[:MAX_ROWS]:
        if not isinstance(axis, dict):
            continue
        param = str(axis.get("param", ""))
        values = axis.get("values", "")
        text_values = (
            join_values([str(v) for v in values])
            if isinstance(values, list)
            else ("" if values is None else str(values))
        )
        rows.append((param, text_values))
        if param == MATRIX:
            options = {
                **(axis.get("options") or {}),
                **{k: axis[k] for k in ("delimiter", "at_start", "target") if k in axis},
            }
            matrix = options
    names = _axis_names(
        [
            {"param": p, **({"name": a["name"]} if isinstance(a, dict) and a.get("name") else {})}
            for (p, _), a in zip(rows, axes)
        ]
    )
    layout_doc = document.get("layout") if isinstance(document.get("layout"), dict) else {}

    def choice(name: Any) -> str:
        return f"Axis {names.index(name) + 1}" if name in names else AUTO

    pages = layout_doc.get("page", layout_doc.get("pages", [])) or []
    layout = {
        "x": choice(layout_doc.get("x")),
        "y": choice(layout_doc.get("y")),
        "page": [choice(p) for p in ([pages] if isinstance(pages, str) else pages) if choice(p) != AUTO],
    }
    error = f"only the first {MAX_ROWS} axes fit in the rows" if len(axes) > MAX_ROWS else None
    return rows, matrix, layout, error


def summary_html(result: dict[str, Any]) -> str:
    import html

    if not result.get("ok"):
        items = "".join(
            f"<li><code>{html.escape(str(e['field']))}</code>: {html.escape(str(e['message']))}"
            f" (got <code>{html.escape(repr(e['value']))}</code>)</li>"
            for e in result.get("errors", [])
        )
        return f"<div class='sweep-summary sweep-invalid'><b>Cannot run this sweep:</b><ul>{items}</ul></div>"
    est = result["estimate"]
    loads = ""
    if est.get("checkpoint_loads"):
        loads += f", {est['checkpoint_loads']} checkpoint load(s)"
    if est.get("vae_loads"):
        loads += f", {est['vae_loads']} VAE load(s)"
    dims = " x ".join(f"{d['title']} ({len(d['labels'])})" for d in result.get("dimensions", []))
    return (
        f"<div class='sweep-summary sweep-valid'><b>{est['cells']} cells, {est['images']} images</b> in "
        f"{est['batches']} batches, {est['sampling_steps']} sampling steps{loads}"
        f"{'<br>' + html.escape(dims) if dims else ''}</div>"
    )


def build_ui(script: Any, is_img2img: bool) -> list[Any]:  # noqa: PLR0915 - one flat layout
    """Create the controls in the current Blocks context; returns ``[spec_text]``."""
    import gradio as gr

    from sd_sweep.webui.runner import check_spec

    choices = param_choices(is_img2img)
    tab = "img2img" if is_img2img else "txt2img"

    def eid(name: str) -> str:
        return script.elem_id(name) if hasattr(script, "elem_id") else f"sweep_{tab}_{name}"

    gr.Markdown(PARAM_HINT)
    row_groups, row_params, row_values, row_fills = [], [], [], []
    for index in range(MAX_ROWS):
        with gr.Row(visible=index < START_ROWS, elem_id=eid(f"axis_row_{index + 1}")) as row:
            param = gr.Dropdown(
                label=f"Axis {index + 1} parameter",
                choices=choices,
                value=None,
                allow_custom_value=True,
                elem_id=eid(f"axis_param_{index + 1}"),
            )
            values = gr.Textbox(
                label=f"Axis {index + 1} values", lines=1, value="", elem_id=eid(f"axis_values_{index + 1}")
            )
            fill = gr.Button(value="\U0001f4d2", elem_id=eid(f"axis_fill_{index + 1}"), elem_classes=["tool"])
        row_groups.append(row)
        row_params.append(param)
        row_values.append(values)
        row_fills.append(fill)
    visible_rows = gr.State(START_ROWS)
    with gr.Row():
        add = gr.Button(value="Add axis", elem_id=eid("add_axis"))
        remove = gr.Button(value="Remove last axis", elem_id=eid("remove_axis"))
    with gr.Row():
        at_start = gr.Checkbox(
            label="Prompt matrix: put variable parts at start", value=False, elem_id=eid("pm_at_start")
        )
        delimiter = gr.Radio(
            label="Prompt matrix: joined with", choices=["comma", "space"], value="comma", elem_id=eid("pm_delimiter")
        )
        target = gr.Radio(
            label="Prompt matrix: prompt",
            choices=["prompt", "negative_prompt"],
            value="prompt",
            elem_id=eid("pm_target"),
        )
    layout_choices = [AUTO] + [f"Axis {i + 1}" for i in range(MAX_ROWS)]
    with gr.Row():
        x_axis = gr.Dropdown(label="Columns (X)", choices=layout_choices, value=AUTO, elem_id=eid("layout_x"))
        y_axis = gr.Dropdown(label="Rows (Y)", choices=layout_choices, value=AUTO, elem_id=eid("layout_y"))
        pages = gr.Dropdown(
            label="Pages", choices=layout_choices[1:], value=[], multiselect=True, elem_id=eid("layout_pages")
        )
    spec = gr.Textbox(
        label="Sweep spec (YAML or JSON)",
        lines=10,
        value="",
        placeholder="axes:\n- param: cfg_scale\n  values: 5, 7, 9",
        elem_id=eid("spec"),
    )
    with gr.Row():
        load = gr.Button(value="Load spec into rows", elem_id=eid("load_spec"))
    summary = gr.HTML(value="", elem_id=eid("summary"))

    option_inputs = [at_start, delimiter, target, x_axis, y_axis, pages]
    row_inputs = [*row_params, *row_values]

    def write_spec(current: str, *values: Any) -> str:
        params = values[:MAX_ROWS]
        texts = values[MAX_ROWS : 2 * MAX_ROWS]
        at_s, delim, tgt, xa, ya, pg = values[2 * MAX_ROWS :]
        rows = list(zip(params, texts))
        while rows and not param_of(rows[-1][0]):
            rows.pop()
        return rows_to_spec(
            current,
            rows,
            {"at_start": at_s, "delimiter": delim or "comma", "target": tgt or "prompt"},
            {"x": xa, "y": ya, "page": pg or []},
        )

    for component in [*row_inputs, *option_inputs]:
        component.change(fn=write_spec, inputs=[spec, *row_inputs, *option_inputs], outputs=[spec])

    prompt_inputs = _prompt_components(script, tab)

    def refresh_summary(text: str, *prompts: Any) -> str:
        base: dict[str, Any] = {}
        if prompts:
            base["prompt"] = prompts[0] or ""
        if len(prompts) > 1:
            base["negative_prompt"] = prompts[1] or ""
        if not (text or "").strip():
            return ""
        return summary_html(check_spec(text, base, is_img2img=is_img2img))

    spec.change(fn=refresh_summary, inputs=[spec, *prompt_inputs], outputs=[summary])
    for component in prompt_inputs:
        component.change(fn=refresh_summary, inputs=[spec, *prompt_inputs], outputs=[summary])

    def show_rows(count: int) -> list[Any]:
        return [count, *(gr.update(visible=i < count) for i in range(MAX_ROWS))]

    add.click(
        fn=lambda n: show_rows(min(MAX_ROWS, int(n or 0) + 1)),
        inputs=[visible_rows],
        outputs=[visible_rows, *row_groups],
    )

    def remove_last(n: int, *values: Any) -> list[Any]:
        count = max(1, int(n or 1) - 1)
        cleared = [gr.update(value=None) if i >= count else gr.update() for i in range(MAX_ROWS)]
        cleared_values = [gr.update(value="") if i >= count else gr.update() for i in range(MAX_ROWS)]
        return [*show_rows(count), *cleared, *cleared_values]

    remove.click(
        fn=remove_last,
        inputs=[visible_rows],
        outputs=[visible_rows, *row_groups, *row_params, *row_values],
    )

    for param, values, fill in zip(row_params, row_values, row_fills):
        fill.click(
            fn=lambda entry: join_values(values_for(param_of(entry), is_img2img)) or gr.update(),
            inputs=[param],
            outputs=[values],
        )

    def load_rows(text: str) -> list[Any]:
        rows, matrix, layout, error = spec_to_rows(text)
        count = max(START_ROWS, len(rows))
        params = [entry_of(rows[i][0], choices) if i < len(rows) else None for i in range(MAX_ROWS)]
        texts = [rows[i][1] if i < len(rows) else "" for i in range(MAX_ROWS)]
        message = (
            summary_html({"ok": False, "errors": [{"field": "spec", "value": None, "message": error}]})
            if error
            else gr.update()
        )
        return [
            *show_rows(count),
            *params,
            *texts,
            bool(matrix.get("at_start", False)),
            matrix.get("delimiter", "comma"),
            matrix.get("target", "prompt"),
            layout.get("x", AUTO),
            layout.get("y", AUTO),
            layout.get("page", []),
            message,
        ]

    load.click(
        fn=load_rows,
        inputs=[spec],
        outputs=[visible_rows, *row_groups, *row_params, *row_values, *option_inputs, summary],
    )
    return [spec]


def _prompt_components(script: Any, tab: str) -> list[Any]:
    found = getattr(script, "sweep_prompt_components", {}) or {}
    return [c for c in (found.get(f"{tab}_prompt"), found.get(f"{tab}_neg_prompt")) if c is not None]
