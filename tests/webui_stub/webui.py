# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""Start the stand-in WebUI: load scripts like modules/scripts.py, build the script UIs, serve the API's
script selection like modules/api/api.py (``text2imgapi``/``img2imgapi``), and serve the page
(``launch_page``: the tabs, the extensions' tabs and the paste buttons, like modules/ui.py and webui.py)."""

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


CONTROLS = {
    # elem_id suffix -> (the infotext label its paste field reads, the gradio class, its arguments); mirrors
    # modules/ui.py create_ui, modules/ui_toprow.py and modules/processing_scripts/{sampler,seed}.py
    "prompt": ("Prompt", "Textbox", dict(label="Prompt", value="", lines=3)),
    "neg_prompt": ("Negative prompt", "Textbox", dict(label="Negative prompt", value="", lines=2)),
    "steps": ("Steps", "Slider", dict(label="Sampling steps", minimum=1, maximum=150, step=1, value=20)),
    "sampling": ("Sampler", "Dropdown", dict(label="Sampling method", value="Euler a")),
    "width": ("Size-1", "Slider", dict(label="Width", minimum=64, maximum=2048, step=8, value=512)),
    "height": ("Size-2", "Slider", dict(label="Height", minimum=64, maximum=2048, step=8, value=512)),
    "batch_size": ("Batch size", "Slider", dict(label="Batch size", minimum=1, maximum=8, step=1, value=1)),
    "cfg_scale": ("CFG scale", "Slider", dict(label="CFG Scale", minimum=1.0, maximum=30.0, step=0.5, value=7.0)),
    "seed": ("Seed", "Number", dict(label="Seed", value=-1, precision=0)),
}
SCRIPT_TEST_CONTROLS = ("prompt", "neg_prompt", "steps", "batch_size")
"""The controls ``build_ui`` makes: the script tests assert on what the Sweep script sees of them."""


def _sampler_names():
    from modules import sd_samplers

    return [s.name for s in sd_samplers.all_samplers]


def _tab_controls(runner, tabname, suffixes):
    """The tab's controls in order, each followed by the scripts' ``after_component`` (mirrors modules/ui.py)."""
    import gradio as gr

    made = []
    for suffix in suffixes:
        label, kind, kwargs = CONTROLS[suffix]
        if kind == "Dropdown":
            kwargs = {**kwargs, "choices": _sampler_names()}
        component = getattr(gr, kind)(elem_id=f"{tabname}_{suffix}", **kwargs)
        runner.after_component(component)
        made.append((component, label))
    return made


def build_ui(runner, tabname):
    """Build one tab's prompt boxes and script UIs in a Blocks (mirrors modules/ui.py create_ui)."""
    import gradio as gr

    with gr.Blocks() as demo:
        _tab_controls(runner, tabname, SCRIPT_TEST_CONTROLS)
        inputs = runner.setup_ui()
    return demo, inputs


def create_ui():
    """The page (mirrors modules/ui.py create_ui): txt2img and img2img tabs with their paste fields and
    script UIs, the extensions' ``on_ui_tabs`` tabs, the paste buttons connected.

    Each tab gets a ScriptRunner of its own, so the page's script instances leave those of
    ``start`` (which the script tests inspect) untouched.
    """
    import gradio as gr

    from modules import infotext_utils, script_callbacks, scripts, shared

    infotext_utils.reset()
    interfaces = []
    for tabname, is_img2img in (("txt2img", False), ("img2img", True)):
        runner = scripts.ScriptRunner()
        runner.initialize_scripts(is_img2img=is_img2img)
        with gr.Blocks(analytics_enabled=False) as interface:
            fields = _tab_controls(runner, tabname, CONTROLS)
            runner.setup_ui()
        infotext_utils.add_paste_fields(tabname, None, [infotext_utils.PasteField(c, label) for c, label in fields])
        interfaces.append((interface, tabname, tabname))
    interfaces += script_callbacks.ui_tabs_callback()
    shared.tab_names = [label for _, label, _ in interfaces]
    with gr.Blocks(analytics_enabled=False, title="Stable Diffusion") as demo:
        infotext_utils.connect_paste_params_buttons()
        with gr.Tabs(elem_id="tabs"):
            for interface, label, ifid in interfaces:
                with gr.TabItem(label, id=ifid, elem_id=f"tab_{ifid}"):
                    interface.render()
    return demo


def launch_page(extension_dirs):
    """Serve the page like webui.py: the scripts injected, ``demo.queue(64)``, ``launch`` on a free loopback
    port, then ``app_started_callback(demo, app)`` adds the extensions' routes. Returns the demo and its URL;
    ``close_page(demo)`` stops it."""
    from modules import script_callbacks, shared, ui_gradio_extensions

    ui_gradio_extensions.reload_javascript(extension_dirs)
    demo = create_ui()
    shared.demo = demo
    demo.queue(64)
    app, local_url, _ = demo.launch(
        server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    app.user_middleware = [m for m in app.user_middleware if m.cls.__name__ != "CORSMiddleware"]
    script_callbacks.app_started_callback(demo, app)
    return demo, local_url.rstrip("/")


def close_page(demo):
    """Stop the page's server at once: uvicorn would otherwise wait for the browser's open connections."""
    from modules import ui_gradio_extensions

    server = getattr(demo, "server", None)
    if server is not None:
        server.force_exit = True
    demo.close()
    ui_gradio_extensions.restore_javascript()


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
