"""Boolean attention masks: ``True`` means "may attend".

Every mask here broadcasts to ``(B, H, T, S)``:

    B batch, H heads, T query (target) length, S key (source) length.
"""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(tokens: Tensor, pad_id: int) -> Tensor:
    """Keys that are real tokens, as ``(B, 1, 1, S)`` from token ids ``(B, S)``."""
    if tokens.dim() != 2:
        raise ValueError(f"padding_mask expects token ids of shape (B, S), got {tuple(tokens.shape)}")
    return (tokens != pad_id)[:, None, None, :]  # (B, 1, 1, S)


def lengths_mask(lengths: Tensor, max_length: int) -> Tensor:
    """Keys before each sequence's length, as ``(B, 1, 1, S)`` from lengths ``(B,)``."""
    positions = torch.arange(max_length, device=lengths.device)  # (S,)
    return (positions[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, S)


def causal_mask(query_length: int, key_length: int | None = None, *, device: torch.device | None = None) -> Tensor:
    """Each query sees itself and earlier keys, as ``(T, S)``.

    When there are more keys than queries (incremental decoding with a cache of
    ``S - T`` earlier positions), query ``i`` sits at absolute position ``S - T + i``.
    """
    key_length = query_length if key_length is None else key_length
    if key_length < query_length:
        raise ValueError(f"causal_mask needs at least as many keys as queries, got T={query_length}, S={key_length}")
    offset = key_length - query_length
    q_pos = torch.arange(query_length, device=device)[:, None] + offset  # (T, 1)
    k_pos = torch.arange(key_length, device=device)[None, :]  # (1, S)
    return k_pos <= q_pos  # (T, S)


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """Logical AND of the masks given (``None`` ones are skipped), broadcast together."""
    result: Tensor | None = None
    for mask in masks:
        if mask is None:
            continue
        if mask.dtype != torch.bool:
            raise ValueError(f"attention masks must be boolean (True = may attend), got {mask.dtype}")
        result = mask if result is None else result & mask
    return result


def padding_and_causal_mask(tokens: Tensor, pad_id: int) -> Tensor:
    """Padding and causal masks together, as ``(B, 1, T, T)``."""
    mask = combine_masks(padding_mask(tokens, pad_id), causal_mask(tokens.shape[1], device=tokens.device))
    assert mask is not None
    return mask
