"""Words of a sentence found among its subword pieces: where "it" and its antecedent are as tokens.

A pronoun pair says which whitespace-separated words are "it" and its antecedent
(:class:`~selfattention.data.pronoun_pairs.LinkedPair`); supervised attention needs their token
positions. SentencePiece starts every whitespace-separated word with a piece that begins with
``▁`` (:data:`~selfattention.data.tokenizer.WORD_START`), so the k-th word starts at the k-th such
piece and runs up to the next one: continuation pieces, punctuation glued to the word (``food`` +
``,``) and a case-marker piece after it (``⇪``) belong to it.

Of "it", the query is one piece: the word's first, or the next one when the first is a bare ``▁``
(a word SentencePiece could not start with its first letters: that piece is the same for every
such word). Of the antecedent, the keys are the pieces that spell the noun: its first piece and
every continuation that holds a letter or digit. Left out are the pieces that hold none: glued
punctuation (``food`` + ``,``) and the case marker ``⇪``. The marker is one piece for every
capitalised word: it says the word was in capitals, not which noun it is, and attention on it
would teach the head "look at a marker", not "look at the noun". Both are words of their own in
the attention views (:mod:`selfattention.inspection.words`), which count a head's attention to
the noun without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from selfattention.data.pronoun_pairs import LinkedPair
from selfattention.data.tokenizer import WORD_START

TokenLink = tuple[int, tuple[int, ...]]
"""A query position (the pronoun's piece) and the key positions (the antecedent's pieces)."""


def word_pieces(pieces: Sequence[str]) -> list[list[int]] | None:
    """The positions of each word's pieces, word by word; None when a piece comes before any word starts."""
    words: list[list[int]] = []
    for position, piece in enumerate(pieces):
        if piece.startswith(WORD_START):
            words.append([position])
        elif words:
            words[-1].append(position)
        else:
            return None
    return words


def token_link(pieces: Sequence[str], word_count: int, pronoun: int, antecedent: Sequence[int]) -> TokenLink | None:
    """Token positions of a pronoun and its antecedent, given as indices of whitespace-separated words.

    ``pieces`` are the sentence's pieces (the source ids as the tokenizer writes them, no start or
    end marker), ``word_count`` how many whitespace-separated words the sentence has. None when the
    pieces do not start as many words (the text was changed, or a piece is unknown), or an index is
    out of range: the caller drops that link.
    """
    words = word_pieces(pieces)
    if words is None or len(words) != word_count or not antecedent:
        return None
    if not all(0 <= index < word_count for index in (pronoun, *antecedent)):
        return None
    first = words[pronoun]
    query = first[1] if pieces[first[0]] == WORD_START and len(first) > 1 else first[0]
    keys: list[int] = []
    for index in antecedent:
        start, *rest = words[index]
        keys.append(start)  # even a bare "▁": the word starts there
        keys.extend(position for position in rest if any(ch.isalnum() for ch in pieces[position]))
    return query, tuple(keys)


def source_links(
    sources: Sequence[str],
    ids: Sequence[Sequence[int]],
    links: Sequence[LinkedPair | None],
    pieces: Callable[[Sequence[int]], list[str]],
) -> tuple[list[TokenLink | None], int]:
    """Each source sentence's token link (None where it has no link), and how many links were dropped.

    ``ids`` are the sentences' source ids (no markers), ``pieces`` the tokenizer's ids-to-pieces.
    A link is dropped where the words and the pieces disagree (:func:`token_link`).
    """
    out: list[TokenLink | None] = []
    dropped = 0
    for text, sentence_ids, link in zip(sources, ids, links, strict=True):
        found = None
        if link is not None:
            found = token_link(pieces(sentence_ids), len(text.split()), link.pronoun, link.antecedent)
            dropped += found is None
        out.append(found)
    return out, dropped
