"""The chunked explicit path: the explicit recipe over blocks of query rows gives the explicit path's results."""

from __future__ import annotations

import pytest
import torch

from conftest import rel_err
from selfattention.attention import causal_mask, chunked_attention, explicit_attention, lengths_mask
from selfattention.attention.core import CHUNK_SIZE, scaled_dot_product_attention

TOLERANCE = 1e-6


def _qkv(seed: int, batch: int = 2, heads: int = 3, t: int = 37, s: int = 41, dh: int = 8, grad: bool = False):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, n, dh, generator=gen) for n in (t, s, s))
    if grad:
        for leaf in (q, k, v):
            leaf.requires_grad_(True)
    return q, k, v


def _masks(t: int, s: int) -> dict[str, torch.Tensor | None]:
    gen = torch.Generator().manual_seed(11)
    random = torch.rand(2, 3, t, s, generator=gen) > 0.6
    random[0, 1, 4] = False  # rows that may attend to nothing, in more than one block
    random[1, 2, t - 1] = False
    return {
        "none": None,
        "random (B, H, T, S)": random,
        "padding (B, 1, 1, S)": lengths_mask(torch.tensor([s, s // 3]), s),
        "causal (T, S)": causal_mask(t, s),
        "random (T, S), 2-d": random[0, 0],
    }


@pytest.mark.parametrize("chunk_size", [1, 5, 16, 36, 37, 100])
@pytest.mark.parametrize("mask_name", list(_masks(37, 41)))
def test_chunked_equals_explicit_outputs_and_weights(chunk_size, mask_name):
    q, k, v = _qkv(0)
    mask = _masks(37, 41)[mask_name]
    expected_out, expected_weights = explicit_attention(q, k, v, mask)
    out, weights = chunked_attention(q, k, v, mask, chunk_size=chunk_size)
    assert weights is not None
    assert out.shape == expected_out.shape and weights.shape == expected_weights.shape
    assert rel_err(out, expected_out) <= TOLERANCE
    assert rel_err(weights, expected_weights) <= TOLERANCE


def test_rows_that_may_attend_to_nothing_are_zero_and_finite():
    q, k, v = _qkv(1)
    mask = _masks(37, 41)["random (B, H, T, S)"]
    empty = ~mask.any(dim=-1)  # (B, H, T)
    assert empty[0, 1, 4] and empty[1, 2, 36]
    out, weights = chunked_attention(q, k, v, mask, chunk_size=8)
    assert weights is not None
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert torch.equal(out[empty], torch.zeros_like(out[empty]))
    assert torch.equal(weights[empty], torch.zeros_like(weights[empty]))
    assert out[~empty].abs().sum() > 0


def test_without_weights_returns_none_and_the_same_output():
    q, k, v = _qkv(2)
    mask = causal_mask(37, 41)
    out, weights = chunked_attention(q, k, v, mask, chunk_size=10, need_weights=False)
    assert weights is None
    assert rel_err(out, explicit_attention(q, k, v, mask)[0]) <= TOLERANCE


def test_zero_dropout_changes_nothing():
    q, k, v = _qkv(3)
    out, _ = chunked_attention(q, k, v, chunk_size=10, dropout_p=0.0)
    assert rel_err(out, explicit_attention(q, k, v)[0]) <= TOLERANCE


@pytest.mark.parametrize("mask_name", ["none", "random (B, H, T, S)", "causal (T, S)"])
def test_gradients_equal_the_explicit_paths(mask_name):
    mask = _masks(37, 41)[mask_name]
    grads = {}
    for path in ("explicit", "chunked"):
        q, k, v = _qkv(4, grad=True)
        if path == "explicit":
            out, weights = explicit_attention(q, k, v, mask)
        else:
            out, weights = chunked_attention(q, k, v, mask, chunk_size=7)
        assert weights is not None
        gen = torch.Generator().manual_seed(5)
        loss = (out * torch.randn(out.shape, generator=gen)).sum() + (
            weights * torch.randn(weights.shape, generator=gen)
        ).sum()
        loss.backward()
        grads[path] = (q.grad, k.grad, v.grad)
    for name, chunked, explicit in zip("qkv", grads["chunked"], grads["explicit"], strict=True):
        assert chunked is not None and explicit is not None
        assert torch.isfinite(chunked).all(), name
        assert rel_err(chunked, explicit) <= 1e-5, name


class StepRecorder:
    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self.steps: dict[str, torch.Tensor] = {}

    def at(self, name: str) -> StepRecorder:
        return self

    def wants(self, step: str) -> bool:
        return step in self.wanted

    def record(self, step: str, value: torch.Tensor) -> None:
        assert step not in self.steps, f"step {step!r} recorded twice"
        self.steps[step] = value.detach().clone()


def test_a_recorder_gets_each_wanted_step_once_whole_as_from_the_explicit_path():
    q, k, v = _qkv(6)
    mask = causal_mask(37, 41)
    everything = StepRecorder({"scores", "scaled_scores", "weights", "output"})
    explicit_attention(q, k, v, mask, recorder=everything)
    some = StepRecorder({"weights", "output"})
    chunked_attention(q, k, v, mask, chunk_size=6, recorder=some)
    assert set(some.steps) == {"weights", "output"}
    for step, value in some.steps.items():
        assert value.shape == everything.steps[step].shape
        assert rel_err(value, everything.steps[step]) <= TOLERANCE, step


def test_a_length_within_one_block_is_the_explicit_path_exactly():
    q, k, v = _qkv(7)
    mask = causal_mask(37, 41)
    out, weights = chunked_attention(q, k, v, mask)  # 37 rows < CHUNK_SIZE
    expected_out, expected_weights = explicit_attention(q, k, v, mask)
    assert CHUNK_SIZE >= 37
    assert torch.equal(out, expected_out) and weights is not None and torch.equal(weights, expected_weights)


def test_a_recorder_wanting_no_step_takes_the_fused_path():
    q, k, v = _qkv(8)
    nothing = StepRecorder(set())
    out, weights = scaled_dot_product_attention(q, k, v, recorder=nothing)
    assert weights is None and nothing.steps == {}
    assert rel_err(out, explicit_attention(q, k, v)[0]) <= 1e-5


def test_long_queries_take_the_chunked_path_when_weights_are_asked_for():
    q, k, v = _qkv(9, batch=1, heads=1, t=CHUNK_SIZE + 3, s=9, dh=4)
    out, weights = scaled_dot_product_attention(q, k, v, need_weights=True)
    expected_out, expected_weights = explicit_attention(q, k, v)
    assert weights is not None
    assert rel_err(out, expected_out) <= TOLERANCE and rel_err(weights, expected_weights) <= TOLERANCE


def test_a_chunk_size_below_one_is_refused():
    q, k, v = _qkv(10)
    with pytest.raises(ValueError, match="chunk_size must be at least 1, got 0"):
        chunked_attention(q, k, v, chunk_size=0)
