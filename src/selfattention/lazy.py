"""Names a package exports, imported when first used: ``import selfattention.x`` stays light.

A package's ``__init__`` maps each name it exports to the module that defines it and sets
``__getattr__ = lazy.exports(__name__, {...})``; its imports for type checkers sit under
``TYPE_CHECKING``. So importing one light module of a package (the tokenizer, the configuration)
does not import PyTorch through its siblings, and ``selfattention translate`` can start without
it where the engine translates alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def exports(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: each name of ``names`` from its module, imported on first use."""

    def __getattr__(name: str) -> object:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(importlib.import_module(package), name, value)  # found directly from now on
        return value

    return __getattr__


__all__ = ["exports"]
