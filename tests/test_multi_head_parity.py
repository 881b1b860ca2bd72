"""MultiHeadAttention against torch.nn.MultiheadAttention, plus its input checks and KV cache."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import rel_err
from selfattention.attention import KVCache, MultiHeadAttention, causal_mask, combine_masks, lengths_mask

TOLERANCE = 1e-5
D_MODEL, N_HEADS = 32, 4


def make_pair(seed: int = 0, d_model: int = D_MODEL, n_heads: int = N_HEADS):
    """Our module and torch's, with the same weights (random biases too), both in eval mode."""
    torch.manual_seed(seed)
    ours = MultiHeadAttention(d_model, n_heads)
    with torch.no_grad():
        for linear in (ours.q_proj, ours.k_proj, ours.v_proj, ours.out_proj):
            linear.bias.normal_()  # nn.Linear's default bias init is small; make biases matter
    ref = nn.MultiheadAttention(d_model, n_heads, batch_first=True, bias=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ours.eval(), ref.eval()


# Each case: (name, cross-attention?, padding?, causal?)
CASES = [
    ("self", False, False, False),
    ("self+padding", False, True, False),
    ("self+causal", False, False, True),
    ("self+padding+causal", False, True, True),
    ("cross", True, False, False),
    ("cross+padding", True, True, False),
]


def run_case(name: str, cross: bool, padding: bool, causal: bool, seed: int = 0) -> dict[str, float]:
    ours, ref = make_pair(seed)
    gen = torch.Generator().manual_seed(seed + 100)
    batch, t = 3, 7
    s = 11 if cross else t
    query = torch.randn(batch, t, D_MODEL, generator=gen)
    memory = torch.randn(batch, s, D_MODEL, generator=gen) if cross else None
    keys = memory if cross else query

    # Our convention: True = may attend. Torch's: True = blocked.
    lengths = torch.tensor([s, s - 3, s - 5]) if padding else torch.full((batch,), s)
    our_padding = lengths_mask(lengths, s) if padding else None  # (B, 1, 1, S)
    our_causal = causal_mask(t, s) if causal else None  # (T, S)
    mask = combine_masks(our_padding, our_causal)
    key_padding_mask = ~our_padding[:, 0, 0] if padding else None  # (B, S)
    attn_mask = ~our_causal if causal else None  # (T, S)

    with torch.no_grad():
        out, weights = ours(query, memory, mask=mask, need_weights=True)
        fused_out, no_weights = ours(query, memory, mask=mask)
        ref_out, ref_weights = ref(
            query,
            keys,
            keys,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            need_weights=True,
            average_attn_weights=False,
        )
        _, ref_avg = ref(
            query, keys, keys, key_padding_mask=key_padding_mask, attn_mask=attn_mask, average_attn_weights=True
        )
        ref_fused_out, _ = ref(
            query, keys, keys, key_padding_mask=key_padding_mask, attn_mask=attn_mask, need_weights=False
        )

    assert no_weights is None
    assert weights is not None and weights.shape == (batch, N_HEADS, t, s)
    assert out.shape == fused_out.shape == ref_out.shape == (batch, t, D_MODEL)
    for tensor in (out, fused_out, ref_out, ref_fused_out, weights, ref_weights):
        assert torch.isfinite(tensor).all(), name
    return {
        "output": rel_err(out, ref_out),
        "fused output": rel_err(fused_out, ref_out),
        "fused output vs torch fused": rel_err(fused_out, ref_fused_out),
        "per-head weights": rel_err(weights, ref_weights),
        "averaged weights": rel_err(weights.mean(1), ref_avg),
    }


@pytest.mark.parametrize(("name", "cross", "padding", "causal"), CASES, ids=[case[0] for case in CASES])
def test_matches_torch_multihead_attention(name, cross, padding, causal):
    errors = run_case(name, cross, padding, causal)
    for what, err in errors.items():
        assert err <= TOLERANCE, f"{name}: {what} relative error {err:.3e}"


def test_largest_error_against_torch():
    errors = {(case[0], what): err for case in CASES for what, err in run_case(*case, seed=1).items()}
    worst = max(errors, key=errors.__getitem__)
    assert errors[worst] <= TOLERANCE, f"largest relative error {errors[worst]:.3e} ({worst[0]}: {worst[1]})"


def test_masked_weights_are_zero_like_torch():
    """Padding keys get exactly zero weight in both implementations."""
    ours, ref = make_pair(2)
    torch.manual_seed(3)
    query, memory = torch.randn(2, 4, D_MODEL), torch.randn(2, 6, D_MODEL)
    real = lengths_mask(torch.tensor([6, 2]), 6)
    with torch.no_grad():
        _, weights = ours(query, memory, mask=real, need_weights=True)
        _, ref_weights = ref(query, memory, memory, key_padding_mask=~real[:, 0, 0], average_attn_weights=False)
    assert torch.equal(weights[1, :, :, 2:], torch.zeros_like(weights[1, :, :, 2:]))
    assert torch.equal(ref_weights[1, :, :, 2:], torch.zeros_like(ref_weights[1, :, :, 2:]))


# --- input checks ----------------------------------------------------------------------------


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


def test_wrong_input_width_raises():
    mha = MultiHeadAttention(D_MODEL, N_HEADS)
    with pytest.raises(ValueError, match=r"query must have shape \(B, L, 32\)"):
        mha(torch.randn(2, 3, D_MODEL + 1))
    with pytest.raises(ValueError, match=r"key_value must have shape \(B, L, 32\)"):
        mha(torch.randn(2, 3, D_MODEL), torch.randn(2, 5, 8))


# --- KV cache --------------------------------------------------------------------------------


def test_self_attention_cache_matches_full_causal_pass():
    ours, _ = make_pair(4)
    torch.manual_seed(5)
    batch, t = 2, 6
    x = torch.randn(batch, t, D_MODEL)
    with torch.no_grad():
        full, _ = ours(x, mask=causal_mask(t))
        cache = KVCache()
        for step in range(t):
            row, _ = ours(x[:, step : step + 1], mask=causal_mask(1, step + 1), cache=cache)
            assert cache.length == step + 1
            assert row.shape == (batch, 1, D_MODEL)
            assert torch.allclose(row[:, 0], full[:, step], atol=1e-5, rtol=0), f"step {step}"
    assert cache.key is not None and cache.key.shape == (batch, N_HEADS, t, D_MODEL // N_HEADS)


def test_cross_attention_cache_projects_the_source_once():
    ours, _ = make_pair(6)
    torch.manual_seed(7)
    memory = torch.randn(2, 9, D_MODEL)
    real = lengths_mask(torch.tensor([9, 4]), 9)
    first, second = torch.randn(2, 1, D_MODEL), torch.randn(2, 1, D_MODEL)

    projections = []
    ours.k_proj.register_forward_hook(lambda *args: projections.append("k"))
    ours.v_proj.register_forward_hook(lambda *args: projections.append("v"))

    cache = KVCache()
    with torch.no_grad():
        out1, _ = ours(first, memory, mask=real, cache=cache)
        key, value = cache.key, cache.value
        assert key is not None and value is not None and cache.length == 9
        out2, _ = ours(second, memory, mask=real, cache=cache)
        assert cache.key is key and cache.value is value
        assert projections == ["k", "v"]  # the second call projected nothing

        expected1, _ = ours(first, memory, mask=real)
        expected2, _ = ours(second, memory, mask=real)
    assert torch.allclose(out1, expected1, atol=1e-6, rtol=0)
    assert torch.allclose(out2, expected2, atol=1e-6, rtol=0)
