"""engine.top_k: torch.topk's values and indices, through the chunk maxima."""

from __future__ import annotations

import pytest
import torch

from selfattention.engine import top_k as top_k_module
from selfattention.engine.top_k import CHUNK, top_k


@pytest.mark.parametrize("width", [8000, 8000 + 17, CHUNK * 17 - 1])
@pytest.mark.parametrize("k", [1, 2, 8])
def test_the_values_and_indices_are_topks(width: int, k: int) -> None:
    torch.manual_seed(width + k)
    x = torch.randn(37, width)
    assert width // CHUNK > k  # the chunked path, not the fallback to torch.topk
    values, indices = top_k(x, k)
    expected = x.topk(k, dim=-1)
    assert torch.equal(values, expected.values)
    assert torch.equal(indices, expected.indices)


def test_the_best_values_crowded_into_one_chunk_are_all_found() -> None:
    x = torch.randn(4, 1000)
    x[:, 130:138] += 100.0  # the 8 best of every row sit in one chunk
    values, indices = top_k(x, 8)
    assert torch.equal(values, x.topk(8, dim=-1).values)
    assert sorted(indices[0].tolist()) == list(range(130, 138))


def test_rows_with_few_finite_values() -> None:
    """Banned tokens (-inf) tie; the values are still topk's and each index points at its value."""
    x = torch.full((3, 700), -torch.inf)
    x[0, 5] = 1.0
    x[1, [3, 650, 699]] = torch.tensor([0.5, 2.0, -1.0])
    values, indices = top_k(x, 8)
    assert torch.equal(values, x.topk(8, dim=-1).values)
    assert torch.equal(x.gather(1, indices), values)
    assert indices[1, :3].tolist() == [650, 3, 699]


def test_a_smaller_chunk_gives_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(6, 300)
    expected = top_k(x, 4)
    monkeypatch.setattr(top_k_module, "CHUNK", 7)
    values, indices = top_k(x, 4)
    assert torch.equal(values, expected[0]) and torch.equal(indices, expected[1])


def test_one_is_the_argmax() -> None:
    """The C step gives greedy search ``top_k(logits, 1)`` where the PyTorch step gives ``argmax``."""
    torch.manual_seed(3)
    x = torch.randn(32, 8000)
    assert torch.equal(top_k(x, 1)[1][:, 0], x.argmax(dim=-1))


def test_rows_of_ties_never_point_past_the_row() -> None:
    """A row with fewer finite values than k and a partial last chunk: every index is a real column."""
    x = torch.full((2, 8000 + 17), -torch.inf)
    x[0, 8010] = 1.0  # in the partial chunk
    x[1, 64] = 2.0
    values, indices = top_k(x, 8)
    assert int(indices.max()) < x.shape[1]
    assert indices[0, 0] == 8010 and indices[1, 0] == 64
    assert torch.equal(x.gather(1, indices), values)
