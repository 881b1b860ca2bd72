"""A French predicate in the other gender: ``fatigué`` -> ``fatiguée``, ``trop grand`` -> ``trop grande``.

Only the words that agree with the subject change: the predicate's first word and any word after
an adverb of degree (``très``, ``trop``, ``si`` ...). A word changes by the regular endings
(``-eux`` / ``-euse``, ``-if`` / ``-ive``, ``-er`` / ``-ère``, ``-el`` / ``-elle``, ``-en`` /
``-enne``, ``-on`` / ``-onne``, ``-et`` / ``-ette``, ``+e``) or a short table of irregular
adjectives, and only into a form that the corpus itself uses (``known``): ``faim`` stays
``faim`` (there is no ``faime``), ``sur la table`` stays as it is (``sur`` is a preposition).
"""

from __future__ import annotations

from collections.abc import Collection

from selfattention.data.french_nouns import Gender, word_set

IRREGULAR = {  # masculine: feminine, of French grammar
    "beau": "belle",
    "bel": "belle",
    "vieux": "vieille",
    "nouveau": "nouvelle",
    "fou": "folle",
    "mou": "molle",
    "blanc": "blanche",
    "franc": "franche",
    "frais": "fraîche",
    "sec": "sèche",
    "doux": "douce",
    "faux": "fausse",
    "roux": "rousse",
    "long": "longue",
    "gentil": "gentille",
    "bon": "bonne",
    "gros": "grosse",
    "gras": "grasse",
    "bas": "basse",
    "épais": "épaisse",
    "las": "lasse",
    "public": "publique",
    "favori": "favorite",
    "jaloux": "jalouse",
    "complet": "complète",
    "incomplet": "incomplète",
    "inquiet": "inquiète",
    "secret": "secrète",
    "discret": "discrète",
    "prêt": "prête",
    "pareil": "pareille",
    "gentils": "gentilles",
}
FEMININE_TO_MASCULINE = {feminine: masculine for masculine, feminine in IRREGULAR.items() if masculine != "bel"}
# Suffixes: masculine ending, feminine ending (longest first).
ENDINGS = (
    ("eux", "euse"),
    ("if", "ive"),
    ("er", "ère"),
    ("el", "elle"),
    ("en", "enne"),
    ("on", "onne"),
    ("et", "ette"),
)
DEGREE = word_set(
    "très trop si plus moins assez vraiment tellement peu aussi toujours déjà encore presque complètement "
    "entièrement bien fort extrêmement absolument parfaitement totalement"
)
FUNCTION_WORDS = word_set(
    "à au aux de du des la le les l' un une en dans sur sous avec sans pour par chez vers entre devant derrière "
    "près loin et ou mais ni que qu' qui ne pas plus très trop si son sa ses mon ma mes ton ta tes notre votre "
    "leur leurs ce cet cette ces il elle on y tout tous toute toutes déjà encore ici là"
)


FEMININE_LOOKING = ("ée", "te", "se", "ve", "lle", "nne", "ère")


def other_gender_word(word: str, to: Gender, known: Collection[str]) -> str | None:
    """``word`` in gender ``to``; None when it must change but no form the corpus uses fits."""
    if word in FUNCTION_WORDS:
        return word
    candidates: list[str] = []
    if to == "f":
        if word in IRREGULAR:
            return IRREGULAR[word]
        if word.endswith("e"):
            return word  # rouge, jeune, vide: one form for both
        candidates += [word[: -len(m)] + f for m, f in ENDINGS if word.endswith(m)]
        candidates.append(word + "e")
    else:
        if word in FEMININE_TO_MASCULINE:
            return FEMININE_TO_MASCULINE[word]
        candidates += [word[: -len(f)] + m for m, f in ENDINGS if word.endswith(f)]
        if word.endswith("e"):
            candidates.append(word[:-1])
    for candidate in candidates:
        if candidate in known:
            return candidate
    if to == "m" and not word.endswith(FEMININE_LOOKING):
        return word  # riche, calme, malade: no masculine of its own
    return None


def predicate_in_gender(predicate: str, to: Gender, known: Collection[str]) -> str | None:
    """A predicate (``très fatigué``, ``sur la table``) agreeing with a subject of gender ``to``.

    None when a word that agrees cannot be put in that gender from what the corpus knows.
    """
    words = predicate.split(" ")
    out = []
    for index, word in enumerate(words):
        agrees = index == 0 or words[index - 1].lower() in DEGREE
        changed = other_gender_word(word, to, known) if agrees else word
        if changed is None:
            return None
        out.append(changed)
    return " ".join(out)
