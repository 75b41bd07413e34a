"""Run by the WebUI at start-up (``python install.py``, the WebUI's folder as working directory).

The extension needs only what the WebUI already ships (PyYAML, Pillow, gradio). This checks that
and installs PyYAML only if it is missing; it never touches the WebUI's pinned packages.
"""

try:
    import launch
except ImportError:  # run outside the WebUI
    launch = None

if launch is not None and not launch.is_installed("yaml"):
    launch.run_pip('install "pyyaml>=6"', "pyyaml for sd-webui-sweep")  # run through a shell: quote the >=
