"""The Transformer's building blocks ("Attention Is All You Need", section 3).

Shapes: B batch, S source length, T target length, D model width, F feed-forward width.

Each sublayer (attention or feed-forward) is wrapped in a residual connection with LayerNorm,
either after the addition (post-LN, the paper's: ``norm(x + sublayer(x))``) or before the
sublayer (pre-LN: ``x + sublayer(norm(x))``, with one more norm at the top of the stack).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfattention.attention import KVCache, MultiHeadAttention
from selfattention.attention.recording import Recorder, scoped

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}


def sinusoidal_table(length: int, d_model: int, layout: str = "interleaved") -> Tensor:
    """Section 3.5: PE(pos, 2i) = sin(pos / 10000^(2i/D)), PE(pos, 2i+1) = cos(same).

    ``layout="halves"`` holds the same values as all sines, then all cosines (Marian's layout:
    column i is sin, column D/2 + i is cos, of frequency i). The interleaved table is computed in
    float32, as it always was, so that saved models keep their exact outputs; the halves table in
    float64, then rounded, as Marian builds it, so that imported models match it to the bit.
    """
    if layout not in ("interleaved", "halves"):
        raise ValueError(f"unknown sinusoid layout {layout!r}; choose interleaved or halves")
    dtype = torch.float64 if layout == "halves" else torch.float32
    positions = torch.arange(length, dtype=dtype)[:, None]  # (L, 1)
    inverse_freq = torch.exp(torch.arange(0, d_model, 2, dtype=dtype) * (-math.log(10000.0) / d_model))
    angles = positions * inverse_freq[None, :]  # (L, D/2)
    if layout == "halves":
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).float()  # (L, D)
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table  # (L, D)


class SinusoidalPositions(nn.Module):
    """Fixed sine/cosine positions; any length works (the table grows on demand)."""

    def __init__(self, d_model: int, max_positions: int, layout: str = "interleaved") -> None:
        super().__init__()
        self.d_model = d_model
        self.layout = layout
        self.register_buffer("table", sinusoidal_table(max_positions, d_model, layout), persistent=False)

    def forward(self, length: int, offset: int = 0) -> Tensor:
        end = offset + length
        table: Tensor = self.table  # type: ignore[assignment]
        if end > table.shape[0]:
            table = sinusoidal_table(end, self.d_model, self.layout).to(table.device)
        return table[offset:end]  # (L, D)


class LearnedPositions(nn.Module):
    """A learned vector per position, up to ``max_positions``."""

    def __init__(self, d_model: int, max_positions: int) -> None:
        super().__init__()
        self.max_positions = max_positions
        self.weight = nn.Parameter(torch.empty(max_positions, d_model))
        nn.init.normal_(self.weight, std=d_model**-0.5)

    def forward(self, length: int, offset: int = 0) -> Tensor:
        end = offset + length
        if end > self.max_positions:
            raise ValueError(f"input of {end} positions is longer than the {self.max_positions} learned positions")
        return self.weight[offset:end]  # (L, D)


class Embeddings(nn.Module):
    """Token embedding times sqrt(D), plus positions, then dropout (sections 3.4 and 3.5).

    ``scale_embedding=False`` leaves out the sqrt(D) factor (some Marian models).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        positions: nn.Module,
        dropout: float,
        pad_id: int,
        scale_embedding: bool = True,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.scale = math.sqrt(d_model) if scale_embedding else 1.0
        self.token = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.positions = positions
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor, offset: int = 0) -> Tensor:
        if tokens.dim() != 2:
            raise ValueError(f"token ids must have shape (B, L), got {tuple(tokens.shape)}")
        vocab_size = self.token.num_embeddings
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
            raise ValueError(
                f"token ids must lie in [0, {vocab_size}), got ids from {int(tokens.min())} to {int(tokens.max())}"
            )
        x = self.token(tokens) * self.scale  # (B, L, D)
        x = x + self.positions(tokens.shape[1], offset)[None]
        return self.dropout(x)


class FeedForward(nn.Module):
    """Position-wise feed-forward: W2 · act(W1 · x + b1) + b2 (section 3.3)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
        self.up_proj = nn.Linear(d_model, d_ff)
        self.down_proj = nn.Linear(d_ff, d_model)
        self.activation = ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.dropout(self.activation(self.up_proj(x))))


class EncoderLayer(nn.Module):
    """Self-attention, then feed-forward; each with a residual connection and LayerNorm."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        activation_dropout: float | None = None,
    ) -> None:
        """``activation_dropout`` (inside the feed-forward sublayer) defaults to ``dropout``."""
        super().__init__()
        self.norm_first = norm_first
        inner_dropout = dropout if activation_dropout is None else activation_dropout
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=attention_dropout)
        self.self_attn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.feed_forward = FeedForward(d_model, d_ff, inner_dropout, activation)
        self.feed_forward_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None, recorder: Recorder | None = None) -> Tensor:
        def attend(h: Tensor) -> Tensor:
            return self.self_attn(h, mask=mask, recorder=scoped(recorder, "self_attn"))[0]

        x = _residual(x, attend, self.self_attn_norm, self.dropout, self.norm_first)
        return _residual(x, self.feed_forward, self.feed_forward_norm, self.dropout, self.norm_first)


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the encoder's output, then feed-forward."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        activation_dropout: float | None = None,
    ) -> None:
        """``activation_dropout`` (inside the feed-forward sublayer) defaults to ``dropout``."""
        super().__init__()
        self.norm_first = norm_first
        inner_dropout = dropout if activation_dropout is None else activation_dropout
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=attention_dropout)
        self.self_attn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=attention_dropout)
        self.cross_attn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.feed_forward = FeedForward(d_model, d_ff, inner_dropout, activation)
        self.feed_forward_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        self_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        *,
        self_cache: KVCache | None = None,
        cross_cache: KVCache | None = None,
        recorder: Recorder | None = None,
    ) -> Tensor:
        def attend_self(h: Tensor) -> Tensor:
            return self.self_attn(h, mask=self_mask, cache=self_cache, recorder=scoped(recorder, "self_attn"))[0]

        def attend_source(h: Tensor) -> Tensor:
            return self.cross_attn(
                h, memory, mask=memory_mask, cache=cross_cache, recorder=scoped(recorder, "cross_attn")
            )[0]

        x = _residual(x, attend_self, self.self_attn_norm, self.dropout, self.norm_first)
        x = _residual(x, attend_source, self.cross_attn_norm, self.dropout, self.norm_first)
        return _residual(x, self.feed_forward, self.feed_forward_norm, self.dropout, self.norm_first)


def _residual(
    x: Tensor, sublayer: Callable[[Tensor], Tensor], norm: nn.Module, dropout: nn.Module, norm_first: bool
) -> Tensor:
    """Section 5.4: dropout on the sublayer's output, added to its input, normalised."""
    if norm_first:
        return x + dropout(sublayer(norm(x)))
    return norm(x + dropout(sublayer(x)))
