"""``python -m sd_sweep``: plan, run and re-grid sweeps from the command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.core.errors import Problem, SpecError, SweepError, UsageError

if TYPE_CHECKING:
    from sd_sweep.core.plan import Cell, Plan
    from sd_sweep.core.ports import Backend, StopSignal
    from sd_sweep.core.progress import StepProgress
    from sd_sweep.core.run import RunResult
    from sd_sweep.core.spec import Spec
    from sd_sweep.core.store import RunStore

DEFAULT_OUT = Path("sweep-runs")


def build_parser() -> argparse.ArgumentParser:
    from sd_sweep import __version__

    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Prompt matrices and parameter sweeps.",
        epilog="examples:\n  %(prog)s plan examples/quickstart.yaml\n  %(prog)s run examples/quickstart.yaml "
        "--out sweep-runs\n  %(prog)s status sweep-runs/quickstart\n  %(prog)s grid sweep-runs/quickstart "
        "--x seed --y cfg_scale",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("schema", help="print the JSON Schema of the sweep spec")

    plan = commands.add_parser(
        "plan", help="dry run: list cells, batches, the estimate and the run folder's state; generate nothing"
    )
    plan.add_argument("spec", type=Path, help="the sweep spec, a YAML or JSON file (e.g. examples/quickstart.yaml)")
    plan.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    plan.add_argument(
        "--out",
        type=Path,
        help=f"folder of run folders a run would use, to count its done cells (default: {DEFAULT_OUT})",
    )
    plan.add_argument("--url", help="plan on a WebUI at this URL (its /sweep/v1 routes, else its stock /sdapi/v1)")
    plan.add_argument("--auth", help="user:password of the WebUI's --api-auth")
    plan.add_argument(
        "--mode", choices=("txt2img", "img2img"), default="txt2img", help="with --url (default: %(default)s)"
    )
    _add_backend_options(plan)

    run = commands.add_parser("run", help="run a sweep; re-running into the same folder resumes it")
    run.add_argument("spec", type=Path, help="the sweep spec, a YAML or JSON file (e.g. examples/quickstart.yaml)")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of run folders (default: %(default)s)")
    run.add_argument("--no-grid", action="store_true", help="save images only")
    run.add_argument(
        "--pixel-budget",
        type=int,
        default=64_000_000,
        help="largest grid sheet in pixels; larger grids are split into parts (e.g. 16000000; default: %(default)s)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print only the run's summary as one JSON object on stdout (progress stays on stderr)",
    )
    run.add_argument(
        "--url",
        action="append",
        help="run on a WebUI at this URL (its /sweep/v1 routes, else its stock /sdapi/v1); "
        "with --ray, repeat it for one worker per server (their stock /sdapi/v1)",
    )
    run.add_argument("--auth", help="user:password of the WebUI's --api-auth")
    run.add_argument(
        "--mode", choices=("txt2img", "img2img"), default="txt2img", help="with --url (default: %(default)s)"
    )
    _add_backend_options(run)
    run.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run the batches on a pool of Ray actors: one per GPU, or one per --url; "
        "ADDRESS of a cluster (host:port, ray://host:port, auto), else a local Ray",
    )
    run.add_argument(
        "--ray-actors",
        type=int,
        metavar="N",
        help="with --ray and the embedded backend: N actors (default: one per GPU, else one)",
    )

    grid = commands.add_parser("grid", help="redraw the grids of a run folder with another layout")
    grid.add_argument("run_dir", type=Path, help="a run folder (e.g. sweep-runs/quickstart)")
    grid.add_argument("--x", help="axis for the columns: its name or parameter (e.g. --x seed)")
    grid.add_argument("--y", help="axis for the rows (e.g. --y cfg_scale)")
    grid.add_argument("--page", action="append", help="axis that splits pages, repeatable (e.g. --page sampler_name)")
    grid.add_argument(
        "--pixel-budget", type=int, default=64_000_000, help="largest sheet in pixels (default: %(default)s)"
    )

    prune = commands.add_parser("prune", help="delete a run folder's images that are not cells of its current plan")
    prune.add_argument("run_dir", type=Path, help="a run folder (e.g. sweep-runs/quickstart)")

    status = commands.add_parser(
        "status", help="what a run folder holds: its spec, cells done, pending, failed and stale, grids, resumable"
    )
    status.add_argument("run_dir", type=Path, help="a run folder (e.g. sweep-runs/quickstart)")
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")

    view = commands.add_parser("view", help="show a run folder in the browser (a viewer on 127.0.0.1)")
    view.add_argument("run_dir", type=Path, help="a run folder (e.g. sweep-runs/quickstart)")
    view.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    view.add_argument("--port", type=int, default=0, help="port (default: a free one)")

    export = commands.add_parser("export", help="write a folder that shows a run from disk, without a server")
    export.add_argument("run_dir", type=Path, help="a run folder (e.g. sweep-runs/quickstart)")
    export.add_argument("out_dir", type=Path, help="the folder to write (e.g. quickstart-page)")
    return parser


def _prog() -> str:
    """``sd-sweep`` when run as the installed command, else ``python -m sd_sweep``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "sd-sweep" if name.startswith("sd-sweep") else "python -m sd_sweep"


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        help="local SD 1.x/2.x/SDXL diffusers folder or .safetensors/.ckpt file (default: the first of --models, "
        "else a tiny model)",
    )
    parser.add_argument("--models", type=Path, help="folder of checkpoints: the choices of the checkpoint parameter")
    parser.add_argument("--vae-dir", type=Path, help="folder of VAEs: the choices of the vae parameter")
    parser.add_argument("--lora-dir", type=Path, help="folder of LoRAs: the names <lora:NAME:weight> tags use")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0911 - one exit status per kind of error
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SpecError as exc:
        _print_problems(exc)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nerror: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in str(exc) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head, say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the interpreter's final flush
        return 0


def _print_problems(exc: SpecError) -> None:
    count = len(exc.problems)
    print(f"error: the sweep is invalid ({count} problem{'s' if count != 1 else ''}):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def _backend(args: argparse.Namespace) -> Backend:
    from sd_sweep.backends.diffusers.backend import DiffusersBackend

    return DiffusersBackend(
        args.model,
        device=args.device,
        models_dir=getattr(args, "models", None),
        vae_dir=getattr(args, "vae_dir", None),
        lora_dir=getattr(args, "lora_dir", None),
    )


def cmd_schema(_: argparse.Namespace) -> int:
    from sd_sweep.core.schema import spec_schema

    print(json.dumps(spec_schema(), indent=2))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """The dry run: plan on the embedded backend's catalog (no model loaded, torch not needed) or on
    a server, and count what the run folder already holds for this plan."""
    from sd_sweep.core.spec import load_spec
    from sd_sweep.core.store import RunStore

    spec = load_spec(args.spec)
    run_dir = (args.out or DEFAULT_OUT) / spec.name
    store = RunStore.open(run_dir)
    if args.url:
        plan, about = _plan_on_server(spec, args, store.seed_resolutions)
    else:
        plan, about = _plan_embedded(spec, args, store.seed_resolutions)
    folder = _run_folder_counts(store, plan)
    if args.json:
        print(json.dumps({**plan, "dry_run": about, "run_folder": folder}, indent=1, default=str))
    else:
        _print_plan(plan, about, folder)
    return 0


def _plan_embedded(
    spec: Spec, args: argparse.Namespace, seed_resolutions: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    from sd_sweep.backends.diffusers.catalog import DiffusersCatalog
    from sd_sweep.core.planner import build_plan

    catalog = DiffusersCatalog(args.model, models_dir=args.models, vae_dir=args.vae_dir, lora_dir=args.lora_dir)
    plan = build_plan(spec, catalog.capabilities(), seed_resolutions=seed_resolutions)
    catalog.check_plan(plan)
    about = {
        "planned_by": "this process, on the embedded backend's catalog",
        "model": catalog.model_name,
        "model_path": str(catalog.model) if catalog.model is not None else None,
        "model_loaded": False,
        "pairs_checked_with": catalog.judged_by,
    }
    return plan.as_dict(), about


def _plan_on_server(
    spec: Spec, args: argparse.Namespace, seed_resolutions: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server's own plan (``POST /sweep/v1/plan``), else a local plan on its stock API's catalog."""
    from sd_sweep.backends.http import SweepHTTPError
    from sd_sweep.client import SweepClient

    client = SweepClient(args.url, auth=args.auth, timeout=60)
    if client.has_sweep_api():
        try:
            plan = client.plan(dict(spec.source), mode=args.mode)
        except SweepHTTPError as exc:
            if exc.status == 422 and exc.problems:
                raise SpecError([_problem_of(p) for p in exc.problems]) from None
            raise
        return plan, {"planned_by": f"{client.url} (/sweep/v1/plan)", "url": client.url, "mode": args.mode}

    from sd_sweep.backends.sdapi import SdapiBackend
    from sd_sweep.core.planner import build_plan

    backend = SdapiBackend(args.url, auth=args.auth, mode=args.mode, timeout=60)
    local = build_plan(spec, backend.capabilities(), seed_resolutions=seed_resolutions)
    backend.check_plan(local)
    about = {
        "planned_by": f"this process, on the /sdapi/v1 catalog of {client.url} (it has no /sweep/v1 routes)",
        "url": client.url,
        "mode": args.mode,
    }
    return local.as_dict(), about


def _problem_of(problem: dict[str, Any]) -> Problem:
    where = problem.get("field") or ".".join(str(part) for part in problem.get("loc") or ()) or "spec"
    return Problem(str(where), problem.get("value"), str(problem.get("message") or problem.get("msg") or ""))


def _run_folder_counts(store: RunStore, plan: dict[str, Any]) -> dict[str, Any]:
    """What a run of ``plan`` into ``store``'s folder would reuse, generate, and leave stale."""
    ids = [str(cell["id"]) for cell in plan.get("cells", [])]
    done = store.done_ids()
    reused = sum(1 for cell_id in ids if cell_id in done)
    return {
        "path": str(store.run_dir),
        "exists": store.exists,
        "done": reused,
        "to_generate": len(ids) - reused,
        "stale": len(store.stale_ids(plan)),
    }


def _passes(estimate: dict[str, Any]) -> list[str]:
    """``2 first passes and 8 hires passes``: where hires cells share first passes, how many each."""
    second = int(estimate.get("second_passes") or 0)
    if not second:
        return []
    first = int(estimate.get("first_passes") or 0)
    return [f"{first} first pass{'es' if first != 1 else ''} and {second} hires pass{'es' if second != 1 else ''}"]


def _print_plan(plan: dict[str, Any], about: dict[str, Any], folder: dict[str, Any]) -> None:
    """``plan`` as ``Plan.as_dict()`` gives it (a local plan or a server's)."""
    from sd_sweep.backends.webui.params import unreused_first_pass_lines

    estimate = plan["estimate"]
    titles = {d["name"]: d["title"] for d in plan.get("dimensions", [])}
    print(f"{plan['name']}: {estimate['cells']} cells in {estimate['batches']} batches on {plan['backend']}")
    loads = [
        f"{estimate[key]} {what} load{'s' if estimate[key] != 1 else ''}"
        for key, what in (("checkpoint_loads", "checkpoint"), ("vae_loads", "VAE"))
        if estimate.get(key)
    ]
    work = [f"{estimate['sampling_steps']} sampling steps", *_passes(estimate), *loads]
    print(f"  {', '.join(work)}")
    for line in unreused_first_pass_lines(estimate):
        print(f"  {line}")
    print(f"  planned by {about['planned_by']}")
    if "model" in about:
        print(f"  model: {about['model_path'] or about['model']} (not loaded by the dry run; a run loads it once)")
        print(f"  sampler and schedule-type pairs checked against {about['pairs_checked_with']}")
    if folder["exists"]:
        stale = f", {folder['stale']} stale images of earlier versions" if folder["stale"] else ""
        print(
            f"  run folder {folder['path']}: {folder['done']} cells done (reused), "
            f"{folder['to_generate']} to generate{stale}"
        )
    else:
        print(f"  run folder {folder['path']}: nothing there yet, {folder['to_generate']} to generate")
    cells = {cell["id"]: cell for cell in plan.get("cells", [])}
    for number, batch in enumerate(plan["batches"], 1):
        print(f"  batch {number}:")
        for cell_id in batch:
            cell = cells[cell_id]
            labels = ", ".join(f"{titles.get(name, name)} {label}" for name, label in cell["labels"].items())
            print(f"    {cell_id}  {labels}  seed {cell['params'].get('seed')}")


def cmd_run(args: argparse.Namespace) -> int:
    from sd_sweep.core.ports import StopSignal
    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.spec import load_spec

    _check_pixel_budget(args)
    spec = load_spec(args.spec)
    run_dir = args.out / spec.name
    _check_run_folder(run_dir)
    stop = StopSignal()
    urls: list[str] = args.url or []
    if args.ray is not None:
        return _run_on_ray(spec, args, run_dir, stop)
    if len(urls) > 1:
        raise SweepError("several --url run one sweep on a pool of servers: add --ray")
    if args.ray_actors is not None:
        raise SweepError("--ray-actors needs --ray")
    if urls:
        from sd_sweep.remote import run_remote

        url = urls[0]
        code = run_remote(spec, url, run_dir, auth=args.auth, mode=args.mode, as_json=args.json)
        if code is not None:
            return code
        from sd_sweep.backends.sdapi import SdapiBackend

        print(f"{url} has no /sweep/v1 routes: driving its /sdapi/v1/{args.mode} batch by batch", file=sys.stderr)
        backend: Backend = SdapiBackend(url, auth=args.auth, mode=args.mode)
    else:
        backend = _backend(args)
    progress = TerminalProgress()
    with _interrupt_on_ctrl_c(stop), progress:
        result = run_sweep(
            spec,
            backend,
            run_dir,
            observer=progress,
            stop=stop,
            draw_grids=not args.no_grid,
            pixel_budget=args.pixel_budget,
        )
    _report(result, args)
    return 0 if result.state == "finished" else 130


def _report(result: RunResult, args: argparse.Namespace) -> None:
    """The summary as text on stdout; with ``--json`` one JSON line there instead (the text goes to stderr)."""
    from sd_sweep.core.run import summary

    as_json = bool(getattr(args, "json", False))
    _print_result(result, sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(summary(result)))


def _check_pixel_budget(args: argparse.Namespace) -> None:
    if args.pixel_budget < 1:
        raise UsageError(f"--pixel-budget: must be at least 1 pixel (got {args.pixel_budget})")


def _check_run_folder(run_dir: Path) -> None:
    """Refuse a run folder that cannot be written or read, before any model is loaded or image made."""
    from sd_sweep.core.store import RunStore

    existing = next((p for p in (run_dir, *run_dir.parents) if p.exists()), Path())
    if not existing.is_dir():
        raise UsageError(f"--out: {existing} is a file, not a folder")
    probe = existing / f".sd-sweep-probe-{os.getpid()}"
    try:  # a folder made and removed again: nothing is left behind if the spec turns out invalid
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise UsageError(f"--out: cannot write the run folder {run_dir} ({exc.strerror or exc})") from None
    RunStore.open(run_dir)  # an unreadable run.json, plan.json or manifest is named now, not after a model load


def _run_on_ray(spec: Spec, args: argparse.Namespace, run_dir: Path, stop: StopSignal) -> int:
    """Plan here, run the batches on Ray actors (one per GPU or per --url), save them all here."""
    from sd_sweep.backends.ray import pool as ray_pool
    from sd_sweep.core.run import run_sweep

    urls: list[str] = args.url or []
    if args.ray_actors is not None and args.ray_actors < 1:
        raise SweepError(f"--ray-actors must be at least 1 (got {args.ray_actors})")
    if urls and args.ray_actors is not None:
        raise SweepError("--ray-actors is for the embedded backend; with --url there is one actor per server")
    if urls:
        from sd_sweep.backends.sdapi import SdapiBackend

        backend: Backend = SdapiBackend(urls[0], auth=args.auth, mode=args.mode)
    else:
        backend = _backend(args)
    started = ray_pool.connect(args.ray or None)
    try:
        if urls:
            workers = ray_pool.webui_workers(urls, auth=args.auth, mode=args.mode)
            print(
                f"Ray: {len(workers)} workers, one per server, each on its stock /sdapi/v1/{args.mode}",
                file=sys.stderr,
            )
        else:
            workers = ray_pool.embedded_workers(args.model, args.device, actors=args.ray_actors)
            print(f"Ray: {len(workers)} workers ({', '.join(w.name for w in workers)})", file=sys.stderr)
        with ray_pool.RayPool(workers) as pool, _interrupt_on_ctrl_c(stop):
            result = run_sweep(
                spec,
                backend,
                run_dir,
                observer=TerminalProgress(),
                stop=stop,
                draw_grids=not args.no_grid,
                pixel_budget=args.pixel_budget,
                dispatcher=pool,
            )
        loads = pool.stats.loads
        print(f"Ray: {loads} model load{'s' if loads != 1 else ''} handed out", file=sys.stderr)
    finally:
        if started:
            ray_pool.shutdown()
    _report(result, args)
    return 0 if result.state == "finished" else 130


def _print_result(result: RunResult, file: Any = None) -> None:
    file = file or sys.stdout
    print(f"run folder: {result.run_dir}", file=file)
    print(f"  state: {result.state}; {len(result.generated)} images generated, {len(result.reused)} reused", file=file)
    print(f"  images:   {result.run_dir / 'images'}", file=file)
    for grid in result.grids:
        print(f"  grid:     {grid}", file=file)
    if result.stale:
        print(f"  stale:    {result.stale} images of earlier versions ({_prog()} prune {result.run_dir})", file=file)
    if result.state == "interrupted":
        print("  run the same command again to finish it", file=file)


class _interrupt_on_ctrl_c:  # noqa: N801 - used as a context manager
    """First Ctrl-C: finish the current batch, save, stop. Second Ctrl-C: stop at once."""

    def __init__(self, stop: StopSignal) -> None:
        self.stop = stop
        self.previous: Any = None

    def __enter__(self) -> None:
        self.previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            if self.stop.interrupted:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            print("\nstopping after the current batch (Ctrl-C again to abort)", file=sys.stderr)
            self.stop.interrupt()

        signal.signal(signal.SIGINT, handler)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.previous)


class TerminalProgress:
    """A tqdm bar over the run's sampling steps (so its rate and time left follow the work: a hires
    cell that reuses its group's first pass costs only its second), with the images done, the
    current cell and the step inside its pass."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.plan: Plan | None = None
        self.steps: StepProgress | None = None
        self.images = 0
        self.total_images = 0
        self.step_text = ""
        self.workers: dict[str, str] = {}
        """With a pool: what each worker works on."""
        self.worker_of: dict[int, str] = {}

    def started(self, plan: Plan, todo: list[list[Cell]], first_passes_kept: frozenset[int] = frozenset()) -> None:
        from tqdm import tqdm

        from sd_sweep.core.progress import StepProgress

        self.plan = plan
        self.steps = StepProgress(plan, todo, first_passes_kept)
        total = sum(len(b) for b in todo)
        self.total_images = total
        reused = len(plan.cells) - total
        note = f" ({reused} already done)" if reused else ""
        print(f"{plan.spec.name}: {total} images in {len(todo)} batches{note}", file=sys.stderr)
        self.bar = tqdm(total=self.steps.total, unit="step", dynamic_ncols=True, file=sys.stderr)
        self._show()

    def batch_assigned(self, number: int, cells: list[Cell], worker: str) -> None:
        from sd_sweep.core.run import describe_cell

        if self.plan is not None:
            self.worker_of[number] = worker
            self.workers[worker] = describe_cell(self.plan, cells[0])[:30]
            self._show()

    def _show(self) -> None:
        if self.bar is None:
            return
        if self.workers:
            self.bar.set_description(f"{len(self.workers)} working")
        parts = [f"{self.images}/{self.total_images} images"]
        if self.workers:
            parts.append(" | ".join(f"{w}: {what}" for w, what in sorted(self.workers.items())))
        elif self.step_text:
            parts.append(self.step_text)
        self.bar.set_postfix_str(", ".join(parts))

    def _advance(self, done: int) -> None:
        if self.bar is not None and done != self.bar.n:
            self.bar.update(done - self.bar.n)

    def batch_started(self, number: int, cells: list[Cell]) -> None:
        from sd_sweep.core.run import describe_cell

        if self.steps is not None and not self.workers:
            self.steps.batch_started(number)
        if self.bar is not None and self.plan is not None and not self.workers:
            self.bar.set_description(describe_cell(self.plan, cells[0])[:40])

    def step(self, step: int, total: int) -> None:
        """A step of the batch in progress (not counted with a pool: its workers' steps interleave)."""
        if self.steps is None or self.workers:
            return
        self.step_text = f"step {step}/{total}"
        self._advance(self.steps.step(step, total))
        self._show()

    def batch_finished(self, number: int, cells: list[Cell], saved: int) -> None:
        worker = self.worker_of.pop(number, None)
        if worker is not None and worker not in self.worker_of.values():
            self.workers.pop(worker, None)
        self.images += saved
        self.step_text = ""
        if self.steps is not None:
            self._advance(self.steps.batch_finished(number))
        self._show()

    def finished(self, result: RunResult) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        """Closes the bar on the way out, also on an error or a second Ctrl-C, so the last line is the message."""
        self.close()


def cmd_grid(args: argparse.Namespace) -> int:
    from sd_sweep.core.sheets import render_run_grids
    from sd_sweep.core.store import RunStore

    _check_pixel_budget(args)
    store = RunStore.open(args.run_dir)
    if not store.exists or store.plan_dict is None:
        raise SweepError(f"{args.run_dir}: no run manifest here")
    try:
        paths = render_run_grids(
            store, x=args.x, y=args.y, pages=args.page, pixel_budget=args.pixel_budget, prefix="slice"
        )
    except ValueError as exc:
        raise UsageError(f"--pixel-budget: {exc}") from None
    for path in paths:
        print(path)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete images of earlier versions of the sweep (and unrecorded leftovers), compact the cell log."""
    from sd_sweep.core.store import RunStore

    store = RunStore.open(args.run_dir)
    if not store.exists or store.plan_dict is None:
        raise SweepError(f"{args.run_dir}: no run manifest here")
    stale, removed = store.prune()
    for path in removed:
        print(f"removed {path}")
    print(f"{len(stale)} stale cells pruned, {len(removed)} files removed; {store.counts()['done']} images kept")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Which spec, how many cells are done, pending, failed and stale, the grids, and whether it resumes."""
    from sd_sweep.core.store import RunStore

    store = RunStore.open(args.run_dir)
    if not store.exists or store.plan_dict is None:
        raise UsageError(f"{args.run_dir}: no run here (no plan.json, run.json or manifest.json)")
    counts = store.counts()
    state = store.state or "interrupted"
    spec = store.spec or {}
    report = {
        "run_dir": str(store.run_dir),
        "name": spec.get("name") or store.plan_dict.get("name"),
        "state": state,
        "format": store.format,
        "counts": counts,
        "grids": [str(store.run_dir / g["file"]) for g in store.grids if isinstance(g, dict) and "file" in g],
        "resumable": state != "running" and counts["done"] < counts["cells"],
    }
    if args.json:
        print(json.dumps({**report, "spec": spec}, indent=1, default=str))
        return 0
    print(f"{report['name']}: {state} ({report['format']})")
    print(
        f"  cells: {counts['cells']}; {counts['done']} done, {counts['pending']} pending, "
        f"{counts['failed']} failed; {counts['stale']} stale images of earlier versions"
    )
    for grid in report["grids"]:
        print(f"  grid: {grid}")
    if state == "running":
        print("  a run is writing this folder now (or was killed: run the same command again to resume)")
    elif report["resumable"]:
        print("  resumable: run the same command again to generate what is missing")
    else:
        print("  complete: running it again generates nothing")
    return 0


def _existing_run(run_dir: Path) -> None:
    from sd_sweep.core.store import RunStore

    if not RunStore(run_dir).exists:
        raise SweepError(f"{run_dir}: no run here (no plan.json, run.json or manifest.json)")


def cmd_view(args: argparse.Namespace) -> int:
    """Serve the viewer over one run folder until Ctrl-C; prints its address."""
    from sd_sweep.viewer.server import make_server, viewer_url

    _existing_run(args.run_dir)
    if not 0 <= args.port <= 65535:
        raise SweepError(f"--port must be 0..65535 (got {args.port})")
    try:
        server = make_server(args.run_dir, args.host, args.port)
    except OSError as exc:
        raise SweepError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
    host, port = server.server_address[:2]
    print(viewer_url(str(host), int(port), args.run_dir.resolve().name), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a self-contained folder (page, index as data, thumbnails, images) that opens from disk."""
    from sd_sweep.viewer.export import export_run

    _existing_run(args.run_dir)
    page = export_run(args.run_dir, args.out_dir)
    print(page)
    return 0


COMMANDS = {
    "schema": cmd_schema,
    "plan": cmd_plan,
    "run": cmd_run,
    "grid": cmd_grid,
    "prune": cmd_prune,
    "status": cmd_status,
    "view": cmd_view,
    "export": cmd_export,
}
