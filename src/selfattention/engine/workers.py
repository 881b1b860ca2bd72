"""Decoding in several processes: each batch goes to one of N forked copies of the translator.

Search over a batch of 32 sentences is a long chain of small matrix products (32 rows at a
time), too small to keep two threads busy: on the 2-core benchmark machine, two processes of
one thread each, each decoding its own batches, translate more tokens a second than one
process of two threads (BENCHMARKS.md, issue 6). This is what CTranslate2 calls
``inter_threads``; threads inside one process would share Python's interpreter lock, which the
per-step bookkeeping holds.

The workers are forked from the process that loaded the model, so they share its weights
(copy on write) and start in milliseconds. Each runs one intra-op thread: a forked child must
not use the OpenMP thread pool its parent may have started, so more is refused. Forking needs
Linux (macOS forks, but not safely once system frameworks are loaded). Results come back in
the order of the batches. A worker that dies (killed, out of memory) stops the pool with a
:class:`WorkersError` rather than leaving the caller waiting; Ctrl-C reaches the parent only.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch

Batch = Sequence[Sequence[int]]
Decode = Callable[[Batch, Any], list[list[int]]]

_decode: Decode | None = None  # in a worker: its inherited copy of the translator's decode


class WorkersError(RuntimeError):
    """The worker processes cannot be started here, or one of them died."""


def _start_worker(decode: Decode) -> None:
    """A worker's set-up: inherited (not pickled, the pool forks), one thread, no Ctrl-C."""
    global _decode
    _decode = decode
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(batch: Batch, config: Any) -> list[list[int]]:
    if _decode is None:
        raise WorkersError("a decoding worker started without its translator")
    return _decode(batch, config)


def _ready(_: int) -> bool:
    return _decode is not None


class DecodingPool:
    """``workers`` forked processes, each calling ``decode(batch, config)`` on its share of batches."""

    def __init__(self, decode: Decode, workers: int) -> None:
        if workers < 2:
            raise ValueError(f"a decoding pool needs at least 2 workers, got {workers}")
        if not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods():
            raise WorkersError(f"decoding workers need Linux's fork(); on {sys.platform} use --workers 1")
        self._executor = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker, initargs=(decode,)
        )
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)
        if not all(self._executor.map(_ready, range(workers))):  # forks every worker now, before other threads
            raise WorkersError("a decoding worker started without its translator")

    def map(self, batches: Iterable[Batch], config: Any) -> Iterator[list[list[int]]]:
        """The decoded batches, in order, each as soon as it and those before it are done."""
        futures = [self._executor.submit(_run, batch, config) for batch in batches]
        try:
            for future in futures:
                yield future.result()
        except BrokenProcessPool:
            self.close()  # what is left of it
            raise WorkersError(
                "a decoding worker process died (killed, or out of memory); the pool is stopped: "
                "translate again, or with --workers 1"
            ) from None
        finally:
            for future in futures:
                future.cancel()

    def processes(self) -> list[multiprocessing.process.BaseProcess]:
        """The worker processes (for tests and monitoring)."""
        return list(getattr(self._executor, "_processes", {}).values())

    def close(self) -> None:
        """Stop the workers now (also done, without waiting, when the pool is garbage-collected)."""
        if not self._finalizer.alive:
            return
        self._finalizer.detach()
        processes = self.processes()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # idle, or busy with a batch nobody will read: stop them either way
            process.terminate()
        for process in processes:
            process.join(timeout=10)


__all__ = ["DecodingPool", "WorkersError"]
