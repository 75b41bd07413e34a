# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/processing.py: the processing classes, fix_seed, create_infotext, process_images, Processed.

Generation runs on the embedded diffusers backend's tiny model (``sd_sweep.backends.diffusers.backend``),
so prompts, seeds and batching are real; img2img blends the init image into that result by the
denoising strength. Every ``process_images`` call is recorded in ``calls`` for the tests, and
``before_batch_hook(p, n)`` lets a test press Interrupt/Skip while a batch runs.
"""

from __future__ import annotations

import json
import random
import re

from modules import images, sd_models, sd_samplers, sd_schedulers, sd_vae, shared
from modules.shared import opts, state

calls = []
first_passes = []
"""(prompt, seed) of every first pass sampled (a plain image, or a hires cell's first pass)."""
before_batch_hook = None
_backend = None


def get_backend():
    global _backend
    if _backend is None:
        from sd_sweep.backends.diffusers.backend import DiffusersBackend

        _backend = DiffusersBackend(None, device="cpu")
    return _backend


class StableDiffusionProcessing:  # mirrors modules/processing.py: StableDiffusionProcessing (a dataclass there)
    _defaults = dict(
        prompt="",
        styles=None,
        seed=-1,
        subseed=-1,
        subseed_strength=0,
        seed_resize_from_h=-1,
        seed_resize_from_w=-1,
        seed_enable_extras=True,
        sampler_name=None,
        scheduler=None,
        batch_size=1,
        n_iter=1,
        steps=50,
        cfg_scale=7.0,
        width=512,
        height=512,
        restore_faces=None,
        tiling=None,
        do_not_save_samples=False,
        do_not_save_grid=False,
        extra_generation_params=None,
        negative_prompt="",
        eta=None,
        denoising_strength=None,
        override_settings=None,
        override_settings_restore_afterwards=True,
        outpath_samples=None,
        outpath_grids=None,
        disable_extra_networks=False,
        sd_model=None,
    )

    def __init__(self, **kwargs):
        for key, value in {**self._defaults, **kwargs}.items():
            if key == "sd_model":
                continue
            setattr(self, key, value)
        self.styles = list(self.styles or [])
        self.extra_generation_params = dict(self.extra_generation_params or {})
        self.override_settings = dict(self.override_settings or {})
        self.comments = {}
        self.scripts = None
        self.script_args = {}  # mirrors __post_init__: script_args defaults to {}
        self.is_api = False
        self.user = None
        self.all_prompts = self.all_negative_prompts = self.all_seeds = self.all_subseeds = None
        self.sd_model_name = self.sd_model_hash = self.sd_vae_name = self.sd_vae_hash = None
        self.iteration = 0
        self.token_merging_ratio = 0
        self.token_merging_ratio_hr = 0
        self.s_churn = self.s_tmin = self.s_tmax = self.s_noise = self.s_min_uncond = None
        self.ddim_discretize = None
        self.sampler_noise_scheduler_override = None
        self.is_using_inpainting_conditioning = False
        self.closed = False

    @property
    def sd_model(self):  # mirrors modules/processing.py: StableDiffusionProcessing.sd_model
        return shared.sd_model

    @sd_model.setter
    def sd_model(self, value):
        pass

    def save_samples(self):  # mirrors modules/processing.py: StableDiffusionProcessing.save_samples
        return (
            opts.samples_save
            and not self.do_not_save_samples
            and (opts.save_incomplete_images or (not state.interrupted and not state.skipped))
        )

    def close(self):  # mirrors modules/processing.py: StableDiffusionProcessing.close
        self.closed = True


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):  # mirrors modules/processing.py
    _defaults = dict(
        StableDiffusionProcessing._defaults,
        enable_hr=False,
        denoising_strength=0.75,
        hr_scale=2.0,
        hr_upscaler=None,
        hr_second_pass_steps=0,
        hr_resize_x=0,
        hr_resize_y=0,
        hr_checkpoint_name=None,
        hr_sampler_name=None,
        hr_scheduler=None,
        hr_prompt="",
        hr_negative_prompt="",
        firstpass_image=None,
    )


class StableDiffusionProcessingTxt2ImgForge(StableDiffusionProcessingTxt2Img):
    """mirrors Forge's modules/processing.py: StableDiffusionProcessingTxt2Img, whose hires pass has a CFG scale
    of its own; its dataclass fields with defaults are attributes of the class there too. A test acts as Forge
    by putting this class in the place of StableDiffusionProcessingTxt2Img."""

    hr_cfg = 1.0
    hr_distilled_cfg = 3.5
    _defaults = dict(
        StableDiffusionProcessingTxt2Img._defaults, hr_additional_modules=None, hr_cfg=1.0, hr_distilled_cfg=3.5
    )


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):  # mirrors modules/processing.py
    _defaults = dict(
        StableDiffusionProcessing._defaults,
        init_images=None,
        resize_mode=0,
        denoising_strength=0.75,
        image_cfg_scale=None,
        mask=None,
        mask_blur=4,
        inpainting_fill=0,
        inpaint_full_res=True,
        inpaint_full_res_padding=0,
        inpainting_mask_invert=0,
        initial_noise_multiplier=None,
    )


class Processed:  # mirrors modules/processing.py: Processed
    def __init__(
        self,
        p,
        images_list,
        seed=-1,
        info="",
        subseed=None,
        all_prompts=None,
        all_negative_prompts=None,
        all_seeds=None,
        all_subseeds=None,
        index_of_first_image=0,
        infotexts=None,
        comments="",
    ):
        self.images = images_list
        self.prompt = p.prompt if not isinstance(p.prompt, list) else p.prompt[0]
        self.negative_prompt = p.negative_prompt if not isinstance(p.negative_prompt, list) else p.negative_prompt[0]
        self.seed = int(seed if not isinstance(seed, list) else seed[0]) if seed is not None else -1
        self.subseed = subseed
        self.info = info
        self.comments = "".join(f"{c}\n" for c in p.comments)  # the comments argument is not used there
        self.width, self.height = p.width, p.height
        self.sampler_name = p.sampler_name
        self.cfg_scale = p.cfg_scale
        self.steps = p.steps
        self.batch_size = p.batch_size
        self.sd_model_name = p.sd_model_name
        self.sd_model_hash = p.sd_model_hash
        self.extra_generation_params = p.extra_generation_params
        self.index_of_first_image = index_of_first_image
        self.styles = p.styles
        self.job_timestamp = state.job_timestamp
        self.clip_skip = opts.CLIP_stop_at_last_layers
        self.all_prompts = all_prompts or p.all_prompts or [self.prompt]
        self.all_negative_prompts = all_negative_prompts or p.all_negative_prompts or [self.negative_prompt]
        self.all_seeds = all_seeds or p.all_seeds or [self.seed]
        self.all_subseeds = all_subseeds or p.all_subseeds or [self.subseed]
        self.infotexts = infotexts or [info] * len(images_list)

    def js(self):  # mirrors modules/processing.py: Processed.js
        obj = {
            "prompt": self.all_prompts[0],
            "all_prompts": self.all_prompts,
            "seed": self.seed,
            "all_seeds": self.all_seeds,
            "infotexts": self.infotexts,
            "index_of_first_image": self.index_of_first_image,
            "job_timestamp": self.job_timestamp,
        }
        return json.dumps(obj, default=lambda o: None)


def get_fixed_seed(seed):  # mirrors modules/processing.py: get_fixed_seed
    if seed == "" or seed is None:
        seed = -1
    elif isinstance(seed, str):
        try:
            seed = int(seed)
        except Exception:
            seed = -1
    if seed == -1:
        return int(random.randrange(4294967294))
    return seed


def fix_seed(p):  # mirrors modules/processing.py: fix_seed
    p.seed = get_fixed_seed(p.seed)
    p.subseed = get_fixed_seed(p.subseed)


def _quote(text):  # mirrors modules/infotext_utils.py: quote
    text = str(text)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def create_infotext(
    p,
    all_prompts,
    all_seeds,
    all_subseeds,
    comments=None,
    iteration=0,
    position_in_batch=0,
    use_main_prompt=False,
    index=None,
    all_negative_prompts=None,
):  # mirrors modules/processing.py
    if index is None:
        index = position_in_batch + iteration * p.batch_size
    if all_negative_prompts is None:
        all_negative_prompts = p.all_negative_prompts
    clip_skip = int(opts.CLIP_stop_at_last_layers)
    info = sd_models.loaded
    params = {
        "Steps": p.steps,
        "Sampler": p.sampler_name,
        "Schedule type": p.scheduler if p.scheduler not in (None, "Automatic") else None,
        "CFG scale": p.cfg_scale,
        "Image CFG scale": getattr(p, "image_cfg_scale", None),
        "Seed": p.all_seeds[0] if use_main_prompt else all_seeds[index],
        "Face restoration": opts.face_restoration_model if p.restore_faces else None,
        "Size": f"{p.width}x{p.height}",
        "Model hash": info.shorthash if info else None,
        "Model": info.model_name if info else None,
        "VAE": sd_vae.get_loaded_vae_name(),
        "Variation seed": None if p.subseed_strength == 0 else all_subseeds[index],
        "Variation seed strength": None if p.subseed_strength == 0 else p.subseed_strength,
        "Denoising strength": p.denoising_strength
        if (getattr(p, "init_images", None) or getattr(p, "enable_hr", False))
        else None,
        "Clip skip": None if clip_skip <= 1 else clip_skip,
        "Tiling": "True" if p.tiling else None,
        **p.extra_generation_params,
        "Version": "stub",
    }
    prompt_text, negative_prompt = all_prompts[index], all_negative_prompts[index]
    for key, value in params.items():  # mirrors create_infotext: callables of extra_generation_params
        if callable(value):
            params[key] = value(p=p, index=index, prompt_text=prompt_text, negative_prompt=negative_prompt)
    line = ", ".join(k if k == v else f"{k}: {_quote(v)}" for k, v in params.items() if v is not None)
    prompt = p.all_prompts[0] if use_main_prompt else all_prompts[index]
    negative = all_negative_prompts[index]
    negative_text = f"\nNegative prompt: {negative}" if negative else ""
    return f"{prompt}{negative_text}\n{line}".strip()


def process_images(p):  # mirrors modules/processing.py: process_images
    calls.append(p)
    if p.scripts is not None:
        p.scripts.before_process(p)
    stored_opts = {
        k: opts.data[k] if k in opts.data else opts.get_default(k) for k in p.override_settings if k in opts.data
    }
    try:
        if sd_models.checkpoint_aliases.get(p.override_settings.get("sd_model_checkpoint")) is None:
            p.override_settings.pop("sd_model_checkpoint", None)
            sd_models.reload_model_weights()
        for k, v in p.override_settings.items():
            opts.set(k, v, is_api=True, run_callbacks=False)
            if k == "sd_model_checkpoint":
                sd_models.reload_model_weights()
            if k == "sd_vae":
                sd_vae.reload_vae_weights()
        sd_samplers.fix_p_invalid_sampler_and_scheduler(p)
        res = process_images_inner(p)
    finally:
        if p.override_settings_restore_afterwards:
            for k, v in stored_opts.items():
                setattr(opts, k, v)
                if k == "sd_vae":
                    sd_vae.reload_vae_weights()
    return res


def _listify(value, n):
    return list(value) if isinstance(value, list) else [value] * n


def process_images_inner(p):  # mirrors modules/processing.py: process_images_inner
    if isinstance(p.prompt, list):
        assert len(p.prompt) > 0
    seed = get_fixed_seed(p.seed)  # p.seed itself is left as given
    subseed = get_fixed_seed(p.subseed)
    n = p.batch_size * p.n_iter
    if isinstance(p.prompt, list):
        n = len(p.prompt)
    elif isinstance(p.negative_prompt, list):
        n = len(p.negative_prompt)
    prompts = _listify(p.prompt, n)
    negatives = _listify(p.negative_prompt, n)
    if len(prompts) != len(negatives):
        raise RuntimeError(
            f"Received a different number of prompts ({len(prompts)}) and negative prompts ({len(negatives)})"
        )
    p.all_prompts = [shared.prompt_styles.apply_styles_to_prompt(x, p.styles) for x in prompts]
    p.all_negative_prompts = [shared.prompt_styles.apply_negative_styles_to_prompt(x, p.styles) for x in negatives]
    if isinstance(seed, list):
        p.all_seeds = seed
    else:
        p.all_seeds = [int(seed) + (i if p.subseed_strength == 0 else 0) for i in range(len(p.all_prompts))]
    p.all_subseeds = subseed if isinstance(subseed, list) else [int(subseed) + i for i in range(len(p.all_prompts))]
    info = sd_models.loaded
    p.sd_model_name = info.model_name if info else None
    p.sd_model_hash = info.shorthash if info else None
    if state.job_count == -1:
        state.job_count = p.n_iter
    if getattr(p, "enable_hr", False) and not state.processing_has_refined_job_count:
        # mirrors StableDiffusionProcessingTxt2Img.init (processing.py 1290-1299): hires is two jobs
        hires = int(p.hr_second_pass_steps or p.steps)
        shared.total_tqdm.updateTotal((p.steps + hires) * state.job_count)
        state.job_count = state.job_count * 2
        state.processing_has_refined_job_count = True
    output_images, infotexts = [], []
    for n_batch in range(p.n_iter):
        p.iteration = n_batch
        if state.skipped:
            state.skipped = False
        if state.interrupted or state.stopping_generation:
            break
        sl = slice(n_batch * p.batch_size, (n_batch + 1) * p.batch_size)
        batch_prompts, batch_negatives, batch_seeds = p.all_prompts[sl], p.all_negative_prompts[sl], p.all_seeds[sl]
        if not batch_prompts:
            break
        if before_batch_hook is not None:
            before_batch_hook(p, n_batch)
        generated = _generate(p, batch_prompts, batch_negatives, batch_seeds, sl.start)
        for i, image in enumerate(generated):
            index = n_batch * p.batch_size + i
            text = create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds, index=index)
            if p.save_samples():
                images.save_image(
                    image,
                    p.outpath_samples,
                    "",
                    p.all_seeds[index],
                    p.all_prompts[index],
                    opts.samples_format,
                    info=text,
                    p=p,
                )
            if opts.enable_pnginfo:
                image.info["parameters"] = text
            output_images.append(image)
            infotexts.append(text)
        state.nextjob()
    index_of_first_image = 0
    unwanted = opts.grid_only_if_multiple and len(output_images) < 2
    if (opts.return_grid or opts.grid_save) and not p.do_not_save_grid and not unwanted and output_images:
        grid = images.image_grid(output_images, p.batch_size)
        if opts.return_grid:
            text = create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds, use_main_prompt=True)
            infotexts.insert(0, text)
            output_images.insert(0, grid)
            index_of_first_image = 1
        if opts.grid_save:
            images.save_image(
                grid,
                p.outpath_grids,
                "grid",
                p.all_seeds[0],
                p.all_prompts[0],
                opts.grid_format,
                info=infotexts[0],
                grid=True,
                p=p,
            )
    return Processed(
        p,
        output_images,
        p.all_seeds[0],
        infotexts[0] if infotexts else "",
        index_of_first_image=index_of_first_image,
        infotexts=infotexts,
    )


RE_EXTRA_NET = re.compile(r"<(\w+):([^>]+)>")
"""modules/extra_networks.py ``re_extra_net``: the WebUI takes these tags out before sampling."""


def _without_extra_networks(prompt):
    return RE_EXTRA_NET.sub("", prompt)


def _generate(p, prompts, negatives, seeds, start=0):
    from sd_sweep.core.ports import GenerationRequest

    params = {
        "steps": int(p.steps),
        "cfg_scale": float(p.cfg_scale),
        "sampler_name": p.sampler_name,
        "scheduler": p.scheduler or "Automatic",
        "width": int(p.width),
        "height": int(p.height),
    }
    clip_skip = int(opts.CLIP_stop_at_last_layers)
    if clip_skip > 1:
        params["clip_skip"] = clip_skip
    request = GenerationRequest(
        params=params,
        prompts=[_without_extra_networks(x) for x in prompts],
        negative_prompts=[_without_extra_networks(x) for x in negatives],
        seeds=[int(s) for s in seeds],
        cell_ids=[str(i) for i in range(len(prompts))],
    )
    firstpass = getattr(p, "firstpass_image", None)
    if firstpass is not None and getattr(p, "enable_hr", False):
        # mirrors StableDiffusionProcessingTxt2Img.sample (processing.py 1310-1318, pixel upscaler): the
        # first pass is skipped and the given image goes through x / 255 * 2 - 1, then back in sample_hr_pass
        # (1405-1410) as 255 * clamp((x + 1) / 2), truncated to uint8
        import numpy as np
        from PIL import Image

        values = np.asarray(firstpass).astype(np.float32) / 255.0 * 2.0 - 1.0
        low = np.clip((values + 1.0) / 2.0, 0.0, 1.0)
        out = [Image.fromarray((255.0 * low).astype(np.uint8))]
    else:
        first_passes.extend(zip(prompts, seeds))
        out = [g.image for g in get_backend().generate(request)]
        _count_steps(_img2img_steps(p) if getattr(p, "init_images", None) else int(p.steps))
    if getattr(p, "enable_hr", False):
        out = _hires_pass(p, request, out, start)
    init = getattr(p, "init_images", None)
    if init:
        from PIL import Image

        base = init[0].convert("RGB").resize((int(p.width), int(p.height)))
        strength = float(p.denoising_strength if p.denoising_strength is not None else 0.75)
        out = [Image.blend(base, img.convert("RGB"), strength) for img in out]
    return out


def _img2img_steps(p):
    """mirrors sd_samplers_common.setup_img2img_steps: img2img samples t_enc + 1 of the steps."""
    if opts.data.get("img2img_fix_steps"):
        return int(p.steps)
    strength = float(p.denoising_strength if p.denoising_strength is not None else 0.75)
    return int(min(strength, 0.999) * int(p.steps)) + 1


def _count_steps(steps):
    """mirrors Sampler.launch_sampling and callback_state (sd_samplers_common.py 255-270): one count of the
    console's total progress per sampler step."""
    state.sampling_steps = steps
    for step in range(steps):
        state.sampling_step = step
        shared.total_tqdm.update()


def _target_size(p):
    """mirrors StableDiffusionProcessingTxt2Img.calculate_target_resolution (processing.py 1213-1252): hr_scale,
    or hr_resize_x/hr_resize_y (one of them keeps the aspect; both crop the upscaled image to them)."""
    resize_x, resize_y = int(p.hr_resize_x or 0), int(p.hr_resize_y or 0)
    if resize_x == 0 and resize_y == 0:
        p.extra_generation_params["Hires upscale"] = p.hr_scale
        return int(p.width * p.hr_scale), int(p.height * p.hr_scale)
    p.extra_generation_params["Hires resize"] = f"{resize_x}x{resize_y}"
    if resize_y == 0:
        return resize_x, resize_x * p.height // p.width
    if resize_x == 0:
        return resize_y * p.width // p.height, resize_y
    if p.width / p.height < resize_x / resize_y:
        to_x, to_y = resize_x, resize_x * p.height // p.width
    else:
        to_x, to_y = resize_y * p.width // p.height, resize_y
    return to_x - (to_x - resize_x) // 8 * 8, to_y - (to_y - resize_y) // 8 * 8


def _hires_settings(p):
    """mirrors StableDiffusionProcessingTxt2Img.init and setup_prompts (processing.py 1264-1281, 1473-1497): the
    hires sampler and schedule type (None: the first pass's), the hires prompts ('' : the prompt's) and their
    infotext keys; the hires pass names its sampler exactly (create_sampler asserts a known name)."""
    sampler = p.hr_sampler_name or p.sampler_name
    if sampler not in sd_samplers.all_samplers_map:
        raise AssertionError(f"bad sampler name: {sampler}")
    if p.hr_sampler_name is not None and p.hr_sampler_name != p.sampler_name:
        p.extra_generation_params["Hires sampler"] = p.hr_sampler_name
    first_schedule = sd_schedulers.schedulers_map.get(p.scheduler or "Automatic")
    schedule = sd_schedulers.schedulers_map.get(p.hr_scheduler or p.scheduler or "Automatic")
    if schedule is not None and schedule is not first_schedule:  # mirrors sd_samplers_kdiffusion.py 103-106
        p.extra_generation_params["Hires schedule type"] = schedule.label
    n = len(p.all_prompts)
    hr_prompts = _listify(p.prompt if p.hr_prompt == "" else p.hr_prompt, n)
    hr_negatives = _listify(p.negative_prompt if p.hr_negative_prompt == "" else p.hr_negative_prompt, n)
    p.all_hr_prompts = [shared.prompt_styles.apply_styles_to_prompt(x, p.styles) for x in hr_prompts]
    p.all_hr_negative_prompts = [
        shared.prompt_styles.apply_negative_styles_to_prompt(x, p.styles) for x in hr_negatives
    ]

    def get_hr_prompt(p, index, prompt_text, **kwargs):
        return p.all_hr_prompts[index] if p.all_hr_prompts[index] != prompt_text else None

    def get_hr_negative_prompt(p, index, negative_prompt, **kwargs):
        return p.all_hr_negative_prompts[index] if p.all_hr_negative_prompts[index] != negative_prompt else None

    p.extra_generation_params["Hires prompt"] = get_hr_prompt
    p.extra_generation_params["Hires negative prompt"] = get_hr_negative_prompt
    if hasattr(type(p), "hr_cfg"):  # mirrors Forge's processing.py 1310
        p.extra_generation_params["Hires CFG Scale"] = p.hr_cfg
    return sampler, (schedule.label if schedule is not None else "Automatic")


def _hires_pass(p, request, lowres, start):
    """mirrors StableDiffusionProcessingTxt2Img.sample_hr_pass (processing.py 1364-1455): upscale the first pass
    to the target size (a latent mode or a pixel upscaler) and denoise it again with the hires sampler, prompts
    (and Forge's hires CFG): here the tiny model's image of the same seed at the target size, blended in by the
    denoising strength."""
    from PIL import Image

    sampler, schedule = _hires_settings(p)
    to_x, to_y = _target_size(p)
    width, height = to_x // 8 * 8, to_y // 8 * 8
    latent = p.hr_upscaler is None or p.hr_upscaler in shared.latent_upscale_modes
    resample = Image.NEAREST if latent else Image.LANCZOS
    steps = int(p.hr_second_pass_steps or p.steps)
    batch = slice(start, start + request.size)
    second = _hires_request(request, width, height, steps)
    second.params.update(sampler_name=sampler, scheduler=schedule)
    if hasattr(type(p), "hr_cfg"):
        second.params["cfg_scale"] = float(p.hr_cfg)
    second.prompts = [_without_extra_networks(x) for x in p.all_hr_prompts[batch]]
    second.negative_prompts = [_without_extra_networks(x) for x in p.all_hr_negative_prompts[batch]]
    state.nextjob()  # mirrors processing.py 1425: the hires pass is a job of its own
    fresh = [g.image.convert("RGB") for g in get_backend().generate(second)]
    _count_steps(steps)
    strength = float(p.denoising_strength if p.denoising_strength is not None else 0.75)
    if p.hr_upscaler is not None:
        p.extra_generation_params["Hires upscaler"] = p.hr_upscaler
    if p.hr_second_pass_steps:
        p.extra_generation_params["Hires steps"] = p.hr_second_pass_steps
    return [
        Image.blend(image.convert("RGB").resize((width, height), resample), new, strength)
        for image, new in zip(lowres, fresh)
    ]


def _hires_request(request, width, height, steps):
    from sd_sweep.core.ports import GenerationRequest

    params = {**request.params, "width": width, "height": height, "steps": steps}
    return GenerationRequest(
        params=params,
        prompts=request.prompts,
        negative_prompts=request.negative_prompts,
        seeds=request.seeds,
        cell_ids=request.cell_ids,
    )
