"""Seed 001's worked example, reproduced through the real attention code."""

import math

import pytest
import torch

from selfattention.inspection import explain_head, render_explanation, toy_attention
from selfattention.inspection.toy import TOY_TOKENS


def test_raw_scores_are_the_seeds_matrix():
    step = toy_attention()
    expected = torch.tensor([[1.0, 1.0, 0.0], [2.0, 3.0, 2.0], [2.0, 4.0, 4.0]])
    assert torch.equal(step.scores[0, 0], expected)


def test_scores_are_scaled_by_sqrt_two():
    step = toy_attention()
    assert torch.allclose(step.scaled_scores[0, 0], step.scores[0, 0] / math.sqrt(2.0))


def test_apples_weights_are_a_quarter_half_quarter():
    weights = toy_attention().weights[0, 0]
    apple = weights[1]
    # softmax([2, 3, 2] / sqrt 2): e^(1/sqrt2) = 2.028, so 1 / (2 + 2.028) = 0.2483
    expected_side = 1.0 / (2.0 + math.exp(1.0 / math.sqrt(2.0)))
    assert apple[0].item() == pytest.approx(expected_side, abs=1e-6)
    assert apple[1].item() == pytest.approx(1.0 - 2.0 * expected_side, abs=1e-6)
    assert apple[2].item() == pytest.approx(expected_side, abs=1e-6)
    assert [round(w, 2) for w in apple.tolist()] == [0.25, 0.50, 0.25]
    assert torch.allclose(weights.sum(-1), torch.ones(3))


def test_output_is_weights_times_values():
    step = toy_attention()
    assert torch.allclose(step.output[0, 0], step.weights[0, 0] @ step.v[0, 0])


def test_rendering_names_every_step_with_token_labels():
    text = render_explanation(explain_head(toy_attention(), 0, TOY_TOKENS, has_bias=False))
    assert "Q·Kᵀ" in text
    assert "sqrt(2)" in text
    assert "'Apple' attends to 'love' 24.8 %, to itself 50.3 %, to 'phones' 24.8 %." in text
    header = next(line for line in text.splitlines() if "love" in line and "phones" in line)
    assert header.split() == ["love", "Apple", "phones"]
