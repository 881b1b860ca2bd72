"""Greedy decoding: at each step take the most likely next token (batched, with the KV cache)."""

from __future__ import annotations

import torch
from torch import Tensor

from selfattention.model import Transformer
from selfattention.search.limits import SearchLimits
from selfattention.search.steps import StartStep, torch_step


@torch.no_grad()
def greedy_search(
    model: Transformer,
    src: Tensor,
    bos_id: int,
    eos_id: int,
    limits: SearchLimits | None = None,
    *,
    start_step: StartStep = torch_step,
) -> list[list[int]]:
    """Token ids of each sentence's translation (without BOS and EOS).

    ``start_step`` gives the decoding steps (default: ``Transformer.decode``'s,
    :class:`~selfattention.search.steps.TorchStep`).
    """
    limits = limits or SearchLimits()
    batch = src.shape[0]
    max_lengths = limits.for_sources(src, model.pad_id)  # (B,)
    memory = model.encode(src)  # (B, S, D)
    steps = int(max_lengths.max())
    decode_step = start_step(model, memory, model.source_mask(src), batch, steps)
    last = torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device)  # (A, 1), A live sentences
    live = torch.arange(batch, device=src.device)  # (A,) the batch rows still decoding
    tokens = torch.full((batch, steps), eos_id, dtype=torch.long, device=src.device)  # (B, steps)
    for step in range(steps):
        next_token = decode_step.best_token(last, (bos_id, model.pad_id))  # (A,)
        next_token = torch.where(step + 1 >= max_lengths, torch.full_like(next_token, eos_id), next_token)
        tokens[live, step] = next_token
        going = next_token != eos_id  # (A,)
        if not bool(going.all()):  # finished sentences leave the batch and the caches
            if not bool(going.any()):
                break
            kept = going.nonzero().squeeze(1)
            live, next_token, max_lengths = live[kept], next_token[kept], max_lengths[kept]
            decode_step.keep_sources(kept)
            decode_step.keep_targets(kept)
        last = next_token[:, None]
    return [_until_eos(row, eos_id) for row in tokens.tolist()]


def _until_eos(row: list[int], eos_id: int) -> list[int]:
    return row[: row.index(eos_id)] if eos_id in row else row
