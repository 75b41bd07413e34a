# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/scripts.py: Script, AlwaysVisible, scripts_data, basedir, load_scripts, ScriptRunner."""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections import namedtuple

from modules import errors, paths, script_callbacks, script_loading

AlwaysVisible = object()  # mirrors modules/scripts.py: AlwaysVisible


class OnComponent:  # mirrors modules/scripts.py: OnComponent
    def __init__(self, component):
        self.component = component


class Script:  # mirrors modules/scripts.py: Script
    name = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname = None
    group = None
    controls = None
    on_before_component_elem_id = None
    on_after_component_elem_id = None

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def run(self, p, *args):
        pass

    def on_after_component(self, callback, *, elem_id):  # mirrors modules/scripts.py: Script.on_after_component
        if self.on_after_component_elem_id is None:
            self.on_after_component_elem_id = []
        self.on_after_component_elem_id.append((elem_id, callback))

    def elem_id(self, item_id):  # mirrors modules/scripts.py: Script.elem_id
        need_tabname = self.show(True) == self.show(False)
        tabkind = "img2img" if self.is_img2img else "txt2img"
        tabname = f"{tabkind}_" if need_tabname else ""
        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"script_{tabname}{title}_{item_id}"


current_basedir = paths.script_path


def basedir():  # mirrors modules/scripts.py: basedir
    return current_basedir


ScriptFile = namedtuple("ScriptFile", ["basedir", "filename", "path"])  # mirrors modules/scripts.py: ScriptFile
scripts_data = []  # mirrors modules/scripts.py: scripts_data
ScriptClassData = namedtuple(
    "ScriptClassData", ["script_class", "path", "basedir", "module"]
)  # mirrors modules/scripts.py
scripts_txt2img = None
scripts_img2img = None


def list_scripts(extension_dirs, builtin_dir=None):
    """The WebUI's own scripts/ first, then each extension's scripts/*.py (top level only)."""
    files = []
    roots = ([(paths.script_path, builtin_dir)] if builtin_dir else []) + [
        (d, os.path.join(d, "scripts")) for d in extension_dirs
    ]
    for base, folder in roots:
        if not folder or not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(".py") and os.path.isfile(path):
                files.append(ScriptFile(base, name, path))
    return files


def load_scripts(extension_dirs=(), builtin_dir=None):  # mirrors modules/scripts.py: load_scripts
    global current_basedir, scripts_txt2img, scripts_img2img
    scripts_data.clear()
    script_callbacks.clear_callbacks()
    syspath = sys.path

    def register_scripts_from_module(module):
        for script_class in module.__dict__.values():
            if inspect.isclass(script_class) and issubclass(script_class, Script) and script_class is not Script:
                scripts_data.append(ScriptClassData(script_class, scriptfile.path, scriptfile.basedir, module))

    for scriptfile in list_scripts(extension_dirs, builtin_dir):
        try:
            if scriptfile.basedir != paths.script_path:
                sys.path = [scriptfile.basedir, *sys.path]
            current_basedir = scriptfile.basedir
            script_module = script_loading.load_module(scriptfile.path)
            register_scripts_from_module(script_module)
        except Exception:
            errors.report(f"Error loading script: {scriptfile.filename}", exc_info=True)
        finally:
            sys.path = syspath
            current_basedir = paths.script_path

    scripts_txt2img = ScriptRunner()
    scripts_img2img = ScriptRunner()


class ScriptRunner:  # mirrors modules/scripts.py: ScriptRunner
    def __init__(self):
        self.scripts = []
        self.selectable_scripts = []
        self.alwayson_scripts = []
        self.titles = []
        self.inputs = [None]
        self.on_after_component_elem_id = {}

    def initialize_scripts(self, is_img2img):  # mirrors modules/scripts.py: ScriptRunner.initialize_scripts
        self.scripts.clear()
        self.selectable_scripts.clear()
        self.alwayson_scripts.clear()
        for script_data in scripts_data:
            script = script_data.script_class()
            script.filename = script_data.path
            script.is_txt2img = not is_img2img
            script.is_img2img = is_img2img
            script.tabname = "img2img" if is_img2img else "txt2img"
            visibility = script.show(is_img2img)
            if visibility == AlwaysVisible:
                self.scripts.append(script)
                self.alwayson_scripts.append(script)
                script.alwayson = True
            elif visibility:
                self.scripts.append(script)
                self.selectable_scripts.append(script)
        for script in self.scripts:
            for elem_id, callback in script.on_after_component_elem_id or []:
                self.on_after_component_elem_id.setdefault(elem_id, []).append((callback, script))

    def after_component(self, component):  # mirrors modules/scripts.py: ScriptRunner.after_component
        for callback, _script in self.on_after_component_elem_id.get(getattr(component, "elem_id", None), []):
            callback(OnComponent(component=component))

    def setup_ui(self):  # mirrors modules/scripts.py: ScriptRunner.setup_ui / create_script_ui
        import gradio as gr

        self.titles = [script.title() for script in self.selectable_scripts]
        self.inputs = [None]
        for script in self.selectable_scripts:
            with gr.Group(visible=False) as group:
                controls = script.ui(script.is_img2img)
            script.group = group
            if controls is None:
                continue
            script.name = script.title().lower()
            script.controls = list(controls)
            script.args_from = len(self.inputs)
            script.args_to = script.args_from + len(controls)
            self.inputs += list(controls)
        return self.inputs

    def run(self, p, *args):  # mirrors modules/scripts.py: ScriptRunner.run
        script_index = args[0]
        if script_index == 0 or script_index is None:
            return None
        script = self.selectable_scripts[script_index - 1]
        script_args = args[script.args_from : script.args_to]
        return script.run(p, *script_args)

    def before_process(self, p):
        pass

    def process(self, p):
        pass

    def postprocess(self, p, processed):
        pass
