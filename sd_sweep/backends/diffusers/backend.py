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

import contextlib
import dataclasses
import io
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sd_sweep.backends.diffusers.catalog import (
    DEFAULTS,
    HIRES_DEFAULTS,
    LATENT_UPSCALERS,
    PIXEL_UPSCALERS,
    SAMPLERS,
    SCHEDULES,
    SUPPORTED_PARAMS,
    DiffusersCatalog,
    SamplerSpec,
    check_model_source,
    first_pass_key,
    hires_sampler,
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
    "hires_schedule",
    "hires_target",
    "webui_clip_skip_to_diffusers",
]


class _StoppedError(Exception):
    """Raised from the step callback to leave the pipeline at once, before the VAE decode."""


def webui_clip_skip_to_diffusers(clip_skip: Any) -> int | None:
    """WebUI counts the last CLIP layer as 1; diffusers counts the layers skipped (None for none)."""
    value = int(clip_skip)
    return value - 1 if value > 1 else None


class DiffusersBackend(Backend):
    """Generates with a local diffusers Stable Diffusion 1.x, 2.x or SDXL pipeline.

    ``model``: ``None`` for the cached tiny random model, a diffusers folder, or a single
    ``.safetensors``/``.ckpt`` checkpoint (its diffusers configs are read off its tensors, see
    ``loading``; nothing is downloaded). ``device`` defaults to "cuda" when available, else "cpu";
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
        reuse_first_passes: bool = True,
    ) -> None:
        self.reuse_first_passes = reuse_first_passes
        """False: every hires cell samples its own first pass (the plan groups none; for comparisons)."""
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
        self._img2img: Any = None
        self.first_passes = 0
        """First-pass images of hires cells sampled (a reused or kept first pass is not sampled again)."""
        self._first_pass: tuple[tuple[str, ...], Any] | None = None
        """The keys and latents of the last batch's first passes: kept while consecutive batches share them."""

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
        caps = self.catalog.capabilities()
        return caps if self.reuse_first_passes else dataclasses.replace(caps, first_pass_key=None)

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
        given = {k: v for k, v in request.params.items() if v is not None}
        hires = bool(given.get("enable_hr"))
        params = {**DEFAULTS, **(HIRES_DEFAULTS if hires else {}), **given}
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
                    if hires:
                        images = self._hires(pipe, request, params, call, on_step, stop)
                    else:
                        steps = int(params["steps"])
                        images = pipe(**call, callback_on_step_end=_step_callback(steps, on_step, stop)).images
            except _StoppedError:
                return []
            except BackendError:
                raise
            except Exception as exc:
                raise BackendError(f"diffusers generation failed: {type(exc).__name__}: {exc}") from exc
        written = {**params, "checkpoint": self.model_name}
        return [
            GeneratedImage(image=image, infotext=_infotext(prompt, negative, {**written, "seed": seed}))
            for image, prompt, negative, seed in zip(
                images, request.prompts, request.negative_prompts, request.seeds, strict=False
            )
        ]

    def _hires(
        self,
        pipe: Any,
        request: GenerationRequest,
        params: dict[str, Any],
        call: dict[str, Any],
        on_step: StepCallback | None,
        stop: StopSignal | None,
    ) -> list[Any]:
        """The WebUI's hires fix: the first pass's latents, upscaled, then an img2img pass over them."""
        latents = self._first_pass_latents(pipe, request, call, int(params["steps"]), on_step, stop)
        return self._second_pass(pipe, request, params, latents, on_step, stop)

    def _first_pass_latents(
        self,
        pipe: Any,
        request: GenerationRequest,
        call: dict[str, Any],
        steps: int,
        on_step: StepCallback | None,
        stop: StopSignal | None,
    ) -> torch.Tensor:
        """The first passes of a hires batch, as latents.

        A request reuses the last batch's first passes when their keys (``catalog.first_pass_key``,
        one per image, in order) are its own, else the ones the run kept (``request.first_pass``),
        else samples them and keeps them in both places. Every image's noise comes from its own
        seed, so a first pass is the same in any batch.
        """
        keys = self._first_pass_keys(request) if self.reuse_first_passes else None
        if keys is not None and self._first_pass is not None and self._first_pass[0] == keys:
            return self._first_pass[1]
        self._first_pass = None
        kept = request.first_pass if keys is not None else None
        data = kept.load() if kept is not None else None
        latents = _latents_from_bytes(data, self.device, pipe.unet.dtype) if data is not None else None
        if latents is None or latents.shape[0] != request.size:
            callback = _step_callback(steps, on_step, stop)
            latents = pipe(**{**call, "output_type": "latent"}, callback_on_step_end=callback).images
            self.first_passes += request.size
            if kept is not None:
                kept.save(_latents_to_bytes(latents))
        if keys is not None:
            self._first_pass = (keys, latents)
        return latents

    def _first_pass_keys(self, request: GenerationRequest) -> tuple[str, ...] | None:
        keys = tuple(
            first_pass_key(self.model_name, {**request.params, "prompt": p, "negative_prompt": n, "seed": s})
            for p, n, s in zip(request.prompts, request.negative_prompts, request.seeds, strict=True)
        )
        return None if None in keys else keys  # type: ignore[return-value]

    def _second_pass(
        self,
        pipe: Any,
        request: GenerationRequest,
        params: dict[str, Any],
        latents: torch.Tensor,
        on_step: StepCallback | None,
        stop: StopSignal | None,
    ) -> list[Any]:
        """Upscale ``latents`` and sample them again at the hires denoising strength, as the WebUI does.

        Each image's noise (and a pixel upscaler's encode) comes from a generator seeded anew with
        its seed, as the WebUI draws the hires pass's noise from the seed again: the image is the
        same whether its first pass was just sampled, reused or read back from the run folder.
        """
        import torch

        scale = int(getattr(pipe, "vae_scale_factor", 8))
        width, height, cut_x, cut_y = hires_target(int(params["width"]), int(params["height"]), params, scale)
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in request.seeds]
        upscaler = str(params["hr_upscaler"])
        if upscaler in LATENT_UPSCALERS:
            mode, antialias = LATENT_UPSCALERS[upscaler]
            size = (height // scale, width // scale)
            upscaled = torch.nn.functional.interpolate(latents, size=size, mode=mode, antialias=antialias)
        else:
            upscaled = self._pixel_upscale(pipe, latents, upscaler, (width // scale * scale, height // scale * scale))
            upscaled = _encode(pipe.vae, upscaled, generators)
        rows, cols = upscaled.shape[-2:]
        upscaled = upscaled[..., cut_y // 2 : rows - (cut_y + 1) // 2, cut_x // 2 : cols - (cut_x + 1) // 2]
        sampler, schedule = hires_sampler(params)
        img2img = self._img2img_pipe(pipe)
        img2img.scheduler = self._scheduler(sampler, schedule)
        prompts = [str(params["hr_prompt"]) if params.get("hr_prompt") else p for p in request.prompts]
        negatives = [
            str(params["hr_negative_prompt"]) if params.get("hr_negative_prompt") else n
            for n in request.negative_prompts
        ]
        self._apply_loras(pipe, prompts)
        conditioning = self._conditioning(
            pipe,
            dataclasses.replace(request, prompts=prompts, negative_prompts=negatives),
            int(params.get("clip_skip") or 1),
        )
        steps = int(params.get("hr_second_pass_steps") or params["steps"])
        total, strength = hires_schedule(steps, float(params["denoising_strength"]))
        cfg = params.get("hr_cfg")
        result = img2img(
            image=upscaled,
            strength=strength,
            num_inference_steps=total,
            guidance_scale=float(params["cfg_scale"] if cfg is None else cfg),
            generator=generators,
            output_type="pil",
            callback_on_step_end=_step_callback(steps, on_step, stop),
            **conditioning,
        )
        return list(result.images)

    def _pixel_upscale(self, pipe: Any, latents: torch.Tensor, upscaler: str, size: tuple[int, int]) -> torch.Tensor:
        """Decode ``latents`` to 8-bit pixels as the WebUI does (truncated), resize them with the
        upscaler's filter, and return them as a tensor in [-1, 1] for the VAE."""
        import numpy as np
        import torch
        from PIL import Image

        with _vae_precision(pipe.vae) as vae:
            decoded = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
        pixels = (255.0 * torch.clamp((decoded.float() + 1.0) / 2.0, 0.0, 1.0)).permute(0, 2, 3, 1).cpu().numpy()
        resample = getattr(Image.Resampling, PIXEL_UPSCALERS[upscaler])
        resized = [
            np.asarray(Image.fromarray(image.astype(np.uint8)).resize(size, resample=resample), dtype=np.float32)
            for image in pixels
        ]
        tensor = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2) / 255.0 * 2.0 - 1.0
        return tensor.to(self.device)

    def _img2img_pipe(self, pipe: Any) -> Any:
        """An img2img pipeline of the loaded pipeline's components (the VAE of this batch)."""
        if self._img2img is None:
            from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

            with quiet_hf_output(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self._family == SDXL:
                    self._img2img = StableDiffusionXLImg2ImgPipeline(**pipe.components)
                else:
                    self._img2img = StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False)
            self._img2img.set_progress_bar_config(disable=True)
        self._img2img.vae = pipe.vae
        return self._img2img

    def close(self) -> None:
        with self._lock:
            if self._pipe is None:
                return
            self._pipe = None
            self._img2img = None
            self._first_pass = None
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


def hires_target(width: int, height: int, params: dict[str, Any], multiple: int) -> tuple[int, int, int, int]:
    """``(width, height, cut_x, cut_y)`` of the hires pass, by the WebUI's rule.

    ``hr_resize_x``/``hr_resize_y`` of 0 scale by ``hr_scale``; one of them set keeps the aspect
    ratio; both set cover that size and cut the overhang (``cut_*``, in latent pixels) from the
    upscaled latent, as ``StableDiffusionProcessingTxt2Img`` does.
    """
    resize_x, resize_y = int(params.get("hr_resize_x") or 0), int(params.get("hr_resize_y") or 0)
    if resize_x == 0 and resize_y == 0:
        scale = float(params.get("hr_scale") or 1.0)
        return int(width * scale), int(height * scale), 0, 0
    if resize_x == 0:
        return resize_y * width // height, resize_y, 0, 0
    if resize_y == 0:
        return resize_x, resize_x * height // width, 0, 0
    if width / height < resize_x / resize_y:
        target_x, target_y = resize_x, resize_x * height // width
    else:
        target_x, target_y = resize_y * width // height, resize_y
    return target_x, target_y, (target_x - resize_x) // multiple, (target_y - resize_y) // multiple


def hires_schedule(steps: int, denoising: float) -> tuple[int, float]:
    """``(num_inference_steps, strength)`` for diffusers' img2img such that it samples ``steps``
    steps: the last ``steps`` of a schedule of ``int(steps / denoising)``, as the WebUI's hires pass
    (which passes its steps to the sampler, so the "fix steps" rule of img2img applies).

    diffusers alone would sample ``int(num_inference_steps * strength)`` steps.
    """
    total = max(steps, int(steps / min(denoising, 0.999)))
    return total, min(1.0, (steps + 0.5) / total)


def _infotext(prompt: str, negative: str, params: dict[str, Any]) -> str:
    """The infotext of one image, with the hires fields as the WebUI writes them."""
    if not params.get("enable_hr"):
        return build_infotext(prompt, negative, params)
    written = dict(params)
    extra: dict[str, Any] = {}
    if params.get("hr_resize_x") or params.get("hr_resize_y"):
        written.pop("hr_scale", None)
        extra["Hires resize"] = f"{int(params.get('hr_resize_x') or 0)}x{int(params.get('hr_resize_y') or 0)}"
    if not params.get("hr_second_pass_steps"):
        written.pop("hr_second_pass_steps", None)
    sampler, schedule = hires_sampler(params)
    if sampler != params["sampler_name"]:
        extra["Hires sampler"] = sampler
    if schedule != params["scheduler"]:
        extra["Hires schedule type"] = schedule
    if params.get("hr_cfg") is not None and float(params["hr_cfg"]) != float(params["cfg_scale"]):
        extra["Hires CFG Scale"] = params["hr_cfg"]
    if params.get("hr_prompt") and params["hr_prompt"] != prompt:
        extra["Hires prompt"] = params["hr_prompt"]
    if params.get("hr_negative_prompt") and params["hr_negative_prompt"] != negative:
        extra["Hires negative prompt"] = params["hr_negative_prompt"]
    return build_infotext(prompt, negative, written, extra)


def _latents_to_bytes(latents: torch.Tensor) -> bytes:
    """Latents as a ``.npy`` file in float32 (exact for float16 and bfloat16 latents too)."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, latents.detach().float().cpu().numpy(), allow_pickle=False)
    return buffer.getvalue()


def _latents_from_bytes(data: bytes, device: str, dtype: torch.dtype) -> torch.Tensor:
    import numpy as np
    import torch

    array = np.load(io.BytesIO(data), allow_pickle=False)
    return torch.from_numpy(array).to(device=device, dtype=dtype)


@contextlib.contextmanager
def _vae_precision(vae: Any) -> Iterator[Any]:
    """The VAE in float32 while it is used, where its config asks for that in float16 (SDXL's)."""
    import torch

    upcast = vae.dtype == torch.float16 and bool(getattr(vae.config, "force_upcast", False))
    if upcast:
        vae.to(dtype=torch.float32)
    try:
        yield vae
    finally:
        if upcast:
            vae.to(dtype=torch.float16)


def _encode(vae: Any, pixels: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Each image encoded on its own, sampled from its own generator (as diffusers' img2img does),
    so the generator goes on to the pass's noise in the state img2img would leave it."""
    import torch

    with _vae_precision(vae) as model:
        latents = [
            model.encode(pixels[i : i + 1].to(model.dtype)).latent_dist.sample(generator=generator)
            for i, generator in enumerate(generators)
        ]
    return (torch.cat(latents) * vae.config.scaling_factor).to(pixels.device)


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
