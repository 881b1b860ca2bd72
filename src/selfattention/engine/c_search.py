"""Greedy and beam search on the C model's steps, in numpy: :mod:`selfattention.search` without PyTorch.

The same searches, step for step, as :func:`~selfattention.search.greedy_search` and
:func:`~selfattention.search.beam_search` (which stay the definition; a test holds these to their
tokens): the same length limits, banned tokens (start and padding), candidates (each
hypothesis's 2K best next tokens, each sentence's 2K best of those), finished hypotheses scored by
``log-probability / length ** length_penalty``, and finished sentences leaving the batch. Ties
among candidates go to the lower index.
"""

from __future__ import annotations

import numpy as np

from selfattention.engine.c_model import CModel
from selfattention.engine.c_step import CStep


def max_lengths(src: np.ndarray, pad_id: int, max_len_a: float, max_len_b: int, hard_limit: int) -> np.ndarray:
    """Each sentence's longest output ``(B,)``: ``floor(a · source length) + b`` tokens (EOS included),
    clamped to [1, hard_limit], computed in float32 as :class:`~selfattention.search.SearchLimits` does."""
    lengths = (src != pad_id).sum(axis=1).astype(np.float32)
    limits = np.floor(lengths * np.float32(max_len_a)) + np.float32(max_len_b)
    return np.clip(limits, 1, hard_limit).astype(np.int64)


def greedy(model: CModel, src: np.ndarray, bos_id: int, eos_id: int, limits: np.ndarray) -> list[list[int]]:
    """Token ids of each sentence's translation (without BOS and EOS); ``limits`` from :func:`max_lengths`."""
    batch = len(src)
    memory, mask = model.encode(src)
    steps = int(limits.max())
    step = CStep(model, memory, mask, batch, steps)
    last = np.full(batch, bos_id, dtype=np.int64)
    live = np.arange(batch)
    tokens = np.full((batch, steps), eos_id, dtype=np.int64)
    banned = (bos_id, model.pad_id)
    for position in range(steps):
        next_token = step.best_token(last, banned)
        next_token = np.where(position + 1 >= limits, eos_id, next_token)
        tokens[live, position] = next_token
        going = next_token != eos_id
        if not going.all():  # finished sentences leave the batch and the caches
            if not going.any():
                break
            kept = np.flatnonzero(going)
            live, next_token, limits = live[kept], next_token[kept], limits[kept]
            step.keep_sources(kept)
            step.keep_targets(kept)
        last = next_token
    return [_until_eos(row, eos_id) for row in tokens.tolist()]


def _until_eos(row: list[int], eos_id: int) -> list[int]:
    return row[: row.index(eos_id)] if eos_id in row else row


def _top(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k largest values, best first, and their columns (ties: the lower column)."""
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(values, order, axis=1), order


def beam(
    model: CModel,
    src: np.ndarray,
    bos_id: int,
    eos_id: int,
    beam_size: int,
    length_penalty: float,
    limits: np.ndarray,
) -> list[list[int]]:
    """Token ids of each sentence's best hypothesis (without BOS and EOS); ``limits`` from :func:`max_lengths`."""
    if beam_size < 1:
        raise ValueError(f"beam size must be at least 1, got {beam_size}")
    batch, k = len(src), beam_size
    limits = np.repeat(limits, k)  # (A*K,)
    memory, mask = model.encode(src)
    steps = int(limits.max())
    step = CStep(model, memory, mask, batch * k, steps)
    last = np.full(batch * k, bos_id, dtype=np.int64)
    trail: list[tuple[list[int], list[int]]] = []  # per step: each row's parent row and token
    scores = np.zeros((batch, k), dtype=np.float32)
    scores[:, 1:] = -np.inf  # all beams start identical: keep one
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    live = list(range(batch))
    rank = np.arange(2 * k)[None, :]
    banned = sorted({bos_id, model.pad_id})
    wanted = min(2 * k, model.vocab - len(banned))
    first_limit = int(limits.min())
    for position in range(steps):
        alive = len(live)
        row_scores, row_tokens, eos_scores = step.best_tokens(last, wanted, banned, eos_id)
        at_limit = position + 1 >= limits if position + 1 >= first_limit else None
        top_scores, top_beam, top_token = _best_candidates(scores, row_scores, row_tokens, eos_scores, at_limit, eos_id)
        is_eos = top_token == eos_id
        ends = np.argwhere(is_eos & (rank < k) & np.isfinite(top_scores)).tolist()
        for a, j in ends:
            tokens = traced(trail, a * k + int(top_beam[a, j]))
            finished[live[a]].append((float(top_scores[a, j]) / (len(tokens) + 1) ** length_penalty, tokens))
        live_scores = np.where(is_eos, np.float32(-np.inf), top_scores)
        scores, keep = _top(live_scores, k)
        rows = (np.arange(alive) * k)[:, None] + np.take_along_axis(top_beam, keep, axis=1)
        next_tokens = np.take_along_axis(top_token, keep, axis=1)
        going = [a for a in range(alive) if len(finished[live[a]]) < k]
        if not going:
            break
        if len(going) < alive:  # finished sentences leave the batch, the caches and the source
            kept = np.array(going)
            scores, rows, next_tokens = scores[kept], rows[kept], next_tokens[kept]
            limits = limits[(kept[:, None] * k + np.arange(k)).reshape(-1)]
            first_limit = int(limits.min())
            step.keep_sources(kept)
            live = [live[a] for a in going]
        flat = rows.reshape(-1)
        last = next_tokens.reshape(-1)
        trail.append((flat.tolist(), last.tolist()))
        step.keep_targets(flat)
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


def _best_candidates(
    scores: np.ndarray,
    row_scores: np.ndarray,
    row_tokens: np.ndarray,
    eos_scores: np.ndarray,
    at_limit: np.ndarray | None,
    eos_id: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sentence's 2K best extensions, best first: ``(scores, hypothesis, token)``, each ``(A, 2K)``;
    as :func:`selfattention.search.beam.best_candidates`."""
    alive, k = scores.shape
    wanted = row_scores.shape[1]
    if wanted < 2 * k:  # a vocabulary smaller than 2K: the missing candidates are impossible ones
        row_scores = np.pad(row_scores, ((0, 0), (0, 2 * k - wanted)), constant_values=-np.inf)
        row_tokens = np.pad(row_tokens, ((0, 0), (0, 2 * k - wanted)), constant_values=eos_id)
    if at_limit is not None:
        only_eos = np.where(np.arange(2 * k)[None, :] == 0, eos_scores[:, None], np.float32(-np.inf))
        row_scores = np.where(at_limit[:, None], only_eos, row_scores).astype(np.float32)
        row_tokens = np.where(at_limit[:, None], eos_id, row_tokens)
    candidates = (scores.reshape(-1, 1) + row_scores).reshape(alive, k * 2 * k)
    top_scores, top_index = _top(candidates, 2 * k)
    return top_scores, top_index // (2 * k), np.take_along_axis(row_tokens.reshape(alive, -1), top_index, axis=1)


__all__ = ["beam", "greedy", "max_lengths", "traced"]
