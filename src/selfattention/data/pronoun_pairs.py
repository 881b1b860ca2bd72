"""Pairs that teach "it" -> il / elle: the pronoun follows the gender of the noun it refers to.

The corpora teach this poorly: few of their sentences have an "it" that refers back to a noun in
the same sentence. These pairs are built from the corpora themselves:

- **nouns** with their French gender (:func:`~selfattention.data.french_nouns.mine_nouns`);
- **predicates**, ``He/She/The N is|was P.`` ↔ ``Il/Elle/Le N est|était|a|avait Q.``: what can
  be said of "it", in both genders (:func:`mine_predicates`);
- **clauses** that end with a noun, ``I returned the dress.`` ↔ ``J'ai rendu la robe.``
  (:func:`mine_clauses`), whose noun is swapped for another of either gender (a counterfactual
  pair: the same sentence, the other pronoun).

:class:`PronounPairs` joins them into one sentence, or two, whose "it" refers to one noun:

1. ``{clause with the N} because|but|and|when it {P}.`` (or ``. It {P}.``): the only noun, the
   clause's object;
2. ``The {animal} {verb} the {thing} because it {P}.``: two nouns; a predicate said of people
   (hungry, tired) refers to the animal, one said of things (delicious, empty) to the thing;
3. ``The {N} is {P1}, but it is {P2}.``: the subject;
4. ``Where is my {N}? It {P}.``: across a sentence boundary;
5. with ``person_subjects``, ``The {person} {verb} the {thing} because it {P}.``: a person of
   either gender does something to a thing, and "it" is the thing (never the person), whatever
   the person's gender: "Le garçon a laissé tomber la bouteille parce qu'elle était lourde.".

:meth:`PronounPairs.generate_linked` says, for each pair, which English word is "it" and which
word the antecedent: indices among the sentence's whitespace-separated words (``str.split()``),
the noun alone, without its article (the noun's word may carry punctuation: ``food,``, ``bag?``).
The training uses them to teach one encoder head where "it" points (training/antecedent.py).

Handwritten here are only general words: the connectives, the English words for animals and for
people (never "it"), a few verbs for shape 2, and French elision (``qu'il``).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from selfattention.data.french_adjectives import predicate_in_gender
from selfattention.data.french_nouns import (
    ENGLISH_DETERMINERS,
    FRENCH_DETERMINERS,
    FrenchNoun,
    Gender,
    english_article,
    french_tokens,
    mine_nouns,
    noun_phrase,
    word_set,
)

Pair = tuple[str, str]
GENDERS: tuple[Gender, Gender] = ("m", "f")

ANIMALS = word_set(
    "dog cat horse bird cow sheep goat pig mouse rabbit duck chicken hen lion tiger bear monkey elephant fox wolf "
    "snake fish camel donkey deer frog owl squirrel puppy kitten giraffe zebra dolphin whale turtle bee spider "
    "parrot eagle goose ox bull calf lamb pony rat hamster crow pigeon seagull swan shark crocodile"
)
PEOPLE = word_set(
    "man woman boy girl child kid baby person guy lady gentleman mother father mom dad brother sister son daughter "
    "wife husband friend teacher doctor student player worker girlfriend boyfriend uncle aunt grandmother "
    "grandfather cousin neighbor neighbour boss king queen nurse cook chef driver officer policeman soldier "
    "artist musician singer dancer athlete climber biker rider surfer skier skateboarder swimmer runner "
    "toddler infant adult teenager teen crowd team family couple group people men women children liar clown bride "
    "groom hiker photographer snowboarder ballerina pitcher wrestler bicyclist cyclist motorcyclist individual actor "
    "actress writer author poet painter pilot waiter waitress customer tourist stranger visitor guest owner lawyer "
    "judge priest monk farmer fisherman employee president prince princess boxer fighter golfer batter catcher "
    "goalie goalkeeper referee umpire vendor seller merchant salesman shopkeeper baker butcher mechanic carpenter "
    "plumber engineer scientist dentist surgeon patient thief robber criminal hero enemy partner colleague classmate "
    "roommate fan spectator audience performer magician juggler guitarist drummer pianist violinist cowboy sailor "
    "captain police firefighter fireman jogger walker pedestrian passenger youngster pupil graduate skater diver "
    "model god idiot fool genius expert beginner champion winner loser leader member citizen native foreigner "
    "guard warrior knight cop coward traitor spy prisoner manager defender electrician hunter jockey master mom "
    "newborn passerby quarterback rider scuba shoeshine snowman homeless military dj chef cook officer"
)
ENGLISH_SUBJECTS = word_set("i you we they he she tom mary")
CONNECTIVES = (  # English, French: each joins a clause to "it ..."
    (" because ", " parce que "),
    (", but ", ", mais "),
    (" and ", " et "),
    (" when ", " quand "),
    (". ", ". "),  # a new sentence: "It was ..." / "Elle était ..."
)
PAST_VERBS = (  # shape 2: an animal does something to a thing
    ("ate", "a mangé"),
    ("drank", "a bu"),
    ("found", "a trouvé"),
    ("wanted", "voulait"),
    ("liked", "aimait"),
    ("smelled", "a senti"),
    ("chased", "a poursuivi"),
    ("carried", "a porté"),
    ("dropped", "a laissé tomber"),
    ("looked at", "a regardé"),
    ("bit", "a mordu"),
    ("hid", "a caché"),
    ("broke", "a cassé"),
    ("pushed", "a poussé"),
    ("brought", "a apporté"),
    ("ignored", "a ignoré"),
)
PRESENT_VERBS = (
    ("is eating", "mange"),
    ("is drinking", "boit"),
    ("wants", "veut"),
    ("likes", "aime"),
    ("is smelling", "sent"),
    ("is chasing", "poursuit"),
    ("is carrying", "porte"),
    ("is looking at", "regarde"),
    ("is biting", "mord"),
    ("is pushing", "pousse"),
    ("ignores", "ignore"),
)
_PREDICATE_EN = re.compile(r"^(He|She|It|The (\w+)) (is|was|'s) ([a-z][\w' ,-]*?)\s*[.!]$")
_PREDICATE_FR = re.compile(
    r"^(Il|Elle|(?:Le|La) ([\w-]+)|L'([\w-]+)) (est|était|a|avait|semble|semblait) (.+?)\s*[.!]$"
)
_PRESENT_FR = ("est", "a", "semble")
# "I'm hungry." ↔ "J'ai faim !": what is said of the speaker, said of "it" in the third person.
_FIRST_PERSON_EN = re.compile(r"^(I'm|I am|I was) ([a-z][\w' ,-]*?)\s*[.!]$")
_FIRST_PERSON_FR = re.compile(r"^(Je suis|J'étais|J'ai|J'avais|Je semble|Je semblais) (.+?)\s*[.!]$")
_THIRD_PERSON = {
    "Je suis": "est",
    "J'étais": "était",
    "J'ai": "a",
    "J'avais": "avait",
    "Je semble": "semble",
    "Je semblais": "semblait",
}
_ABOUT_THE_SPEAKER = re.compile(r"\b(I|me|my|myself|mine|je|j|me|m|moi|mon|ma|mes|nous|we|us|our)\b", re.IGNORECASE)


@dataclass(frozen=True)
class LinkedPair:
    """A pair, and where "it" and its antecedent are among the English sentence's words (``split()``)."""

    pair: Pair
    pronoun: int  # the index of "it" / "It"
    antecedent: tuple[int, ...]  # the noun's words (all of them for a compound noun), without the article


@dataclass(frozen=True)
class Predicate:
    """What is said of "it": English (``was too big``), French for each gender, and of what it was said."""

    english: str
    masculine: str
    feminine: str
    present: bool
    of_people: bool  # seen with He / She
    of_things: bool  # seen with a noun that is not a person or an animal, or with "It" as elle

    def french(self, gender: Gender) -> str:
        return self.masculine if gender == "m" else self.feminine


@dataclass(frozen=True)
class Clause:
    """A sentence that ends with ``determiner noun``: the noun's slot is what changes."""

    english_head: str  # up to the determiner: "I returned"
    english_determiner: str  # "the"
    french_head: str  # up to the noun phrase: "J'ai rendu"
    french_family: str  # the determiner's family: "the", "a", "my", "to the" ...
    noun: str  # the English noun in the corpus sentence
    present: bool


def _french_words(pairs: Iterable[Pair]) -> Counter[str]:
    words: Counter[str] = Counter()
    for _, french in pairs:
        words.update(french_tokens(french))
    return words


def mine_predicates(
    pairs: Iterable[Pair], nouns: dict[str, FrenchNoun], known: Counter[str], *, first_person: bool = False
) -> list[Predicate]:
    """Predicates seen after He / She / It / The N, with their French in both genders; with
    ``first_person``, also those said of the speaker ("I'm hungry." ↔ "J'ai faim !": is hungry ↔ a faim),
    predicates of people."""
    seen: dict[tuple[str, bool], dict[Gender, Counter[str]]] = {}
    people: set[tuple[str, bool]] = set()
    things: set[tuple[str, bool]] = set()
    for english, french in pairs:
        if first_person and (said := _said_of_the_speaker(english, french, known)) is not None:
            spoken, both = said
            for each in GENDERS:
                seen.setdefault(spoken, {"m": Counter(), "f": Counter()})[each][both[each]] += 1
            people.add(spoken)
            continue
        e = _PREDICATE_EN.match(english.replace("’", "'"))
        f = _PREDICATE_FR.match(french.replace("’", "'")) if e else None
        if e is None or f is None:
            continue
        present, verb, complement = e.group(3) != "was", f.group(4), f.group(5)
        if present != (verb in _PRESENT_FR) or complement.split(" ")[0].lower() in FRENCH_DETERMINERS:
            continue  # another tense, or "Il est un ..." (a noun, not a predicate)
        subject, noun = e.group(1), (e.group(2) or "").lower()
        gender: Gender
        if subject == "He" and f.group(1) == "Il":
            gender, person = "m", True
        elif subject == "She" and f.group(1) == "Elle":
            gender, person = "f", True
        elif subject == "It" and f.group(1) == "Elle":  # "Il" after "It" may be impersonal: il est tard
            gender, person = "f", False
        elif noun in nouns and (f.group(2) or f.group(3) or "").lower() == nouns[noun].word:
            if noun in PEOPLE:
                continue
            gender, person = nouns[noun].gender, noun in ANIMALS
        else:
            continue
        key = (f"{'is' if present else 'was'} {e.group(4)}", present)
        seen.setdefault(key, {"m": Counter(), "f": Counter()})[gender][f"{verb} {complement}"] += 1
        (people if person else things).add(key)
    predicates = []
    for key, forms in sorted(seen.items()):
        verb_forms: dict[Gender, str] = {
            gender: forms[gender].most_common(1)[0][0] for gender in GENDERS if forms[gender]
        }
        for gender, other in zip(GENDERS, reversed(GENDERS), strict=True):
            if gender not in verb_forms:
                verb, _, complement = verb_forms[other].partition(" ")
                # After avoir the complement is a noun (il a faim, elle a faim); after être it agrees.
                agreed = complement if verb in ("a", "avait") else predicate_in_gender(complement, gender, known)
                if agreed is not None:
                    verb_forms[gender] = f"{verb} {agreed}"
        if len(verb_forms) < 2:
            continue
        english, present = key
        predicates.append(Predicate(english, verb_forms["m"], verb_forms["f"], present, key in people, key in things))
    return predicates


def _said_of_the_speaker(
    english: str, french: str, known: Counter[str]
) -> tuple[tuple[str, bool], dict[Gender, str]] | None:
    """``("is hungry", True), {"m": "a faim", "f": "a faim"}`` from "I'm hungry." ↔ "J'ai faim !", or None.

    The speaker's gender is unknown, so an adjective after être is put in both (``fatigué``,
    ``fatiguée``) where the corpus has both forms; a predicate that speaks of the speaker again
    ("I'm sure I can", "Je suis fier de moi") or is a noun ("Je suis un étudiant") is left out.
    """
    e = _FIRST_PERSON_EN.match(english.replace("’", "'"))
    f = _FIRST_PERSON_FR.match(french.replace("’", "'")) if e else None
    if e is None or f is None:
        return None
    verb, complement = _THIRD_PERSON[f.group(1)], f.group(2)
    present = e.group(1) != "I was"
    if present != (verb in _PRESENT_FR) or complement.split(" ")[0].lower() in FRENCH_DETERMINERS:
        return None
    if _ABOUT_THE_SPEAKER.search(e.group(2)) or _ABOUT_THE_SPEAKER.search(complement):
        return None
    forms: dict[Gender, str] = {}
    for gender in GENDERS:
        agreed = complement if verb in ("a", "avait") else predicate_in_gender(complement, gender, known)
        if agreed is None:
            return None
        forms[gender] = f"{verb} {agreed}"
    return (f"{'is' if present else 'was'} {e.group(2)}", present), forms


def mine_clauses(pairs: Iterable[Pair], nouns: dict[str, FrenchNoun]) -> list[Clause]:
    """Short sentences with a pronoun or name as subject and one noun, the last word, on both sides."""
    clauses = []
    for english, french in pairs:
        words = english.rstrip(".!").split(" ")
        if not 3 <= len(words) <= 9 or english[-1:] != "." or words[0].lower() not in ENGLISH_SUBJECTS:
            continue
        determiner, noun = words[-2], words[-1]
        if determiner.lower() not in ENGLISH_DETERMINERS or noun not in nouns or noun in PEOPLE | ANIMALS:
            continue
        if any(word.lower() in nouns or word.lower() in ("it", "them", "one") for word in words[:-1]):
            continue  # one noun only, and no pronoun that could be the one "it" refers to
        french = french.replace("’", "'").strip()
        match = re.match(
            r"^(.*?)\s*\b("
            + "|".join(map(re.escape, FRENCH_DETERMINERS))
            + r")\s?"
            + re.escape(nouns[noun].word)
            + r"\s*\.$",
            french,
            re.IGNORECASE,
        )
        if match is None or not match.group(1):
            continue
        family = FRENCH_DETERMINERS[match.group(2).lower()][0]
        head = match.group(1)
        if family == "the" and head.lower().endswith((" à", " de")):  # "à la" / "de la": contracted forms
            family, head = ("to the" if head.lower().endswith(" à") else "of the"), head[:-2].rstrip()
        present = not re.search(r"\b(was|were|did|had|\w{3,}ed)\b", english)
        clauses.append(Clause(" ".join(words[:-2]), determiner, head, family, noun, present))
    return clauses


class PronounPairs:
    """Makes pairs in which "it" refers to a noun; the French pronoun is il or elle by its gender."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        *,
        first_person: bool = False,
        exclude: Iterable[str] = (),
        person_subjects: bool = False,
    ) -> None:
        """``first_person``: predicates said of the speaker too (:func:`mine_predicates`). ``exclude``:
        sentences never to make (an evaluation set's), compared without case, spacing or final punctuation.
        ``person_subjects``: shape 5 too (a person's act on a thing; off, the shapes draw as before it existed)."""
        self.nouns = mine_nouns(pairs)
        known = _french_words(pairs)
        self.predicates = mine_predicates(pairs, self.nouns, known, first_person=first_person)
        self.exclude = {_comparable(sentence) for sentence in exclude}
        self.clauses = mine_clauses(pairs, self.nouns)
        self.things = sorted(noun for noun in self.nouns if noun not in ANIMALS | PEOPLE)
        self.animals = sorted(noun for noun in self.nouns if noun in ANIMALS)
        self.people = sorted(noun for noun in self.nouns if noun in PEOPLE) if person_subjects else []
        self._of_things = [p for p in self.predicates if p.of_things]
        self._of_people_only = [p for p in self.predicates if p.of_people and not p.of_things]
        self._of_things_only = [p for p in self.predicates if p.of_things and not p.of_people]
        if not (self.things and self._of_things and self.clauses):
            raise ValueError(
                f"the corpora are too small to make pronoun pairs from: {len(self.things)} nouns, "
                f"{len(self._of_things)} predicates of things, {len(self.clauses)} clauses"
            )

    def generate(self, count: int, rng: random.Random) -> list[Pair]:
        """``count`` pairs, each of a shape drawn at random (see the module doc)."""
        return [linked.pair for linked in self.generate_linked(count, rng)]

    def generate_linked(self, count: int, rng: random.Random) -> list[LinkedPair]:
        """The pairs :meth:`generate` makes from the same random state, each with where "it" and its noun are."""
        shapes = [self._after_clause, self._two_nouns, self._subject, self._next_sentence]
        if not (self.animals and self._of_people_only and self._of_things_only):
            shapes.remove(self._two_nouns)
        if self.people:
            shapes.append(self._person_and_thing)
        if not self.exclude:
            return [rng.choice(shapes)(rng) for _ in range(count)]
        made: list[LinkedPair] = []
        while len(made) < count:  # an excluded sentence is drawn again
            linked = rng.choice(shapes)(rng)
            if _comparable(linked.pair[0]) not in self.exclude:
                made.append(linked)
        return made

    # -- the shapes ---------------------------------------------------------------------------------

    def _of_either_gender(self, rng: random.Random, pool: list[str]) -> str:
        """A noun of ``pool``, masculine or feminine with equal chance (any of them if none has the gender)."""
        gender = rng.choice(GENDERS)
        return rng.choice([noun for noun in pool if self.nouns[noun].gender == gender] or pool)

    def _thing(self, rng: random.Random) -> tuple[str, FrenchNoun]:
        """A thing noun, masculine or feminine with equal chance."""
        noun = self._of_either_gender(rng, self.things)
        return noun, self.nouns[noun]

    def _predicate(self, rng: random.Random, choices: list[Predicate], present: bool) -> Predicate:
        same_tense = [p for p in choices if p.present == present]
        return rng.choice(same_tense or choices)

    def _after_clause(self, rng: random.Random) -> LinkedPair:
        clause = rng.choice(self.clauses)
        noun, french = (clause.noun, self.nouns[clause.noun]) if rng.random() < 0.3 else self._thing(rng)
        predicate = self._predicate(rng, self._of_things, clause.present)
        english_connective, french_connective = rng.choice(CONNECTIVES)
        english = f"{clause.english_head} {english_article(clause.english_determiner, noun)} {noun}"
        space = "" if clause.french_head.endswith("'") else " "
        french_clause = f"{clause.french_head}{space}{noun_phrase(clause.french_family, french)}"
        it, pronoun = "it", _pronoun(french.gender)
        if english_connective == ". ":
            it, pronoun = "It", pronoun.capitalize()
        pair = (
            f"{english}{english_connective}{it} {predicate.english}.",
            _elide(f"{french_clause}{french_connective}{pronoun} {predicate.french(french.gender)}."),
        )
        return LinkedPair(pair, _word_count(english + english_connective), (_word_count(english) - 1,))

    def _two_nouns(self, rng: random.Random) -> LinkedPair:
        animal = self._of_either_gender(rng, self.animals)
        thing, _ = self._thing(rng)
        present = rng.random() < 0.4
        verb = rng.choice(PRESENT_VERBS if present else PAST_VERBS)
        about_animal = rng.random() < 0.5
        choices = self._of_people_only if about_animal else self._of_things_only
        predicate = self._predicate(rng, choices, present)
        return self._acts_on(animal, verb, thing, predicate, rng.choice(CONNECTIVES[:2]), about_subject=about_animal)

    def _person_and_thing(self, rng: random.Random) -> LinkedPair:
        person = self._of_either_gender(rng, self.people)  # drawn apart from the thing: a distractor half the time
        thing, _ = self._thing(rng)
        present = rng.random() < 0.4
        verb = rng.choice(PRESENT_VERBS if present else PAST_VERBS)
        predicate = self._predicate(rng, self._of_things_only or self._of_things, present)
        return self._acts_on(person, verb, thing, predicate, rng.choice(CONNECTIVES[:2]), about_subject=False)

    def _acts_on(
        self, subject: str, verb: Pair, thing: str, predicate: Predicate, connective: Pair, *, about_subject: bool
    ) -> LinkedPair:
        """``The {subject} {verb} the {thing}{connective}it {predicate}.``, "it" the subject or the thing."""
        (english_verb, french_verb), (english_connective, french_connective) = verb, connective
        gender = self.nouns[subject if about_subject else thing].gender
        clause = f"The {subject} {english_verb} the {thing}"
        english = f"{clause}{english_connective}it {predicate.english}."
        french = (
            f"{noun_phrase('the', self.nouns[subject], capital=True)} {french_verb} "
            f"{noun_phrase('the', self.nouns[thing])}{french_connective}{_pronoun(gender)} {predicate.french(gender)}."
        )
        antecedent = 1 if about_subject else _word_count(clause) - 1  # "The {subject}", or the clause's last word
        return LinkedPair((english, _elide(french)), _word_count(clause + english_connective), (antecedent,))

    def _subject(self, rng: random.Random) -> LinkedPair:
        noun, french = self._thing(rng)
        present = rng.random() < 0.5
        first, second = (self._predicate(rng, self._of_things, present) for _ in range(2))
        before = f"The {noun} {first.english}, but "
        english = f"{before}it {second.english}."
        french_text = (
            f"{noun_phrase('the', french, capital=True)} {first.french(french.gender)}, "
            f"mais {_pronoun(french.gender)} {second.french(french.gender)}."
        )
        return LinkedPair((english, _elide(french_text)), _word_count(before), (1,))

    def _next_sentence(self, rng: random.Random) -> LinkedPair:
        noun, french = self._thing(rng)
        predicate = self._predicate(rng, self._of_things, rng.random() < 0.5)
        english_det, french_det = rng.choice((("my", "my"), ("the", "the"), ("your", "your")))
        question = f"Where is {english_det} {noun}? "
        english = f"{question}It {predicate.english}."
        pronoun = _pronoun(french.gender).capitalize()
        french_text = f"Où est {noun_phrase(french_det, french)} ? {pronoun} {predicate.french(french.gender)}."
        return LinkedPair((english, french_text), _word_count(question), (_word_count(question) - 1,))


def _word_count(text: str) -> int:
    """How many whitespace-separated words ``text`` has: the index of the word that would follow it."""
    return len(text.split())


def _pronoun(gender: Gender) -> str:
    return "il" if gender == "m" else "elle"


def _elide(text: str) -> str:
    """``que il`` -> ``qu'il``, ``que elle`` -> ``qu'elle``."""
    return re.sub(r"\bque (il|elle)\b", r"qu'\1", text)


def _comparable(sentence: str) -> str:
    """A sentence without case, repeated spaces or final punctuation, to tell one sentence from another."""
    return " ".join(sentence.lower().split()).rstrip(" .!?…")
