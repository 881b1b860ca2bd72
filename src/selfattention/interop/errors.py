"""What goes wrong moving a model between formats."""

from __future__ import annotations


class InteropError(ValueError):
    """A model cannot be written in the other format (it uses something the format lacks)."""


__all__ = ["InteropError"]
