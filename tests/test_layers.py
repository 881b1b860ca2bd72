"""Embeddings, positions and the feed-forward sublayer, against the paper's formulas."""

import math

import pytest
import torch

from selfattention.layers import Embeddings, FeedForward, LearnedPositions, SinusoidalPositions, sinusoidal_table


def test_sinusoid_matches_section_3_5():
    table = sinusoidal_table(50, 16)
    for pos in (0, 1, 7, 49):
        for i in range(8):
            angle = pos / 10000 ** (2 * i / 16)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)


def test_sinusoidal_positions_extend_past_the_table():
    positions = SinusoidalPositions(8, max_positions=4)
    assert torch.allclose(positions(3, offset=5), sinusoidal_table(8, 8)[5:8])


def test_embeddings_are_scaled_by_sqrt_d_model_then_positioned():
    torch.manual_seed(0)
    d_model = 16
    embed = Embeddings(30, d_model, SinusoidalPositions(d_model, 20), dropout=0.0, pad_id=0)
    tokens = torch.tensor([[4, 5, 6]])
    expected = embed.token(tokens) * math.sqrt(d_model) + sinusoidal_table(3, d_model)[None]
    assert torch.allclose(embed(tokens), expected, atol=1e-6)
    shifted = embed.token(tokens) * math.sqrt(d_model) + sinusoidal_table(5, d_model)[None, 2:5]
    assert torch.allclose(embed(tokens, offset=2), shifted, atol=1e-6)


def test_token_ids_outside_the_vocabulary_are_refused():
    embed = Embeddings(10, 8, SinusoidalPositions(8, 20), dropout=0.0, pad_id=0)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 10\)"):
        embed(torch.tensor([[3, 10]]))


def test_learned_positions_refuse_inputs_longer_than_learned():
    with pytest.raises(ValueError, match="longer than the 4 learned positions"):
        LearnedPositions(8, 4)(5)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_feed_forward_is_two_linear_maps_around_the_activation(activation):
    torch.manual_seed(0)
    ff = FeedForward(8, 32, dropout=0.0, activation=activation)
    x = torch.randn(2, 3, 8)
    act = torch.relu if activation == "relu" else torch.nn.functional.gelu
    expected = ff.down_proj(act(ff.up_proj(x)))
    assert torch.allclose(ff(x), expected)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        FeedForward(8, 16, activation="tanh")
