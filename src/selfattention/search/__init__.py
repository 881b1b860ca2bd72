"""Greedy and beam search over ``Transformer.decode`` with a key/value cache, and the Step they drive.

The search runs ``Transformer.decode`` (:class:`TorchStep`) unless it is given another way to
start its steps (``start_step``): :class:`~selfattention.decoding.Translator` gives the engine's
C step where it applies.
"""

from typing import TYPE_CHECKING

from selfattention import lazy

if TYPE_CHECKING:
    from selfattention.search.beam import beam_search
    from selfattention.search.greedy import greedy_search
    from selfattention.search.limits import SearchLimits
    from selfattention.search.steps import StartStep, Step, TorchStep, best_tokens, torch_step

__getattr__ = lazy.exports(
    __name__,
    {
        "beam_search": "selfattention.search.beam",
        "greedy_search": "selfattention.search.greedy",
        "SearchLimits": "selfattention.search.limits",
        "StartStep": "selfattention.search.steps",
        "Step": "selfattention.search.steps",
        "TorchStep": "selfattention.search.steps",
        "best_tokens": "selfattention.search.steps",
        "torch_step": "selfattention.search.steps",
    },
)

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
