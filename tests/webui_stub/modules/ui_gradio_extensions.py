# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/ui_gradio_extensions.py: reload_javascript (the page's scripts in <head>, styles before </body>).

The WebUI links script.js, every ``javascript/*.js`` of itself and of its extensions, and every
``style.css``; the stand-in writes their text into the page instead of serving them as files.
"""

from __future__ import annotations

import os

import gradio as gr

from modules import paths

_original = gr.routes.templates.TemplateResponse


def _files(roots, folder, suffix):
    found = []
    for root in roots:
        directory = os.path.join(root, folder) if folder else root
        if os.path.isdir(directory):
            found += [os.path.join(directory, n) for n in sorted(os.listdir(directory)) if n.endswith(suffix)]
    return found


def _read(path):
    with open(path, encoding="utf8") as file:
        return file.read()


def javascript_html(extension_dirs):  # mirrors modules/ui_gradio_extensions.py: javascript_html
    scripts = [os.path.join(paths.script_path, "script.js")]
    scripts += _files([paths.script_path, *extension_dirs], "javascript", ".js")
    return "".join(f'<script type="text/javascript">{_read(p)}</script>\n' for p in scripts)


def css_html(extension_dirs):  # mirrors modules/ui_gradio_extensions.py: css_html
    sheets = [p for p in _files(extension_dirs, "", ".css") if os.path.basename(p) == "style.css"]
    return "".join(f"<style>{_read(p)}</style>" for p in sheets)


def reload_javascript(extension_dirs=()):  # mirrors modules/ui_gradio_extensions.py: reload_javascript
    js = javascript_html(extension_dirs)
    css = css_html(extension_dirs)

    def template_response(*args, **kwargs):
        res = _original(*args, **kwargs)
        res.body = res.body.replace(b"</head>", f"{js}</head>".encode()).replace(b"</body>", f"{css}</body>".encode())
        res.init_headers()
        return res

    gr.routes.templates.TemplateResponse = template_response


def restore_javascript():
    """Undo ``reload_javascript``: other tests in the process build pages of their own."""
    gr.routes.templates.TemplateResponse = _original
