"""Greedy and beam search over ``Transformer.decode`` with a key/value cache."""

from selfattention.decoding.beam import beam_search
from selfattention.decoding.greedy import greedy_search
from selfattention.decoding.search import SearchLimits
from selfattention.decoding.sentences import (
    MAX_SENTENCE_CHARS,
    InputError,
    check_sentence,
    check_target,
    split_sentences,
)
from selfattention.decoding.translator import DecodingConfig, Translator

__all__ = [
    "MAX_SENTENCE_CHARS",
    "DecodingConfig",
    "InputError",
    "SearchLimits",
    "Translator",
    "beam_search",
    "check_sentence",
    "check_target",
    "greedy_search",
    "split_sentences",
]
