"""Batches by token budget, with length bucketing and a deterministic shuffle per epoch.

Sentences of similar length are batched together so that little of each batch is padding; a
batch holds as many pairs as fit in ``max_tokens`` padded tokens (its longest side times its
number of pairs). The order of batches changes every epoch, decided by ``seed`` and the epoch
number alone, so a resumed run sees exactly the batches it would have seen.

An example may carry a link for supervised attention (training/antecedent.py): the source position
of a pronoun and those of its antecedent's pieces; a batch holding any gathers them as tensors.
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
    """One tokenised pair: source ids end with EOS; target ids have no markers.

    ``link``: (query position, key positions) in ``src``, where "it" is and where its antecedent's
    pieces are (:mod:`selfattention.data.links`); None for a pair that teaches no attention.
    """

    src: tuple[int, ...]
    tgt: tuple[int, ...]
    link: tuple[int, tuple[int, ...]] | None = None

    @property
    def length(self) -> int:
        """Padded cost: the longer of source and decoder input."""
        return max(len(self.src), len(self.tgt) + 1)


@dataclass(frozen=True)
class Batch:
    """Padded tensors for one training step.

    ``src`` (B, S) source ids ending in EOS; ``tgt_in`` (B, T) BOS then the target;
    ``tgt_out`` (B, T) the target then EOS: what each position should predict.

    When any example has a link: ``link_query`` (B,) the query position of each row's link, -1
    for a row without one, and ``link_keys`` (B, S) True at its key positions; else both None.
    """

    src: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    link_query: Tensor | None = None
    link_keys: Tensor | None = None

    @property
    def target_tokens(self) -> int:
        return int((self.tgt_out != PAD_ID).sum())

    @property
    def links(self) -> int:
        """How many rows carry a link."""
        return 0 if self.link_query is None else int((self.link_query >= 0).sum())

    def to(self, device: torch.device | str) -> Batch:
        def moved(tensor: Tensor | None) -> Tensor | None:
            return None if tensor is None else tensor.to(device)

        return Batch(
            self.src.to(device),
            self.tgt_in.to(device),
            self.tgt_out.to(device),
            moved(self.link_query),
            moved(self.link_keys),
        )


def make_example(
    src_ids: Sequence[int],
    tgt_ids: Sequence[int],
    eos_id: int = EOS_ID,
    *,
    link: tuple[int, tuple[int, ...]] | None = None,
) -> Example:
    """An example of source ids (EOS appended: ``link``'s positions index ``src_ids`` as they are) and target ids."""
    return Example((*src_ids, eos_id), tuple(tgt_ids), link)


def collate(examples: Sequence[Example], pad_id: int = PAD_ID, bos_id: int = BOS_ID, eos_id: int = EOS_ID) -> Batch:
    """Right-pad a list of examples into a :class:`Batch` (the ids default to this project's)."""
    src = _pad([list(e.src) for e in examples], pad_id)
    tgt_in = _pad([[bos_id, *e.tgt] for e in examples], pad_id)
    tgt_out = _pad([[*e.tgt, eos_id] for e in examples], pad_id)
    if all(e.link is None for e in examples):
        return Batch(src, tgt_in, tgt_out)
    link_query = torch.full((len(examples),), -1, dtype=torch.long)  # (B,)
    link_keys = torch.zeros(src.shape, dtype=torch.bool)  # (B, S)
    for i, example in enumerate(examples):
        if example.link is not None:
            query, keys = example.link
            link_query[i] = query
            link_keys[i, list(keys)] = True
    return Batch(src, tgt_in, tgt_out, link_query, link_keys)


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
