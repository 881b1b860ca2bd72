"""The pronoun pairs: a noun lexicon with genders, predicates in both genders, and "it" -> il / elle."""

from __future__ import annotations

import hashlib
import json
import random
import re

import pytest

from conftest import PRONOUN_NOUNS as NOUNS
from conftest import pronoun_corpus as corpus
from selfattention.data.french_adjectives import other_gender_word, predicate_in_gender
from selfattention.data.french_nouns import FrenchNoun, english_article, mine_nouns, noun_phrase
from selfattention.data.pronoun_pairs import PronounPairs, mine_predicates


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


def _referent(english: str) -> str:
    """The noun "it" refers to, read as the test above reads it."""
    nouns = [word for word in re.findall(r"[a-z]+", english.lower()) if word in NOUNS]
    if len(nouns) == 2:
        animal, thing = nouns
        return animal if re.search(r"it (is|was) (tired|hungry)", english) else thing
    return nouns[0]


def _shape(english: str) -> str:
    if english.startswith("Where is "):
        return "next sentence"
    if len([word for word in re.findall(r"[a-z]+", english.lower()) if word in NOUNS]) == 2:
        return "two nouns"
    if re.match(r"The \w+ (is|was) ", english):
        return "subject"
    return "after clause"


def test_links_point_at_it_and_at_the_noun_it_refers_to_in_every_shape(generator: PronounPairs) -> None:
    shapes: dict[str, int] = {}
    for linked in generator.generate_linked(400, random.Random(7)):
        english = linked.pair[0]
        words = english.split()
        assert words[linked.pronoun] in ("it", "It"), (english, linked)
        assert len(linked.antecedent) == 1, linked  # the fixture's nouns are one word each
        (noun,) = linked.antecedent
        assert noun < linked.pronoun
        assert words[noun].rstrip(",.?!") == _referent(english), (english, linked)
        assert words[noun - 1].lower() in ("the", "a", "an", "my", "your", "this", "his", "her"), (
            english
        )  # not the article
        shapes[_shape(english)] = shapes.get(_shape(english), 0) + 1
    assert set(shapes) == {"next sentence", "two nouns", "subject", "after clause"} and min(shapes.values()) > 20, (
        shapes
    )


def test_generate_is_generate_linked_without_the_links(generator: PronounPairs) -> None:
    plain_rng, linked_rng = random.Random(11), random.Random(11)
    plain = generator.generate(300, plain_rng)
    assert plain == [linked.pair for linked in generator.generate_linked(300, linked_rng)]
    assert plain_rng.getstate() == linked_rng.getstate()  # the same draws: what follows is the same too


def test_generate_makes_the_pairs_it_made_before_links_were_added(generator: PronounPairs) -> None:
    """Runs started before links existed reproduce their pairs: a digest of what ``generate`` made at
    cff210d (before ``generate_linked``; checked then against a copy of that code), and the draws after."""
    digest = hashlib.sha256()
    for seed in range(5):
        rng = random.Random(seed)
        digest.update(json.dumps(generator.generate(200, rng)).encode())
        digest.update(repr(rng.random()).encode())  # the same number of draws: what follows is the same too
    assert digest.hexdigest()[:16] == "58a473b27280e147"


SPEAKER = [
    ("I'm thirsty.", "J'ai soif !"),
    ("I was sleepy.", "J'avais sommeil."),
    ("I'm very tired.", "Je suis très fatiguée."),  # the speaker's gender: both forms are made
    ("I'm sure I can do it.", "Je suis sûr de pouvoir le faire."),  # about the speaker again: left out
    ("I'm proud of myself.", "Je suis fier de moi."),  # the same
    ("I'm a teacher.", "Je suis un professeur."),  # a noun: left out
    ("I was tired.", "Je suis fatigué."),  # the tenses differ: left out
]


def test_predicates_said_of_the_speaker_are_said_of_it_in_both_genders() -> None:
    pairs = [*corpus(), *SPEAKER]
    lexicon = mine_nouns(pairs)
    known = {"fatigué", "fatiguée", "sûr", "sûre", "fier", "fière"}
    without = {p.english for p in mine_predicates(pairs, lexicon, known)}
    found = {
        (p.english, p.masculine, p.feminine, p.of_people, p.of_things)
        for p in mine_predicates(pairs, lexicon, known, first_person=True)
    }
    assert ("is thirsty", "a soif", "a soif", True, False) in found
    assert ("was sleepy", "avait sommeil", "avait sommeil", True, False) in found
    assert ("is very tired", "est très fatigué", "est très fatiguée", True, False) in found
    assert not {"is thirsty", "was sleepy", "is very tired"} & without
    mined = {english for english, *_ in found}
    assert not mined & {"is sure I can do it", "is proud of myself", "is a teacher", "was tired"}


def test_excluded_sentences_are_never_made(generator: PronounPairs) -> None:
    made = [english for english, _ in generator.generate(400, random.Random(5))]
    banned = sorted(set(made))[:5]
    careful = PronounPairs(corpus(), exclude=[f"  {sentence.upper()[:-1]}!" for sentence in banned])
    again = [english for english, _ in careful.generate(400, random.Random(5))]
    assert len(again) == 400
    assert not set(again) & set(banned)


PEOPLE_NOUNS = {"girl": ("fille", "f"), "boy": ("garçon", "m")}


def _corpus_with_people() -> list[tuple[str, str]]:
    pairs = corpus()
    for english, (french, gender) in PEOPLE_NOUNS.items():
        the, a = ("le " if gender == "m" else "la ") + french, ("un " if gender == "m" else "une ") + french
        pairs += [
            (f"I see the {english}.", f"Je vois {the}."),
            (f"Where is the {english}?", f"Où est {the} ?"),
            (f"This is a {english}.", f"C'est {a}."),
            (f"We found a {english}.", f"Nous avons trouvé {a}."),
        ]
    return pairs


def test_person_subjects_make_it_the_thing_whatever_the_persons_gender() -> None:
    generator = PronounPairs(_corpus_with_people(), person_subjects=True)
    combinations = set()
    for linked in generator.generate_linked(800, random.Random(3)):
        english, french = linked.pair
        person = re.match(r"The (girl|boy) ", english)
        if person is None:
            assert not any(word in english for word in PEOPLE_NOUNS), english  # people come only in this shape
            continue
        words = english.split()
        (noun,) = linked.antecedent
        thing = words[noun].rstrip(",")
        assert words[linked.pronoun] == "it" and noun == linked.pronoun - 2  # "the box because it", "the box, but it"
        assert _pronoun(french) == ("il" if NOUNS[thing][1] == "m" else "elle"), (english, french)
        assert french.startswith(f"{'La' if PEOPLE_NOUNS[person[1]][1] == 'f' else 'Le'} {PEOPLE_NOUNS[person[1]][0]} ")
        combinations.add((PEOPLE_NOUNS[person[1]][1], NOUNS[thing][1]))
    assert combinations == {("f", "m"), ("f", "f"), ("m", "m"), ("m", "f")}  # the person's gender tells nothing


def test_without_person_subjects_people_are_never_subjects() -> None:
    rng = random.Random(4)
    pairs = PronounPairs(_corpus_with_people()).generate(600, rng)
    assert not any(re.match(r"The (girl|boy) ", english) for english, _ in pairs)
