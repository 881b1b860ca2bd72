"""Scaled dot-product attention: the seeds' four steps.

"Attention Is All You Need", section 3.2.1: Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(d_k)) V.

Shapes: ``q`` is ``(..., T, Dh)``, ``k`` and ``v`` are ``(..., S, Dh)``; the mask is boolean,
``True`` = may attend, and broadcasts to ``(..., T, S)``.

Two paths compute the same thing. The explicit one follows the recipe step by step and can hand
every step to a recorder; the fused one calls PyTorch's kernel, which never builds the (T, S)
matrix and so needs memory linear in the length. The fused path is taken whenever neither the
weights nor a trace are asked for (a recorder that wants none of the steps counts as no trace).

The explicit path builds several (T, S) matrices at once, so its memory grows with T x S. When
the weights or a trace are asked for, :func:`chunked_attention` applies that same recipe to blocks
of at most ``chunk_size`` query rows (each query's row depends on that query alone), so the steps'
working memory is O(chunk_size x S); only what the caller keeps (the weights returned, the steps
a recorder wants) is built at full size. A query length within one block is the explicit path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from selfattention.attention.recording import Recorder

CHUNK_SIZE = 512  # query rows per block of the chunked explicit path
EXPLICIT_STEPS = ("scores", "scaled_scores", "weights", "output")  # what the explicit path can record


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

    The fused kernel runs unless the weights are asked for or the recorder wants one of the explicit
    path's steps; then the explicit steps run, in blocks of query rows (:func:`chunked_attention`).
    A query row whose mask allows nothing gets a zero output (and zero gradients), never NaN.
    """
    _check_shapes(q, k, v, mask)
    traced = recorder is not None and any(recorder.wants(step) for step in EXPLICIT_STEPS)
    if not need_weights and not traced:
        return _fused(q, k, v, mask, dropout_p), None
    return chunked_attention(
        q, k, v, mask, dropout_p=dropout_p, need_weights=True, recorder=recorder if traced else None
    )


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
    scores = similarity_scores(q, k)  # (..., T, S)
    # Step 2: divide by sqrt(d_k) to keep the softmax out of its flat regions.
    scaled_scores = scale_scores(scores, d_k)
    # Step 3: row-wise softmax turns scores into weights that sum to 1.
    weights = masked_softmax(scaled_scores, mask)
    # Step 4: each output is the weighted sum of the value vectors.
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights
    output = dropped @ v  # (..., T, Dh)
    if recorder is not None:
        recorder.record("scores", scores)
        recorder.record("scaled_scores", scaled_scores)
        recorder.record("weights", weights)
        recorder.record("output", output)
    return output, weights


def similarity_scores(q: Tensor, k: Tensor) -> Tensor:
    """Step 1 of the recipe, Q·Kᵀ: ``(..., T, S)`` from ``(..., T, Dh)`` and ``(..., S, Dh)``."""
    return q @ k.transpose(-2, -1)


def scale_scores(scores: Tensor, d_k: int) -> Tensor:
    """Step 2 of the recipe: the scores divided by sqrt(d_k)."""
    return scores / math.sqrt(d_k)


def chunked_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    dropout_p: float = 0.0,
    need_weights: bool = True,
    recorder: Recorder | None = None,
) -> tuple[Tensor, Tensor | None]:
    """:func:`explicit_attention` over blocks of ``chunk_size`` query rows; returns ``(Z, weights)``.

    Row i of every step depends on query i alone, so the blocks, put back together, are the
    explicit path's result. ``weights`` is ``None`` unless ``need_weights``; the recorder receives
    each step it wants once, whole, as from the explicit path.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    length = q.shape[-2]
    if length <= chunk_size:  # one block: the explicit path itself
        output, weights = explicit_attention(q, k, v, mask, dropout_p=dropout_p, recorder=recorder)
        return output, weights if need_weights else None
    blocks = _BlockRecorder(recorder)
    outputs, weight_blocks = [], []
    for start in range(0, length, chunk_size):
        rows = slice(start, start + chunk_size)
        output, weights = explicit_attention(
            q[..., rows, :], k, v, _mask_rows(mask, rows), dropout_p=dropout_p, recorder=blocks
        )
        outputs.append(output)  # (..., rows, Dh)
        if need_weights:
            weight_blocks.append(weights)  # (..., rows, S); the block's other steps are freed here
    steps = blocks.joined()  # the wanted steps, whole
    if need_weights and "weights" not in steps:
        steps["weights"] = torch.cat(weight_blocks, dim=-2)  # (..., T, S)
    if recorder is not None:
        for step in EXPLICIT_STEPS:
            if step in steps and recorder.wants(step):
                recorder.record(step, steps[step])
    output = steps["output"] if "output" in steps else torch.cat(outputs, dim=-2)  # (..., T, Dh)
    return output, steps["weights"] if need_weights else None


class _BlockRecorder:
    """Collects, block by block, the steps the real recorder wants."""

    def __init__(self, recorder: Recorder | None) -> None:
        self._recorder = recorder
        self._blocks: dict[str, list[Tensor]] = {}

    def at(self, name: str) -> Recorder:
        raise NotImplementedError("the blocks of one attention call have no sub-sites")

    def wants(self, step: str) -> bool:
        return self._recorder is not None and self._recorder.wants(step)

    def record(self, step: str, value: Tensor) -> None:
        if self.wants(step):
            self._blocks.setdefault(step, []).append(value)

    def joined(self) -> dict[str, Tensor]:
        """Each collected step's blocks put back together along the query rows."""
        return {step: torch.cat(blocks, dim=-2) for step, blocks in self._blocks.items()}


def _mask_rows(mask: Tensor | None, rows: slice) -> Tensor | None:
    """The mask of the queries in ``rows``: a mask with one row for every query is shared as it is."""
    if mask is None or mask.dim() < 2 or mask.shape[-2] == 1:
        return mask
    return mask[..., rows, :]


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Row softmax of ``scores`` over the positions ``mask`` allows (True); a row that allows none is all zeros."""
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
    # everywhere (a finite result), then zero them, which also zeroes their gradients. Without
    # such rows (padding and causal masks), the kernel's own result is used, with no extra copy.
    allowed_any = mask.any(dim=-1, keepdim=True)  # (..., T, 1)
    if bool(allowed_any.all()):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
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
        batch = _broadcast(tuple(q.shape[:-2]), tuple(k.shape[:-2]))
        if batch is None:
            raise ValueError(f"queries {tuple(q.shape)} and keys {tuple(k.shape)} do not broadcast together")
        target = (*batch, q.shape[-2], k.shape[-2])
        if _broadcast(tuple(mask.shape), target) != target:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape {target}")


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape ``a`` and ``b`` broadcast to, or None where they do not.

    ``torch.broadcast_shapes`` says the same, but its first call imports ``torch._refs`` and sympy, the
    slowest import left on a translation's path.
    """
    a, b = (1,) * (len(b) - len(a)) + a, (1,) * (len(a) - len(b)) + b
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b, strict=True)):
        return None
    return tuple(y if x == 1 else x for x, y in zip(a, b, strict=True))
