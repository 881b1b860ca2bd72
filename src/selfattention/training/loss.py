"""Label-smoothed cross-entropy ("Attention Is All You Need", section 5.4: epsilon 0.1).

With smoothing ε over a vocabulary of V pieces, the target distribution puts 1 - ε on the right
piece and ε / V on every piece, so the loss of one position is

    (1 - ε) · (logsumexp(z) - z[target]) + ε · (logsumexp(z) - mean(z))

and its gradient with respect to the logits z is ``softmax(z) - (1 - ε) · onehot - ε / V``
(the same definition as ``torch.nn.functional.cross_entropy(label_smoothing=ε)``).

The gradient is written in one pass over the (N, V) logits instead of autograd's chain of
log-softmax, gather and mean backward passes: on a CPU, where the vocabulary-sized tensors are
limited by memory bandwidth, this halves the loss's share of a training step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class _SmoothedCrossEntropy(torch.autograd.Function):
    """Summed smoothed loss over rows of ``logits`` (N, V) with ``targets`` (N,)."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, targets: Tensor, smoothing: float) -> tuple[Tensor, Tensor]:
        log_norm = torch.logsumexp(logits, dim=-1)  # (N,)
        nll = log_norm - logits.gather(1, targets[:, None]).squeeze(1)  # (N,)
        loss = (1.0 - smoothing) * nll.sum()
        if smoothing > 0.0:
            loss = loss + smoothing * (log_norm - logits.mean(dim=-1)).sum()
        ctx.save_for_backward(logits, targets, log_norm)
        ctx.smoothing = smoothing
        ctx.mark_non_differentiable(nll)
        return loss, nll.sum()

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor, _grad_nll: Tensor) -> tuple[Tensor, None, None]:
        logits, targets, log_norm = ctx.saved_tensors
        smoothing: float = ctx.smoothing
        grad = (logits - log_norm[:, None]).exp_()  # softmax(z), (N, V)
        if smoothing > 0.0:
            grad.sub_(smoothing / logits.shape[-1])
        rows = torch.arange(grad.shape[0], device=grad.device)
        grad[rows, targets] -= 1.0 - smoothing
        return grad.mul_(grad_loss), None, None


def label_smoothed_loss(logits: Tensor, targets: Tensor, pad_id: int, smoothing: float) -> tuple[Tensor, Tensor]:
    """Summed smoothed loss (to optimise) and summed plain NLL (to report), over real tokens.

    ``logits`` (B, T, V) with ``targets`` (B, T), or already-selected rows (N, V) with (N,);
    positions holding ``pad_id`` count for nothing.
    """
    flat_logits = logits.reshape(-1, logits.shape[-1])  # (B*T, V)
    flat_targets = targets.reshape(-1)  # (B*T,)
    real = flat_targets != pad_id
    if not bool(real.all()):
        flat_logits, flat_targets = flat_logits[real], flat_targets[real]
    if flat_logits.dtype not in (torch.float32, torch.float64):  # half-precision logits: sum in float32
        flat_logits = flat_logits.float()
    loss, nll = _SmoothedCrossEntropy.apply(flat_logits, flat_targets, float(smoothing))
    return loss, nll.detach()
