"""The engine's C kernel for a decoding step's attention: PyTorch's result and its limits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import needs_kernels
from selfattention.attention import scaled_dot_product_attention
from selfattention.engine import SWITCH, few_queries

pytestmark = pytest.mark.usefixtures("fresh_engine")


def operands(
    batch: int, heads: int, queries: int, keys: int, width: int = 64, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """q, k, v laid out as a decoding step has them: views of (B, L, H, Dh) projections."""
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, queries, heads, width, generator=generator).transpose(1, 2)
    k = torch.randn(batch, keys, heads, width, generator=generator).transpose(1, 2)
    v = torch.randn(batch, heads, keys, width, generator=generator)  # a contiguous cache
    return q, k, v


@needs_kernels
def test_the_kernel_loads_where_the_engine_library_is_built() -> None:
    assert few_queries.available()


@needs_kernels
@pytest.mark.parametrize(
    ("batch", "heads", "queries", "keys", "width"),
    [
        (32, 4, 1, 20, 64),
        (8, 4, 4, 33, 64),
        (1, 4, 1, 1, 64),
        (3, 2, 16, 300, 64),
        (2, 3, 2, 7, 20),
        (5, 1, 1, 9, 8),
        (2, 2, 3, 17, 128),
        (4, 2, 1, 5, 32),
        (2, 1, 1, 3, 144),
    ],
)
@pytest.mark.parametrize("mask_rows", [None, "per row", "shared"])
def test_the_kernel_computes_pytorchs_attention(
    batch: int, heads: int, queries: int, keys: int, width: int, mask_rows: str | None
) -> None:
    q, k, v = operands(batch, heads, queries, keys, width)
    mask = None
    if mask_rows is not None:
        mask = (
            torch.rand(batch if mask_rows == "per row" else 1, 1, 1, keys, generator=torch.Generator().manual_seed(1))
            > 0.4
        )
        mask[..., 0] = True
    assert few_queries.applies(q, k, v, mask, 0.0)
    got = few_queries.attend(q, k, v, mask)
    reference = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask)
    assert got.shape == (batch, heads, queries, width)
    torch.testing.assert_close(got.double(), reference, rtol=1e-5, atol=1e-5)
    assert got.transpose(1, 2).is_contiguous()  # the heads come out merged: (B, T, H, Dh)


@needs_kernels
def test_a_query_that_may_attend_to_nothing_gets_zeros_as_on_the_other_paths() -> None:
    q, k, v = operands(3, 2, 1, 5)
    mask = torch.ones(3, 1, 1, 5, dtype=torch.bool)
    mask[1] = False
    got = few_queries.attend(q, k, v, mask)
    assert torch.isfinite(got).all()
    assert (got[1] == 0).all()
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~mask.any(-1, keepdim=True))
    torch.testing.assert_close(got[[0, 2]], fused[[0, 2]], rtol=1e-5, atol=1e-5)


@needs_kernels
@pytest.mark.parametrize("mask", [None, "padding"])
def test_the_reference_attention_runs_pytorchs_kernel_for_a_decoding_step_too(mask: str | None) -> None:
    """``attention/core.py`` is the recipe and PyTorch's fused kernel: the engine's kernel is the C step's alone."""
    q, k, v = operands(4, 2, 1, 6)
    keys = None if mask is None else torch.tensor([True] * 5 + [False]).expand(4, 1, 1, 6)
    assert few_queries.applies(q, k, v, keys, 0.0)  # the kernel would take this call
    output, weights = scaled_dot_product_attention(q, k, v, keys)
    assert weights is None
    assert torch.equal(output, F.scaled_dot_product_attention(q, k, v, attn_mask=keys))


@needs_kernels
def test_what_the_kernel_does_not_take_is_left_to_pytorch() -> None:
    q, k, v = operands(2, 2, 1, 6)
    assert not few_queries.applies(q, k, v, None, 0.1)  # dropout
    assert not few_queries.applies(q.double(), k.double(), v.double(), None, 0.0)
    many = operands(2, 2, few_queries.MAX_QUERIES + 1, 6)
    assert not few_queries.applies(*many, None, 0.0)
    causal = torch.ones(2, 1, 2, 6, dtype=torch.bool)  # a mask per query row, not per key
    assert not few_queries.applies(*operands(2, 2, 2, 6), causal, 0.0)
    assert not few_queries.applies(q[0], k[0], v[0], None, 0.0)  # not (B, H, T, Dh)
    assert not few_queries.applies(q, k, torch.randn(2, 2, 6, 128)[..., ::2], None, 0.0)  # a strided head width
    learning = q.clone().requires_grad_()
    assert not few_queries.applies(learning, k, v, None, 0.0)
    with torch.no_grad():
        assert few_queries.applies(learning, k, v, None, 0.0)


def test_the_switch_turns_the_kernel_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, "0")
    assert not few_queries.available()
    q, k, v = operands(2, 2, 1, 6)
    assert not few_queries.applies(q, k, v, None, 0.0)


@needs_kernels
def test_scores_far_apart_give_a_softmax_without_overflow() -> None:
    """Scores hundreds apart: the exponentials of the largest minus each stay finite (one weight near 1)."""
    q, k, v = operands(4, 2, 2, 40)
    q = q * 40.0
    got = few_queries.attend(q, k, v, None)
    reference = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), reference, rtol=1e-5, atol=1e-5)
