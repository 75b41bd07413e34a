"""What the embedded backend supports, told without loading a model or needing torch.

The WebUI sampler and schedule-type tables, the parameters, the size rules of a model (read from its
config files) and the check of sampler and schedule-type pairs live here, so a dry run
(``python -m sd_sweep plan``) works where torch and diffusers are not installed.

The pairs are judged by the installed diffusers when torch and diffusers import (its scheduler
classes are inspected and set up, which loads no weights); without them, by ``SCHEDULER_ARGUMENTS``,
the table of what each scheduler accepted in diffusers ``TABLE_VERSION``. A run always judges with
the installed diffusers.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import struct
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.backends.diffusers.tiny_model import TINY_MODEL_NAME, _configs, quiet_hf_output
from sd_sweep.core.errors import BackendError, Problem, SpecError
from sd_sweep.core.params import HIRES_SECOND_PASS, SAME_SAMPLER, SAME_SCHEDULER, WEBUI_DEFAULTS, with_hires_choices
from sd_sweep.core.ports import Capabilities

if TYPE_CHECKING:
    from sd_sweep.core.plan import Plan

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
INSTALL_HINT = 'pip install ".[embedded]" in the repository folder (or pip install "sd-webui-sweep[embedded]")'

SUPPORTED_PARAMS = frozenset(
    {
        "prompt",
        "negative_prompt",
        "seed",
        "subseed",
        "subseed_strength",
        "steps",
        "cfg_scale",
        "sampler_name",
        "scheduler",
        "width",
        "height",
        "clip_skip",
        "enable_hr",
        *HIRES_SECOND_PASS,
    }
)

DEFAULTS = WEBUI_DEFAULTS

HIRES_DEFAULTS: dict[str, Any] = {
    "hr_scale": 2.0,
    "hr_upscaler": "Latent",
    "denoising_strength": 0.75,
    "hr_second_pass_steps": 0,
    "hr_resize_x": 0,
    "hr_resize_y": 0,
}
"""What the WebUI's txt2img uses for the hires settings a request with ``enable_hr`` leaves out."""

LATENT_UPSCALERS: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
"""The WebUI's ``shared.latent_upscale_modes``: hires upscalers that resize the first pass's latent
(``torch.nn.functional.interpolate`` mode, antialias)."""

PIXEL_UPSCALERS: dict[str, str] = {"Lanczos": "LANCZOS", "Nearest": "NEAREST"}
"""Hires upscalers that decode the first pass, resize its pixels (the PIL filter named) and encode again."""

_LINSPACE = {"timestep_spacing": "linspace"}
_LEADING = {"timestep_spacing": "leading"}
_KARRAS = {"use_karras_sigmas": True}
_EXPONENTIAL = {"use_exponential_sigmas": True}


@dataclass(frozen=True)
class SamplerSpec:
    """How one WebUI sampler is made from a diffusers scheduler class.

    ``automatic`` is the schedule the WebUI uses for this sampler when the schedule type is
    "Automatic": k-diffusion samplers space sigmas uniformly (diffusers' "linspace") unless the
    WebUI gives them a default of Karras or Exponential; DDIM, PLMS and UniPC step through
    "leading" timesteps (``range(0, 1000, 1000 // steps) + 1``).
    """

    scheduler_class: str
    config: Mapping[str, Any] = field(default_factory=dict)
    automatic: Mapping[str, Any] = field(default_factory=lambda: dict(_LINSPACE))
    requires: tuple[str, ...] = ()


SAMPLERS: dict[str, SamplerSpec] = {
    "DPM++ 2M": SamplerSpec(
        "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, _KARRAS
    ),
    "DPM++ 2M SDE": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "solver_type": "midpoint"},
        _EXPONENTIAL,
    ),
    "DPM++ 2M SDE Heun": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "solver_type": "heun"},
        _EXPONENTIAL,
    ),
    "Euler a": SamplerSpec("EulerAncestralDiscreteScheduler"),
    "Euler": SamplerSpec("EulerDiscreteScheduler"),
    "LMS": SamplerSpec("LMSDiscreteScheduler", requires=("scipy",)),
    "Heun": SamplerSpec("HeunDiscreteScheduler"),
    "DPM2": SamplerSpec("KDPM2DiscreteScheduler", automatic=_KARRAS),
    "DPM2 a": SamplerSpec("KDPM2AncestralDiscreteScheduler", automatic=_KARRAS),
    "DDIM": SamplerSpec("DDIMScheduler", automatic=_LEADING),
    "PLMS": SamplerSpec("PNDMScheduler", {"skip_prk_steps": True}, automatic=_LEADING),
    "UniPC": SamplerSpec("UniPCMultistepScheduler", automatic=_LEADING),
}
"""WebUI sampler name -> diffusers scheduler.

Left out on purpose: "DPM++ SDE" (diffusers' DPMSolverSDEScheduler needs torchsde and draws its
Brownian noise from one seed for the whole batch, so images would depend on their batch), "DPM++ 2S a",
"DPM++ 3M SDE", "DPM fast", "DPM adaptive", "Restart", "LCM" (no diffusers equivalent for an SD 1.x
model).
"""

SCHEDULES: dict[str, tuple[Mapping[str, Any] | None, tuple[str, ...]]] = {
    "Automatic": (None, ()),
    "Uniform": (_LINSPACE, ()),
    "SGM Uniform": ({"timestep_spacing": "trailing"}, ()),
    "Karras": (_KARRAS, ()),
    "Exponential": (_EXPONENTIAL, ()),
    "Beta": ({"use_beta_sigmas": True}, ("scipy",)),
}
"""WebUI schedule type -> scheduler config overrides (``None``: the sampler's automatic one), requirements."""

TABLE_VERSION = "0.32"
_SIGMAS = ("timestep_spacing", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")
SCHEDULER_ARGUMENTS: dict[str, frozenset[str]] = {
    "DPMSolverMultistepScheduler": frozenset({*_SIGMAS, "algorithm_type", "solver_order", "solver_type"}),
    "EulerAncestralDiscreteScheduler": frozenset({"timestep_spacing"}),
    "EulerDiscreteScheduler": frozenset(_SIGMAS),
    "LMSDiscreteScheduler": frozenset(_SIGMAS),
    "HeunDiscreteScheduler": frozenset(_SIGMAS),
    "KDPM2DiscreteScheduler": frozenset(_SIGMAS),
    "KDPM2AncestralDiscreteScheduler": frozenset(_SIGMAS),
    "DDIMScheduler": frozenset({"timestep_spacing"}),
    "PNDMScheduler": frozenset({"timestep_spacing", "skip_prk_steps"}),
    "UniPCMultistepScheduler": frozenset({*_SIGMAS, "solver_order", "solver_type"}),
}
"""Which of the settings in ``SAMPLERS`` and ``SCHEDULES`` each scheduler class took in diffusers
``TABLE_VERSION``: the pair check when diffusers is not installed."""

SD_SIZE_MULTIPLE = 8
SD_MIN_SIDE = 64
"""An SD 1.x/2.x checkpoint's VAE scales by 8 and its UNet halves the latent three times."""

_SD_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
}
_probe_results: dict[tuple[str, str], str | None] = {}
_runtime: list[str | None] = []


def scheduler_config(sampler_name: str, schedule: str) -> dict[str, Any]:
    """The diffusers scheduler settings of a WebUI sampler with a schedule type."""
    spec = SAMPLERS[sampler_name]
    overrides = SCHEDULES[schedule][0]
    return {**spec.config, **(spec.automatic if overrides is None else overrides)}


def missing_packages(requirements: tuple[str, ...]) -> list[str]:
    return [name for name in dict.fromkeys(requirements) if importlib.util.find_spec(name) is None]


def runtime_problem() -> str | None:
    """Why the embedded backend cannot generate here (torch, diffusers or transformers missing), or None.

    Imports them to find out (once per process), which loads no model.
    """
    if not _runtime:
        problem = None
        try:
            import diffusers  # noqa: F401
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            problem = f"the embedded backend needs torch, diffusers and transformers ({exc}): {INSTALL_HINT}"
        _runtime.append(problem)
    return _runtime[0]


def combination_problem(sampler_name: str, scheduler: str, *, installed: bool = True) -> str | None:
    """Why this sampler cannot run with this schedule type, or None when it can.

    ``installed``: judge by the installed diffusers (which must import); else by the built-in table.
    """
    spec = SAMPLERS.get(sampler_name)
    if spec is None:
        return f"unknown sampler {sampler_name!r}; available: {', '.join(SAMPLERS)}"
    if scheduler not in SCHEDULES:
        return f"unknown schedule type {scheduler!r}; available: {', '.join(SCHEDULES)}"
    requires = SCHEDULES[scheduler][1]
    if installed:
        import diffusers

        version = diffusers.__version__
        cls = getattr(diffusers, spec.scheduler_class, None)
        if cls is None:
            return f"sampler {sampler_name!r} needs diffusers.{spec.scheduler_class}, missing in this diffusers"
    missing = missing_packages(spec.requires + requires)
    if missing:
        return f"sampler {sampler_name!r} with schedule type {scheduler!r} needs {', '.join(missing)} installed"
    if installed:
        accepted: Any = inspect.signature(cls.__init__).parameters
    else:
        version, accepted = TABLE_VERSION, SCHEDULER_ARGUMENTS[spec.scheduler_class]
    unsupported = sorted(key for key in scheduler_config(sampler_name, scheduler) if key not in accepted)
    if unsupported:
        return (
            f"sampler {sampler_name!r} does not support schedule type {scheduler!r} in diffusers "
            f"{version} ({spec.scheduler_class} has no {', '.join(unsupported)})"
        )
    return _probe(sampler_name, scheduler) if installed else None


def _probe(sampler_name: str, schedule: str) -> str | None:
    """Set a scheduler up for a few step counts and check that its noise levels go down.

    Some diffusers releases accept a flag and then fail or count the wrong way: 0.31's
    DPMSolverMultistep and UniPC schedulers raise for exponential or beta sigmas, and give rising
    sigmas when that error is avoided. Such pairs are left out rather than generating noise.
    """
    key = (sampler_name, schedule)
    if key in _probe_results:
        return _probe_results[key]
    import diffusers
    import torch

    cls = getattr(diffusers, SAMPLERS[sampler_name].scheduler_class)
    problem = None
    try:
        with quiet_hf_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scheduler = cls.from_config(_SD_SCHEDULER_CONFIG, **scheduler_config(sampler_name, schedule))
            for steps in (4, 20):
                scheduler.set_timesteps(steps)
                timesteps = scheduler.timesteps.float()
                sigmas = getattr(scheduler, "sigmas", None)
                levels = sigmas[sigmas > 0].float() if sigmas is not None else timesteps
                finite = bool(torch.isfinite(levels).all())
                if not (finite and len(levels) > 1 and levels[0] >= levels.max() and levels[0] > levels[-1]):
                    problem = f"its noise levels do not decrease over {steps} steps"
                    break
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0].rstrip(":")
        problem = f"{type(exc).__name__}: {first_line[:200]}"
    if problem is not None:
        problem = (
            f"sampler {sampler_name!r} with schedule type {schedule!r} is broken in diffusers "
            f"{diffusers.__version__} ({SAMPLERS[sampler_name].scheduler_class}: {problem})"
        )
    _probe_results[key] = problem
    return problem


def hires_sampler(params: Mapping[str, Any]) -> tuple[str, str]:
    """The sampler and schedule type of a cell's hires pass (``Use same ...``: the first pass's)."""
    sampler = str(params.get("sampler_name", DEFAULTS["sampler_name"]))
    schedule = str(params.get("scheduler", DEFAULTS["scheduler"]))
    hr_sampler, hr_schedule = params.get("hr_sampler_name"), params.get("hr_scheduler")
    return (
        sampler if hr_sampler in (None, "", SAME_SAMPLER) else str(hr_sampler),
        schedule if hr_schedule in (None, "", SAME_SCHEDULER) else str(hr_schedule),
    )


def pair_problems(plan: Plan, problem: Callable[[str, str], str | None]) -> list[Problem]:
    """The plan's sampler and schedule-type pairs that ``problem`` refuses, on the field that sweeps them;
    the hires pass's pairs on the hires fields."""
    pairs: dict[tuple[str, str], str] = {}
    for cell in plan.cells:
        params = cell.params
        first = (str(params.get("sampler_name", DEFAULTS["sampler_name"])), str(params.get("scheduler", "Automatic")))
        pairs.setdefault(first, "")
        if params.get("enable_hr"):
            pairs.setdefault(hires_sampler(params), "hr_")
    problems = []
    for (sampler, schedule), prefix in sorted(pairs.items()):
        reason = problem(sampler, schedule)
        if reason:
            scheduler_field = plan.field_of(f"{prefix}scheduler")
            where = scheduler_field if scheduler_field.startswith("axes") else plan.field_of(f"{prefix}sampler_name")
            problems.append(Problem(where, f"{sampler} + {schedule}", reason))
    return problems


def hires_problems(plan: Plan) -> list[Problem]:
    """Hires cells this backend cannot make: a denoising strength of 0 (the hires pass would not sample)."""
    problems: list[Problem] = []
    for cell in plan.cells:
        params = cell.params
        strength = params.get("denoising_strength", HIRES_DEFAULTS["denoising_strength"])
        if params.get("enable_hr") and not float(strength) > 0:
            problem = Problem(
                plan.field_of("denoising_strength"),
                strength,
                "the hires pass needs a denoising strength above 0 (at 0 it would return the upscaled first pass)",
            )
            if problem not in problems:
                problems.append(problem)
    return problems


def first_pass_key(model: str, params: Mapping[str, Any]) -> str | None:
    """Everything the first pass of a hires cell reads, with the model, as text; None for a cell
    without the hires fix.

    The backend keeps the first pass's latent, so every upscaler (latent or pixel) continues from
    exactly the latent the cell would make alone.
    """
    if not params.get("enable_hr"):
        return None
    first = {name: value for name, value in params.items() if name not in HIRES_SECOND_PASS}
    return json.dumps({"model": model, "params": first}, sort_keys=True, default=str)


def model_name(model: Path | None) -> str:
    """The name written as "Model" in infotexts: the checkpoint's file or folder name."""
    if model is None:
        return TINY_MODEL_NAME
    return model.stem if model.suffix.lower() in SINGLE_FILE_SUFFIXES else model.name


def check_model_source(source: Path) -> None:
    """Refuse what cannot be a model, from its files alone (a missing path, a folder without
    ``model_index.json``, a file of another kind or with an unreadable header)."""
    if not source.exists():
        msg = f"model not found: {source} (give a diffusers folder or a .safetensors/.ckpt file)"
        raise BackendError(msg)
    if source.is_dir():
        if not (source / "model_index.json").is_file():
            msg = f"{source} is not a diffusers model folder (no model_index.json)"
            raise BackendError(msg)
        return
    suffix = source.suffix.lower()
    if suffix not in SINGLE_FILE_SUFFIXES:
        msg = f"unsupported model file {source.name}: expected a folder, .safetensors or .ckpt"
        raise BackendError(msg)
    if not (_safetensors_header_ok(source) if suffix == ".safetensors" else _checkpoint_header_ok(source)):
        msg = f"could not load model {source}: not a readable {suffix} checkpoint"
        raise BackendError(msg)


def _safetensors_header_ok(path: Path) -> bool:
    """A safetensors file starts with the length of its JSON header, then that header."""
    try:
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return False
            (length,) = struct.unpack("<Q", prefix)
            if not 0 < length <= min(100_000_000, path.stat().st_size - 8):
                return False
            return isinstance(json.loads(handle.read(length)), dict)
    except (OSError, ValueError):
        return False


def _checkpoint_header_ok(path: Path) -> bool:
    """A .ckpt is a torch zip archive, or a pickle from before torch 1.6."""
    try:
        with path.open("rb") as handle:
            first = handle.read(2)
    except OSError:
        return False
    return zipfile.is_zipfile(path) or (len(first) == 2 and first[0] == 0x80)


def model_geometry(model: Path | None) -> tuple[int, int]:
    """``(size multiple, smallest side)`` of a model, from its config files: no weights are read.

    The multiple is the VAE's scale (2 per down block after the first); the smallest side is that
    times 2 per UNet down-sampling, what the UNet needs to reach its innermost level.
    """
    if model is None:
        configs = _configs("tiny")
        vae, unet = configs["vae"], configs["unet"]
    else:
        check_model_source(model)
        if model.is_file():
            return SD_SIZE_MULTIPLE, SD_MIN_SIDE
        vae, unet = _read_config(model / "vae" / "config.json"), _read_config(model / "unet" / "config.json")
    scale = 2 ** (len(vae.get("block_out_channels") or (0,) * 4) - 1)
    levels = len(unet.get("block_out_channels") or (0,) * 4) - 1
    return scale, scale * 2**levels


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        msg = f"could not load model config {path}: {exc}"
        raise BackendError(msg) from None
    return config if isinstance(config, dict) else {}


class DiffusersCatalog:
    """The embedded backend's description for one model: capabilities and the plan check, nothing loaded.

    ``installed``: judge sampler and schedule-type pairs by the installed diffusers; ``None`` (the
    default) does when torch and diffusers import, else uses the built-in table.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        installed: bool | None = None,
        models_dir: str | Path | None = None,
        vae_dir: str | Path | None = None,
        lora_dir: str | Path | None = None,
    ) -> None:
        self.folders = ModelFolders.of(models_dir, vae_dir, lora_dir)
        if model is None and self.folders.checkpoints:
            model = next(iter(self.folders.checkpoints.values()))
        self.model = Path(model).expanduser() if model is not None else None
        self._installed = installed
        self._capabilities: Capabilities | None = None

    @property
    def model_name(self) -> str:
        return model_name(self.model)

    @property
    def installed(self) -> bool:
        """Whether pairs are judged by the installed diffusers (True) or the built-in table."""
        if self._installed is None:
            self._installed = runtime_problem() is None
        return self._installed

    @property
    def judged_by(self) -> str:
        """Which diffusers the sampler and schedule-type pairs were checked against, in words."""
        if self.installed:
            import diffusers

            return f"diffusers {diffusers.__version__} (installed)"
        return f"the built-in table of diffusers {TABLE_VERSION} (torch or diffusers is not installed here)"

    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            multiple, min_side = model_geometry(self.model)
            folders = self.folders
            params = set(SUPPORTED_PARAMS)
            choices = {
                "sampler_name": self.available_samplers(),
                "scheduler": self.available_schedules(),
                "hr_upscaler": (*LATENT_UPSCALERS, *PIXEL_UPSCALERS),
            }
            if folders.models_dir is not None:
                params.add("checkpoint")
                choices["checkpoint"] = tuple(folders.checkpoints)
            if folders.vae_dir is not None:
                params.add("vae")
                choices["vae"] = ("Automatic", "None", *folders.vaes)
            if folders.lora_dir is not None:
                params.update(("lora:*", "lyco:*"))
            self._capabilities = Capabilities(
                name="diffusers",
                params=frozenset(params),
                choices=with_hires_choices(choices),
                size_multiple=multiple,
                min_side=min_side,
                max_side=4096,
                implicit={} if self.model is None else {"checkpoint": self.model_name},
                first_pass_key=functools.partial(first_pass_key, self.model_name),
                batch_first_passes=True,
            )
        return self._capabilities

    def combination_problem(self, sampler_name: str, scheduler: str) -> str | None:
        """Why this sampler cannot run with this schedule type (see ``combination_problem``)."""
        return combination_problem(sampler_name, scheduler, installed=self.installed)

    def available_samplers(self) -> tuple[str, ...]:
        """WebUI sampler names that run with this diffusers and the optional packages installed."""
        return tuple(name for name in SAMPLERS if self.combination_problem(name, "Automatic") is None)

    def available_schedules(self) -> tuple[str, ...]:
        """Schedule types that at least one available sampler implements."""
        samplers = self.available_samplers()
        return tuple(
            name
            for name, (_, requires) in SCHEDULES.items()
            if not missing_packages(requires) and any(self.combination_problem(s, name) is None for s in samplers)
        )

    def network_problems(self, plan: Plan) -> list[Problem]:
        return network_problems(plan, self.folders)

    def check_plan(self, plan: Plan) -> None:
        """Refuse sampler and schedule-type pairs that cannot run, and extra-network tags naming no
        file of ``--lora-dir``, before the first image."""
        problems = pair_problems(plan, self.combination_problem)
        problems += hires_problems(plan)
        problems += self.network_problems(plan)
        if problems:
            raise SpecError(problems)


VAE_SUFFIXES = (".safetensors", ".ckpt", ".pt")
LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")


@dataclass(frozen=True)
class ModelFolders:
    """The files of ``--models``, ``--vae-dir`` and ``--lora-dir``: the choices of the ``checkpoint``
    and ``vae`` parameters and the names ``<lora:NAME:w>`` tags may use. Listed from the file names
    alone (no torch, nothing loaded).

    Checkpoints are single files (named by their path in the folder, e.g. ``sub/model.safetensors``,
    and by their stem when that is unique) and diffusers folders (by folder name); VAEs are single
    files and diffusers VAE folders (a ``config.json``); LoRAs are single files, named by their stem
    as the WebUI names them.
    """

    models_dir: Path | None = None
    vae_dir: Path | None = None
    lora_dir: Path | None = None
    checkpoints: dict[str, Path] = field(default_factory=dict)
    vaes: dict[str, Path] = field(default_factory=dict)
    loras: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def of(cls, models_dir: str | Path | None, vae_dir: str | Path | None, lora_dir: str | Path | None) -> ModelFolders:
        folders = [Path(d).expanduser() if d is not None else None for d in (models_dir, vae_dir, lora_dir)]
        for option, folder in zip(("--models", "--vae-dir", "--lora-dir"), folders):
            if folder is not None and not folder.is_dir():
                msg = f"{option} {folder}: no such folder"
                raise BackendError(msg)
        models, vaes, loras = folders
        checkpoints: dict[str, Path] = {}
        if models is not None:
            checkpoints = _named_files(models, SINGLE_FILE_SUFFIXES, folder_marker="model_index.json")
            if not checkpoints:
                msg = f"--models {models}: no .safetensors/.ckpt files or diffusers folders in it"
                raise BackendError(msg)
        return cls(
            models,
            vaes,
            loras,
            checkpoints,
            _named_files(vaes, VAE_SUFFIXES, folder_marker="config.json") if vaes is not None else {},
            {p.stem: p for p in _files(loras, LORA_SUFFIXES)} if loras is not None else {},
        )

    def checkpoint_path(self, name: str) -> Path:
        try:
            return self.checkpoints[name]
        except KeyError:
            msg = f"unknown checkpoint {name!r}; available in {self.models_dir}: {', '.join(self.checkpoints)}"
            raise BackendError(msg) from None

    def vae_path(self, name: str) -> Path | None:
        """The VAE file of ``name``; None for "Automatic" and "None" (the checkpoint's own VAE)."""
        if name in ("Automatic", "None", ""):
            return None
        try:
            return self.vaes[name]
        except KeyError:
            where = f"in {self.vae_dir}" if self.vae_dir else "(no --vae-dir given)"
            msg = f"unknown VAE {name!r}; available {where}: {', '.join(self.vaes) or 'none'}"
            raise BackendError(msg) from None

    def lora_path(self, name: str) -> Path:
        try:
            return self.loras[name]
        except KeyError:
            where = f"in {self.lora_dir}" if self.lora_dir else "(no --lora-dir given)"
            msg = f"unknown LoRA {name!r}; available {where}: {', '.join(self.loras) or 'none'}"
            raise BackendError(msg) from None


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _named_files(folder: Path, suffixes: tuple[str, ...], *, folder_marker: str) -> dict[str, Path]:
    names: dict[str, Path] = {}
    files = _files(folder, suffixes)
    diffusers_dirs = sorted(p.parent for p in folder.rglob(folder_marker) if p.parent != folder)
    diffusers_dirs = [d for d in diffusers_dirs if not any(parent in diffusers_dirs for parent in d.parents)]
    files = [f for f in files if not any(d in f.parents for d in diffusers_dirs)]
    for path in files:
        names[path.relative_to(folder).as_posix()] = path
    for path in diffusers_dirs:
        names[path.relative_to(folder).as_posix()] = path
    stems: dict[str, list[Path]] = {}
    for path in files:
        stems.setdefault(path.stem, []).append(path)
    for stem, paths in stems.items():
        if len(paths) == 1 and stem not in names:
            names[stem] = paths[0]
    return names


def network_problems(plan: Plan, folders: ModelFolders) -> list[Problem]:
    """Extra-network tags of the plan's prompts that name no file of ``--lora-dir``, or another network."""
    from sd_sweep.backends.diffusers.prompt_syntax import extract_networks

    problems: list[Problem] = []
    seen: set[str] = set()
    for cell in plan.cells:
        for key in ("prompt", "negative_prompt", "hr_prompt", "hr_negative_prompt"):
            text = str(cell.params.get(key) or "")
            if "<" not in text or text in seen:
                continue
            seen.add(text)
            try:
                _, tags = extract_networks(text)
            except ValueError as exc:
                problems.append(Problem(plan.field_of(key), text, str(exc)))
                continue
            for tag in tags:
                if tag.network not in ("lora", "lyco"):
                    reason = f"the diffusers backend applies only lora and lyco tags, not {tag.network}"
                elif tag.name not in folders.loras:
                    where = f"in {folders.lora_dir}" if folders.lora_dir else "(no --lora-dir given)"
                    reason = f"no LoRA named {tag.name!r} {where}"
                else:
                    continue
                problem = Problem(plan.field_of(key), tag.text, reason)
                if problem not in problems:
                    problems.append(problem)
    return problems
