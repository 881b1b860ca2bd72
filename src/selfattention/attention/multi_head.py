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

        Cross-attention may share one ``key_value`` row among G consecutive query rows (beam
        search's G hypotheses of one sentence): ``query`` ``(B·G, T, D)``, ``key_value`` ``(B, S, D)``
        and a ``mask`` per key, of B rows (or 1). The G rows then attend as G·T queries of one row; a
        recorder sees them in that layout.
        """
        self._check_input(query, key_value, mask)
        if key_value is not None and key_value.shape[0] != query.shape[0]:
            return self._grouped(query, key_value, mask, cache=cache, need_weights=need_weights, recorder=recorder)
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

    def _grouped(
        self,
        query: Tensor,
        key_value: Tensor,
        mask: Tensor | None,
        *,
        cache: KVCache | None,
        need_weights: bool,
        recorder: Recorder | None,
    ) -> tuple[Tensor, Tensor | None]:
        """Cross-attention of G consecutive query rows per ``key_value`` row, as G·T queries of that row."""
        rows, length, width = query.shape
        batch = key_value.shape[0]
        groups = rows // batch
        output, weights = self(
            query.reshape(batch, groups * length, width),
            key_value,
            mask,
            cache=cache,
            need_weights=need_weights,
            recorder=recorder,
        )
        output = output.reshape(rows, length, width)
        if weights is not None:  # (B, H, G·T, S) -> (B·G, H, T, S)
            heads, keys = weights.shape[1], weights.shape[-1]
            weights = (
                weights.reshape(batch, heads, groups, length, keys).transpose(1, 2).reshape(rows, heads, length, keys)
            )
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

    def _check_input(self, query: Tensor, key_value: Tensor | None, mask: Tensor | None) -> None:
        for name, x in (("query", query), ("key_value", key_value)):
            if x is None:
                continue
            if x.dim() != 3 or x.shape[-1] != self.d_model:
                raise ValueError(f"{name} must have shape (B, L, {self.d_model}), got {tuple(x.shape)}")
        if key_value is not None and key_value.shape[0] != query.shape[0]:
            if key_value.shape[0] == 0 or query.shape[0] % key_value.shape[0] != 0:
                raise ValueError(
                    f"query batch ({query.shape[0]}) must be key_value's ({key_value.shape[0]}) or a multiple of it"
                )
            if mask is not None and mask.dim() >= 2 and mask.shape[-2] != 1:
                raise ValueError(
                    f"with query rows grouped per key_value row, the mask must be per key (one query row), "
                    f"got shape {tuple(mask.shape)}"
                )
            if mask is not None and mask.dim() == 4 and mask.shape[0] not in (1, key_value.shape[0]):
                raise ValueError(
                    f"with {query.shape[0] // key_value.shape[0]} query rows per key_value row, the mask must have "
                    f"{key_value.shape[0]} rows (one per key_value row) or 1, got {mask.shape[0]}"
                )
        if not torch.is_floating_point(query):
            raise ValueError(f"query must be a floating-point tensor, got {query.dtype}")
