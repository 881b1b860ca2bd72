"""Starting a run from a trained model (fine-tuning): ``train.init_from = "MODEL_DIR"``.

The run takes the model directory's vocabulary (``tokenizer.model``, copied into the run), its
architecture and languages (:func:`adopt_start`: a configuration need not repeat them) and its
weights, then trains with a fresh optimiser and its own schedule: a new stretch on other data or
with other settings, where ``--resume`` would continue the same run exactly. A configuration
that names an architecture setting other than the model's is refused, naming each; only the
dropout rates may differ.

With ``data.case_markers`` and a starting vocabulary without the case marker, the marker is
appended to the vocabulary (:meth:`~selfattention.data.Tokenizer.with_case_marker`): every
existing piece keeps its id, and the model's embedding and output rows grow by one, the new row
the mean of the trained rows (special and padding rows included): a start near the middle of the
embedding space, with a logit near the average piece's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from selfattention.config import ModelConfig
from selfattention.data import Tokenizer
from selfattention.data.tokenizer import TOKENIZER_FILE
from selfattention.model import Transformer, build_model
from selfattention.model_io import WEIGHTS_FILE, load_config, load_weights
from selfattention.training.config import RunConfig

FREE = ("dropout", "attention_dropout", "activation_dropout")  # regularisation, not architecture


class InitError(ValueError):
    """The model to start from is missing, unreadable, or not the run's architecture."""


def init_tokenizer(directory: Path, case_markers: bool = False) -> Tokenizer:
    """The starting model's vocabulary; with ``case_markers``, the case marker appended if it has none."""
    if not directory.is_dir():
        raise InitError(f"train.init_from: no model directory at {directory}")
    path = directory / TOKENIZER_FILE
    if not path.is_file():
        raise InitError(f"train.init_from: {path} is missing (a model to start from needs its vocabulary)")
    try:
        tokenizer = Tokenizer.load(path)
    except ValueError as error:  # TokenizerError, naming the file
        raise InitError(f"train.init_from: {error}") from None
    if case_markers and not tokenizer.marks_capitals:
        tokenizer = tokenizer.with_case_marker()
    return tokenizer


def differences(run: ModelConfig, start: ModelConfig) -> list[str]:
    """The architecture settings in which the run's model and the starting model differ."""
    found = []
    for field in dataclasses.fields(ModelConfig):
        if field.name in FREE:
            continue
        ours, theirs = getattr(run, field.name), getattr(start, field.name)
        if ours != theirs:
            found.append(f"{field.name} = {ours!r} here, {theirs!r} in the model")
    return found


def _start_config(directory: Path) -> ModelConfig:
    try:
        return load_config(directory)
    except ValueError as error:  # ModelFileError, naming the file
        raise InitError(f"train.init_from: {error}") from None


def _refuse_other_architecture(run: ModelConfig, start: ModelConfig, directory: Path) -> None:
    found = differences(run, start)
    if found:
        raise InitError(f"train.init_from: {directory} is not this run's architecture: " + "; ".join(found))


def adopt_start(config: RunConfig) -> RunConfig:
    """``config`` with the starting model's architecture and languages (``train.init_from`` set).

    Settings the configuration gave (``config.given``) must agree with the model's, except the
    dropout rates, which it may change; any that disagree are refused, each named.
    """
    directory = Path(config.train.init_from)
    if not directory.is_dir():
        raise InitError(f"train.init_from: no model directory at {directory}")
    start = _start_config(directory)
    given_model = config.given.get("model", frozenset())
    given_data = config.given.get("data", frozenset())
    conflicts = [
        f"{field.name} = {getattr(config.model, field.name)!r} here, {getattr(start, field.name)!r} in the model"
        for field in dataclasses.fields(ModelConfig)
        if field.name in given_model
        and field.name not in (*FREE, "vocab_size")
        and getattr(config.model, field.name) != getattr(start, field.name)
    ]
    conflicts += [
        f"data.{name} = {getattr(config.data, name)!r} here, {getattr(start, name)!r} in the model"
        for name in ("source_lang", "target_lang")
        if name in given_data and getattr(config.data, name) != getattr(start, name)
    ]
    if conflicts:
        raise InitError(f"train.init_from: {directory} is not this run's architecture: " + "; ".join(conflicts))
    model = dataclasses.replace(start, **{name: getattr(config.model, name) for name in given_model if name in FREE})
    data = dataclasses.replace(config.data, source_lang=start.source_lang, target_lang=start.target_lang)
    return dataclasses.replace(config, model=model, data=data)


def check_start(run: ModelConfig, directory: Path) -> None:
    """Refuse a starting model of another architecture before any work (the vocabulary size and
    special ids are the model's, since its tokenizer is taken with it)."""
    start = _start_config(directory)
    same_ids = dataclasses.replace(
        run, vocab_size=start.vocab_size, pad_id=start.pad_id, bos_id=start.bos_id, eos_id=start.eos_id
    )
    _refuse_other_architecture(same_ids, start, directory)


def load_initial_weights(model: Transformer, run: ModelConfig, directory: Path) -> None:
    """Fill ``model`` (built from ``run``) with the starting model's weights, checked.

    ``run`` may have one piece more than the start: the case marker, appended by
    :func:`init_tokenizer` to a vocabulary without it; every tensor with a row per piece then gets
    the mean of its trained rows for it. Any other difference in size is refused."""
    start = _start_config(directory)
    added = run.vocab_size - start.vocab_size
    if added and (added != 1 or init_tokenizer(directory).marks_capitals):
        raise InitError(
            f"train.init_from: the run's vocabulary has {run.vocab_size} pieces and {directory}'s model "
            f"{start.vocab_size}; only the case marker may be added to the model's vocabulary"
        )
    _refuse_other_architecture(dataclasses.replace(run, vocab_size=start.vocab_size), start, directory)
    trained = model if not added else build_model(dataclasses.replace(run, vocab_size=start.vocab_size))
    try:
        load_weights(trained, directory / WEIGHTS_FILE)
    except ValueError as error:  # ModelFileError, naming the file
        raise InitError(f"train.init_from: {error}") from None
    if added:
        model.load_state_dict(grown_rows(trained.state_dict(), model.state_dict(), start.vocab_size))


def grown_rows(
    trained: dict[str, torch.Tensor], wanted: dict[str, torch.Tensor], vocab_size: int
) -> dict[str, torch.Tensor]:
    """``trained``'s tensors shaped as ``wanted``'s: a tensor with ``vocab_size`` rows where ``wanted`` has
    more gets its rows' mean appended for each missing one; every other tensor must match in shape."""
    out = {}
    for name, tensor in trained.items():
        shape = wanted[name].shape
        if tensor.shape == shape:
            out[name] = tensor
        elif tensor.shape[0] == vocab_size and tensor.shape[1:] == shape[1:] and shape[0] > vocab_size:
            mean = tensor.mean(dim=0, keepdim=True)
            out[name] = torch.cat([tensor, mean.expand(shape[0] - vocab_size, *shape[1:])])
        else:
            raise InitError(f"train.init_from: {name} has shape {tuple(tensor.shape)}, the run's {tuple(shape)}")
    return out
