"""Greedy decoding: at each step take the most likely next token (batched, with the KV cache)."""

from __future__ import annotations

import torch
from torch import Tensor

from selfattention.decoding.search import SearchLimits
from selfattention.model import Transformer


@torch.no_grad()
def greedy_search(
    model: Transformer, src: Tensor, bos_id: int, eos_id: int, limits: SearchLimits | None = None
) -> list[list[int]]:
    """Token ids of each sentence's translation (without BOS and EOS)."""
    limits = limits or SearchLimits()
    batch = src.shape[0]
    max_lengths = limits.for_sources(src, model.pad_id)  # (B,)
    memory = model.encode(src)  # (B, S, D)
    memory_mask = model.source_mask(src)
    state = model.start_state()
    last = torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    outputs: list[Tensor] = []
    for step in range(int(max_lengths.max())):
        logits = model.decode(last, memory, memory_mask, state=state)[:, -1]  # (B, V)
        logits[:, bos_id] = -torch.inf
        logits[:, model.pad_id] = -torch.inf
        next_token = logits.argmax(dim=-1)  # (B,)
        next_token = torch.where(step + 1 >= max_lengths, torch.full_like(next_token, eos_id), next_token)
        next_token = next_token.masked_fill(finished, eos_id)
        outputs.append(next_token)
        finished |= next_token == eos_id
        if bool(finished.all()):
            break
        last = next_token[:, None]
    tokens = torch.stack(outputs, dim=1).tolist()  # (B, steps)
    return [_until_eos(row, eos_id) for row in tokens]


def _until_eos(row: list[int], eos_id: int) -> list[int]:
    return row[: row.index(eos_id)] if eos_id in row else row
