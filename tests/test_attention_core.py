"""Scaled dot-product attention: the fused and explicit paths, masking, recording, input checks."""

from __future__ import annotations

import math
import random

import pytest
import torch

from conftest import rel_err
from selfattention.attention import (
    causal_mask,
    combine_masks,
    explicit_attention,
    lengths_mask,
    padding_mask,
    scaled_dot_product_attention,
)

TOLERANCE = 1e-5
MASK_KINDS = ("none", "random", "padding", "causal", "padding+causal")


def _padding_for(batch_dims: tuple[int, ...], seq: int, gen: torch.Generator) -> torch.Tensor:
    """A padding mask from ``lengths_mask`` reshaped to broadcast against ``(*batch_dims, T, S)``."""
    batch = batch_dims[0] if batch_dims else 1
    lengths = torch.randint(1, seq + 1, (batch,), generator=gen)
    mask = lengths_mask(lengths, seq)  # (B, 1, 1, S)
    if len(batch_dims) == 2:
        return mask  # (B, 1, 1, S) against (B, H, T, S)
    if len(batch_dims) == 1:
        return mask[:, 0]  # (B, 1, S) against (B, T, S)
    return mask[0, 0]  # (1, S) against (T, S)


def make_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, str]:
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    batch_dims = rng.choice([(), (rng.randint(1, 3),), (rng.randint(1, 3), rng.randint(1, 3))])
    kind = MASK_KINDS[seed % len(MASK_KINDS)]
    t = rng.randint(1, 17)
    s = rng.randint(1, 17)
    if "causal" in kind:
        s = max(s, t)  # causal masks need S >= T
    head_dim = rng.choice([1, 4, 8, 64])
    q = torch.randn(*batch_dims, t, head_dim, generator=gen)
    k = torch.randn(*batch_dims, s, head_dim, generator=gen)
    v = torch.randn(*batch_dims, s, head_dim, generator=gen)
    mask: torch.Tensor | None
    if kind == "none":
        mask = None
    elif kind == "random":
        mask = torch.rand(*batch_dims, t, s, generator=gen) > 0.3
    elif kind == "padding":
        mask = _padding_for(batch_dims, s, gen)
    elif kind == "causal":
        mask = causal_mask(t, s)
    else:
        mask = combine_masks(_padding_for(batch_dims, s, gen), causal_mask(t, s))
    return q, k, v, mask, kind


CASE_SEEDS = list(range(25))


def fused_vs_explicit_error(seed: int) -> float:
    q, k, v, mask, _ = make_case(seed)
    fused, weights = scaled_dot_product_attention(q, k, v, mask)
    assert weights is None  # the fused path was taken
    explicit, _ = explicit_attention(q, k, v, mask)
    assert fused.shape == explicit.shape == (*q.shape[:-1], v.shape[-1])
    assert torch.isfinite(fused).all() and torch.isfinite(explicit).all()
    return rel_err(fused, explicit)


@pytest.mark.parametrize("seed", CASE_SEEDS)
def test_fused_matches_explicit(seed):
    err = fused_vs_explicit_error(seed)
    q, k, _, mask, kind = make_case(seed)
    assert err <= TOLERANCE, (
        f"seed {seed}: q {tuple(q.shape)}, k {tuple(k.shape)}, mask {kind} "
        f"{None if mask is None else tuple(mask.shape)}: relative error {err:.3e}"
    )


def test_cases_cover_every_mask_kind_and_width():
    kinds = {make_case(seed)[4] for seed in CASE_SEEDS}
    widths = {make_case(seed)[0].shape[-1] for seed in CASE_SEEDS}
    ranks = {make_case(seed)[0].dim() for seed in CASE_SEEDS}
    assert kinds == set(MASK_KINDS)
    assert widths == {1, 4, 8, 64}
    assert ranks == {2, 3, 4}


def test_largest_fused_vs_explicit_error():
    errors = {seed: fused_vs_explicit_error(seed) for seed in CASE_SEEDS}
    worst = max(errors, key=errors.__getitem__)
    assert errors[worst] <= TOLERANCE, f"largest relative error fused vs explicit {errors[worst]:.3e} (seed {worst})"


# --- rows that may attend to nothing ---------------------------------------------------------


def _run_both_paths(q, k, v, mask):
    fused, _ = scaled_dot_product_attention(q, k, v, mask)
    explicit, _ = explicit_attention(q, k, v, mask)
    return {"fused": fused, "explicit": explicit}


def _leaves(seed: int, batch: int = 2, heads: int = 2, t: int = 5, s: int = 6, dh: int = 8):
    torch.manual_seed(seed)
    q = torch.randn(batch, heads, t, dh, requires_grad=True)
    k = torch.randn(batch, heads, s, dh, requires_grad=True)
    v = torch.randn(batch, heads, s, dh, requires_grad=True)
    return q, k, v


@pytest.mark.parametrize("path", ["fused", "explicit"])
@pytest.mark.parametrize("reduction", ["sum", "projection"])
def test_rows_with_no_allowed_key_are_zero_with_zero_query_gradient(path, reduction):
    q, k, v = _leaves(0)
    torch.manual_seed(1)
    mask = torch.rand(2, 2, 5, 6) > 0.4
    mask[0, 1, 2] = False  # some rows may attend to nothing
    mask[1, 0, 4] = False
    mask[1, 1, 0] = False
    mask[0, 0, 3] = True  # and some rows to everything
    empty = ~mask.any(dim=-1)  # (B, H, T)
    assert empty.sum() >= 3 and (~empty).sum() >= 3

    out = _run_both_paths(q, k, v, mask)[path]
    assert torch.isfinite(out).all()
    assert torch.equal(out[empty], torch.zeros_like(out[empty]))
    assert out[~empty].abs().sum() > 0

    if reduction == "sum":
        loss = out.sum()
    else:
        torch.manual_seed(2)
        loss = (out @ torch.randn(out.shape[-1], 3)).pow(2).sum()
    loss.backward()
    for name, leaf in (("q", q), ("k", k), ("v", v)):
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all(), name
    assert torch.equal(q.grad[empty], torch.zeros_like(q.grad[empty]))
    assert q.grad[~empty].abs().sum() > 0


@pytest.mark.parametrize("path", ["fused", "explicit"])
def test_whole_mask_false_gives_zeros_and_zero_gradients(path):
    q, k, v = _leaves(3)
    mask = torch.zeros(2, 1, 5, 6, dtype=torch.bool)
    out = _run_both_paths(q, k, v, mask)[path]
    assert torch.equal(out, torch.zeros_like(out))
    torch.manual_seed(4)
    (out * torch.randn_like(out)).sum().backward()
    for name, leaf in (("q", q), ("k", k), ("v", v)):
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all(), name
        assert torch.equal(leaf.grad, torch.zeros_like(leaf.grad)), name


def test_paths_agree_with_empty_rows():
    q, k, v = _leaves(5)
    torch.manual_seed(6)
    mask = torch.rand(2, 2, 5, 6) > 0.5
    mask[:, :, 1] = False
    both = _run_both_paths(q, k, v, mask)
    assert rel_err(both["fused"], both["explicit"]) <= TOLERANCE


# --- attention weights -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_weight_rows_sum_to_one_and_are_zero_where_masked(seed):
    q, k, v, _, _ = make_case(seed * 5 + 1)  # a random-mask case
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(*q.shape[:-1], k.shape[-2], generator=gen) > 0.5
    mask[..., 0, :] = False  # at least one row with nothing allowed
    _, weights = explicit_attention(q, k, v, mask)
    assert weights.shape == mask.shape
    allowed_any = mask.any(dim=-1)
    sums = weights.sum(dim=-1)
    assert torch.allclose(sums[allowed_any], torch.ones_like(sums[allowed_any]), atol=1e-6, rtol=0)
    assert torch.equal(sums[~allowed_any], torch.zeros_like(sums[~allowed_any]))
    assert torch.equal(weights[~mask], torch.zeros_like(weights[~mask]))
    assert (weights >= 0).all()


def test_weight_rows_sum_to_one_without_mask():
    torch.manual_seed(7)
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 8)
    _, weights = explicit_attention(q, k, v)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4), atol=1e-6, rtol=0)


# --- the explicit path's steps ---------------------------------------------------------------


class FakeRecorder:
    def __init__(self) -> None:
        self.steps: dict[str, torch.Tensor] = {}

    def at(self, name: str) -> FakeRecorder:
        return self

    def wants(self, step: str) -> bool:
        return True

    def record(self, step: str, value: torch.Tensor) -> None:
        assert step not in self.steps, f"step {step!r} recorded twice"
        self.steps[step] = value.detach().clone()


def test_explicit_path_records_the_four_steps():
    torch.manual_seed(8)
    q, k, v = torch.randn(2, 3, 5, 16), torch.randn(2, 3, 7, 16), torch.randn(2, 3, 7, 16)
    recorder = FakeRecorder()
    output, weights = scaled_dot_product_attention(q, k, v, recorder=recorder)
    assert set(recorder.steps) == {"scores", "scaled_scores", "weights", "output"}
    scores = q @ k.transpose(-2, -1)
    assert torch.allclose(recorder.steps["scores"], scores, atol=1e-6, rtol=0)
    assert torch.allclose(recorder.steps["scaled_scores"], scores / math.sqrt(16), atol=1e-6, rtol=0)
    expected_weights = torch.softmax(scores / 4.0, dim=-1)
    assert torch.allclose(recorder.steps["weights"], expected_weights, atol=1e-6, rtol=0)
    assert torch.allclose(recorder.steps["output"], expected_weights @ v, atol=1e-5, rtol=0)
    assert weights is not None and torch.equal(recorder.steps["weights"], weights)
    assert torch.equal(recorder.steps["output"], output)


def test_need_weights_returns_the_explicit_weights():
    q, k, v, mask, _ = make_case(1)
    out, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=True)
    explicit_out, explicit_weights = explicit_attention(q, k, v, mask)
    assert weights is not None
    assert torch.equal(weights, explicit_weights)
    assert torch.equal(out, explicit_out)


def test_weights_are_none_by_default():
    q, k, v, mask, _ = make_case(2)
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    assert weights is None


# --- input checks ----------------------------------------------------------------------------


def test_mismatched_query_and_key_width_raises():
    with pytest.raises(ValueError, match=r"same width Dh, got 8 and 4"):
        scaled_dot_product_attention(torch.randn(2, 3, 8), torch.randn(2, 5, 4), torch.randn(2, 5, 4))


def test_mismatched_key_and_value_length_raises():
    with pytest.raises(ValueError, match=r"same length S, got 5 and 6"):
        scaled_dot_product_attention(torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 6, 8))


def test_float_mask_raises():
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"mask must be boolean"):
        scaled_dot_product_attention(q, k, v, torch.zeros(3, 5))


def test_mask_that_does_not_broadcast_raises():
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"does not broadcast"):
        scaled_dot_product_attention(q, k, v, torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"does not broadcast"):
        # broadcastable with the scores but would enlarge them: also refused
        scaled_dot_product_attention(q, k, v, torch.ones(4, 2, 3, 5, dtype=torch.bool))


# --- mask helpers ----------------------------------------------------------------------------


def test_causal_mask_is_lower_triangular():
    assert torch.equal(causal_mask(3), torch.tril(torch.ones(3, 3, dtype=torch.bool)))


def test_causal_mask_with_more_keys_than_queries():
    mask = causal_mask(2, 5)
    assert mask.shape == (2, 5)
    assert mask[0].tolist() == [True, True, True, True, False]
    assert mask[1].tolist() == [True] * 5


def test_causal_mask_with_fewer_keys_raises():
    with pytest.raises(ValueError, match=r"at least as many keys"):
        causal_mask(5, 3)


def test_padding_mask_shape_and_values():
    tokens = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 0]])
    mask = padding_mask(tokens, pad_id=0)
    assert mask.shape == (2, 1, 1, 4)
    assert mask.dtype == torch.bool
    assert mask[:, 0, 0].tolist() == [[True, True, False, False], [True, True, True, False]]


def test_lengths_mask_matches_padding_mask():
    tokens = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 0]])
    assert torch.equal(lengths_mask(torch.tensor([2, 3]), 4), padding_mask(tokens, 0))


def test_combine_masks():
    m = causal_mask(3)
    assert combine_masks(None, m) is m
    assert combine_masks(None, None) is None
    pad = torch.tensor([True, True, False])
    assert torch.equal(combine_masks(pad, m), m & pad)
