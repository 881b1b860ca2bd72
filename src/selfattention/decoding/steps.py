"""A search's decoding steps: the next token's logits for each live row, and the caches kept in step.

Greedy and beam search drive a step the same way, whichever computes it: ``step(tokens)`` gives
the logits ``(A, V)`` after each live row's last token ``(A, 1)``; ``keep_sources(index)`` keeps
the sentences still searching (their sources and cross-attention keys and values);
``keep_targets(index)`` makes row i of the self-attention caches the old row ``index[i]``.

:class:`TorchStep` is ``Transformer.decode`` with its :class:`~selfattention.model.DecoderState`,
the definition. :func:`start_step` gives the C step of ``native_step.py`` where it applies (float32
on the CPU, a compiler here), else a :class:`TorchStep`.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor

from selfattention.decoding import native_step
from selfattention.model import Transformer


class Step(Protocol):
    def __call__(self, tokens: Tensor) -> Tensor: ...

    def keep_sources(self, index: Tensor) -> None: ...

    def keep_targets(self, index: Tensor) -> None: ...


class TorchStep:
    """Steps through ``Transformer.decode`` with a key/value cache."""

    def __init__(self, model: Transformer, memory: Tensor, memory_mask: Tensor | None) -> None:
        self.model, self.memory, self.memory_mask = model, memory, memory_mask
        self.state = model.start_state()

    def __call__(self, tokens: Tensor) -> Tensor:
        return self.model.decode(tokens, self.memory, self.memory_mask, state=self.state)[:, -1]

    def keep_sources(self, index: Tensor) -> None:
        self.memory = self.memory[index]
        if self.memory_mask is not None:
            self.memory_mask = self.memory_mask[index]
        self.state.reorder(index, targets=False)

    def keep_targets(self, index: Tensor) -> None:
        self.state.reorder(index, sources=False)


def start_step(model: Transformer, memory: Tensor, memory_mask: Tensor | None, rows: int, steps: int) -> Step:
    """The steps of one search over ``memory`` ``(B, S, D)``: ``rows`` rows (a multiple of B), up to ``steps``."""
    native = native_step.start(model, memory, memory_mask, rows, steps)
    return native if native is not None else TorchStep(model, memory, memory_mask)


__all__ = ["Step", "TorchStep", "start_step"]
