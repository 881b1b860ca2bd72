"""Property-based tests of attention and its masks (hypothesis): random shapes, masks, dtypes, scales.

Shapes: B batch, H heads, T queries, S keys, Dh head width; a mask is boolean, True = may attend.
Each example draws its sizes (1 to 17 for T and S), a mask pattern (random, padding, causal, rows
that may attend to nothing, all False, none), a dtype and a value scale, then checks what must hold
on both the explicit path and PyTorch's fused kernel. Settings are bounded (and derandomized, so CI
sees the same examples every run): the file runs in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfattention.attention import (
    MultiHeadAttention,
    causal_mask,
    explicit_attention,
    lengths_mask,
    scaled_dot_product_attention,
)

BOUNDED = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], database=None
)
DTYPES = (torch.float32, torch.float64, torch.bfloat16)
# (rows sum to 1, fused vs explicit, padding invariance): bfloat16 keeps 8 bits of mantissa
TOLERANCES = {
    torch.float64: (1e-12, 1e-10, 1e-12),
    torch.float32: (1e-5, 1e-5, 1e-6),
    torch.bfloat16: (2e-2, 5e-2, 2e-2),
}
MASK_KINDS = ("random", "padding", "causal", "empty-rows", "all-false", "all-true", "none")
MODERATE = 3.0  # up to this scale, fused and explicit round to nearly the same weights


@dataclass
class Case:
    q: torch.Tensor  # (B, H, T, Dh)
    k: torch.Tensor  # (B, H, S, Dh)
    v: torch.Tensor  # (B, H, S, Dh)
    mask: torch.Tensor | None  # broadcasts to (B, H, T, S)
    kind: str
    scale: float

    @property
    def full_mask(self) -> torch.Tensor:
        """The mask at the scores' full shape (B, H, T, S); all True when there is none."""
        b, h, t, _ = self.q.shape
        s = self.k.shape[-2]
        if self.mask is None:
            return torch.ones(b, h, t, s, dtype=torch.bool)
        return self.mask.expand(b, h, t, s)


def build_mask(kind: str, b: int, h: int, t: int, s: int, gen: torch.Generator) -> torch.Tensor | None:
    if kind == "none":
        return None
    if kind == "random":
        return torch.rand(b, h, t, s, generator=gen) > torch.rand((), generator=gen)
    if kind == "padding":  # (B, 1, 1, S): each sequence's real length, at least 1
        return lengths_mask(torch.randint(1, s + 1, (b,), generator=gen), s)
    if kind == "causal":  # (T, S), the last T of S positions; needs S >= T
        return causal_mask(t, s)
    if kind == "empty-rows":  # a random mask where some query rows may attend to nothing
        mask = torch.rand(b, h, t, s, generator=gen) > 0.4
        mask[torch.rand(b, h, t, generator=gen) < 0.4] = False
        mask[0, 0, 0] = False
        return mask
    if kind == "all-false":
        return torch.zeros(b, 1, 1, s, dtype=torch.bool)
    return torch.ones(1, 1, t, s, dtype=torch.bool)


@st.composite
def cases(draw: st.DrawFn, dtypes: tuple[torch.dtype, ...] = DTYPES, max_scale: float = 1000.0) -> Case:
    b, h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    t, s = draw(st.integers(1, 17)), draw(st.integers(1, 17))
    kind = draw(st.sampled_from(MASK_KINDS))
    if kind == "causal":
        s = max(s, t)
    dh = draw(st.sampled_from([1, 2, 4, 8, 16]))
    dtype = draw(st.sampled_from(dtypes))
    scale = draw(st.sampled_from([s for s in (0.01, 1.0, MODERATE, 30.0, 1000.0) if s <= max_scale]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    q, k, v = (torch.randn(b, h, n, dh, generator=gen) * scale for n in (t, s, s))
    mask = build_mask(kind, b, h, t, s, gen)
    return Case(q.to(dtype), k.to(dtype), v.to(dtype), mask, kind, scale)


def both_paths(case: Case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(fused output, explicit output, explicit weights)."""
    fused, none = scaled_dot_product_attention(case.q, case.k, case.v, case.mask)
    assert none is None  # no weights asked for: the fused kernel ran
    explicit, weights = explicit_attention(case.q, case.k, case.v, case.mask)
    return fused, explicit, weights


def max_relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1.0)) if a.numel() else 0.0


@given(cases())
@BOUNDED
def test_weights_are_a_distribution_over_allowed_keys_and_zero_elsewhere(case: Case) -> None:
    _, _, weights = both_paths(case)
    mask = case.full_mask
    assert weights.shape == mask.shape
    assert weights.dtype == case.q.dtype
    assert torch.isfinite(weights).all()
    assert (weights >= 0).all()
    assert torch.equal(weights[~mask], torch.zeros_like(weights[~mask])), "a masked key got weight"
    anything = mask.any(dim=-1)  # (B, H, T)
    sums = weights.double().sum(dim=-1)
    tolerance = TOLERANCES[case.q.dtype][0]
    assert torch.allclose(sums[anything], torch.ones_like(sums[anything]), rtol=0, atol=tolerance)
    assert torch.equal(sums[~anything], torch.zeros_like(sums[~anything])), "a row with nothing allowed is not zero"


@given(cases())
@BOUNDED
def test_outputs_are_finite_and_exactly_zero_where_nothing_may_be_attended(case: Case) -> None:
    fused, explicit, _ = both_paths(case)
    nothing = ~case.full_mask.any(dim=-1)  # (B, H, T)
    for output in (fused, explicit):
        assert output.shape == case.q.shape[:-1] + case.v.shape[-1:]
        assert output.dtype == case.q.dtype
        assert torch.isfinite(output).all()
        assert torch.equal(output[nothing], torch.zeros_like(output[nothing]))


@given(cases(max_scale=MODERATE))
@BOUNDED
def test_fused_equals_explicit(case: Case) -> None:
    fused, explicit, _ = both_paths(case)
    error = max_relative(fused, explicit)
    assert error <= TOLERANCES[case.q.dtype][1], f"{case.kind}, {case.q.dtype}: fused vs explicit {error:.2e}"


@given(cases(), st.integers(1, 6), st.floats(-1e3, 1e3))
@BOUNDED
def test_appending_masked_keys_changes_nothing(case: Case, extra: int, fill: float) -> None:
    """Padding: keys that may not be attended, whatever their values, change no output and no weight."""
    b, h, t, dh = case.q.shape
    gen = torch.Generator().manual_seed(extra)
    pad_k = (torch.randn(b, h, extra, dh, generator=gen) * fill).to(case.q.dtype)
    pad_v = (torch.randn(b, h, extra, dh, generator=gen) * fill).to(case.q.dtype)
    padded = Case(
        case.q,
        torch.cat([case.k, pad_k], dim=-2),
        torch.cat([case.v, pad_v], dim=-2),
        torch.cat([case.full_mask, torch.zeros(b, h, t, extra, dtype=torch.bool)], dim=-1),
        case.kind,
        case.scale,
    )
    tolerance = TOLERANCES[case.q.dtype][2]
    fused, explicit, weights = both_paths(case)
    fused_padded, explicit_padded, weights_padded = both_paths(padded)
    assert torch.equal(weights_padded[..., -extra:], torch.zeros_like(weights_padded[..., -extra:]))
    assert max_relative(weights_padded[..., :-extra], weights) <= tolerance
    assert max_relative(explicit_padded, explicit) <= tolerance
    assert max_relative(fused_padded, fused) <= tolerance


@pytest.mark.parametrize("path", ["fused", "explicit"])
@given(case=cases(dtypes=(torch.float32, torch.float64)))
@BOUNDED
def test_gradients_are_finite_and_zero_for_queries_that_attend_to_nothing(path: str, case: Case) -> None:
    q, k, v = (x.clone().requires_grad_(True) for x in (case.q, case.k, case.v))
    attend = scaled_dot_product_attention if path == "fused" else explicit_attention
    output, _ = attend(q, k, v, case.mask)
    gen = torch.Generator().manual_seed(0)
    (output * torch.randn(output.shape, generator=gen, dtype=output.dtype)).sum().backward()
    for name, leaf in (("q", q), ("k", k), ("v", v)):
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all(), name
    nothing = ~case.full_mask.any(dim=-1)
    assert q.grad is not None
    assert torch.equal(q.grad[nothing], torch.zeros_like(q.grad[nothing]))
    # a key that no query may attend gets no gradient either
    unseen = ~case.full_mask.any(dim=-2)  # (B, H, S)
    assert k.grad is not None and v.grad is not None
    assert torch.equal(k.grad[unseen], torch.zeros_like(k.grad[unseen]))
    assert torch.equal(v.grad[unseen], torch.zeros_like(v.grad[unseen]))


# --- MultiHeadAttention --------------------------------------------------------------------------


@st.composite
def module_cases(draw: st.DrawFn) -> tuple[MultiHeadAttention, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """A module, queries (B, T, D), keys and values (B, S, D), key lengths (B,), and a seed."""
    heads, width = draw(st.integers(1, 4)), draw(st.sampled_from([1, 2, 4, 8]))
    b, t, s = draw(st.integers(1, 3)), draw(st.integers(1, 17)), draw(st.integers(1, 17))
    seed = draw(st.integers(0, 2**31 - 1))
    torch.manual_seed(seed)
    module = MultiHeadAttention(heads * width, heads).eval()
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(b, t, heads * width, generator=gen)
    key_value = torch.randn(b, s, heads * width, generator=gen)
    lengths = torch.randint(0, s + 1, (b,), generator=gen)  # 0: a sequence with no real key at all
    return module, query, key_value, lengths, seed


@given(module_cases(), st.integers(1, 5))
@BOUNDED
def test_multi_head_cross_attention_ignores_padding_and_its_two_paths_agree(
    drawn: tuple[MultiHeadAttention, torch.Tensor, torch.Tensor, torch.Tensor, int], extra: int
) -> None:
    module, query, key_value, lengths, seed = drawn
    b, s, d = key_value.shape
    mask = lengths_mask(lengths, s)  # (B, 1, 1, S)
    with torch.no_grad():
        fused, none = module(query, key_value, mask)
        explicit, weights = module(query, key_value, mask, need_weights=True)
        padding = torch.randn(b, extra, d, generator=torch.Generator().manual_seed(seed + 1)) * 100
        padded, padded_weights = module(
            query, torch.cat([key_value, padding], dim=1), lengths_mask(lengths, s + extra), need_weights=True
        )
    assert none is None and weights is not None and padded_weights is not None
    assert weights.shape == (b, module.n_heads, query.shape[1], s)
    for output in (fused, explicit, padded):
        assert torch.isfinite(output).all()
    assert max_relative(fused, explicit) <= 1e-5
    assert max_relative(padded, explicit) <= 1e-5
    assert torch.equal(padded_weights[..., s:], torch.zeros_like(padded_weights[..., s:]))
    sums = weights.sum(dim=-1)  # (B, H, T)
    real = lengths > 0
    assert torch.allclose(sums[real], torch.ones_like(sums[real]), rtol=0, atol=1e-5)
    assert torch.equal(sums[~real], torch.zeros_like(sums[~real]))
    # a sequence with no real key: the heads give zeros, so the output is out_proj's bias alone
    bias = module.out_proj.bias.detach()
    assert torch.equal(fused[~real], bias.expand_as(fused[~real]))


@given(module_cases())
@BOUNDED
def test_multi_head_self_attention_has_finite_gradients_with_empty_rows(
    drawn: tuple[MultiHeadAttention, torch.Tensor, torch.Tensor, torch.Tensor, int],
) -> None:
    module, query, _, lengths, _ = drawn
    t = query.shape[1]
    lengths = lengths.clamp(max=t)
    mask = lengths_mask(lengths, t) & causal_mask(t)  # (B, 1, T, T)
    module.train()
    query = query.clone().requires_grad_(True)
    output, _ = module(query, mask=mask)
    output.square().sum().backward()
    assert query.grad is not None and torch.isfinite(query.grad).all()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
