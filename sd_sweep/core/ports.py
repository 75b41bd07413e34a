"""The small interface every backend implements, and the data that crosses it."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from sd_sweep.core.plan import Plan

StepCallback = Callable[[int, int], None]
"""Called as ``(step, total_steps)`` while a batch samples."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, read before validation.

    ``params`` are the canonical parameter names (see ``sd_sweep.core.params``) the backend applies;
    ``choices`` maps a parameter to the values it accepts (samplers, checkpoints, ...). A parameter
    with choices only accepts those; one missing from ``choices`` accepts any value of its type.
    """

    name: str
    params: frozenset[str]
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    size_multiple: int = 8
    min_side: int = 8
    max_side: int = 4096
    spellings: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per ``choices`` key, the other spellings of a choice the backend accepts (a sampler's alias, a
    schedule type's name) and the choice each is: valid values, applied as that choice."""
    refusals: dict[str, str] = field(default_factory=dict)
    """Why a parameter the engine knows is not supported here, where there is more to say than no."""
    implicit: dict[str, str] = field(default_factory=dict)
    """What the backend uses for a parameter a cell leaves unset (the loaded checkpoint, the input image).

    Part of the id of every cell that leaves it unset, so changing it makes new cells instead of reusing
    images it did not make. Empty leaves ids as they always were.
    """
    shares_batch: Callable[[dict[str, Any]], bool] | None = None
    """Whether a cell with these parameters makes, in a batch of several, the same image as alone.

    A sweep batches cells the user never asked to batch, so a cell whose image a batch changes runs
    alone unless the spec prefers speed (``limits.batch_exact: false``). None: every cell does.
    """
    first_pass_key: Callable[[dict[str, Any]], str | None] | None = None
    """For a two-pass cell (hires fix) whose first pass the backend can make once and reuse exactly:
    a key of everything that first pass reads. Cells with the same key share one first pass; None
    (the function, or its result) makes every first pass its own."""
    first_pass_unreused: Callable[[dict[str, Any]], tuple[str, str] | None] | None = None
    """For a two-pass cell whose first pass the backend makes anew although another cell may share it:
    that first pass's key and why (the dry run's ``first_pass_not_reused``); None where it is reused."""
    batch_first_passes: bool = False
    """Whether the backend also reuses the first pass of a batch of several: a batch whose images have
    the first-pass keys of the batch before it, in order, continues that batch's first passes. Without
    it only one-image batches share a first pass (the WebUI keeps one first-pass image)."""

    def supports(self, param: str) -> bool:
        """Whether ``param`` is applied; families are listed as ``lora:*`` or ``setting:*``."""
        if param in self.params:
            return True
        family, sep, _ = param.partition(":")
        return bool(sep) and f"{family}:*" in self.params


class KeptFirstPass(ABC):
    """Where a backend keeps the first pass of a request's first-pass group for the rest of the run.

    The engine hands one to each one-image request of a group (``Capabilities.first_pass_key``) and
    deletes what was saved once every cell of the group is done, so an interrupted or killed run
    resumes in the middle of a group without making its first pass again. What is saved (a latent,
    an image) is the backend's, as bytes.
    """

    @abstractmethod
    def load(self) -> bytes | None:
        """What ``save`` stored for this group, or None."""

    @abstractmethod
    def save(self, data: bytes) -> None: ...


@dataclass
class GenerationRequest:
    """One generation call: shared parameters plus per-image prompts and seeds.

    ``params`` holds every resolved parameter of the batch (they are equal across its cells)
    except the per-image ``prompts``, ``negative_prompts`` and ``seeds``.
    """

    params: dict[str, Any]
    prompts: list[str]
    negative_prompts: list[str]
    seeds: list[int]
    cell_ids: list[str]
    cell_labels: list[str] = field(default_factory=list)
    first_pass: KeptFirstPass | None = None
    """Where the first pass of this one-image hires request is kept across an interrupt (see ``KeptFirstPass``)."""

    def __post_init__(self) -> None:
        sizes = {len(self.prompts), len(self.negative_prompts), len(self.seeds), len(self.cell_ids)}
        if len(sizes) != 1:
            msg = "prompts, negative_prompts, seeds and cell_ids must have one entry per image"
            raise ValueError(msg)

    @property
    def size(self) -> int:
        return len(self.prompts)


@dataclass
class GeneratedImage:
    image: Image.Image
    infotext: str


class StopSignal:
    """Thread-safe flags a run checks between batches (interrupt) and a backend may check per step."""

    def __init__(self) -> None:
        self._interrupt = threading.Event()
        self._skip = threading.Event()

    def interrupt(self) -> None:
        self._interrupt.set()

    def skip(self) -> None:
        self._skip.set()

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    def consume_skip(self) -> bool:
        """True once after ``skip()``: the current batch is to be dropped."""
        was_set = self._skip.is_set()
        self._skip.clear()
        return was_set

    @property
    def skip_requested(self) -> bool:
        return self._skip.is_set()


class Backend(ABC):
    """Generates images for batches of a plan."""

    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abstractmethod
    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        stop: StopSignal | None = None,
    ) -> list[GeneratedImage]:
        """Generate one image per entry of ``request``, in order.

        Returns fewer images (possibly none) only when ``stop`` asked to interrupt or skip.
        """

    def check_plan(self, plan: Plan) -> None:  # noqa: B027 - optional hook
        """Raise ``SpecError`` for what only the backend can judge, before the first image.

        ``Capabilities`` checks values one by one; this sees whole cells (a sampler with a schedule
        type, a host axis's own value check).
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (models, sessions)."""
