"""The Sweep script's gradio UI; builds under gradio 3.41.2 (AUTOMATIC1111 v1.10.1) and 4.40.0 (Forge).

Only APIs common to both are used: ``gr.update``, constructor keywords both accept, ``.change`` and
``.click`` with ``fn/inputs/outputs``. ``ui()`` returns one control, the spec text; the axis rows,
prompt-matrix options and layout write that text, so what runs is always what the text says.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from typing import Any

from sd_sweep.backends.webui.params import unreused_first_pass_lines

log = logging.getLogger("sd_sweep.webui")

MAX_ROWS = 8
"""Axis rows built (hidden until "Add axis"); ``ui()`` always returns the same controls."""
START_ROWS = 2
AUTO = "(auto)"
MATRIX = "prompt_matrix"

PARAM_HINT = (
    "Each row is one axis: pick a parameter and type its values, comma-separated (`5, 7, 9`) or as ranges "
    "(`10-30 (+10)`, `1-2 [5]`); \U0001f4d2 fills in every choice the WebUI offers. The rows write the spec "
    "below, which is what runs; a spec typed or pasted there fills the rows when you leave the box."
)
EMPTY_SUMMARY = "No axes yet: pick a parameter in a row (or paste a spec) to see the cells and images it makes."
TARGETS = {"prompt": "prompt", "negative prompt": "negative_prompt"}
"""Prompt-matrix target: the radio's label -> the spec's value."""
TARGET_LABELS = {v: k for k, v in TARGETS.items()}
MATRIX_DEFAULTS = {"delimiter": "comma", "at_start": False, "target": "prompt"}

TAB_FIELDS = {
    "prompt": "prompt",
    "neg_prompt": "negative_prompt",
    "steps": "steps",
    "sampling": "sampler_name",
    "scheduler": "scheduler",
    "cfg_scale": "cfg_scale",
    "width": "width",
    "height": "height",
    "batch_size": "batch_size",
}
"""Controls of the tab (elem_id ``{tab}_{suffix}`` in WebUI v1.10.1 and Forge) -> base parameter."""


def param_choices(is_img2img: bool) -> list[str]:
    """Dropdown entries ``"Title (name)"``: the engine's parameters, then the X/Y/Z plot's axes of this tab."""
    from sd_sweep.backends.webui.params import HIRES_CFG, TXT2IMG_ONLY
    from sd_sweep.core.params import PARAMS

    skip = TXT2IMG_ONLY | {HIRES_CFG} if is_img2img else frozenset()
    entries = [f"{d.title} ({d.name})" for d in PARAMS.values() if d.name not in skip]
    entries += ["LoRA weight (lora:NAME)", "Setting (setting:KEY)"]
    try:
        from sd_sweep.backends.webui.backend import host_axes

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
    from sd_sweep.core.params import param_def

    try:
        from sd_sweep.backends.webui.backend import WebUIBackend, host_axes, host_choices

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
    """Values as the row's text: ``a, b`` when no value needs quoting, else csv (quotes need no space after
    the comma: the values are split like the X/Y/Z plot's, without ``skipinitialspace``)."""
    if not any(ch in str(v) for v in values for ch in ',"\n\r'):
        return ", ".join(str(v).strip() for v in values)
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
    from sd_sweep.core.errors import SpecError
    from sd_sweep.core.spec import parse_text

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


def spec_name(text: str) -> str:
    """The ``name`` the spec text gives, or "" (none, or a text that does not parse)."""
    from sd_sweep.core.errors import SpecError
    from sd_sweep.core.spec import parse_text

    try:
        document = parse_text(text or "", "spec")
    except SpecError:
        return ""
    name = document.get("name")
    return "" if name is None else str(name)


def name_to_spec(current: str, name: str) -> str | None:
    """The spec text with ``name`` set first (removed when blank), or None to keep ``current``: the name
    is already that, or the text does not parse (it is the user's, half typed)."""
    import yaml

    name = (name or "").strip()
    try:
        document = yaml.safe_load(current) if current and current.strip() else {}
    except yaml.YAMLError:
        return None
    if document is None:
        document = {}
    if not isinstance(document, dict) or str(document.get("name") or "") == name:
        return None
    rest = {k: v for k, v in document.items() if k != "name"}
    updated = {"name": name, **rest} if name else rest
    return yaml.safe_dump(updated, sort_keys=False, allow_unicode=True, width=1000) if updated else ""


def field_label(field: str) -> str:
    """``axes[2].values`` -> ``Axis 3 values``: the row the user sees, not the spec's index."""
    match = re.match(r"axes\[(\d+)\]\.?(.*)", field or "")
    if not match:
        return field
    rest = match.group(2).replace(".", " ")
    return f"Axis {int(match.group(1)) + 1}" + (f" {rest}" if rest else "")


def summary_html(result: dict[str, Any]) -> str:
    import html

    if result.get("empty"):
        return f"<div class='sweep-summary sweep-empty'>{html.escape(EMPTY_SUMMARY)}</div>"
    if not result.get("ok"):
        items = "".join(
            f"<li><b>{html.escape(field_label(str(e['field'])))}</b>: {html.escape(str(e['message']))}"
            + (f" (got <code>{html.escape(repr(e['value']))}</code>)" if e.get("value") not in (None, "") else "")
            + "</li>"
            for e in result.get("errors", [])
        )
        return f"<div class='sweep-summary sweep-invalid'><b>Cannot run this sweep:</b><ul>{items}</ul></div>"
    est = result["estimate"]
    loads = ""
    if est.get("checkpoint_loads"):
        loads += f", {est['checkpoint_loads']} checkpoint load(s)"
    if est.get("vae_loads"):
        loads += f", {est['vae_loads']} VAE load(s)"
    dims = " \u00d7 ".join(f"{d['title']} ({len(d['labels'])})" for d in result.get("dimensions", []))
    notes = "".join(f"<br>{html.escape(line)}" for line in unreused_first_pass_lines(est))
    return (
        f"<div class='sweep-summary sweep-valid'><b>{est['cells']} cells, {est['images']} images</b> in "
        f"{est['batches']} batches, {est['sampling_steps']} sampling steps{loads}{notes}"
        f"{'<br>' + html.escape(dims) if dims else ''}"
        f"{'<br>Sweep name (run folder): ' + html.escape(result['name']) if result.get('name') else ''}</div>"
    )


def controls_to_spec(current: str, values: tuple[Any, ...] | list[Any], edited: int | None = None) -> str | None:
    """The spec text after an edit of the controls, or None to keep ``current`` as it is.

    ``values``: the 8 row parameters, the 8 row values, then at_start, delimiter, target, x, y, pages.
    ``edited``: the index (in ``values``) of the control the user just changed. Every other row must still
    say what the text says; if not, the rows are stale (the text was edited and the rows not yet loaded
    from it) and the text is kept: rewriting it from stale rows would drop what the user typed there.
    """
    params = list(values[:MAX_ROWS])
    texts = list(values[MAX_ROWS : 2 * MAX_ROWS])
    at_s, delim, tgt, xa, ya, pg = values[2 * MAX_ROWS :]
    if edited is not None and not rows_in_sync(current, params, texts, edited):
        return None
    rows = list(zip(params, texts))
    while rows and not param_of(rows[-1][0]):
        rows.pop()
    text = rows_to_spec(
        current,
        rows,
        {"at_start": at_s, "delimiter": delim or "comma", "target": TARGETS.get(tgt, tgt or "prompt")},
        {"x": xa, "y": ya, "page": pg or []},
    )
    return None if same_document(current, text) else text


def rows_in_sync(current: str, params: list[Any], texts: list[Any], edited: int) -> bool:
    """Whether the rows, but the edited control, match the axes of the spec text.

    A text that does not parse is never in sync: it is the user's, half typed; the summary shows why it
    does not parse, and an empty text lets the rows write a new one.
    """
    if not (current or "").strip():
        return True
    rows, _matrix, _layout, error = spec_to_rows(current)
    if error and not rows:
        return False
    for index in range(MAX_ROWS):
        want_param, want_text = rows[index] if index < len(rows) else ("", "")
        if index != edited and param_of(params[index]) != want_param:
            return False
        if MAX_ROWS + index != edited and param_of(want_param) and (texts[index] or "").strip() != want_text.strip():
            return False
    return len(rows) <= MAX_ROWS and not error


def uses_matrix(params: tuple[Any, ...] | list[Any]) -> bool:
    return any(param_of(p) == MATRIX for p in params)


def build_ui(script: Any, is_img2img: bool) -> list[Any]:  # noqa: PLR0915 - one flat layout
    """Create the controls in the current Blocks context; returns ``[spec_text]``.

    The rows and options write the spec on the user's own edits (``.input``, and ``.then`` after the
    buttons), never on values set by the server: loading a spec into the rows does not rewrite it, so a
    pasted text keeps its comments and form until a row is edited.
    """
    import html

    import gradio as gr

    from sd_sweep.webui.runner import check_spec

    choices = param_choices(is_img2img)
    tab = "img2img" if is_img2img else "txt2img"

    def eid(name: str) -> str:
        return script.elem_id(name) if hasattr(script, "elem_id") else f"sweep_{tab}_{name}"

    gr.Markdown(PARAM_HINT, elem_id=eid("hint"))
    row_groups, row_params, row_values, row_fills = [], [], [], []
    for index in range(MAX_ROWS):
        with gr.Row(visible=index < START_ROWS, elem_id=eid(f"axis_row_{index + 1}"), variant="compact") as row:
            param = gr.Dropdown(
                label=f"Axis {index + 1}",
                choices=choices,
                value=None,
                allow_custom_value=True,
                scale=2,
                min_width=160,
                elem_id=eid(f"axis_param_{index + 1}"),
            )
            values = gr.Textbox(
                label=f"Axis {index + 1} values",
                lines=1,
                max_lines=4,
                value="",
                placeholder="e.g. 5, 7, 9  or  10-30 (+10)",
                scale=3,
                min_width=160,
                elem_id=eid(f"axis_values_{index + 1}"),
            )
            fill = gr.Button(
                value="\U0001f4d2",
                elem_id=eid(f"axis_fill_{index + 1}"),
                elem_classes=["tool", "sweep-fill"],
                scale=0,
                min_width=40,
            )
        row_groups.append(row)
        row_params.append(param)
        row_values.append(values)
        row_fills.append(fill)
    visible_rows = gr.State(START_ROWS)
    with gr.Row(elem_id=eid("axis_buttons")):
        add = gr.Button(value="Add axis", size="sm", scale=0, min_width=120, elem_id=eid("add_axis"))
        remove = gr.Button(value="Remove last axis", size="sm", scale=0, min_width=160, elem_id=eid("remove_axis"))
    with gr.Row(visible=False, elem_id=eid("pm_options")) as matrix_row:
        target = gr.Radio(
            label="Prompt matrix varies the",
            choices=list(TARGETS),
            value="prompt",
            elem_id=eid("pm_target"),
        )
        delimiter = gr.Radio(
            label="Prompt matrix parts joined with",
            choices=["comma", "space"],
            value="comma",
            elem_id=eid("pm_delimiter"),
        )
        at_start = gr.Checkbox(
            label="Put the varying parts at the start of the prompt", value=False, elem_id=eid("pm_at_start")
        )
    layout_choices = [AUTO] + [f"Axis {i + 1}" for i in range(MAX_ROWS)]
    with gr.Row(elem_id=eid("layout")):
        x_axis = gr.Dropdown(
            label="Grid columns (X)", choices=layout_choices, value=AUTO, min_width=120, elem_id=eid("layout_x")
        )
        y_axis = gr.Dropdown(
            label="Grid rows (Y)", choices=layout_choices, value=AUTO, min_width=120, elem_id=eid("layout_y")
        )
        pages = gr.Dropdown(
            label="One grid per value of",
            choices=layout_choices[1:],
            value=[],
            multiselect=True,
            min_width=160,
            elem_id=eid("layout_pages"),
        )
    summary = gr.HTML(value=summary_html({"empty": True}), elem_id=eid("summary"))
    name_box = gr.Textbox(
        label="Sweep name (its run folder; a sweep continues there)",
        lines=1,
        max_lines=1,
        value="",
        placeholder="from the first words of the prompt",
        elem_id=eid("name"),
    )
    spec = gr.Textbox(
        label="Sweep spec (YAML or JSON): this is what runs",
        lines=8,
        max_lines=30,
        value="",
        placeholder="axes:\n- param: cfg_scale\n  values: 5, 7, 9\n- param: sampler_name\n  values: Euler a, DPM++ 2M",
        elem_id=eid("spec"),
    )
    load = gr.Button(value="Load spec into rows", size="sm", elem_id=eid("load_spec"))

    option_inputs = [at_start, delimiter, target, x_axis, y_axis, pages]
    row_inputs = [*row_params, *row_values]
    spec_inputs = [spec, *row_inputs, *option_inputs]

    def writer(edited: int | None) -> Any:
        def write_spec(current: str, *values: Any) -> Any:
            text = controls_to_spec(current, values, edited)
            return gr.update() if text is None else text

        return write_spec

    for index, component in enumerate([*row_inputs, *option_inputs]):
        component.input(fn=writer(index), inputs=spec_inputs, outputs=[spec])
    # On leaving a box, write again: a typed parameter (lora:NAME) may only be committed on blur, and gradio 3
    # drops an event fired while the same one is still running (the last keystrokes of fast typing).
    for index, component in enumerate(row_inputs):
        component.blur(fn=writer(index), inputs=spec_inputs, outputs=[spec])
    for param in row_params:
        param.change(fn=lambda *p: gr.update(visible=uses_matrix(p)), inputs=row_params, outputs=[matrix_row])
    write_spec = writer(None)

    def write_name(current: str, value: str) -> Any:
        text = name_to_spec(current, value)
        return gr.update() if text is None else text

    name_box.input(fn=write_name, inputs=[spec, name_box], outputs=[spec])
    name_box.blur(fn=write_name, inputs=[spec, name_box], outputs=[spec])

    tab_names, tab_inputs = _tab_inputs(script, tab)

    def refresh_summary(text: str, *tab_values: Any) -> str:
        base = {name: value for name, value in zip(tab_names, tab_values) if value is not None}
        if not (text or "").strip():
            return summary_html({"empty": True})
        return summary_html(check_spec(text, base, is_img2img=is_img2img))

    spec.change(fn=refresh_summary, inputs=[spec, *tab_inputs], outputs=[summary])
    for component in tab_inputs:
        component.change(fn=refresh_summary, inputs=[spec, *tab_inputs], outputs=[summary])

    def show_rows(count: int) -> list[Any]:
        return [count, *(gr.update(visible=i < count) for i in range(MAX_ROWS))]

    add.click(
        fn=lambda n: show_rows(min(MAX_ROWS, int(n or 0) + 1)),
        inputs=[visible_rows],
        outputs=[visible_rows, *row_groups],
    )

    def remove_last(n: int) -> list[Any]:
        count = max(1, int(n or 1) - 1)
        cleared = [gr.update(value=None) if i >= count else gr.update() for i in range(MAX_ROWS)]
        cleared_values = [gr.update(value="") if i >= count else gr.update() for i in range(MAX_ROWS)]
        return [*show_rows(count), *cleared, *cleared_values]

    remove.click(
        fn=remove_last,
        inputs=[visible_rows],
        outputs=[visible_rows, *row_groups, *row_params, *row_values],
    ).then(fn=write_spec, inputs=spec_inputs, outputs=[spec])

    for param, values, fill in zip(row_params, row_values, row_fills):
        fill.click(
            fn=lambda entry: join_values(values_for(param_of(entry), is_img2img)) or gr.update(),
            inputs=[param],
            outputs=[values],
        ).then(fn=write_spec, inputs=spec_inputs, outputs=[spec])

    def load_rows(text: str, *tab_values: Any) -> list[Any]:
        keep = [gr.update()] * (1 + 3 * MAX_ROWS + len(option_inputs))
        if not (text or "").strip():
            return [*keep, summary_html({"empty": True}), gr.update()]
        rows, matrix, layout, error = spec_to_rows(text)
        if error:
            # leave the rows as they are: rows loaded from part of the text would drop the rest at the next
            # row edit. A text that does not parse is already reported by the summary.
            if not rows:
                return [*keep, refresh_summary(text, *tab_values), gr.update()]
            note = f"This spec has more axes than the {MAX_ROWS} rows show: edit it as text (it runs as written)."
            summary_text = refresh_summary(text, *tab_values) + f"<div class='sweep-note'>{html.escape(note)}</div>"
            return [*keep, summary_text, spec_name(text)]
        count = max(START_ROWS, len(rows))
        params = [entry_of(rows[i][0], choices) if i < len(rows) else None for i in range(MAX_ROWS)]
        texts = [rows[i][1] if i < len(rows) else "" for i in range(MAX_ROWS)]
        return [
            *show_rows(count),
            *params,
            *texts,
            bool(matrix.get("at_start", False)),
            matrix.get("delimiter", "comma"),
            TARGET_LABELS.get(matrix.get("target", "prompt"), "prompt"),
            layout.get("x", AUTO),
            layout.get("y", AUTO),
            layout.get("page", []),
            refresh_summary(text, *tab_values),  # again: gradio 3 may have dropped the last change while typing
            spec_name(text),
        ]

    load_outputs = [visible_rows, *row_groups, *row_params, *row_values, *option_inputs, summary, name_box]
    load.click(fn=load_rows, inputs=[spec, *tab_inputs], outputs=load_outputs)
    spec.blur(fn=load_rows, inputs=[spec, *tab_inputs], outputs=load_outputs)
    return [spec]


def same_document(old: str, new: str) -> bool:
    """Whether two spec texts say the same (so an edit that changes nothing keeps the user's text as is).

    Prompt-matrix options left at their defaults count as the same as options written out.
    """
    import yaml

    try:
        return bool((old or "").strip()) and _normalised(yaml.safe_load(old)) == _normalised(yaml.safe_load(new))
    except yaml.YAMLError:
        return False


def _normalised(document: Any) -> Any:
    if not isinstance(document, dict) or not isinstance(document.get("axes"), list):
        return document
    axes = [
        {**MATRIX_DEFAULTS, **axis} if isinstance(axis, dict) and axis.get("param") == MATRIX else axis
        for axis in document["axes"]
    ]
    return {**document, "axes": axes}


def _tab_inputs(script: Any, tab: str) -> tuple[list[str], list[Any]]:
    """The tab's controls the script saw created (prompt, steps, size, ...) and their base names."""
    found = getattr(script, "sweep_tab_components", {}) or {}
    pairs = [(name, found[f"{tab}_{suffix}"]) for suffix, name in TAB_FIELDS.items() if f"{tab}_{suffix}" in found]
    return [name for name, _ in pairs], [component for _, component in pairs]
