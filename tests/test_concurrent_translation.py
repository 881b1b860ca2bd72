"""Searches on one model at once (a web server's clients, one thread each) give what each gives alone."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from conftest import needs_kernels
from selfattention.cli.common import resolve_model
from selfattention.config import ModelConfig
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine import native_step
from selfattention.model import build_model
from selfattention.search import TorchStep

pytestmark = [needs_kernels, pytest.mark.usefixtures("fresh_engine")]

ROUNDS = 12
TEXTS = {  # different inputs and lengths: each search's caches and positions are of its own size
    "short": ["I am good.", "A dog runs.", "Hello!"],
    "long": [
        "A little girl in a pink dress is climbing the stairs of a wooden house.",
        "Two young men are playing soccer in a park while their friends watch from the benches.",
        "A man in an orange hat starring at something.",
        "A woman with a large purse is walking by a gate and a bicycle on a sunny afternoon.",
    ],
}


def test_two_threads_translating_on_one_translator_each_get_their_own_translations() -> None:
    translator = Translator.load(resolve_model(None))
    assert native_step.decoder_for(translator.model) is not None  # one packed decoder, shared by both threads
    configs = {beam: DecodingConfig(beam_size=beam) for beam in (1, 4)}
    alone = {
        (name, beam): translator.translate(texts, configs[beam]) for name, texts in TEXTS.items() for beam in (1, 4)
    }
    start = threading.Barrier(len(TEXTS))
    got: dict[str, list[tuple[int, list[str]]]] = {name: [] for name in TEXTS}
    spans: dict[str, list[tuple[float, float]]] = {name: [] for name in TEXTS}
    errors: list[BaseException] = []

    def translate(name: str, first_beam: int) -> None:
        try:
            start.wait(timeout=60)
            for round_ in range(ROUNDS):
                beam = first_beam if round_ % 2 == 0 else 5 - first_beam  # greedy and beam 4 in turn
                began = time.perf_counter()
                got[name].append((beam, translator.translate(TEXTS[name], configs[beam])))
                spans[name].append((began, time.perf_counter()))
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=translate, args=(name, 1 + 3 * i)) for i, name in enumerate(TEXTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    for name, outputs in got.items():
        assert len(outputs) == ROUNDS
        for beam, translations in outputs:
            assert translations == alone[(name, beam)], (name, beam)
    short, long = spans.values()
    assert any(a < d and c < b for a, b in short for c, d in long)  # the searches did run at the same time


def test_a_search_only_reads_the_packed_decoder() -> None:
    """Nothing a search does writes into the decoder that every search of the model shares."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, d_model=32, n_heads=4, d_ff=48, encoder_layers=1, decoder_layers=2)
    model = build_model(config).eval()
    decoder = native_step.decoder_for(model)
    assert decoder is not None
    shared = (bytes(decoder.model), bytes(decoder.layer_array))
    src = torch.randint(3, 40, (2, 6))
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        short, long = (native_step.start(model, memory, mask, 2, steps) for steps in (3, 9))
        reference = TorchStep(model, memory, mask)
        assert short is not None and long is not None
        for position in range(3):
            tokens = torch.full((2, 1), 3 + position)
            expected = reference(tokens)
            torch.testing.assert_close(long(tokens), expected, atol=2e-5, rtol=1e-5)
            torch.testing.assert_close(short(tokens), expected, atol=2e-5, rtol=1e-5)
    assert (bytes(decoder.model), bytes(decoder.layer_array)) == shared
