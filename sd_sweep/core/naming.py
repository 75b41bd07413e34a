"""Readable default names for sweeps, and the run folders a name stands for.

A sweep without a ``name`` is named after the first words of its base prompt. The name must not
depend on the axes: a run folder is a cache of cells, and adding or growing an axis has to find
the cells already made in the same folder.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

FALLBACK_NAME = "sweep"
MAX_DEFAULT_LENGTH = 40

_TAG_RE = re.compile(r"<[^<>]*>")
"""Extra networks (``<lora:name:0.8>``, ``<hypernet:...>``): not words of the picture."""
_WEIGHT_RE = re.compile(r":\s*-?\d+(?:\.\d+)?")
"""Attention and scheduling weights (``(cat:1.2)``, ``[a:b:0.5]``)."""
_WORD_RE = re.compile(r"[a-z0-9]+")
_KEYWORD_RE = re.compile(r"\b(?:BREAK|AND)\b")
"""``BREAK`` and composable ``AND`` (upper case) split a prompt; they say nothing about its subject."""


def default_name(base: Any) -> str:
    """``a-red-cat-in-the-snow`` for a base prompt ``A red cat, in the snow``; ``sweep`` without words.

    At most ``MAX_DEFAULT_LENGTH`` characters, cut between words; only ASCII letters, digits and
    ``-``, so it is a valid spec name and folder name on every file system.
    """
    prompt = base.get("prompt") if isinstance(base, dict) else None
    if not isinstance(prompt, str):
        return FALLBACK_NAME
    return slug(prompt) or FALLBACK_NAME


def slug(text: str, limit: int = MAX_DEFAULT_LENGTH) -> str:
    """The first words of ``text``, lower case, joined by ``-``, at most ``limit`` characters."""
    plain = _KEYWORD_RE.sub(" ", _TAG_RE.sub(" ", text))
    plain = unicodedata.normalize("NFKD", plain).encode("ascii", "ignore").decode("ascii")
    plain = plain.lower()
    plain = _WEIGHT_RE.sub(" ", plain)
    words = _WORD_RE.findall(plain)
    out = ""
    for word in words:
        candidate = f"{out}-{word}" if out else word
        if len(candidate) > limit:
            if not out:
                out = word[:limit]
            break
        out = candidate
    return out
