"""Scaled dot-product attention: the seeds' four steps.

"Attention Is All You Need", section 3.2.1: Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(d_k)) V.

Shapes: ``q`` is ``(..., T, Dh)``, ``k`` and ``v`` are ``(..., S, Dh)``; the mask is boolean,
``True`` = may attend, and broadcasts to ``(..., T, S)``.

Two paths compute the same thing. The explicit one follows the recipe step by step and can hand
every step to a recorder; the fused one calls PyTorch's kernel, which never builds the (T, S)
matrix and so needs memory linear in the length. The fused path is taken whenever neither the
weights nor a trace are asked for.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from selfattention.attention.recording import Recorder


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    dropout_p: float = 0.0,
    need_weights: bool = False,
    recorder: Recorder | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Return ``(Z, weights)``; ``weights`` is ``None`` unless asked for (or recorded).

    A query row whose mask allows nothing gets a zero output (and zero gradients), never NaN.
    """
    _check_shapes(q, k, v, mask)
    if not need_weights and recorder is None:
        return _fused(q, k, v, mask, dropout_p), None
    return explicit_attention(q, k, v, mask, dropout_p=dropout_p, recorder=recorder)


def explicit_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    dropout_p: float = 0.0,
    recorder: Recorder | None = None,
) -> tuple[Tensor, Tensor]:
    """The seeds' recipe, one step per line; returns ``(Z, weights)``."""
    d_k = q.shape[-1]
    # Step 1: similarity scores, every query against every key.
    scores = q @ k.transpose(-2, -1)  # (..., T, S)
    # Step 2: divide by sqrt(d_k) to keep the softmax out of its flat regions.
    scaled_scores = scores / math.sqrt(d_k)
    # Step 3: row-wise softmax turns scores into weights that sum to 1.
    weights = _masked_softmax(scaled_scores, mask)
    # Step 4: each output is the weighted sum of the value vectors.
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights
    output = dropped @ v  # (..., T, Dh)
    if recorder is not None:
        recorder.record("scores", scores)
        recorder.record("scaled_scores", scaled_scores)
        recorder.record("weights", weights)
        recorder.record("output", output)
    return output, weights


def _masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return torch.softmax(scores, dim=-1)
    # A finite fill keeps rows that may attend to nothing finite (uniform); those rows are then
    # zeroed, and masked_fill passes no gradient to the positions it overwrites.
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1).masked_fill(~mask, 0.0)


def _fused(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    # PyTorch's kernel returns NaN for a row that may attend to nothing: let such rows attend
    # everywhere (a finite result), then zero them, which also zeroes their gradients.
    allowed_any = mask.any(dim=-1, keepdim=True)  # (..., T, 1)
    safe_mask = mask | ~allowed_any
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=safe_mask, dropout_p=dropout_p)
    return output * allowed_any.to(output.dtype)


def _check_shapes(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> None:
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(
            f"attention expects q, k, v of shape (..., length, Dh), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys must have the same width Dh, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values must have the same length S, got {k.shape[-2]} and {v.shape[-2]}")
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"the attention mask must be boolean (True = may attend), got {mask.dtype}")
        target = (*torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]), q.shape[-2], k.shape[-2])
        try:
            fits = torch.broadcast_shapes(mask.shape, target) == torch.Size(target)
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape {target}")
