"""Decoding in worker processes: the same translations, in order, as in one process."""

from __future__ import annotations

import io
import os
import time

import pytest

from selfattention.cli import main
from selfattention.cli.common import BUNDLED_MODELS, DEFAULT_MODEL
from selfattention.cli.translate import decoding_workers
from selfattention.decoding import DecodingConfig, InputError, Translator
from selfattention.decoding.text_translator import TextTranslator
from selfattention.engine import SWITCH
from selfattention.engine import workers as workers_module
from selfattention.engine.workers import DecodingPool, WorkersError, automatic_workers, usable_cores

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
    """--workers 1, --workers 2, and no --workers (as many as the cores, here 3, for 8 batches): the same lines."""
    started: list[int] = []
    real = TextTranslator.start_workers

    def counted(self: TextTranslator, workers: int) -> None:
        real(self, workers)
        started.append(len(self.pool.processes()) if self.pool is not None else 0)

    monkeypatch.setattr(TextTranslator, "start_workers", counted)
    monkeypatch.setattr(workers_module, "usable_cores", lambda: 3)
    outputs = []
    for workers in (["--workers", "1"], ["--workers", "2"], []):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\n".join(TEXTS).encode() + b"\n")))
        assert main(["translate", "--beam", "1", "--batch-size", "4", *workers]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2] and outputs[0].count("\n") == len(TEXTS)
    assert started == [2, 3]  # --workers 1 starts none


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (TEXTS[:5], 0),  # one batch of 5 (of 8): this process
        (TEXTS[:9], 2),  # two batches: a worker each
        (TEXTS, 3),  # 31 sentences and an empty line, 4 batches: one worker per core
        (["", " ", *TEXTS[:8]], 0),  # empty lines are no batch: 8 sentences, one batch
    ],
)
def test_translate_chooses_its_workers_from_the_batches_and_the_cores(
    texts: list[str], expected: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[int] = []
    monkeypatch.setattr(TextTranslator, "start_workers", lambda self, workers: started.append(workers))
    monkeypatch.setattr(workers_module, "usable_cores", lambda: 3)
    assert main(["translate", "--beam", "1", "--batch-size", "8", *texts]) == 0
    assert started == ([expected] if expected else [])
    assert capsys.readouterr().out.count("\n") == len(texts)


def test_the_automatic_rule() -> None:
    assert [automatic_workers(batches, cores=2) for batches in (0, 1, 2, 3, 100)] == [1, 1, 2, 2, 2]
    assert [automatic_workers(batches, cores=8) for batches in (1, 2, 5, 8, 9)] == [1, 2, 5, 8, 8]
    assert automatic_workers(100, cores=1) == 1  # one core: nothing to share it with
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_the_automatic_rule_forks_nothing_with_the_engine_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, "0")
    assert automatic_workers(100, cores=8) == 1
    assert decoding_workers(2, 100, "cpu") == 2  # asked for by name: still forks


def test_workers_asked_for_are_never_more_than_the_batches_and_none_off_the_cpu() -> None:
    assert decoding_workers(4, 3, "cpu") == 3
    assert decoding_workers(4, 1, "cpu") == 1
    assert decoding_workers(1, 10, "cpu") == 1
    assert decoding_workers(None, 10, "cuda") == 1


def test_the_batch_count_is_that_of_translate(translator: Translator) -> None:
    config = DecodingConfig(batch_size=4)
    assert translator.batch_count(TEXTS, config) == 8  # 31 sentences, the empty one is no batch
    assert translator.batch_count(["", "  "], config) == 0
    long = " ".join(["A dog runs in the park."] * 300)  # more pieces than the model reads at once
    assert translator.batch_count([long], config, split_long=True) == 75
    with pytest.raises(InputError, match="reads at most 1023"):
        translator.batch_count([long], config)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--workers", "0"], "--workers must be at least 1"), (["--workers", "2", "--device", "cuda"], "CPU only")],
)
def test_the_cli_refuses_bad_worker_settings(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["translate", "Hello.", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_workers_that_die_as_they_start_stop_only_what_was_asked_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """--workers N says why it cannot be done; the automatic choice translates in this process instead."""

    def die(decode: object) -> None:
        os._exit(3)

    monkeypatch.setattr(workers_module, "_start_worker", die)
    with pytest.raises(WorkersError, match="died as it started"):
        DecodingPool(lambda batch, config: [], 2)
    texts = TEXTS[:9]
    assert main(["translate", "--beam", "1", "--batch-size", "4", "--workers", "2", *texts]) == 2
    assert "died as it started" in capsys.readouterr().err
    assert main(["translate", "--beam", "1", "--batch-size", "4", *texts]) == 0
    assert capsys.readouterr().out.count("\n") == len(texts)
    assert "translating in this process" in caplog.text
