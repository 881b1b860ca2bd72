"""Beam search, batched: B sentences × K hypotheses advance together, with the KV cache.

At each step every live hypothesis is extended by every token; the 2K best candidates of each
sentence are taken, those ending in EOS (among the top K) are set aside as finished, and the
best K others continue. A sentence is done when it has K finished hypotheses; its best is the
one with the highest ``log-probability / length ** length_penalty``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from selfattention.decoding.search import SearchLimits
from selfattention.model import Transformer


@torch.no_grad()
def beam_search(
    model: Transformer,
    src: Tensor,
    bos_id: int,
    eos_id: int,
    beam_size: int = 4,
    length_penalty: float = 1.0,
    limits: SearchLimits | None = None,
) -> list[list[int]]:
    """Token ids of each sentence's best hypothesis (without BOS and EOS)."""
    if beam_size < 1:
        raise ValueError(f"beam size must be at least 1, got {beam_size}")
    limits = limits or SearchLimits()
    batch, k = src.shape[0], beam_size
    device = src.device
    max_lengths = limits.for_sources(src, model.pad_id).repeat_interleave(k)  # (B*K,)
    memory = model.encode(src).repeat_interleave(k, dim=0)  # (B*K, S, D)
    memory_mask = model.source_mask(src).repeat_interleave(k, dim=0)
    state = model.start_state()
    history = torch.full((batch * k, 1), bos_id, dtype=torch.long, device=device)  # (B*K, t)
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = -torch.inf  # all beams start identical: keep one
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    base = (torch.arange(batch, device=device) * k)[:, None]  # (B, 1)
    for step in range(int(max_lengths.max())):
        logits = model.decode(history[:, -1:], memory, memory_mask, state=state)[:, -1]  # (B*K, V)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        log_probs[:, bos_id] = -torch.inf
        log_probs[:, model.pad_id] = -torch.inf
        at_limit = step + 1 >= max_lengths  # (B*K,) only EOS is allowed now
        eos_column = log_probs[:, eos_id].clone()
        log_probs[at_limit] = -torch.inf
        log_probs[:, eos_id] = eos_column
        vocab = log_probs.shape[-1]
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(batch, k * vocab)  # (B, K*V)
        top_scores, top_index = candidates.topk(2 * k, dim=-1)  # (B, 2K), best first
        top_beam, top_token = top_index // vocab, top_index % vocab
        is_eos = top_token == eos_id
        rank = torch.arange(2 * k, device=device)[None, :]
        ends = is_eos & (rank < k) & torch.isfinite(top_scores) & ~done[:, None]
        for b, j in ends.nonzero().tolist():
            tokens = history[base[b, 0] + top_beam[b, j], 1:].tolist()
            length = len(tokens) + 1
            finished[b].append((float(top_scores[b, j]) / length**length_penalty, tokens))
        done |= torch.tensor([len(f) >= k for f in finished], device=device)
        if bool(done.all()):
            break
        live_scores = top_scores.masked_fill(is_eos, -torch.inf)
        keep_scores, keep = live_scores.topk(k, dim=-1)  # (B, K), order preserved
        rows = (base + top_beam.gather(1, keep)).reshape(-1)  # (B*K,)
        scores = keep_scores.masked_fill(done[:, None], -torch.inf)
        history = torch.cat([history[rows], top_token.gather(1, keep).reshape(-1, 1)], dim=1)
        state.reorder(rows)
    results = []
    for b in range(batch):
        if not finished[b]:  # the limit forces EOS, so this only happens with no finite score
            results.append(history[base[b, 0], 1:].tolist())
        else:
            results.append(max(finished[b], key=lambda item: item[0])[1])
    return results
