"""Invariances of the whole model: padding, causality, cached decoding, beam reordering, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from selfattention.config import ModelConfig
from selfattention.model import Transformer, build_model

VOCAB, PAD = 29, 0
ATOL = 1e-5


def make_model(norm: str = "post", seed: int = 0, dropout: float = 0.0, tie: bool = True) -> Transformer:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=VOCAB,
        d_model=32,
        n_heads=4,
        d_ff=64,
        encoder_layers=2,
        decoder_layers=2,
        dropout=dropout,
        norm=norm,
        tie_embeddings=tie,
        pad_id=PAD,
    )
    return build_model(config).eval()


def tokens(*shape: int, seed: int) -> torch.Tensor:
    """Random real (non-pad) token ids."""
    return torch.randint(3, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


def pad_to(row: torch.Tensor, length: int) -> torch.Tensor:
    return F.pad(row, (0, length - row.shape[-1]), value=PAD)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# --- padding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_extra_source_padding_changes_nothing(norm):
    model = make_model(norm)
    src, tgt = tokens(1, 6, seed=1), tokens(1, 5, seed=2)
    padded = pad_to(src, 10)
    with torch.no_grad():
        memory = model.encode(src)
        padded_memory = model.encode(padded)
        logits = model(src, tgt)
        padded_logits = model(padded, tgt)
    assert max_diff(padded_memory[:, :6], memory) <= ATOL
    assert max_diff(padded_logits, logits) <= ATOL
    assert torch.isfinite(padded_memory).all()


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_batching_with_longer_batch_mates_changes_nothing(norm):
    model = make_model(norm, seed=1)
    src, tgt = tokens(1, 4, seed=3), tokens(1, 3, seed=4)
    batch_src = torch.cat([pad_to(tokens(1, 9, seed=5), 9), pad_to(src, 9), pad_to(tokens(1, 7, seed=6), 9)])
    batch_tgt = torch.cat([pad_to(tokens(1, 8, seed=7), 8), pad_to(tgt, 8), pad_to(tokens(1, 6, seed=8), 8)])
    with torch.no_grad():
        memory = model.encode(src)
        logits = model(src, tgt)
        batch_memory = model.encode(batch_src)
        batch_logits = model(batch_src, batch_tgt)
    assert max_diff(batch_memory[1, :4], memory[0]) <= ATOL
    assert max_diff(batch_logits[1, :3], logits[0]) <= ATOL
    # and the batch-mates really are different sentences, so the comparison is not vacuous
    assert max_diff(batch_logits[0, :3], logits[0]) > 1e-3


def test_source_padding_actually_matters_without_the_mask():
    """Sanity check: if pad tokens were attended to, the encoder output would change."""
    model = make_model()
    src = tokens(1, 6, seed=9)
    padded = pad_to(src, 10)
    with torch.no_grad():
        memory = model.encode(src)
        unmasked = model.encoder(model.src_embed(padded), None)
    assert max_diff(unmasked[:, :6], memory) > 1e-3


# --- causality -------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["post", "pre"])
@pytest.mark.parametrize("changed", [0, 3, 6])
def test_future_target_tokens_do_not_change_earlier_logits(norm, changed):
    model = make_model(norm, seed=2)
    src, tgt = tokens(2, 6, seed=10), tokens(2, 7, seed=11)
    other = tgt.clone()
    other[:, changed] = (other[:, changed] - 3 + 5) % (VOCAB - 3) + 3  # a different real token
    assert not torch.equal(other, tgt)
    with torch.no_grad():
        logits = model(src, tgt)
        other_logits = model(src, other)
    assert torch.allclose(other_logits[:, :changed], logits[:, :changed], atol=1e-6, rtol=0)
    assert max_diff(other_logits[:, changed:], logits[:, changed:]) > 1e-4  # the change is seen from there on


# --- cached incremental decoding -------------------------------------------------------------


def decode_in_chunks(model: Transformer, tgt, memory, memory_mask, chunk: int) -> torch.Tensor:
    state = model.start_state()
    pieces = []
    for start in range(0, tgt.shape[1], chunk):
        pieces.append(model.decode(tgt[:, start : start + chunk], memory, memory_mask, state=state))
        assert state.position == min(start + chunk, tgt.shape[1])
    return torch.cat(pieces, dim=1)


@pytest.mark.parametrize("chunk", [1, 2])
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_cached_decoding_matches_full_decoding(norm, chunk):
    model = make_model(norm, seed=3)
    src = torch.stack([pad_to(tokens(8, seed=12), 8), pad_to(tokens(5, seed=13), 8)])
    tgt = tokens(2, 7, seed=14)  # odd length: the last chunk of 2 is a single token
    with torch.no_grad():
        memory = model.encode(src)
        memory_mask = model.source_mask(src)
        full = model.decode(tgt, memory, memory_mask)
        cached = decode_in_chunks(model, tgt, memory, memory_mask, chunk)
    assert cached.shape == full.shape == (2, 7, VOCAB)
    assert max_diff(cached, full) <= ATOL, f"{norm}-LN, chunks of {chunk}: max difference {max_diff(cached, full):.3e}"


def test_reorder_keeps_the_right_rows():
    model = make_model("pre", seed=4)
    src = torch.stack([pad_to(tokens(6, seed=15), 7), pad_to(tokens(7, seed=16), 7), pad_to(tokens(3, seed=17), 7)])
    prefix = tokens(3, 3, seed=18)
    continuation = tokens(3, 4, seed=19)  # a different continuation for every surviving row
    index = torch.tensor([2, 0, 0])
    with torch.no_grad():
        memory = model.encode(src)
        memory_mask = model.source_mask(src)
        state = model.start_state()
        model.decode(prefix, memory, memory_mask, state=state)
        state.reorder(index)
        continued = torch.cat(
            [
                model.decode(continuation[:, i : i + 1], memory[index], memory_mask[index], state=state)
                for i in range(continuation.shape[1])
            ],
            dim=1,
        )
        for row, source_row in enumerate(index.tolist()):
            one_src = src[source_row : source_row + 1]
            one_tgt = torch.cat([prefix[source_row], continuation[row]])[None]
            expected = model(one_src, one_tgt)[0, prefix.shape[1] :]
            assert max_diff(continued[row], expected) <= ATOL, f"row {row} (from {source_row})"
    # rows 1 and 2 share a history but not a continuation, so they must differ
    assert max_diff(continued[1], continued[2]) > 1e-4


# --- gradients -------------------------------------------------------------------------------


def training_loss(model: Transformer, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    logits = model(src, tgt[:, :-1])
    assert torch.isfinite(logits).all()
    return F.cross_entropy(logits.reshape(-1, VOCAB), tgt[:, 1:].reshape(-1), ignore_index=PAD)


def assert_finite_gradients(model: Transformer) -> None:
    grads = {name: p.grad for name, p in model.named_parameters()}
    missing = [name for name, grad in grads.items() if grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    bad = [name for name, grad in grads.items() if not torch.isfinite(grad).all()]
    assert not bad, f"non-finite gradients in {bad}"
    assert sum(float(grad.abs().sum()) for grad in grads.values()) > 0


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_training_step_with_padding_has_finite_gradients(norm):
    model = make_model(norm, seed=5, dropout=0.1, tie=False).train()
    src = torch.stack([pad_to(tokens(9, seed=20), 9), pad_to(tokens(2, seed=21), 9), pad_to(tokens(5, seed=22), 9)])
    tgt = torch.stack([pad_to(tokens(7, seed=23), 7), pad_to(tokens(3, seed=24), 7), pad_to(tokens(5, seed=25), 7)])
    loss = training_loss(model, src, tgt)
    assert torch.isfinite(loss)
    loss.backward()
    assert_finite_gradients(model)
    assert torch.equal(model.src_embed.token.weight.grad[PAD], torch.zeros(32))  # padding_idx gets no gradient


def test_all_padding_source_row_gives_finite_values_and_gradients():
    """A source row made only of padding: every attention row over it is empty, yet nothing is NaN."""
    model = make_model("post", seed=6).train()
    src = torch.stack([tokens(5, seed=26), torch.full((5,), PAD)])
    tgt = tokens(2, 4, seed=27)
    with torch.no_grad():
        memory = model.encode(src)
    assert torch.isfinite(memory).all()
    loss = training_loss(model, src, tgt)
    assert torch.isfinite(loss)
    loss.backward()
    assert_finite_gradients(model)


def test_reorder_can_leave_either_side_alone():
    model = make_model("pre", seed=4)
    src = torch.stack([pad_to(tokens(6, seed=15), 7), pad_to(tokens(7, seed=16), 7)])
    with torch.no_grad():
        memory = model.encode(src)
        state = model.start_state()
        model.decode(tokens(2, 2, seed=18), memory, model.source_mask(src), state=state)
    self_keys = [c.key.clone() for c in state.self_caches]
    cross_keys = [c.key.clone() for c in state.cross_caches]
    swap = torch.tensor([1, 0])
    state.reorder(swap, sources=False)  # beam search: hypotheses move within one sentence
    assert all(torch.equal(c.key, k[swap]) for c, k in zip(state.self_caches, self_keys, strict=True))
    assert all(torch.equal(c.key, k) for c, k in zip(state.cross_caches, cross_keys, strict=True))
    state.reorder(torch.tensor([1]), targets=False)  # a sentence leaves: its source goes too
    assert all(torch.equal(c.key, k[1:]) for c, k in zip(state.cross_caches, cross_keys, strict=True))
    assert all(c.key.shape[0] == 2 for c in state.self_caches)
