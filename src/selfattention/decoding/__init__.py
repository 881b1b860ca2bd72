"""The translation service: text in, text out (:class:`Translator`), and the limits on its input.

The search itself is :mod:`selfattention.search` (its ``greedy_search``, ``beam_search`` and
``SearchLimits`` are also importable from here); the fast way to run it, the engine
(:mod:`selfattention.engine`), is chosen where a :class:`Translator` starts a search.
"""

from typing import TYPE_CHECKING

from selfattention import lazy

if TYPE_CHECKING:
    from selfattention.decoding.sentences import (
        MAX_SENTENCE_CHARS,
        InputError,
        check_sentence,
        check_target,
        split_sentences,
    )
    from selfattention.decoding.text_translator import DecodingConfig, TextTranslator
    from selfattention.decoding.translator import Translator
    from selfattention.engine import PRECISIONS
    from selfattention.engine.workers import WorkersError
    from selfattention.search import SearchLimits, beam_search, greedy_search

__getattr__ = lazy.exports(
    __name__,
    {
        "MAX_SENTENCE_CHARS": "selfattention.decoding.sentences",
        "InputError": "selfattention.decoding.sentences",
        "check_sentence": "selfattention.decoding.sentences",
        "check_target": "selfattention.decoding.sentences",
        "split_sentences": "selfattention.decoding.sentences",
        "PRECISIONS": "selfattention.engine",
        "DecodingConfig": "selfattention.decoding.text_translator",
        "TextTranslator": "selfattention.decoding.text_translator",
        "Translator": "selfattention.decoding.translator",
        "WorkersError": "selfattention.engine.workers",
        "SearchLimits": "selfattention.search",
        "beam_search": "selfattention.search",
        "greedy_search": "selfattention.search",
    },
)

__all__ = [
    "MAX_SENTENCE_CHARS",
    "PRECISIONS",
    "DecodingConfig",
    "InputError",
    "SearchLimits",
    "TextTranslator",
    "Translator",
    "WorkersError",
    "beam_search",
    "check_sentence",
    "check_target",
    "greedy_search",
    "split_sentences",
]
