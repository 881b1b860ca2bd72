"""A recorder that keeps every attention step of a forward pass.

Pass a :class:`TraceRecorder` to ``Transformer.forward`` (or ``encode``/``decode``) and read back,
for any layer and kind (encoder self-attention, decoder self-attention, cross-attention), the
tensors of each step of the seeds' recipe: X, Q, K, V, the raw scores Q·Kᵀ, the scaled scores,
the softmax weights and the per-head output Z.

Shapes: B batch, H heads, T query length, S key length, D model width, Dh head width.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

AttentionKind = Literal["encoder", "decoder", "cross"]
KINDS: tuple[AttentionKind, ...] = ("encoder", "decoder", "cross")

_SITE_OF_KIND: dict[str, str] = {
    "encoder": "encoder.layers.{layer}.self_attn",
    "decoder": "decoder.layers.{layer}.self_attn",
    "cross": "decoder.layers.{layer}.cross_attn",
}


@dataclass(frozen=True)
class AttentionStep:
    """Every named step of one attention call (one layer, all heads)."""

    kind: AttentionKind
    layer: int
    x: Tensor  # (B, T, D) the input the queries are made from
    q: Tensor  # (B, H, T, Dh) Q = X·W_Q + b_Q, split into heads
    k: Tensor  # (B, H, S, Dh)
    v: Tensor  # (B, H, S, Dh)
    scores: Tensor  # (B, H, T, S) Q·Kᵀ
    scaled_scores: Tensor  # (B, H, T, S) Q·Kᵀ / sqrt(d_k)
    weights: Tensor  # (B, H, T, S) softmax over each row
    output: Tensor  # (B, H, T, Dh) Z = weights·V, per head
    attended: Tensor  # (B, T, D) heads concatenated and projected by W_O

    @property
    def head_dim(self) -> int:
        return self.q.shape[-1]


class TraceRecorder:
    """Collects named tensors under dotted site names (``encoder.layers.0.self_attn``).

    Each ``record`` appends, so incremental decoding leaves one entry per call.
    Tensors are detached: a trace never keeps the autograd graph alive.
    """

    def __init__(self) -> None:
        self._store: dict[str, list[Tensor]] = defaultdict(list)

    def at(self, name: str) -> _Scope:
        return _Scope(self, name)

    def record(self, step: str, value: Tensor) -> None:
        self._store[step].append(value.detach())

    def get(self, name: str, call: int = -1) -> Tensor:
        """The tensor recorded under the full dotted ``name`` (the last call by default)."""
        if name not in self._store:
            raise KeyError(f"nothing was recorded as {name!r}")
        return self._store[name][call]

    def names(self) -> list[str]:
        return sorted(self._store)

    def layers(self, kind: AttentionKind) -> int:
        """How many layers of this kind were recorded."""
        count = 0
        while f"{_site(kind, count)}.weights" in self._store:
            count += 1
        return count

    def attention(self, kind: AttentionKind, layer: int, call: int = -1) -> AttentionStep:
        """All steps of one attention call; ``kind`` is "encoder", "decoder" or "cross"."""
        if kind not in _SITE_OF_KIND:
            raise ValueError(f"unknown attention kind {kind!r}; choose from {', '.join(KINDS)}")
        available = self.layers(kind)
        if not 0 <= layer < available:
            raise ValueError(
                f"layer {layer} was not recorded for {kind} attention (recorded layers: 0 to {available - 1})"
            )
        site = _site(kind, layer)
        tensors = {step: self.get(f"{site}.{step}", call) for step in _STEPS}
        return AttentionStep(kind=kind, layer=layer, **tensors)

    def hidden(self, kind: Literal["encoder", "decoder"], layer: int, call: int = -1) -> Tensor:
        """The output of a layer, ``(B, L, D)``; ``layer=-1`` is the embedding layer's."""
        embed = "src_embed" if kind == "encoder" else "tgt_embed"
        name = f"{embed}.output" if layer == -1 else f"{kind}.layers.{layer}.output"
        return self.get(name, call)


class _Scope:
    def __init__(self, root: TraceRecorder, prefix: str) -> None:
        self._root = root
        self._prefix = prefix

    def at(self, name: str) -> _Scope:
        return _Scope(self._root, f"{self._prefix}.{name}")

    def record(self, step: str, value: Tensor) -> None:
        self._root.record(f"{self._prefix}.{step}", value)


_STEPS = ("x", "q", "k", "v", "scores", "scaled_scores", "weights", "output", "attended")


def _site(kind: str, layer: int) -> str:
    return _SITE_OF_KIND[kind].format(layer=layer)
