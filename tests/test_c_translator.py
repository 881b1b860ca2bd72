"""Translating with the engine's C model alone (decoding/c_translator.py): the PyTorch translator's text,
the same checks on the model's files, and PyTorch's translator wherever the C model cannot run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import needs_kernels
from selfattention.cli.common import resolve_model
from selfattention.cli.translate import open_translator
from selfattention.decoding import DecodingConfig, Translator
from selfattention.decoding.c_translator import CTranslator, Unavailable
from selfattention.engine import SWITCH
from selfattention.model_files import ModelFileError, arrays_checksum, read_arrays
from selfattention.model_io import read_tensors, tensors_checksum

pytestmark = [needs_kernels, pytest.mark.usefixtures("fresh_engine")]

SENTENCES = [
    "I am good.",
    "A dog ate the food because it was hungry.",
    "Two young children are playing in the sand near the ocean.",
    "",
    "A man in a blue shirt is standing on a ladder cleaning windows.",
    "Hello.",
    "The woman with the red umbrella walks across the street in the rain.",
]


@pytest.mark.parametrize("precision", ["float32", "int8"])
@pytest.mark.parametrize("beam", [1, 4])
def test_the_bundled_model_translates_as_the_pytorch_translator_does(precision: str, beam: int) -> None:
    directory = resolve_model(None)
    config = DecodingConfig(beam_size=beam, batch_size=3)
    expected = Translator.load(directory, precision=precision).translate(SENTENCES, config)
    assert CTranslator.load(directory, precision).translate(SENTENCES, config) == expected
    assert expected[3] == "" and all(expected[i] for i in (0, 1, 2, 4, 5, 6))


def test_workers_give_the_same_translations(tiny_model_dir: Path) -> None:
    translator = CTranslator.load(tiny_model_dir)
    texts = [f"a man number {i} rides a horse" for i in range(9)]
    config = DecodingConfig(beam_size=2, batch_size=2)
    alone = translator.translate(texts, config)
    translator.start_workers(2)
    try:
        assert translator.translate(texts, config) == alone
    finally:
        translator.stop_workers()


def test_the_translate_command_runs_the_c_model_where_it_can(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = resolve_model(None)
    assert isinstance(open_translator(directory, "cpu", "float32"), CTranslator)
    monkeypatch.setenv(SWITCH, "0")
    assert type(open_translator(directory, "cpu", "float32")) is Translator  # the engine off: PyTorch's


def test_bfloat16_weights_go_to_pytorchs_translator(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "bf16"
    shutil.copytree(tiny_model_dir, directory)
    tensors, metadata = read_tensors(directory / "model.safetensors")
    metadata = {k: v for k, v in metadata.items() if k != "crc32"}
    save_file({k: v.to(torch.bfloat16) for k, v in tensors.items()}, str(directory / "model.safetensors"), metadata)
    with pytest.raises(Unavailable, match="BF16"):
        CTranslator.load(directory)
    assert type(open_translator(directory, "cpu", "float32")) is Translator


def test_the_checksum_is_pytorchs(tiny_model_dir: Path) -> None:
    tensors, metadata = read_tensors(tiny_model_dir / "model.safetensors")
    arrays, _ = read_arrays(tiny_model_dir / "model.safetensors")
    assert arrays_checksum(arrays) == tensors_checksum(tensors) == metadata["crc32"]


def copy_with(tiny_model_dir: Path, tmp_path: Path, change: dict[str, torch.Tensor], keep_crc: bool) -> Path:
    directory = tmp_path / "changed"
    shutil.copytree(tiny_model_dir, directory)
    tensors, metadata = read_tensors(directory / "model.safetensors")
    if not keep_crc:
        metadata = {k: v for k, v in metadata.items() if k != "crc32"}
    save_file({**tensors, **change}, str(directory / "model.safetensors"), metadata)
    return directory


def test_bad_weights_are_refused_naming_the_file_and_the_tensor(tiny_model_dir: Path, tmp_path: Path) -> None:
    tensors, _ = read_tensors(tiny_model_dir / "model.safetensors")
    name = sorted(tensors)[0]
    flipped = tensors[name].clone()
    flipped.view(-1)[0] += 1.0
    changed = copy_with(tiny_model_dir, tmp_path, {name: flipped}, keep_crc=True)
    with pytest.raises(ModelFileError, match=r"model\.safetensors: checksum mismatch"):
        CTranslator.load(changed)
    nan = tensors[name].clone()
    nan.view(-1)[0] = float("nan")
    changed = copy_with(tiny_model_dir, tmp_path / "nan", {name: nan}, keep_crc=False)
    with pytest.raises(ModelFileError, match=rf"tensor {name} contains NaN"):
        CTranslator.load(changed)
    extra = copy_with(tiny_model_dir, tmp_path / "extra", {"encoder.layers.9.gate": torch.ones(3)}, keep_crc=False)
    with pytest.raises(
        ModelFileError, match=r"model\.safetensors: .*unexpected 1 tensor\(s\), e\.g\. encoder\.layers\.9"
    ):
        CTranslator.load(extra)
    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_model_dir, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        CTranslator.load(truncated)
    with pytest.raises(ModelFileError, match="no such model directory"):
        CTranslator.load(tmp_path / "nowhere")


def test_weights_saved_for_another_configuration_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "heads"
    shutil.copytree(tiny_model_dir, directory)
    document = json.loads((directory / "config.json").read_text())
    document["model"]["n_heads"] = 1  # the same shapes, another model
    (directory / "config.json").write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match=r"model\.safetensors: weights do not match config\.json: .*n_heads"):
        CTranslator.load(directory)


def test_a_tokenizer_of_another_model_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "other"
    shutil.copytree(tiny_model_dir, directory)
    shutil.copy(resolve_model(None) / "tokenizer.model", directory / "tokenizer.model")
    with pytest.raises(ModelFileError, match="belongs to another model"):
        CTranslator.load(directory)


def test_nothing_to_translate_gives_nothing(tiny_model_dir: Path) -> None:
    translator = CTranslator.load(tiny_model_dir)
    assert translator.translate_ids([], DecodingConfig()) == []
    assert translator.translate(["", "   "]) == ["", ""]


def test_two_threads_translate_at_once_as_one_does_alone(tiny_model_dir: Path) -> None:
    """One C model, two searches at once (a server's clients): each keeps its own caches and history."""
    import threading

    translator = CTranslator.load(tiny_model_dir)
    texts = [[f"a man number {i} rides a horse" for i in range(6)], [f"two dogs run {i} times" for i in range(5)]]
    configs = [DecodingConfig(beam_size=1, batch_size=3), DecodingConfig(beam_size=3, batch_size=2)]
    alone = [translator.translate(t, c) for t, c in zip(texts, configs, strict=True)]
    together: list[list[list[str]]] = [[], []]

    def run(i: int) -> None:
        for _ in range(5):
            together[i].append(translator.translate(texts[i], configs[i]))

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result == alone[i] for i in (0, 1) for result in together[i]) and len(together[1]) == 5
