"""Multi-head attention ("Attention Is All You Need", section 3.2.2).

Shapes: B batch, T query length, S key length, D model width, H heads, Dh = D / H head width.

Each head has its own learned W_Q, W_K, W_V (the seeds' 512 -> 64 projections); the heads are
computed together as one (D, D) projection split into H slices of width Dh, and their outputs
are concatenated and projected back by W_O (``out_proj``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from selfattention.attention.cache import KVCache
from selfattention.attention.core import scaled_dot_product_attention
from selfattention.attention.recording import Recorder


class MultiHeadAttention(nn.Module):
    """Self-attention when ``key_value`` is omitted, cross-attention when it is given."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if d_model <= 0 or n_heads <= 0:
            raise ValueError(f"d_model and n_heads must be positive, got d_model={d_model}, n_heads={n_heads}")
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads  # d_k in the paper
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self,
        query: Tensor,
        key_value: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        cache: KVCache | None = None,
        need_weights: bool = False,
        recorder: Recorder | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Return ``(output (B, T, D), weights (B, H, T, S) or None)``.

        ``mask`` is boolean (True = may attend) and broadcasts to ``(B, H, T, S)``. With a
        ``cache``, self-attention appends this call's keys and values to it, and
        cross-attention computes the source's keys and values on the first call only.
        """
        self._check_input(query, key_value)
        q = self._split_heads(self.q_proj(query))  # (B, H, T, Dh)
        k, v = self._keys_values(query, key_value, cache)  # (B, H, S, Dh) each
        if recorder is not None:
            recorder.record("x", query)
            recorder.record("q", q)
            recorder.record("k", k)
            recorder.record("v", v)
        dropout_p = self.dropout if self.training else 0.0
        heads, weights = scaled_dot_product_attention(
            q, k, v, mask, dropout_p=dropout_p, need_weights=need_weights, recorder=recorder
        )
        output = self.out_proj(self._merge_heads(heads))  # (B, T, D)
        if recorder is not None:
            recorder.record("attended", output)
        return output, weights

    def _keys_values(self, query: Tensor, key_value: Tensor | None, cache: KVCache | None) -> tuple[Tensor, Tensor]:
        if key_value is None:  # self-attention: keys and values come from the same tokens
            k = self._split_heads(self.k_proj(query))
            v = self._split_heads(self.v_proj(query))
            return (k, v) if cache is None else cache.append(k, v)
        if cache is not None and cache.key is not None and cache.value is not None:
            return cache.key, cache.value  # cross-attention: the source was projected already
        k = self._split_heads(self.k_proj(key_value))
        v = self._split_heads(self.v_proj(key_value))
        if cache is not None:
            cache.store(k, v)
        return k, v

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, L, Dh)

    def _merge_heads(self, x: Tensor) -> Tensor:
        batch, _, length, _ = x.shape
        return x.transpose(1, 2).reshape(batch, length, self.d_model)  # (B, L, D)

    def _check_input(self, query: Tensor, key_value: Tensor | None) -> None:
        for name, x in (("query", query), ("key_value", key_value)):
            if x is None:
                continue
            if x.dim() != 3 or x.shape[-1] != self.d_model:
                raise ValueError(f"{name} must have shape (B, L, {self.d_model}), got {tuple(x.shape)}")
        if key_value is not None and key_value.shape[0] != query.shape[0]:
            raise ValueError(f"query and key_value batch sizes differ: {query.shape[0]} and {key_value.shape[0]}")
        if not torch.is_floating_point(query):
            raise ValueError(f"query must be a floating-point tensor, got {query.dtype}")
