"""Greedy and beam search over ``Transformer.decode`` with a key/value cache, and the Step they drive.

The search runs ``Transformer.decode`` (:class:`TorchStep`) unless it is given another way to
start its steps (``start_step``): :class:`~selfattention.decoding.Translator` gives the engine's
C step where it applies.
"""

from selfattention.search.beam import beam_search
from selfattention.search.greedy import greedy_search
from selfattention.search.limits import SearchLimits
from selfattention.search.steps import StartStep, Step, TorchStep, best_tokens, torch_step

__all__ = [
    "SearchLimits",
    "StartStep",
    "Step",
    "TorchStep",
    "beam_search",
    "best_tokens",
    "greedy_search",
    "torch_step",
]
