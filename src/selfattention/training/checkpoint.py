"""Training checkpoints: everything needed to continue exactly where a run stopped.

A checkpoint is a directory ``checkpoints/step-00001000/`` holding a loadable model
(``config.json``, ``model.safetensors``, ``tokenizer.model``), the optimiser's tensors
(``optimizer.safetensors``, which also holds the random-number state, on CUDA too, and with
``train.precision=fp16`` the loss scale) and ``trainer.json``
(step, epoch, position in the epoch, best score). It is written under a temporary name and
renamed into place, and an old one is renamed out of the way before it is deleted, so every
``step-*`` directory on disk is complete, whenever the process is killed. Hidden leftovers of a
killed write or deletion (``.tmp-*``, ``.old-*``, ``.deleting-*``) are never listed and are
removed by the next write. Nothing is pickled; both tensor files carry a CRC-32 checksum.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from selfattention.data.tokenizer import Tokenizer
from selfattention.model import Transformer
from selfattention.model_io import (
    ModelFileError,
    check_checksum,
    checksum_metadata,
    load_weights,
    read_tensors,
    save_model,
)

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
TRAINER_FILE = "trainer.json"
OPTIMIZER_FILE = "optimizer.safetensors"


@dataclass
class Progress:
    """Where training stands; saved in ``trainer.json``."""

    step: int = 0  # optimiser steps taken
    epoch: int = 0  # current epoch, from 0
    batch_in_epoch: int = 0  # batches of this epoch already used
    tokens: int = 0  # target tokens trained on
    best_bleu: float = -1.0
    best_step: int = 0
    stale_epochs: int = 0  # validations since the best score (at epoch ends, and every train.valid_every steps)
    seconds: float = 0.0  # training time so far, over all stretches

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def save_checkpoint(
    run_dir: Path,
    model: Transformer,
    tokenizer: Tokenizer,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    run_config: dict[str, Any],
    keep: int,
    grad_scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """Write a complete checkpoint atomically, then drop all but the newest ``keep``."""
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(run_dir, progress.step)
    tmp = root / f".tmp-step-{progress.step:08d}"
    remove_leftovers(root)
    try:
        save_model(model, tmp)
        tokenizer.save(tmp)
        tensors, groups = _optimizer_tensors(optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        if grad_scaler is not None:  # fp16 training: the loss scale and its growth counter
            tensors.update({f"scaler.{k}": torch.tensor(v) for k, v in _scaler_state(grad_scaler).items()})
        save_file(tensors, str(tmp / OPTIMIZER_FILE), metadata=checksum_metadata(tensors))
        document = {"progress": progress.to_dict(), "param_groups": groups, "run_config": run_config}
        (tmp / TRAINER_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_directory(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        remove_directory(old)
    return final


def replace_directory(complete: Path, target: Path) -> None:
    """Put the complete directory ``complete`` at ``target``, replacing what is there.

    Each step is one rename, so a process killed at any moment leaves ``target`` either the old
    directory, the new one, or (between the two renames) absent; hidden copies are left then,
    which :func:`remove_leftovers` clears, and a resumed run starts from an earlier checkpoint.
    """
    old = target.with_name(f".old-{target.name}")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    complete.rename(target)
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def remove_directory(path: Path) -> None:
    """Delete a directory, first renaming it to a hidden name so that no half-deleted one is ever listed."""
    hidden = path.with_name(f".deleting-{path.name}")
    shutil.rmtree(hidden, ignore_errors=True)
    path.rename(hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def remove_leftovers(directory: Path, names: tuple[str, ...] = ("*",)) -> None:
    """Remove what a killed write, replacement or deletion of ``names`` left in ``directory``.

    Only the hidden names this module and ``atomic_write`` give temporary copies are touched; the
    default ``*`` is for a directory the run owns entirely (``checkpoints/``).
    """
    patterns = [f"{prefix}{name}" for name in names for prefix in (".tmp-", ".old-", ".deleting-")]
    for pattern in patterns + [f".{name}.tmp-*" for name in names]:  # the last: atomic_write's temporary files
        for stale in directory.glob(pattern):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of optimiser step ``step`` is (or will be) written."""
    return run_dir / CHECKPOINTS / f"step-{step:08d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary directories are ignored)."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if p.is_dir() and (p / TRAINER_FILE).is_file())


def load_checkpoint(
    path: Path,
    model: Transformer,
    optimizer: torch.optim.Optimizer,
    grad_scaler: torch.amp.GradScaler | None = None,
) -> tuple[Progress, dict[str, Any]]:
    """Restore model, optimiser and random state; return the progress and the run configuration."""
    load_weights(model, path / "model.safetensors")
    trainer_file = path / TRAINER_FILE
    try:
        document = json.loads(trainer_file.read_text(encoding="utf-8"))
        progress = Progress(**document["progress"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelFileError(trainer_file, f"unreadable training state ({error})") from None
    tensors, metadata = read_tensors(path / OPTIMIZER_FILE)
    check_checksum(path / OPTIMIZER_FILE, tensors, metadata)
    try:
        torch.set_rng_state(tensors.pop("rng.torch"))
        cuda_rng = tensors.pop("rng.cuda", None)
        if cuda_rng is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(cuda_rng)
        scaler = {name.split(".", 1)[1]: tensors.pop(name) for name in list(tensors) if name.startswith("scaler.")}
        if grad_scaler is not None and scaler:
            grad_scaler.load_state_dict({**grad_scaler.state_dict(), **{k: v.item() for k, v in scaler.items()}})
        _restore_optimizer(optimizer, tensors, document["param_groups"])
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        raise ModelFileError(
            path / OPTIMIZER_FILE, f"optimiser or random state does not fit this model ({error})"
        ) from None
    return progress, document.get("run_config", {})


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = tensor.detach().contiguous().cpu()
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()} for group in state["param_groups"]
    ]
    return tensors, groups


def _restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = tensor
    for group in groups:
        for key, value in group.items():
            if isinstance(value, list) and key != "params":
                group[key] = tuple(value)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _scaler_state(grad_scaler: torch.amp.GradScaler) -> dict[str, float | int]:
    state = grad_scaler.state_dict()
    return {key: state[key] for key in ("scale", "_growth_tracker") if key in state}


def _fsync_dir(path: Path) -> None:
    import os

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def average_checkpoints(directories: list[Path], model: Transformer) -> None:
    """Load the mean of several checkpoints' weights into ``model`` (same architecture)."""
    total: dict[str, torch.Tensor] = {}
    for directory in directories:
        load_weights(model, directory / "model.safetensors")
        for name, tensor in model.state_dict().items():
            total[name] = total.get(name, torch.zeros_like(tensor, dtype=torch.float64)) + tensor.double()
    model.load_state_dict({name: (tensor / len(directories)).to(torch.float32) for name, tensor in total.items()})
