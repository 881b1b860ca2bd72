"""One search's decoding steps on a :class:`~selfattention.engine.c_model.CModel`, in numpy: no PyTorch.

The same steps as :class:`~selfattention.engine.native_step.NativeStep` (``selfattention_step``
and ``selfattention_best`` of the same library), with numpy arrays for its caches: the
cross-attention keys and values of the source (``selfattention_cross_kv``, once per search), the
self-attention caches written in place, and each row's history of cache rows, which beam search
reorders without moving a cache row.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from selfattention.engine.c_model import CModel


def _address(array: np.ndarray) -> int:
    return int(array.ctypes.data)


class CStep:
    """The steps of one search over ``memory`` ``(B, S, D)`` with its mask of real tokens ``(B, S)``:
    ``rows`` rows (a multiple of B, ``rows / B`` per source), up to ``steps`` steps."""

    def __init__(self, model: CModel, memory: np.ndarray, mask: np.ndarray, rows: int, steps: int) -> None:
        self.model = model
        sources = memory.shape[0]
        self.groups = rows // max(sources, 1)
        self.cross = model.cross_kv(memory)  # (layers, 2, B, H, S, Dh)
        self.mask = np.ascontiguousarray(mask, dtype=np.uint8)
        self.capacity, self.max_len = rows, max(steps, 1)
        config = model.config
        self.self_kv = np.empty(
            (config.decoder_layers, 2, rows, model.heads, self.max_len, model.head_dim), dtype=np.float32
        )
        self.history = np.zeros((rows, self.max_len), dtype=np.int64)  # row r's position p: in cache row [r, p]
        table = model.target_positions
        self.table = table if config.positional == "learned" else model.position_table(table, self.max_len)
        self.position = 0
        self.checked: tuple[tuple[int, ...], int] | None = None  # the last best-token search let through
        self.banned_ids = np.zeros(0, dtype=np.int64)

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """Logits ``(A, V)`` for the next token after each live row's last token ``tokens`` ``(A,)``."""
        model = self.model
        if self.position >= self.max_len:
            raise ValueError(f"the search ran past the {self.max_len} steps it was started for")
        if self.position >= len(self.table):
            raise ValueError(
                f"input of {self.position + 1} positions is longer than the {len(self.table)} learned positions"
            )
        ids = np.ascontiguousarray(tokens, dtype=np.int64).reshape(-1)
        rows = len(ids)
        if rows != self.cross.shape[2] * self.groups or rows != len(self.history):
            raise ValueError(f"{rows} rows do not match the {len(self.history)} rows the search keeps")
        if rows and (ids.min() < 0 or ids.max() >= model.vocab):
            raise ValueError(f"token ids must lie in [0, {model.vocab}), got ids from {ids.min()} to {ids.max()}")
        logits = np.empty((rows, model.vocab), dtype=np.float32)
        if model.library.selfattention_step(
            ctypes.byref(model.decoder_model), model.decoder_layers, _address(self.table), _address(ids), rows,
            self.position, _address(self.self_kv), self.capacity, self.max_len, _address(self.history),
            _address(self.cross), self.cross.shape[2], self.cross.shape[4], _address(self.mask), _address(logits),
        ):  # fmt: skip
            raise MemoryError("the decoding step could not allocate its scratch memory")
        self.position += 1
        return logits

    def best_token(self, tokens: np.ndarray, banned: Sequence[int]) -> np.ndarray:
        """Each live row's most likely next token ``(A,)``, never one of ``banned`` (ties: the lower id)."""
        logits = self.logits(tokens)
        logits[:, list(banned)] = -np.inf
        return logits.argmax(axis=1)

    def best_tokens(
        self, tokens: np.ndarray, k: int, banned: Sequence[int], eos_id: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each live row's ``k`` best next tokens but ``banned``, best first: their log-probabilities ``(A, k)``,
        the tokens ``(A, k)``, and the end token's log-probability ``(A,)`` (ties: the lower id)."""
        vocab = self.model.vocab
        if (tuple(banned), eos_id) != self.checked:
            wanted = sorted(set(banned))
            if any(not 0 <= b < vocab for b in [*wanted, eos_id]):
                raise ValueError(f"banned and end ids must lie in [0, {vocab}), got {wanted} and {eos_id}")
            self.checked, self.banned_ids = (tuple(banned), eos_id), np.array(wanted, dtype=np.int64)
        ids = self.banned_ids
        if not 1 <= k <= min(64, vocab - len(ids)):
            raise ValueError(f"k must lie in [1, {min(64, vocab - len(ids))}], got {k}")
        logits = self.logits(tokens)
        rows = len(logits)
        values = np.empty((rows, k), dtype=np.float32)
        indices = np.empty((rows, k), dtype=np.int64)
        eos = np.empty(rows, dtype=np.float32)
        self.model.library.selfattention_best(
            _address(logits), rows, vocab, k, _address(ids), len(ids), eos_id,
            _address(values), _address(indices), _address(eos),
        )  # fmt: skip
        return values, indices, eos

    def keep_sources(self, index: np.ndarray) -> None:
        """Keep the sources ``index`` (finished sentences leave); their rows follow with :meth:`keep_targets`."""
        self.cross = np.ascontiguousarray(self.cross[:, :, index])
        self.mask = np.ascontiguousarray(self.mask[index])

    def keep_targets(self, index: np.ndarray) -> None:
        """Row i becomes the old row ``index[i]``: its history does; no cache row moves."""
        index = np.asarray(index, dtype=np.int64)
        if index.ndim != 1 or len(index) > self.capacity:
            raise IndexError(f"at most {self.capacity} cache rows can be kept, as a 1-D index; got {index.shape}")
        if len(index) and (index.min() < 0 or index.max() >= len(self.history)):
            raise IndexError(f"cache rows must lie in [0, {len(self.history)}), got {index.tolist()}")
        self.history = np.ascontiguousarray(self.history[index])


__all__ = ["CStep"]
