"""Watch it translate: the search, step by step, as the decoder writes each token.

For one sentence, at each step of the translation it finally gives:

- the token the decoder reads and the one it writes;
- the top k of the output softmax at that step (the next-token probabilities);
- the cross-attention of that step, every layer and head, over the English pieces;
- the hypotheses the beam search keeps after that step, with their log-probabilities, and those
  it sets aside as finished.

The beam search here is the textbook one, written to be read: one sentence, every hypothesis
decoded again from its start (no cache), candidates in plain lists. It follows
:func:`selfattention.search.beam_search`'s rules: each step takes the 2K best extensions of the K
hypotheses; an extension that ends the sentence (EOS) within the K best is set aside, scored
``log-probability / length ** length_penalty``; the K best others go on; the search stops when K
are finished or at the length limit, where only EOS is allowed. The tests hold that both searches
give the same translation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from selfattention.data.tokenizer import SubwordTokenizer
from selfattention.decoding.sentences import check_pieces
from selfattention.decoding.translator import DecodingConfig, max_source_length, special_ids
from selfattention.inspection.recorder import TraceRecorder
from selfattention.inspection.tracing import special_labels, token_labels
from selfattention.model import Transformer
from selfattention.search.limits import SearchLimits


@dataclass(frozen=True)
class Hypothesis:
    """One candidate translation in the beam."""

    ids: list[int]  # without BOS; ends with EOS when finished
    pieces: list[str]  # their labels
    text: str
    log_prob: float  # the sum of its tokens' log-probabilities
    score: float  # what the search ranks by: log_prob, or log_prob / length ** penalty once finished
    finished: bool


@dataclass(frozen=True)
class WatchStep:
    """One step of the translation: what was read, what was written, and why."""

    index: int
    reads: str  # the token the decoder reads at this step (<s> first)
    writes: str  # the token the translation writes (</s> last)
    top: list[tuple[str, float]]  # the k likeliest next tokens and their probabilities, likeliest first
    written_probability: float  # the probability of the token written
    cross: Tensor  # (L, H, S): this step's cross-attention over the source pieces, every layer and head
    beam: list[Hypothesis]  # the hypotheses kept after this search step, best first (empty past the search)
    ended: list[Hypothesis]  # those set aside as finished at this step


@dataclass(frozen=True)
class WatchedTranslation:
    source: str
    translation: str
    source_labels: list[str]
    beam_size: int
    steps: list[WatchStep]
    search_steps: int  # how many steps the search ran (it can run past the best translation's end)


def watch_translation(
    model: Transformer,
    tokenizer: SubwordTokenizer,
    source: str,
    decoding: DecodingConfig | None = None,
    *,
    top_k: int = 5,
) -> WatchedTranslation:
    """Translate ``source`` with the textbook beam search and record every step."""
    config = decoding or DecodingConfig(beam_size=4)
    if config.beam_size < 1:
        raise ValueError(f"beam size must be at least 1, got {config.beam_size}")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    pad_id, bos_id, eos_id = special_ids(model)
    source_ids = [*tokenizer.encode(source), eos_id]
    check_pieces(source_ids[:-1], max_source_length(model))
    specials = special_labels(model)
    device = next(model.parameters()).device
    src = torch.tensor([source_ids], device=device)
    limits = SearchLimits(config.max_len_a, config.max_len_b)
    max_length = int(limits.for_sources(src, pad_id)[0])

    def label(ids: list[int]) -> list[str]:
        return token_labels(tokenizer, ids, specials) if ids else []

    def hypothesis(ids: list[int], log_prob: float, finished: bool) -> Hypothesis:
        body = ids[:-1] if finished else ids
        score = log_prob / (len(ids)) ** config.length_penalty if finished else log_prob
        return Hypothesis(ids, label(ids), tokenizer.decode(body), log_prob, score, finished)

    with torch.inference_mode():
        memory = model.encode(src)
        mask = model.source_mask(src)
        beams, best, search_steps = _beam_search(
            model, memory, mask, bos_id, eos_id, pad_id, config.beam_size, max_length, hypothesis
        )
        written = best.ids if best.finished else [*best.ids, eos_id]
        target = torch.tensor([[bos_id, *written[:-1]]], device=device)
        recorder = TraceRecorder(kinds=("cross",))
        logits = model.decode(target, memory, mask, recorder=recorder)[0]  # (T, V)
    probabilities = logits.float().softmax(dim=-1)
    top = probabilities.topk(min(top_k, probabilities.shape[-1]), dim=-1)
    layers = len(model.decoder.layers)
    cross = torch.stack([recorder.attention("cross", layer).weights[0] for layer in range(layers)])  # (L, H, T, S)
    reads = label([bos_id, *written[:-1]])
    writes = label(written)
    steps = []
    for t in range(len(written)):
        beam, ended = beams[t] if t < len(beams) else ([], [])
        steps.append(
            WatchStep(
                index=t,
                reads=reads[t],
                writes=writes[t],
                top=[
                    (_label(tokenizer, i, specials), p)
                    for p, i in zip(top.values[t].tolist(), top.indices[t].tolist(), strict=True)
                ],
                written_probability=float(probabilities[t, written[t]]),
                cross=cross[:, :, t].float().cpu(),
                beam=beam,
                ended=ended,
            )
        )
    return WatchedTranslation(
        source=source,
        translation=best.text,
        source_labels=token_labels(tokenizer, source_ids, specials),
        beam_size=config.beam_size,
        steps=steps,
        search_steps=search_steps,
    )


def _label(tokenizer: SubwordTokenizer, token_id: int, specials: dict[int, str]) -> str:
    return token_labels(tokenizer, [token_id], specials)[0]


def _beam_search(
    model: Transformer,
    memory: Tensor,
    mask: Tensor,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    k: int,
    max_length: int,
    make: Callable[[list[int], float, bool], Hypothesis],
) -> tuple[list[tuple[list[Hypothesis], list[Hypothesis]]], Hypothesis, int]:
    """The textbook beam search: per step, the kept and the finished hypotheses; the best; the steps run.

    ``make(ids, log_prob, finished)`` builds a :class:`Hypothesis`.
    """
    live: list[tuple[list[int], float]] = [([], 0.0)]
    finished: list[Hypothesis] = []
    record: list[tuple[list[Hypothesis], list[Hypothesis]]] = []
    banned = sorted({bos_id, pad_id})
    step = 0
    for step in range(max_length):
        prefixes = torch.tensor([[bos_id, *ids] for ids, _ in live], device=memory.device)
        rows = len(live)
        logits = model.decode(prefixes, memory.expand(rows, -1, -1), mask.expand(rows, -1, -1, -1))[:, -1]
        log_probs = logits.float().log_softmax(dim=-1)
        log_probs[:, banned] = -math.inf
        if step + 1 >= max_length:  # the limit: only the end token is allowed now
            only_end = torch.full_like(log_probs, -math.inf)
            only_end[:, eos_id] = log_probs[:, eos_id]
            log_probs = only_end
        totals = torch.tensor([score for _, score in live], device=log_probs.device)[:, None] + log_probs
        values, flat = totals.reshape(-1).topk(min(2 * k, totals.numel()))
        vocab = log_probs.shape[-1]
        candidates = [
            (live[index // vocab][0] + [index % vocab], value)
            for value, index in zip(values.tolist(), flat.tolist(), strict=True)
            if math.isfinite(value)
        ]
        ended = [
            make(ids, value, True) for rank, (ids, value) in enumerate(candidates) if ids[-1] == eos_id and rank < k
        ]
        finished.extend(ended)
        live = [(ids, value) for ids, value in candidates if ids[-1] != eos_id][:k]
        record.append(([make(ids, value, False) for ids, value in live], ended))
        if len(finished) >= k or not live:
            break
    # Without a finished hypothesis (possible only with no finite score), the best live one.
    best = max(finished, key=lambda h: h.score) if finished else make(live[0][0], live[0][1], False)
    return record, best, step + 1
