"""One switch, ``SELFATTENTION_NATIVE=0``, turns the whole engine off: the reference path only."""

from __future__ import annotations

import pytest
import torch

from selfattention.cli.common import resolve_model
from selfattention.decoding import DecodingConfig, Translator
from selfattention.decoding.translator import start_step
from selfattention.engine import SWITCH, allocator, few_queries, library, native_step, switched_off
from selfattention.engine.onednn_linear import onednn_available
from selfattention.engine.packed import PackedLinear, onednn_wanted
from selfattention.search import TorchStep

pytestmark = pytest.mark.usefixtures("fresh_engine")


@pytest.mark.parametrize("value", ["0", "false", "No", " off "])
def test_every_part_of_the_engine_stands_aside(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, value)
    monkeypatch.setattr(allocator, "_tuned", False)  # as in a fresh process
    assert switched_off()
    assert not native_step.available() and not few_queries.available()
    assert f"{SWITCH}=0" in str(library.why_not())
    assert not onednn_available() and not onednn_wanted()  # no packing, training's linears are F.linear
    assert not allocator.tune_allocator()
    translator = Translator.load(resolve_model(None))
    assert not any(isinstance(m, PackedLinear) for m in translator.model.modules())
    src = torch.tensor([[5, 6, 7, 2]])
    with torch.inference_mode():
        memory = translator.model.encode(src)
        assert isinstance(start_step(translator.model, memory, translator.model.source_mask(src), 1, 4), TorchStep)


@pytest.mark.parametrize("value", [None, "1", "yes"])
def test_anything_else_leaves_it_on(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv(SWITCH, raising=False)
    else:
        monkeypatch.setenv(SWITCH, value)
    assert not switched_off()


def test_the_bundled_float32_translations_are_the_same_with_the_engine_off(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["I am good.", "A dog ate the food because it was hungry.", "Two men are playing soccer in a park."]
    configs = [DecodingConfig(beam_size=beam) for beam in (1, 4)]
    engine = [Translator.load(resolve_model(None)).translate(texts, config) for config in configs]
    monkeypatch.setenv(SWITCH, "0")
    library.forget()
    assert [Translator.load(resolve_model(None)).translate(texts, config) for config in configs] == engine
