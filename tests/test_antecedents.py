"""The antecedent of "it" by the determiner rule and a lexicon; a head counts as right when "it" attends most to it."""

from __future__ import annotations

import pytest
import torch

from selfattention.decoding import Translator
from selfattention.inspection import TraceRecorder, TranslationTrace, trace_translation
from selfattention.inspection.antecedents import (
    Antecedent,
    NoAntecedent,
    antecedent_hits,
    find_antecedent,
    rank_antecedent_heads,
)

GENDERS = {"dog": "il", "food": "elle", "cat": "il", "milk": "il"}


@pytest.mark.parametrize(
    ("sentence", "expected", "genders", "antecedent"),
    [
        ("I returned the dress because it was too big .", "elle", None, (3, 5)),
        ("Where is my pen ? It was on my desk .", "il", None, (3, 5)),  # "It"; "desk" comes after it
        ("I don 't like this chair because it is uncomfortable .", "elle", None, (5, 7)),
        ("A dog ate the food because it was hungry .", "il", GENDERS, (1, 6)),
        ("A dog ate the food because it was delicious .", "elle", GENDERS, (4, 6)),
        ("A DOG ATE THE FOOD BECAUSE IT WAS HUNGRY", "il", GENDERS, (1, 6)),  # case-insensitive
        ("I know that the cat slept because it was tired .", "il", None, (4, 7)),  # "the" is no candidate
        ("Mary closed the box because it was empty .", "elle", GENDERS, (3, 5)),  # one candidate: no lexicon needed
    ],
)
def test_the_antecedent_is_the_one_candidate_or_the_one_the_lexicon_picks(
    sentence: str, expected: str, genders: dict[str, str] | None, antecedent: tuple[int, int]
) -> None:
    noun, pronoun = antecedent
    assert find_antecedent(sentence.split(), expected, genders) == Antecedent(pronoun=pronoun, noun=noun)


@pytest.mark.parametrize(
    ("sentence", "genders", "reason"),
    [
        (
            "A dog ate the food because it was hungry .",
            None,
            "several candidates (dog, food) and no noun-gender lexicon",
        ),
        ("The cat drank the milk because it was thirsty .", GENDERS, "2 of the candidates (cat, milk) take 'il'"),
        ("The girl ate the pear because it was ripe .", GENDERS, "0 of the candidates (girl, pear) take 'il'"),
        ("It was the dog .", None, "no word after a determiner before 'it'"),
        ("The dog slept .", None, "'it' occurs 0 times, not once"),
        ("The dog said it was it .", None, "'it' occurs 2 times, not once"),
    ],
)
def test_a_sentence_whose_antecedent_cannot_be_told_is_refused_with_the_reason(
    sentence: str, genders: dict[str, str] | None, reason: str
) -> None:
    with pytest.raises(NoAntecedent, match=reason.replace("(", r"\(").replace(")", r"\)")):
        find_antecedent(sentence.split(), "il", genders)


# "A dog ate the food because it was hungry." as pieces: "because" and "hungry" in two pieces each
LABELS = ["A", "dog", "ate", "the", "food", "be", "##cause", "it", "was", "hung", "##ry", "##.", "</s>"]
IT, DOG, FOOD, HUNG, RY, STOP, END = 7, 1, 4, 9, 10, 11, 12


def synthetic_trace(rows: list[list[dict[int, float]]]) -> TranslationTrace:
    """A trace whose encoder layer l, head h gives "it" the row ``rows[l][h]`` (piece -> weight)."""
    recorder = TraceRecorder()
    pieces, heads = len(LABELS), len(rows[0])
    for layer, layer_rows in enumerate(rows):
        weights = torch.full((1, heads, pieces, pieces), 1 / pieces)  # (B, H, T, S)
        for head, row in enumerate(layer_rows):
            weights[0, head, IT] = 0.0
            for piece, weight in row.items():
                weights[0, head, IT, piece] = weight
        site = recorder.at(f"encoder.layers.{layer}.self_attn")
        for name, value in (
            ("x", torch.zeros(1, pieces, 4)),
            ("q", torch.zeros(1, heads, pieces, 2)),
            ("k", torch.zeros(1, heads, pieces, 2)),
            ("v", torch.zeros(1, heads, pieces, 2)),
            ("weights", weights),
            ("output", torch.zeros(1, heads, pieces, 2)),
            ("attended", torch.zeros(1, pieces, 4)),
        ):
            site.record(name, value)
    return TranslationTrace(
        source="A dog ate the food because it was hungry.",
        translation="",
        source_ids=list(range(len(LABELS))),
        target_ids=[1],
        source_labels=LABELS,
        target_labels=["<s>"],
        recorder=recorder,
    )


def test_a_head_is_right_when_it_attends_most_to_the_antecedent_among_the_other_words() -> None:
    trace = synthetic_trace(
        [
            [
                {DOG: 0.7, FOOD: 0.3},  # dog most: right
                {IT: 0.6, DOG: 0.3, FOOD: 0.1},  # itself most, which does not count: dog, right
            ],
            [
                {END: 0.7, FOOD: 0.2, DOG: 0.1},  # </s> does not count: food, wrong
                {HUNG: 0.2, RY: 0.2, DOG: 0.35, STOP: 0.25},  # "hungry" gets both its pieces (0.4): wrong
            ],
        ]
    )
    words = ["A", "dog", "ate", "the", "food", "because", "it", "was", "hungry", ".", "</s>"]
    antecedent = find_antecedent(words, "il", GENDERS)
    assert antecedent == Antecedent(pronoun=6, noun=1)
    assert antecedent_hits(trace, antecedent).tolist() == [[True, True], [False, False]]


def test_punctuation_is_not_where_a_head_lands() -> None:
    trace = synthetic_trace([[{STOP: 0.5, DOG: 0.3, FOOD: 0.2}]])
    assert antecedent_hits(trace, Antecedent(pronoun=6, noun=1)).tolist() == [[True]]


def test_every_head_is_counted_over_the_sentences_whose_antecedent_is_known(deep_model_dir) -> None:
    translator = Translator.load(deep_model_dir)
    examples = [
        ("The dog runs because it is happy.", "il"),
        ("The man saw the horse because it was big.", "il"),  # both "il" in the lexicon
        ("The boy sleeps.", "il"),  # no "it"
        ("The cat sees the bird and it jumps.", "il"),  # the lexicon picks the cat
    ]
    genders = {"man": "il", "horse": "il", "cat": "il", "bird": "elle"}
    result = rank_antecedent_heads(translator, examples, genders)
    assert result.counted == [examples[0][0], examples[3][0]]
    assert [sentence for sentence, _ in result.skipped] == [examples[1][0], examples[2][0]]
    assert "take 'il'" in result.skipped[0][1]
    assert "occurs 0 times" in result.skipped[1][1]
    layers, heads = translator.model.config.encoder_layers, translator.model.config.n_heads
    assert sorted((s.layer, s.head) for s in result.heads) == [(lay, h) for lay in range(layers) for h in range(heads)]
    assert all(s.sentences == 2 for s in result.heads)
    assert [s.right for s in result.heads] == sorted((s.right for s in result.heads), reverse=True)
    # each head's count is the sum of its hits on the counted sentences
    expected = torch.zeros(layers, heads, dtype=torch.long)
    for sentence, nouns in ((examples[0][0], (1, 4)), (examples[3][0], (1, 6))):
        trace = trace_translation(translator.model, translator.tokenizer, sentence, target="", kinds=("encoder",))
        expected += antecedent_hits(trace, Antecedent(pronoun=nouns[1], noun=nouns[0])).long()
    assert {(s.layer, s.head): s.right for s in result.heads} == {
        (lay, h): int(expected[lay, h]) for lay in range(layers) for h in range(heads)
    }
