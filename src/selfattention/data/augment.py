"""Case and punctuation noise on a share of training pairs, as OpusTrainer's modifiers make it.

A model trained on text as corpora write it has rarely seen a sentence in CAPITALS, in Title Case,
all lower-case, or without its final full stop, and may fall apart on one. Each pair is changed
on both sides alike, so that the model learns to carry the input's form over to the output:

- ``uppercase``: ``DO YOU KNOW THIS SONG?`` ↔ ``CONNAIS-TU CETTE CHANSON ?``
- ``titlecase``: every word's first letter a capital;
- ``lowercase``: everything lower-case;
- ``no_final_punctuation``: the final ``.`` ``!`` ``?`` ``…`` dropped (drawn apart from the case);
- ``exclamation_to_stop``: of the pairs that end in ``!`` on both sides, this share ends in a full
  stop instead: ``Hello everyone!`` ↔ ``Salut tout le monde !`` becomes ``Hello everyone.`` ↔
  ``Salut tout le monde.`` (drawn apart; corpora write greetings and interjections with ``!``, and
  a model that never saw one with a full stop may not know it).

The shares are of the pairs; at most one case change a pair.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

Pair = tuple[str, str]
_FINAL_PUNCTUATION = re.compile(r"\s*[.!?…]+[\"'»”)]?\s*$")
_FINAL_EXCLAMATION = re.compile(r"(?<=[^\s.!?…])\s*!+(?=[\"'»”)]?\s*$)")  # not "?!" nor "…!"


@dataclass(frozen=True)
class NoiseShares:
    """The share of pairs (0 to 1) that each change is made to."""

    uppercase: float = 0.0
    titlecase: float = 0.0
    lowercase: float = 0.0
    no_final_punctuation: float = 0.0
    exclamation_to_stop: float = 0.0  # a share of the pairs that end in "!" on both sides

    def __post_init__(self) -> None:
        for name in ("uppercase", "titlecase", "lowercase", "no_final_punctuation", "exclamation_to_stop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {value}")
        if self.uppercase + self.titlecase + self.lowercase > 1.0:
            raise ValueError(
                "uppercase + titlecase + lowercase must be at most 1 (one case change a pair), got "
                f"{self.uppercase + self.titlecase + self.lowercase:g}"
            )

    @property
    def any(self) -> bool:
        return any(
            (self.uppercase, self.titlecase, self.lowercase, self.no_final_punctuation, self.exclamation_to_stop)
        )


def title_case(text: str) -> str:
    """Each space-separated word's first letter a capital (``don't`` stays ``Don't``, not ``Don'T``)."""
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


def drop_final_punctuation(text: str) -> str:
    """The sentence without its final ``.`` ``!`` ``?`` or ``…`` (and the space French puts before them)."""
    stripped = _FINAL_PUNCTUATION.sub("", text)
    return stripped or text


def exclamation_to_stop(text: str) -> str | None:
    """The sentence with its final ``!`` (and the space French puts before it) a full stop; None if it ends otherwise."""
    match = _FINAL_EXCLAMATION.search(text)
    return None if match is None else text[: match.start()] + "." + text[match.end() :]


def add_noise(pairs: Sequence[Pair], shares: NoiseShares, rng: random.Random) -> list[Pair]:
    """The pairs with each change made to its share of them, drawn with ``rng``; the order is kept."""
    if not shares.any:
        return list(pairs)
    cases = (
        (shares.uppercase, str.upper),
        (shares.titlecase, title_case),
        (shares.lowercase, str.lower),
    )
    out = []
    for source, target in pairs:
        draw = rng.random()
        for share, change in cases:
            if draw < share:
                source, target = change(source), change(target)
                break
            draw -= share
        if shares.exclamation_to_stop:  # drawn only when set: the draws of a run without it are unchanged
            stopped_source, stopped_target = exclamation_to_stop(source), exclamation_to_stop(target)
            if stopped_source is not None and stopped_target is not None and rng.random() < shares.exclamation_to_stop:
                source, target = stopped_source, stopped_target
        if rng.random() < shares.no_final_punctuation:
            source, target = drop_final_punctuation(source), drop_final_punctuation(target)
        out.append((source, target))
    return out
