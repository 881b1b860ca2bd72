"""The length limit that greedy and beam search share.

Shapes: B sentences, K beams, S source length, D model width, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SearchLimits:
    """The longest output: ``max_len_a`` · source length + ``max_len_b`` tokens (EOS included)."""

    max_len_a: float = 1.5
    max_len_b: int = 10
    hard_limit: int = 1024

    def for_sources(self, src: Tensor, pad_id: int) -> Tensor:
        """Per-sentence limits ``(B,)`` from the padded source ``(B, S)``."""
        lengths = (src != pad_id).sum(dim=1).to(torch.float32)
        limits = torch.floor(lengths * self.max_len_a) + self.max_len_b
        return limits.clamp(1, self.hard_limit).to(torch.long)
