"""int8: the engine's own int8 product (Int8Linear), exact to its quantisation, close to float32, no torch.ao."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import int8_reference, needs_kernels, rel_err
from selfattention import ModelConfig, build_model
from selfattention.cli.common import resolve_model
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine import SWITCH, library, quantize
from selfattention.engine.quantize import (
    Int8Linear,
    PrecisionError,
    check_precision,
    int8_linear,
    pack_int8_linears,
    with_precision,
)


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


def linear_of(k: int, n: int, seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    linear = nn.Linear(k, n)
    with torch.no_grad():
        linear.weight.mul_(torch.rand(n, 1) * 4)  # columns of different ranges: one scale each
        linear.bias.normal_()
    return linear


def test_weights_are_quantised_symmetrically_one_scale_per_output_column() -> None:
    linear = linear_of(37, 45, 0)
    with torch.no_grad():
        linear.weight[3] = 0.0  # a zero column: scale 1, all zeros
    layer = Int8Linear.from_float(linear)
    assert layer.weight.dtype == torch.int8 and layer.scales.shape == (45,) and layer.bias is not None
    assert int(layer.weight.abs().max()) == 127 and int(layer.weight.min()) >= -127
    assert torch.equal(layer.weight.abs().amax(dim=1)[torch.arange(45) != 3], torch.full((44,), 127, dtype=torch.int8))
    assert float(layer.scales[3]) == 1.0 and not layer.weight[3].any()
    error = (layer.weight.float() * layer.scales[:, None] - linear.weight).abs()
    assert bool((error <= layer.scales[:, None] / 2 + 1e-7).all())  # each weight to the nearest step
    assert torch.equal(layer.bias, linear.bias.detach())


@pytest.mark.parametrize("shape", [(5, 37, 45), (17, 64, 96), (8, 3, 1), (2, 6, 1100, 40)])
@pytest.mark.usefixtures("fresh_engine")
def test_the_int8_product_is_its_quantisation_computed_in_float64(
    shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exact integer sums: the engine's kernel, and PyTorch's computation of it, differ from a float64
    reference of the same quantisation by float32 rounding only (K over 1040 sums in float64)."""
    *rows, k, n = shape  # k not a multiple of 4, n not of 32, rows not of 8; batch dimensions
    layer = Int8Linear.from_float(linear_of(k, n, k))
    x = torch.randn(*rows, k, generator=torch.Generator().manual_seed(n)) * 3
    x.view(-1, k)[1] = 0.0  # a zero row has scale 1, not a division by zero
    expected = int8_reference(x, layer.weight, layer.scales, layer.bias)
    fallback = int8_linear(x, layer.weight, layer.scales, layer.bias)
    assert fallback.shape == (*rows, n) and fallback.dtype == torch.float32
    assert rel_err(fallback.double(), expected) < 1e-6
    assert torch.equal(fallback.view(-1, n)[1], layer.bias)
    if library.load() is not None:
        ours = layer(x)
        assert ours.shape == (*rows, n) and rel_err(ours.double(), expected) < 1e-6
    monkeypatch.setenv(SWITCH, "0")  # the engine off: PyTorch computes the same integers
    library.forget()
    assert torch.equal(layer(x), fallback)


@needs_kernels
@pytest.mark.usefixtures("fresh_engine")
def test_with_the_engine_an_int8_layer_runs_the_c_kernel_on_weights_packed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = with_precision(small_model(), "int8")
    layers = [m for m in model.modules() if isinstance(m, Int8Linear)]
    assert pack_int8_linears(model, leave=layers[1:]) == 1
    packed = quantize._packs[layers[0]][1]

    def not_here(*args: object) -> None:
        raise AssertionError("the int8 product ran in PyTorch, not in the engine's kernel")

    monkeypatch.setattr(quantize, "int8_linear", not_here)
    x = torch.randn(3, layers[0].in_features)
    first = layers[0](x)
    assert quantize._packs[layers[0]][1] is packed  # not packed again
    with torch.no_grad():
        layers[0].weight.neg_()  # a changed weight is packed again
    torch.testing.assert_close(layers[0](x), -first + 2 * layers[0].bias, atol=1e-5, rtol=1e-5)
    assert quantize._packs[layers[0]][1] is not packed


def test_loading_and_translating_at_int8_warns_nothing(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No torch.ao quantisation (deprecated), with the engine or without it."""
    for switch in ("1", "0"):
        monkeypatch.setenv(SWITCH, switch)
        library.forget()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            translator = Translator.load(tiny_model_dir, precision="int8")
            assert translator.translate(["a dog runs."], DecodingConfig(beam_size=2, max_len_b=5))
    library.forget()


@pytest.mark.slow
def test_the_bundled_models_int8_translations_are_close_to_its_float32_ones() -> None:
    from selfattention.evaluation import score

    subjects = ["A dog", "Two children", "The old man", "A woman in a red dress", "I", "My friends"]
    actions = ["is running in the park.", "ate the food.", "are playing soccer.", "is good.", "swims in the lake."]
    texts = [f"{s} {a}" for s in subjects for a in actions]
    float32 = Translator.load(resolve_model(None))
    int8 = Translator.load(resolve_model(None), precision="int8")
    for beam in (1, 4):
        config = DecodingConfig(beam_size=beam)
        ours, reference = int8.translate(texts, config), float32.translate(texts, config)
        assert score(ours, reference).bleu > 90
        assert sum(a == b for a, b in zip(ours, reference, strict=True)) >= 0.8 * len(texts)
