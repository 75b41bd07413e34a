"""Prompt conditioning as the WebUI makes it: weighted, chunked CLIP embeddings.

A prompt is read with the WebUI's attention syntax (``prompt_syntax.parse_attention``), each piece
tokenized on its own, and the tokens cut into chunks of 75: at ``BREAK``, and when a chunk is full
(moving the cut back to just after the last comma when that comma is among the last 20 tokens).
Each chunk is wrapped in BOS/EOS, padded to 77 and encoded separately; the chunks' embeddings are
concatenated, so a prompt of 76 to 150 tokens gives a (154, dim) conditioning.

Weights follow the WebUI's "Original" emphasis: each token's embedding is multiplied by its weight,
then the whole chunk is rescaled so its mean is what it was before weighting.

torch is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sd_sweep.backends.diffusers.prompt_syntax import parse_attention

if TYPE_CHECKING:
    import torch

CHUNK_TOKENS = 75
"""Prompt tokens per chunk; with BOS and EOS a chunk is 77 tokens, CLIP's context."""
COMMA_BACKTRACK = 20
"""The WebUI's default "comma padding backtrack": how far back a full chunk looks for a comma to cut at."""


@dataclass(frozen=True)
class Chunk:
    """77 token ids (BOS, prompt tokens, EOS, padding) and the attention weight of each."""

    tokens: tuple[int, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class EncoderSpec:
    """How one text encoder's output becomes conditioning.

    ``layer``: 0 takes the last layer through the final layer norm (SD 1.x and 2.x, whose diffusers
    text encoder already ends at the WebUI's layer); a negative index takes that hidden state
    without the final norm (SDXL's penultimate layer, -2). ``pooled``: this encoder's projected
    pooled output is the SDXL "vector" conditioning.
    """

    tokenizer: Any
    encoder: Any
    layer: int = 0
    pooled: bool = False


def chunk_prompt(tokenizer: Any, prompt: str) -> list[Chunk]:
    """The prompt's 77-token chunks; always at least one."""
    bos, eos = int(tokenizer.bos_token_id), int(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id
    pad = eos if pad is None else int(pad)
    comma = tokenizer.get_vocab().get(",</w>", -1)
    pieces = parse_attention(prompt)
    texts = [p.text for p in pieces if not p.is_break]
    encoded = iter(tokenizer(texts, add_special_tokens=False, truncation=False).input_ids if texts else [])

    chunks: list[Chunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal tokens, weights, last_comma
        fill = CHUNK_TOKENS - len(tokens)
        chunks.append(
            Chunk(
                (bos, *tokens, eos, *[pad] * fill),
                (1.0, *weights, *[1.0] * (fill + 1)),
            )
        )
        tokens, weights, last_comma = [], [], -1

    for piece in pieces:
        if piece.is_break:
            close()
            continue
        for token in next(encoded):
            if token == comma:
                last_comma = len(tokens)
            elif len(tokens) == CHUNK_TOKENS and last_comma != -1 and len(tokens) - last_comma <= COMMA_BACKTRACK:
                cut = last_comma + 1
                moved, moved_weights = tokens[cut:], weights[cut:]
                tokens, weights = tokens[:cut], weights[:cut]
                close()
                tokens, weights = moved, moved_weights
            if len(tokens) == CHUNK_TOKENS:
                close()
            tokens.append(int(token))
            weights.append(piece.weight)
    if tokens or not chunks:
        close()
    return chunks


def encode_chunk(spec: EncoderSpec, chunk: Chunk, clip_skip: int, device: Any) -> tuple[torch.Tensor, Any]:
    """One chunk's (1, 77, dim) embeddings, weighted, and the pooled output when ``spec.pooled``.

    ``clip_skip`` is the WebUI's (1 = the last layer): each step back takes one layer earlier.
    """
    import torch

    encoder = spec.encoder
    ids = torch.tensor([chunk.tokens], dtype=torch.long, device=device)
    out = encoder(ids, output_hidden_states=True)
    skip = max(int(clip_skip), 1) - 1
    if spec.layer == 0:
        if skip == 0:
            hidden = out.last_hidden_state
        else:
            final_norm = getattr(encoder, "text_model", encoder).final_layer_norm
            hidden = final_norm(out.hidden_states[-(skip + 1)])
    else:
        hidden = out.hidden_states[spec.layer - skip]
    hidden = hidden.float()
    weights = torch.tensor(chunk.weights, dtype=hidden.dtype, device=hidden.device)
    if bool((weights != 1.0).any()):
        mean = hidden.mean()
        hidden = hidden * weights[None, :, None]
        hidden = hidden * (mean / hidden.mean())
    pooled = out.text_embeds if spec.pooled else None
    return hidden, pooled


def encode_prompts(
    specs: list[EncoderSpec], prompts: list[str], clip_skip: int, device: Any, dtype: Any, *, chunks: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (batch, 77 * n, dim) conditioning of ``prompts`` and the pooled one (None without a pooled encoder).

    Every prompt is brought to the same number of chunks (at least ``chunks``) by appending the
    encoding of an empty chunk, as the WebUI pads the prompts of a batch.
    """
    import torch

    per_prompt = [[chunk_prompt(spec.tokenizer, p) for spec in specs] for p in prompts]
    count = max([chunks, *(len(c[0]) for c in per_prompt)])
    rows, pooled_rows = [], []
    for prompt_chunks in per_prompt:
        parts = []
        pooled = None
        for index in range(count):
            features = []
            for spec, spec_chunks in zip(specs, prompt_chunks):
                chunk = spec_chunks[index] if index < len(spec_chunks) else chunk_prompt(spec.tokenizer, "")[0]
                hidden, chunk_pooled = encode_chunk(spec, chunk, clip_skip, device)
                features.append(hidden)
                if index == 0 and chunk_pooled is not None:
                    pooled = chunk_pooled
            parts.append(torch.cat(features, dim=-1))
        rows.append(torch.cat(parts, dim=1))
        pooled_rows.append(pooled)
    embeds = torch.cat(rows, dim=0).to(device=device, dtype=dtype)
    if any(p is None for p in pooled_rows):
        return embeds, None
    return embeds, torch.cat(pooled_rows, dim=0).to(device=device, dtype=dtype)


def chunk_count(tokenizer: Any, prompts: list[str]) -> int:
    return max(len(chunk_prompt(tokenizer, p)) for p in prompts)


__all__ = ["CHUNK_TOKENS", "COMMA_BACKTRACK", "Chunk", "EncoderSpec", "chunk_count", "chunk_prompt", "encode_prompts"]
