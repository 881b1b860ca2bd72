"""Pieces into words, attention between words, ranking heads, and words in context."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from selfattention.decoding import Translator
from selfattention.inspection import TraceRecorder, TranslationTrace, trace_translation
from selfattention.inspection.context import compare_contexts
from selfattention.inspection.heads import rank_heads
from selfattention.inspection.notation import piece_label
from selfattention.inspection.recorder import _STEPS
from selfattention.inspection.words import Word, find_word, group_words, word_attention

# --- group_words ---


def texts(words: list[Word]) -> list[str]:
    return [word.text for word in words]


def test_group_words_merges_continuation_pieces() -> None:
    words = group_words(["un", "##believ", "##able", "dog"])
    assert texts(words) == ["unbelievable", "dog"]
    assert [word.pieces for word in words] == [(0, 1, 2), (3,)]


def test_group_words_punctuation_is_its_own_word() -> None:
    words = group_words(["the", "dog", "was", "hung", "##ry", "##.", "##!"])
    assert texts(words) == ["the", "dog", "was", "hungry", ".", "!"]
    assert words[3].pieces == (3, 4)
    assert words[4].pieces == (5,)
    assert words[5].pieces == (6,)


def test_group_words_puts_a_case_marked_word_in_capitals() -> None:
    words = group_words(["a", "dog", "##⇪", "ate", "##.", "##⇪"])
    assert texts(words) == ["a", "DOG", "ate", "."]
    assert [word.pieces for word in words] == [(0,), (1, 2), (3,), (4, 5)]
    assert find_word(words, "dog") == 1
    assert texts(group_words(["<s>", "##⇪"])) == ["<s>", "⇪"]  # after a sentence mark: a piece of its own


def test_group_words_keeps_sentence_marks_separate() -> None:
    words = group_words(["<s>", "##le", "chien", "</s>"])
    assert texts(words) == ["<s>", "le", "chien", "</s>"]
    words = group_words(["dog", "</s>", "##x"])
    assert texts(words) == ["dog", "</s>", "x"]
    assert [word.pieces for word in words] == [(0,), (1,), (2,)]


def test_group_words_lone_word_start_joins_the_next_continuation() -> None:
    words = group_words(["␣", "##I", "love", "␣", "##it", "##s"])
    assert texts(words) == ["I", "love", "its"]
    assert [word.pieces for word in words] == [(0, 1), (2,), (3, 4, 5)]


def test_group_words_of_real_token_labels(tiny_model_dir: Path) -> None:
    from selfattention.inspection import token_labels

    translator = Translator.load(tiny_model_dir)
    ids = translator.tokenizer.encode("The red dog runs in the park.")
    words = group_words(token_labels(translator.tokenizer, ids))
    assert texts(words) == ["The", "red", "dog", "runs", "in", "the", "park", "."]
    assert sorted(p for word in words for p in word.pieces) == list(range(len(ids)))


# --- word_attention ---

# Pieces: 0 "<s>", 1-2 "hung ##ry", 3 "dog", 4-6 "un ##believ ##able".
LABELS = ["<s>", "hung", "##ry", "dog", "un", "##believ", "##able"]


def test_word_attention_to_sums_and_from_averages_by_hand() -> None:
    words = group_words(LABELS)
    assert texts(words) == ["<s>", "hungry", "dog", "unbelievable"]
    weights = torch.tensor(
        [
            [0.10, 0.20, 0.30, 0.10, 0.10, 0.10, 0.10],
            [0.00, 0.50, 0.10, 0.20, 0.00, 0.10, 0.10],
            [0.30, 0.10, 0.10, 0.40, 0.05, 0.05, 0.00],
            [0.20, 0.20, 0.20, 0.20, 0.10, 0.05, 0.05],
            [0.00, 0.00, 0.00, 1.00, 0.00, 0.00, 0.00],
            [0.10, 0.10, 0.10, 0.10, 0.20, 0.20, 0.20],
            [0.40, 0.00, 0.00, 0.00, 0.20, 0.20, 0.20],
        ]
    )
    result = word_attention(weights, words, words)
    assert result.shape == (4, 4)
    # Row "<s>" is piece row 0: to "hungry" = 0.2 + 0.3, to "unbelievable" = 0.1 * 3.
    assert torch.allclose(result[0], torch.tensor([0.10, 0.50, 0.10, 0.30]))
    # Row "hungry" = mean of piece rows 1 and 2 after summing columns.
    row1 = torch.tensor([0.00, 0.60, 0.20, 0.20])
    row2 = torch.tensor([0.30, 0.20, 0.40, 0.10])
    assert torch.allclose(result[1], (row1 + row2) / 2)
    assert torch.allclose(result[2], torch.tensor([0.20, 0.40, 0.20, 0.20]))
    # Row "unbelievable" = mean of piece rows 4, 5, 6.
    rows = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.1, 0.2, 0.1, 0.6], [0.4, 0.0, 0.0, 0.6]])
    assert torch.allclose(result[3], rows.mean(dim=0))


def test_word_attention_rows_still_sum_to_one_with_heads() -> None:
    words = group_words(LABELS)
    weights = torch.softmax(torch.randn(3, 7, 7, generator=torch.Generator().manual_seed(0)), dim=-1)  # (H, T, S)
    result = word_attention(weights, words, words)
    assert result.shape == (3, 4, 4)
    assert torch.allclose(result.sum(dim=-1), torch.ones(3, 4), atol=1e-6)
    # To a word: the sum over its pieces; from a word: the mean over its pieces' rows.
    for head in range(3):
        for qi, query in enumerate(words):
            for ki, key in enumerate(words):
                expected = weights[head][list(query.pieces)][:, list(key.pieces)].sum(dim=-1).mean()
                assert result[head, qi, ki] == pytest.approx(float(expected), abs=1e-6)


def test_word_attention_different_query_and_key_words() -> None:
    query_words = group_words(["le", "chi", "##en"])
    key_words = group_words(["the", "d", "##og", "</s>"])
    weights = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)), dim=-1)
    result = word_attention(weights, query_words, key_words)
    assert result.shape == (2, 3)
    assert result[1, 1] == pytest.approx(float(weights[1:, 1:3].sum(dim=-1).mean()))
    assert torch.allclose(result.sum(dim=-1), torch.ones(2), atol=1e-6)


# --- find_word ---


def test_find_word_is_case_insensitive_and_counts_occurrences() -> None:
    words = group_words(["The", "dog", "saw", "the", "cat", "##."])
    assert find_word(words, "the") == 0
    assert find_word(words, "THE", occurrence=2) == 3
    assert find_word(words, "  Cat ") == 4
    assert find_word(words, ".") == 5


def test_find_word_error_lists_the_words() -> None:
    words = group_words(["The", "dog", "saw", "the", "cat"])
    with pytest.raises(ValueError, match="no word 'horse'") as error:
        find_word(words, "horse")
    message = str(error.value)
    assert "it is not there" in message
    for word in ("'The'", "'dog'", "'saw'", "'the'", "'cat'"):
        assert word in message
    with pytest.raises(ValueError, match=r"it occurs 2 time\(s\)"):
        find_word(words, "the", occurrence=3)
    with pytest.raises(ValueError, match="occurrence 0"):
        find_word(words, "dog", occurrence=0)


# --- rank_heads, on a real trace with constructed weights ---

SENTENCE = "A dog ate the food because it was hungry."
LAYERS, HEADS = 3, 4


@pytest.fixture(scope="module")
def translator(tiny_model_dir: Path) -> Translator:
    return Translator.load(tiny_model_dir)


def constructed_trace(translator: Translator) -> TranslationTrace:
    """The sentence's real trace, its encoder attention replaced by a known pattern.

    Every head attends uniformly, except: layer 1 head 2 sends 90 % of each "it" piece's
    attention to "dog"; layer 0 head 3 sends 60 % to "hungry" and 30 % to "dog".
    """
    trace = trace_translation(translator.model, translator.tokenizer, SENTENCE, target="Un chien")
    words = group_words(trace.source_labels)
    it, dog, hungry = (words[find_word(words, w)].pieces for w in ("it", "dog", "hungry"))
    size = len(trace.source_labels)

    def row(shares: dict[tuple[int, ...], float]) -> torch.Tensor:
        chosen = [p for pieces in shares for p in pieces]
        rest = 1.0 - sum(shares.values())
        values = torch.full((size,), rest / (size - len(chosen)))
        for pieces, share in shares.items():
            values[list(pieces)] = share / len(pieces)
        return values

    recorder = TraceRecorder()
    for layer in range(LAYERS):
        weights = torch.full((1, HEADS, size, size), 1.0 / size)
        if layer == 1:
            for p in it:
                weights[0, 2, p] = row({dog: 0.9})
        if layer == 0:
            for p in it:
                weights[0, 3, p] = row({hungry: 0.6, dog: 0.3})
        scope = recorder.at(f"encoder.layers.{layer}.self_attn")
        for step in _STEPS:
            scope.record(step, weights.clone())
    return dataclasses.replace(trace, recorder=recorder)


def test_rank_heads_finds_the_head_that_links_it_to_dog(translator: Translator) -> None:
    trace = constructed_trace(translator)
    words = texts(group_words(trace.source_labels))
    assert "it" in words and "dog" in words
    scores = rank_heads(trace, "it", "dog")
    assert len(scores) == LAYERS * HEADS
    assert {(s.layer, s.head) for s in scores} == {(layer, head) for layer in range(LAYERS) for head in range(HEADS)}
    assert [s.weight for s in scores] == sorted((s.weight for s in scores), reverse=True)
    best = scores[0]
    assert (best.layer, best.head) == (1, 2)
    assert best.weight == pytest.approx(0.9, abs=1e-5)
    assert best.rank_of_target == 1
    assert best.strongest == "dog"
    second = scores[1]
    assert (second.layer, second.head) == (0, 3)
    assert second.weight == pytest.approx(0.3, abs=1e-5)
    assert second.rank_of_target == 2
    assert second.strongest == "hungry"
    # Uniform heads give "dog" its share of pieces: ties broken by layer, then head.
    uniform = scores[2:]
    dog_pieces = len(group_words(trace.source_labels)[find_word(group_words(trace.source_labels), "dog")].pieces)
    for s in uniform:
        assert s.weight == pytest.approx(dog_pieces / len(trace.source_labels), abs=1e-5)
    assert [(s.layer, s.head) for s in uniform] == sorted((s.layer, s.head) for s in uniform)


def test_rank_heads_reports_missing_words(translator: Translator) -> None:
    trace = constructed_trace(translator)
    with pytest.raises(ValueError, match=r"no word 'cat'.*'dog'"):
        rank_heads(trace, "it", "cat")
    with pytest.raises(ValueError, match="no word 'horse'"):
        rank_heads(trace, "horse", "dog")


# --- compare_contexts, with the tiny model ---

SENTENCES = ["The red dog runs in the park.", "The black dog sleeps.", "A big dog eats near the house."]


def test_compare_contexts_similarity_is_symmetric_with_unit_diagonal(translator: Translator) -> None:
    report = compare_contexts(translator.model, translator.tokenizer, SENTENCES, "Dog", top_k=5)
    layers = translator.model.config.encoder_layers
    assert report.layer_names == ["embedding"] + [f"layer {i}" for i in range(layers)]
    assert report.similarity.shape == (layers + 1, 3, 3)
    for layer in range(layers + 1):
        matrix = report.similarity[layer]
        assert torch.allclose(matrix, matrix.T, atol=1e-6)
        assert torch.allclose(matrix.diagonal(), torch.ones(3), atol=1e-5)
        assert (matrix <= 1 + 1e-5).all() and (matrix >= -1 - 1e-5).all()
    assert [w.word for w in report.words] == ["dog", "dog", "dog"]
    assert [w.sentence for w in report.words] == SENTENCES
    assert all(w.vectors.shape == (layers + 1, translator.model.config.d_model) for w in report.words)


def test_compare_contexts_only_the_encoder_sees_the_context(translator: Translator) -> None:
    # Same pieces before "dog", different words after it: the embeddings (token + position) coincide,
    # the encoder's self-attention looks both ways and pulls the vectors apart.
    sentences = ["The red dog runs in the park.", "The red dog sleeps."]
    report = compare_contexts(translator.model, translator.tokenizer, sentences, "dog", top_k=3)
    assert report.words[0].pieces == report.words[1].pieces
    assert float(report.similarity[0, 0, 1]) == pytest.approx(1.0, abs=1e-5)
    assert float(report.similarity[-1, 0, 1]) < 1.0 - 1e-4


def test_compare_contexts_sentence_with_itself_is_identical(translator: Translator) -> None:
    sentence = SENTENCES[0]
    report = compare_contexts(translator.model, translator.tokenizer, [sentence, sentence], "dog", top_k=3)
    assert torch.allclose(report.similarity[:, 0, 1], torch.ones(len(report.layer_names)), atol=1e-5)
    assert report.neighbours[0] == report.neighbours[1]


def test_compare_contexts_neighbours_are_sorted_pieces(translator: Translator) -> None:
    report = compare_contexts(translator.model, translator.tokenizer, SENTENCES[:2], "dog", top_k=7)
    vocabulary = set(translator.tokenizer.pieces(list(range(translator.model.config.vocab_size))))
    assert len(report.neighbours) == 2
    for neighbours in report.neighbours:
        assert len(neighbours) == 7
        values = [value for _, value in neighbours]
        assert values == sorted(values, reverse=True)
        assert all(-1 - 1e-5 <= value <= 1 + 1e-5 for value in values)
        assert {piece for piece, _ in neighbours} <= {piece_label(piece) for piece in vocabulary}
        assert not any(piece.startswith("▁") for piece, _ in neighbours)  # one notation: ## and ␣
        assert len({piece for piece, _ in neighbours}) == 7


def test_compare_contexts_top_k_beyond_the_vocabulary_lists_every_piece(translator: Translator) -> None:
    vocab = translator.model.config.vocab_size
    report = compare_contexts(translator.model, translator.tokenizer, SENTENCES[:2], "dog", top_k=vocab + 50)
    assert all(len(neighbours) == vocab for neighbours in report.neighbours)


def test_compare_contexts_needs_two_sentences(translator: Translator) -> None:
    with pytest.raises(ValueError, match="at least two sentences"):
        compare_contexts(translator.model, translator.tokenizer, [SENTENCES[0]], "dog")


def test_compare_contexts_missing_word(translator: Translator) -> None:
    with pytest.raises(ValueError, match=r"no word 'cat'.*'park'"):
        compare_contexts(translator.model, translator.tokenizer, [SENTENCES[0], SENTENCES[1]], "cat")
    with pytest.raises(ValueError, match=r"no word 'red'.*'sleeps'"):
        compare_contexts(translator.model, translator.tokenizer, SENTENCES[:2], "red")
