"""The WebUI side of the extension: the Sweep script, its UI and its settings.

Nothing here imports the WebUI's ``modules`` at import time except ``script`` (which the WebUI
loads, and which needs ``modules.scripts.Script`` as its base class).
"""
