"""A sweep run inside the WebUI process: the session that restores the user's settings, and stand-in ``p``s."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sd_sweep.core.run import ObserverGroup, RunObserver, RunResult, run_sweep

if TYPE_CHECKING:
    from pathlib import Path

    from sd_sweep.core.plan import Plan
    from sd_sweep.core.spec import Spec


def run_in_session(
    backend: Any, plan: Plan, run_dir: Path, stop: Any, observer: RunObserver | None = None
) -> RunResult:
    """Run a checked ``plan`` on a WebUI backend with the Sweep settings; the user's settings are restored after.

    The WebUI's own progress (``shared.state``, the console's total bar) follows the run, whichever
    way in started it; ``observer`` gets the run's events as well. The console bar is closed after
    the run, as the WebUI's txt2img and img2img close theirs, so the next run's bar starts at 0.
    """
    from modules import shared
    from sd_sweep.backends.webui import settings
    from sd_sweep.backends.webui.progress import WebUIProgress

    total_tqdm = getattr(shared, "total_tqdm", None)
    progress = WebUIProgress(shared.state, backend.sampler_runs, total_tqdm)
    try:
        with backend.session(uses_models=touches_models(plan.spec)):
            return run_sweep(
                plan.spec,
                backend,
                run_dir,
                plan=plan,
                observer=progress if observer is None else ObserverGroup(observer, progress),
                stop=stop,
                pixel_budget=int(settings.get("sweep_grid_pixel_budget")),
            )
    finally:
        if total_tqdm is not None:
            total_tqdm.clear()


def touches_models(spec: Spec) -> bool:
    """Whether the sweep may switch checkpoint or VAE (X/Y/Z axes might), so the user's are reloaded after."""
    swept = {axis.param for axis in spec.axes}
    return bool({"checkpoint", "vae"} & (swept | set(spec.base))) or any(p.startswith("host:") for p in swept)


def template_p(spec: Spec, mode: str) -> Any:
    """A ``p`` for an API job, as the WebUI's ``/sdapi/v1`` handlers build one (no scripts run)."""
    import base64
    import io

    from PIL import Image

    from modules import processing, shared

    opts = shared.opts
    is_img2img = mode == "img2img"
    tab = "img2img" if is_img2img else "txt2img"
    kwargs: dict[str, Any] = {
        "outpath_samples": getattr(opts, "outdir_samples", "") or getattr(opts, f"outdir_{tab}_samples", ""),
        "outpath_grids": getattr(opts, "outdir_grids", "") or getattr(opts, f"outdir_{tab}_grids", ""),
        "prompt": str(spec.base.get("prompt", "")),
        "negative_prompt": str(spec.base.get("negative_prompt", "")),
        "do_not_save_grid": True,
    }
    if is_img2img:
        images = []
        for item in spec.base.get("init_images") or []:
            data = base64.b64decode(item.partition(",")[2] if item.startswith("data:") else item)
            images.append(Image.open(io.BytesIO(data)).convert("RGB"))
        kwargs["init_images"] = images
        kwargs["denoising_strength"] = spec.base.get("denoising_strength", 0.75)
        return processing.StableDiffusionProcessingImg2Img(**kwargs)
    p = processing.StableDiffusionProcessingTxt2Img(**kwargs)
    if hasattr(p, "hr_cfg"):
        p.hr_cfg = p.cfg_scale  # Forge: the hires pass follows the swept CFG, as in A1111 (its API default is 1)
    return p


class ValidationOnlyP:
    """Stands in for ``p`` while only validating (``confirm`` functions read a few fields)."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.prompt = base.get("prompt", "")
        self.negative_prompt = base.get("negative_prompt", "")
        self.steps = base.get("steps", 20)
        self.override_settings: dict[str, Any] = {}
        self.styles: list[str] = []
