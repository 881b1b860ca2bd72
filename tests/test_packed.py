"""oneDNN-packed Linear layers for float32 inference: same products as nn.Linear, and safe fallbacks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfattention import ModelConfig, build_model
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine import SWITCH, library, native_step
from selfattention.engine.packed import PackedLinear, onednn_wanted, pack_linears

needs_onednn = pytest.mark.skipif(not onednn_wanted(), reason="this PyTorch build has no oneDNN linear kernels")


def linear(bias: bool = True, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(48, 80, bias=bias)


def exact(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    bias = None if layer.bias is None else layer.bias.double()
    return F.linear(x.double(), layer.weight.double(), bias)


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 48), (3, 7, 48), (0, 48), (1, 1, 48)])
def test_packed_product_is_as_close_to_float64_as_nn_linear(bias: bool, shape: tuple[int, ...]) -> None:
    layer = linear(bias)
    packed = PackedLinear(layer)
    x = torch.randn(shape)
    with torch.inference_mode():
        got, reference = packed(x), layer(x)
    assert got.shape == reference.shape == (*shape[:-1], 80)
    if x.numel() == 0:
        return
    truth = exact(layer, x)
    tolerance = max(1e-5, 4 * float((reference.double() - truth).abs().max().detach()))
    assert float((got.double() - truth).abs().max().detach()) <= tolerance


@needs_onednn
def test_non_contiguous_input() -> None:
    layer = linear()
    x = torch.randn(48, 6).t()  # (6, 48), transposed
    assert not x.is_contiguous()
    with torch.inference_mode():
        torch.testing.assert_close(PackedLinear(layer)(x), layer(x), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_gradients_fall_back_to_nn_linear() -> None:
    layer = linear()
    packed = PackedLinear(layer)
    x = torch.randn(4, 48, requires_grad=True)
    packed(x).square().sum().backward()
    assert layer.weight.grad is not None and x.grad is not None
    expected_x_grad = x.grad.clone()
    x.grad = None
    layer(x).square().sum().backward()
    torch.testing.assert_close(x.grad, expected_x_grad)


@needs_onednn
def test_other_dtypes_fall_back() -> None:
    layer = linear()
    packed = PackedLinear(layer)
    x = torch.randn(3, 48, dtype=torch.float64)
    with torch.inference_mode():
        with pytest.raises(RuntimeError):  # F.linear's own error: the weight is float32
            packed(x)
        packed.weight.data = packed.weight.data.double()
        packed.bias.data = packed.bias.data.double()  # type: ignore[union-attr]
        torch.testing.assert_close(packed(x), exact(layer, x))


@needs_onednn
def test_a_weight_changed_after_packing_is_used_not_the_stale_copy() -> None:
    layer = linear()
    packed = PackedLinear(layer)
    x = torch.randn(2, 48)
    with torch.no_grad():
        layer.weight.mul_(2)
    with torch.inference_mode():
        torch.testing.assert_close(packed(x), layer(x))


@needs_onednn
def test_pack_linears_swaps_every_linear_and_keeps_the_logits() -> None:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=64, d_model=32, n_heads=4, d_ff=64, encoder_layers=2, decoder_layers=2)
    model = build_model(config).eval()
    src, tgt = torch.randint(3, 64, (3, 9)), torch.randint(3, 64, (3, 6))
    with torch.inference_mode():
        reference = model(src, tgt)
    linears = sum(type(m) is nn.Linear for m in model.modules())
    assert pack_linears(model) == linears > 0
    assert not any(type(m) is nn.Linear for m in model.modules())
    assert model.output_proj.weight is model.tgt_embed.token.weight  # still tied, still inspectable
    with torch.inference_mode():
        torch.testing.assert_close(model(src, tgt), reference, rtol=1e-4, atol=1e-4)


def test_the_engines_switch_turns_packing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, "0")
    assert not onednn_wanted()
    layer = nn.Sequential(linear())
    assert pack_linears(layer) == 0
    assert type(layer[0]) is nn.Linear
    translator = Translator.load(_bundled())  # float32 on the CPU: packed, were the engine on
    assert not any(isinstance(m, PackedLinear) for m in translator.model.modules())


@needs_onednn
def test_bundled_translations_are_the_same_packed_or_not() -> None:
    texts = ["I am good.", "A dog ate the food because it was hungry.", "Two men are playing soccer in a park."]
    packed, plain = Translator.load(_bundled()), Translator.load(_bundled(), onednn=False)
    assert any(isinstance(m, PackedLinear) for m in packed.model.modules())
    assert not any(isinstance(m, PackedLinear) for m in plain.model.modules())
    for beam in (1, 4):
        config = DecodingConfig(beam_size=beam)
        assert packed.translate(texts, config) == plain.translate(texts, config)


@needs_onednn
@pytest.mark.usefixtures("fresh_engine")
def test_the_load_packs_for_onednn_only_what_the_c_step_does_not_compute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The decoder's weights are packed once: for the C step (at the first search), not for oneDNN too."""
    model = Translator.load(_bundled()).model
    computed = native_step.computed_linears(model)
    if not computed:
        pytest.skip("the C decoding step does not run here")
    assert len(computed) == 1 + 8 * len(model.decoder.layers)  # the output projection, 8 per layer
    assert all(type(m) is nn.Linear for m in computed)
    others = [m for m in model.modules() if isinstance(m, (nn.Linear, PackedLinear)) and m not in computed]
    assert others and all(isinstance(m, PackedLinear) for m in others)  # the encoder, the source's keys and values
    assert all(isinstance(layer.cross_attn.k_proj, PackedLinear) for layer in model.decoder.layers)
    monkeypatch.setattr(library, "DIRECTORY", tmp_path)  # no C library: PyTorch's step, on oneDNN throughout
    library.forget()
    model = Translator.load(_bundled()).model
    assert not any(type(m) is nn.Linear for m in model.modules())


def _bundled() -> str:
    from selfattention.cli.common import resolve_model

    return str(resolve_model(None))
