"""Response models of ``/sweep/v1``: native models under pydantic 1 and pydantic 2.

FastAPI before 0.119 only accepts models of the installed pydantic major version, so these are
plain ``pydantic.BaseModel`` subclasses written in the subset both versions share: ``typing``
generics, every optional field with ``= None``, no validators, no ``model_`` field names.

There are no request models: a sweep body's schema is generated from the spec's table
(``sd_sweep.core.schema.request_schema``, published with each route's ``openapi_extra``), and
the engine validates the raw JSON.
"""

from typing import Any

import pydantic
from pydantic import BaseModel, Field

PYDANTIC_V2 = pydantic.VERSION.startswith("2")


def model_to_dict(model: BaseModel, **kwargs: Any) -> dict[str, Any]:
    """``model_dump`` under pydantic 2, ``dict`` under pydantic 1."""
    if PYDANTIC_V2:
        return model.model_dump(**kwargs)
    return model.dict(**kwargs)


class ProblemModel(BaseModel):
    field: str
    value: Any = None
    message: str


class ErrorResponse(BaseModel):
    """4xx answers of ``/sweep/v1``: every problem names the field and the value it is about."""

    detail: list[ProblemModel]


class ParamInfo(BaseModel):
    name: str
    title: str
    type: str
    aliases: list[str] = []
    supported: bool
    choices: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    batchable: bool = False
    switch_cost: int = 0


class FamilyInfo(BaseModel):
    pattern: str
    type: str
    description: str
    supported: bool


class AxesResponse(BaseModel):
    version: str
    backend: str
    mode: str
    params: list[ParamInfo]
    families: list[FamilyInfo]
    choices: dict[str, list[str]]
    size_multiple: int
    min_side: int
    max_side: int
    limits: dict[str, int]


class PlanResponse(BaseModel):
    """The dry run: the same plan as ``python -m sd_sweep plan --json``."""

    name: str
    backend: str
    batch_size: int
    dimensions: list[dict[str, Any]]
    layout: dict[str, Any]
    cells: list[dict[str, Any]]
    batches: list[list[str]]
    seed_resolutions: dict[str, int]
    estimate: dict[str, Any]


class JobLinks(BaseModel):
    self: str
    cancel: str
    resume: str
    manifest: str
    images: str
    grids: str


class JobStatus(BaseModel):
    id: str
    name: str
    mode: str
    folder: str
    state: str = Field(..., description="queued, running, finished, interrupted, cancelled or failed")
    queue_position: int | None = None
    task_id: str | None = Field(None, description="the WebUI progress task id (POST /internal/progress)")
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    cells_total: int = 0
    cells_done: int = 0
    cells_reused: int = 0
    batches_total: int = 0
    batches_done: int = 0
    current_cell: dict[str, Any] | None = Field(None, description="id and axis values of the cell now sampling")
    step: int | None = Field(None, description="the step of the pass now sampling")
    steps: int | None = Field(None, description="the steps of the pass now sampling")
    sampling_steps_done: int = 0
    sampling_steps_total: int = Field(
        0, description="the steps this run samples: a hires pass that continues a kept first pass counts only its own"
    )
    progress: float = Field(0.0, description="sampling_steps_done / sampling_steps_total; the ETA follows it")
    eta_seconds: float | None = None
    errors: list[str] = []
    grids: int = 0
    stale_images: int = 0
    """Finished images in the run folder that belong to no cell of this sweep (earlier versions of it)."""
    links: JobLinks


class JobList(BaseModel):
    jobs: list[JobStatus]


class RunResponse(BaseModel):
    """Like ``/sdapi/v1/txt2img``: base64 PNGs (grids first, then cells), parameters, info JSON."""

    images: list[str]
    parameters: dict[str, Any]
    info: str
