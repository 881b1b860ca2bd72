"""Greedy and beam search on the C model in numpy (engine/c_search.py), held to selfattention.search's tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import needs_kernels
from selfattention.decoding import DecodingConfig, Translator
from selfattention.decoding.translator import start_step
from selfattention.engine import c_search
from selfattention.engine.c_step import CStep
from selfattention.search import SearchLimits, beam_search, greedy_search
from test_c_model import VARIANTS, c_model_of, model_of

pytestmark = [needs_kernels, pytest.mark.usefixtures("fresh_engine")]


def sources(batch: int = 6, length: int = 8, seed: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(3, 53, (batch, length), generator=generator)
    src[1, length - 3 :] = 0
    src[-1, 2:] = 0
    src[:, -1] = torch.where(src[:, -1] == 0, 0, 2)  # each sentence ends in EOS, as collate gives it
    return src


def limits_of(src: torch.Tensor, limits: SearchLimits) -> np.ndarray:
    return c_search.max_lengths(src.numpy(), 0, limits.max_len_a, limits.max_len_b, limits.hard_limit)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_greedy_gives_the_tokens_of_greedy_search(variant: str) -> None:
    model = model_of(**VARIANTS[variant])
    src, limits = sources(), SearchLimits(1.5, 4)
    expected = greedy_search(model, src, 1, 2, limits, start_step=start_step)
    assert c_search.greedy(c_model_of(model), src.numpy(), 1, 2, limits_of(src, limits)) == expected
    assert any(len(tokens) > 2 for tokens in expected)  # not a search that stops at once


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(("beam", "penalty"), [(1, 1.0), (3, 0.6), (5, 1.0)])
def test_beam_gives_the_tokens_of_beam_search(variant: str, beam: int, penalty: float) -> None:
    model = model_of(**VARIANTS[variant])
    src, limits = sources(), SearchLimits(1.2, 3)
    expected = beam_search(model, src, 1, 2, beam, penalty, limits, start_step=start_step)
    found = c_search.beam(c_model_of(model), src.numpy(), 1, 2, beam, penalty, limits_of(src, limits))
    assert found == expected


def test_a_vocabulary_smaller_than_twice_the_beam_is_searched_alike() -> None:
    model = model_of(vocab_size=9)
    src = torch.tensor([[3, 4, 5, 2], [6, 2, 0, 0]])
    limits = SearchLimits(1.0, 2)
    expected = beam_search(model, src, 1, 2, 6, 1.0, limits, start_step=start_step)
    assert c_search.beam(c_model_of(model), src.numpy(), 1, 2, 6, 1.0, limits_of(src, limits)) == expected


def test_the_limits_are_search_limits() -> None:
    src = sources()
    for a, b in ((1.5, 10), (1.2, 3), (0.0, 1)):
        limits = SearchLimits(a, b, hard_limit=12)
        assert limits_of(src, limits).tolist() == limits.for_sources(src, 0).tolist()


def test_the_bundled_model_translates_the_same_without_pytorchs_search() -> None:
    from selfattention.cli.common import resolve_model

    translator = Translator.load(resolve_model(None))
    texts = ["A dog ate the food because it was hungry.", "I love apple juice.", "Two men are playing chess in a park."]
    ids = [translator.tokenizer.encode(t) for t in texts]
    c_model = c_model_of(translator.model)
    src = torch.nn.utils.rnn.pad_sequence([torch.tensor([*i, 2]) for i in ids], batch_first=True).numpy()
    for beam in (1, 4):
        expected = translator.translate_ids(ids, DecodingConfig(beam_size=beam))
        limits = c_search.max_lengths(src, 0, 1.5, 10, translator.max_source_length)
        if beam == 1:
            found = c_search.greedy(c_model, src, 1, 2, limits)
        else:
            found = c_search.beam(c_model, src, 1, 2, beam, 1.0, limits)
        assert found == expected


def test_a_step_refuses_what_the_c_step_refuses() -> None:
    c_model = c_model_of(model_of())
    memory, mask = c_model.encode(sources().numpy())
    step = CStep(c_model, memory, mask, 6, 2)
    with pytest.raises(ValueError, match="rows do not match"):
        step.logits(np.array([1, 1]))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 53\)"):
        step.logits(np.array([1, 1, 1, 1, 1, 99]))
    with pytest.raises(ValueError, match=r"banned and end ids must lie in \[0, 53\), got \[\] and 99"):
        step.best_tokens(np.ones(6, dtype=np.int64), 2, (), 99)
    with pytest.raises(ValueError, match=r"k must lie in \[1, 51\]"):
        step.best_tokens(np.ones(6, dtype=np.int64), 0, (0, 1), 2)
    step.logits(np.ones(6, dtype=np.int64))
    step.logits(np.ones(6, dtype=np.int64))
    with pytest.raises(ValueError, match="ran past the 2 steps"):
        step.logits(np.ones(6, dtype=np.int64))
    with pytest.raises(IndexError, match=r"cache rows must lie in \[0, 6\)"):
        step.keep_targets(np.array([0, 7]))
