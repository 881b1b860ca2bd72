"""The model laid out for the C kernels from numpy arrays (engine/c_model.py), held to PyTorch's modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import needs_kernels, rel_err
from selfattention.engine import library
from selfattention.engine.c_model import CModel, CModelError, quantize_weight, sinusoidal_table
from selfattention.engine.quantize import Int8Linear, with_precision
from selfattention.layers import sinusoidal_table as torch_sinusoidal_table
from selfattention.model import Transformer
from selfattention.model_io import unique_tensors
from test_native_step import VARIANTS
from test_native_step import model_of as native_step_model

pytestmark = [needs_kernels, pytest.mark.usefixtures("fresh_engine")]


def model_of(seed: int = 0, **changes: object) -> Transformer:
    """test_native_step's model, with a third decoder layer."""
    return native_step_model(seed, **{"decoder_layers": 3, **changes})


def c_model_of(model: Transformer, precision: str = "float32") -> CModel:
    """The model as its saved file holds it: tied duplicates left out."""
    tensors, _ = unique_tensors(model)
    assert model.config is not None
    cdll = library.load()
    assert cdll is not None
    return CModel(model.config, {name: t.numpy() for name, t in tensors.items()}, cdll.cdll, precision)


def sources(batch: int = 4, length: int = 9, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(3, 53, (batch, length), generator=generator)
    src[1, length - 3 :] = 0  # padding: the source mask matters
    src[-1, 2:] = 0
    return src


def by_position(kv: torch.Tensor) -> torch.Tensor:
    """(layers, 2, B, H, S, Dh) as (layers, 2, B, S, H, Dh): indexable by a (B, S) mask."""
    return kv.transpose(3, 4)


def reference_cross_kv(model: Transformer, memory: torch.Tensor) -> torch.Tensor:
    batch, length, d = memory.shape
    heads = model.config.n_heads if model.config else 1
    layers = []
    for layer in model.decoder.layers:
        projections = (layer.cross_attn.k_proj, layer.cross_attn.v_proj)
        layers.append(
            torch.stack([p(memory).view(batch, length, heads, d // heads).transpose(1, 2) for p in projections])
        )
    return torch.stack(layers)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_encoder_and_the_cross_keys_and_values_match_pytorch(variant: str) -> None:
    model = model_of(**VARIANTS[variant])
    src = sources()
    with torch.no_grad():
        expected = model.encode(src)
        expected_kv = reference_cross_kv(model, expected)
    c_model = c_model_of(model)
    memory, mask = c_model.encode(src.numpy())
    real = src != 0  # padding positions are computed too, but attended to by nobody
    assert rel_err(torch.from_numpy(memory)[real], expected[real]) < 1e-5
    assert np.array_equal(mask, real.numpy().astype(np.uint8))
    kv = c_model.cross_kv(memory)
    assert kv.shape == tuple(expected_kv.shape)
    assert rel_err(by_position(torch.from_numpy(kv))[:, :, real], by_position(expected_kv)[:, :, real]) < 1e-5


def test_a_masked_key_changes_nothing_and_a_real_one_does() -> None:
    model = model_of()
    c_model = c_model_of(model)
    src = sources()
    memory, _ = c_model.encode(src.numpy())
    padded = torch.cat([src, torch.zeros(4, 3, dtype=src.dtype)], dim=1)  # more padding: the same real rows
    longer, _ = c_model.encode(padded.numpy())
    real = (src != 0).numpy()
    assert np.allclose(longer[:, : src.shape[1]][real], memory[real], atol=1e-6)
    changed = src.clone()
    changed[0, 0] = 5 if int(src[0, 0]) != 5 else 6
    other, _ = c_model.encode(changed.numpy())
    assert not np.allclose(other[0, 1], memory[0, 1], atol=1e-4)  # row 0's other positions attend to it
    assert np.allclose(other[1:], memory[1:], atol=1e-6)  # other sentences do not


def test_int8_weights_are_quantised_as_pytorchs_int8_layers_and_encode_the_same() -> None:
    model = model_of(norm="pre")
    layer = model.encoder.layers[0].feed_forward.up_proj
    reference = Int8Linear.from_float(layer)
    values, scales = quantize_weight(layer.weight.detach().numpy())
    assert np.array_equal(values, reference.weight.numpy()) and np.array_equal(scales, reference.scales.numpy())
    quantized = with_precision(model, "int8")
    src = sources()
    with torch.no_grad():
        expected = quantized.encode(src)
        expected_kv = reference_cross_kv(quantized, expected)
    c_model = c_model_of(model, "int8")
    memory, _ = c_model.encode(src.numpy())
    real = src != 0
    assert rel_err(torch.from_numpy(memory)[real], expected[real]) < 1e-5
    kv = c_model.cross_kv(memory)
    assert rel_err(by_position(torch.from_numpy(kv))[:, :, real], by_position(expected_kv)[:, :, real]) < 1e-5


@pytest.mark.parametrize("layout", ["interleaved", "halves"])
def test_the_sinusoids_match_pytorchs_to_a_few_ulps(layout: str) -> None:
    ours, theirs = sinusoidal_table(300, 32, layout), torch_sinusoidal_table(300, 32, layout).numpy()
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-4  # float32 angles up to 300 radians: a few ulps of the angle


def test_missing_or_misshapen_weights_are_refused_by_name() -> None:
    model = model_of()
    tensors = {name: t.numpy() for name, t in unique_tensors(model)[0].items()}
    cdll = library.load()
    assert cdll is not None and model.config is not None
    missing = {k: v for k, v in tensors.items() if k != "encoder.layers.1.self_attn.k_proj.weight"}
    with pytest.raises(CModelError, match=r"no tensor encoder\.layers\.1\.self_attn\.k_proj\.weight"):
        CModel(model.config, missing, cdll.cdll)
    misshapen = dict(tensors, **{"decoder.layers.0.self_attn_norm.weight": np.ones(7, np.float32)})
    with pytest.raises(CModelError, match=r"self_attn_norm\.weight has shape \(7,\)"):
        CModel(model.config, misshapen, cdll.cdll)
    with pytest.raises(CModelError, match="unknown precision"):
        CModel(model.config, tensors, cdll.cdll, "int4")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encoder.layers.0.feed_forward.up_proj.weight": np.ones((8, 32), np.float32)}, r"up_proj\.weight has shape \(8, 32\), but the configuration implies \(48, 32\)"),
        ({"decoder.layers.1.self_attn.q_proj.bias": np.ones(2, np.float32)}, r"q_proj\.bias has shape \(2,\)"),
        ({"decoder.layers.0.self_attn.q_proj.bias": None}, r"no tensor decoder\.layers\.0\.self_attn\.q_proj\.bias"),
        ({"output_proj.bias": np.zeros(53, np.float32)}, r"unexpected 1 tensor\(s\), e\.g\. output_proj\.bias"),
        ({"output_proj.weight": np.zeros((53, 32), np.float32)}, r"output_proj\.weight differs from src_embed\.token\.weight"),
    ],
)  # fmt: skip
def test_weights_the_configuration_does_not_describe_are_refused(change: dict, message: str) -> None:
    """What PyTorch's loader refuses: a weight or bias of another shape, a missing bias, one too many, a tied copy
    that is not a copy; never read past an array by the C kernels."""
    model = model_of()
    tensors = {name: t.numpy() for name, t in unique_tensors(model)[0].items()}
    for name, value in change.items():
        if value is None:
            del tensors[name]
        else:
            tensors[name] = value
    cdll = library.load()
    assert cdll is not None and model.config is not None
    with pytest.raises(CModelError, match=message):
        CModel(model.config, tensors, cdll.cdll)


def test_token_ids_outside_the_vocabulary_are_refused() -> None:
    c_model = c_model_of(model_of())
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 53\)"):
        c_model.encode(np.array([[3, 99]]))
