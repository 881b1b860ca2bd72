"""A recorder that keeps the attention steps of a forward pass.

Pass a :class:`TraceRecorder` to ``Transformer.forward`` (or ``encode``/``decode``) and read back,
for any layer and kind (encoder self-attention, decoder self-attention, cross-attention), the
tensors of each step of the seeds' recipe: X, Q, K, V, the raw scores Q·Kᵀ, the scaled scores,
the softmax weights and the per-head output Z.

A trace is light enough for long inputs (4,096 tokens in well under 2 GiB):

- it keeps only the attention calls asked for (``kinds`` and ``layers``; all by default). An
  attention call of which nothing is kept runs the fused kernel, as without a trace;
- it never stores the (T, S) scores and scaled scores: :class:`AttentionStep` recomputes them from
  Q and K when they are read (step 1 and step 2 of the recipe, the same functions the model ran),
  so a traced call keeps one (B, H, T, S) matrix, the weights;
- the traced calls run the chunked explicit path, whose working memory is O(chunk x S).

Heads are not chosen: the weights of all heads of one call cost H x T x S x 4 bytes (256 MiB for
the bundled model's 4 heads at 4,096 tokens), and every view of a layer needs them.

Shapes: B batch, H heads, T query length, S key length, D model width, Dh head width.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from selfattention.attention.core import scale_scores, similarity_scores
from selfattention.inspection.kinds import KINDS, AttentionKind

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
    weights: Tensor  # (B, H, T, S) softmax over each row
    output: Tensor  # (B, H, T, Dh) Z = weights·V, per head
    attended: Tensor  # (B, T, D) heads concatenated and projected by W_O

    @property
    def head_dim(self) -> int:
        return self.q.shape[-1]

    @property
    def scores(self) -> Tensor:
        """Step 1, Q·Kᵀ, ``(B, H, T, S)``: recomputed from Q and K on each read, never stored."""
        return similarity_scores(self.q, self.k)

    @property
    def scaled_scores(self) -> Tensor:
        """Step 2, Q·Kᵀ / sqrt(d_k), ``(B, H, T, S)``: recomputed on each read, never stored."""
        return scale_scores(self.scores, self.head_dim)


class TraceRecorder:
    """Collects named tensors under dotted site names (``encoder.layers.0.self_attn``).

    ``kinds`` and ``layers`` choose the attention calls kept (``None``: all); layer outputs and
    embeddings, (B, L, D) each, are always kept. Each ``record`` appends, so incremental decoding
    leaves one entry per call. Tensors are detached: a trace never keeps the autograd graph alive.
    """

    def __init__(self, *, kinds: Iterable[AttentionKind] | None = None, layers: Iterable[int] | None = None) -> None:
        self._kinds = None if kinds is None else frozenset(kinds)
        self._layers = None if layers is None else frozenset(layers)
        unknown = sorted(set(self._kinds or ()) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown attention kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
        self._store: dict[str, list[Tensor]] = defaultdict(list)
        self._recorded: dict[str, set[int]] = defaultdict(set)  # kind -> layers with a recorded call

    def at(self, name: str) -> _Scope:
        return _Scope(self, name)

    def wants(self, name: str) -> bool:
        """Whether the full dotted ``name`` is kept: its attention call is chosen and its step is stored."""
        site = _parse_site(name)
        if site is None:
            return True  # layer outputs and embeddings
        kind, layer, step = site
        if step not in _STEPS:
            return False  # the scores, recomputed from Q and K when read
        return (self._kinds is None or kind in self._kinds) and (self._layers is None or layer in self._layers)

    def record(self, step: str, value: Tensor) -> None:
        if not self.wants(step):
            return
        self._store[step].append(value.detach())
        site = _parse_site(step)
        if site is not None:
            self._recorded[site[0]].add(site[1])

    def get(self, name: str, call: int = -1) -> Tensor:
        """The tensor recorded under the full dotted ``name`` (the last call by default)."""
        if name not in self._store:
            raise KeyError(f"nothing was recorded as {name!r}")
        return self._store[name][call]

    def names(self) -> list[str]:
        return sorted(self._store)

    def layers(self, kind: AttentionKind) -> int:
        """How many layers of this kind were recorded."""
        return len(self._recorded[kind])

    def recorded_layers(self, kind: AttentionKind) -> list[int]:
        """The layers of this kind that were recorded, in order."""
        return sorted(self._recorded[kind])

    def attention(self, kind: AttentionKind, layer: int, call: int = -1) -> AttentionStep:
        """All steps of one attention call; ``kind`` is "encoder", "decoder" or "cross"."""
        if kind not in _SITE_OF_KIND:
            raise ValueError(f"unknown attention kind {kind!r}; choose from {', '.join(KINDS)}")
        available = self.recorded_layers(kind)
        if layer not in available:
            raise ValueError(f"layer {layer} was not recorded for {kind} attention ({_describe(available)})")
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

    def wants(self, step: str) -> bool:
        return self._root.wants(f"{self._prefix}.{step}")

    def record(self, step: str, value: Tensor) -> None:
        self._root.record(f"{self._prefix}.{step}", value)


_STEPS = ("x", "q", "k", "v", "weights", "output", "attended")  # stored; the scores are recomputed
_SITE_NAME = re.compile(r"(encoder|decoder)\.layers\.(\d+)\.(self_attn|cross_attn)\.(\w+)")


def _site(kind: str, layer: int) -> str:
    return _SITE_OF_KIND[kind].format(layer=layer)


def _parse_site(name: str) -> tuple[AttentionKind, int, str] | None:
    """``(kind, layer, step)`` of a name inside an attention call, else ``None``."""
    found = _SITE_NAME.fullmatch(name)
    if found is None:
        return None
    stack, layer, call, step = found.groups()
    kind: AttentionKind = "cross" if call == "cross_attn" else "encoder" if stack == "encoder" else "decoder"
    return kind, int(layer), step


def _describe(layers: list[int]) -> str:
    if not layers:
        return "none was recorded"
    if layers == list(range(len(layers))):
        return f"recorded layers: 0 to {layers[-1]}"
    return "recorded layers: " + ", ".join(map(str, layers))
