"""A backend that draws flat colours from each image's parameters: fast, deterministic, torch-free."""

from __future__ import annotations

import hashlib
from typing import Any

from PIL import Image

from sd_sweep.backends.webui.params import TXT2IMG_ONLY, WEBUI_PARAMS
from sd_sweep.core.infotext import build_infotext
from sd_sweep.core.ports import Backend, Capabilities, GeneratedImage, GenerationRequest, StepCallback, StopSignal

FAKE_PARAMS = WEBUI_PARAMS | TXT2IMG_ONLY
"""A WebUI's parameters on the txt2img tab."""


class FakeBackend(Backend):
    def __init__(self, *, fail_on_call: int | None = None, interrupt_after: int | None = None) -> None:
        self.calls: list[GenerationRequest] = []
        self.fail_on_call = fail_on_call
        self.interrupt_after = interrupt_after

    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="fake",
            params=FAKE_PARAMS,
            choices={
                "sampler_name": ("Euler", "Euler a", "DPM++ 2M"),
                "scheduler": ("Automatic", "Karras"),
                "checkpoint": ("alpha.safetensors", "beta.safetensors", "gamma.safetensors"),
                "vae": ("None", "Automatic", "vae-ft-mse.safetensors"),
                "hr_upscaler": ("Latent", "Lanczos"),
                "styles": ("cinematic", "anime"),
            },
        )

    def generate(
        self, request: GenerationRequest, on_step: StepCallback | None = None, stop: StopSignal | None = None
    ) -> list[GeneratedImage]:
        self.calls.append(request)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            msg = "out of memory"
            raise RuntimeError(msg)
        steps = int(request.params.get("steps", 20))
        for step in range(1, steps + 1):
            if on_step:
                on_step(step, steps)
        if self.interrupt_after is not None and stop is not None and len(self.calls) >= self.interrupt_after:
            stop.interrupt()
        return [
            GeneratedImage(self._draw(request.params, p, s), build_infotext(p, n, {**request.params, "seed": s}))
            for p, n, s in zip(request.prompts, request.negative_prompts, request.seeds)
        ]

    @staticmethod
    def _draw(params: dict[str, Any], prompt: str, seed: int) -> Image.Image:
        digest = hashlib.sha1(f"{prompt}|{seed}|{sorted(params.items())}".encode()).digest()
        return Image.new("RGB", (int(params.get("width", 64)), int(params.get("height", 64))), tuple(digest[:3]))
