"""A sinusoidal model reads longer inputs once its config.json allows more positions; learned positions cannot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from selfattention import ModelConfig, build_model
from selfattention.decoding.translator import max_source_length
from selfattention.inspection import trace_ids
from selfattention.model_io import ModelFileError, load_model, save_model


def _saved(tmp_path: Path, positional: str) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=30, d_model=16, n_heads=2, d_ff=32, encoder_layers=1, decoder_layers=1, dropout=0.0,
        positional=positional, max_positions=64,
    )  # fmt: skip
    model = build_model(config).eval()
    save_model(model, tmp_path)
    return tmp_path, model


def _allow(directory: Path, positions: int) -> None:
    path = directory / "config.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["model"]["max_positions"] = positions
    path.write_text(json.dumps(document), encoding="utf-8")


def test_a_sinusoidal_model_with_more_positions_computes_the_same_and_reads_longer_input(tmp_path):
    directory, original = _saved(tmp_path, "sinusoidal")
    _allow(directory, 4096)
    longer = load_model(directory).eval()
    assert max_source_length(longer) == 4095
    src, tgt = torch.tensor([[5, 6, 7, 2]]), torch.tensor([[1, 8, 9]])
    with torch.no_grad():
        assert torch.equal(longer(src, tgt), original(src, tgt))
    source = [*([5, 6, 7] * 100), 2]  # 301 tokens, over the 64 positions it was saved with
    recorder = trace_ids(longer, source, [1, 8], kinds=["encoder"])
    assert recorder.attention("encoder", 0).weights.shape == (1, 2, 301, 301)


def test_a_learned_position_model_with_more_positions_is_refused_naming_the_file(tmp_path):
    directory, _ = _saved(tmp_path, "learned")
    _allow(directory, 4096)
    with pytest.raises(ModelFileError, match=r"model\.safetensors.*src_embed\.positions\.weight has shape \(64, 16\)"):
        load_model(directory)
