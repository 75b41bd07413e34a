"""Canonical JSON of a cell's parameters, written fast: its identity text and its batch key.

A cell's id hashes ``json.dumps(params, sort_keys=True, default=str)`` with random seeds as
symbols, and the ids of existing run folders depend on exactly that text. It is the
``"name": value`` items in name order joined by ``", "``; a sweep repeats most items from cell
to cell, so items are written once and cached, and those of parameters that no axis changes
once per set of names.
"""

from __future__ import annotations

import json
from typing import Any

from sd_sweep.core.params import BATCHABLE
from sd_sweep.core.prompts import network_tags

BatchKey = tuple[Any, ...]
"""Cells with equal keys may share one generation call.

Everything but prompt, negative prompt and seed must match as JSON (1 and 1.0 differ), and so
must the extra-network tags of both prompts: the WebUI applies the first prompt's networks to
the whole batch. Keys compare only within one ``ParamsEncoder``.
"""

_MISSING = object()

ItemTexts = tuple[str, str]
"""A parameter's item with its resolved value, and in the identity (a random seed as its symbol)."""


class ParamsEncoder:
    """Writes parameters as canonical JSON items, caching the items of plain values.

    ``template`` holds the parameters every cell starts from and ``symbols`` the identity value of
    those that are random seeds; the items of the ``constant`` names (which no axis changes) are
    written once per layout.
    """

    def __init__(
        self,
        template: dict[str, Any] | None = None,
        symbols: dict[str, str] | None = None,
        constant: frozenset[str] | None = None,
    ) -> None:
        self.template = template or {}
        self.symbols = symbols or {}
        self.constant = constant
        self._items: dict[tuple[str, type, Any], str] = {}
        self._tags: dict[str, tuple[str, ...]] = {}
        self._layouts: dict[tuple[str, ...], tuple[int, list[str], list[tuple[int, str, bool]]]] = {}
        self._layout_ids: dict[tuple[str, ...], int] = {}

    def item(self, name: str, value: Any) -> str:
        """``"name": value`` as ``json.dumps(..., sort_keys=True, default=str)`` writes it."""
        cls = value.__class__
        # -0.0 equals 0.0 but is written differently, so zeros are not cached.
        if cls is str or cls is int or cls is bool or value is None or (cls is float and value):
            key = (name, cls, value)
            text = self._items.get(key)
            if text is None:
                text = self._items[key] = json.dumps({name: value}, default=str)[1:-1]
            return text
        return json.dumps({name: value}, sort_keys=True, default=str)[1:-1]

    def texts(self, name: str, value: Any, symbol: str | None = None) -> ItemTexts:
        text = self.item(name, value)
        return text, text if symbol is None else self.item(name, symbol)

    def tags(self, prompt: Any) -> tuple[str, ...]:
        """The extra-network tags of a prompt (see ``network_tags``)."""
        if not isinstance(prompt, str):
            return network_tags(prompt)
        found = self._tags.get(prompt)
        if found is None:
            found = self._tags[prompt] = network_tags(prompt)
        return found

    def encode(
        self,
        params: dict[str, Any],
        known: dict[str, ItemTexts] | None = None,
        tags: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
    ) -> tuple[str, BatchKey]:
        """The identity text and batch key of ``params``.

        ``known`` gives items already written (by parameter name) and ``tags`` the prompts'
        network tags where known; the ``constant`` parameters must have the template's values.
        """
        names = tuple(params)
        layout_id, template, holes = self._layouts.get(names) or self._layout(names)
        parts = template.copy()
        key: list[Any] = [layout_id]
        for position, name, batchable in holes:
            pair = known.get(name) if known is not None else None
            if pair is None:
                value = params[name]
                symbol = self.symbols.get(name) if value is self.template.get(name, _MISSING) else None
                pair = self.texts(name, value, symbol)
            parts[position] = pair[1]
            if not batchable:
                key.append(pair[0])
        if tags is None:
            tags = (self.tags(params.get("prompt", "")), self.tags(params.get("negative_prompt", "")))
        key.extend(tags)
        return "{" + ", ".join(parts) + "}", tuple(key)

    def _layout(self, names: tuple[str, ...]) -> tuple[int, list[str], list[tuple[int, str, bool]]]:
        """For one set of names: its id, the identity items with the constant ones written, the others."""
        ordered = tuple(sorted(names))
        constant = self.constant or frozenset()
        parts: list[str] = []
        holes: list[tuple[int, str, bool]] = []
        for position, name in enumerate(ordered):
            if name in constant:
                parts.append(self.texts(name, self.template[name], self.symbols.get(name))[1])
            else:
                parts.append("")
                holes.append((position, name, name in BATCHABLE))
        # The id stands for the names and the constant items, which the batch key leaves out.
        layout_id = self._layout_ids.setdefault(ordered, len(self._layout_ids))
        layout = self._layouts[names] = (layout_id, parts, holes)
        return layout
