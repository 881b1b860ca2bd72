"""Views over many heads and layers: the mean over heads, and attention rollout.

Attention rollout (Abnar and Zuidema, 2020, "Quantifying Attention Flow in Transformers")
follows attention through the stack: each layer's head-averaged weights are mixed half and half
with the identity (the residual connection), rows renormalised, and the layers multiplied from
the bottom up. It estimates how much each input token contributes to each position at the top;
it is an approximation, and labelled as such wherever it is drawn.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mean_over_heads(weights: Tensor) -> Tensor:
    """``(..., H, T, S)`` to ``(..., T, S)``."""
    return weights.mean(dim=-3)


def rollout(layer_weights: list[Tensor]) -> Tensor:
    """Rollout of self-attention layers, each ``(H, T, T)``, bottom layer first; returns ``(T, T)``."""
    if not layer_weights:
        raise ValueError("rollout needs at least one layer")
    length = layer_weights[0].shape[-1]
    identity = torch.eye(length, dtype=layer_weights[0].dtype, device=layer_weights[0].device)
    result = identity
    for weights in layer_weights:
        mixed = 0.5 * mean_over_heads(weights) + 0.5 * identity  # (T, T)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        result = mixed @ result
    return result
