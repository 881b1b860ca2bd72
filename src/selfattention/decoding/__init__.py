"""Greedy and beam search over ``Transformer.decode`` with a key/value cache."""

from selfattention.decoding.beam import beam_search
from selfattention.decoding.greedy import greedy_search
from selfattention.decoding.search import SearchLimits
from selfattention.decoding.translator import DecodingConfig, Translator

__all__ = ["DecodingConfig", "SearchLimits", "Translator", "beam_search", "greedy_search"]
