"""Key/value cache for incremental decoding.

Shapes: ``(B, H, S, Dh)``: batch, heads, cached length, head width.

Self-attention appends one step's keys and values at a time; cross-attention computes the
source's keys and values once and reuses them for every target step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class KVCache:
    """Keys and values seen so far by one attention module."""

    key: Tensor | None = None  # (B, H, S, Dh)
    value: Tensor | None = None  # (B, H, S, Dh)

    @property
    def length(self) -> int:
        return 0 if self.key is None else self.key.shape[-2]

    def append(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Add new steps and return all keys and values so far."""
        if self.key is None or self.value is None:
            self.key, self.value = key, value
        else:
            self.key = torch.cat([self.key, key], dim=-2)
            self.value = torch.cat([self.value, value], dim=-2)
        return self.key, self.value

    def store(self, key: Tensor, value: Tensor) -> None:
        """Keep keys and values that never change (cross-attention's source)."""
        self.key, self.value = key, value

    def reorder(self, index: Tensor) -> None:
        """Keep the batch rows ``index`` (beam search's surviving hypotheses)."""
        if self.key is not None and self.value is not None:
            self.key = self.key.index_select(0, index)
            self.value = self.value.index_select(0, index)
