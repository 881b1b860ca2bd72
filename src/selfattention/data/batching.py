"""Batches by token budget, with length bucketing and a deterministic shuffle per epoch.

Sentences of similar length are batched together so that little of each batch is padding; a
batch holds as many pairs as fit in ``max_tokens`` padded tokens (its longest side times its
number of pairs). The order of batches changes every epoch, decided by ``seed`` and the epoch
number alone, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from selfattention.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass(frozen=True)
class Example:
    """One tokenised pair: source ids end with EOS; target ids have no markers."""

    src: tuple[int, ...]
    tgt: tuple[int, ...]

    @property
    def length(self) -> int:
        """Padded cost: the longer of source and decoder input."""
        return max(len(self.src), len(self.tgt) + 1)


@dataclass(frozen=True)
class Batch:
    """Padded tensors for one training step.

    ``src`` (B, S) source ids ending in EOS; ``tgt_in`` (B, T) BOS then the target;
    ``tgt_out`` (B, T) the target then EOS: what each position should predict.
    """

    src: Tensor
    tgt_in: Tensor
    tgt_out: Tensor

    @property
    def target_tokens(self) -> int:
        return int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.src.to(device), self.tgt_in.to(device), self.tgt_out.to(device))


def make_example(src_ids: Sequence[int], tgt_ids: Sequence[int], eos_id: int = EOS_ID) -> Example:
    return Example((*src_ids, eos_id), tuple(tgt_ids))


def collate(examples: Sequence[Example], pad_id: int = PAD_ID, bos_id: int = BOS_ID, eos_id: int = EOS_ID) -> Batch:
    """Right-pad a list of examples into a :class:`Batch` (the ids default to this project's)."""
    src = _pad([list(e.src) for e in examples], pad_id)
    tgt_in = _pad([[bos_id, *e.tgt] for e in examples], pad_id)
    tgt_out = _pad([[*e.tgt, eos_id] for e in examples], pad_id)
    return Batch(src, tgt_in, tgt_out)


def token_batches(examples: Sequence[Example], max_tokens: int, *, seed: int, epoch: int) -> list[list[int]]:
    """Indices of ``examples`` grouped into batches, in this epoch's order.

    Examples are sorted by length with a per-epoch random tie-break, cut into batches whose
    padded size stays within ``max_tokens``, and the batches shuffled.
    """
    if max_tokens <= 0:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    rng = random.Random(f"{seed}:{epoch}")
    keys = [(example.length, rng.random(), index) for index, example in enumerate(examples)]
    order = [index for _, _, index in sorted(keys)]
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = examples[index].length
        if length > max_tokens:
            raise ValueError(f"an example of {length} tokens does not fit in a batch of {max_tokens} tokens")
        if current and max(longest, length) * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def _pad(rows: list[list[int]], pad_id: int) -> Tensor:
    width = max(len(row) for row in rows)
    out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out
