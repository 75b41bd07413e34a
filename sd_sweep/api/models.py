"""Request and response models of ``/sweep/v1``: native models under pydantic 1 and pydantic 2.

FastAPI before 0.119 only accepts models of the installed pydantic major version, so these are
plain ``pydantic.BaseModel`` subclasses written in the subset both versions share: ``typing``
generics, every optional field with ``= None``, no validators, no ``model_`` field names. The
request models describe the JSON for ``/docs`` and check only its shape (objects and lists);
every value is validated by the engine (``sd_sweep.core.spec`` and ``sd_sweep.core.plan``) from the raw
JSON, so both pydantic versions give the same answers, with the same messages as for a spec
file.
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


_INT = {"type": "integer"}
_NUMBER = {"type": "number"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_OBJECT = {"type": "object"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}


def hint(schema: dict[str, Any], description: str | None = None) -> Any:
    """An optional field that accepts any JSON value but documents ``schema`` in OpenAPI.

    The engine validates the spec (with messages naming field and value, the same under both
    pydantic versions and the same as for a spec file), so the models only describe it.
    """
    extra: dict[str, Any] = dict(schema)
    if PYDANTIC_V2:
        return Field(None, description=description, json_schema_extra=extra)
    return Field(None, description=description, **extra)


class _Open(BaseModel):
    """Keeps keys the model does not list (the engine decides whether they are valid)."""

    if PYDANTIC_V2:
        model_config = pydantic.ConfigDict(extra="allow")
    else:

        class Config:
            extra = "allow"


class BaseParams(_Open):
    """Generation parameters of every cell, named as in ``/sdapi/v1/txt2img`` and ``img2img``.

    Any parameter of the axis catalog (``GET /sweep/v1/axes``) is accepted here, as are
    ``setting:<key>`` entries; the fields below are the common ones.
    """

    prompt: Any = hint(_STR)
    negative_prompt: Any = hint(_STR)
    seed: Any = hint(_INT, "-1 draws a random seed once, at plan time")
    subseed: Any = hint(_INT)
    subseed_strength: Any = hint(_NUMBER)
    sampler_name: Any = hint(_STR, "a sampler of GET /sweep/v1/axes")
    scheduler: Any = hint(_STR)
    steps: Any = hint(_INT)
    cfg_scale: Any = hint(_NUMBER)
    width: Any = hint(_INT)
    height: Any = hint(_INT)
    batch_size: Any = hint(_INT, "images per generation call (cells that differ only in prompt or seed share one)")
    denoising_strength: Any = hint(_NUMBER)
    enable_hr: Any = hint(_BOOL)
    hr_scale: Any = hint(_NUMBER)
    hr_upscaler: Any = hint(_STR)
    hr_second_pass_steps: Any = hint(_INT)
    restore_faces: Any = hint(_BOOL)
    tiling: Any = hint(_BOOL)
    styles: Any = hint(_STR_LIST)
    override_settings: Any = hint(_OBJECT, "WebUI settings for every cell")
    init_images: Any = hint(_STR_LIST, "img2img: base64 PNG/JPEG input images")


class AxisModel(_Open):
    """One axis: a parameter and its values (X/Y/Z plot syntax in a string, or a list)."""

    param: Any = hint(_STR, "a parameter of GET /sweep/v1/axes, or setting:<key>, lora:<name>, host:<axis>")
    values: Any = hint(
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {}}, {"type": "number"}]},
        "'5, 7, 9', '1-10 [4]', '1-10 (+3)', or a JSON list",
    )
    name: Any = hint(_STR, "key used by layout; defaults to param")
    title: Any = hint(_STR)
    label: Any = hint(_STR)
    zip: Any = hint(_STR, "axes with the same zip group advance together")
    delimiter: Any = hint({"enum": ["comma", "space"]})
    at_start: Any = hint(_BOOL)
    target: Any = hint({"enum": ["prompt", "negative_prompt"]})
    options: Any = hint(_OBJECT)


class LayoutModel(_Open):
    x: Any = hint(_STR, "axis name for the columns")
    y: Any = hint(_STR, "axis name for the rows")
    page: Any = hint(_STR_LIST, "axis names that split pages")


class LimitsModel(_Open):
    max_cells: Any = hint(_INT, "refuse to run a sweep with more cells than this")


class SweepRequest(_Open):
    """A sweep spec (the same document as a CLI spec file) plus how to run it."""

    name: Any = hint(_STR, "the run's name; also its folder unless 'folder' is given")
    description: Any = hint(_STR)
    version: Any = hint(_INT)
    mode: Any = hint({"enum": ["txt2img", "img2img"]}, "txt2img (default) or img2img")
    folder: Any = hint(_STR, "run folder (one name) under the server's runs folder; defaults to name")
    base: BaseParams | None = None
    axes: list[AxisModel] | None = None
    layout: LayoutModel | None = None
    limits: LimitsModel | None = None


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
    step: int | None = None
    steps: int | None = None
    progress: float = 0.0
    eta_seconds: float | None = None
    errors: list[str] = []
    grids: int = 0
    links: JobLinks


class JobList(BaseModel):
    jobs: list[JobStatus]


class RunResponse(BaseModel):
    """Like ``/sdapi/v1/txt2img``: base64 PNGs (grids first, then cells), parameters, info JSON."""

    images: list[str]
    parameters: dict[str, Any]
    info: str
