"""A randomly initialised Stable Diffusion model, built locally, for tests, demos and benchmarks.

Nothing here downloads anything: the weights come from a fixed torch seed and the CLIP tokenizer's
vocabulary and merges are generated from a small built-in word list. The "tiny" model has the SD 1.x
layout (UNet, VAE with an 8x down-scaling, CLIP text encoder, scheduler) at a fraction of the width,
so a 64x64 image takes milliseconds on a CPU; "sd15" has the real SD 1.5 dimensions and only serves
to measure speed on a GPU. The tiny model's images are soft coloured shapes, not pictures; its
weights are random but shaped (see ``_boost_cross_attention``, ``_linear_unet_output`` and
``_smooth_decoder``) so that the prompt, CFG scale, seed, steps and sampler each visibly change them,
and they depend on every sampling parameter exactly as a real model's would.

torch, diffusers and transformers are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TINY_MODEL_NAME = "tiny-sd-v1"
FORMAT_VERSION = 2
"""Bump when the built model changes, so cached copies are rebuilt."""
MARKER_FILE = "sd_sweep_tiny_model.json"
CACHE_ENV = "SD_SWEEP_CACHE"
SIZES = ("tiny", "sd15")

_NORM_NOISE = 0.1
_CROSS_ATTENTION_GAIN = 8.0
_CROSS_ATTENTION_SHARPNESS = 8.0
_UNET_CONSTANT = 10.0
_PREDICTION_GAIN = 4.0
_DECODER_CONSTANT = 20.0
_LATENT_TO_FEATURES = 0.5
_FEATURES_TO_RGB = 0.3
_MAX_MERGES = 486
"""512 byte-level tokens + these merges + 2 special tokens keeps the tiny vocabulary at <= 1000."""

_CORPUS_TEXT = """
a an the of and with in on at by for from to under over near behind between into photo photograph
picture painting drawing sketch portrait landscape render illustration cat dog bird horse fox wolf
lion tiger bear rabbit fish dragon robot person woman man child red orange yellow green blue purple
pink black white gray grey brown golden silver sky sun moon star cloud cloudy rain snow storm fog
night day sunset sunrise morning evening tree forest flower garden field mountain river lake sea
ocean beach desert island city street house castle tower bridge room window door road car ship train
city village beautiful detailed highly sharp focus soft light lighting dramatic cinematic studio
masterpiece best quality high low worst blurry ugly bad anatomy extra fingers watermark text
realistic photorealistic anime cartoon oil watercolor digital art style artstation trending old
young small large big tiny huge happy sad dark bright colorful vivid pastel wearing hat dress shirt
jacket glasses hair eyes face smile standing sitting running flying
"""
"""Words the tokenizer's merges are learnt from: common prompt vocabulary, so prompts split into few tokens."""


def default_model_dir() -> Path:
    """Where the tiny model is cached: ``$SD_SWEEP_CACHE``, else the user's cache folder."""
    root = os.environ.get(CACHE_ENV)
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "sd-sweep"
    return base / TINY_MODEL_NAME


def ensure_tiny_model(cache_dir: str | Path | None = None) -> Path:
    """Return the folder of the cached tiny model, building it first if it is missing or outdated.

    The model is built into a temporary sibling folder and renamed into place, so a reader never
    sees a half-written model and two processes building at once both end up with one good copy.
    """
    target = Path(cache_dir) if cache_dir is not None else default_model_dir()
    if _marker_matches(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        building.chmod(0o755)
        build_tiny_pipeline_dir(building, seed=0, size="tiny")
        _publish(building, target)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    if not _marker_matches(target):
        msg = f"could not build the tiny model into {target}"
        raise RuntimeError(msg)
    return target


def build_tiny_pipeline_dir(target: str | Path, *, seed: int = 0, size: str = "tiny") -> Path:
    """Build a randomly initialised SD-architecture pipeline and save it as a diffusers folder.

    The same ``seed`` and ``size`` give byte-identical weights (with the same torch, diffusers and
    transformers versions, whose initialisation code decides how the random numbers are used).
    ``target`` is created if needed; files already in it are overwritten. ``size="sd15"`` is saved
    in float16 (about 2 GB).
    """
    if size not in SIZES:
        msg = f"size must be one of {SIZES}, got {size!r}"
        raise ValueError(msg)
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    configs = _configs(size)

    with tempfile.TemporaryDirectory() as tok_dir, quiet_hf_output():
        vocab, merges = _tokenizer_files(tok_dir)
        tokenizer = CLIPTokenizer.from_pretrained(tok_dir, model_max_length=77)
        special = {
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        }
        text_config = CLIPTextConfig(**{**configs["text_encoder"], **special})
        text_config.vocab_size = max(text_config.vocab_size, len(vocab))

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet = UNet2DConditionModel(**configs["unet"])
            vae = AutoencoderKL(**configs["vae"])
            text_encoder = CLIPTextModel(text_config)
            _shape_weights(unet, vae, [text_encoder])

        if size == "sd15":
            unet, vae, text_encoder = unet.half(), vae.half(), text_encoder.half()
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=PNDMScheduler(**configs["scheduler"]),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(target, safe_serialization=True)
    (target / MARKER_FILE).write_text(
        json.dumps({"format": FORMAT_VERSION, "seed": seed, "size": size, "merges": len(merges)}, sort_keys=True),
        encoding="utf-8",
    )
    return target


@contextmanager
def quiet_hf_output() -> Iterator[None]:
    """Silence diffusers' and transformers' info logs and progress bars while loading or saving."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    saved = []
    for module in (diffusers_logging, transformers_logging):
        saved.append((module, module.get_verbosity(), module.is_progress_bar_enabled()))
        module.set_verbosity_error()
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module, verbosity, bars in saved:
            module.set_verbosity(verbosity)
            if bars:
                module.enable_progress_bar()


def _marker_matches(folder: Path) -> bool:
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("format") == FORMAT_VERSION and marker.get("size") == "tiny" and marker.get("seed") == 0


def _publish(built: Path, target: Path) -> None:
    """Move ``built`` to ``target``; an outdated ``target`` is moved aside first.

    Renaming refuses to replace a non-empty folder, so when another process published first,
    its copy wins and ours is discarded by the caller.
    """
    if target.exists() and not _marker_matches(target):
        stale = target.with_name(f".{target.name}.stale-{uuid.uuid4().hex}")
        try:
            target.rename(stale)
        except OSError:
            pass
        else:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        built.rename(target)
    except OSError:
        if not _marker_matches(target):
            raise


def _configs(size: str) -> dict[str, dict[str, Any]]:
    scheduler = {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "set_alpha_to_one": False,
        "skip_prk_steps": True,
        "steps_offset": 1,
    }
    if size == "sd15":
        return {
            "unet": {
                "sample_size": 64,
                "in_channels": 4,
                "out_channels": 4,
                "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                "block_out_channels": (320, 640, 1280, 1280),
                "layers_per_block": 2,
                "cross_attention_dim": 768,
                "attention_head_dim": 8,
                "norm_num_groups": 32,
            },
            "vae": {
                "in_channels": 3,
                "out_channels": 3,
                "down_block_types": ("DownEncoderBlock2D",) * 4,
                "up_block_types": ("UpDecoderBlock2D",) * 4,
                "block_out_channels": (128, 256, 512, 512),
                "layers_per_block": 2,
                "latent_channels": 4,
                "norm_num_groups": 32,
                "sample_size": 512,
                "scaling_factor": 0.18215,
            },
            "text_encoder": {
                "vocab_size": 49408,
                "hidden_size": 768,
                "intermediate_size": 3072,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "max_position_embeddings": 77,
                "projection_dim": 768,
                "hidden_act": "quick_gelu",
            },
            "scheduler": scheduler,
        }
    return {
        "unet": {
            "sample_size": 8,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
            "block_out_channels": (32, 64),
            "layers_per_block": 1,
            "cross_attention_dim": 32,
            "attention_head_dim": 8,
            "norm_num_groups": 8,
        },
        "vae": {
            "in_channels": 3,
            "out_channels": 3,
            "down_block_types": ("DownEncoderBlock2D",) * 4,
            "up_block_types": ("UpDecoderBlock2D",) * 4,
            "block_out_channels": (8, 16, 16, 16),
            "layers_per_block": 1,
            "latent_channels": 4,
            "norm_num_groups": 1,  # see _smooth_decoder
            "sample_size": 64,
            "scaling_factor": 0.18215,
        },
        "text_encoder": {
            "vocab_size": 1000,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "projection_dim": 32,
            "hidden_act": "quick_gelu",
        },
        "scheduler": scheduler,
    }


def _perturb_norms(model: Any) -> None:
    """Give norm layers non-trivial affine weights so random models produce varied, finite output."""
    import torch

    norm_types = (torch.nn.LayerNorm, torch.nn.GroupNorm)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, norm_types) and getattr(module, "weight", None) is not None:
                module.weight.copy_(1.0 + _NORM_NOISE * torch.randn_like(module.weight))
                if module.bias is not None:
                    module.bias.copy_(_NORM_NOISE * torch.randn_like(module.bias))


def _shape_weights(unet: Any, vae: Any, text_encoders: list[Any]) -> None:
    """Shape a tiny model's random weights so its images change visibly with every parameter."""
    for model in (unet, vae, *text_encoders):
        _perturb_norms(model)
    _boost_cross_attention(unet)
    _linear_unet_output(unet)
    _smooth_decoder(vae)


def _boost_cross_attention(unet: Any) -> None:
    """Scale the UNet's cross-attention so the prompt visibly changes the image.

    At random init the text conditioning is a faint signal next to the latent's own path, and each
    image position attends to all tokens about equally, so a prompt only tints the whole image
    slightly. Larger outputs make the text a main part of the prediction; larger keys make each
    position attend to a few tokens, so a different word moves colours around.
    """
    import torch

    with torch.no_grad():
        for name, module in unet.named_modules():
            if name.endswith("attn2"):
                module.to_out[0].weight.mul_(_CROSS_ATTENTION_GAIN)
                module.to_k.weight.mul_(_CROSS_ATTENTION_SHARPNESS)


def _linear_unet_output(unet: Any) -> None:
    """Let the UNet's prediction grow with its last features instead of being normalised away.

    The group norm before the UNet's output rescales each group of channels to unit variance, so
    the prediction for a prompt and for the negative prompt are about as large, and CFG, which
    scales their difference, hardly shows. One channel of each group is given a large constant in the
    last residual block: the group's variance is then about fixed and the norm about linear.
    """
    import torch

    groups = unet.conv_norm_out.num_groups
    channels = unet.conv_norm_out.num_channels
    constant = torch.arange(channels) % (channels // groups) == channels // groups - 1
    last = unet.up_blocks[-1]
    resnet = last.resnets[-1]
    with torch.no_grad():
        resnet.conv2.weight[constant] = 0.0
        resnet.conv2.bias[constant] = _UNET_CONSTANT
        if resnet.conv_shortcut is not None:
            resnet.conv_shortcut.weight[constant] = 0.0
            resnet.conv_shortcut.bias[constant] = 0.0
        for attention in getattr(last, "attentions", None) or ():
            attention.proj_out.weight[constant] = 0.0
            attention.proj_out.bias[constant] = 0.0
        per_group = channels // groups
        # a group of c channels, one of them K: mean K / c, standard deviation K * sqrt(c - 1) / c
        spread = _UNET_CONSTANT * (per_group - 1) ** 0.5 / per_group
        unet.conv_norm_out.weight.copy_(torch.where(constant, 0.0, spread))
        unet.conv_norm_out.bias.copy_(torch.where(constant, 0.0, _UNET_CONSTANT / per_group))
        unet.conv_out.weight[:, constant] = 0.0
        # about unit variance, as a trained model's noise prediction, instead of a quarter of it
        unet.conv_out.weight.mul_(_PREDICTION_GAIN)
        unet.conv_out.bias.mul_(_PREDICTION_GAIN)


def _smooth_decoder(vae: Any) -> None:
    """Make the VAE decoder paint each latent pixel as a soft patch of colour.

    A randomly initialised decoder draws its own fine, high-contrast texture over every image, the
    same whatever the latent, so images of different prompts or CFG scales look alike. Here its
    residual blocks and attention pass their input through unchanged, each 2x upsampling is followed
    by a blur, and random 1x1 maps turn the 4 latent channels into colours: the picture is the
    latent, enlarged and smoothed. One feature channel carries a large constant, so the group norm
    before the output (one group in the tiny VAE) divides by about the same number whatever the
    latent: a stronger latent gives stronger colours, as with a trained VAE.
    """
    import torch

    decoder = vae.decoder
    blur = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
    with torch.no_grad():
        vae.post_quant_conv.weight.copy_(torch.eye(vae.post_quant_conv.weight.shape[0])[:, :, None, None])
        vae.post_quant_conv.bias.zero_()
        for name, module in decoder.named_modules():
            if name.endswith(("conv2", "to_out.0")):
                module.weight.zero_()
                module.bias.zero_()
            elif name.endswith("upsamplers.0.conv"):
                channels = module.weight.shape[0]
                module.weight.copy_(torch.eye(channels)[:, :, None, None] * blur)
                module.bias.zero_()
        features, latent = decoder.conv_in.weight.shape[:2]
        to_features = torch.randn(features, latent) * _LATENT_TO_FEATURES
        to_features[-1] = 0.0
        _centre_tap(decoder.conv_in, to_features)
        decoder.conv_in.bias[-1] = _DECODER_CONSTANT
        shortcut = decoder.up_blocks[-1].resnets[0].conv_shortcut
        narrow, wide = shortcut.weight.shape[:2]
        mixing = torch.zeros(narrow, wide)
        mixing[:-1, :-1] = torch.randn(narrow - 1, wide - 1) / (wide - 1) ** 0.5
        mixing[-1, -1] = 1.0
        shortcut.weight.copy_(mixing[:, :, None, None])
        shortcut.bias.zero_()
        to_rgb = torch.randn(*decoder.conv_out.weight.shape[:2]) * _FEATURES_TO_RGB
        to_rgb[:, -1] = 0.0
        _centre_tap(decoder.conv_out, to_rgb)
        decoder.conv_norm_out.weight.fill_(1.0)
        decoder.conv_norm_out.bias.zero_()


def _centre_tap(conv: Any, matrix: Any) -> None:
    """Set a 3x3 convolution to the 1x1 map ``matrix`` (out x in), bias zero."""
    conv.weight.zero_()
    conv.weight[:, :, 1, 1] = matrix
    conv.bias.zero_()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\xa1"), ord("\xac") + 1))
        + list(range(ord("\xae"), ord("\xff") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def _train_merges(words: list[str], max_merges: int) -> list[tuple[str, str]]:
    """Byte-pair merges learnt from ``words``; ties go to the lexicographically smallest pair."""
    byte_map = _bytes_to_unicode()
    counts: dict[tuple[str, ...], int] = {}
    for word in words:
        symbols = [byte_map[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        key = tuple(symbols)
        counts[key] = counts.get(key, 0) + 1
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs: dict[tuple[str, str], int] = {}
        for symbols, count in counts.items():
            for pair in itertools.pairwise(symbols):
                pairs[pair] = pairs.get(pair, 0) + count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: dict[tuple[str, ...], int] = {}
        for symbols, count in counts.items():
            out: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        counts = merged
    return merges


def _tokenizer_files(folder: str | Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Write a CLIP-style ``vocab.json`` and ``merges.txt`` into ``folder``."""
    folder = Path(folder)
    base = list(_bytes_to_unicode().values())
    merges = _train_merges(_CORPUS_TEXT.split(), _MAX_MERGES)
    tokens = base + [t + "</w>" for t in base]
    seen = set(tokens)
    for left, right in merges:
        token = left + right
        if token not in seen:
            tokens.append(token)
            seen.add(token)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{left} {right}" for left, right in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vocab, merges


def tiny_family_configs(family: str) -> dict[str, dict[str, Any]]:
    """The tiny configs of an SD 2.x ("sd2") or SDXL ("sdxl") architecture (SD 1.x: ``_configs("tiny")``).

    SD 2.x differs from SD 1.x by its OpenCLIP-style text encoder ("gelu") and linear attention
    projections; SDXL by two text encoders whose features are concatenated, and the pooled text and
    image size ("text_time") added to the UNet's time embedding.
    """
    base = _configs("tiny")
    if family == "sd2":
        return {
            **base,
            "unet": {**base["unet"], "use_linear_projection": True},
            "text_encoder": {**base["text_encoder"], "hidden_act": "gelu"},
        }
    if family == "sdxl":
        time_dim = 8
        return {
            **base,
            "unet": {
                "sample_size": 8,
                "in_channels": 4,
                "out_channels": 4,
                "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
                "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
                "block_out_channels": (32, 64),
                "layers_per_block": 1,
                "transformer_layers_per_block": (1, 1),
                "cross_attention_dim": 64,
                "attention_head_dim": (2, 4),
                "use_linear_projection": True,
                "addition_embed_type": "text_time",
                "addition_time_embed_dim": time_dim,
                "projection_class_embeddings_input_dim": 6 * time_dim + 32,
                "norm_num_groups": 8,
            },
            "vae": {**base["vae"], "scaling_factor": 0.13025},
            "text_encoder_2": {**base["text_encoder"], "hidden_act": "gelu"},
        }
    msg = f"family must be 'sd2' or 'sdxl', got {family!r}"
    raise ValueError(msg)


def build_tiny_family_dir(target: str | Path, family: str, *, seed: int = 0) -> Path:
    """Build a tiny random pipeline of ``family`` ("sd1", "sd2" or "sdxl") as a diffusers folder."""
    if family == "sd1":
        return build_tiny_pipeline_dir(target, seed=seed, size="tiny")
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        PNDMScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    configs = tiny_family_configs(family)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tok_dir, quiet_hf_output():
        vocab, _ = _tokenizer_files(tok_dir)
        special = {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]}
        tokenizer = CLIPTokenizer.from_pretrained(tok_dir, model_max_length=77)
        # OpenCLIP pads with "!" (id 0), as SD 2.x and SDXL's second tokenizer do.
        open_tokenizer = CLIPTokenizer.from_pretrained(tok_dir, model_max_length=77, pad_token="!")

        def text_config(name: str, pad: int) -> CLIPTextConfig:
            config = CLIPTextConfig(**{**configs[name], **special, "pad_token_id": pad})
            config.vocab_size = max(config.vocab_size, len(vocab))
            return config

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet = UNet2DConditionModel(**configs["unet"])
            vae = AutoencoderKL(**configs["vae"])
            models = [unet, vae]
            if family == "sd2":
                text_encoder = CLIPTextModel(text_config("text_encoder", 0))
                models.append(text_encoder)
            else:
                text_encoder = CLIPTextModel(text_config("text_encoder", special["eos_token_id"]))
                text_encoder_2 = CLIPTextModelWithProjection(text_config("text_encoder_2", 0))
                models += [text_encoder, text_encoder_2]
            _shape_weights(unet, vae, models[2:])
        if family == "sd2":
            pipe: Any = StableDiffusionPipeline(
                vae=vae,
                text_encoder=text_encoder,
                tokenizer=open_tokenizer,
                unet=unet,
                scheduler=PNDMScheduler(**configs["scheduler"]),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        else:
            scheduler = {
                k: v for k, v in configs["scheduler"].items() if k not in ("skip_prk_steps", "set_alpha_to_one")
            }
            pipe = StableDiffusionXLPipeline(
                vae=vae,
                text_encoder=text_encoder,
                text_encoder_2=text_encoder_2,
                tokenizer=tokenizer,
                tokenizer_2=open_tokenizer,
                unet=unet,
                scheduler=EulerDiscreteScheduler(**scheduler, timestep_spacing="leading"),
            )
        pipe.save_pretrained(target, safe_serialization=True)
    (target / MARKER_FILE).write_text(
        json.dumps({"format": FORMAT_VERSION, "seed": seed, "size": "tiny", "family": family}, sort_keys=True),
        encoding="utf-8",
    )
    return target
