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

How many when the caller names no number (:func:`automatic_workers`, what ``translate`` and
``evaluate`` do without ``--workers``): one process for a single batch, else one worker per core
this process may run on, never more than there are batches. The C decoding step runs on one
thread, so one process leaves every other core idle through its search, while a worker costs
little beyond its share of the search and a fork little beside a batch (the figures, and the
case where it does not pay: docs/speed.md, ``benchmarks/worker_overhead.py``).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from selfattention.engine import switched_off

Batch = Sequence[Sequence[int]]
Decode = Callable[[Batch, Any], list[list[int]]]

_decode: Decode | None = None  # in a worker: its inherited copy of the translator's decode


class WorkersError(RuntimeError):
    """The worker processes cannot be started here, or one of them died."""


def _start_worker(decode: Decode) -> None:
    """A worker's set-up: inherited (not pickled, the pool forks), one thread, no Ctrl-C."""
    global _decode
    _decode = decode
    torch = sys.modules.get("torch")  # a translator that runs without PyTorch never imports it
    if torch is not None:
        torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(batch: Batch, config: Any) -> list[list[int]]:
    if _decode is None:
        raise WorkersError("a decoding worker started without its translator")
    return _decode(batch, config)


def _ready(_: int) -> bool:
    return _decode is not None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (``taskset``, a container's cpuset), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity outside Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether decoding workers can be forked here (Linux's ``fork()``)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def automatic_workers(batches: int, cores: int | None = None) -> int:
    """The decoding processes for ``batches`` batches when none are asked for: 1 is this process alone.

    One batch: one process (a second would have nothing to do). Several, on 2 or more ``cores``
    (default: :func:`usable_cores`): one worker per core, never more workers than batches. One
    process where workers cannot be forked (not Linux) and with the engine switched off
    (``SELFATTENTION_NATIVE=0``: the reference path only; ``--workers N`` still forks).
    """
    cores = usable_cores() if cores is None else cores
    if batches < 2 or cores < 2 or not can_fork() or switched_off():
        return 1
    return min(cores, batches)


class DecodingPool:
    """``workers`` forked processes, each calling ``decode(batch, config)`` on its share of batches."""

    def __init__(self, decode: Decode, workers: int) -> None:
        if workers < 2:
            raise ValueError(f"a decoding pool needs at least 2 workers, got {workers}")
        if not can_fork():
            raise WorkersError(f"decoding workers need Linux's fork(); on {sys.platform} use --workers 1")
        self._executor = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker, initargs=(decode,)
        )
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)
        try:
            ready = all(self._executor.map(_ready, range(workers)))  # forks every worker now, before other threads
        except BrokenProcessPool:
            self.close()
            raise WorkersError("a decoding worker process died as it started") from None
        if not ready:
            self.close()
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


__all__ = ["DecodingPool", "WorkersError", "automatic_workers", "can_fork", "usable_cores"]
