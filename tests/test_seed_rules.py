"""The seeds' rules and the il / elle rule judge hand-made French right; the everyday sets are read strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfattention.data.text_files import CorpusError
from selfattention.evaluation.everyday_sets import (
    VARIANTS,
    capitals,
    load_everyday_sets,
    lower_unpunctuated,
    read_pairs,
    read_pronoun_set,
)
from selfattention.evaluation.seed_rules import (
    DOG_SENTENCE,
    SEED_EXAMPLES,
    Phrase,
    normalise_apostrophes,
    pronoun_is_right,
    pronouns_in,
)

SEEDS = {example.source: example for example in SEED_EXAMPLES}


def test_the_seeds_sentences_and_the_greeting_are_there() -> None:
    assert list(SEEDS) == [
        "I am good.",
        DOG_SENTENCE,
        "I love Apple phones.",
        "I love apple juice.",
        "Hello.",
    ]


@pytest.mark.parametrize(
    ("source", "translation"),
    [
        ("I am good.", "Je vais bien."),
        ("I am good.", "Je suis bon."),
        ("I am good.", "Ça va."),
        ("I am good.", "ÇA VA BIEN, MERCI."),  # case-insensitive, Ç included
        ("I am good.", "je vais bien"),
        (DOG_SENTENCE, "Un chien a mangé la nourriture parce qu'il avait faim."),
        (DOG_SENTENCE, "Un chien a mangé la nourriture parce qu’il avait faim."),  # typographic apostrophe
        (DOG_SENTENCE, "Le chien mangeait la nourriture car il avait faim."),
        (DOG_SENTENCE, "Un chien mangea la nourriture : il avait faim."),
        ("I love Apple phones.", "J'aime les téléphones Apple."),
        ("I love Apple phones.", "J'adore les téléphones d'Apple."),
        ("I love apple juice.", "J'aime le jus de pomme."),
        ("I love apple juice.", "J'adore le jus de pommes."),
        ("Hello.", "Bonjour."),
        ("Hello.", "Salut !"),
    ],
)
def test_a_right_translation_passes_its_rule(source: str, translation: str) -> None:
    assert SEEDS[source].is_right(translation)
    assert SEEDS[source].missing(translation) == []


@pytest.mark.parametrize(
    ("source", "translation", "missing"),
    [
        ("I am good.", "Je suis bien.", 1),
        ("I am good.", "Il va bien.", 1),
        # the bundled model's translations that issue 23 quotes
        (DOG_SENTENCE, "Un chien à la nourriture parce que c'était faim.", 2),  # no "mang", no "il avait faim"
        ("I love Apple phones.", "J'aime les téléphones portables.", 1),
        ("I love apple juice.", "J'aime le jus d'un jus.", 1),
        ("Hello.", "Il va auo.", 1),
        # one requirement short each
        (DOG_SENTENCE, "Un chien a mangé la nourriture parce qu'elle avait faim.", 1),
        (DOG_SENTENCE, "Un chat a mangé la nourriture parce qu'il avait faim.", 1),
        (DOG_SENTENCE, "Un chien a mangé le repas parce qu'il avait faim.", 1),
        (DOG_SENTENCE, "Un chien a pris la nourriture parce qu'il avait faim.", 1),
        ("I love Apple phones.", "J'aime les téléphones apple.", 1),  # the capital is required
        ("I love Apple phones.", "J'aime les telephones Apple.", 1),  # accents as written
        ("I love Apple phones.", "J'aime les pommes.", 2),
        ("I love apple juice.", "J'aime le jus de poire.", 1),
        ("Hello.", "Au revoir.", 1),
        ("Hello.", "Rebonjour.", 1),  # a phrase starts where a word starts
    ],
)
def test_a_wrong_translation_fails_and_says_what_is_missing(source: str, translation: str, missing: int) -> None:
    assert not SEEDS[source].is_right(translation)
    assert len(SEEDS[source].missing(translation)) == missing


def test_a_rule_reads_as_a_person_would_check_it() -> None:
    assert SEEDS["I love Apple phones."].rule == '"Apple" (cased) and "téléphones"'
    assert SEEDS["I am good."].rule == '"je vais bien" / "je suis bon" / "ça va"'


def test_a_phrase_spans_any_white_space_and_needs_an_alternative() -> None:
    assert Phrase(("jus de pomme",)).found_in("un jus  de\npomme")
    assert not Phrase(("jus de pomme",)).found_in("un jus de la pomme")
    with pytest.raises(ValueError, match="non-empty alternative"):
        Phrase(("",))
    assert normalise_apostrophes("qu’il l‘a ʼ") == "qu'il l'a '"


@pytest.mark.parametrize(
    ("translation", "found"),
    [
        ("Le chat a bu le lait parce qu'il avait soif.", {"il"}),
        ("Le chat a bu le lait parce qu’il avait soif.", {"il"}),
        ("Il était sur mon bureau.", {"il"}),
        ("Où est-il ?", {"il"}),
        ("La fille a mangé la poire parce qu'elle était mûre.", {"elle"}),  # "il" not inside "qu'elle"
        ("Elle était sur mon bureau.", {"elle"}),
        ("ELLE ÉTAIT SUR MON BUREAU.", {"elle"}),
        ("Ils sont partis, elles aussi.", set()),  # plurals are other pronouns
        ("Le fil de la ficelle", set()),  # inside other words
        ("J'ai rendu la robe parce qu'elle était trop grande et il pleuvait.", {"il", "elle"}),
    ],
)
def test_pronouns_are_found_as_whole_words(translation: str, found: set[str]) -> None:
    assert pronouns_in(translation) == found


@pytest.mark.parametrize(
    ("translation", "expected", "right"),
    [
        ("Le chat a bu le lait parce qu'il avait soif.", "il", True),
        ("Le chat a bu le lait parce qu'elle avait soif.", "il", False),
        ("J'ai rendu la robe parce qu'elle était trop grande.", "elle", True),
        ("J'ai rendu la robe parce qu'il était trop grand.", "elle", False),
        ("Où est ma bouteille ? Elle était sur mon bureau.", "elle", True),
        ("J'ai rendu la robe parce que c'était trop grand.", "elle", False),  # neither pronoun
        ("Il dit qu'elle était trop grande.", "elle", False),  # both: not right
        ("Il dit qu'elle était trop grande.", "il", False),
    ],
)
def test_a_pronoun_is_right_when_it_is_there_and_the_other_is_not(translation: str, expected: str, right: bool) -> None:
    assert pronoun_is_right(translation, expected) is right


def test_an_unknown_expected_pronoun_is_refused() -> None:
    with pytest.raises(ValueError, match="il, elle"):
        pronoun_is_right("Il dort.", "ils")


# --- the everyday sets -----------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_comments_and_empty_lines_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "set.tsv", "# English<TAB>French\n\nI am good.\tJe vais bien.\n  # indented\nHi.\tSalut.\n")
    assert read_pairs(path) == [("I am good.", "Je vais bien."), ("Hi.", "Salut.")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# comment\nI am good. Je vais bien.\n", r"line 2: expected two fields separated by a tab .* found no tab"),
        ("a\tb\nI am good.\tJe vais bien.\textra\n", "line 2: .* found 3 tab-separated fields"),
        ("\tJe vais bien.\n", "line 1: the English field is empty"),
        ("I am good.\t \n", "line 1: the second field is empty"),
    ],
)
def test_a_malformed_line_is_refused_naming_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(CorpusError, match=message) as error:
        read_pairs(path)
    assert str(error.value).startswith(f"{path}, line ")


def test_the_pronoun_set_takes_il_or_elle_only(tmp_path: Path) -> None:
    good = write(tmp_path / "pronouns.tsv", "# header\nThe cat drank the milk because it was thirsty.\til\n")
    assert read_pronoun_set(good) == [("The cat drank the milk because it was thirsty.", "il")]
    bad = write(tmp_path / "bad.tsv", "# header\n\nThe cat slept.\til\nThe dogs slept.\tils\n")
    with pytest.raises(CorpusError, match=r"bad.tsv, line 4: the pronoun must be il or elle, found 'ils'"):
        read_pronoun_set(bad)


def test_the_sets_are_found_in_the_data_directory(tmp_path: Path) -> None:
    write(tmp_path / "everyday" / "everyday.tsv", "Hi.\tSalut.\n")
    write(tmp_path / "everyday" / "pronouns.tsv", "Where is my pen? It was here.\til\n")
    assert load_everyday_sets(tmp_path) == ([("Hi.", "Salut.")], [("Where is my pen? It was here.", "il")])
    with pytest.raises(CorpusError, match="no such file"):
        load_everyday_sets(tmp_path / "everyday")


@pytest.mark.parametrize(
    ("text", "upper", "lower"),
    [
        ("Can you help me?", "CAN YOU HELP ME?", "can you help me"),
        (
            "Peux-tu m'aider à porter ces boîtes ?",
            "PEUX-TU M'AIDER À PORTER CES BOÎTES ?",
            "peux-tu m'aider à porter ces boîtes",
        ),
        ("Wait...", "WAIT...", "wait"),
        ("Really?!", "REALLY?!", "really"),
        ("Il est parti…", "IL EST PARTI…", "il est parti"),
        ("No final punctuation", "NO FINAL PUNCTUATION", "no final punctuation"),
        ("Mr. Smith, the 3.5 kg cat.", "MR. SMITH, THE 3.5 KG CAT.", "mr. smith, the 3.5 kg cat"),  # only the end
    ],
)
def test_the_variants_are_capitals_and_lower_case_without_final_punctuation(text: str, upper: str, lower: str) -> None:
    assert capitals(text) == upper
    assert lower_unpunctuated(text) == lower
    assert list(VARIANTS.values()) == [capitals, lower_unpunctuated]
