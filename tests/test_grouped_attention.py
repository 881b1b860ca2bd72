"""Cross-attention with G query rows per key_value row (beam search's hypotheses of one sentence)."""

from __future__ import annotations

import pytest
import torch

from selfattention.attention import KVCache, MultiHeadAttention
from selfattention.attention.masks import padding_mask

B, G, T, S, D, H = 3, 4, 2, 5, 16, 4


@pytest.fixture
def attention() -> MultiHeadAttention:
    torch.manual_seed(0)
    return MultiHeadAttention(D, H).eval()


def inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    query, key_value = torch.randn(B * G, T, D), torch.randn(B, S, D)
    tokens = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 0, 0, 0], [5, 6, 7, 0, 0]])
    return query, key_value, padding_mask(tokens, 0)  # (B, 1, 1, S)


@pytest.mark.parametrize("need_weights", [False, True])
def test_grouped_rows_equal_the_repeated_source(attention: MultiHeadAttention, need_weights: bool) -> None:
    query, key_value, mask = inputs()
    repeated = attention(
        query, key_value.repeat_interleave(G, 0), mask.repeat_interleave(G, 0), need_weights=need_weights
    )
    grouped = attention(query, key_value, mask, need_weights=need_weights)
    torch.testing.assert_close(grouped[0], repeated[0], atol=1e-6, rtol=1e-5)
    if need_weights:
        assert grouped[1] is not None and repeated[1] is not None
        assert grouped[1].shape == (B * G, H, T, S)
        torch.testing.assert_close(grouped[1], repeated[1], atol=1e-6, rtol=1e-5)
        assert float(grouped[1][G : 2 * G, ..., 2:].detach().abs().max()) == 0.0  # sentence 1's padding


def test_the_cache_holds_one_row_per_source(attention: MultiHeadAttention) -> None:
    query, key_value, mask = inputs()
    cache = KVCache()
    first = attention(query, key_value, mask, cache=cache)[0]
    assert cache.key is not None and cache.key.shape == (B, H, S, D // H)
    again = attention(query, key_value, mask, cache=cache)[0]
    torch.testing.assert_close(again, first)


def test_a_batch_that_is_no_multiple_is_refused(attention: MultiHeadAttention) -> None:
    with pytest.raises(ValueError, match=r"query batch \(5\) must be key_value's \(3\) or a multiple of it"):
        attention(torch.randn(5, T, D), torch.randn(3, S, D))


def test_a_mask_per_query_row_is_refused_when_grouped(attention: MultiHeadAttention) -> None:
    query, key_value, mask = inputs()
    with pytest.raises(ValueError, match=r"the mask must have 3 rows \(one per key_value row\) or 1, got 12"):
        attention(query, key_value, mask.repeat_interleave(G, 0))


def test_a_mask_per_query_is_refused_when_grouped(attention: MultiHeadAttention) -> None:
    query, key_value, _ = inputs()
    with pytest.raises(ValueError, match=r"the mask must be per key \(one query row\), got shape \(2, 5\)"):
        attention(query, key_value, torch.ones(T, S, dtype=torch.bool))
