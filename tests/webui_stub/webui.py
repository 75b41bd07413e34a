# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""Start the stand-in WebUI: load scripts like modules/scripts.py, build the script UIs, serve the API's
script selection like modules/api/api.py (``text2imgapi``/``img2imgapi``)."""

from __future__ import annotations

import os
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_EXTENSION = os.path.join(HERE, "extensions", "fake-axis-ext")


def start(extension_dirs):
    """Load the builtin scripts (our xyz_grid stand-in), then each extension, in order; build the runners."""
    from modules import script_callbacks, scripts

    scripts.load_scripts(extension_dirs=list(extension_dirs), builtin_dir=os.path.join(HERE, "scripts"))
    scripts.scripts_txt2img.initialize_scripts(is_img2img=False)
    scripts.scripts_img2img.initialize_scripts(is_img2img=True)
    build_ui(scripts.scripts_txt2img, "txt2img")  # mirrors modules/ui.py: create_ui builds both tabs
    build_ui(scripts.scripts_img2img, "img2img")
    script_callbacks.ui_settings_callback()  # mirrors modules/ui_settings.py: on_ui_settings runs in create_ui
    return scripts


def build_ui(runner, tabname):
    """Build one tab's prompt boxes and script UIs in a Blocks (mirrors modules/ui.py create_ui)."""
    import gradio as gr

    with gr.Blocks() as demo:
        prompt = gr.Textbox(label="Prompt", elem_id=f"{tabname}_prompt")
        runner.after_component(prompt)
        negative = gr.Textbox(label="Negative prompt", elem_id=f"{tabname}_neg_prompt")
        runner.after_component(negative)
        # mirrors modules/processing_scripts/sampler.py:27 (steps) and modules/ui.py:299 (batch size)
        steps = gr.Slider(minimum=1, maximum=150, step=1, value=20, label="Sampling steps", elem_id=f"{tabname}_steps")
        runner.after_component(steps)
        batch_size = gr.Slider(
            minimum=1, maximum=8, step=1, value=1, label="Batch size", elem_id=f"{tabname}_batch_size"
        )
        runner.after_component(batch_size)
        inputs = runner.setup_ui()
    return demo, inputs


def default_script_args(runner):
    """mirrors modules/api/api.py: Api.init_default_script_args (runs ui() again in a throwaway Blocks)."""
    import gradio as gr

    last = max([1] + [s.args_to for s in runner.scripts if s.args_to])
    script_args = [None] * last
    script_args[0] = 0
    with gr.Blocks():
        for script in runner.scripts:
            if script.ui(script.is_img2img):
                values = [elem.value for elem in script.ui(script.is_img2img)]
                script_args[script.args_from : script.args_to] = values
    return script_args


def api_generate(runner, request: dict, *, is_img2img=False, outdir="outputs"):
    """mirrors modules/api/api.py: text2imgapi/img2imgapi, from script selection to the response."""
    from modules import call_queue, processing, progress, shared

    script_name = request.get("script_name")
    titles = [s.title().lower() for s in runner.selectable_scripts]
    if script_name is None:
        script = None
    elif script_name.lower() not in titles:  # mirrors modules/api/api.py: script_name_to_index
        return SimpleNamespace(status_code=422, json={"detail": f"Script '{script_name}' not found"})
    else:
        script = runner.selectable_scripts[titles.index(script_name.lower())]
    script_args = default_script_args(runner)
    if script is not None:  # mirrors modules/api/api.py: init_script_args (slice assignment)
        script_args[script.args_from : script.args_to] = request.get("script_args", [])
        script_args[0] = runner.selectable_scripts.index(script) + 1
    fields = {
        k: v
        for k, v in request.items()
        if k not in ("script_name", "script_args", "send_images", "save_images", "alwayson_scripts")
    }
    save_images = request.get("save_images", False)
    cls = processing.StableDiffusionProcessingImg2Img if is_img2img else processing.StableDiffusionProcessingTxt2Img
    with call_queue.queue_lock:
        p = cls(**fields)
        p.scripts = runner
        p.is_api = True
        p.outpath_grids = os.path.join(outdir, "grids")
        p.outpath_samples = os.path.join(outdir, "samples")
        p.do_not_save_samples = p.do_not_save_grid = not save_images
        task = progress.create_task_id("txt2img")
        try:
            shared.state.begin(job="scripts_txt2img")
            progress.start_task(task)
            try:
                if script is not None:
                    processed = runner.run(p, *script_args)
                else:
                    p.script_args = tuple(script_args)
                    processed = processing.process_images(p)
            except Exception as exc:  # mirrors modules/api/api.py: api_middleware handle_exception
                body = {"error": type(exc).__name__, "detail": vars(exc).get("detail", ""), "errors": str(exc)}
                return SimpleNamespace(status_code=vars(exc).get("status_code", 500), json=body)
            finally:
                progress.finish_task(task)
        finally:
            shared.state.end()
    return SimpleNamespace(
        status_code=200, json={"images": processed.images, "info": processed.js()}, processed=processed
    )
