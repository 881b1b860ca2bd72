"""A search's decoding steps: the next token's logits for each live row, and the caches kept in step.

Greedy and beam search drive a step the same way, whichever computes it: ``step(tokens)`` gives
the logits ``(A, V)`` after each live row's last token ``(A, 1)``; ``keep_sources(index)`` keeps
the sentences still searching (their sources and cross-attention keys and values);
``keep_targets(index)`` makes row i of the self-attention caches the old row ``index[i]``.
A step also gives, instead of the logits, what each search takes from them:
``best_token(tokens, banned)`` each row's most likely next token (greedy search), and
``best_tokens(tokens, k, banned, eos_id)`` each row's k most likely next tokens and their
log-probabilities (beam search).

:class:`TorchStep` is ``Transformer.decode`` with its :class:`~selfattention.model.DecoderState`,
the definition, and what a search runs unless it is given another way to start its steps
(:class:`StartStep`). The engine's C step (:mod:`selfattention.engine.native_step`) is such
another way: :class:`~selfattention.decoding.Translator` chooses it where it applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from selfattention.model import Transformer


class Step(Protocol):
    def __call__(self, tokens: Tensor) -> Tensor: ...

    def best_token(self, tokens: Tensor, banned: Sequence[int]) -> Tensor: ...

    def best_tokens(
        self, tokens: Tensor, k: int, banned: Sequence[int], eos_id: int
    ) -> tuple[Tensor, Tensor, Tensor]: ...

    def keep_sources(self, index: Tensor) -> None: ...

    def keep_targets(self, index: Tensor) -> None: ...


class StartStep(Protocol):
    """The steps of one search over ``memory`` ``(B, S, D)``: ``rows`` rows (a multiple of B), up to ``steps``."""

    def __call__(
        self, model: Transformer, memory: Tensor, memory_mask: Tensor | None, rows: int, steps: int
    ) -> Step: ...


class TorchStep:
    """Steps through ``Transformer.decode`` with a key/value cache."""

    def __init__(self, model: Transformer, memory: Tensor, memory_mask: Tensor | None) -> None:
        self.model, self.memory, self.memory_mask = model, memory, memory_mask
        self.state = model.start_state()

    def __call__(self, tokens: Tensor) -> Tensor:
        return self.model.decode(tokens, self.memory, self.memory_mask, state=self.state)[:, -1]

    def best_token(self, tokens: Tensor, banned: Sequence[int]) -> Tensor:
        """Each live row's most likely next token ``(A,)``, never one of ``banned`` (the lower id on a tie)."""
        logits = self(tokens)
        logits[:, list(banned)] = -torch.inf
        return logits.argmax(dim=-1)

    def best_tokens(self, tokens: Tensor, k: int, banned: Sequence[int], eos_id: int) -> tuple[Tensor, Tensor, Tensor]:
        return best_tokens(self(tokens), k, banned, eos_id)

    def keep_sources(self, index: Tensor) -> None:
        self.memory = self.memory[index]
        if self.memory_mask is not None:
            self.memory_mask = self.memory_mask[index]
        self.state.reorder(index, targets=False)

    def keep_targets(self, index: Tensor) -> None:
        self.state.reorder(index, sources=False)


def best_tokens(logits: Tensor, k: int, banned: Sequence[int], eos_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """Each row's k most likely tokens after ``logits`` ``(A, V)``, never one of ``banned``.

    ``(log_probs, tokens, eos_log_probs)``: ``(A, k)`` each, best first, and the end token's
    log-probability ``(A,)``.
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    log_probs[:, list(banned)] = -torch.inf
    values, indices = log_probs.topk(k, dim=-1)
    return values, indices, log_probs[:, eos_id]


def torch_step(model: Transformer, memory: Tensor, memory_mask: Tensor | None, rows: int, steps: int) -> Step:
    """A :class:`TorchStep` (a :class:`StartStep`; its cache grows as it goes, so ``rows`` and ``steps`` are not needed)."""
    return TorchStep(model, memory, memory_mask)


__all__ = ["StartStep", "Step", "TorchStep", "best_tokens", "torch_step"]
