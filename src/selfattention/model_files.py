"""A model directory's files, read and written without PyTorch: ``config.json``, the names and
metadata keys of ``model.safetensors``, and the one error every problem with them raises.

:mod:`selfattention.model_io` builds PyTorch models from these files; the engine's C model
(:mod:`selfattention.engine.c_model`) reads them with numpy. Both go through here, so that a file
is judged the same way whichever reads it.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

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


# What a file's tensors may hold for numpy, by the names a checksum gives their types (PyTorch's).
NUMPY_TYPES = {"F32": "torch.float32", "F16": "torch.float16", "F64": "torch.float64"}


class NotForNumpy(ValueError):
    """A weights file numpy cannot read as it is (bfloat16 tensors): PyTorch's loader reads it."""


def read_arrays(path: Path | str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors of a safetensors file as numpy arrays, and its metadata; checked as
    :func:`selfattention.model_io.load_weights` checks them: readable, finite, their recorded CRC-32.

    Refuses bfloat16 tensors with :class:`NotForNumpy` (numpy has no such type).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such file")
    try:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size)) if 0 < size < 100_000_000 else None
    except (OSError, ValueError) as error:
        raise ModelFileError(path, f"not a readable safetensors file ({error})") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "not a readable safetensors file (no header); it may be truncated or corrupted")
    kinds = {entry.get("dtype") for name, entry in header.items() if name != "__metadata__" and isinstance(entry, dict)}
    if not kinds <= set(NUMPY_TYPES):
        raise NotForNumpy(f"{path}: tensors of type {', '.join(sorted(str(k) for k in kinds - set(NUMPY_TYPES)))}")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(
            path, f"not a readable safetensors file ({error}); it may be truncated or corrupted"
        ) from None
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            raise ModelFileError(path, f"tensor {name} contains NaN or infinite values")
    recorded = metadata.get(CHECKSUM_KEY)
    actual = arrays_checksum(arrays) if recorded is not None else None
    if actual != recorded:
        raise ModelFileError(
            path,
            f"checksum mismatch (CRC-32 {actual}, but the file records {recorded}): its bytes "
            "changed after it was written, by a bit flip or a damaged copy; use another copy or an earlier checkpoint",
        )
    return arrays, metadata


def arrays_checksum(arrays: dict[str, np.ndarray]) -> str:
    """:func:`selfattention.model_io.tensors_checksum` of the same tensors as numpy arrays."""
    names = {np.dtype(np.float32): "torch.float32", np.dtype(np.float16): "torch.float16"}
    names[np.dtype(np.float64)] = "torch.float64"
    crc = 0
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        crc = zlib.crc32(f"{name}|{names[array.dtype]}|{tuple(array.shape)}".encode(), crc)
        crc = zlib.crc32(array.reshape(-1).view(np.uint8).data, crc)
    return f"{crc:08x}"


__all__ = [
    "CHECKSUM_KEY",
    "CONFIG_FILE",
    "CONFIG_KEY",
    "FORMAT",
    "FORMAT_VERSION",
    "FREE_FIELDS",
    "NUMPY_TYPES",
    "WEIGHTS_FILE",
    "ModelFileError",
    "NotForNumpy",
    "arrays_checksum",
    "atomic_write",
    "check_saved_config",
    "load_config",
    "read_arrays",
]
