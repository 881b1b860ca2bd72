"""Degenerate translations: a word stuck repeating, a non-word, an output that runs away.

A translation is degenerate (issue 23's definition) when

- **repeat**: one word occurs :data:`REPEATS` (3) or more times in a row. Words are compared by
  their letters, case-insensitively, with punctuation at their ends stripped ("parc, Parc parc");
  a token with no letter (a number, a dash) is not a word and is passed over;
- **non-word**: it holds a run of :data:`NON_WORD_LETTERS` (25) or more letters with nothing
  between them ("OROOOOOOOOOOOOOOOOOOOOOOOOO"); hyphens, apostrophes and spaces end a run. French's
  everyday words are shorter (though "anticonstitutionnellement", 25 letters, would count);
- **runaway**: it has more than 2 × the source's words + 5 words (words split at white space), or
  its search stopped it at the length limit instead of its ending it (:func:`translate_with_limits`
  tells which).

:func:`degeneration` applies the checks to one output; it reads text only, so any system's
outputs can be checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from selfattention.data.batching import collate, make_example
from selfattention.decoding import DecodingConfig, SearchLimits, Translator
from selfattention.decoding.sentences import check_pieces

REPEATS = 3
NON_WORD_LETTERS = 25
RUNAWAY_FACTOR = 2
RUNAWAY_EXTRA = 5

_LETTERS = re.compile(r"[^\W\d_]+")  # a run of letters: word characters that are not digits or _
_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")


def repeated_word(translation: str, times: int = REPEATS) -> str | None:
    """The first word that occurs ``times`` or more times in a row (lower-cased), else ``None``."""
    run_word, run = "", 0
    for token in translation.split():
        word = _EDGE_PUNCTUATION.sub("", token).lower()
        if not _LETTERS.search(word):
            continue  # punctuation or a number: not a word
        run = run + 1 if word == run_word else 1
        run_word = word
        if run >= times:
            return word
    return None


def non_word(translation: str, letters: int = NON_WORD_LETTERS) -> str | None:
    """The first run of ``letters`` or more letters with nothing between them, else ``None``."""
    for found in _LETTERS.finditer(translation):
        if len(found.group()) >= letters:
            return found.group()
    return None


def runaway_words(source: str) -> int:
    """The most words a translation of ``source`` may have before it counts as runaway."""
    return RUNAWAY_FACTOR * len(source.split()) + RUNAWAY_EXTRA


def degeneration(translation: str, source: str, *, hit_length_limit: bool = False) -> list[str]:
    """Why ``translation`` (of ``source``) is degenerate: one reason per failed check; empty when it is not.

    ``hit_length_limit``: the search stopped the output at its length limit
    (:attr:`Translation.hit_length_limit`), which makes it runaway whatever its words.
    """
    reasons = []
    word = repeated_word(translation)
    if word is not None:
        reasons.append(f"repeat: {word!r} {REPEATS} or more times in a row")
    letters = non_word(translation)
    if letters is not None:
        shown = letters if len(letters) <= 40 else letters[:37] + "..."
        reasons.append(f"non-word: {shown!r} ({len(letters)} letters)")
    words, most = len(translation.split()), runaway_words(source)
    if words > most:
        reasons.append(f"runaway: {words} words for a {len(source.split())}-word source (at most {most})")
    if hit_length_limit:
        reasons.append("runaway: stopped by the search's length limit")
    return reasons


@dataclass(frozen=True)
class Translation:
    """A translation, how many subword pieces it has, and the most its search allowed (end token included)."""

    text: str
    pieces: int
    limit: int

    @property
    def hit_length_limit(self) -> bool:
        """Whether the output is as long as the search let it be (the limit forces the end token there)."""
        return self.pieces > 0 and self.pieces + 1 >= self.limit


def translate_with_limits(
    translator: Translator, texts: Sequence[str], config: DecodingConfig | None = None
) -> list[Translation]:
    """Translate ``texts`` as :meth:`Translator.translate` does, keeping each output's length and limit.

    Each text is one sentence (no splitting of long text); the translations equal
    :meth:`Translator.translate`'s, since a sentence's translation does not depend on its
    batch-mates. An empty text gives an empty translation. A text over the model's limit is refused
    with an :class:`InputError`.
    """
    config = config or DecodingConfig()
    # The limits the search applies: the same SearchLimits that Translator.translate_ids builds.
    limits = SearchLimits(config.max_len_a, config.max_len_b, hard_limit=translator.max_source_length)
    sources = translator.tokenizer.encode_batch([text.strip() for text in texts])
    for number, ids in enumerate(sources, start=1):
        check_pieces(ids, translator.max_source_length, f"input {number}")
    results: list[Translation | None] = [None] * len(texts)
    order = sorted((i for i, ids in enumerate(sources) if ids), key=lambda i: len(sources[i]))
    for start in range(0, len(order), config.batch_size):
        chunk = order[start : start + config.batch_size]
        batch = [sources[i] for i in chunk]
        src = collate([make_example(ids, [], translator.eos_id) for ids in batch], translator.pad_id).src  # (B, S)
        most = limits.for_sources(src, translator.pad_id).tolist()  # (B,)
        for i, output, limit in zip(chunk, translator.translate_ids(batch, config), most, strict=True):
            results[i] = Translation(translator.tokenizer.decode(output), len(output), int(limit))
    return [result if result is not None else Translation("", 0, 0) for result in results]
