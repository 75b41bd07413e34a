"""The WebUI's own parameter tables: what it applies, and how (fields of ``p`` or its API request)."""

from __future__ import annotations

from sd_sweep.core.params import HIRES_SECOND_PASS, NETWORK_TYPES

WEBUI_PARAMS = frozenset(
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
        "checkpoint",
        "vae",
        "clip_skip",
        "denoising_strength",
        "restore_faces",
        "tiling",
        "styles",
        "setting:*",
        *(f"{n}:*" for n in NETWORK_TYPES),
    }
)
"""What a WebUI applies on both tabs, in-process or over its API."""

HIRES_PARAMS = (
    "enable_hr",
    "hr_scale",
    "hr_upscaler",
    "hr_second_pass_steps",
    "hr_resize_x",
    "hr_resize_y",
    "hr_sampler_name",
    "hr_scheduler",
    "hr_prompt",
    "hr_negative_prompt",
)
"""The hires fix switch, then its settings: fields of v1.10.1's and Forge's txt2img processing object."""

HIRES_CFG = "hr_cfg"
"""Forge's hires CFG scale: applied where the host's txt2img processing object has the field."""

HIRES_CFG_REFUSAL = "this WebUI's txt2img has no hires CFG scale (hr_cfg is a field of Forge's)"

HIRES_MODULES = "hr_additional_modules"
HIRES_SAME_MODULES = ["Use same choices"]
"""Forge's hires VAE / text encoders as its UI's default sets them. Its hires pass tests
``"Use same choices" in p.hr_additional_modules``, which its default None (a ``p`` of an API request)
makes a TypeError."""

TXT2IMG_ONLY = frozenset(HIRES_PARAMS)
"""What a WebUI applies on txt2img only, in-process or over its API (and ``HIRES_CFG`` where the host has it)."""


PROCESSING_FIELDS = (
    "steps",
    "cfg_scale",
    "sampler_name",
    "scheduler",
    "width",
    "height",
    "subseed",
    "subseed_strength",
    "denoising_strength",
    "restore_faces",
    "tiling",
    *HIRES_PARAMS,
    HIRES_CFG,
)
"""Parameters that are fields of the same name on the WebUI's processing object and API request."""

SECOND_PASS_PARAMS = HIRES_SECOND_PASS & (WEBUI_PARAMS | TXT2IMG_ONLY | {HIRES_CFG})
"""What only the hires pass reads, of what the WebUI applies: cells differing only in these share their
first pass. The first pass a sweep keeps is made with the hires fix off, so the WebUI reads no hires
prompt for it (``setup_prompts`` and ``parse_extra_network_prompts`` skip them); in a plain hires
generation the hires prompts' extra networks are activated only for the hires pass."""

BATCH_EXACTNESS: dict[tuple[str, str], int | None] = {
    ("a1111", "txt2img"): 1,
    ("a1111", "hires-latent"): 1,
    ("a1111", "hires-pixel"): 106,
    ("a1111", "img2img"): 62,
    ("forge", "txt2img"): 1,
    ("forge", "hires-latent"): 1,
    ("forge", "hires-pixel"): 115,
    ("forge", "img2img"): 61,
}
"""Per host and kind of cell: the most an image of a batch of two differed from the same seed made alone.

Measured with plain ``/sdapi/v1`` calls at ``batch_size`` 2 against each seed at 1, in levels of
0-255, on CPU with random SD 1.5 weights (64x64, Euler, 3 steps; hires x2 with 2 steps at
denoising 0.5; img2img at 0.6): AUTOMATIC1111 v1.10.1 (``--no-half``) and Forge ``dfdcbab6``
(docs/webui-compatibility.md, "Batches and exact images"). Each image made alone again was
identical. A kind within ``BATCH_TOLERANCE`` shares batches; the others, and a kind or host
missing here, run their cells alone.
"""

BATCH_TOLERANCE = 2
"""Levels a batch may move a pixel and still make the same image: float rounding of the VAE decode
(txt2img moves single pixels by 1), not the other image an encode in the batch makes (50-95)."""

FIRST_PASS_EXACTNESS: dict[tuple[str, str], int] = {
    ("a1111", "hires-pixel"): 0,
    ("forge", "hires-pixel"): 0,
}
"""Per host and kind of hires cell: the most a cell continued from a kept first pass
(``p.firstpass_image``) differed from a plain generation of its infotext, in levels of 0-255.
A kind within ``BATCH_TOLERANCE`` makes each shared first pass once."""

FIRST_PASS_REFUSALS = {
    "hires-latent": "the WebUI cannot continue a latent upscaler from a kept image",
}
"""Why a kind of hires cell makes its own first pass: with a latent upscaler ``firstpass_image``
encodes the kept image again, where a plain generation upscales the first pass's own latent."""

FIRST_PASS_NOT_MEASURED = "continuing a kept first pass was not measured in this WebUI"


def batch_family(is_img2img: bool, latent_modes: frozenset[str], params: dict[str, object]) -> str:
    """``txt2img``, ``hires-latent``, ``hires-pixel`` or ``img2img``: what a batch does to a cell.

    The VAE encodes an image inside the batch for img2img's init image and a pixel upscaler's
    hires input; a hires cell that names no upscaler gets the WebUI's default latent mode.
    """
    if is_img2img:
        return "img2img"
    if not params.get("enable_hr"):
        return "txt2img"
    upscaler = params.get("hr_upscaler")
    return "hires-latent" if upscaler is None or upscaler in latent_modes else "hires-pixel"


def shares_batch(
    host: str,
    is_img2img: bool,
    latent_modes: frozenset[str],
    defaults: dict[str, object],
    params: dict[str, object],
) -> bool:
    """Whether a cell makes the same image in a batch as alone, by ``BATCH_EXACTNESS``.

    ``defaults`` are the template's hires switch and upscaler, which a cell that sets neither uses.
    """
    measured = BATCH_EXACTNESS.get((host, batch_family(is_img2img, latent_modes, {**defaults, **params})))
    return measured is not None and measured <= BATCH_TOLERANCE


def first_pass_refusal(host: str, family: str) -> str | None:
    """Why a hires cell of ``family`` makes its own first pass on ``host``; None where it continues a
    kept first pass without changing its image (``FIRST_PASS_EXACTNESS``)."""
    measured = FIRST_PASS_EXACTNESS.get((host, family))
    if measured is not None and measured <= BATCH_TOLERANCE:
        return None
    if measured is not None:
        return f"continuing a kept first pass changes the image in this WebUI (by {measured} levels)"
    return FIRST_PASS_REFUSALS.get(family, FIRST_PASS_NOT_MEASURED)


def unreused_first_pass_lines(estimate: dict[str, object]) -> list[str]:
    """``first pass not reused for 4 cells: why``: the plan's ``first_pass_not_reused``, for a dry run."""
    notes = estimate.get("first_pass_not_reused") or []
    return [
        f"first pass not reused for {note['cells']} cell{'s' if note['cells'] != 1 else ''}: {note['why']}"
        for note in notes  # type: ignore[union-attr]
    ]
