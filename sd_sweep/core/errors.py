"""The project's error types: every problem names the field and the value it is about."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a sweep: where (``field``), what was there (``value``) and why."""

    field: str
    value: Any
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (got {self.value!r})"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe form: values that are not plain scalars, NaN and infinities included, as their repr."""
        plain = isinstance(self.value, (str, int, bool, type(None))) or (
            isinstance(self.value, float) and math.isfinite(self.value)
        )
        return {"field": self.field, "value": self.value if plain else repr(self.value), "message": self.message}


class SweepError(Exception):
    """Base of every error this package raises on purpose."""


class SpecError(SweepError):
    """The sweep spec, or a value in it, is invalid. Carries every problem found."""

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, field: str, value: Any, message: str) -> SpecError:
        return cls(Problem(field, value, message))

    def as_dicts(self) -> list[dict[str, Any]]:
        return [p.as_dict() for p in self.problems]


class UsageError(SweepError):
    """An option, a file or a folder that was given cannot be used (the command line exits with 2)."""


class RunFolderError(UsageError):
    """A run folder's files are unreadable or not of the shape this version writes."""


class BackendError(SweepError):
    """A backend failed to generate or to describe itself."""
