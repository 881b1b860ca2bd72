"""Degenerate outputs are found (a word 3 times in a row, a 25-letter non-word, runaway length), normal French not."""

from __future__ import annotations

import pytest

from selfattention.decoding import DecodingConfig, Translator
from selfattention.evaluation.degeneration import (
    Translation,
    degeneration,
    non_word,
    repeated_word,
    runaway_words,
    translate_with_limits,
)

SOURCE = "I like this village because it is quiet."  # 8 words: a translation may have 2 x 8 + 5 = 21


@pytest.mark.parametrize(
    ("translation", "word"),
    [
        ("parc parc parc", "parc"),
        ("J'apprécie ce village parc parc parc est tranquille.", "parc"),
        ("Parc, parc PARC.", "parc"),  # letters compared case-insensitively, punctuation stripped
        ("le chat le chat chat chat dort", "chat"),
        ("très très très bien", "très"),
        ("Il est là - là - là.", "là"),  # a dash between the repeats is not a word
    ],
)
def test_a_word_three_times_in_a_row_is_found(translation: str, word: str) -> None:
    assert repeated_word(translation) == word
    assert degeneration(translation, SOURCE) == [f"repeat: {word!r} 3 or more times in a row"]


@pytest.mark.parametrize(
    "translation",
    [
        "très très bien",  # twice only
        "Le chat dort, le chat mange, le chat joue.",  # the same word three times, but not in a row
        "Il a gagné 1 000 000 000 euros.",  # numbers are not words
        "Il est né le 12/12/2012 à 12 h 12.",
        "Nous nous retrouverons devant le cinéma à neuf heures.",  # "nous nous": twice
    ],
)
def test_fewer_than_three_repeats_or_numbers_are_not_repeats(translation: str) -> None:
    assert repeated_word(translation) is None


@pytest.mark.parametrize(
    ("translation", "letters"),
    [
        ("OROOOOOOOOOOOOOOOOOOOOOOOOO", "OROOOOOOOOOOOOOOOOOOOOOOOOO"),
        ('UnINIIIIIIITENENEREREREROOOOOOOORERERE".', "UnINIIIIIIITENENEREREREROOOOOOOORERERE"),
        ("Une photo de l'ATATATTATATERERERETATERERE.", "ATATATTATATERERERETATERERE"),  # 26 letters
        ("a" * 25, "a" * 25),  # exactly 25 letters
    ],
)
def test_a_run_of_25_letters_is_a_non_word(translation: str, letters: str) -> None:
    assert non_word(translation) == letters
    assert degeneration(translation, SOURCE) == [f"non-word: {letters!r} ({len(letters)} letters)"]


@pytest.mark.parametrize(
    "translation",
    [
        "a" * 24,
        "Le bébé dort, alors sois silencieux, s'il te plaît.",
        "Un va-et-vient de porte-avions, de sous-marins et d'après-midi aux États-Unis, c'est-à-dire partout.",
        "Les gratte-ciel sont extraordinairement impressionnants.",  # long words, under 25 letters each
        "123456789012345678901234567890 euros",  # digits are not letters
    ],
)
def test_normal_words_hyphenated_phrases_and_numbers_are_not_non_words(translation: str) -> None:
    assert non_word(translation) is None


def test_an_overlong_output_is_runaway_and_the_limit_is_twice_the_source_plus_five() -> None:
    source = "The dog sleeps."  # 3 words: at most 11
    assert runaway_words(source) == 11
    at_limit = " ".join(["mot", "autre"] * 5 + ["fin"])  # 11 words, no word repeated in a row
    assert degeneration(at_limit, source) == []
    over = at_limit + " encore"  # 12 words
    assert degeneration(over, source) == ["runaway: 12 words for a 3-word source (at most 11)"]


def test_hitting_the_search_limit_is_runaway_whatever_the_words() -> None:
    assert degeneration("Le chien dort.", "The dog sleeps.", hit_length_limit=True) == [
        "runaway: stopped by the search's length limit"
    ]
    assert Translation("x", pieces=13, limit=14).hit_length_limit  # 13 pieces + the forced end token
    assert not Translation("x", pieces=12, limit=14).hit_length_limit
    assert not Translation("", pieces=0, limit=1).hit_length_limit


def test_every_reason_is_listed_when_several_checks_fail() -> None:
    translation = " ".join(["OROOOOOOOOOOOOOOOOOOOOOOOOOOO"] * 12)
    reasons = degeneration(translation, "Hello.", hit_length_limit=True)
    assert [reason.split(":")[0] for reason in reasons] == ["repeat", "non-word", "runaway", "runaway"]


@pytest.mark.parametrize(
    ("translation", "source"),
    [
        ("Je suis bon.", "I am good."),
        ("Un chien a mangé la nourriture parce qu'il avait faim.", "A dog ate the food because it was hungry."),
        (
            "Tourne à gauche après le pont et la banque est sur ta droite.",
            "Turn left after the bridge and the bank is on your right.",
        ),
        ("Je n'ai pas assez d'argent pour acheter ce manteau.", "I don't have enough money to buy this coat."),
        ("Bonjour !", "Hello."),
    ],
)
def test_normal_french_sentences_are_not_degenerate(translation: str, source: str) -> None:
    assert degeneration(translation, source) == []


def test_translate_with_limits_equals_translate_and_knows_when_the_limit_stopped_it(deep_model_dir) -> None:
    translator = Translator.load(deep_model_dir)
    texts = ["a dog runs", "", "a red cat sleeps in the park", "a man"]
    for config in (DecodingConfig(beam_size=1, batch_size=2), DecodingConfig(beam_size=2, max_len_a=0.5, max_len_b=2)):
        found = translate_with_limits(translator, texts, config)
        assert [t.text for t in found] == translator.translate(texts, config)
        assert found[1] == Translation("", 0, 0)
        for text, t in zip(texts, found, strict=True):
            if text:
                source_pieces = len(translator.tokenizer.encode(text)) + 1  # the end token counts
                assert t.limit == int(source_pieces * config.max_len_a) + config.max_len_b
                assert t.pieces <= t.limit - 1  # the limit counts the end token
    # The untrained model rambles: with a tight limit, the search stops it there.
    tight = translate_with_limits(translator, texts, DecodingConfig(beam_size=1, max_len_a=0.0, max_len_b=3))
    assert any(t.hit_length_limit for t in tight)
