"""The whole Transformer against torch.nn.Transformer with the same weights, post-LN and pre-LN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import rel_err
from selfattention.attention import MultiHeadAttention
from selfattention.config import ModelConfig
from selfattention.model import Transformer, build_model

TOLERANCE = 1e-5
VOCAB, D_MODEL, N_HEADS, D_FF, LAYERS, PAD = 23, 32, 4, 64, 2, 0


def copy_attention(ref: nn.MultiheadAttention, ours: MultiHeadAttention) -> None:
    ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
    ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
    ref.out_proj.weight.copy_(ours.out_proj.weight)
    ref.out_proj.bias.copy_(ours.out_proj.bias)


def copy_norm(ref: nn.LayerNorm, ours: nn.LayerNorm) -> None:
    ref.weight.copy_(ours.weight)
    ref.bias.copy_(ours.bias)


def copy_linear(ref: nn.Linear, ours: nn.Linear) -> None:
    ref.weight.copy_(ours.weight)
    ref.bias.copy_(ours.bias)


def randomise(model: Transformer) -> None:
    """build_model zeroes biases and sets norms to (1, 0); random ones make the comparison stricter."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.normal_(std=0.1)
            elif isinstance(module, nn.LayerNorm):
                module.weight.normal_(mean=1.0, std=0.1)
                module.bias.normal_(std=0.1)


def make_pair(norm: str, tie: bool, seed: int = 0) -> tuple[Transformer, nn.Transformer]:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=VOCAB,
        d_model=D_MODEL,
        n_heads=N_HEADS,
        d_ff=D_FF,
        encoder_layers=LAYERS,
        decoder_layers=LAYERS,
        dropout=0.0,
        norm=norm,
        tie_embeddings=tie,
        pad_id=PAD,
    )
    ours = build_model(config)
    randomise(ours)
    ref = nn.Transformer(
        d_model=D_MODEL,
        nhead=N_HEADS,
        num_encoder_layers=LAYERS,
        num_decoder_layers=LAYERS,
        dim_feedforward=D_FF,
        dropout=0.0,
        batch_first=True,
        norm_first=norm == "pre",
    )
    with torch.no_grad():
        for ref_layer, layer in zip(ref.encoder.layers, ours.encoder.layers, strict=True):
            copy_attention(ref_layer.self_attn, layer.self_attn)
            copy_linear(ref_layer.linear1, layer.feed_forward.up_proj)
            copy_linear(ref_layer.linear2, layer.feed_forward.down_proj)
            copy_norm(ref_layer.norm1, layer.self_attn_norm)
            copy_norm(ref_layer.norm2, layer.feed_forward_norm)
        for ref_layer, layer in zip(ref.decoder.layers, ours.decoder.layers, strict=True):
            copy_attention(ref_layer.self_attn, layer.self_attn)
            copy_attention(ref_layer.multihead_attn, layer.cross_attn)
            copy_linear(ref_layer.linear1, layer.feed_forward.up_proj)
            copy_linear(ref_layer.linear2, layer.feed_forward.down_proj)
            copy_norm(ref_layer.norm1, layer.self_attn_norm)
            copy_norm(ref_layer.norm2, layer.cross_attn_norm)
            copy_norm(ref_layer.norm3, layer.feed_forward_norm)
        if norm == "post":  # the paper's post-LN stack has no final norm; torch always adds one
            assert ours.encoder.final_norm is None and ours.decoder.final_norm is None
            ref.encoder.norm = None
            ref.decoder.norm = None
        else:
            assert ours.encoder.final_norm is not None and ours.decoder.final_norm is not None
            copy_norm(ref.encoder.norm, ours.encoder.final_norm)
            copy_norm(ref.decoder.norm, ours.decoder.final_norm)
    return ours.eval(), ref.eval()


def right_padded(lengths: list[int], generator: torch.Generator) -> torch.Tensor:
    batch = torch.full((len(lengths), max(lengths)), PAD)
    for row, length in enumerate(lengths):
        batch[row, :length] = torch.randint(3, VOCAB, (length,), generator=generator)
    return batch


def compare(norm: str, tie: bool, seed: int = 0, fastpath: bool = True) -> float:
    ours, ref = make_pair(norm, tie, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    src = right_padded([9, 5, 7, 2], gen)
    tgt = right_padded([6, 8, 3, 5], gen)
    real = tgt != PAD
    src_pad = src == PAD  # torch's convention: True = blocked
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(fastpath)
    try:
        with torch.no_grad():
            logits = ours(src, tgt)
            hidden = ref(
                ours.src_embed(src),
                ours.tgt_embed(tgt),
                tgt_mask=nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], dtype=torch.bool),
                src_key_padding_mask=src_pad,
                tgt_key_padding_mask=tgt == PAD,
                memory_key_padding_mask=src_pad,
            )
            ref_logits = ours.output_proj(hidden)
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)
    assert logits.shape == ref_logits.shape == (4, tgt.shape[1], VOCAB)
    assert torch.isfinite(logits).all()
    assert torch.isfinite(ref_logits[real]).all()
    return rel_err(logits[real], ref_logits[real])


# torch.nn.Transformer's own warnings about its nested-tensor fast path are expected here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning"),
    pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage:UserWarning"),
]


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_matches_torch_transformer(norm, tie):
    err = compare(norm, tie)
    assert err <= TOLERANCE, f"{norm}-LN, tie_embeddings={tie}: logits relative error {err:.3e}"


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_matches_torch_transformer_without_fastpath(norm):
    """The same comparison with torch's fused inference path (nested tensors) switched off."""
    err = compare(norm, tie=False, seed=1, fastpath=False)
    assert err <= TOLERANCE, f"{norm}-LN without fastpath: logits relative error {err:.3e}"


def test_largest_error_against_torch_transformer():
    errors = {(norm, seed): compare(norm, tie=seed % 2 == 0, seed=seed) for norm in ("post", "pre") for seed in (2, 3)}
    worst = max(errors, key=errors.__getitem__)
    assert errors[worst] <= TOLERANCE, f"largest relative error {errors[worst]:.3e} ({worst[0]}-LN, seed {worst[1]})"


def test_reference_copy_is_not_vacuous():
    """A perturbed reference must disagree, so the parity tests can fail."""
    ours, ref = make_pair("post", tie=False)
    gen = torch.Generator().manual_seed(9)
    src, tgt = right_padded([5, 3], gen), right_padded([4, 4], gen)
    with torch.no_grad():
        # (a constant bias shift would vanish in the next LayerNorm: perturb a weight instead)
        weight = ref.decoder.layers[1].multihead_attn.out_proj.weight
        weight.add_(1e-2 * torch.randn(weight.shape, generator=gen))
        hidden = ref(
            ours.src_embed(src),
            ours.tgt_embed(tgt),
            tgt_mask=nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.bool),
            src_key_padding_mask=src == PAD,
            memory_key_padding_mask=src == PAD,
        )
        assert rel_err(ours(src, tgt), ours.output_proj(hidden)) > 1e-4
