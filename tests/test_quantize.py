"""int8 dynamic quantisation: close to float32, and clear errors for what it cannot do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from selfattention import ModelConfig, build_model
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine.quantize import PrecisionError, check_precision, with_precision


def small_model() -> nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=64, d_model=64, n_heads=4, d_ff=128, encoder_layers=2, decoder_layers=2)
    return build_model(config).eval()


def test_int8_logits_are_close_to_float32() -> None:
    model = small_model()
    src = torch.randint(3, 64, (4, 9))
    tgt = torch.randint(3, 64, (4, 7))
    quantized = with_precision(model, "int8")
    with torch.inference_mode():
        reference, logits = model(src, tgt), quantized(src, tgt)
    error = float((logits - reference).abs().max() / reference.abs().max())
    assert 0 < error < 0.05  # quantised (not identical), yet close
    assert not any(type(m) is nn.Linear for m in quantized.modules())
    assert any(type(m) is nn.Linear for m in model.modules())  # the float32 model is left as it was


def test_float32_is_the_model_itself() -> None:
    model = small_model()
    assert with_precision(model, "float32") is model


def test_unknown_precision_and_int8_off_cpu_are_refused() -> None:
    with pytest.raises(PrecisionError, match=r"unknown precision 'int4' \(choose from float32, int8\)"):
        check_precision("int4")
    with pytest.raises(PrecisionError, match="int8 runs on the CPU only"):
        check_precision("int8", "cuda")


def test_translator_loads_int8_and_translates(tiny_model_dir: Path) -> None:
    with pytest.raises(PrecisionError, match="unknown precision"):
        Translator.load(tiny_model_dir, precision="fp8")
    f32, i8 = Translator.load(tiny_model_dir), Translator.load(tiny_model_dir, precision="int8")
    config = DecodingConfig(beam_size=1, max_len_b=5)
    outputs = i8.translate(["a dog runs.", "two men"], config)
    assert len(outputs) == 2 and all(isinstance(text, str) for text in outputs)
    assert len(f32.translate(["a dog runs."], config)) == 1
