"""A model directory's files, read and written without PyTorch: ``config.json``, the names and
metadata keys of ``model.safetensors``, and the one error every problem with them raises.

:mod:`selfattention.model_io` builds PyTorch models from these files; the engine's C model
(:mod:`selfattention.engine.c_model`) reads them with numpy. Both go through here, so that a file
is judged the same way whichever reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from selfattention.config import ModelConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "selfattention-transformer"
FORMAT_VERSION = 1
CHECKSUM_KEY = "crc32"  # in the safetensors metadata: files without it (older ones, other tools') are not checked
CONFIG_KEY = "config"
# Settings that may differ between config.json and the weights' record: they change training, a length limit or
# the languages' names, not what the weights compute.
FREE_FIELDS = ("dropout", "attention_dropout", "activation_dropout", "max_positions", "source_lang", "target_lang")


class ModelFileError(ValueError):
    """A model file is missing, unreadable, or does not match what it claims to be."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_config(directory: Path | str) -> ModelConfig:
    """Read and check ``config.json`` in a model directory."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(path, "no such file (a model directory holds config.json and model.safetensors)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ModelFileError(path, f"cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ModelFileError(path, f"not UTF-8 text (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise ModelFileError(path, f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(path, f'not a selfattention model configuration (expected "format": "{FORMAT}")')
    version = document.get("version")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise ModelFileError(
            path, f"unsupported format version {document.get('version')!r} (this release reads {FORMAT_VERSION})"
        )
    try:
        return ModelConfig.from_dict(document.get("model"))  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise ModelFileError(path, str(error)) from None


def check_saved_config(path: Path, saved: str | None, config: ModelConfig) -> None:
    """Refuse weights saved for another architecture (shape-preserving changes such as ``n_heads`` too)."""
    if saved is None:
        return
    try:
        record = json.loads(saved)
    except json.JSONDecodeError:
        raise ModelFileError(path, "the configuration recorded in the weights file is not valid JSON") from None
    if not isinstance(record, dict):
        raise ModelFileError(path, "the configuration recorded in the weights file is not a JSON object")
    wanted = config.to_dict()
    differences = [
        f"{name} {record[name]!r} (config.json: {value!r})"
        for name, value in wanted.items()
        if name in record and name not in FREE_FIELDS and record[name] != value
    ]
    if differences:
        raise ModelFileError(path, "weights do not match config.json: they were saved for " + ", ".join(differences))


__all__ = [
    "CHECKSUM_KEY",
    "CONFIG_FILE",
    "CONFIG_KEY",
    "FORMAT",
    "FORMAT_VERSION",
    "FREE_FIELDS",
    "WEIGHTS_FILE",
    "ModelFileError",
    "atomic_write",
    "check_saved_config",
    "load_config",
]
