"""Decoding in several processes: each batch goes to one of N forked copies of the translator.

Search over a batch of 32 sentences is a long chain of small matrix products (32 rows at a
time), too small to keep two threads busy: on the 2-core benchmark machine, two processes of
one thread each, each decoding its own batches, translate about 1.5 times as many tokens a
second as one process of two threads (BENCHMARKS.md, issue 6). This is what CTranslate2 calls
``inter_threads``; threads inside one process would share Python's interpreter lock, which the
per-step bookkeeping holds.

The workers are forked from the process that loaded the model, so they share its weights
(copy on write) and start in milliseconds; each runs ``threads`` intra-op threads (one by
default), so the parent's OpenMP pool is never used in a child. Forking needs a POSIX system.
Results come back in the order of the batches.
"""

from __future__ import annotations

import multiprocessing
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.pool import Pool
from typing import Any

import torch

Batch = Sequence[Sequence[int]]
Decode = Callable[[Batch, Any], list[list[int]]]

_decode: Decode | None = None  # set in the parent just before forking; a worker's copy is what it runs


class WorkersError(RuntimeError):
    """The worker processes cannot be started here."""


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _run(job: tuple[Batch, Any]) -> list[list[int]]:
    assert _decode is not None, "a worker started without a translator"
    batch, config = job
    return _decode(batch, config)


class DecodingPool:
    """``workers`` forked processes, each calling ``decode(batch, config)`` on its share of batches."""

    def __init__(self, decode: Decode, workers: int, threads: int = 1) -> None:
        global _decode
        if workers < 2:
            raise ValueError(f"a decoding pool needs at least 2 workers, got {workers}")
        if threads < 1:
            raise ValueError(f"threads per worker must be at least 1, got {threads}")
        if "fork" not in multiprocessing.get_all_start_methods():
            raise WorkersError("decoding workers need fork(), which this system does not have; use --workers 1")
        self.workers, self.threads = workers, threads
        _decode = decode
        try:
            self._pool: Pool = multiprocessing.get_context("fork").Pool(
                workers, initializer=_start_worker, initargs=(threads,)
            )
        finally:
            _decode = None
        self._finalizer = weakref.finalize(self, self._pool.terminate)

    def map(self, batches: Iterable[Batch], config: Any) -> Iterator[list[list[int]]]:
        """The decoded batches, in order, each as soon as it and those before it are done."""
        return self._pool.imap(_run, ((batch, config) for batch in batches))

    def close(self) -> None:
        """Stop the workers (also done when the pool is garbage-collected or the program ends)."""
        self._finalizer()


__all__ = ["DecodingPool", "WorkersError"]
