"""sd-webui-sweep: prompt matrices and parameter sweeps for the Stable Diffusion WebUI.

Importing this package imports neither torch, diffusers nor the WebUI's ``modules``.
"""

__version__ = "0.1.0"
