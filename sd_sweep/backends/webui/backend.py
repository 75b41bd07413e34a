"""The WebUI backend: generates in-process through ``modules.processing`` of a running WebUI.

Works with AUTOMATIC1111 WebUI v1.10.1 and Forge. ``modules`` is imported lazily (inside functions),
so importing this module is cheap and works without a WebUI.

Each batch of the plan becomes one ``process_images`` call on a fresh shallow copy of the user's
``p`` (the template): styles, ``override_settings``, ``extra_generation_params`` and comments are
copied per call; per-image prompts, negative prompts and seeds are lists, as the built-in Prompt
matrix does. Checkpoint, VAE, clip skip and ``setting:KEY`` go through ``p.override_settings``;
``host:LABEL`` parameters are applied by the X/Y/Z plot axis of that label, with its own function.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import importlib.util
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sd_sweep.backends.webui.params import (
    HIRES_CFG,
    HIRES_CFG_REFUSAL,
    HIRES_MODULES,
    HIRES_PARAMS,
    HIRES_SAME_MODULES,
    PROCESSING_FIELDS,
    SECOND_PASS_PARAMS,
    TXT2IMG_ONLY,
    WEBUI_PARAMS,
    batch_family,
    first_pass_refusal,
    shares_batch,
)
from sd_sweep.core.errors import BackendError, Problem, SpecError
from sd_sweep.core.params import HIRES_SAME, SETTING_KEYS, with_hires_choices, with_hires_spellings
from sd_sweep.core.ports import Backend, Capabilities, GeneratedImage, GenerationRequest, StepCallback, StopSignal

if TYPE_CHECKING:
    import numpy as np

    from sd_sweep.core.plan import Plan

log = logging.getLogger("sd_sweep.webui")

BASE_FROM_P = (
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
    "batch_size",
    "denoising_strength",
    "restore_faces",
    "tiling",
    "styles",
)
FORGE_RESULT_LISTS = ("extra_result_images", "latents_after_sampling", "pixels_after_sampling")
"""Lists Forge's ``StableDiffusionProcessing.__post_init__`` creates per ``p`` and appends to while processing."""
HOST_PREFIX = "host:"
UNSET_HIRES = ("", 0)
"""A hires prompt, negative prompt or resize side the WebUI reads as unset: the prompt's, or by hr_scale."""
FORGE_VAE_REFUSAL = (
    "Forge picks the VAE as a module (the VAE / Text Encoder menu) and ignores VAE overrides, "
    "so the vae parameter cannot be swept there"
)


def webui_available() -> bool:
    """Whether a WebUI's ``modules`` package can be imported here."""
    return (
        importlib.util.find_spec("modules") is not None and importlib.util.find_spec("modules.processing") is not None
    )


def is_forge() -> bool:
    """Forge ships ``modules_forge``; it loads checkpoints and VAEs its own way (no VAE override)."""
    try:
        return importlib.util.find_spec("modules_forge") is not None
    except (ImportError, ValueError):
        return False


def _m(name: str) -> Any:
    return importlib.import_module(f"modules.{name}")


def txt2img_has_field(name: str) -> bool:
    """Whether the host's txt2img processing class has the field ``name`` (Forge's ``hr_cfg``).

    Asked of the class, not of a ``p``: validation runs on a stand-in ``p`` (``ValidationOnlyP``).
    A dataclass field with a default is also an attribute of its class.
    """
    cls = getattr(_m("processing"), "StableDiffusionProcessingTxt2Img", None)
    return cls is not None and (name in (getattr(cls, "__dataclass_fields__", None) or {}) or hasattr(cls, name))


def base_from_p(p: Any, is_img2img: bool) -> dict[str, Any]:  # noqa: PLR0912
    """The sweep's base parameters from what the user set in the WebUI (``p``)."""
    base: dict[str, Any] = {}
    names = BASE_FROM_P + (() if is_img2img else HIRES_PARAMS)
    for name in names:
        if not hasattr(p, name):
            continue
        value = getattr(p, name)
        if value is None:
            continue
        if name in ("prompt", "negative_prompt") and isinstance(value, list):
            value = value[0] if value else ""
        if name in ("seed", "subseed"):
            value = _plain_seed(value)
            if value is None:
                continue
        if name == "styles":
            value = list(value)
        if name in ("restore_faces", "tiling", "enable_hr"):
            value = bool(value)
        if name in HIRES_PARAMS[4:] and value in UNSET_HIRES:
            continue
        base[name] = value
    if not is_img2img and not base.get("enable_hr"):
        for name in HIRES_PARAMS[1:]:
            base.pop(name, None)
    if not is_img2img and not base.get("enable_hr"):
        base.pop("denoising_strength", None)
    if not base.get("subseed_strength"):
        base.pop("subseed", None)
        base.pop("subseed_strength", None)
    if base.get("scheduler") in ("", None):
        base.pop("scheduler", None)
    return base


def _plain_seed(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else -1
    if value in ("", None):
        return -1
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


@dataclass
class HostAxis:
    label: str
    option: Any
    """The X/Y/Z plot's ``AxisOption``."""


def find_xyz_module() -> Any | None:
    """The loaded ``xyz_grid.py`` script module (found through ``scripts.scripts_data``), if any."""
    try:
        scripts = _m("scripts")
    except ImportError:
        return None
    for data in getattr(scripts, "scripts_data", []):
        module = getattr(data, "module", None)
        path = str(getattr(data, "path", ""))
        if path.replace("\\", "/").endswith("scripts/xyz_grid.py") and hasattr(module, "axis_options"):
            return module
    return None


def host_axes(is_img2img: bool) -> dict[str, HostAxis]:
    """The X/Y/Z plot's axes for one tab, those other extensions appended included (label -> axis)."""
    module = find_xyz_module()
    axes: dict[str, HostAxis] = {}
    if module is None:
        return axes
    for option in list(module.axis_options):
        tab = getattr(option, "is_img2img", None)
        if tab is not None and bool(tab) != is_img2img:
            continue
        label = str(getattr(option, "label", ""))
        if not label or label == "Nothing" or label in axes or _is_permutations(option):
            continue
        axes[label] = HostAxis(label, option)
    return axes


def _is_permutations(option: Any) -> bool:
    """Axes typed ``str_permutations`` ("Prompt order"): their ``apply`` wants a tuple of tokens, not one value."""
    return getattr(getattr(option, "type", None), "__name__", "") == "str_permutations"


def host_choices(axis: HostAxis) -> list[str]:
    choices = getattr(axis.option, "choices", None)
    if not callable(choices):
        return []
    try:
        return [str(c) for c in choices()]
    except Exception:  # an extension's choices() may fail before its models are listed
        log.debug("choices() of X/Y/Z axis %r failed", axis.label, exc_info=True)
        return []


def convert_host_value(axis: HostAxis, value: Any) -> Any:
    kind = getattr(axis.option, "type", str)
    if kind is int:
        return int(float(value)) if isinstance(value, str) else int(value)
    if kind is float:
        return float(value)
    if kind is str:
        return str(value)
    try:
        return kind(value)
    except Exception:
        return value


class WebUIStopSignal(StopSignal):
    """The engine's stop flags, also raised by the WebUI's Interrupt (``state.interrupted``/``stopping_generation``)."""

    def __init__(self, state: Any) -> None:
        super().__init__()
        self.state = state

    @property
    def interrupted(self) -> bool:
        if getattr(self.state, "interrupted", False) or getattr(self.state, "stopping_generation", False):
            self.interrupt()
        return super().interrupted


class WebUIBackend(Backend):
    """Generates through ``modules.processing.process_images`` with ``p`` as the template of every call.

    ``save_samples=False`` keeps the WebUI from also saving each image with the normal samples (the
    run folder always gets them). Call ``check_plan(plan)`` before running a plan that uses
    ``host:`` axes, so their ``confirm`` functions refuse bad values before the first image.
    ``base_init_images``: the spec's ``base.init_images`` is accepted (img2img), as the API's ``p`` is
    built from them; the script's ``p`` has the tab's images, so there it is refused.
    """

    def __init__(
        self, p: Any, *, is_img2img: bool | None = None, save_samples: bool = True, base_init_images: bool = False
    ) -> None:
        self.p = p
        if is_img2img is None:
            is_img2img = hasattr(p, "init_images")
        self.is_img2img = is_img2img
        self.base_init_images = base_init_images and is_img2img
        self.save_samples = save_samples
        self.forge = is_forge()
        self.calls = 0
        self.first_passes = 0
        """First passes made on their own, to be reused by the second passes of their group."""
        self._first_pass: tuple[str, Any] | None = None
        """The key and image of the last first pass: kept only while consecutive cells share it."""
        self._input_digest_cache: str | None = None
        self._host = host_axes(is_img2img)
        self._host_xs: dict[str, list[Any]] = {}

    # --- description -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "forge" if self.forge else "webui"

    def capabilities(self) -> Capabilities:
        shared = _m("shared")
        params = set(WEBUI_PARAMS)
        refusals = {}
        if not self.is_img2img:
            params |= TXT2IMG_ONLY
            if txt2img_has_field(HIRES_CFG):
                params.add(HIRES_CFG)
            else:
                refusals[HIRES_CFG] = HIRES_CFG_REFUSAL
        if self.base_init_images:
            params.add("init_images")
        if self.forge:
            params.discard("vae")
            refusals["vae"] = FORGE_VAE_REFUSAL
        params |= {HOST_PREFIX + label for label in self._host}
        choices = {
            "sampler_name": self._samplers(),
            "scheduler": self._schedulers(),
            "checkpoint": self._checkpoints(),
            "vae": ("Automatic", "None", *self._vaes()),
            "hr_upscaler": self._upscalers(shared),
            "styles": tuple(getattr(getattr(shared, "prompt_styles", None), "styles", {}) or {}),
        }
        spellings = {"sampler_name": self._sampler_spellings(), "scheduler": self._scheduler_spellings()}
        return Capabilities(
            name=self.name,
            params=frozenset(params),
            choices=with_hires_choices(choices),
            size_multiple=8,
            min_side=64,
            max_side=4096,
            spellings=with_hires_spellings(spellings),
            refusals=refusals,
            implicit=self._implicit(shared),
            shares_batch=self._shares_batch(shared),
            first_pass_key=None if self.is_img2img else self._with_hires(first_pass_key, shared),
            first_pass_unreused=None if self.is_img2img else self._with_hires(first_pass_unreused, shared),
        )

    @property
    def host(self) -> str:
        """The host's key in the measured tables of ``params``."""
        return "forge" if self.forge else "a1111"

    def _with_hires(self, function: Callable[..., Any], shared: Any) -> functools.partial[Any]:
        return functools.partial(function, self.host, self._latent(shared), self._hires_defaults())

    def _shares_batch(self, shared: Any) -> functools.partial[bool]:
        """The measured table (``params.BATCH_EXACTNESS``) for this host and tab."""
        return functools.partial(shares_batch, self.host, self.is_img2img, self._latent(shared), self._hires_defaults())

    def _hires_defaults(self) -> dict[str, Any]:
        """The template's hires switch and upscaler: what a cell that sets neither is made with."""
        if self.is_img2img:
            return {}
        return {
            "enable_hr": bool(getattr(self.p, "enable_hr", False)),
            "hr_upscaler": getattr(self.p, "hr_upscaler", None),
        }

    @staticmethod
    def _latent(shared: Any) -> frozenset[str]:
        return frozenset(getattr(shared, "latent_upscale_modes", {}) or {})

    def _implicit(self, shared: Any) -> dict[str, str]:
        """The models the WebUI has selected and the tab's input image: what a cell uses when it sets none."""
        opts = getattr(shared, "opts", None)
        overrides = getattr(self.p, "override_settings", None) or {}
        implicit = {}
        for name, key in (("checkpoint", SETTING_KEYS["checkpoint"]), ("vae", SETTING_KEYS["vae"])):
            value = overrides.get(key, getattr(opts, key, None))
            if value not in (None, ""):
                implicit[name] = str(value)
        modules = getattr(opts, "forge_additional_modules", None)
        if modules:
            implicit["vae"] = ", ".join(map(str, modules))
        if self.is_img2img and not self.base_init_images:
            implicit["init_images"] = self._input_digest()
        return implicit

    def _input_digest(self) -> str:
        """A digest of the tab's input images and mask (computed once per backend: images are large)."""
        if self._input_digest_cache is None:
            digest = hashlib.sha1()
            for image in [*(getattr(self.p, "init_images", None) or []), getattr(self.p, "image_mask", None)]:
                if image is not None and hasattr(image, "tobytes"):
                    digest.update(f"{image.mode} {image.size}".encode())
                    digest.update(image.tobytes())
            self._input_digest_cache = digest.hexdigest()[:16]
        return self._input_digest_cache

    @staticmethod
    def _listed_samplers() -> list[Any]:
        """The samplers the WebUI lists (``visible_samplers``, else all of them)."""
        sd_samplers = _m("sd_samplers")
        visible = getattr(sd_samplers, "visible_samplers", None)
        return list(visible() if callable(visible) else getattr(sd_samplers, "all_samplers", []))

    def _samplers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.name for s in self._listed_samplers()))

    def _sampler_spellings(self) -> dict[str, str]:
        """The aliases of the listed samplers (``k_euler_a``), each to its sampler's name, which the
        WebUI writes in infotexts (``sd_samplers.samplers_map`` reads them)."""
        items = self._listed_samplers()
        return {alias: s.name for s in items for alias in (getattr(s, "aliases", None) or ()) if alias != s.name}

    def _schedulers(self) -> tuple[str, ...]:
        try:
            sd_schedulers = _m("sd_schedulers")
        except ImportError:
            return ("Automatic",)
        labels = [getattr(s, "label", s.name) for s in sd_schedulers.schedulers]
        return tuple(dict.fromkeys(["Automatic", *labels]))

    def _scheduler_spellings(self) -> dict[str, str]:
        """Schedule types by name (``karras``), each to its label, which the WebUI writes in infotexts
        (``sd_schedulers.schedulers_map`` takes either)."""
        try:
            sd_schedulers = _m("sd_schedulers")
        except ImportError:
            return {}
        return {s.name: s.label for s in sd_schedulers.schedulers if getattr(s, "label", s.name) != s.name}

    @staticmethod
    def _apply_hires_same(pc: Any, params: dict[str, Any]) -> None:
        """The hires pass's ``Use same sampler``/``Use same scheduler`` as None, as the WebUI's txt2img
        passes it (the plan already names every sampler and schedule type as the WebUI does)."""
        for name, (_, same) in HIRES_SAME.items():
            if params.get(name) == same and hasattr(pc, name):
                setattr(pc, name, None)

    def _checkpoints(self) -> tuple[str, ...]:
        sd_models = _m("sd_models")
        names: list[str] = []
        for info in sd_models.checkpoints_list.values():
            names += [info.title, info.name, getattr(info, "model_name", info.name)]
        return tuple(dict.fromkeys(n for n in names if n))

    def _vaes(self) -> tuple[str, ...]:
        try:
            return tuple(_m("sd_vae").vae_dict)
        except ImportError:
            return ()

    @staticmethod
    def _upscalers(shared: Any) -> tuple[str, ...]:
        latent = list(getattr(shared, "latent_upscale_modes", {}) or {})
        others = [u.name for u in getattr(shared, "sd_upscalers", []) or []]
        return tuple(dict.fromkeys([*latent, *others]))

    @property
    def host_axis_labels(self) -> list[str]:
        return list(self._host)

    def check_plan(self, plan: Plan) -> None:
        """Convert each ``host:`` axis's values with the axis's type and run its ``confirm``; raise SpecError."""
        problems: list[Problem] = self._setting_problems(plan)
        for dimension in plan.dimensions:
            for axis, values, where in zip(dimension.axes, dimension.values, dimension.fields):
                if not axis.param.startswith(HOST_PREFIX):
                    continue
                host = self._host.get(axis.param[len(HOST_PREFIX) :])
                if host is None:
                    problems.append(Problem(f"{where}.param", axis.param, "no X/Y/Z axis with this label here"))
                    continue
                try:
                    converted = [convert_host_value(host, v) for v in values]
                except (TypeError, ValueError) as exc:
                    problems.append(Problem(f"{where}.values", values, f"not valid for {host.label}: {exc}"))
                    continue
                confirm = getattr(host.option, "confirm", None)
                if confirm is not None:
                    try:
                        confirm(self.p, converted)
                    except Exception as exc:
                        problems.append(Problem(f"{where}.values", values, f"{host.label}: {exc}"))
                        continue
                self._host_xs[host.label] = converted
        if problems:
            raise SpecError(problems)

    @staticmethod
    def _setting_problems(plan: Plan) -> list[Problem]:
        """``setting:KEY`` must name an option of this WebUI: ``Options.set`` raises KeyError for others."""
        try:
            labels = _m("shared").opts.data_labels
        except (ImportError, AttributeError):
            return []
        fields: dict[str, str] = {}
        for dimension in plan.dimensions:
            for axis, where in zip(dimension.axes, dimension.fields):
                if axis.param.startswith("setting:"):
                    fields.setdefault(axis.param.split(":", 1)[1], f"{where}.param")
        keys: dict[str, None] = {}
        for cell in plan.cells:
            keys.update(dict.fromkeys(cell.params.get("override_settings") or {}))
        return [
            Problem(fields.get(key, f"base.setting:{key}"), f"setting:{key}", "not a setting of this WebUI")
            for key in keys
            if key not in labels
        ]

    # --- generation --------------------------------------------------------------------------
    def job_for(self, request: GenerationRequest) -> Any:
        """A fresh copy of the template ``p`` with the batch's values applied (not yet processed)."""
        p = self.p
        pc = _copy_template(p)
        params = request.params
        for name in PROCESSING_FIELDS:
            if name in params and (hasattr(p, name) or name in ("restore_faces", "tiling")):
                setattr(pc, name, params[name])
        self._apply_hires_same(pc, params)
        if "styles" in params:
            pc.styles = list(params["styles"])
        overrides = dict(params.get("override_settings") or {})
        pc.override_settings.update(overrides)
        if params.get("checkpoint") is not None:
            pc.override_settings[SETTING_KEYS["checkpoint"]] = self._checkpoint_alias(str(params["checkpoint"]))
        if params.get("vae") is not None:
            if self.forge:
                raise BackendError(FORGE_VAE_REFUSAL)
            pc.override_settings[SETTING_KEYS["vae"]] = str(params["vae"])
        if params.get("clip_skip") is not None:
            pc.override_settings[SETTING_KEYS["clip_skip"]] = int(params["clip_skip"])
        if (
            self.forge
            and "cfg_scale" in params
            and HIRES_CFG not in params
            and getattr(p, HIRES_CFG, None) == p.cfg_scale
        ):
            # Forge's hires pass uses hr_cfg, not cfg_scale: where the user's hires CFG follows the CFG, it follows
            # the swept CFG in every cell; a different hires CFG (e.g. 1 for Flux) is kept in every cell.
            pc.hr_cfg = params["cfg_scale"]
        if self.forge and getattr(pc, HIRES_MODULES, ()) is None:
            setattr(pc, HIRES_MODULES, list(HIRES_SAME_MODULES))
        pc.prompt = list(request.prompts)
        pc.negative_prompt = list(request.negative_prompts)
        pc.seed = [int(s) for s in request.seeds]
        pc.batch_size = request.size
        pc.n_iter = 1
        pc.do_not_save_grid = True
        pc.do_not_save_samples = bool(getattr(p, "do_not_save_samples", False)) or not self.save_samples
        pc.override_settings_restore_afterwards = True
        for name, value in params.items():
            if name.startswith(HOST_PREFIX):
                self._apply_host(pc, name[len(HOST_PREFIX) :], value)
        return pc

    def _checkpoint_alias(self, value: str) -> str:
        sd_models = _m("sd_models")
        info = sd_models.checkpoint_aliases.get(value)
        if info is None:
            msg = f"unknown checkpoint {value!r}; it is not (any longer) in the WebUI's checkpoint list"
            raise BackendError(msg)
        return info.title

    def _apply_host(self, pc: Any, label: str, value: Any) -> None:
        host = self._host.get(label)
        if host is None:
            raise BackendError(f"no X/Y/Z axis {label!r} in this WebUI tab")
        x = convert_host_value(host, value)
        xs = self._host_xs.get(label) or [x]
        host.option.apply(pc, x, xs)

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        stop: StopSignal | None = None,
    ) -> list[GeneratedImage]:
        """One ``process_images`` call; a hires cell whose group's first pass is made reuses it.

        The planner puts the cells of one first-pass group (``Capabilities.first_pass_key``) one
        after the other, so only the last first pass is kept in memory; the run folder keeps it too
        (``request.first_pass``, a PNG), so a run resumed in the middle of a group continues it.
        Images of a batch that a batch may change (``params.BATCH_EXACTNESS``) say so in their
        infotext: ``Sweep batch: 2 of 4``.
        """
        if request.size == 0:
            return []
        key = self._reuse_key(request)
        if key is None:
            self._first_pass = None
            return self._mark_batch(request, self._process(self.job_for(request), request, stop))
        if self._first_pass is None or self._first_pass[0] != key:
            self._first_pass = None
            kept = _read_kept_first_pass(request)
            if kept is not None:
                self._first_pass = (key, kept)
        if self._first_pass is None:
            first = GenerationRequest(
                params={**request.params, "enable_hr": False},
                prompts=request.prompts,
                negative_prompts=request.negative_prompts,
                seeds=request.seeds,
                cell_ids=request.cell_ids,
            )
            pc = self.job_for(first)
            pc.do_not_save_samples = True
            images = self._process(pc, first, stop)
            if not images:
                return []
            self.first_passes += 1
            self._first_pass = (key, images[0].image)
            _keep_first_pass(request, images[0].image)
        pc = self.job_for(request)
        pc.firstpass_image = exact_firstpass_pixels(self._first_pass[1])
        if not self.forge:
            # v1.10.1's hires pass starts a job (state.nextjob) for the first pass it skips; the sweep counts
            # that first pass where it was made, or not at all when it was kept, so the hires pass is one job
            # (WebUIProgress).
            _m("shared").state.job_no -= 1
        return self._process(pc, request, stop)

    def sampler_runs(
        self, requests: list[GenerationRequest], first_passes_kept: frozenset[int] = frozenset()
    ) -> list[list[int]]:
        """For each request in run order, the sampling steps of each sampler run ``generate`` makes for it.

        These are what the WebUI's progress counts: ``state.job_count`` jobs, and one step of
        ``shared.total_tqdm`` per sampler callback. A hires cell is its first pass and its hires pass
        (``hr_second_pass_steps`` or the steps); a cell that continues a kept first pass is only its
        hires pass, as is a request numbered in ``first_passes_kept`` (its first pass is in the run
        folder). img2img samples ``int(min(denoising, 0.999) * steps) + 1`` steps, the steps where
        ``img2img_fix_steps`` is on (``sd_samplers_common.setup_img2img_steps``).
        """
        runs: list[list[int]] = []
        last: str | None = None
        for number, request in enumerate(requests):
            params = request.params
            steps = int(self._param(params, "steps", 20))
            if self.is_img2img:
                runs.append([self._img2img_steps(params, steps)])
                continue
            if not self._param(params, "enable_hr", False):
                runs.append([steps])
                last = None
                continue
            second = int(self._param(params, "hr_second_pass_steps", 0) or steps)
            key = self._reuse_key(request)
            made = number in first_passes_kept or (key is not None and key == last)
            runs.append([second] if made else [steps, second])
            last = key
        return runs

    def _param(self, params: dict[str, Any], name: str, default: Any) -> Any:
        value = params.get(name, getattr(self.p, name, default))
        return default if value is None else value

    def _img2img_steps(self, params: dict[str, Any], steps: int) -> int:
        fixed = (params.get("override_settings") or {}).get("img2img_fix_steps")
        if fixed is None:
            fixed = getattr(_m("shared").opts, "img2img_fix_steps", False)
        if fixed:
            return steps
        return int(min(float(self._param(params, "denoising_strength", 0.75)), 0.999) * steps) + 1

    def _reuse_key(self, request: GenerationRequest) -> str | None:
        """The first-pass key of a one-image hires request whose first pass can be reused, else None."""
        if request.size != 1 or self.is_img2img:
            return None
        params = {**request.params, "prompt": request.prompts[0], "negative_prompt": request.negative_prompts[0]}
        params["seed"] = request.seeds[0]
        return self._with_hires(first_pass_key, _m("shared"))(params)

    def _mark_batch(self, request: GenerationRequest, images: list[GeneratedImage]) -> list[GeneratedImage]:
        """Say in the infotext of each image of a several-image batch that the batch may have changed it."""
        if request.size < 2 or self._shares_batch(_m("shared"))(request.params):
            return images
        for index, generated in enumerate(images):
            generated.infotext = f"{generated.infotext}, Sweep batch: {index + 1} of {request.size}"
        return images

    def _process(self, pc: Any, request: GenerationRequest, stop: StopSignal | None) -> list[GeneratedImage]:
        shared = _m("shared")
        processing = _m("processing")
        state = shared.state
        if state.interrupted or getattr(state, "stopping_generation", False):
            if stop is not None:
                stop.interrupt()
            return []
        self.calls += 1
        try:
            processed = processing.process_images(pc)
        finally:
            close = getattr(pc, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.debug("p.close() failed", exc_info=True)
        if state.skipped:
            state.skipped = False
            if stop is not None:
                stop.skip()
            return []
        if state.interrupted:
            # a hard interrupt leaves partly denoised images: drop them, the batch is redone next time
            if stop is not None:
                stop.interrupt()
            return []
        if getattr(state, "stopping_generation", False) and stop is not None:
            stop.interrupt()  # "interrupt after current": keep this batch, run no more
        first = int(getattr(processed, "index_of_first_image", 0) or 0)
        images = list(processed.images[first : first + request.size])
        infotexts = list(processed.infotexts[first : first + request.size])
        result = []
        for index, image in enumerate(images):
            text = infotexts[index] if index < len(infotexts) else processed.info
            result.append(GeneratedImage(image=image, infotext=text))
        return result

    # --- keeping the user's settings ---------------------------------------------------------
    @contextmanager
    def session(self, uses_models: bool = True) -> Iterator[None]:
        """Run a sweep: every setting the sweep touched is as it was afterwards, also after an error.

        ``process_images`` restores only overrides of keys already in ``opts.data``; X/Y/Z axes may
        write ``opts.data`` directly. So the whole ``opts.data`` is snapshotted and changed keys are put
        back (keys the sweep added are removed). The user's checkpoint and VAE are reloaded when the
        sweep may have switched them.
        """
        shared = _m("shared")
        _wait_for_startup_model(shared)
        opts = shared.opts
        before = dict(opts.data)
        try:
            yield
        finally:
            changed = _restore_options(opts, before)
            if uses_models or {"sd_model_checkpoint", "sd_vae"} & changed:
                self._reload_user_models(changed)

    def _reload_user_models(self, changed: set[str]) -> None:
        if self.forge:
            if "sd_model_checkpoint" in changed:
                _forge_refresh_loading_parameters()
            return
        try:
            _m("sd_models").reload_model_weights()
        except Exception:
            log.exception("sd-webui-sweep: could not reload the user's checkpoint")
        try:
            _m("sd_vae").reload_vae_weights()
        except Exception:
            log.exception("sd-webui-sweep: could not reload the user's VAE")


def _wait_for_startup_model(shared: Any) -> None:
    """Wait until the model the WebUI loads at startup (in a thread of its own) is there.

    ``process_images`` calls ``sd_models.reload_model_weights()``, which loads a model of its own when
    none is there yet: a sweep started right after startup then loads it a second time, at the same
    moment, and fails (v1.10.1: "Cannot copy out of meta tensor"). The WebUI's own routes read
    ``shared.sd_model`` first (``sd_model=shared.sd_model``), which waits for that load under its lock.
    """
    getattr(shared, "sd_model", None)


def first_pass_key(
    host: str, latent_modes: frozenset[str], defaults: dict[str, Any], params: dict[str, Any]
) -> str | None:
    """Everything the first pass of a hires cell reads, as text; None where it cannot be reused exactly.

    The WebUI's ``firstpass_image`` (``StableDiffusionProcessingTxt2Img.sample``, as
    ``txt2img_upscale`` uses it) hands a pixel upscaler the image itself, as the normal hires
    pass does, but VAE-encodes it again for a latent upscaler, whose normal pass upscales the
    first pass's latent: a different image. So only the kinds ``params.FIRST_PASS_EXACTNESS``
    measured exact reuse a first pass. ``defaults`` are the template's hires switch and upscaler,
    for a cell that sets neither.
    """
    family = batch_family(False, latent_modes, {**defaults, **params})
    if not family.startswith("hires") or first_pass_refusal(host, family) is not None:
        return None
    return _first_pass_text(params)


def first_pass_unreused(
    host: str, latent_modes: frozenset[str], defaults: dict[str, Any], params: dict[str, Any]
) -> tuple[str, str] | None:
    """For a hires cell that makes its own first pass although it could share it: that first pass, and why."""
    family = batch_family(False, latent_modes, {**defaults, **params})
    if not family.startswith("hires"):
        return None
    why = first_pass_refusal(host, family)
    return None if why is None else (_first_pass_text(params), why)


def _first_pass_text(params: dict[str, Any]) -> str:
    first = {name: value for name, value in params.items() if name not in SECOND_PASS_PARAMS}
    return json.dumps(first, sort_keys=True, default=str)


def _read_kept_first_pass(request: GenerationRequest) -> Any:
    """The first-pass image the run folder keeps for ``request``'s group, or None."""
    import io

    from PIL import Image, UnidentifiedImageError

    data = request.first_pass.load() if request.first_pass is not None else None
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError):
        log.warning("a kept first pass of this run cannot be read; it is made again")
        return None


def _keep_first_pass(request: GenerationRequest, image: Any) -> None:
    """Keep a group's first pass in the run folder as a PNG (lossless: its very pixels)."""
    import io

    if request.first_pass is None:
        return
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    request.first_pass.save(buffer.getvalue())


def exact_firstpass_pixels(image: Any) -> np.ndarray:
    """``image`` as ``p.firstpass_image``, such that the hires pass gets exactly its pixels.

    v1.10.1 maps it to ``x / 255 * 2 - 1`` and back to ``255 * (y + 1) / 2``, truncated to uint8:
    in float32 that gives ``x - 1`` for about a quarter of the 256 values. Pixel centres
    (``x + 0.5``) survive the round trip, so the upscaler sees the first pass's own pixels.
    """
    import numpy as np

    return np.asarray(image.convert("RGB"), dtype=np.float32) + 0.5


def _copy_template(p: Any) -> Any:
    """A shallow copy of ``p`` whose containers that processing changes are its own."""
    pc = copy.copy(p)
    pc.styles = list(getattr(p, "styles", None) or [])
    pc.override_settings = dict(getattr(p, "override_settings", None) or {})
    pc.extra_generation_params = dict(getattr(p, "extra_generation_params", None) or {})
    if hasattr(p, "comments"):
        pc.comments = {}
    for name in FORGE_RESULT_LISTS:
        if hasattr(p, name):
            setattr(pc, name, [])  # Forge appends every sample's latent/pixels here: not into the template's
    return pc


def _restore_options(opts: Any, before: dict[str, Any]) -> set[str]:
    data = opts.data
    changed: set[str] = set()
    for key in list(data):
        if key not in before:
            del data[key]
            changed.add(key)
    for key, value in before.items():
        if key not in data or (data[key] is not value and data[key] != value):
            data[key] = value
            changed.add(key)
    return changed


def _forge_refresh_loading_parameters() -> None:
    try:
        main_entry = importlib.import_module("modules_forge.main_entry")
    except ImportError:
        return
    refresh = getattr(main_entry, "refresh_model_loading_parameters", None)
    if callable(refresh):
        try:
            refresh()
        except Exception:
            log.exception("sd-webui-sweep: could not restore Forge's model loading parameters")
