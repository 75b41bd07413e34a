"""Write a diffusers Stable Diffusion folder as an original single-file checkpoint, for tests.

The key layout is the one of the checkpoints people download: the ldm UNet and VAE
(``model.diffusion_model.*``, ``first_stage_model.*``), OpenAI CLIP in the transformers layout
(``cond_stage_model.transformer.*``, SDXL ``conditioner.embedders.0.transformer.*``) and OpenCLIP
(``cond_stage_model.model.*``, SDXL ``conditioner.embedders.1.model.*``). The mapping is written from
the two architectures' module names, so a single file loaded back must give the folder's images.

Hyperparameters no tensor shows (head counts, GroupNorm groups) go into a sibling ``.yaml``, as the
WebUI reads a checkpoint's config from beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1"}
_RESNET |= {"norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def _rename(state: dict[str, Any], old: str, new: str, table: dict[str, str] | None = None) -> dict[str, Any]:
    """The tensors under ``old.`` renamed to ``new.``, their first name parts translated by ``table``."""
    out = {}
    for key, value in state.items():
        if not key.startswith(old + "."):
            continue
        rest = "." + key[len(old) + 1 :]
        for source, target in (table or {}).items():
            if f".{source}." in rest:
                rest = rest.replace(f".{source}.", f".{target}.", 1)
                break
        out[new + rest] = value
    return out


def unet_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """A diffusers ``UNet2DConditionModel`` state dict in the ldm ``openaimodel.UNetModel`` names."""
    per_level = int(config["layers_per_block"])
    levels = len(config["block_out_channels"])
    out = {}
    for old, new in {
        "conv_in": "input_blocks.0.0",
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "add_embedding.linear_1": "label_emb.0.0",
        "add_embedding.linear_2": "label_emb.0.2",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
        "mid_block.resnets.0": "middle_block.0",
        "mid_block.attentions.0": "middle_block.1",
        "mid_block.resnets.1": "middle_block.2",
    }.items():
        out |= _rename(state, old, new, _RESNET if "resnets" in old else None)
    for level in range(levels):
        for layer in range(per_level):
            block = 1 + level * (per_level + 1) + layer
            out |= _rename(state, f"down_blocks.{level}.resnets.{layer}", f"input_blocks.{block}.0", _RESNET)
            out |= _rename(state, f"down_blocks.{level}.attentions.{layer}", f"input_blocks.{block}.1")
        downsample = f"input_blocks.{(level + 1) * (per_level + 1)}.0.op"
        out |= _rename(state, f"down_blocks.{level}.downsamplers.0.conv", downsample)
        attention = config["up_block_types"][level].startswith("CrossAttn")
        for layer in range(per_level + 1):
            block = level * (per_level + 1) + layer
            out |= _rename(state, f"up_blocks.{level}.resnets.{layer}", f"output_blocks.{block}.0", _RESNET)
            out |= _rename(state, f"up_blocks.{level}.attentions.{layer}", f"output_blocks.{block}.1")
        upsample = f"output_blocks.{level * (per_level + 1) + per_level}.{2 if attention else 1}.conv"
        out |= _rename(state, f"up_blocks.{level}.upsamplers.0.conv", upsample)
    assert len(out) == len(state), "unmapped UNet tensors"
    return {f"model.diffusion_model.{k}": v for k, v in out.items()}


def vae_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """A diffusers ``AutoencoderKL`` state dict in the ldm ``AutoencoderKL`` names (1x1 conv attention)."""
    levels = len(config["block_out_channels"])
    resnet = {"conv_shortcut": "nin_shortcut"}
    out = {}
    for part in ("encoder", "decoder"):
        for old, new in {"conv_in": "conv_in", "conv_norm_out": "norm_out", "conv_out": "conv_out"}.items():
            out |= _rename(state, f"{part}.{old}", f"{part}.{new}")
        out |= _rename(state, f"{part}.mid_block.resnets.0", f"{part}.mid.block_1", resnet)
        out |= _rename(state, f"{part}.mid_block.resnets.1", f"{part}.mid.block_2", resnet)
        for key, value in _rename(
            state, f"{part}.mid_block.attentions.0", f"{part}.mid.attn_1", _VAE_ATTENTION
        ).items():
            out[key] = value[:, :, None, None] if value.ndim == 2 else value
    for level in range(levels):
        out |= _rename(state, f"encoder.down_blocks.{level}.resnets", f"encoder.down.{level}.block", resnet)
        out |= _rename(
            state, f"encoder.down_blocks.{level}.downsamplers.0.conv", f"encoder.down.{level}.downsample.conv"
        )
        mirrored = levels - 1 - level
        out |= _rename(state, f"decoder.up_blocks.{level}.resnets", f"decoder.up.{mirrored}.block", resnet)
        out |= _rename(state, f"decoder.up_blocks.{level}.upsamplers.0.conv", f"decoder.up.{mirrored}.upsample.conv")
    for conv in ("quant_conv", "post_quant_conv"):
        out |= _rename(state, conv, conv)
    assert len(out) == len(state), "unmapped VAE tensors"
    return {f"first_stage_model.{k}": v for k, v in out.items()}


def clip_to_ldm(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """OpenAI CLIP keeps the transformers names under ``prefix``."""
    return {prefix + k: v for k, v in state.items() if not k.endswith("position_ids")}


def open_clip_to_ldm(state: dict[str, Any], prefix: str, *, extra_layer: bool) -> dict[str, Any]:
    """A transformers ``CLIPTextModel[WithProjection]`` state dict in OpenCLIP's names.

    ``extra_layer``: SD 2.x conditions on the penultimate of OpenCLIP's layers, so its checkpoints
    hold one more layer than its diffusers encoder; a copy of the last one stands for it.
    """
    import torch

    layers = sorted({int(k.split(".")[3]) for k in state if k.startswith("text_model.encoder.layers.")})
    out = {
        "token_embedding.weight": state["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": state["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": state["text_model.final_layer_norm.weight"],
        "ln_final.bias": state["text_model.final_layer_norm.bias"],
    }
    width = out["token_embedding.weight"].shape[1]
    projection = state.get("text_projection.weight")
    out["text_projection"] = projection.T.contiguous() if projection is not None else torch.eye(width)
    for layer in layers:
        old = f"text_model.encoder.layers.{layer}"
        new = f"transformer.resblocks.{layer}"
        for kind in ("weight", "bias"):
            q, k, v = (state[f"{old}.self_attn.{p}_proj.{kind}"] for p in "qkv")
            out[f"{new}.attn.in_proj_{kind}"] = torch.cat([q, k, v])
        renamed = _rename(state, old, new, _OPEN_CLIP_LAYER)
        out |= {k: v for k, v in renamed.items() if ".self_attn." not in k}
    if extra_layer:
        last, copy = (f"transformer.resblocks.{n}." for n in (layers[-1], layers[-1] + 1))
        out |= {k.replace(last, copy): v.clone() for k, v in out.items() if k.startswith(last)}
    return {prefix + k: v for k, v in out.items()}


def folder_to_ldm(folder: Path, *, ldm_keys: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """The single-file state dict of a diffusers folder, and the sibling ``.yaml`` content it needs.

    ``ldm_keys``: say what ldm config keys can say (head count, scale factor, parameterization) with
    them, as a WebUI config does; else only in the ``diffusers`` mapping, which decides no prediction type.
    """
    from safetensors.torch import load_file

    def component(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        weights = next((folder / name).glob("*.safetensors"))
        return load_file(weights), json.loads((folder / name / "config.json").read_text(encoding="utf-8"))

    unet, unet_config = component("unet")
    vae, vae_config = component("vae")
    text, text_config = component("text_encoder")
    state = unet_to_ldm(unet, unet_config) | vae_to_ldm(vae, vae_config)
    diffusers = {
        "unet": {"norm_num_groups": unet_config["norm_num_groups"]},
        "vae": {"norm_num_groups": vae_config["norm_num_groups"]},
        "text_encoder": {"num_attention_heads": text_config["num_attention_heads"]},
    }
    if (folder / "text_encoder_2").is_dir():
        text_2, text_2_config = component("text_encoder_2")
        state |= clip_to_ldm(text, "conditioner.embedders.0.transformer.")
        state |= open_clip_to_ldm(text_2, "conditioner.embedders.1.model.", extra_layer=False)
        diffusers["text_encoder_2"] = {"num_attention_heads": text_2_config["num_attention_heads"]}
    elif text_config["hidden_act"] == "gelu":
        state |= open_clip_to_ldm(text, "cond_stage_model.model.", extra_layer=True)
    else:
        state |= clip_to_ldm(text, "cond_stage_model.transformer.")
    prediction = json.loads((folder / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
    if not ldm_keys:
        diffusers["unet"]["attention_head_dim"] = unet_config["attention_head_dim"]
        diffusers["vae"]["scaling_factor"] = vae_config["scaling_factor"]
        return state, {"diffusers": diffusers}
    heads = unet_config["attention_head_dim"]
    widths = unet_config["block_out_channels"]
    if isinstance(heads, int):
        unet_params = {"num_heads": heads}
    else:
        unet_params = {"num_head_channels": widths[0] // heads[0]}
        assert all(w // h == widths[0] // heads[0] for w, h in zip(widths, heads, strict=True))
    params: dict[str, Any] = {"scale_factor": vae_config["scaling_factor"], "unet_config": {"params": unet_params}}
    if prediction.get("prediction_type") == "v_prediction":
        params["parameterization"] = "v"
    return state, {"model": {"params": params}, "diffusers": diffusers}


def write_checkpoint(
    folder: Path, path: Path, *, ldm_keys: bool = True, change: dict[str, float] | None = None
) -> Path:
    """Save ``folder`` as ``path`` (``.safetensors``, or ``.ckpt`` as ``{"state_dict": ...}``) with its ``.yaml``.

    ``change``: values added to tensors, by single-file name.
    """
    import torch
    import yaml
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state, config = folder_to_ldm(folder, ldm_keys=ldm_keys)
    for key, delta in (change or {}).items():
        state[key] = state[key] + delta
    state = {k: v.contiguous() for k, v in state.items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state, "global_step": 0}, path)
    path.with_suffix(".yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
