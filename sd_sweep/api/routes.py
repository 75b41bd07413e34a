"""The ``/sweep/v1`` routes, added to the WebUI's FastAPI app.

Every route is a plain ``def`` (FastAPI runs it in its thread pool, so a long call never blocks
the event loop). Our routes use their own ``APIRoute`` class so that every error they give is
JSON of the form ``{"detail": [{"field", "value", "message"}, ...]}`` whatever exception
handlers the host app has installed (the WebUI's ``api_middleware`` rewrites raised
``HTTPException``s), and so that request bodies over the size limit are refused with 413 before
they are read whole, and credentials are checked before a body is looked at.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from sd_sweep.api.auth import Credentials, authorized, make_auth_dependency
from sd_sweep.api.jobs import ACTIVE, REQUEST_KEYS, RESUMABLE, Job, JobError, JobManager
from sd_sweep.api.models import (
    AxesResponse,
    ErrorResponse,
    JobList,
    JobStatus,
    PlanResponse,
    RunResponse,
)
from sd_sweep.core.errors import Problem, SpecError, SweepError

PREFIX = "/sweep/v1"
API_VERSION = "1"
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "credentials missing or wrong (only with --api-auth)"),
        (404, "no such job, cell or grid"),
        (409, "the job or its run folder is busy"),
        (413, "the request body is too large"),
        (422, "invalid sweep: every problem names its field and value"),
        (429, "the job queue is full"),
    )
}


def problems_response(
    status: int, problems: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": problems}, headers=headers)


def _problem(field_name: str, value: Any, message: str) -> dict[str, Any]:
    return Problem(field_name, value, message).as_dict()


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _value_at(document: Any, loc: list[Any]) -> Any:
    for key in loc:
        try:
            document = document[key]
        except (KeyError, IndexError, TypeError):  # noqa: PERF203
            return None
    return document


def validation_problems(exc: RequestValidationError, body: Any) -> list[dict[str, Any]]:
    """FastAPI's validation errors as ``{field, value, message}`` (the same under pydantic 1 and 2)."""
    problems = []
    for error in exc.errors():
        loc = list(error.get("loc") or ())
        where = loc[0] if loc else "body"
        rest = loc[1:]
        if where == "body":
            # pydantic 2 adds the union member or the "function-after" tag to the location
            rest = [k for k in rest if not (isinstance(k, str) and (k in ("str", "float", "int", "list[any]")))]
            value = error["input"] if "input" in error else _value_at(body, rest)
            field_name = _field_path(rest) or "body"
        else:
            value = error.get("input")
            field_name = _field_path(rest) or str(where)
        problems.append(
            _problem(
                field_name,
                value if value is None or isinstance(value, (str, int, float, bool)) else repr(value)[:200],
                str(error.get("msg", "invalid")),
            )
        )
    return problems


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` when it is larger than ``limit`` bytes (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body
    return body


def _engine_problems(check: Callable[[Any], Any], body: Any) -> list[dict[str, Any]]:
    try:
        check(body)
    except SpecError as exc:
        return exc.as_dicts()
    except JobError as exc:
        return [p.as_dict() for p in exc.problems]
    return []


def make_route_class(
    credentials: Credentials,
    max_body_bytes: int,
    check_body: Callable[[Any], Any] | None = None,
    app: Any = None,
) -> type[APIRoute]:
    """An ``APIRoute`` that checks credentials (``auth.authorized``: ``--api-auth``, and the
    login session of ``app`` with ``--gradio-auth``) and body size first and answers errors as problems."""

    class SweepRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            original = super().get_route_handler()

            async def handler(request: Request) -> Response:  # noqa: PLR0911
                if not authorized(request, credentials, app):
                    message = "incorrect or missing username/password"
                    if not credentials:
                        message = "log in to the WebUI first (--gradio-auth)"
                    elif app is not None and getattr(app, "auth", None) is not None:
                        message += " (or log in to the WebUI)"
                    return problems_response(
                        401,
                        [_problem("authorization", None, message)],
                        {"WWW-Authenticate": "Basic"} if credentials else None,
                    )
                body: Any = None
                if request.method in ("POST", "PUT", "PATCH"):
                    raw = await _read_limited(request, max_body_bytes)
                    if raw is None:
                        return problems_response(
                            413,
                            [
                                _problem(
                                    "body", request.headers.get("content-length"), f"larger than {max_body_bytes} bytes"
                                )
                            ],
                        )
                    if raw.strip():
                        try:
                            body = json.loads(raw)
                        except (ValueError, RecursionError) as exc:
                            text = raw[:80].decode("utf-8", "replace")
                            return problems_response(422, [_problem("body", text, f"not valid JSON: {exc}")])
                    request.state.sweep_body = body
                try:
                    return await original(request)
                except RequestValidationError as exc:
                    problems = validation_problems(exc, body)
                    if check_body is not None and isinstance(body, dict):
                        # the engine's problems are complete and name the same fields
                        engine = await run_in_threadpool(_engine_problems, check_body, body)
                        problems = engine or problems
                    return problems_response(422, problems)
                except SpecError as exc:
                    return problems_response(422, exc.as_dicts())
                except JobError as exc:
                    return problems_response(exc.status, [p.as_dict() for p in exc.problems])
                except HTTPException as exc:
                    detail = (
                        exc.detail if isinstance(exc.detail, list) else [_problem("request", None, str(exc.detail))]
                    )
                    return problems_response(exc.status_code, detail, getattr(exc, "headers", None))

            return handler

    return SweepRoute


def body_schema() -> dict[str, Any]:
    """The JSON Schema of a sweep request body: the spec's (``sd_sweep.core.schema``) plus ``mode`` and ``folder``."""
    from sd_sweep.core.schema import request_schema

    return request_schema(REQUEST_KEYS)


def sweep_body() -> dict[str, Any]:
    """``openapi_extra`` of the routes that take a sweep: their request body is ``body_schema()``.

    The routes read the raw JSON themselves and the engine validates it (so pydantic 1 and 2 give
    the same answers, with the same messages as for a spec file); this only publishes the body.
    """
    schema = {k: v for k, v in body_schema().items() if k != "$schema"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def job_links(job: Job) -> dict[str, str]:
    base = f"{PREFIX}/jobs/{job.id}"
    return {
        "self": base,
        "cancel": f"{base}/cancel",
        "resume": f"{base}/resume",
        "manifest": f"{base}/manifest",
        "images": f"{base}/images/{{cell_id}}",
        "grids": f"{base}/grids/{{n}}",
    }


def job_status(manager: JobManager, job: Job) -> dict[str, Any]:
    grids = stale = 0
    if job.state not in ("queued", "running"):
        try:
            state = manager.run_state(job)
        except (SweepError, OSError, ValueError):
            state = {}
        grids = len(state.get("grids") or [])
        stale = int((state.get("counts") or {}).get("stale") or 0)
    return {
        "id": job.id,
        "name": job.name,
        "mode": job.mode,
        "folder": job.folder,
        "state": job.state,
        "queue_position": manager.queue_position(job),
        "task_id": job.task_id,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "cells_total": job.cells_total,
        "cells_done": job.cells_done,
        "cells_reused": job.cells_reused,
        "batches_total": job.batches_total,
        "batches_done": job.batches_done,
        "current_cell": job.current_cell,
        "step": job.step,
        "steps": job.steps,
        "sampling_steps_done": job.sampling_steps_done,
        "sampling_steps_total": job.sampling_steps_total,
        "progress": round(job.progress, 4),
        "eta_seconds": job.eta_seconds,
        "errors": list(job.errors),
        "grids": grids,
        "stale_images": stale,
        "links": job_links(job),
    }


def axes_catalog(manager: JobManager, mode: str) -> dict[str, Any]:
    from sd_sweep.core.params import BATCHABLE, NETWORK_TYPES, PARAMS, capability_key

    caps = manager.backend(mode).capabilities()
    params = []
    for name, definition in PARAMS.items():
        choices = caps.choices.get(definition.choices_from or "")
        params.append(
            {
                "name": name,
                "title": definition.title,
                "type": definition.kind,
                "aliases": list(definition.aliases),
                "supported": all(caps.supports(capability_key(n)) for n in _needs(name)),
                "choices": list(choices) if choices is not None else None,
                "minimum": definition.minimum,
                "maximum": definition.maximum,
                "batchable": name in BATCHABLE,
                "switch_cost": definition.switch_cost,
            }
        )
    families = [
        {
            "pattern": "setting:<key>",
            "type": "str",
            "description": "a WebUI setting, applied through override_settings",
            "supported": caps.supports("setting:any"),
        },
        *(
            {
                "pattern": f"{family}:<name>",
                "type": "float",
                "description": f"the weight of the <{family}:name:weight> tag in the prompt",
                "supported": caps.supports(f"{family}:any"),
            }
            for family in NETWORK_TYPES
        ),
        {
            "pattern": "host:<axis label>",
            "type": "str",
            "description": "an axis the host applies (X/Y/Z plot axes of the WebUI and its extensions)",
            "supported": caps.supports("host:any"),
        },
    ]
    return {
        "version": API_VERSION,
        "backend": caps.name,
        "mode": mode,
        "params": params,
        "families": families,
        "choices": {k: list(v) for k, v in caps.choices.items()},
        "size_multiple": caps.size_multiple,
        "min_side": caps.min_side,
        "max_side": caps.max_side,
        "limits": manager.limits.as_dict(),
    }


def _needs(name: str) -> tuple[str, ...]:
    from sd_sweep.core.params import REQUIRES

    return REQUIRES.get(name, (name,))


def encode_file(path: Any) -> str:
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


def run_response(manager: JobManager, job: Job, body: dict[str, Any]) -> dict[str, Any]:
    """``/sdapi/v1/txt2img``-style answer: grids first, then every cell in display order."""
    manifest = manager.manifest(job)
    store_cells = manifest.get("cells", {})
    plan_cells = manifest.get("plan", {}).get("cells", [])
    run_dir = manager.run_dir(job)
    images, infotexts, prompts, seeds, cell_ids = [], [], [], [], []
    for cell in plan_cells:
        entry = store_cells.get(cell["id"], {})
        if entry.get("state") != "done":
            continue
        path = run_dir / entry["file"]
        if not path.is_file():
            continue
        images.append(encode_file(path))
        infotexts.append(entry.get("infotext", ""))
        prompts.append(cell["params"].get("prompt", ""))
        seeds.append(cell["params"].get("seed"))
        cell_ids.append(cell["id"])
    grids = [run_dir / g["file"] for g in manifest.get("grids") or [] if (run_dir / g["file"]).is_file()]
    grid_images = [encode_file(p) for p in grids]
    info = {
        "job": job.id,
        "state": job.state,
        "errors": job.errors,
        "infotexts": [infotexts[0] if infotexts else ""] * len(grid_images) + infotexts,
        "all_prompts": prompts,
        "all_seeds": seeds,
        "cell_ids": cell_ids,
        "index_of_first_image": len(grid_images),
        "grid_titles": [g.get("title", "") for g in manifest.get("grids") or []],
    }
    parameters = {k: v for k, v in body.items() if k != "base"}
    base = dict(body.get("base") or {})
    if "init_images" in base:
        base["init_images"] = [f"<{len(base['init_images'])} images>"]
    parameters["base"] = base
    return {"images": grid_images + images, "parameters": parameters, "info": json.dumps(info)}


def build_router(manager: JobManager, credentials: Credentials, app: Any = None) -> APIRouter:
    """Every ``/sweep/v1`` route over ``manager``; ``app`` is the host app (its gradio login, if any)."""
    dependencies = [Depends(make_auth_dependency(credentials, app))] if credentials else []
    router = APIRouter(
        route_class=make_route_class(credentials, manager.limits.max_body_bytes, manager.check, app),
        dependencies=dependencies,
        tags=["sweep"],
        responses=_ERRORS,
    )

    def body_of(request: Request) -> Any:
        return getattr(request.state, "sweep_body", None)

    @router.get(f"{PREFIX}/axes", response_model=AxesResponse, summary="Axis catalog")
    def get_axes(mode: str = Query("txt2img", description="txt2img or img2img")) -> dict[str, Any]:
        """Every sweepable parameter, its type, and the values the running WebUI allows."""
        if mode not in ("txt2img", "img2img"):
            raise JobError.single(422, "mode", mode, "must be txt2img or img2img")
        return axes_catalog(manager, mode)

    @router.get(f"{PREFIX}/schema", summary="JSON Schema of the sweep spec")
    def get_schema() -> dict[str, Any]:
        """The JSON Schema of a request body: the sweep spec plus ``mode`` and ``folder``."""
        return body_schema()

    @router.post(f"{PREFIX}/plan", response_model=PlanResponse, summary="Dry run", openapi_extra=sweep_body())
    def post_plan(request: Request) -> dict[str, Any]:
        """Validate a sweep and return its plan (cells, batches, estimate) without generating."""
        _, _, _, plan = manager.check(body_of(request))
        return plan.as_dict()

    @router.post(
        f"{PREFIX}/jobs", response_model=JobStatus, status_code=202, summary="Start a job", openapi_extra=sweep_body()
    )
    def post_job(request: Request, response: Response) -> dict[str, Any]:
        """Queue a sweep; jobs run one at a time in submission order under the WebUI's queue lock."""
        job = manager.submit(body_of(request))
        response.headers["Location"] = job_links(job)["self"]
        return job_status(manager, job)

    @router.get(f"{PREFIX}/jobs", response_model=JobList, summary="List jobs")
    def list_jobs() -> dict[str, Any]:
        """Every job of the runs folder, oldest first, including those of earlier server runs."""
        return {"jobs": [job_status(manager, job) for job in manager.jobs()]}

    @router.get(f"{PREFIX}/jobs/{{job_id}}", response_model=JobStatus, summary="Job status")
    def get_job(job_id: str) -> dict[str, Any]:
        """State, cells done and total, the current cell's values, step progress, ETA and errors."""
        return job_status(manager, manager.get(job_id))

    @router.post(f"{PREFIX}/jobs/{{job_id}}/cancel", response_model=JobStatus, summary="Cancel a job")
    def cancel_job(job_id: str) -> dict[str, Any]:
        """Drop a queued job, or stop a running one after its current batch (finished cells are kept)."""
        return job_status(manager, manager.cancel(job_id))

    @router.post(f"{PREFIX}/jobs/{{job_id}}/resume", response_model=JobStatus, status_code=202, summary="Resume a job")
    def resume_job(job_id: str) -> dict[str, Any]:
        """Queue an interrupted, cancelled or failed job again; only its unfinished cells run."""
        return job_status(manager, manager.resume(job_id))

    @router.get(f"{PREFIX}/jobs/{{job_id}}/manifest", summary="Run manifest")
    def get_manifest(job_id: str) -> dict[str, Any]:
        """The run folder's ``manifest.json``: the spec, the plan, and every cell's state and file."""
        return manager.manifest(manager.get(job_id))

    @router.get(
        f"{PREFIX}/jobs/{{job_id}}/images/{{cell_id}}",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}, "description": "the cell's PNG, infotext included"}},
        summary="Cell image",
    )
    def get_image(job_id: str, cell_id: str) -> FileResponse:
        return FileResponse(manager.image_file(manager.get(job_id), cell_id), media_type="image/png")

    @router.get(
        f"{PREFIX}/jobs/{{job_id}}/grids/{{n}}",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}, "description": "grid page n (from 0)"}},
        summary="Grid page",
    )
    def get_grid(job_id: str, n: int) -> FileResponse:
        return FileResponse(manager.grid_file(manager.get(job_id), n), media_type="image/png")

    @router.post(
        f"{PREFIX}/run", response_model=RunResponse, summary="Run a small sweep and wait", openapi_extra=sweep_body()
    )
    def post_run(request: Request) -> dict[str, Any]:
        """Run a small sweep (see ``limits.sync_max_cells`` in ``/axes``) and answer like
        ``/sdapi/v1/txt2img``: base64 images with the grids first, parameters, and an ``info`` JSON
        string with the infotexts."""
        raw = body_of(request)
        job = manager.submit(raw, max_cells=manager.limits.sync_max_cells)
        manager.wait(job.id)
        if job.state == "failed":
            return JSONResponse(status_code=500, content={"detail": [_problem("job", job.id, e) for e in job.errors]})  # type: ignore[return-value]
        return run_response(manager, job, raw)

    add_run_routes(router, manager)
    return router


SCRIPT_RESUME = "a Script run: run the Script again with the same spec and folder to resume it"


def _viewer_call(call: Callable[..., Any], *args: Any) -> Any:
    """Run a ``ViewerService`` call, its refusals answered as problems."""
    from sd_sweep.viewer.service import ViewerError

    try:
        return call(*args)
    except ViewerError as exc:
        raise JobError(exc.status, exc.problems) from None


def _folder_job(manager: JobManager, name: str) -> Job | None:
    """The latest job that writes the run folder ``name``."""
    found = [job for job in manager.jobs() if job.folder == name]
    return found[-1] if found else None


def run_listing(manager: JobManager, service: Any) -> list[dict[str, Any]]:
    """Every run of the runs folder, newest first, with its job (API runs) and what can be done with it."""
    jobs: dict[str, Job] = {job.folder: job for job in manager.jobs()}
    runs = []
    for run in service.runs():
        job = jobs.get(run["folder"])
        if job is not None:
            run["job"] = {"id": job.id, "state": job.state, "progress": job.progress, "links": job_links(job)}
            run["can_resume"] = job.state in RESUMABLE
            run["can_cancel"] = job.state in ACTIVE
        else:
            run["can_resume"] = False
            run["can_cancel"] = False
            counts = run.get("counts") or {}
            if run.get("state") != "finished" or counts.get("pending") or counts.get("failed"):
                run["note"] = SCRIPT_RESUME
        runs.append(run)
    return runs


def add_run_routes(router: APIRouter, manager: JobManager) -> None:
    """``/sweep/v1/runs/...`` (every run of the runs folder, jobs or Script runs) and the viewer page."""
    from sd_sweep.viewer.files import thumb_media_type
    from sd_sweep.viewer.server import static_file
    from sd_sweep.viewer.service import ViewerService

    service = ViewerService(manager.runs_dir)

    def attachment(filename: str, media: str, data: bytes) -> Response:
        return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @router.get(f"{PREFIX}/runs", summary="List runs")
    def list_runs() -> dict[str, Any]:
        """Every run folder, newest first: name, times, state, counts (from ``run.json``), axes, a thumbnail cell."""
        return {"runs": run_listing(manager, service)}

    @router.get(f"{PREFIX}/runs/{{name}}/index", summary="Run index for the viewer")
    def get_run_index(name: str) -> dict[str, Any]:
        """Dimensions, layout and every cell (coords, labels, state, file, infotext) of one run."""
        return _viewer_call(service.index, name)

    @router.get(f"{PREFIX}/runs/{{name}}/thumbs/{{cell_id}}", summary="Cell thumbnail", response_class=FileResponse)
    def get_run_thumb(name: str, cell_id: str) -> FileResponse:
        """A small image of the cell (made on first use, kept in the run's ``thumbs/``)."""
        path = _viewer_call(service.thumb, name, cell_id)
        return FileResponse(path, media_type=thumb_media_type(), headers={"Cache-Control": "max-age=3600"})

    @router.get(f"{PREFIX}/runs/{{name}}/files/{{path:path}}", summary="Run file", response_class=FileResponse)
    def get_run_file(name: str, path: str) -> FileResponse:
        """A file of the run's ``images/``, ``grids/`` or ``thumbs/``."""
        return FileResponse(_viewer_call(service.file, name, path))

    @router.post(f"{PREFIX}/runs/{{name}}/sheets", summary="Sheets of a view")
    def post_run_sheets(name: str, request: Request) -> Response:
        """``{x, y, pages, hidden: {dimension: [index, ...]}}``: a PNG sheet, or a ZIP of several."""
        return attachment(*_viewer_call(service.sheets, name, getattr(request.state, "sweep_body", None)))

    @router.post(f"{PREFIX}/runs/{{name}}/zip", summary="Images as a ZIP")
    def post_run_zip(name: str, request: Request) -> Response:
        """``{ids: [cell id, ...]}``: the finished images among them, as a ZIP."""
        return attachment(*_viewer_call(service.images, name, getattr(request.state, "sweep_body", None)))

    @router.post(f"{PREFIX}/runs/{{name}}/resume", response_model=JobStatus, status_code=202, summary="Resume a run")
    def resume_run(name: str) -> dict[str, Any]:
        """Resume the run's job (only the unfinished cells run); a Script run is resumed by the Script."""
        _viewer_call(service.run_dir, name)
        job = _folder_job(manager, name)
        if job is None:
            raise JobError.single(
                409, "run", name, "a Script run: run the Script again with the same spec to resume it"
            )
        return job_status(manager, manager.resume(job.id))

    @router.post(f"{PREFIX}/runs/{{name}}/cancel", response_model=JobStatus, summary="Cancel a run")
    def cancel_run(name: str) -> dict[str, Any]:
        """Cancel the run's queued or running job (after its current batch)."""
        _viewer_call(service.run_dir, name)
        job = _folder_job(manager, name)
        if job is None:
            raise JobError.single(409, "run", name, "not a job of the REST API: stop a Script run with Interrupt")
        return job_status(manager, manager.cancel(job.id))

    @router.delete(f"{PREFIX}/runs/{{name}}", summary="Delete a run")
    def delete_run(name: str) -> dict[str, Any]:
        """Delete the run folder (images, grids, logs); refused while its job is queued or running."""
        _viewer_call(service.run_dir, name)
        job = _folder_job(manager, name)
        if job is not None and job.state in ACTIVE:
            raise JobError.single(409, "run", name, f"its job {job.id} is {job.state}: cancel it first")
        _viewer_call(service.delete, name)
        manager.forget_folder(name)
        return {"deleted": name}

    @router.get(f"{PREFIX}/viewer/{{path:path}}", summary="The viewer page", include_in_schema=False)
    def get_viewer(path: str) -> FileResponse:
        found = static_file(path)
        if found is None:
            raise JobError.single(404, "path", path, "no such file of the viewer")
        return FileResponse(found, headers={"Cache-Control": "no-cache"})


def install(app: FastAPI, manager: JobManager, credentials: Credentials) -> bool:
    """Add the routes to ``app`` unless it has them; True when added."""
    existing = {getattr(route, "path", None) for route in app.routes}
    if f"{PREFIX}/jobs" in existing:
        return False
    app.include_router(build_router(manager, credentials, app))
    return True
