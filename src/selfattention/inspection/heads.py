"""Which heads link one word to another: every layer and head ranked by that weight.

"A dog ate the food because it was hungry": which heads make "it" attend to "dog"? For each
layer and head, the weight from the first word to the second is read off the recorded
attention (subword pieces merged into words as :mod:`selfattention.inspection.words` says) and
the heads are sorted by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfattention.inspection.recorder import AttentionKind
from selfattention.inspection.tracing import TranslationTrace
from selfattention.inspection.words import find_word, group_words, word_attention


@dataclass(frozen=True)
class HeadScore:
    layer: int
    head: int
    weight: float  # share of the from-word's attention that goes to the to-word
    rank_of_target: int  # 1 if the to-word is where this head looks most from the from-word
    strongest: str  # the word this head attends to most from the from-word


def rank_heads(
    trace: TranslationTrace,
    from_word: str,
    to_word: str,
    kind: AttentionKind = "encoder",
    *,
    from_occurrence: int = 1,
    to_occurrence: int = 1,
) -> list[HeadScore]:
    """Every (layer, head) of ``kind``, the strongest link from ``from_word`` to ``to_word`` first."""
    query_labels, key_labels = trace.labels(kind)
    query_words, key_words = group_words(query_labels), group_words(key_labels)
    source = find_word(query_words, from_word, from_occurrence)
    target = find_word(key_words, to_word, to_occurrence)
    scores = []
    for layer in range(trace.recorder.layers(kind)):
        weights = trace.recorder.attention(kind, layer).weights[0]  # (H, T, S)
        words = word_attention(weights, query_words, key_words)  # (H, words_T, words_S)
        for head in range(words.shape[0]):
            row = words[head, source]
            order = row.argsort(descending=True).tolist()
            scores.append(HeadScore(layer, head, float(row[target]), order.index(target) + 1, key_words[order[0]].text))
    return sorted(scores, key=lambda s: (-s.weight, s.layer, s.head))
