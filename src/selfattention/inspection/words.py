"""Subword pieces merged back into words, and attention between words.

A word is a piece that starts a word (shown bare, or ``␣`` when it holds no letters) followed by
its continuation pieces (labelled ``##``); ``<s>``, ``</s>`` and punctuation glued to a word ("hungry" + ".")
are words of their own. Attention between words
follows Clark et al. (2019), "What Does BERT Look At?": attention *to* a word is the sum over
its pieces (the share of the row it receives), attention *from* a word is the mean over its
pieces' rows (so each row still sums to 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from selfattention.data.casing import CASE_MARKER
from selfattention.inspection.notation import CONTINUES, LONE_WORD_START

SPECIAL_TOKENS = ("<s>", "</s>")  # the start and end markers: positions, not words of the sentence


@dataclass(frozen=True)
class Word:
    text: str
    pieces: tuple[int, ...]  # positions of its pieces in the token sequence


def group_words(labels: list[str]) -> list[Word]:
    """Words from token labels as :func:`token_labels` writes them.

    A case marker piece (``⇪``, data/casing.py) belongs to the word before it, which it puts in
    capitals: ``▁dog`` ``⇪`` is the word "DOG".
    """
    words: list[tuple[str, list[int]]] = []
    for position, label in enumerate(labels):
        if label == CONTINUES + CASE_MARKER and words and words[-1][0] not in SPECIAL_TOKENS:
            text, pieces = words[-1]
            words[-1] = (text.upper(), [*pieces, position])
            continue
        continuation = label.startswith(CONTINUES) and not _is_punctuation(label[len(CONTINUES) :])
        if continuation and words and words[-1][0] not in SPECIAL_TOKENS:
            text, pieces = words[-1]
            text = "" if text == LONE_WORD_START else text  # a lone word-start piece begins the word
            words[-1] = (text + label[len(CONTINUES) :], [*pieces, position])
        else:
            words.append((label.removeprefix(CONTINUES), [position]))
    return [Word(text, tuple(pieces)) for text, pieces in words]


def _is_punctuation(text: str) -> bool:
    return bool(text) and all(not ch.isalnum() for ch in text)


def word_attention(weights: Tensor, query_words: list[Word], key_words: list[Word]) -> Tensor:
    """``(..., T, S)`` piece attention to ``(..., words_T, words_S)`` word attention."""
    to_words = [weights[..., list(word.pieces)].sum(dim=-1) for word in key_words]  # each (..., T)
    by_key = torch.stack(to_words, dim=-1)  # (..., T, words_S)
    from_words = [by_key[..., list(word.pieces), :].mean(dim=-2) for word in query_words]  # each (..., words_S)
    return torch.stack(from_words, dim=-2)  # (..., words_T, words_S)


def find_word(words: list[Word], text: str, occurrence: int = 1) -> int:
    """Index of the ``occurrence``-th word equal to ``text`` (case-insensitive)."""
    wanted = text.strip().lower()
    matches = [i for i, word in enumerate(words) if word.text.lower() == wanted]
    if len(matches) < occurrence or occurrence < 1:
        listed = ", ".join(repr(word.text) for word in words if word.text not in SPECIAL_TOKENS)
        found = f"it occurs {len(matches)} time(s)" if matches else "it is not there"
        raise ValueError(f"no word {text!r} (occurrence {occurrence}) in the sentence: {found}. Words: {listed}")
    return matches[occurrence - 1]
