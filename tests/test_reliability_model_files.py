"""Damaged and foreign model files: each is refused with an error that names the file and the problem.

Bit flips anywhere in ``model.safetensors``, truncation at every region, files that are not
safetensors at all, tensors of the wrong shape, a ``config.json`` that does not fit the weights
(even where every shape agrees), a damaged or foreign ``tokenizer.model``; and nothing is ever
unpickled, whatever a file holds. (Round trips, missing files and invalid JSON are in test_model_io.py.)
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import pickle
import random
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import selfattention
from selfattention.data import Tokenizer
from selfattention.data.tokenizer import TokenizerError
from selfattention.decoding import Translator
from selfattention.model_io import CONFIG_FILE, WEIGHTS_FILE, ModelFileError, checksum_metadata, load_model, save_model
from selfattention.training.checkpoint import OPTIMIZER_FILE, list_checkpoints, load_checkpoint
from test_cli_translate import assert_clean_error, run
from test_model_io import CreatesMarker, load_error, logits, read_document, tiny_model, write_document

UNREADABLE = "not a readable safetensors file"


class Saved:
    """A saved tiny model: its directory, its weights file's bytes, where the data starts, its logits."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.weights = directory / WEIGHTS_FILE
        self.data = self.weights.read_bytes()
        self.header_end = 8 + struct.unpack("<Q", self.data[:8])[0]
        self.header = json.loads(self.data[8 : self.header_end])
        self.logits = logits(load_model(directory))

    def write(self, data: bytes) -> None:
        self.weights.write_bytes(data)

    def flipped(self, position: int, bit: int) -> bytes:
        data = bytearray(self.data)
        data[position] ^= 1 << bit
        return bytes(data)

    def offset_of(self, name: str, index: int = 0) -> int:
        """Where element ``index`` of a float32 tensor starts in the file."""
        start, _ = self.header[name]["data_offsets"]
        return self.header_end + start + 4 * index


@pytest.fixture
def saved(tmp_path: Path) -> Saved:
    directory = tmp_path / "model"
    save_model(tiny_model(), directory)
    return Saved(directory)


def resave(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write tensors with a checksum of their own: a consistent file, whatever else is wrong with it."""
    save_file(tensors, str(path), metadata={**metadata, **checksum_metadata(tensors)})


def outcome(load: Any, path: Path) -> Any:
    """What ``load(path)`` returns, or the ModelFileError or TokenizerError it raises."""
    try:
        return load(path)
    except (ModelFileError, TokenizerError) as error:
        return error


def saved_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


# --- bit flips -----------------------------------------------------------------------------------


def test_every_bit_flip_in_the_tensor_data_is_refused(saved: Saved) -> None:
    """Without the checksum, 39 of these 40 flips loaded silently, and one gave NaN logits."""
    rng = random.Random(2024)
    for _ in range(40):
        position, bit = rng.randrange(saved.header_end, len(saved.data)), rng.randrange(8)
        saved.write(saved.flipped(position, bit))
        message = load_error(saved.directory, saved.weights)
        assert "checksum mismatch" in message or "NaN or infinite" in message, (position, bit, message)


@pytest.mark.parametrize("name", ["src_embed.token.weight", "encoder.layers.0.feed_forward.up_proj.weight"])
def test_a_flip_of_an_exponent_bit_gives_an_error_not_a_nan_model(saved: Saved, name: str) -> None:
    """Bit 30 of a float32 multiplies a small weight by 2**128: finite, but the logits would be NaN."""
    index = 16 * 5 + 3  # in row 5: row 0 of the embedding is the padding token's, all zeros
    position = saved.offset_of(name, index) + 3  # little-endian: byte 3 holds the sign and top exponent bits
    saved.write(saved.flipped(position, 6))
    flipped = load_file(str(saved.weights))[name].reshape(-1)[index]
    assert torch.isfinite(flipped) and flipped.abs() > 1e30  # what the weight would have become
    assert "checksum mismatch" in load_error(saved.directory, saved.weights)


def test_a_bit_flip_in_the_header_is_refused_or_changes_nothing(saved: Saved) -> None:
    """The header holds names, dtypes, shapes, offsets and metadata: a flip is caught, or is in a field unused."""
    rng = random.Random(7)
    refused = 0
    for _ in range(60):
        position, bit = rng.randrange(0, saved.header_end), rng.randrange(8)
        saved.write(saved.flipped(position, bit))
        result = outcome(load_model, saved.directory)
        if isinstance(result, ModelFileError):
            assert result.path == saved.weights and str(saved.weights) in str(result), (position, bit)
            refused += 1
        else:
            assert torch.equal(logits(result), saved.logits), f"a flip at byte {position}, bit {bit} changed the model"
    assert refused >= 45  # 53 of these 60; the rest fall in metadata that does not change the model


# --- truncated, extended, or not safetensors at all ---------------------------------------------


@pytest.mark.parametrize(
    "cut",
    ["empty", "in the length prefix", "the length prefix only", "mid-header", "header only", "mid-data", "last byte"],
)
def test_a_truncated_weights_file_is_refused_wherever_it_is_cut(saved: Saved, cut: str) -> None:
    end = {
        "empty": 0,
        "in the length prefix": 5,
        "the length prefix only": 8,
        "mid-header": saved.header_end // 2,
        "header only": saved.header_end,
        "mid-data": (saved.header_end + len(saved.data)) // 2,
        "last byte": len(saved.data) - 1,
    }[cut]
    saved.write(saved.data[:end])
    message = load_error(saved.directory, saved.weights)
    assert UNREADABLE in message
    assert "truncated or corrupted" in message


def test_bytes_appended_to_the_weights_file_are_refused(saved: Saved) -> None:
    saved.write(saved.data + b"\x00" * 16)
    assert UNREADABLE in load_error(saved.directory, saved.weights)


def _zip_of_text() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model.txt", "weights go here")
    return buffer.getvalue()


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 4), dtype=np.float32))
    return buffer.getvalue()


NOT_SAFETENSORS = {
    "empty": lambda saved: b"",
    "text": lambda saved: b"these are not the weights you are looking for\n",
    "json": lambda saved: json.dumps({"src_embed.token.weight": [[0.0] * 16] * 40}).encode(),
    "html error page": lambda saved: b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
    "zip": lambda saved: _zip_of_text(),
    "gzip of the real file": lambda saved: gzip.compress(saved.data),
    "numpy .npy": lambda saved: _npy(),
    "huge header length": lambda saved: struct.pack("<Q", 2**60) + saved.data[8:],
    "header that is not JSON": lambda saved: struct.pack("<Q", 16) + b"{not json at all" + saved.data[-64:],
}


@pytest.mark.parametrize("kind", NOT_SAFETENSORS)
def test_a_file_that_is_not_safetensors_is_refused(saved: Saved, kind: str) -> None:
    saved.write(NOT_SAFETENSORS[kind](saved))
    assert UNREADABLE in load_error(saved.directory, saved.weights)


# --- shapes and configurations that do not fit --------------------------------------------------


def test_a_tensor_of_the_wrong_shape_is_named_with_both_shapes(saved: Saved) -> None:
    tensors = load_file(str(saved.weights))
    name = "encoder.layers.0.feed_forward.up_proj.weight"  # (d_ff, d_model) = (32, 16)
    tensors[name] = tensors[name].t().contiguous()
    resave(saved.weights, tensors, saved_metadata(saved.weights))
    message = load_error(saved.directory, saved.weights)
    assert name in message
    assert "(16, 32)" in message and "(32, 16)" in message


@pytest.mark.parametrize(
    ("field", "value", "saved_as"),
    [
        ("n_heads", 4, "2"),  # same shapes: 4 heads of 4 instead of 2 of 8
        ("activation", "gelu", "'relu'"),
        ("positional", "sinusoidal_halves", "'sinusoidal'"),
        ("scale_embedding", False, "True"),
        ("pad_id", 5, "0"),
        ("layer_norm_eps", 1e-3, "1e-05"),
    ],
)
def test_a_config_that_keeps_every_shape_but_not_the_model_is_refused(
    saved: Saved, field: str, value: Any, saved_as: str
) -> None:
    """Before the weights recorded their configuration, each of these loaded silently as another model."""
    document = read_document(saved.directory)
    document["model"][field] = value
    write_document(saved.directory, document)
    message = load_error(saved.directory, saved.weights)
    assert "weights do not match config.json" in message
    assert f"{field} {saved_as} (config.json: {value!r})" in message


@pytest.mark.parametrize(("field", "value"), [("dropout", 0.3), ("attention_dropout", 0.2), ("max_positions", 2048)])
def test_settings_that_do_not_change_what_the_weights_compute_may_be_edited(
    saved: Saved, field: str, value: Any
) -> None:
    document = read_document(saved.directory)
    document["model"][field] = value
    write_document(saved.directory, document)
    model = load_model(saved.directory)
    assert getattr(model.config, field) == value
    assert torch.equal(logits(model), saved.logits)


def test_weights_without_checksum_or_configuration_still_load(saved: Saved) -> None:
    """Files written before these records existed (or by other tools) are checked as before."""
    metadata = saved_metadata(saved.weights)
    assert {"crc32", "config"} <= set(metadata)
    save_file(load_file(str(saved.weights)), str(saved.weights), metadata={"format": metadata["format"]})
    assert torch.equal(logits(load_model(saved.directory)), saved.logits)


# --- tokenizer.model ------------------------------------------------------------------------------


@pytest.fixture
def model_with_tokenizer(tiny_model_dir: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    shutil.copytree(tiny_model_dir, directory)
    return directory


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.3, 0.5, 0.9, 0.999])
def test_a_truncated_tokenizer_is_refused_naming_the_file(model_with_tokenizer: Path, fraction: float) -> None:
    path = model_with_tokenizer / "tokenizer.model"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(TokenizerError) as info:
        Translator.load(model_with_tokenizer)
    assert str(path) in str(info.value)
    assert "not a SentencePiece model" in str(info.value)


def test_a_bit_flip_in_the_tokenizer_is_refused_or_leaves_a_vocabulary_of_the_same_size(
    model_with_tokenizer: Path,
) -> None:
    """SentencePiece's format has no checksum: a flip inside a piece or a score can load (see RELIABILITY.md)."""
    path = model_with_tokenizer / "tokenizer.model"
    data = path.read_bytes()
    rng = random.Random(3)
    refused = 0
    for _ in range(30):
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(flipped))
        result = outcome(Translator.load, model_with_tokenizer)
        if isinstance(result, Translator):
            assert result.model.config is not None
            assert result.tokenizer.vocab_size == result.model.config.vocab_size
        else:
            assert str(path) in str(result)
            refused += 1
    assert refused >= 5


def test_another_models_tokenizer_is_refused(model_with_tokenizer: Path) -> None:
    """Its ids would index the wrong embeddings (or none: an IndexError from deep inside torch)."""
    path = model_with_tokenizer / "tokenizer.model"
    sentences = [f"sentence number {i} about a dog and a cat" for i in range(50)]
    Tokenizer.train(sentences, vocab_size=60).save(path)
    with pytest.raises(ModelFileError) as info:
        Translator.load(model_with_tokenizer)
    assert info.value.path == path
    assert "pieces, but config.json's vocab_size is" in str(info.value)


def test_the_command_line_names_the_damaged_file_in_one_line(
    model_with_tokenizer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = model_with_tokenizer / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0x10
    weights.write_bytes(bytes(data))
    code, out, err = run(capsys, "translate", "--model", str(model_with_tokenizer), "The dog runs.")
    assert_clean_error(code, out, err, str(weights), "checksum mismatch")


# --- nothing is ever unpickled ------------------------------------------------------------------


def load_checkpoint_state(checkpoint: Path) -> None:
    model = load_model(checkpoint)
    with torch.random.fork_rng():  # loading a checkpoint sets the random state
        load_checkpoint(checkpoint, model, torch.optim.Adam(model.parameters()))


def _pickle_bomb(marker: Path) -> bytes:
    return pickle.dumps({"weights": CreatesMarker(marker)}, protocol=2)


def test_no_loader_unpickles_a_pickle_put_in_place_of_any_file(
    tiny_run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pickle whose loading would create a marker, as each file a model or checkpoint directory holds."""
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(list_checkpoints(tiny_run_dir)[-1], checkpoint)
    marker = tmp_path / "unpickled"
    names = (CONFIG_FILE, WEIGHTS_FILE, "tokenizer.model", OPTIMIZER_FILE)
    originals = {name: (checkpoint / name).read_bytes() for name in names}
    for name in names:
        (checkpoint / name).write_bytes(_pickle_bomb(marker))
        load = load_checkpoint_state if name == OPTIMIZER_FILE else Translator.load
        error = outcome(load, checkpoint)
        assert isinstance(error, ModelFileError | TokenizerError), name
        assert str(checkpoint / name) in str(error)
        code, out, err = run(capsys, "translate", "--model", str(checkpoint), "The dog runs.")
        if name != OPTIMIZER_FILE:  # translating does not read the optimiser's state
            assert_clean_error(code, out, err, str(checkpoint / name))
        assert not marker.exists(), f"{name} was unpickled"
        (checkpoint / name).write_bytes(originals[name])
    # the payload is live: unpickling it does create the marker
    pickle.loads(_pickle_bomb(marker))
    assert marker.exists()


UNPICKLERS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("dill", "load"), ("joblib", "load")}


def test_the_library_has_no_call_that_unpickles() -> None:
    """Read the source: no pickle loading, torch.load only with weights_only=True, np.load never with pickles."""
    offenders = []
    for path in sorted(Path(selfattention.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            keywords = {k.arg: k.value for k in node.keywords}
            place = f"{path.name}:{node.lineno}"
            if (owner, node.func.attr) in UNPICKLERS:
                offenders.append(f"{place} {owner}.{node.func.attr}")
            elif owner == "torch" and node.func.attr == "load":
                weights_only = keywords.get("weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    offenders.append(f"{place} torch.load without weights_only=True")
            elif owner in ("np", "numpy") and node.func.attr == "load":
                allow = keywords.get("allow_pickle")
                if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                    offenders.append(f"{place} np.load with allow_pickle")
    assert not offenders, offenders
