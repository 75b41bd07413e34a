"""A plan as data: the dimensions of a sweep, its cells with stable ids, and their batches.

A dry run returns it without generating anything; ``sd_sweep.core.planner`` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sd_sweep.core.spec import AxisSpec, Spec


@dataclass
class Dimension:
    """One dimension of the sweep: a single axis, or several zipped axes advancing together."""

    name: str
    title: str
    axes: list[AxisSpec]
    fields: list[str]
    values: list[list[Any]]
    labels: list[str]

    @property
    def length(self) -> int:
        return len(self.labels)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "params": [a.param for a in self.axes],
            "axes": [a.name for a in self.axes],
            "labels": self.labels,
        }


@dataclass
class Cell:
    id: str
    index: int
    """Position in display order (the Cartesian product, first dimension outermost)."""
    coords: dict[str, int]
    labels: dict[str, str]
    params: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "index": self.index,
            "coords": self.coords,
            "labels": self.labels,
            "params": self.params,
        }


@dataclass
class Plan:
    spec: Spec
    dimensions: list[Dimension]
    cells: list[Cell]
    batches: list[list[str]]
    seed_resolutions: dict[str, int]
    estimate: dict[str, Any]
    backend: str
    first_pass_keys: dict[str, str] = field(default_factory=dict, repr=False)
    """Cell id -> the backend's key of the first pass the cell shares (``Capabilities.first_pass_key``);
    not part of ``as_dict``."""
    _by_id: dict[str, Cell] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {c.id: c for c in self.cells}

    def cell(self, cell_id: str) -> Cell:
        return self._by_id[cell_id]

    def field_of(self, param: str) -> str:
        """The spec field that sets ``param``: the axis sweeping it, else the base."""
        for dimension in self.dimensions:
            for axis, where in zip(dimension.axes, dimension.fields):
                if axis.param == param:
                    return f"{where}.values"
        return f"base.{param}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "backend": self.backend,
            "batch_size": self.spec.batch_size,
            "dimensions": [d.as_dict() for d in self.dimensions],
            "layout": {"x": self.spec.layout.x, "y": self.spec.layout.y, "page": self.spec.layout.page},
            "cells": [c.as_dict() for c in self.cells],
            "batches": self.batches,
            "seed_resolutions": self.seed_resolutions,
            "estimate": self.estimate,
        }
