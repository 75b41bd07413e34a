"""The embedded backend: a diffusers ``StableDiffusionPipeline`` in this process.

Without a model it uses the locally built tiny random model (``tiny_model.ensure_tiny_model``), so
sweeps, tests and demos run anywhere without downloads. torch and diffusers are imported only when
the model loads, so importing this module costs nothing.

WebUI sampler and schedule-type names are mapped to diffusers schedulers; only combinations that
the installed diffusers really implements are offered (see ``SAMPLERS``, ``SCHEDULES`` and
``DiffusersBackend.combination_problem``).

Every image gets its own ``torch.Generator`` seeded with its seed, for the initial noise and for the
noise ancestral/SDE samplers add at each step, so an image is the same (within float tolerance)
whether it was generated alone or in a batch with other prompts and seeds.
"""

from __future__ import annotations

import importlib.util
import inspect
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.backends.diffusers.tiny_model import TINY_MODEL_NAME, ensure_tiny_model, quiet_hf_output
from sd_sweep.core.errors import BackendError, Problem, SpecError
from sd_sweep.core.infotext import build_infotext
from sd_sweep.core.ports import (
    Backend,
    Capabilities,
    GeneratedImage,
    GenerationRequest,
    StepCallback,
    StopSignal,
)

if TYPE_CHECKING:
    import torch
    from diffusers import StableDiffusionPipeline

    from sd_sweep.core.plan import Plan

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")

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
    }
)

DEFAULTS: dict[str, Any] = {
    "steps": 20,
    "cfg_scale": 7.0,
    "sampler_name": "DPM++ 2M",
    "scheduler": "Automatic",
    "width": 512,
    "height": 512,
}
"""What the WebUI (v1.10) uses when a request leaves these out."""

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


class _StoppedError(Exception):
    """Raised from the step callback to leave the pipeline at once, before the VAE decode."""


_SD_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
}
_probe_results: dict[tuple[str, str], str | None] = {}


def _scheduler_config(sampler_name: str, schedule: str) -> dict[str, Any]:
    spec = SAMPLERS[sampler_name]
    overrides = SCHEDULES[schedule][0]
    return {**spec.config, **(spec.automatic if overrides is None else overrides)}


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
            scheduler = cls.from_config(_SD_SCHEDULER_CONFIG, **_scheduler_config(sampler_name, schedule))
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


def _missing(requirements: tuple[str, ...]) -> list[str]:
    return [name for name in dict.fromkeys(requirements) if importlib.util.find_spec(name) is None]


def webui_clip_skip_to_diffusers(clip_skip: Any) -> int | None:
    """WebUI counts the last CLIP layer as 1; diffusers counts the layers skipped (None for none)."""
    value = int(clip_skip)
    return value - 1 if value > 1 else None


class DiffusersBackend(Backend):
    """Generates with a local diffusers Stable Diffusion 1.x/2.x pipeline.

    ``model``: ``None`` for the cached tiny random model, a diffusers folder, or a single
    ``.safetensors``/``.ckpt`` checkpoint (its diffusers configs must already be in the Hugging Face
    cache, since nothing is downloaded). ``device`` defaults to "cuda" when available, else "cpu";
    ``dtype`` ("float16", "bfloat16", "float32" or their short forms) to float16 on CUDA, float32
    elsewhere. The model loads on the first ``capabilities()`` or ``generate()`` and stays loaded
    until ``close()``.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        self._model = Path(model).expanduser() if model is not None else None
        self._device_arg = device
        self._dtype_arg = dtype
        if dtype is not None and _dtype_name(dtype) is None:
            msg = f"unknown dtype {dtype!r}: use float16, bfloat16 or float32"
            raise BackendError(msg)
        self._pipe: StableDiffusionPipeline | None = None
        self._device: str | None = None
        self._base_scheduler_config: dict[str, Any] | None = None
        self._schedulers: dict[tuple[str, str], Any] = {}
        self._capabilities: Capabilities | None = None
        self._lock = threading.RLock()

    @property
    def model_name(self) -> str:
        """The name written as "Model" in infotexts: the checkpoint's file or folder name."""
        if self._model is None:
            return TINY_MODEL_NAME
        return self._model.stem if self._model.suffix.lower() in SINGLE_FILE_SUFFIXES else self._model.name

    @property
    def device(self) -> str:
        """The torch device the model runs on (resolved when first read)."""
        if self._device is None:
            self._device = self._resolve_device()
        return self._device

    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    def capabilities(self) -> Capabilities:
        pipe = self._load()
        if self._capabilities is not None:
            return self._capabilities
        vae_scale = int(getattr(pipe, "vae_scale_factor", 8))
        unet_levels = len(pipe.unet.config.block_out_channels) - 1
        self._capabilities = Capabilities(
            name="diffusers",
            params=SUPPORTED_PARAMS,
            choices={
                "sampler_name": self.available_samplers(),
                "scheduler": self.available_schedules(),
            },
            size_multiple=vae_scale,
            min_side=vae_scale * 2**unet_levels,
            max_side=4096,
        )
        return self._capabilities

    def available_samplers(self) -> tuple[str, ...]:
        """WebUI sampler names that run with the installed diffusers and optional packages."""
        import diffusers

        return tuple(
            name
            for name, spec in SAMPLERS.items()
            if hasattr(diffusers, spec.scheduler_class)
            and not _missing(spec.requires)
            and self.combination_problem(name, "Automatic") is None
        )

    def available_schedules(self) -> tuple[str, ...]:
        """Schedule types that at least one available sampler implements."""
        samplers = self.available_samplers()
        return tuple(
            name
            for name, (_, requires) in SCHEDULES.items()
            if not _missing(requires) and any(self.combination_problem(s, name) is None for s in samplers)
        )

    def check_plan(self, plan: Plan) -> None:
        """Refuse sampler and schedule-type pairs this diffusers cannot run, before the first image."""
        pairs = {
            (str(c.params.get("sampler_name", DEFAULTS["sampler_name"])), str(c.params.get("scheduler", "Automatic")))
            for c in plan.cells
        }
        scheduler_field = plan.field_of("scheduler")
        field = scheduler_field if scheduler_field.startswith("axes") else plan.field_of("sampler_name")
        problems = []
        for sampler, schedule in sorted(pairs):
            reason = self.combination_problem(sampler, schedule)
            if reason:
                problems.append(Problem(field, f"{sampler} + {schedule}", reason))
        if problems:
            raise SpecError(problems)

    def combination_problem(self, sampler_name: str, scheduler: str) -> str | None:
        """Why this sampler cannot run with this schedule type here, or None when it can.

        Sampler and schedule type are validated one by one against ``capabilities().choices``; a
        few pairs (e.g. "Euler a" with "Karras", or "DDIM" with "Exponential") have no diffusers
        implementation, and ``generate`` rejects them with this message.
        """
        import diffusers

        spec = SAMPLERS.get(sampler_name)
        if spec is None:
            return f"unknown sampler {sampler_name!r}; available: {', '.join(SAMPLERS)}"
        if scheduler not in SCHEDULES:
            return f"unknown schedule type {scheduler!r}; available: {', '.join(SCHEDULES)}"
        cls = getattr(diffusers, spec.scheduler_class, None)
        if cls is None:
            return f"sampler {sampler_name!r} needs diffusers.{spec.scheduler_class}, missing in this diffusers"
        overrides, requires = SCHEDULES[scheduler]
        missing = _missing(spec.requires + requires)
        if missing:
            return f"sampler {sampler_name!r} with schedule type {scheduler!r} needs {', '.join(missing)} installed"
        accepted = inspect.signature(cls.__init__).parameters
        config = _scheduler_config(sampler_name, scheduler)
        unsupported = sorted(key for key in config if key not in accepted)
        if unsupported:
            return (
                f"sampler {sampler_name!r} does not support schedule type {scheduler!r} in diffusers "
                f"{diffusers.__version__} ({spec.scheduler_class} has no {', '.join(unsupported)})"
            )
        return _probe(sampler_name, scheduler)

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        stop: StopSignal | None = None,
    ) -> list[GeneratedImage]:
        """Generate the batch in one pipeline call.

        Nothing is generated when ``stop`` is already interrupted or skipping. A skip requested
        while sampling stops at the next step and ``[]`` is returned, the skip flag left set for the
        caller to consume; an interrupt lets the batch finish, so its images are kept.
        Parameters missing from the request take the WebUI's defaults (``DEFAULTS``).
        """
        if request.size == 0 or _stop_requested(stop):
            return []
        params = {**DEFAULTS, **{k: v for k, v in request.params.items() if v is not None}}
        with self._lock:
            pipe = self._load()
            scheduler = self._scheduler(str(params["sampler_name"]), str(params["scheduler"]))
            call = self._call_kwargs(pipe, request, params)
            pipe.scheduler = scheduler
            try:
                with _inference_context():
                    result = pipe(**call, callback_on_step_end=_step_callback(int(params["steps"]), on_step, stop))
            except _StoppedError:
                return []
            except BackendError:
                raise
            except Exception as exc:
                raise BackendError(f"diffusers generation failed: {type(exc).__name__}: {exc}") from exc
        return [
            GeneratedImage(
                image=image,
                infotext=build_infotext(prompt, negative, {**params, "seed": seed, "checkpoint": self.model_name}),
            )
            for image, prompt, negative, seed in zip(
                result.images, request.prompts, request.negative_prompts, request.seeds, strict=False
            )
        ]

    def close(self) -> None:
        with self._lock:
            if self._pipe is None:
                return
            self._pipe = None
            self._schedulers.clear()
            self._capabilities = None
            import gc

            gc.collect()
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _resolve_device(self) -> str:
        import torch

        if self._device_arg:
            return self._device_arg
        return "cuda" if torch.cuda.is_available() else "cpu"

    def _torch_dtype(self) -> torch.dtype:
        import torch

        name = _dtype_name(self._dtype_arg) if self._dtype_arg else None
        if name is None:
            name = "float16" if self.device.startswith("cuda") else "float32"
        return getattr(torch, name)

    def _load(self) -> StableDiffusionPipeline:
        with self._lock:
            if self._pipe is None:
                self._pipe = self._load_pipeline()
                self._base_scheduler_config = dict(self._pipe.scheduler.config)
                self._schedulers.clear()
            return self._pipe

    def _load_pipeline(self) -> StableDiffusionPipeline:
        try:
            import torch  # noqa: F401
            from diffusers import StableDiffusionPipeline
        except ImportError as exc:
            msg = f"the diffusers backend needs torch and diffusers installed ({exc})"
            raise BackendError(msg) from exc

        source = self._model if self._model is not None else ensure_tiny_model()
        options = {
            "torch_dtype": self._torch_dtype(),
            "local_files_only": True,
            "safety_checker": None,
            "requires_safety_checker": False,
        }
        if not source.exists():
            msg = f"model not found: {source} (give a diffusers folder or a .safetensors/.ckpt file)"
            raise BackendError(msg)
        try:
            with quiet_hf_output(), warnings.catch_warnings():
                # "torch_dtype" is what every diffusers version accepts; newer ones also take "dtype".
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                if source.is_dir():
                    if not (source / "model_index.json").is_file():
                        msg = f"{source} is not a diffusers model folder (no model_index.json)"
                        raise BackendError(msg)
                    pipe = StableDiffusionPipeline.from_pretrained(source, **options)
                elif source.suffix.lower() in SINGLE_FILE_SUFFIXES:
                    pipe = StableDiffusionPipeline.from_single_file(str(source), **options)
                else:
                    msg = f"unsupported model file {source.name}: expected a folder, .safetensors or .ckpt"
                    raise BackendError(msg)
                pipe = pipe.to(self.device)
        except BackendError:
            raise
        except Exception as exc:
            hint = (
                " (single-file checkpoints need their diffusers configs in the Hugging Face cache; "
                "or convert the checkpoint to a diffusers folder)"
                if source.is_file()
                else ""
            )
            msg = f"could not load model {source}: {type(exc).__name__}: {exc}{hint}"
            raise BackendError(msg) from exc
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _scheduler(self, sampler_name: str, schedule: str) -> Any:
        key = (sampler_name, schedule)
        cached = self._schedulers.get(key)
        if cached is not None:
            return cached
        problem = self.combination_problem(sampler_name, schedule)
        if problem is not None:
            raise BackendError(problem)
        import diffusers

        cls = getattr(diffusers, SAMPLERS[sampler_name].scheduler_class)
        with quiet_hf_output():
            scheduler = cls.from_config(self._base_scheduler_config, **_scheduler_config(sampler_name, schedule))
        self._schedulers[key] = scheduler
        return scheduler

    def _call_kwargs(
        self, pipe: StableDiffusionPipeline, request: GenerationRequest, params: dict[str, Any]
    ) -> dict[str, Any]:
        import torch

        width, height = int(params["width"]), int(params["height"])
        scale = int(getattr(pipe, "vae_scale_factor", 8))
        if width % scale or height % scale or width <= 0 or height <= 0:
            msg = f"width and height must be positive multiples of {scale}, got {width}x{height}"
            raise BackendError(msg)
        steps = int(params["steps"])
        if steps < 1:
            raise BackendError(f"steps must be at least 1, got {steps}")
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in request.seeds]
        call: dict[str, Any] = {
            "prompt": list(request.prompts),
            "negative_prompt": list(request.negative_prompts),
            "num_inference_steps": steps,
            "guidance_scale": float(params["cfg_scale"]),
            "width": width,
            "height": height,
            "generator": generators,
            "output_type": "pil",
        }
        if params.get("clip_skip") is not None:
            clip_skip = webui_clip_skip_to_diffusers(params["clip_skip"])
            layers = int(pipe.text_encoder.config.num_hidden_layers)
            if clip_skip is not None and clip_skip >= layers:
                msg = f"clip_skip {params['clip_skip']} is more than this model's {layers} text encoder layers"
                raise BackendError(msg)
            if clip_skip is not None:
                call["prompt_embeds"] = _encode_prompts(pipe, call.pop("prompt"), clip_skip, self.device)
                call["negative_prompt_embeds"] = _encode_prompts(
                    pipe, call.pop("negative_prompt"), clip_skip, self.device
                )
        strength = float(params.get("subseed_strength") or 0.0)
        if strength > 0:
            if params.get("subseed") is None:
                raise BackendError("subseed_strength is set but subseed is not")
            call["latents"] = self._variation_latents(
                pipe, generators, subseed=int(params["subseed"]), strength=strength, width=width, height=height
            )
        return call

    def _variation_latents(
        self,
        pipe: StableDiffusionPipeline,
        generators: list[torch.Generator],
        *,
        subseed: int,
        strength: float,
        width: int,
        height: int,
    ) -> torch.Tensor:
        """Initial noise blended towards the variation seed's noise, as the WebUI does.

        The noise is drawn from each image's own generator exactly as the pipeline would draw it, so
        the generators continue in the same state for the sampler's later noise.
        """
        import torch

        scale = int(getattr(pipe, "vae_scale_factor", 8))
        shape = (pipe.unet.config.in_channels, height // scale, width // scale)
        dtype = pipe.unet.dtype
        sub = torch.randn(
            (1, *shape),
            generator=torch.Generator(device=self.device).manual_seed(subseed),
            device=self.device,
            dtype=dtype,
        )[0]
        noises = []
        for generator in generators:
            noise = torch.randn((1, *shape), generator=generator, device=self.device, dtype=dtype)[0]
            noises.append(_slerp(strength, noise, sub))
        return torch.stack(noises)


def _encode_prompts(pipe: StableDiffusionPipeline, texts: list[str], clip_skip: int, device: str) -> torch.Tensor:
    """CLIP embeddings from ``clip_skip`` layers before the last, through the final layer norm.

    Done here rather than through the pipeline's ``clip_skip`` because the WebUI also applies clip
    skip to the negative prompt (diffusers does not), and because diffusers <= 0.42 reaches for
    ``text_encoder.text_model``, which transformers 5 no longer has.
    """
    import torch

    tokens = pipe.tokenizer(
        texts,
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    encoder = pipe.text_encoder
    with torch.inference_mode():
        hidden = encoder(tokens.input_ids.to(device), output_hidden_states=True).hidden_states[-(clip_skip + 1)]
        final_norm = getattr(encoder, "text_model", encoder).final_layer_norm
        return final_norm(hidden).to(dtype=encoder.dtype, device=device)


def _slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``modules.processing.slerp`` of the WebUI, on one image's (C, H, W) noise."""
    import torch

    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


def _dtype_name(dtype: str | None) -> str | None:
    aliases = {
        "float16": "float16", "fp16": "float16", "half": "float16",
        "bfloat16": "bfloat16", "bf16": "bfloat16",
        "float32": "float32", "fp32": "float32", "float": "float32",
    }  # fmt: skip
    return aliases.get(str(dtype).lower().replace("torch.", "")) if dtype is not None else None


def _stop_requested(stop: StopSignal | None) -> bool:
    return stop is not None and (stop.interrupted or stop.skip_requested)


def _skip_requested(stop: StopSignal | None) -> bool:
    """Mid-batch, only Skip aborts: an interrupt lets the batch finish (it is saved, then the run stops)."""
    return stop is not None and stop.skip_requested


def _inference_context() -> Any:
    import torch

    return torch.inference_mode()


def _step_callback(steps: int, on_step: StepCallback | None, stop: StopSignal | None) -> Any:
    """A ``callback_on_step_end`` reporting progress in sampling steps and honouring ``stop``.

    Second-order and multistep schedulers run more (or fewer) model calls than ``steps``; progress
    is scaled to ``steps`` so callers always see ``(1..steps, steps)``.
    """
    reported = 0

    def callback(pipe: Any, index: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        nonlocal reported
        if _skip_requested(stop):
            raise _StoppedError
        if on_step is not None:
            total_calls = max(int(getattr(pipe, "num_timesteps", steps) or steps), 1)
            done = min(steps, (index + 1) * steps // total_calls)
            if done > reported:
                reported = done
                on_step(done, steps)
        return kwargs

    return callback
