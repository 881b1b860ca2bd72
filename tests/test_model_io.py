"""Saving and loading models: exact round trips, tied weights, atomic writes, and clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import selfattention.model_io as model_io
from selfattention.config import ModelConfig
from selfattention.model import Transformer, build_model
from selfattention.model_io import CONFIG_FILE, WEIGHTS_FILE, ModelFileError, load_model, save_model

TINY = {
    "vocab_size": 40,
    "d_model": 16,
    "n_heads": 2,
    "d_ff": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "dropout": 0.0,
}


def tiny_model(seed: int = 0, **changes: Any) -> Transformer:
    torch.manual_seed(seed)
    return build_model(ModelConfig(**{**TINY, **changes}))


def logits(model: Transformer) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1234)
    src = torch.randint(3, 40, (2, 5), generator=generator)
    tgt = torch.randint(3, 40, (2, 4), generator=generator)
    src[1, -1] = 0  # one padded source position
    model.eval()
    with torch.no_grad():
        return model(src, tgt)


def saved_keys(path: Path) -> list[str]:
    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def read_document(directory: Path) -> dict[str, Any]:
    return json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))


def write_document(directory: Path, document: Any) -> None:
    (directory / CONFIG_FILE).write_text(json.dumps(document), encoding="utf-8")


def load_error(directory: Path, path: Path) -> str:
    """Load ``directory``, expect a ModelFileError about ``path``, and return its message."""
    with pytest.raises(ModelFileError) as error_info:
        load_model(directory)
    error = error_info.value
    assert isinstance(error, ValueError)
    assert error.path == path
    message = str(error)
    assert str(path) in message
    assert error.problem in message
    return message


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    save_model(tiny_model(), directory)
    return directory


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{}, {"tie_embeddings": False}, {"positional": "learned"}, {"norm": "pre"}],
    ids=["tied", "untied", "learned-positions", "pre-norm"],
)
def test_round_trip_gives_identical_logits(tmp_path: Path, changes: dict[str, Any]) -> None:
    model = tiny_model(seed=7, **changes)
    expected = logits(model)
    assert save_model(model, tmp_path / "m") == tmp_path / "m"
    loaded = load_model(tmp_path / "m")
    assert loaded.config == model.config
    assert not loaded.training
    assert not any(module.training for module in loaded.modules())
    assert torch.equal(logits(loaded), expected)
    # a differently initialised model gives different logits, so the check above means something
    assert not torch.equal(logits(tiny_model(seed=8, **changes)), expected)


def test_tied_weights_stay_tied_after_loading(saved: Path) -> None:
    loaded = load_model(saved)
    shared = loaded.src_embed.token.weight
    for weight in (loaded.output_proj.weight, loaded.tgt_embed.token.weight):
        assert weight is shared or weight.data_ptr() == shared.data_ptr()
    with torch.no_grad():
        shared[5, 3] += 1.0
    assert loaded.output_proj.weight[5, 3] == shared[5, 3]
    assert loaded.tgt_embed.token.weight[5, 3] == shared[5, 3]
    with torch.no_grad():
        loaded.output_proj.weight[6, 2] = 42.0
    assert shared[6, 2] == 42.0


def test_untied_weights_stay_separate_after_loading(tmp_path: Path) -> None:
    save_model(tiny_model(tie_embeddings=False), tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.output_proj.weight.data_ptr() != loaded.src_embed.token.weight.data_ptr()
    assert not torch.equal(loaded.output_proj.weight, loaded.src_embed.token.weight)


@pytest.mark.parametrize("tied", [True, False])
def test_weights_file_holds_each_tensor_once(tmp_path: Path, tied: bool) -> None:
    model = tiny_model(tie_embeddings=tied)
    save_model(model, tmp_path)
    keys = saved_keys(tmp_path / WEIGHTS_FILE)
    assert len(keys) == len(set(keys))
    assert "src_embed.token.weight" in keys
    if tied:
        assert "output_proj.weight" not in keys
        assert "tgt_embed.token.weight" not in keys
        assert set(keys) == set(model.state_dict()) - {"output_proj.weight", "tgt_embed.token.weight"}
    else:
        assert set(keys) == set(model.state_dict())


def test_saving_leaves_no_temporary_files(tmp_path: Path) -> None:
    save_model(tiny_model(), tmp_path)
    save_model(tiny_model(seed=1), tmp_path)  # overwriting too
    assert sorted(os.listdir(tmp_path)) == [CONFIG_FILE, WEIGHTS_FILE]


def test_failed_save_leaves_no_temporary_file_and_keeps_the_old_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = tiny_model(seed=1)
    save_model(original, tmp_path)

    def crash_halfway(tensors: dict[str, torch.Tensor], filename: str, metadata: Any = None) -> None:
        Path(filename).write_bytes(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(model_io, "save_file", crash_halfway)
    with pytest.raises(RuntimeError, match="disk full"):
        save_model(tiny_model(seed=2), tmp_path)
    assert sorted(os.listdir(tmp_path)) == [CONFIG_FILE, WEIGHTS_FILE]
    monkeypatch.undo()
    assert torch.equal(logits(load_model(tmp_path)), logits(original))


# --- errors ---------------------------------------------------------------------------------------


def test_model_file_error_is_a_value_error() -> None:
    assert issubclass(ModelFileError, ValueError)


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    assert "no such" in load_error(missing, missing)


def test_missing_config(saved: Path) -> None:
    (saved / CONFIG_FILE).unlink()
    message = load_error(saved, saved / CONFIG_FILE)
    assert "no such file" in message


def test_missing_weights(saved: Path) -> None:
    (saved / WEIGHTS_FILE).unlink()
    message = load_error(saved, saved / WEIGHTS_FILE)
    assert "no such file" in message


def test_config_that_is_not_json(saved: Path) -> None:
    (saved / CONFIG_FILE).write_text('{\n  "format": "selfattention-transformer",\n  oops\n}\n', encoding="utf-8")
    message = load_error(saved, saved / CONFIG_FILE)
    assert "invalid JSON" in message
    assert "line 3" in message


def test_config_with_wrong_format(saved: Path) -> None:
    document = read_document(saved)
    document["format"] = "some-other-transformer"
    write_document(saved, document)
    message = load_error(saved, saved / CONFIG_FILE)
    assert "format" in message


def test_config_with_unknown_field(saved: Path) -> None:
    document = read_document(saved)
    document["model"]["colour"] = "blue"
    write_document(saved, document)
    message = load_error(saved, saved / CONFIG_FILE)
    assert "colour" in message


def test_config_with_invalid_value(saved: Path) -> None:
    document = read_document(saved)
    document["model"]["norm"] = "middle"
    write_document(saved, document)
    message = load_error(saved, saved / CONFIG_FILE)
    assert "norm" in message


def test_truncated_weights(saved: Path) -> None:
    weights = saved / WEIGHTS_FILE
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    message = load_error(saved, weights)
    assert "safetensors" in message
    assert "truncated" in message


def test_weights_that_are_random_bytes(saved: Path) -> None:
    weights = saved / WEIGHTS_FILE
    weights.write_bytes(os.urandom(4096))
    message = load_error(saved, weights)
    assert "not a readable safetensors file" in message


class CreatesMarker:
    """Unpickling this creates a directory: proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch-zip", "raw-pickle"])
def test_pickled_weights_are_rejected_and_never_unpickled(saved: Path, tmp_path: Path, zip_format: bool) -> None:
    weights = saved / WEIGHTS_FILE
    marker = tmp_path / "unpickled-marker"
    payload = {"src_embed.token.weight": torch.zeros(40, 16), "payload": CreatesMarker(marker)}
    torch.save(payload, weights, _use_new_zipfile_serialization=zip_format)
    message = load_error(saved, weights)
    assert "not a readable safetensors file" in message
    assert not marker.exists()
    # the payload is live: unpickling the same bytes does create the marker (copied to a .pt name,
    # because torch.load hands any *.safetensors path to safetensors instead of unpickling it)
    copy = tmp_path / "same-bytes.pt"
    copy.write_bytes(weights.read_bytes())
    torch.load(copy, weights_only=False)
    assert marker.exists()


def test_config_that_does_not_match_the_weights(saved: Path) -> None:
    stored = load_file(str(saved / WEIGHTS_FILE))
    document = read_document(saved)
    document["model"]["d_model"] = 32
    document["model"]["n_heads"] = 2
    write_document(saved, document)
    message = load_error(saved, saved / WEIGHTS_FILE)
    implied = build_model(ModelConfig.from_dict(document["model"])).state_dict()
    named = [name for name in stored if f"tensor {name} " in message]
    assert len(named) == 1, message
    name = named[0]
    assert str(tuple(stored[name].shape)) in message
    assert str(tuple(implied[name].shape)) in message
    assert stored[name].shape != implied[name].shape


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_weights_with_non_finite_values(saved: Path, bad_value: float) -> None:
    weights = saved / WEIGHTS_FILE
    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(weights))
    name = "encoder.layers.0.feed_forward.up_proj.weight"
    tensors[name][3, 4] = bad_value
    save_file(tensors, str(weights), metadata=metadata)
    message = load_error(saved, weights)
    assert name in message
    assert "NaN" in message


def test_weights_missing_a_tensor(saved: Path) -> None:
    weights = saved / WEIGHTS_FILE
    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(weights))
    del tensors["encoder.layers.0.self_attn.q_proj.weight"]
    save_file(tensors, str(weights), metadata=metadata)
    message = load_error(saved, weights)
    assert "missing" in message
    assert "encoder.layers.0.self_attn.q_proj.weight" in message
