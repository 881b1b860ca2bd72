"""Clause pairs: sentence pairs cut at the commas, semicolons and colons that both sides share.

Corpora of whole sentences rarely hold a greeting, an interjection or a phrase alone ("Hello",
"Sorry", "please?"), so a model trained on them may translate one badly when it comes by itself.
Many pairs, though, join such pieces with the same punctuation on both sides:

    Hello, how are you?   ↔   Bonjour, comment allez-vous ?
    Can I have some water, please?   ↔   Puis-je avoir un peu d'eau, je vous prie ?

A pair whose two sides split into the same number of clauses at ``,`` ``;`` or ``:`` followed by
a space (so "1,000" is not cut), each clause of a plausible length against its partner's (between
:data:`MIN_RATIO` and :data:`MAX_RATIO` times its characters), gives each clause pair, its first
letter a capital on both sides: ``Hello`` ↔ ``Bonjour``, ``How are you?`` ↔ ``Comment allez-vous ?``.
Pairs whose clauses do not line up so (a different count, or a length far off) give none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

Pair = tuple[str, str]
SEPARATOR = re.compile(r"\s*[,;:]\s+")
MIN_RATIO, MAX_RATIO = 0.4, 2.5  # a clause's characters against its partner's


def clause_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    """The clause pairs of ``pairs`` (see the module doc), each distinct pair once, in first-seen order."""
    found: dict[Pair, None] = {}
    for source, target in pairs:
        sources, targets = SEPARATOR.split(source.strip()), SEPARATOR.split(target.strip())
        if len(sources) < 2 or len(sources) != len(targets):
            continue
        if not all(_plausible(s, t) for s, t in zip(sources, targets, strict=True)):
            continue
        for clause, partner in zip(sources, targets, strict=True):
            found.setdefault((_capitalised(clause), _capitalised(partner)))
    return list(found)


def _plausible(source: str, target: str) -> bool:
    return bool(source) and bool(target) and MIN_RATIO <= len(source) / len(target) <= MAX_RATIO


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
