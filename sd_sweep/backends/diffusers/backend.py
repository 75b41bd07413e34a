"""The embedded backend: a diffusers ``StableDiffusionPipeline`` in this process.

Without a model it uses the locally built tiny random model (``tiny_model.ensure_tiny_model``), so
sweeps, tests and demos run anywhere without downloads. torch and diffusers are imported only when
the model loads, so importing this module costs nothing.

What the backend supports (parameters, samplers, schedule types, size rules, the check of sampler
and schedule-type pairs) is told by ``catalog.DiffusersCatalog`` without loading the model, and
without torch (a dry run); generating needs torch, diffusers and transformers.

Every image gets its own ``torch.Generator`` seeded with its seed, for the initial noise and for the
noise ancestral/SDE samplers add at each step, so an image is the same (within float tolerance)
whether it was generated alone or in a batch with other prompts and seeds.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.backends.diffusers.catalog import (
    DEFAULTS,
    SAMPLERS,
    SCHEDULES,
    SUPPORTED_PARAMS,
    DiffusersCatalog,
    SamplerSpec,
    check_model_source,
    model_name,
    runtime_problem,
    scheduler_config,
)
from sd_sweep.backends.diffusers.conditioning import EncoderSpec, chunk_count, encode_prompts
from sd_sweep.backends.diffusers.families import SDXL, TITLES, detect_family
from sd_sweep.backends.diffusers.loading import load_lora, load_vae, single_file_options
from sd_sweep.backends.diffusers.prompt_syntax import extract_networks
from sd_sweep.backends.diffusers.tiny_model import ensure_tiny_model, quiet_hf_output
from sd_sweep.core.errors import BackendError
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

__all__ = [
    "DEFAULTS",
    "SAMPLERS",
    "SCHEDULES",
    "SUPPORTED_PARAMS",
    "DiffusersBackend",
    "SamplerSpec",
    "webui_clip_skip_to_diffusers",
]


class _StoppedError(Exception):
    """Raised from the step callback to leave the pipeline at once, before the VAE decode."""


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
    elsewhere. The model loads on the first ``generate()`` and stays loaded until ``close()``.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        models_dir: str | Path | None = None,
        vae_dir: str | Path | None = None,
        lora_dir: str | Path | None = None,
    ) -> None:
        self.catalog = DiffusersCatalog(model, models_dir=models_dir, vae_dir=vae_dir, lora_dir=lora_dir)
        self._model = self.catalog.model
        self._loaded_source: Path | None = None
        self._family = ""
        self._own_vae: Any = None
        self._vae_name: str | None = None
        self._adapters: dict[str, str] = {}
        self._active_loras: tuple[tuple[str, float], ...] = ()
        self.loads = 0
        """How many times a checkpoint was loaded (a checkpoint axis loads each checkpoint once)."""
        self._device_arg = device
        self._dtype_arg = dtype
        if dtype is not None and _dtype_name(dtype) is None:
            msg = f"unknown dtype {dtype!r}: use float16, bfloat16 or float32"
            raise BackendError(msg)
        self._pipe: StableDiffusionPipeline | None = None
        self._device: str | None = None
        self._base_scheduler_config: dict[str, Any] | None = None
        self._schedulers: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()

    @property
    def model_name(self) -> str:
        """The name written as "Model" in infotexts: the checkpoint's file or folder name."""
        if self._loaded_source is not None:
            return model_name(self._loaded_source)
        return self.catalog.model_name

    @property
    def family(self) -> str:
        """ "sd1", "sd2" or "sdxl" once a model is loaded, else ""."""
        return self._family

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
        """Read from the model's config files; the model itself loads on the first ``generate``."""
        return self.catalog.capabilities()

    def available_samplers(self) -> tuple[str, ...]:
        """WebUI sampler names that run with the installed diffusers and optional packages."""
        return self.catalog.available_samplers()

    def available_schedules(self) -> tuple[str, ...]:
        """Schedule types that at least one available sampler implements."""
        return self.catalog.available_schedules()

    def check_plan(self, plan: Plan) -> None:
        """Refuse a plan this process cannot generate: torch or diffusers missing, or sampler and
        schedule-type pairs this diffusers cannot run, before the first image."""
        problem = runtime_problem()
        if problem is not None:
            raise BackendError(problem)
        self.catalog.check_plan(plan)

    def combination_problem(self, sampler_name: str, scheduler: str) -> str | None:
        """Why this sampler cannot run with this schedule type here, or None when it can.

        Sampler and schedule type are validated one by one against ``capabilities().choices``; a
        few pairs (e.g. "Euler a" with "Karras", or "DDIM" with "Exponential") have no diffusers
        implementation, and ``generate`` rejects them with this message.
        """
        return self.catalog.combination_problem(sampler_name, scheduler)

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
            source = self._source_for(params)
            pipe = self._load(source)
            self._apply_vae(pipe, params.get("vae"))
            self._apply_loras(pipe, request.prompts)
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
            self._own_vae = None
            self._vae_name = None
            self._adapters.clear()
            self._active_loras = ()
            self._loaded_source = None
            self._family = ""
            self._schedulers.clear()
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

    def _source_for(self, params: dict[str, Any]) -> Path:
        """The checkpoint of a batch: its ``checkpoint`` parameter, else ``model``, else the tiny model."""
        name = params.get("checkpoint")
        if name is not None and str(name) != "":
            if self.catalog.folders.models_dir is None:
                msg = f"checkpoint {name!r} was asked for but no --models folder was given"
                raise BackendError(msg)
            return self.catalog.folders.checkpoint_path(str(name))
        if self._loaded_source is not None and self._model is None:
            return self._loaded_source
        return self._model if self._model is not None else ensure_tiny_model()

    def _load(self, source: Path | None = None) -> StableDiffusionPipeline:
        """The pipeline of ``source``; another checkpoint is released first, so one model is on the device."""
        with self._lock:
            source = source if source is not None else self._source_for({})
            if self._pipe is not None and self._loaded_source != source:
                self.close()
            if self._pipe is None:
                self._pipe = self._load_pipeline(source)
                self._loaded_source = source
                self._own_vae = self._pipe.vae
                self._base_scheduler_config = dict(self._pipe.scheduler.config)
                self._schedulers.clear()
                self.loads += 1
            return self._pipe

    def _apply_vae(self, pipe: Any, name: Any) -> None:
        """Swap in the VAE of ``name`` ("Automatic"/"None"/missing: the checkpoint's own)."""
        wanted = None if name is None else str(name)
        path = self.catalog.folders.vae_path(wanted) if wanted is not None else None
        key = None if path is None else wanted
        if key == self._vae_name:
            return
        if path is None:
            pipe.vae = self._own_vae
        else:
            pipe.vae = load_vae(path, self._family, dtype=self._torch_dtype(), device=self.device)
        self._vae_name = key

    def _apply_loras(self, pipe: Any, prompts: list[str]) -> None:
        """Activate the LoRAs of the batch's tags at their weights (the first prompt's, as the WebUI does;
        the planner never batches prompts with different tags)."""
        _, tags = _split_networks(prompts[0] if prompts else "")
        weights: dict[str, float] = {}
        for tag in tags:
            if tag.network not in ("lora", "lyco"):
                msg = f"the diffusers backend applies only lora and lyco tags, not {tag.text}"
                raise BackendError(msg)
            weights[tag.name] = weights.get(tag.name, 0.0) + tag.weight
        wanted = tuple(sorted(weights.items()))
        if wanted == self._active_loras:
            return
        for name in weights:
            if name not in self._adapters:
                self._adapters[name] = load_lora(pipe, self.catalog.folders.lora_path(name), len(self._adapters))
        if wanted:
            pipe.enable_lora()
            pipe.set_adapters([self._adapters[n] for n, _ in wanted], adapter_weights=[w for _, w in wanted])
        elif self._adapters:
            pipe.disable_lora()
        self._active_loras = wanted

    def _load_pipeline(self, source: Path) -> StableDiffusionPipeline:
        problem = runtime_problem()
        if problem is not None:
            raise BackendError(problem)
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        check_model_source(source)
        family = detect_family(source)
        pipeline_class: Any = StableDiffusionXLPipeline if family == SDXL else StableDiffusionPipeline
        options = {
            "torch_dtype": self._torch_dtype(),
            "local_files_only": True,
        }
        if family != SDXL:
            options.update(safety_checker=None, requires_safety_checker=False)
        if source.is_file():
            options.update(single_file_options(source, family))
        try:
            with quiet_hf_output(), warnings.catch_warnings():
                # "torch_dtype" is what every diffusers version accepts; newer ones also take "dtype".
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                if source.is_dir():
                    pipe = pipeline_class.from_pretrained(source, **options)
                else:
                    pipe = pipeline_class.from_single_file(str(source), **options)
                pipe = pipe.to(self.device)
        except BackendError:
            raise
        except Exception as exc:
            title = TITLES.get(family, family)
            msg = f"could not load {title} model {source}: {type(exc).__name__}: {exc}"
            raise BackendError(msg) from exc
        pipe.set_progress_bar_config(disable=True)
        self._family = family
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
            scheduler = cls.from_config(self._base_scheduler_config, **scheduler_config(sampler_name, schedule))
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
            "num_inference_steps": steps,
            "guidance_scale": float(params["cfg_scale"]),
            "width": width,
            "height": height,
            "generator": generators,
            "output_type": "pil",
        }
        clip_skip = int(params.get("clip_skip") or 1)
        encoders = [pipe.text_encoder, getattr(pipe, "text_encoder_2", None)]
        layers = min(int(e.config.num_hidden_layers) for e in encoders if e is not None)
        if clip_skip - 1 >= layers:
            msg = f"clip_skip {params['clip_skip']} is more than this model's {layers} text encoder layers"
            raise BackendError(msg)
        call.update(self._conditioning(pipe, request, clip_skip))
        strength = float(params.get("subseed_strength") or 0.0)
        if strength > 0:
            if params.get("subseed") is None:
                raise BackendError("subseed_strength is set but subseed is not")
            call["latents"] = self._variation_latents(
                pipe, generators, subseed=int(params["subseed"]), strength=strength, width=width, height=height
            )
        return call

    def _conditioning(self, pipe: Any, request: GenerationRequest, clip_skip: int) -> dict[str, Any]:
        """Prompt and negative prompt embeddings by the WebUI's rules (``conditioning``), of equal length."""
        import torch

        specs = self._encoder_specs(pipe)
        prompts = [_split_networks(p)[0] for p in request.prompts]
        negatives = [_split_networks(p)[0] for p in request.negative_prompts]
        count = max(chunk_count(specs[0].tokenizer, prompts), chunk_count(specs[0].tokenizer, negatives))
        dtype = pipe.unet.dtype
        with torch.inference_mode():
            cond, pooled = encode_prompts(specs, prompts, clip_skip, self.device, dtype, chunks=count)
            if self._family == SDXL and all(n == "" for n in negatives):
                # The WebUI (as diffusers) gives SDXL zeros for an empty negative prompt.
                uncond, uncond_pooled = torch.zeros_like(cond), torch.zeros_like(pooled)
            else:
                uncond, uncond_pooled = encode_prompts(specs, negatives, clip_skip, self.device, dtype, chunks=count)
        call = {"prompt_embeds": cond, "negative_prompt_embeds": uncond}
        if self._family == SDXL:
            call.update(pooled_prompt_embeds=pooled, negative_pooled_prompt_embeds=uncond_pooled)
        return call

    def _encoder_specs(self, pipe: Any) -> list[EncoderSpec]:
        if self._family == SDXL:
            return [
                EncoderSpec(pipe.tokenizer, pipe.text_encoder, layer=-2),
                EncoderSpec(pipe.tokenizer_2, pipe.text_encoder_2, layer=-2, pooled=True),
            ]
        return [EncoderSpec(pipe.tokenizer, pipe.text_encoder)]

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


def _split_networks(prompt: str) -> tuple[str, list[Any]]:
    try:
        return extract_networks(prompt)
    except ValueError as exc:
        raise BackendError(str(exc)) from None


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
