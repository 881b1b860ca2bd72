"""The interface through which attention steps are observed.

Inspection is something a caller asks for: it passes a recorder into ``forward`` and the
modules report each named step to it. Nothing is stored on the modules themselves.

A recorder also says which steps it ``wants``: attention asks before it computes, so a step
nobody keeps is never built (an attention call none of whose steps is wanted takes the fused
path, whose memory is linear in the length).

The concrete recorder lives in :mod:`selfattention.inspection`; this module only states what
the modules may call, so that the mechanism never imports the layers that inspect it.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor


class Recorder(Protocol):
    """Receives the named intermediate tensors of a forward pass.

    ``at(name)`` returns a recorder scoped one level deeper (names join with dots and follow the
    module names, e.g. ``encoder.layers.0.self_attn``); ``wants(step)`` says whether this scope
    keeps a step; ``record(step, value)`` stores one step (one not wanted may be dropped).
    """

    def at(self, name: str) -> Recorder: ...

    def wants(self, step: str) -> bool: ...

    def record(self, step: str, value: Tensor) -> None: ...


def scoped(recorder: Recorder | None, name: str) -> Recorder | None:
    """``recorder.at(name)``, or ``None`` when nothing is being recorded."""
    return None if recorder is None else recorder.at(name)
