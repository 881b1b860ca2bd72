"""The trace recorder sees every attention call of the model, with every step."""

import math

import pytest
import torch

from selfattention import ModelConfig, build_model
from selfattention.inspection import TraceRecorder


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=30, d_model=16, n_heads=4, d_ff=32, encoder_layers=2, decoder_layers=3, dropout=0.0)
    return build_model(config).eval()


def test_every_layer_and_kind_is_recorded(model):
    src = torch.tensor([[5, 6, 7, 8]])
    tgt = torch.tensor([[1, 9, 10]])
    recorder = TraceRecorder()
    with torch.no_grad():
        model(src, tgt, recorder=recorder)
    assert recorder.layers("encoder") == 2
    assert recorder.layers("decoder") == 3
    assert recorder.layers("cross") == 3
    cross = recorder.attention("cross", 2)
    assert cross.weights.shape == (1, 4, 3, 4)  # (B, H, T, S)
    assert cross.q.shape == (1, 4, 3, 4) and cross.k.shape == (1, 4, 4, 4)
    decoder = recorder.attention("decoder", 0)
    assert torch.all(decoder.weights[0, :, 0, 1:] == 0), "the first target position must not see the future"


def test_recorded_steps_follow_the_recipe(model):
    recorder = TraceRecorder()
    with torch.no_grad():
        model.encode(torch.tensor([[3, 4, 5]]), recorder=recorder)
    step = recorder.attention("encoder", 1)
    assert torch.allclose(step.scores, step.q @ step.k.transpose(-2, -1), atol=1e-6)
    assert torch.allclose(step.scaled_scores, step.scores / math.sqrt(step.head_dim), atol=1e-6)
    assert torch.allclose(step.weights, torch.softmax(step.scaled_scores, -1), atol=1e-6)
    assert torch.allclose(step.output, step.weights @ step.v, atol=1e-6)
    assert torch.equal(step.x, recorder.hidden("encoder", 0))


def test_recording_does_not_change_the_result(model):
    src = torch.tensor([[5, 6, 7, 0]])
    tgt = torch.tensor([[1, 9, 10]])
    with torch.no_grad():
        plain = model(src, tgt)
        traced = model(src, tgt, recorder=TraceRecorder())
    assert torch.allclose(plain, traced, atol=1e-5)


def test_asking_for_a_missing_layer_says_which_exist(model):
    recorder = TraceRecorder()
    with torch.no_grad():
        model.encode(torch.tensor([[3, 4]]), recorder=recorder)
    with pytest.raises(ValueError, match="recorded layers: 0 to 1"):
        recorder.attention("encoder", 5)
    with pytest.raises(ValueError, match="unknown attention kind"):
        recorder.attention("sideways", 0)  # type: ignore[arg-type]


def test_trace_holds_no_autograd_graph(model):
    recorder = TraceRecorder()
    model.encode(torch.tensor([[3, 4]]), recorder=recorder)
    assert not recorder.attention("encoder", 0).weights.requires_grad


# --- light traces: the chosen calls only, no stored scores -----------------------------------


def test_a_trace_never_stores_the_scores_and_recomputes_them_from_q_and_k(model):
    recorder = TraceRecorder()
    with torch.no_grad():
        model(torch.tensor([[5, 6, 7, 8]]), torch.tensor([[1, 9, 10]]), recorder=recorder)
    assert not [name for name in recorder.names() if name.endswith("scores")]
    step = recorder.attention("decoder", 1)
    assert torch.equal(step.scores, step.q @ step.k.transpose(-2, -1))
    # the decoder's raw scores are unmasked, as the explicit path computes them; the weights are masked
    assert torch.all(step.weights[0, :, 0, 1:] == 0)


def test_a_selective_trace_keeps_only_the_chosen_calls_and_the_layer_outputs(model):
    src, tgt = torch.tensor([[5, 6, 7, 8]]), torch.tensor([[1, 9, 10]])
    full, chosen = TraceRecorder(), TraceRecorder(kinds=["cross"], layers=[1])
    with torch.no_grad():
        plain = model(src, tgt)
        traced = model(src, tgt, recorder=chosen)
        model(src, tgt, recorder=full)
    assert torch.allclose(plain, traced, atol=1e-5)
    assert chosen.recorded_layers("cross") == [1]
    assert chosen.layers("encoder") == chosen.layers("decoder") == 0
    assert not [name for name in chosen.names() if "self_attn" in name]
    mine, reference = chosen.attention("cross", 1), full.attention("cross", 1)
    for name in ("x", "q", "k", "v", "weights", "output", "attended"):
        assert torch.allclose(getattr(mine, name), getattr(reference, name), atol=1e-6), name
    assert torch.allclose(chosen.hidden("encoder", 1), full.hidden("encoder", 1), atol=1e-5)  # outputs are always kept
    with pytest.raises(ValueError, match=r"layer 0 was not recorded for cross attention \(recorded layers: 1\)"):
        chosen.attention("cross", 0)
    with pytest.raises(ValueError, match=r"layer 0 was not recorded for encoder attention \(none was recorded\)"):
        chosen.attention("encoder", 0)


def test_calls_not_chosen_run_the_fused_path(model, monkeypatch):
    from selfattention.attention import core

    explicit_calls = []
    original = core.explicit_attention

    def counting(*args, **kwargs):
        explicit_calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(core, "explicit_attention", counting)
    with torch.no_grad():
        model.encode(torch.tensor([[3, 4, 5]]), recorder=TraceRecorder(kinds=["encoder"], layers=[1]))
    assert len(explicit_calls) == 1  # layer 1 only; layer 0 ran fused
    explicit_calls.clear()
    with torch.no_grad():
        model.encode(torch.tensor([[3, 4, 5]]), recorder=TraceRecorder(kinds=()))
    assert explicit_calls == []


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown attention kind"):
        TraceRecorder(kinds=["sideways"])  # type: ignore[list-item]
