"""The one way the tests and benchmarks start a browser: Debian's Chromium, headless, offline."""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
"""Without the networking flags Chromium keeps calling out, which this machine's closed network refuses."""
