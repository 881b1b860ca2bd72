"""Label-smoothed cross-entropy ("Attention Is All You Need", section 5.4: epsilon 0.1)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def label_smoothed_loss(logits: Tensor, targets: Tensor, pad_id: int, smoothing: float) -> tuple[Tensor, Tensor]:
    """Summed smoothed loss (to optimise) and summed plain NLL (to report), over real tokens.

    ``logits`` (B, T, V), ``targets`` (B, T); positions holding ``pad_id`` count for nothing.
    """
    flat_logits = logits.reshape(-1, logits.shape[-1])  # (B*T, V)
    flat_targets = targets.reshape(-1)  # (B*T,)
    loss = F.cross_entropy(flat_logits, flat_targets, ignore_index=pad_id, label_smoothing=smoothing, reduction="sum")
    nll = F.cross_entropy(flat_logits.detach(), flat_targets, ignore_index=pad_id, reduction="sum")
    return loss, nll
