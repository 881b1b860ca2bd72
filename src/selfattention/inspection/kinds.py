"""The three kinds of attention in an encoder-decoder Transformer, by the names every view uses."""

from __future__ import annotations

from typing import Literal

AttentionKind = Literal["encoder", "decoder", "cross"]
KINDS: tuple[AttentionKind, ...] = ("encoder", "decoder", "cross")

__all__ = ["KINDS", "AttentionKind"]
