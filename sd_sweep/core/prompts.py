"""Prompt text operations as the WebUI v1.10.1 does them: Prompt matrix, Prompt S/R, extra-network tags."""

from __future__ import annotations

import math
import re

from sd_sweep.core.values import MAX_VALUES, format_value

# modules/extra_networks.py: <name:arg1:arg2...>, args split on ":".
RE_EXTRA_NET = re.compile(r"<(\w+):([^>]+)>")

_DELIMITERS = {"comma": ", ", "space": " "}


def prompt_matrix(prompt: str, *, at_start: bool = False, delimiter: str = "comma") -> list[str]:
    """All prompts of the built-in Prompt matrix script, in its order (combination bitmask 0, 1, 2, ...).

    As in ``scripts/prompt_matrix.py``, the first part is kept verbatim and each optional part is
    ``.strip().strip(',')``-ed: whitespace first, then commas only, so ``" , x"`` keeps its space.
    Raises ``ValueError`` for an unknown delimiter or more than ``MAX_VALUES`` combinations.
    """
    if delimiter not in _DELIMITERS:
        raise ValueError(f"unknown prompt matrix delimiter {delimiter!r}; expected 'comma' or 'space'")
    joiner = _DELIMITERS[delimiter]
    parts = prompt.split("|")
    optional = len(parts) - 1
    if 1 << optional > MAX_VALUES:
        raise ValueError(f"{optional} optional parts make too many prompts (more than {MAX_VALUES})")
    prompts = []
    for combination in range(1 << optional):
        selected = [text.strip().strip(",") for n, text in enumerate(parts[1:]) if combination & (1 << n)]
        selected = [*selected, parts[0]] if at_start else [parts[0], *selected]
        prompts.append(joiner.join(selected))
    return prompts


def search_replace(text: str, search: str, replacement: str) -> str:
    """Prompt S/R: every occurrence, case-sensitive; an empty ``search`` inserts between all characters, as built in."""
    return text.replace(search, replacement)


def set_network_weight(prompt: str, network: str, name: str, weight: float | str) -> str:
    """Set the multiplier (first positional argument after the name) of every ``<network:name...>`` tag.

    Named arguments (``te=...``, ``unet=...``) are not positional, as in ``ExtraNetworkParams``;
    a tag without a weight gets one right after the name. Raises ``ValueError`` when the prompt
    has no such tag or the weight cannot go inside a tag.
    """
    text = _weight_text(weight)
    found = False

    def rewrite(m: re.Match[str]) -> str:
        nonlocal found
        items = m.group(2).split(":")
        if m.group(1) != network or items[0] != name:
            return m.group(0)
        found = True
        for index in range(1, len(items)):
            if not _is_named(items[index]):
                items[index] = text
                break
        else:
            items.insert(1, text)
        return f"<{network}:{':'.join(items)}>"

    result = RE_EXTRA_NET.sub(rewrite, prompt)
    if not found:
        raise ValueError(f"the prompt has no <{network}:{name}> tag")
    return result


def has_network_tag(prompt: str, network: str, name: str) -> bool:
    return any(m.group(1) == network and m.group(2).split(":")[0] == name for m in RE_EXTRA_NET.finditer(prompt))


def network_tags(prompt: str) -> tuple[str, ...]:
    """Sorted texts of all extra-network tags, without the angle brackets, duplicates kept.

    The WebUI activates the networks of the first prompt of a batch for the whole batch, so
    prompts whose tags differ must not share one.
    """
    return tuple(sorted(f"{m.group(1)}:{m.group(2)}" for m in RE_EXTRA_NET.finditer(prompt)))


def _is_named(item: str) -> bool:
    return len(item.split("=", 2)) == 2


def _weight_text(weight: float | str) -> str:
    if isinstance(weight, (int, float)) and not isinstance(weight, bool):
        if isinstance(weight, float) and not math.isfinite(weight):
            raise ValueError(f"a network weight must be a finite number, not {weight!r}")
        return format_value(weight)
    if isinstance(weight, str):
        text = weight.strip()
        if text and not any(c in text for c in ":<>="):
            return text
    raise ValueError(f"cannot use {weight!r} as a network weight")


__all__ = ["RE_EXTRA_NET", "has_network_tag", "network_tags", "prompt_matrix", "search_replace", "set_network_weight"]
