"""Beam search, batched: B sentences × K hypotheses advance together, with the KV cache.

At each step every live hypothesis is extended by every token; the 2K best candidates of each
sentence are taken, those ending in EOS (among the top K) are set aside as finished, and the
best K others continue. A sentence is done when it has K finished hypotheses; its best is the
one with the highest ``log-probability / length ** length_penalty``.

A finished sentence leaves the batch, its source and every cache, so the steps after it cost
only what the sentences still searching need. The K hypotheses of a sentence share its source
keys and values: cross-attention takes them as K query rows of the sentence (the source is
neither repeated nor projected K times), and reordering hypotheses touches the self-attention
caches only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from selfattention.model import Transformer
from selfattention.search.limits import SearchLimits
from selfattention.search.steps import StartStep, torch_step


@torch.no_grad()
def beam_search(
    model: Transformer,
    src: Tensor,
    bos_id: int,
    eos_id: int,
    beam_size: int = 4,
    length_penalty: float = 1.0,
    limits: SearchLimits | None = None,
    *,
    start_step: StartStep = torch_step,
) -> list[list[int]]:
    """Token ids of each sentence's best hypothesis (without BOS and EOS).

    ``start_step`` gives the decoding steps (default: ``Transformer.decode``'s,
    :class:`~selfattention.search.steps.TorchStep`).
    """
    if beam_size < 1:
        raise ValueError(f"beam size must be at least 1, got {beam_size}")
    limits = limits or SearchLimits()
    batch, k = src.shape[0], beam_size
    device = src.device
    max_lengths = limits.for_sources(src, model.pad_id).repeat_interleave(k)  # (A*K,), A live sentences
    memory = model.encode(src)  # (A, S, D): each sentence's K hypotheses attend to it as K query rows
    steps = int(max_lengths.max())
    decode_step = start_step(model, memory, model.source_mask(src), batch * k, steps)
    last = torch.full((batch * k, 1), bos_id, dtype=torch.long, device=device)  # (A*K, 1) each row's last token
    trail: list[tuple[list[int], list[int]]] = []  # per step: each row's parent row (the step before) and token
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = -torch.inf  # all beams start identical: keep one
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    live = list(range(batch))  # the sentence each of the A live rows of ``scores`` belongs to
    offsets = torch.arange(k, device=device)
    rank = torch.arange(2 * k, device=device)[None, :]
    vocab, banned = model.output_proj.out_features, sorted({bos_id, model.pad_id})
    wanted = min(
        2 * k, vocab - len(banned)
    )  # each hypothesis's 2K best next tokens: a sentence's 2K best candidates are among them
    first_limit = int(max_lengths.min())  # no row is at its limit before this step
    for step in range(steps):
        alive = len(live)
        row_scores, row_tokens, eos_scores = decode_step.best_tokens(last, wanted, banned, eos_id)
        at_limit = step + 1 >= max_lengths if step + 1 >= first_limit else None  # (A*K,) only EOS is allowed now
        top_scores, top_beam, top_token = best_candidates(
            scores, row_scores, row_tokens, eos_scores, at_limit, eos_id
        )  # (A, 2K) each
        is_eos = top_token == eos_id
        ends = (is_eos & (rank < k) & torch.isfinite(top_scores)).nonzero().tolist()
        if ends:
            beam_of, score_of = top_beam.tolist(), top_scores.tolist()
            for a, j in ends:
                tokens = traced(trail, a * k + beam_of[a][j])
                finished[live[a]].append((score_of[a][j] / (len(tokens) + 1) ** length_penalty, tokens))
        live_scores = top_scores.masked_fill(is_eos, -torch.inf)
        scores, keep = live_scores.topk(k, dim=-1)  # (A, K), order preserved
        rows = (torch.arange(alive, device=device) * k)[:, None] + top_beam.gather(1, keep)  # (A, K)
        next_tokens = top_token.gather(1, keep)  # (A, K)
        going = [a for a in range(alive) if len(finished[live[a]]) < k]
        if not going:
            break
        if len(going) < alive:  # finished sentences leave the batch, the caches and the source
            kept = torch.tensor(going, device=device)
            scores, rows, next_tokens = scores[kept], rows[kept], next_tokens[kept]
            sentence_rows = (kept[:, None] * k + offsets).reshape(-1)  # (A'*K,) in the old layout
            max_lengths = max_lengths[sentence_rows]
            first_limit = int(max_lengths.min())
            decode_step.keep_sources(kept)
            live = [live[a] for a in going]
        flat = rows.reshape(-1)  # (A'*K,): which old row each new hypothesis extends
        last = next_tokens.reshape(-1, 1)
        trail.append((flat.tolist(), last.reshape(-1).tolist()))
        decode_step.keep_targets(flat)
    results = []
    for b in range(batch):
        if not finished[b]:  # the limit forces EOS, so this only happens with no finite score
            results.append(traced(trail, live.index(b) * k))
        else:
            results.append(max(finished[b], key=lambda item: item[0])[1])
    return results


def traced(trail: list[tuple[list[int], list[int]]], row: int) -> list[int]:
    """The tokens of hypothesis ``row`` after the steps of ``trail``, back through its parents."""
    tokens = []
    for parents, step_tokens in reversed(trail):
        tokens.append(step_tokens[row])
        row = parents[row]
    tokens.reverse()
    return tokens


def best_candidates(
    scores: Tensor, row_scores: Tensor, row_tokens: Tensor, eos_scores: Tensor, at_limit: Tensor | None, eos_id: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Each sentence's 2K best extensions, best first: ``(scores, hypothesis, token)``, each ``(A, 2K)``.

    ``scores`` ``(A, K)`` are the hypotheses' log-probabilities; ``row_scores`` and ``row_tokens``
    ``(A*K, W)`` each hypothesis's W <= 2K best next tokens (fewer with a vocabulary smaller than
    2K) and their log-probabilities, ``eos_scores`` ``(A*K,)`` the end token's; ``at_limit``
    ``(A*K,)`` the hypotheses that may only end (EOS), None if none. The sentence's K × 2K candidates give its 2K best.
    """
    alive, k = scores.shape
    wanted = row_scores.shape[1]
    if wanted < 2 * k:  # a vocabulary smaller than 2K: the missing candidates are impossible ones
        row_scores = F.pad(row_scores, (0, 2 * k - wanted), value=-torch.inf)
        row_tokens = F.pad(row_tokens, (0, 2 * k - wanted), value=eos_id)
    if at_limit is not None:
        rank = torch.arange(2 * k, device=scores.device)[None, :]
        only_eos = torch.where(rank == 0, eos_scores[:, None], -torch.inf)  # (A*K, 2K)
        row_scores = torch.where(at_limit[:, None], only_eos, row_scores)
        row_tokens = torch.where(at_limit[:, None], eos_id, row_tokens)
    candidates = (scores.reshape(-1, 1) + row_scores).reshape(alive, k * 2 * k)  # (A, K*2K)
    top_scores, top_index = candidates.topk(2 * k, dim=-1)  # (A, 2K), best first
    return top_scores, top_index // (2 * k), row_tokens.reshape(alive, -1).gather(1, top_index)
