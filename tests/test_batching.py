"""Token-budget batches with length bucketing, a per-epoch deterministic order, and collation."""

from __future__ import annotations

import random
import statistics

import pytest
import torch

from selfattention.data.batching import Batch, Example, collate, make_example, token_batches
from selfattention.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


def random_examples(count: int, seed: int = 0, longest: int = 60) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        src = [rng.randrange(4, 100) for _ in range(rng.randint(1, longest - 1))]
        tgt = [rng.randrange(4, 100) for _ in range(rng.randint(1, longest - 1))]
        examples.append(make_example(src, tgt))
    return examples


EXAMPLES = random_examples(600)


def test_example_length_is_the_longer_padded_side() -> None:
    example = make_example([5, 6, 7], [8])
    assert example.src == (5, 6, 7, EOS_ID)
    assert example.tgt == (8,)
    assert example.length == 4  # source with EOS
    assert make_example([5], [8, 9, 10]).length == 4  # BOS + target
    assert make_example([5], []).length == 2


@pytest.mark.parametrize("max_tokens", [60, 200, 1000, 5000])
def test_every_index_exactly_once(max_tokens: int) -> None:
    batches = token_batches(EXAMPLES, max_tokens, seed=1, epoch=0)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(EXAMPLES)))
    assert all(batches), "no empty batch"


@pytest.mark.parametrize("max_tokens", [60, 200, 1000, 5000])
def test_padded_size_within_budget(max_tokens: int) -> None:
    for epoch in range(3):
        for batch in token_batches(EXAMPLES, max_tokens, seed=1, epoch=epoch):
            assert max(EXAMPLES[i].length for i in batch) * len(batch) <= max_tokens
            # ... and so are the tensors actually built from it.
            tensors = collate([EXAMPLES[i] for i in batch])
            width = max(tensors.src.shape[1], tensors.tgt_in.shape[1])
            assert tensors.src.shape[0] * width <= max_tokens


def test_batches_are_filled() -> None:
    # Equal lengths: every batch but possibly one holds exactly max_tokens // length examples.
    examples = [make_example([5] * 9, [6] * 5) for _ in range(103)]  # length 10
    batches = token_batches(examples, 100, seed=0, epoch=0)
    assert sorted(len(b) for b in batches) == [3] + [10] * 10


def test_same_seed_and_epoch_give_same_batches() -> None:
    first = token_batches(EXAMPLES, 500, seed=7, epoch=3)
    assert token_batches(EXAMPLES, 500, seed=7, epoch=3) == first
    assert token_batches(list(EXAMPLES), 500, seed=7, epoch=3) == first


def test_different_epochs_and_seeds_differ() -> None:
    base = token_batches(EXAMPLES, 500, seed=7, epoch=0)
    assert token_batches(EXAMPLES, 500, seed=7, epoch=1) != base
    assert token_batches(EXAMPLES, 500, seed=8, epoch=0) != base
    # Every epoch of a run differs from every other.
    epochs = [tuple(map(tuple, token_batches(EXAMPLES, 500, seed=7, epoch=e))) for e in range(5)]
    assert len(set(epochs)) == 5


def test_ties_are_broken_differently_each_epoch() -> None:
    # With equal lengths only the tie-break decides which examples share a batch; that should
    # change between epochs, not only the order of fixed batches.
    examples = [make_example([5] * 9, [6] * 5) for _ in range(100)]
    groups = [{frozenset(b) for b in token_batches(examples, 100, seed=0, epoch=e)} for e in range(2)]
    assert groups[0] != groups[1]


def test_batches_are_length_bucketed() -> None:
    max_tokens = 600
    batches = token_batches(EXAMPLES, max_tokens, seed=3, epoch=0)
    assert len(batches) > 10

    def spread(batch: list[int]) -> int:
        lengths = [EXAMPLES[i].length for i in batch]
        return max(lengths) - min(lengths)

    bucketed = statistics.mean(spread(b) for b in batches)
    # The same batch sizes filled at random, for comparison.
    shuffled = list(range(len(EXAMPLES)))
    random.Random(0).shuffle(shuffled)
    random_batches, start = [], 0
    for batch in batches:
        random_batches.append(shuffled[start : start + len(batch)])
        start += len(batch)
    at_random = statistics.mean(spread(b) for b in random_batches)
    assert bucketed < 0.2 * at_random, (bucketed, at_random)


def test_padding_fraction_is_small() -> None:
    real = padded = 0
    for batch in token_batches(EXAMPLES, 1000, seed=0, epoch=0):
        lengths = [EXAMPLES[i].length for i in batch]
        real += sum(lengths)
        padded += max(lengths) * len(lengths)
    assert real / padded > 0.9


def test_batch_order_is_shuffled() -> None:
    # Batches are not served shortest first (the sort is only for bucketing).
    batches = token_batches(EXAMPLES, 300, seed=0, epoch=0)
    longest = [max(EXAMPLES[i].length for i in b) for b in batches]
    assert longest != sorted(longest)
    assert longest != sorted(longest, reverse=True)


def test_example_longer_than_budget_raises() -> None:
    examples = [*EXAMPLES[:5], make_example([5] * 120, [6])]
    with pytest.raises(ValueError, match=r"121 tokens.*100 tokens"):
        token_batches(examples, 100, seed=0, epoch=0)


def test_example_exactly_at_budget_fits() -> None:
    examples = [make_example([5] * 99, [6]), make_example([5] * 9, [6])]
    batches = token_batches(examples, 100, seed=0, epoch=0)
    assert sorted(map(sorted, batches)) == [[0], [1]]


@pytest.mark.parametrize("max_tokens", [0, -5])
def test_non_positive_budget_raises(max_tokens: int) -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        token_batches(EXAMPLES, max_tokens, seed=0, epoch=0)


def test_no_examples_no_batches() -> None:
    assert token_batches([], 100, seed=0, epoch=0) == []


# --- collate ------------------------------------------------------------------------------


def test_collate_layout() -> None:
    batch = collate([make_example([5, 6, 7], [8, 9]), make_example([5], [8, 9, 10, 11])])
    assert batch.src.tolist() == [[5, 6, 7, EOS_ID], [5, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.tgt_in.tolist() == [[BOS_ID, 8, 9, PAD_ID, PAD_ID], [BOS_ID, 8, 9, 10, 11]]
    assert batch.tgt_out.tolist() == [[8, 9, EOS_ID, PAD_ID, PAD_ID], [8, 9, 10, 11, EOS_ID]]
    assert batch.target_tokens == 3 + 5


def test_collate_invariants_on_random_examples() -> None:
    examples = EXAMPLES[:50]
    batch = collate(examples)
    longest_src = max(len(e.src) for e in examples)
    longest_tgt = max(len(e.tgt) for e in examples)
    assert batch.src.shape == (50, longest_src)
    assert batch.tgt_in.shape == batch.tgt_out.shape == (50, longest_tgt + 1)
    for tensor in (batch.src, batch.tgt_in, batch.tgt_out):
        assert tensor.dtype == torch.long
    for row, example in enumerate(examples):
        n, m = len(example.src), len(example.tgt)
        assert batch.src[row, n - 1] == EOS_ID  # source ends with EOS before the padding
        assert batch.src[row, :n].tolist() == list(example.src)
        assert (batch.src[row, n:] == PAD_ID).all()
        assert batch.tgt_in[row, 0] == BOS_ID
        assert batch.tgt_in[row, 1 : m + 1].tolist() == list(example.tgt)
        assert (batch.tgt_in[row, m + 1 :] == PAD_ID).all()
        assert batch.tgt_out[row, :m].tolist() == list(example.tgt)
        assert batch.tgt_out[row, m] == EOS_ID
        assert (batch.tgt_out[row, m + 1 :] == PAD_ID).all()
        # Teacher forcing: the input is the output shifted right by one.
        assert batch.tgt_in[row, 1 : m + 1].tolist() == batch.tgt_out[row, :m].tolist()
    assert batch.target_tokens == sum(len(e.tgt) + 1 for e in examples)


def test_target_tokens_counts_non_pad_targets() -> None:
    batch = Batch(
        src=torch.tensor([[5, 2]]),
        tgt_in=torch.tensor([[1, 7, 0, 0], [1, 7, 8, 9]]),
        tgt_out=torch.tensor([[7, 2, 0, 0], [7, 8, 9, 2]]),
    )
    assert batch.target_tokens == 6
    assert isinstance(batch.target_tokens, int)


def test_batch_to_device_keeps_values() -> None:
    batch = collate([make_example([5, 6], [7]), make_example([5], [7, 8])])
    moved = batch.to("cpu")
    assert isinstance(moved, Batch)
    for name in ("src", "tgt_in", "tgt_out"):
        assert torch.equal(getattr(moved, name), getattr(batch, name))


def test_collate_gathers_links_and_marks_rows_without_one() -> None:
    examples = [
        make_example([5, 6, 7, 8], [9], link=(3, (1,))),
        make_example([5, 6], [9, 10]),
        make_example([5, 6, 7], [9], link=(2, (0, 1))),
    ]
    batch = collate(examples)
    assert batch.link_query is not None and batch.link_keys is not None
    assert batch.link_query.dtype == torch.long and batch.link_keys.dtype == torch.bool
    assert batch.link_query.tolist() == [3, -1, 2]
    assert batch.link_keys.shape == batch.src.shape
    assert [row.nonzero().flatten().tolist() for row in batch.link_keys] == [[1], [], [0, 1]]
    assert batch.links == 2
    moved = batch.to("cpu")
    assert moved.link_query is not None and moved.link_keys is not None
    assert torch.equal(moved.link_query, batch.link_query) and torch.equal(moved.link_keys, batch.link_keys)
    # the rest of the batch is what it is without links
    plain = collate([Example(e.src, e.tgt) for e in examples])
    for name in ("src", "tgt_in", "tgt_out"):
        assert torch.equal(getattr(batch, name), getattr(plain, name))


def test_a_batch_without_links_has_no_link_tensors() -> None:
    batch = collate([make_example([5, 6], [7]), make_example([5], [7, 8])])
    assert batch.link_query is None and batch.link_keys is None and batch.links == 0
    assert batch.to("cpu").link_query is None
    assert make_example([5], [6]) == Example((5, EOS_ID), (6,))  # unlinked examples are as they were


def test_linked_examples_go_through_length_batching_like_the_others() -> None:
    rng = random.Random(3)
    examples = [
        make_example([5] * rng.randint(2, 20), [6] * rng.randint(1, 20), link=(1, (0,)) if i % 3 == 0 else None)
        for i in range(60)
    ]
    seen = []
    for indices in token_batches(examples, 64, seed=1, epoch=0):
        batch = collate([examples[i] for i in indices])
        seen += [i for row, i in enumerate(indices) if batch.link_query is not None and batch.link_query[row] >= 0]
    assert sorted(seen) == [i for i in range(60) if i % 3 == 0]
