"""The engine's attention for a decoding step, called from Python: a few query rows against cached keys.

Shapes: ``q`` ``(B, H, T, Dh)`` with T small (1 for a new position, K for beam search's K
hypotheses of one source), ``k`` and ``v`` ``(B, H, S, Dh)``, the mask per key ``(B or 1, 1, 1, S)``.

A decoding step asks each (row, head) pair for one softmax-weighted sum over at most a few hundred
keys. PyTorch's fused kernel treats the single query row as a matrix product (a matrix-vector
product per pair); ``kernels/few_queries.c`` does the same arithmetic in plain vectorised loops,
reads the keys and values through their strides (the caches are views), and writes the output
with the heads already merged (``(B, T, H, Dh)``, returned as its ``(B, H, T, Dh)`` view).

The C decoding step (``native_step.py``) calls this kernel directly, inside the engine's one
library; the reference path (``attention/core.py``) never does. This module calls the same
library's kernel from Python, so that tests hold it to PyTorch's result and benchmarks can put it
in PyTorch's step. Without the library (:mod:`~selfattention.engine.library` says why) or with
``SELFATTENTION_NATIVE=0``, :func:`applies` answers False. It is for inference: float32 on the
CPU, no dropout, no gradients.
"""

from __future__ import annotations

import ctypes
import math

import torch
from torch import Tensor

from selfattention.engine import library
from selfattention.engine.library import Strides

MAX_QUERIES = 16  # more query rows than this are a matrix product, where PyTorch's kernel is the faster


def _strides(x: Tensor) -> Strides:
    return Strides(*x.stride()[:3])


def _kernel() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """``selfattention_few_queries`` of the engine's library, or None without it."""
    loaded = library.load()
    return None if loaded is None else loaded.cdll.selfattention_few_queries


def available() -> bool:
    """Whether the kernel's library is loaded here (built at install, checked at load)."""
    return _kernel() is not None


def applies(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> bool:
    """Whether :func:`attend` computes this call: inference on the CPU, few queries, a per-key mask."""
    if dropout_p > 0.0 or q.dim() != 4 or k.dim() != 4 or v.dim() != 4 or q.shape[-2] > MAX_QUERIES:
        return False
    if not (q.dtype == k.dtype == v.dtype == torch.float32) or q.device.type != "cpu":
        return False
    if k.device.type != "cpu" or v.device.type != "cpu":
        return False
    if q.shape[:2] != k.shape[:2] or k.shape[:2] != v.shape[:2] or v.shape[-1] != q.shape[-1]:
        return False
    if q.stride(-1) != 1 or k.stride(-1) != 1 or v.stride(-1) != 1:  # each head's vector contiguous
        return False
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return False
    if mask is not None and (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2] != 1):
        return False
    return _kernel() is not None


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """softmax(q kᵀ / sqrt(Dh)) v, ``(B, H, T, Dh)``; a query that may attend to nothing gets zeros.

    Call only where :func:`applies` is True. The result is a view of a ``(B, T, H, Dh)`` tensor.
    """
    kernel = _kernel()
    assert kernel is not None, "attend() called where applies() is False"
    batch, heads, queries, width = q.shape
    keys = k.shape[-2]
    out = torch.empty(batch, queries, heads, width)
    if mask is None:
        mask_pointer, mask_stride_b, mask_stride_s = None, 0, 0
    else:
        expanded = mask.expand(batch, 1, 1, keys)
        mask_pointer, mask_stride_b, mask_stride_s = expanded.data_ptr(), expanded.stride(0), expanded.stride(3)
    failed = kernel(
        q.data_ptr(), _strides(q), k.data_ptr(), _strides(k), v.data_ptr(), _strides(v),
        mask_pointer, mask_stride_b, mask_stride_s, out.data_ptr(),
        batch, heads, queries, keys, width, 1.0 / math.sqrt(width),
    )  # fmt: skip
    if failed:
        raise MemoryError(f"the attention kernel could not allocate {keys} scores")
    return out.transpose(1, 2)


__all__ = ["MAX_QUERIES", "applies", "attend", "available"]
