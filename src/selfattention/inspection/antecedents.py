"""How often each head's attention from "it" lands most on the noun "it" refers to: seed 000's picture, counted.

"A dog ate the food because it was hungry": a head that resolves "it" attends from "it" to "dog"
more than to any other word. Over a set of sentences, each encoder layer and head gets the share
of sentences on which it does that.

The antecedent is found from the sentence and the French pronoun "it" must become (il or elle),
by :func:`find_antecedent`: the candidates are the words right after a determiner (the, a, an, my,
your, his, her, our, their, this, that) before "it". One candidate is the antecedent. Among several,
a noun-gender lexicon (English noun → il / elle), when given, picks the one candidate whose gender
is the expected pronoun; otherwise the sentence is skipped, and the skip is reported with its reason.

Words are subword pieces merged as :mod:`selfattention.inspection.words` merges them (attention
from a word is the mean over its pieces, attention to a word the sum). Where a head "lands most"
is the word with the largest weight from "it" among the sentence's other words: "it" itself,
punctuation, ``<s>`` and ``</s>`` are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from selfattention.decoding import Translator
from selfattention.inspection.tracing import TranslationTrace, trace_translation
from selfattention.inspection.words import group_words, word_attention

DETERMINERS = frozenset({"the", "a", "an", "my", "your", "his", "her", "our", "their", "this", "that"})
PRONOUN = "it"
_SPECIAL = frozenset({"<s>", "</s>"})


class NoAntecedent(ValueError):
    """The antecedent of "it" cannot be told from the sentence (and the lexicon); the message says why."""


@dataclass(frozen=True)
class Antecedent:
    pronoun: int  # index of "it" among the sentence's words
    noun: int  # index of the word it refers to


def find_antecedent(words: Sequence[str], expected: str, genders: Mapping[str, str] | None = None) -> Antecedent:
    """Where "it" and its antecedent are among ``words``; ``expected`` is the pronoun French needs (il / elle).

    ``genders`` maps lower-cased English nouns to "il" or "elle". Raises :class:`NoAntecedent` when
    the sentence has no "it" or more than one, no candidate, or several candidates that the lexicon
    does not tell apart.
    """
    lowered = [word.lower() for word in words]
    places = [i for i, word in enumerate(lowered) if word == PRONOUN]
    if len(places) != 1:
        raise NoAntecedent(f"{PRONOUN!r} occurs {len(places)} times, not once")
    pronoun = places[0]
    candidates = [
        i
        for i in range(1, pronoun)
        if lowered[i - 1] in DETERMINERS and lowered[i].isalpha() and lowered[i] not in DETERMINERS
    ]
    if not candidates:
        raise NoAntecedent(f"no word after a determiner before {PRONOUN!r}")
    if len(candidates) == 1:
        return Antecedent(pronoun, candidates[0])
    listed = ", ".join(words[i] for i in candidates)
    if genders is None:
        raise NoAntecedent(f"several candidates ({listed}) and no noun-gender lexicon")
    matching = [i for i in candidates if genders.get(lowered[i]) == expected]
    if len(matching) != 1:
        raise NoAntecedent(f"{len(matching)} of the candidates ({listed}) take {expected!r} in the lexicon, not one")
    return Antecedent(pronoun, matching[0])


def antecedent_hits(trace: TranslationTrace, antecedent: Antecedent) -> Tensor:
    """``(layers, heads)`` booleans: whether each encoder head attends from "it" most to its antecedent.

    ``antecedent`` indexes the trace's source words (``group_words(trace.source_labels)``), as
    :func:`find_antecedent` finds it among their texts.
    """
    words = group_words(trace.source_labels)
    eligible = torch.tensor([i != antecedent.pronoun and _is_word(w.text) for i, w in enumerate(words)])  # (words_S,)
    hits = []
    for layer in range(trace.recorder.layers("encoder")):
        weights = trace.recorder.attention("encoder", layer).weights[0]  # (H, T, S)
        row = word_attention(weights, words, words)[:, antecedent.pronoun]  # (H, words_S)
        row = row.masked_fill(~eligible, -torch.inf)
        hits.append(row.argmax(dim=-1) == antecedent.noun)  # (H,)
    return torch.stack(hits)  # (layers, H)


def _is_word(text: str) -> bool:
    """A word of the sentence: not ``<s>`` or ``</s>``, and not punctuation alone."""
    return text not in _SPECIAL and any(ch.isalnum() for ch in text)


@dataclass(frozen=True)
class HeadShare:
    layer: int
    head: int
    right: int  # sentences on which this head attends from "it" most to the antecedent
    sentences: int  # sentences counted

    @property
    def share(self) -> float:
        return self.right / self.sentences if self.sentences else 0.0


@dataclass(frozen=True)
class AntecedentHeads:
    """Every encoder head's share, best first, and which sentences were counted or skipped (with why)."""

    heads: list[HeadShare]
    counted: list[str]
    skipped: list[tuple[str, str]]  # (sentence, reason)


def rank_antecedent_heads(
    translator: Translator, examples: Sequence[tuple[str, str]], genders: Mapping[str, str] | None = None
) -> AntecedentHeads:
    """For each encoder layer and head, how often "it" attends most to its antecedent over ``examples``.

    ``examples`` are (English sentence, "il" or "elle") pairs, as in ``pronouns.tsv``; ``genders``
    is an optional noun-gender lexicon (see :func:`find_antecedent`). Only the encoder runs: its
    attention does not depend on the translation.
    """
    totals: Tensor | None = None
    counted: list[str] = []
    skipped: list[tuple[str, str]] = []
    for sentence, expected in examples:
        # An empty French side: nothing is translated and only the encoder is traced.
        trace = trace_translation(translator.model, translator.tokenizer, sentence, target="", kinds=("encoder",))
        try:
            antecedent = find_antecedent([w.text for w in group_words(trace.source_labels)], expected, genders)
        except NoAntecedent as reason:
            skipped.append((sentence, str(reason)))
            continue
        hits = antecedent_hits(trace, antecedent).long()  # (layers, H)
        totals = hits if totals is None else totals + hits
        counted.append(sentence)
    heads: list[HeadShare] = []
    if totals is not None:
        for layer, row in enumerate(totals.tolist()):
            heads.extend(HeadShare(layer, head, right, len(counted)) for head, right in enumerate(row))
    heads.sort(key=lambda s: (-s.right, s.layer, s.head))
    return AntecedentHeads(heads, counted, skipped)
