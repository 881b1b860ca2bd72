"""What a right translation must contain: the seeds' sentences with their rules, and "it" as il or elle.

A rule is read as a person checks a French sentence: case-insensitive unless the rule says
otherwise, accents as written, typographic apostrophes (’ ‘ ʼ) read as the plain one ('). A
seed's phrase is found where a word starts and may run on ("mang" finds "a mangé" and
"mangeait", "jus de pomme" finds "jus de pommes", "il avait faim" finds "qu'il avait faim"; "pomme"
is not found in "papomme"). A pronoun is found as a whole word: "il" in "Il", "qu'il" and
"a-t-il" but not in "ils" or "fil"; "elle" in "qu'elle", where "il" is not found. This module is
the one place these rules live: ``benchmarks/everyday.py`` and ``tests/test_seed_sentences.py``
both read them here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Pronoun = Literal["il", "elle"]
PRONOUNS: tuple[Pronoun, ...] = ("il", "elle")

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})


def normalise_apostrophes(text: str) -> str:
    """``text`` with every typographic apostrophe replaced by the plain one."""
    return text.translate(_APOSTROPHES)


@dataclass(frozen=True)
class Phrase:
    """One thing a right translation contains: any of ``alternatives``, starting where a word starts.

    ``cased``: letter case must match too ("Apple" kept with its capital). ``whole_word``: the
    phrase must also end where a word ends ("il" is not found in "ils").
    """

    alternatives: tuple[str, ...]
    cased: bool = False
    whole_word: bool = False

    def __post_init__(self) -> None:
        if not self.alternatives or not all(text.strip() for text in self.alternatives):
            raise ValueError(f"a phrase needs at least one non-empty alternative, got {self.alternatives!r}")

    @property
    def pattern(self) -> re.Pattern[str]:
        ending = r"(?!\w)" if self.whole_word else ""
        options = "|".join(
            r"\s+".join(re.escape(word) for word in normalise_apostrophes(text).split()) for text in self.alternatives
        )
        return re.compile(rf"(?<!\w)(?:{options}){ending}", 0 if self.cased else re.IGNORECASE)

    def found_in(self, translation: str) -> bool:
        """Whether ``translation`` contains one of the alternatives (as the class says where it may start and end)."""
        return self.pattern.search(normalise_apostrophes(translation)) is not None

    def __str__(self) -> str:
        shown = " / ".join(f'"{text}"' for text in self.alternatives)
        return f"{shown} (cased)" if self.cased else shown


@dataclass(frozen=True)
class SeedExample:
    """A sentence of the seeds and what every right translation of it contains (all of ``requires``)."""

    source: str
    requires: tuple[Phrase, ...]

    def missing(self, translation: str) -> list[Phrase]:
        """The required phrases that ``translation`` lacks (empty: it is right)."""
        return [phrase for phrase in self.requires if not phrase.found_in(translation)]

    def is_right(self, translation: str) -> bool:
        return not self.missing(translation)

    @property
    def rule(self) -> str:
        """The rule in words, e.g. ``"chien" and "mang…" and ...``."""
        return " and ".join(str(phrase) for phrase in self.requires)


DOG_SENTENCE = "A dog ate the food because it was hungry."

# The seeds' four sentences (seed 000's "it", seed 001's Apple and apple, "I am good.") and a greeting.
SEED_EXAMPLES: tuple[SeedExample, ...] = (
    SeedExample("I am good.", (Phrase(("je vais bien", "je suis bon", "ça va")),)),
    SeedExample(
        DOG_SENTENCE,
        (
            Phrase(("chien",)),
            Phrase(("mang",)),  # a mangé, mangeait, mangea
            Phrase(("nourriture",)),
            Phrase(("il avait faim",)),  # also inside "qu'il avait faim"
        ),
    ),
    SeedExample("I love Apple phones.", (Phrase(("Apple",), cased=True), Phrase(("téléphones",)))),
    SeedExample("I love apple juice.", (Phrase(("jus de pomme",)),)),
    SeedExample("Hello.", (Phrase(("bonjour", "salut")),)),
)

_PRONOUN_PHRASES: dict[str, Phrase] = {pronoun: Phrase((pronoun,), whole_word=True) for pronoun in PRONOUNS}


def pronouns_in(translation: str) -> set[Pronoun]:
    """Which of il and elle ``translation`` contains as words (in "qu'il", "Elle", "est-elle" too)."""
    return {pronoun for pronoun in PRONOUNS if _PRONOUN_PHRASES[pronoun].found_in(translation)}


def pronoun_is_right(translation: str, expected: str) -> bool:
    """Whether ``translation`` has the ``expected`` pronoun (il or elle) and not the other one."""
    if expected not in PRONOUNS:
        raise ValueError(f"the expected pronoun must be one of {', '.join(PRONOUNS)}, not {expected!r}")
    return pronouns_in(translation) == {expected}
