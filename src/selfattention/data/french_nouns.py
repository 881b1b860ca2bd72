"""French noun phrases with the right article: a noun lexicon mined from parallel text, and agreement.

The lexicon pairs an English noun with the French noun that translates it and that noun's
gender, read from the French side: a noun after ``le``, ``un``, ``ce``, ``mon`` ... is masculine,
after ``la``, ``une``, ``cette``, ``ma`` ... feminine. An English noun after a determiner and a
French noun after a gendered determiner that occur in the same pairs more often than chance
(Dice coefficient), each the other's best match, with one gender in nearly all its uses, make an
entry. Nothing is written by hand but the determiners and the elision rule.

:func:`noun_phrase` writes a determiner and a noun that agree: ``la`` + ``soupe``, ``l'`` +
``eau``, ``au`` (``à le``) + ``marché``, ``mon`` + ``amie``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Gender = Literal["m", "f"]

ENGLISH_DETERMINERS = ("the", "a", "an", "my", "your", "his", "her", "this", "our", "their", "that")
# A French determiner: (family, gender or None when it does not show one).
FRENCH_DETERMINERS: dict[str, tuple[str, Gender | None]] = {
    "le": ("the", "m"),
    "la": ("the", "f"),
    "l'": ("the", None),
    "un": ("a", "m"),
    "une": ("a", "f"),
    "ce": ("this", "m"),
    "cet": ("this", "m"),
    "cette": ("this", "f"),
    "mon": ("my", None),  # also before a feminine noun that starts with a vowel: mon amie
    "ma": ("my", "f"),
    "ton": ("your", None),
    "ta": ("your", "f"),
    "son": ("his", None),
    "sa": ("his", "f"),
    "au": ("to the", "m"),
    "du": ("of the", "m"),
}
GENDERED: dict[str, Gender] = {word: gender for word, (_, gender) in FRENCH_DETERMINERS.items() if gender is not None}
ENGLISH_DEGREE = frozenset(("very", "too", "so", "quite", "rather", "more", "most", "less"))
FRENCH_DEGREE = frozenset(("très", "trop", "si", "assez", "plutôt", "aussi", "moins", "vraiment", "tellement"))
VOWELS = "aeiouyàâäéèêëîïôöùûüœæh"
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)
_FRENCH_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*'?|'", re.UNICODE)


@dataclass(frozen=True)
class FrenchNoun:
    """A French noun, its gender, and whether the corpus elides its article (``l'eau``, ``l'hôtel``)."""

    word: str
    gender: Gender
    elides: bool


def word_set(text: str) -> frozenset[str]:
    """The space-separated words of ``text``: how word lists are written here."""
    return frozenset(text.split())


def english_words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def french_tokens(text: str) -> list[str]:
    """Lower-cased French words, an elided article kept with its apostrophe (``l'``, ``qu'``)."""
    return _FRENCH_TOKEN.findall(text.lower().replace("’", "'"))


def mine_nouns(
    pairs: Iterable[tuple[str, str]], *, min_count: int = 4, min_dice: float = 0.4, min_purity: float = 0.9
) -> dict[str, FrenchNoun]:
    """English noun -> French noun with its gender, from the pairs' determiners (see the module doc).

    A word seen twice or more after "very", "too", "très", "trop" ... is an adjective, not a noun.
    """
    english_counts: Counter[str] = Counter()
    french_counts: Counter[str] = Counter()
    gender_counts: Counter[tuple[str, Gender]] = Counter()
    elided_counts: Counter[str] = Counter()
    together: Counter[tuple[str, str]] = Counter()
    graded: Counter[str] = Counter()  # words after "very", "très" ...: adjectives, not nouns
    for english, french in pairs:
        words = english_words(english)
        graded.update(words[i + 1] for i in range(len(words) - 1) if words[i] in ENGLISH_DEGREE)
        english_nouns = {words[i + 1] for i in range(len(words) - 1) if words[i] in ENGLISH_DETERMINERS}
        tokens = french_tokens(french)
        graded.update(tokens[i + 1] for i in range(len(tokens) - 1) if tokens[i] in FRENCH_DEGREE)
        french_nouns: set[str] = set()
        for i in range(len(tokens) - 1):
            determiner, noun = tokens[i], tokens[i + 1]
            if determiner in GENDERED and not noun.endswith("'"):
                gender_counts[(noun, GENDERED[determiner])] += 1
                french_nouns.add(noun)
            elif determiner == "l'":
                elided_counts[noun] += 1
        english_counts.update(english_nouns)
        french_counts.update(french_nouns)
        together.update((e, f) for e in english_nouns for f in french_nouns)
    best_french: dict[str, tuple[float, str]] = {}
    best_english: dict[str, tuple[float, str]] = {}
    for (english, french), count in together.items():
        if count < min_count:
            continue
        dice = 2 * count / (english_counts[english] + french_counts[french])
        if dice >= min_dice:
            best_french[english] = max(best_french.get(english, (0.0, "")), (dice, french))
            best_english[french] = max(best_english.get(french, (0.0, "")), (dice, english))
    lexicon: dict[str, FrenchNoun] = {}
    for english, (_, french) in sorted(best_french.items()):
        if best_english[french][1] != english or graded[english] >= 2 or graded[french] >= 2:
            continue
        masculine, feminine = gender_counts[(french, "m")], gender_counts[(french, "f")]
        gender: Gender = "m" if masculine >= feminine else "f"
        if max(masculine, feminine) < min_purity * (masculine + feminine):
            continue
        # Before a vowel the article elides; before an h, as the corpus writes it (l'hôtel, le héros).
        elides = french[0] in VOWELS and (french[0] != "h" or elided_counts[french] >= masculine + feminine)
        lexicon[english] = FrenchNoun(french, gender, elides)
    return lexicon


def noun_phrase(family: str, noun: FrenchNoun, capital: bool = False) -> str:
    """A determiner of ``family`` (``the``, ``a``, ``this``, ``my``, ``your``, ``his``, ``to the``,
    ``of the``) that agrees with ``noun``, then the noun: ``la soupe``, ``l'eau``, ``au marché``."""
    masculine = noun.gender == "m"
    forms = {
        "the": "l'" if noun.elides else ("le " if masculine else "la "),
        "a": "un " if masculine else "une ",
        "this": ("cet " if noun.elides else "ce ") if masculine else "cette ",
        "my": "mon " if masculine or noun.elides else "ma ",
        "your": "ton " if masculine or noun.elides else "ta ",
        "his": "son " if masculine or noun.elides else "sa ",
        "to the": "à l'" if noun.elides else ("au " if masculine else "à la "),
        "of the": "de l'" if noun.elides else ("du " if masculine else "de la "),
    }
    phrase = forms[family] + noun.word
    return phrase[0].upper() + phrase[1:] if capital else phrase


def english_article(determiner: str, noun: str) -> str:
    """``a`` or ``an`` before ``noun`` as its first letter says; any other determiner as it is."""
    if determiner.lower() in ("a", "an"):
        article = "an" if noun[:1].lower() in "aeiou" else "a"
        return article.capitalize() if determiner[:1].isupper() else article
    return determiner
