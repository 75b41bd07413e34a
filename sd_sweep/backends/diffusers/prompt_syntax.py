"""The WebUI's prompt syntax, read without torch: attention weights, ``BREAK`` and extra-network tags.

The rules are those of the WebUI (v1.10) prompt parser, written here from its documented behaviour:

- ``(text)`` multiplies the attention of ``text`` by 1.1, ``[text]`` divides it by 1.1; brackets
  nest and multiply (``((a))`` is 1.21);
- ``(text:1.5)`` sets a factor of 1.5 (multiplied with the factors of enclosing brackets);
- ``\\(``, ``\\)``, ``\\[``, ``\\]`` and ``\\\\`` are the literal characters;
- a closing bracket without its opening one is plain text; brackets left open at the end still
  apply their factor to everything after them;
- ``BREAK`` (a whole word, in capitals) ends the current 75-token chunk;
- adjacent pieces of equal weight are merged into one.

``<lora:name:weight>`` tags are taken out of the text (``extract_networks``) before the attention
syntax is read, as the WebUI removes extra-network tags before encoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sd_sweep.core.prompts import RE_EXTRA_NET

ROUND_FACTOR = 1.1
SQUARE_FACTOR = 1 / 1.1

_TOKEN = re.compile(
    r"""
    \\[()\[\]\\]               # an escaped bracket or backslash
    | \\                       # a lone backslash: literal
    | \(                       # opens a round bracket
    | \[                       # opens a square bracket
    | :\s*([+-]?[.\d]+)\s*\)   # an explicit weight closing a round bracket
    | \)                       # closes a round bracket
    | \]                       # closes a square bracket
    | [^\\()\[\]:]+            # plain text
    | :                        # a colon that is not a weight
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


@dataclass(frozen=True)
class Piece:
    """A run of prompt text with one attention weight; ``is_break`` marks a ``BREAK`` (no text)."""

    text: str
    weight: float
    is_break: bool = False


BREAK = Piece("", 1.0, is_break=True)


@dataclass(frozen=True)
class NetworkTag:
    """One ``<type:name:args>`` tag: ``weight`` is its first positional argument (1.0 when absent)."""

    network: str
    name: str
    weight: float
    text: str


def parse_attention(prompt: str) -> list[Piece]:  # noqa: PLR0912 - one branch per token kind
    """The prompt as pieces of text with their attention weights, and ``BREAK`` markers, in order.

    An empty prompt gives one empty piece of weight 1.0.
    """
    pieces: list[list[object]] = []  # [text, weight, is_break]
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if not piece[2]:
                piece[1] = float(piece[1]) * factor  # type: ignore[arg-type]

    for match in _TOKEN.finditer(prompt):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\") and len(token) == 2:
            pieces.append([token[1], 1.0, False])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif weight is not None and round_open and _is_number(weight):
            multiply(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            multiply(round_open.pop(), ROUND_FACTOR)
        elif token == "]" and square_open:
            multiply(square_open.pop(), SQUARE_FACTOR)
        else:
            for index, part in enumerate(_BREAK.split(token)):
                if index > 0:
                    pieces.append(["", 1.0, True])
                pieces.append([part, 1.0, False])
    for start in reversed(round_open):
        multiply(start, ROUND_FACTOR)
    for start in reversed(square_open):
        multiply(start, SQUARE_FACTOR)

    merged: list[Piece] = []
    for text, weight, is_break in pieces:
        if is_break:
            merged.append(BREAK)
        elif merged and not merged[-1].is_break and merged[-1].weight == weight:
            merged[-1] = Piece(merged[-1].text + str(text), float(weight))  # type: ignore[arg-type]
        else:
            merged.append(Piece(str(text), float(weight)))  # type: ignore[arg-type]
    merged = [p for p in merged if p.is_break or p.text]
    return merged or [Piece("", 1.0)]


def extract_networks(prompt: str) -> tuple[str, list[NetworkTag]]:
    """The prompt without its extra-network tags, and the tags in order of appearance.

    The weight is the first positional argument after the name, or ``te=``, else 1.0 (as in the
    WebUI's LoRA network); a weight that is not a number raises ``ValueError`` naming the tag.
    """
    tags: list[NetworkTag] = []
    for match in RE_EXTRA_NET.finditer(prompt):
        name, *args = match.group(2).split(":")
        positional = [a for a in args if "=" not in a]
        named = dict(a.split("=", 1) for a in args if "=" in a)
        text = positional[0] if positional else named.get("te", "1")
        try:
            weight = float(text)
        except ValueError:
            msg = f"the weight of {match.group(0)} is not a number: {text!r}"
            raise ValueError(msg) from None
        tags.append(NetworkTag(match.group(1), name, weight, match.group(0)))
    return RE_EXTRA_NET.sub("", prompt), tags


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


__all__ = ["BREAK", "NetworkTag", "Piece", "extract_networks", "parse_attention"]
