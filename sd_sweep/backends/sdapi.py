"""A backend that drives a stock WebUI over HTTP: ``/sdapi/v1/txt2img`` and ``/sdapi/v1/img2img``.

The fallback of ``python -m sd_sweep run SPEC --url URL`` against a WebUI without this extension
(started with ``--api``). The run itself happens here, with the normal engine: same spec, same run
folder layout, same resume.

**One call per image group.** The stock API takes one prompt, one negative prompt and one seed per
call and numbers a batch's seeds ``seed, seed+1, ...``; it cannot take a list of per-image prompts.
So a planned batch is split into groups of consecutive images with the same prompt and negative
prompt whose seeds count up by one (and no variation seed, whose subseeds would also count up);
each group is one call with ``batch_size`` = its size. Prompt-matrix and S/R batches therefore
become one call per image. Checkpoint, VAE and clip skip go in ``override_settings`` (restored by
the WebUI after each call).

**Hires fix.** On txt2img each hires parameter (``TXT2IMG_ONLY``) is the request's field of that
name; the hires pass's ``Use same sampler``/``Use same scheduler`` is left out (the API's None, as
the WebUI's txt2img tab passes it). Forge's ``hr_cfg`` is applied where the server's txt2img request
model (in its ``/openapi.json``) has that field, and refused elsewhere. A cell that leaves it unset gets
its CFG scale there, as Forge's UI starts both at 7 (its API's default, 1, would turn the hires pass's
guidance off and leave a swept CFG out of it). Where the model has Forge's ``hr_additional_modules``,
a hires request sends its UI's default (``HIRES_SAME_MODULES``), without which Forge's hires pass
fails. img2img applies none of them.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import threading
from typing import Any

from sd_sweep.backends.http import HTTP, SweepHTTPError
from sd_sweep.backends.webui.params import (
    HIRES_CFG,
    HIRES_CFG_REFUSAL,
    HIRES_MODULES,
    HIRES_SAME_MODULES,
    PROCESSING_FIELDS,
    TXT2IMG_ONLY,
    WEBUI_PARAMS,
    shares_batch,
)
from sd_sweep.core.errors import BackendError
from sd_sweep.core.params import (
    HIRES_SAME,
    SETTING_KEYS,
    WEBUI_DEFAULTS,
    with_hires_choices,
    with_hires_spellings,
)
from sd_sweep.core.ports import Backend, Capabilities, GeneratedImage, GenerationRequest, StepCallback, StopSignal

PARAMS = WEBUI_PARAMS | {"init_images", "mask"}
PLAIN = (*PROCESSING_FIELDS, "init_images", "mask")
TXT2IMG_SCHEMA = "StableDiffusionProcessingTxt2Img"
"""The name of the stock API's txt2img request model in ``/openapi.json`` (``modules/api/models.py``)."""


class SdapiBackend(Backend):
    """Generates through a WebUI's stock API (``--api``); ``auth`` is its ``--api-auth`` pair."""

    def __init__(self, url: str, *, auth: str | None = None, mode: str = "txt2img", timeout: float = 3600.0) -> None:
        self.http = HTTP(url, auth, timeout)
        self.mode = mode
        self.calls = 0
        self._caps: Capabilities | None = None
        self._fields: frozenset[str] | None = None

    def _items(self, path: str) -> list[dict[str, Any]]:
        """The objects of one of the API's lists; none where the server does not serve it."""
        try:
            items = self.http.json("GET", path)
        except SweepHTTPError as exc:
            if exc.status == 404:
                return []
            raise
        return [item for item in items or [] if isinstance(item, dict)]

    def _list(self, path: str, *keys: str) -> tuple[str, ...]:
        return _values(self._items(path), *keys)

    def capabilities(self) -> Capabilities:
        if self._caps is None:
            params = set(PARAMS)
            refusals = {}
            if self.mode == "txt2img":
                params |= TXT2IMG_ONLY
                if HIRES_CFG in self._txt2img_fields():
                    params.add(HIRES_CFG)
                else:
                    refusals[HIRES_CFG] = HIRES_CFG_REFUSAL
            samplers, schedulers = self._items("/sdapi/v1/samplers"), self._items("/sdapi/v1/schedulers")
            latent = self._list("/sdapi/v1/latent-upscale-modes", "name")
            choices = {
                "sampler_name": _values(samplers, "name"),
                "scheduler": tuple(dict.fromkeys(("Automatic", *_schedule_types(schedulers)))),
                "checkpoint": self._list("/sdapi/v1/sd-models", "title", "model_name"),
                "vae": ("Automatic", "None", *self._list("/sdapi/v1/sd-vae", "model_name")),
                "hr_upscaler": latent + self._list("/sdapi/v1/upscalers", "name"),
                "styles": self._list("/sdapi/v1/prompt-styles", "name"),
            }
            choices = {k: v for k, v in choices.items() if v and v != ("Automatic",)}
            self._caps = Capabilities(
                name="sdapi",
                params=frozenset(params),
                choices=with_hires_choices(choices),
                min_side=64,
                spellings=with_hires_spellings(_spellings(samplers, schedulers)),
                refusals=refusals,
                implicit=self._loaded_models(),
                # the host's measured table (webui.params.BATCH_EXACTNESS), as in-process
                shares_batch=functools.partial(
                    shares_batch, self._host(), self.mode == "img2img", frozenset(latent), {}
                ),
            )
        return self._caps

    def _host(self) -> str:
        """``forge`` where the txt2img request model has Forge's hires modules field, else ``a1111``."""
        return "forge" if HIRES_MODULES in self._txt2img_fields() else "a1111"

    def _txt2img_fields(self) -> frozenset[str]:
        """The fields of the server's txt2img request model, from its OpenAPI schema; none where it serves none.

        A field the model lacks is dropped by the API without a word, so only a listed one is swept.
        """
        if self._fields is None:
            self._fields = self._read_txt2img_fields()
        return self._fields

    def _read_txt2img_fields(self) -> frozenset[str]:
        try:
            schema = self.http.json("GET", "/openapi.json")
        except SweepHTTPError as exc:
            if exc.status == 404:
                return frozenset()
            raise
        except ValueError:  # not JSON: a server that serves something else there
            return frozenset()
        model: Any = schema
        for key in ("components", "schemas", TXT2IMG_SCHEMA, "properties"):
            model = model.get(key) if isinstance(model, dict) else None
        return frozenset(model) if isinstance(model, dict) else frozenset()

    def _loaded_models(self) -> dict[str, str]:
        """The checkpoint and VAE the server has selected: what a cell that sets neither is made with."""
        try:
            options = self.http.json("GET", "/sdapi/v1/options")
        except SweepHTTPError as exc:
            if exc.status == 404:
                return {}
            raise
        if not isinstance(options, dict):
            return {}
        implicit = {name: options.get(key) for name, key in SETTING_KEYS.items() if name in ("checkpoint", "vae")}
        return {name: str(value) for name, value in implicit.items() if value not in (None, "")}

    def payloads(self, request: GenerationRequest) -> list[tuple[int, dict[str, Any]]]:
        """``(images, payload)`` per call, in order (see the module docstring for the grouping)."""
        params = request.params
        base: dict[str, Any] = {k: params[k] for k in PLAIN if k in params}
        for name, (_, same) in HIRES_SAME.items():
            if base.get(name) == same:
                del base[name]
        if self.mode == "txt2img" and params.get("enable_hr"):
            fields = self._txt2img_fields()
            if HIRES_MODULES in fields:
                base[HIRES_MODULES] = list(HIRES_SAME_MODULES)
            if HIRES_CFG in fields and params.get(HIRES_CFG) is None:
                base[HIRES_CFG] = params.get("cfg_scale", WEBUI_DEFAULTS["cfg_scale"])
        overrides = dict(params.get("override_settings") or {})
        for name, value in params.items():
            if name.startswith("setting:"):
                overrides[name.split(":", 1)[1]] = value
        for name, key in SETTING_KEYS.items():
            if params.get(name) is not None:
                overrides[key] = params[name]
        if "styles" in params:
            base["styles"] = list(params["styles"]) if isinstance(params["styles"], list) else [params["styles"]]
        base.update(
            {
                "override_settings": overrides,
                "override_settings_restore_afterwards": True,
                "n_iter": 1,
                "send_images": True,
                "save_images": False,
            }
        )
        groupable = not params.get("subseed_strength")
        calls: list[tuple[int, dict[str, Any]]] = []
        start = 0
        while start < request.size:
            end = start + 1
            while (
                groupable
                and end < request.size
                and request.prompts[end] == request.prompts[start]
                and request.negative_prompts[end] == request.negative_prompts[start]
                and request.seeds[end] == request.seeds[start] + (end - start)
            ):
                end += 1
            payload = {
                **base,
                "prompt": request.prompts[start],
                "negative_prompt": request.negative_prompts[start],
                "seed": request.seeds[start],
                "batch_size": end - start,
            }
            calls.append((end - start, payload))
            start = end
        return calls

    def generate(
        self, request: GenerationRequest, on_step: StepCallback | None = None, stop: StopSignal | None = None
    ) -> list[GeneratedImage]:
        results: list[GeneratedImage] = []
        for count, payload in self.payloads(request):
            if stop is not None and stop.skip_requested:
                return []
            results.extend(self._call(count, payload, on_step, stop))
        return results

    def _call(
        self, count: int, payload: dict[str, Any], on_step: StepCallback | None, stop: StopSignal | None
    ) -> list[GeneratedImage]:
        from PIL import Image

        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(done, on_step, stop), daemon=True)
        watcher.start()
        try:
            answer = self.http.json("POST", f"/sdapi/v1/{self.mode}", payload)
        finally:
            done.set()
            watcher.join(5)
        self.calls += 1
        try:
            info = json.loads(answer.get("info") or "{}")
        except ValueError:
            info = {}
        first = int(info.get("index_of_first_image", 0) or 0)
        images = (answer.get("images") or [])[first : first + count]
        infotexts = (info.get("infotexts") or [])[first : first + count]
        if len(images) < count:
            msg = f"/sdapi/v1/{self.mode} returned {len(images)} images, expected {count}"
            raise BackendError(msg)
        return [
            GeneratedImage(
                Image.open(
                    io.BytesIO(base64.b64decode(data.partition(",")[2] if data.startswith("data:") else data))
                ).copy(),
                infotexts[i] if i < len(infotexts) else "",
            )
            for i, data in enumerate(images)
        ]

    def _watch(self, done: threading.Event, on_step: StepCallback | None, stop: StopSignal | None) -> None:
        """Step progress from ``/sdapi/v1/progress``; a skip request becomes ``/sdapi/v1/skip``."""
        while not done.wait(0.5):
            try:
                if stop is not None and stop.skip_requested:
                    self.http.request("POST", "/sdapi/v1/skip")
                    return
                if on_step is not None:
                    state = (
                        self.http.json("GET", "/sdapi/v1/progress", query={"skip_current_image": "true"}) or {}
                    ).get("state") or {}
                    step, steps = int(state.get("sampling_step") or 0), int(state.get("sampling_steps") or 0)
                    if steps:
                        on_step(min(step, steps), steps)
            except Exception:  # noqa: PERF203 - progress is best effort
                continue


def _values(items: list[dict[str, Any]], *keys: str) -> tuple[str, ...]:
    """The non-empty text values of ``keys`` in the API's list ``items``, once each, in order."""
    values = [item.get(key) for item in items for key in keys]
    return tuple(dict.fromkeys(v for v in values if isinstance(v, str) and v))


def _schedule_types(schedulers: list[dict[str, Any]]) -> tuple[str, ...]:
    """Schedule types by label, as the WebUI writes them (their names are ``_spellings``)."""
    labels = [item.get("label") or item.get("name") for item in schedulers]
    return tuple(dict.fromkeys(label for label in labels if isinstance(label, str) and label))


def _spellings(samplers: list[dict[str, Any]], schedulers: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """A sampler's aliases (``k_euler_a``) to its name, a schedule type's name (``karras``) to its
    label, as the API lists them: the names the WebUI writes in infotexts (as in-process)."""
    sampler_names = {
        alias: item["name"]
        for item in samplers
        for alias in item.get("aliases") or ()
        if isinstance(alias, str) and alias != item.get("name")
    }
    schedule_labels = {
        item["name"]: item["label"]
        for item in schedulers
        if isinstance(item.get("name"), str) and item.get("label") not in (None, item["name"])
    }
    return {"sampler_name": sampler_names, "scheduler": schedule_labels}
