"""Decoding in worker processes: the same translations, in order, as in one process."""

from __future__ import annotations

import io
import os
import time

import pytest

from selfattention.cli import main
from selfattention.cli.common import BUNDLED_MODELS, DEFAULT_MODEL
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine.workers import DecodingPool, WorkersError

SUBJECTS = ["A dog", "Two children", "The old man", "A woman in a red dress", "I", "My friends"]
ACTIONS = ["is running in the park.", "ate the food.", "are playing soccer.", "is good.", "swims in the lake."]
TEXTS = [f"{s} {a}" for s in SUBJECTS for a in ACTIONS] + ["", "Hello."]  # 32, of mixed lengths


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.load(BUNDLED_MODELS / DEFAULT_MODEL)


@pytest.mark.parametrize("beam", [1, 3])
def test_two_workers_give_the_same_translations_in_order(
    translator: Translator, beam: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DecodingConfig(beam_size=beam, batch_size=5)
    alone = translator.translate(TEXTS, config)
    done: list[int] = []
    translator.start_workers(2)
    try:
        assert translator.pool is not None

        def not_here(*args: object) -> None:
            raise AssertionError("decoded in the parent process, not in a worker")

        monkeypatch.setattr(translator, "translate_ids", not_here)  # the forked copies keep the real one
        shared = translator.translate(TEXTS, config, progress=done.append)
    finally:
        translator.stop_workers()
    assert shared == alone
    assert sum(done) == len(TEXTS)
    assert alone[TEXTS.index("")] == ""


def test_stopping_ends_the_processes(translator: Translator) -> None:
    translator.start_workers(2)
    pool = translator.pool
    assert pool is not None
    processes = pool.processes()
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    translator.stop_workers()
    deadline = time.monotonic() + 10  # the pool's own thread may be the one that reaps them
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert translator.pool is None and not any(p.is_alive() for p in processes)


def test_one_worker_is_this_process(translator: Translator) -> None:
    translator.start_workers(1)
    assert translator.pool is None


def test_a_pool_refuses_one_worker() -> None:
    with pytest.raises(ValueError, match="at least 2 workers"):
        DecodingPool(lambda batch, config: [], 1)


def test_a_worker_that_dies_stops_the_pool_with_a_clear_error() -> None:
    def die(batch: object, config: object) -> list[list[int]]:
        os._exit(3)  # as a worker killed by the kernel would

    pool = DecodingPool(die, 2)
    with pytest.raises(WorkersError, match="a decoding worker process died"):
        list(pool.map([[[5]], [[6]], [[7]]], None))


def test_an_error_in_a_worker_reaches_the_caller() -> None:
    def fail(batch: object, config: object) -> list[list[int]]:
        raise ValueError(f"bad batch {batch}")

    pool = DecodingPool(fail, 2)
    with pytest.raises(ValueError, match=r"bad batch \[\[5\]\]"):
        list(pool.map([[[5]]], None))
    pool.close()


def test_the_cli_translates_the_same_with_workers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[int] = []
    real = Translator.start_workers

    def counted(self: Translator, workers: int) -> None:
        real(self, workers)
        started.append(len(self.pool.processes()) if self.pool is not None else 0)

    monkeypatch.setattr(Translator, "start_workers", counted)
    outputs = []
    for workers in ("1", "2"):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\n".join(TEXTS).encode() + b"\n")))
        assert main(["translate", "--beam", "1", "--batch-size", "4", "--workers", workers]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == len(TEXTS)
    assert started == [2]  # --workers 1 starts none


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--workers", "0"], "--workers must be at least 1"), (["--workers", "2", "--device", "cuda"], "CPU only")],
)
def test_the_cli_refuses_bad_worker_settings(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["translate", "Hello.", *arguments]) == 2
    assert message in capsys.readouterr().err
