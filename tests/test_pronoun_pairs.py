"""The pronoun pairs: a noun lexicon with genders, predicates in both genders, and "it" -> il / elle."""

from __future__ import annotations

import random
import re

import pytest

from selfattention.data.french_adjectives import other_gender_word, predicate_in_gender
from selfattention.data.french_nouns import FrenchNoun, english_article, mine_nouns, noun_phrase
from selfattention.data.pronoun_pairs import PronounPairs, mine_predicates

# A small made-up corpus: nouns shown with gendered articles, predicates after He / She / The N,
# and clauses that end with a noun.
NOUNS = {  # English: (French, gender)
    "dog": ("chien", "m"),
    "cow": ("vache", "f"),
    "soup": ("soupe", "f"),
    "cake": ("gâteau", "m"),
    "box": ("boîte", "f"),
    "book": ("livre", "m"),
    "water": ("eau", "f"),
    "market": ("marché", "m"),
}


def corpus() -> list[tuple[str, str]]:
    pairs = []
    for english, (french, gender) in NOUNS.items():
        the = ("l'" if french[0] in "aeiou" else "le " if gender == "m" else "la ") + french
        a = ("un " if gender == "m" else "une ") + french
        pairs += [
            (f"I see the {english}.", f"Je vois {the}."),
            (f"Where is the {english}?", f"Où est {the} ?"),
            (f"This is a {english}.", f"C'est {a}."),
            (f"I like the {english} a lot.", f"J'aime beaucoup {the}."),
            (f"We found a {english}.", f"Nous avons trouvé {a}."),
            (f"I want a {english}.", f"Je veux {a}."),
            (f"This {english} is mine.", f"{'Cette' if gender == 'f' else 'Ce'} {french} est à moi."),
        ]
    pairs += [
        ("He is tired.", "Il est fatigué."),
        ("She is tired.", "Elle est fatiguée."),
        ("She is hungry.", "Elle a faim."),
        ("He was hungry.", "Il avait faim."),
        ("She was hungry.", "Elle avait faim."),
        ("The soup is delicious.", "La soupe est délicieuse."),
        ("The cake was delicious.", "Le gâteau était délicieux."),
        ("The box is too small.", "La boîte est trop petite."),
        ("The book is very small.", "Le livre est très petit."),
        ("The book was empty.", "Le livre était vide."),
        ("The box was open.", "La boîte était ouverte."),
        ("The cake was open.", "Le gâteau était ouvert."),
        ("The soup was in the kitchen.", "La soupe était dans la cuisine."),
        ("The box is in the kitchen.", "La boîte est dans la cuisine."),
        ("He is a student.", "Il est un étudiant."),  # a noun, not a predicate: left out
    ]
    return pairs


@pytest.fixture(scope="module")
def generator() -> PronounPairs:
    return PronounPairs(corpus())


def test_nouns_and_their_genders_are_read_from_the_french_articles() -> None:
    lexicon = mine_nouns(corpus())
    assert {english: (noun.word, noun.gender) for english, noun in lexicon.items()} == NOUNS
    assert lexicon["water"].elides and not lexicon["soup"].elides


def test_noun_phrases_agree_with_their_noun() -> None:
    soup, market, water, friend = (
        FrenchNoun("soupe", "f", False),
        FrenchNoun("marché", "m", False),
        FrenchNoun("eau", "f", True),
        FrenchNoun("amie", "f", True),
    )
    assert [noun_phrase("the", n) for n in (soup, market, water)] == ["la soupe", "le marché", "l'eau"]
    assert [noun_phrase("to the", n) for n in (soup, market, water)] == ["à la soupe", "au marché", "à l'eau"]
    assert [noun_phrase("of the", n) for n in (soup, market)] == ["de la soupe", "du marché"]
    assert [noun_phrase("this", n) for n in (soup, market, FrenchNoun("arbre", "m", True))] == [
        "cette soupe",
        "ce marché",
        "cet arbre",
    ]
    assert noun_phrase("my", friend) == "mon amie" and noun_phrase("my", soup) == "ma soupe"
    assert noun_phrase("a", market, capital=True) == "Un marché"
    assert english_article("a", "apple") == "an" and english_article("An", "dog") == "A"
    assert english_article("the", "apple") == "the"


def test_predicates_change_gender_only_where_french_agrees() -> None:
    known = {"fatigué", "fatiguée", "petit", "petite", "heureux", "heureuse", "ouvert", "ouverte", "sure"}
    assert predicate_in_gender("fatigué", "f", known) == "fatiguée"
    assert predicate_in_gender("trop petite", "m", known) == "trop petit"
    assert predicate_in_gender("heureux", "f", known) == "heureuse"
    assert predicate_in_gender("sur la table", "f", known) == "sur la table"  # a preposition
    assert predicate_in_gender("vide", "f", known) == "vide"  # one form for both
    assert predicate_in_gender("vieux", "f", known) == "vieille"  # irregular
    assert predicate_in_gender("riche", "m", known) == "riche"
    assert predicate_in_gender("entrouverte", "m", known) is None  # no masculine the corpus knows
    assert predicate_in_gender("brûlant", "f", known) is None
    assert other_gender_word("la", "m", known) == "la"


def test_predicates_are_mined_in_both_genders_and_by_what_they_were_said_of() -> None:
    pairs = corpus()
    lexicon = mine_nouns(pairs)
    known = {"fatigué", "fatiguée", "délicieux", "délicieuse", "petit", "petite", "ouvert", "ouverte", "vide"}
    found = {
        (p.english, p.masculine, p.feminine, p.of_people, p.of_things) for p in mine_predicates(pairs, lexicon, known)
    }
    assert ("is tired", "est fatigué", "est fatiguée", True, False) in found
    assert ("was hungry", "avait faim", "avait faim", True, False) in found
    assert ("is delicious", "est délicieux", "est délicieuse", False, True) in found
    assert ("is too small", "est trop petit", "est trop petite", False, True) in found
    assert ("was in the kitchen", "était dans la cuisine", "était dans la cuisine", False, True) in found
    assert not any("student" in english for english, *_ in found)


def _pronoun(french: str) -> str:
    found = re.findall(r"(?:^|[\s'])(il|elle)\b", french.lower())
    assert len(found) == 1, french
    return found[0]


def test_every_pair_says_il_or_elle_by_the_gender_of_the_noun_it_refers_to(generator: PronounPairs) -> None:
    pairs = generator.generate(600, random.Random(5))
    assert len(pairs) == 600 and len(set(pairs)) > 300
    shapes = {"because": 0, "but": 0, "where": 0, "two nouns": 0, "next sentence": 0}
    for english, french in pairs:
        assert re.search(r"\b[Ii]t\b", english), english
        words = re.findall(r"[a-z]+", english.lower())
        nouns = [word for word in words if word in NOUNS]
        if words[:2] == ["where", "is"]:
            shapes["where"] += 1
        if len(nouns) == 2:  # "The cow ate the cake because it was hungry": tired / hungry are said of animals
            shapes["two nouns"] += 1
            animal, thing = nouns
            referent = animal if re.search(r"it (is|was) (tired|hungry)", english) else thing
        else:
            assert len(nouns) == 1, english
            referent = nouns[0]
        _, gender = NOUNS[referent]
        assert _pronoun(french) == ("il" if gender == "m" else "elle"), (english, french)
        assert NOUNS[referent][0] in french
        shapes["because"] += " because it " in english
        shapes["but"] += ", but it " in english
        shapes["next sentence"] += bool(re.search(r"[a-z]\. It ", english))
    assert all(count > 20 for count in shapes.values()), shapes


def test_french_elides_que_before_the_pronoun(generator: PronounPairs) -> None:
    pairs = generator.generate(400, random.Random(6))
    because = [french for english, french in pairs if " because it " in english]
    assert because and all(re.search(r"parce qu'(il|elle) ", french) for french in because)
    assert not any("que il" in french or "que elle" in french for _, french in pairs)


def test_the_same_random_state_gives_the_same_pairs(generator: PronounPairs) -> None:
    assert generator.generate(50, random.Random(9)) == generator.generate(50, random.Random(9))


def test_a_corpus_with_nothing_to_learn_from_is_refused() -> None:
    with pytest.raises(ValueError, match="too small to make pronoun pairs"):
        PronounPairs([("Hello.", "Bonjour."), ("Yes.", "Oui.")])
