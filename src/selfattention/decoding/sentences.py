"""The text a model can take: the limits, one check of a sentence, and a sentence splitter.

The limits live here and nowhere else:

- the model reads at most ``max_positions - 1`` subword pieces at once (one position is the end
  marker): :func:`check_pieces`, with the number from :func:`max_source_pieces`;
- a command or endpoint that shows one sentence's matrices (``explain``, ``attention``,
  ``heads``, ``context`` and the web API) takes at most :data:`MAX_SENTENCE_CHARS` characters
  per sentence: :func:`check_sentence` (the web server's ``--max-chars`` can change it).

``translate`` is the one place that takes longer text: a line over the model's limit is cut into
sentences by :func:`split_sentences` and each is translated (see :meth:`Translator.translate`).
Nothing is ever cut silently: text over a limit is refused with an :class:`InputError` that
names the limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

MAX_SENTENCE_CHARS = 1000

# A sentence ends at a run of . ! ? … (or their CJK and Arabic forms), then any closing quotes or
# brackets, then white space. "3.5" and "e.g.," do not end one; "Dr. Smith" does (the rule is simple).
_SURROGATE = re.compile("[\ud800-\udfff]")
_SENTENCE_END = re.compile(r"[.!?…‼⁇⁈⁉。！？؟]+[\"'”’»)\]]*(?=\s)")


class InputError(ValueError):
    """Text the model or a command cannot take; the message says why and names the limit."""


def max_source_pieces(max_positions: int) -> int:
    """The longest input (and output) in pieces: the model's positions, less one for the end marker."""
    return max_positions - 1


def check_pieces(ids: Sequence[int], limit: int, what: str = "the sentence") -> None:
    """Refuse ``ids`` longer than ``limit`` pieces, naming the limit."""
    if len(ids) > limit:
        raise InputError(
            f"{what} is {len(ids)} subword pieces long; this model reads at most {limit} at once "
            "(split it into sentences)"
        )


def check_unicode(text: str, what: str = "text") -> None:
    """Refuse text holding a lone surrogate: what invalid UTF-8 in an argument, or a JSON ``\\ud800``, becomes."""
    found = _SURROGATE.search(text)
    if found is not None:
        raise InputError(
            f"{what} is not valid Unicode: character {found.start() + 1} is U+{ord(found.group()):04X}, "
            "a lone surrogate (invalid UTF-8 becomes one)"
        )


def check_sentence(
    text: str,
    *,
    what: str = "text",
    max_chars: int = MAX_SENTENCE_CHARS,
    encode: Callable[[str], Sequence[object]] | None = None,
) -> str:
    """The sentence without surrounding white space, or an :class:`InputError` saying what is wrong.

    Refused: empty or white space only; longer than ``max_chars`` characters; not valid Unicode;
    and, given the model's ``encode``, text of which the model reads nothing (e.g. a lone
    zero-width space). Emoji, other scripts and unknown characters pass: the model reads them as
    its unknown piece.
    """
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{what} is empty: give a sentence to translate")
    if len(stripped) > max_chars:
        raise InputError(
            f"{what} is {len(stripped)} characters long; the limit is {max_chars} characters (one sentence at a time)"
        )
    check_unicode(stripped, what)
    if encode is not None and not encode(stripped):
        raise InputError(f"{what} has no characters the model can read")
    return stripped


def check_target(target: str | None, *, what: str = "target", max_chars: int = MAX_SENTENCE_CHARS) -> str | None:
    """A given French side, checked as :func:`check_sentence` does; ``None`` (use the model's own) when blank."""
    if target is None or not target.strip():
        return None
    return check_sentence(target, what=what, max_chars=max_chars)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, in order, each without surrounding white space.

    Only white space between sentences is dropped: ``" ".join(split_sentences(t))`` is ``t`` with
    each gap between sentences made one space and the ends stripped.
    """
    sentences = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    rest = text[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences
