"""Where "it" and its antecedent are among a sentence's subword pieces (data/links.py)."""

from __future__ import annotations

import random

import pytest

from conftest import pronoun_corpus
from selfattention.data import Tokenizer
from selfattention.data.augment import NoiseShares, add_noise
from selfattention.data.links import source_links, token_link, word_pieces
from selfattention.data.pronoun_pairs import LinkedPair, PronounPairs

MARKER = "⇪"  # the case marker's piece, after the word it marks


def test_a_word_is_its_start_piece_and_the_pieces_up_to_the_next_start() -> None:
    pieces = ["▁The", "▁hun", "gry", "▁dog", MARKER, "▁ate", "▁it", "."]
    assert word_pieces(pieces) == [[0], [1, 2], [3, 4], [5], [6, 7]]
    assert word_pieces(["gry", "▁dog"]) is None  # a piece before any word starts


def test_the_query_is_its_first_piece_and_the_keys_the_nouns_pieces() -> None:
    # "The HOT-DOG, I ate it." with its capitals marked: The | hot⇪-dog⇪, | I | ate | it.
    pieces = ["▁The", "▁hot", MARKER, "-", "dog", MARKER, ",", "▁I", "▁ate", "▁it", "."]
    query, keys = token_link(pieces, 5, pronoun=4, antecedent=(1,))  # type: ignore[misc]
    assert pieces[query] == "▁it"
    # the pieces that spell the noun: not the markers, the hyphen or the comma
    assert [pieces[k] for k in keys] == ["▁hot", "dog"]
    query, keys = token_link(["▁The", "▁food", "s", MARKER, ",", "▁but", "▁", "IT", "▁was"], 5, 3, (1,))  # type: ignore[misc]
    assert keys == (1, 2)  # continuation pieces are the noun; the marker and the comma are not
    assert query == 7  # a bare "▁" piece is the same for every such word: the query is the next piece


def test_a_compound_noun_is_all_its_words() -> None:
    pieces = ["▁The", "▁ice", "▁cre", "am", "▁melted", "▁because", "▁it", "▁was", "▁warm", "."]
    assert token_link(pieces, 8, pronoun=5, antecedent=(1, 2)) == (6, (1, 2, 3))


@pytest.mark.parametrize(
    ("word_count", "pronoun", "antecedent"),
    [(4, 3, (1,)), (6, 3, (1,)), (5, 5, (1,)), (5, 3, ()), (5, 3, (-1,))],
)
def test_words_and_pieces_that_disagree_give_no_link(
    word_count: int, pronoun: int, antecedent: tuple[int, ...]
) -> None:
    pieces = ["▁Where", "▁is", "▁my", "▁bag", "?", "▁It"]
    assert token_link([*pieces[:-1], "▁It"], 5, 4, (3,)) == (5, (3,))
    assert token_link(pieces, word_count, pronoun, antecedent) is None


@pytest.mark.parametrize("case_markers", [False, True])
def test_generated_pairs_map_onto_a_real_vocabulary_through_noise(case_markers: bool) -> None:
    generator = PronounPairs(pronoun_corpus())
    rng = random.Random(4)
    linked = generator.generate_linked(300, rng)
    noisy = add_noise([pair.pair for pair in linked], NoiseShares(0.2, 0.2, 0.2, 0.3), rng)
    tokenizer = Tokenizer.train([text for pair in noisy for text in pair], vocab_size=150, case_markers=case_markers)
    sources = [english for english, _ in noisy]
    ids = tokenizer.encode_batch(sources)
    links, dropped = source_links(sources, ids, [*linked[:-1], None], tokenizer.pieces)
    assert links[-1] is None and dropped == 0  # a pair without a link stays without one; the others all map
    for text, sentence_ids, pair, link in zip(sources[:-1], ids, linked, links, strict=False):
        assert link is not None
        pieces = tokenizer.pieces(sentence_ids)
        query, keys = link
        words = word_pieces(pieces)
        assert words is not None and query in words[pair.pronoun]
        assert _spelled(pieces, words[pair.pronoun]) == "it", (text, pieces, link)
        assert _spelled(pieces, keys) == text.split()[pair.antecedent[0]].rstrip(",.?!").lower(), (text, pieces, link)


def _spelled(pieces: list[str], positions: list[int] | tuple[int, ...]) -> str:
    """The letters of the pieces at ``positions``, lower-cased (no word start, marker or punctuation)."""
    return "".join(ch for i in positions for ch in pieces[i] if ch.isalnum()).lower()


def test_source_links_counts_what_it_drops() -> None:
    link = LinkedPair(("The cat sat, it was tired.", "x"), pronoun=3, antecedent=(1,))
    pieces: dict[tuple[int, ...], list[str]] = {
        (1,): ["▁The", "▁cat", "▁sat", ",", "▁it", "▁was", "▁tired", "."],
        (2,): ["▁The", "cat"],
    }
    links, dropped = source_links(
        ["The cat sat, it was tired."] * 2, [(1,), (2,)], [link, link], lambda i: pieces[tuple(i)]
    )
    assert links == [(4, (1,)), None] and dropped == 1
