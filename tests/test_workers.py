"""Decoding in worker processes: the same translations, in order, as in one process."""

from __future__ import annotations

import io

import pytest

from selfattention.cli import main
from selfattention.cli.common import BUNDLED_MODELS, DEFAULT_MODEL
from selfattention.decoding import DecodingConfig, Translator
from selfattention.decoding.workers import DecodingPool

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
    processes = list(pool._pool._pool)  # type: ignore[attr-defined]
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    translator.stop_workers()
    for process in processes:
        process.join(timeout=10)
    assert translator.pool is None and not any(p.is_alive() for p in processes)


def test_one_worker_is_this_process(translator: Translator) -> None:
    translator.start_workers(1)
    assert translator.pool is None


@pytest.mark.parametrize(("workers", "threads", "message"), [(1, 1, "at least 2 workers"), (2, 0, "at least 1")])
def test_a_pool_refuses_bad_sizes(workers: int, threads: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DecodingPool(lambda batch, config: [], workers, threads)


def test_the_cli_translates_the_same_with_workers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for workers in ("1", "2"):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\n".join(TEXTS).encode() + b"\n")))
        assert main(["translate", "--beam", "1", "--batch-size", "4", "--workers", workers]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == len(TEXTS)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--workers", "0"], "--workers must be at least 1"), (["--workers", "2", "--device", "cuda"], "CPU only")],
)
def test_the_cli_refuses_bad_worker_settings(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["translate", "Hello.", *arguments]) == 2
    assert message in capsys.readouterr().err
