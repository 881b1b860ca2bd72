"""Saving and loading models: weights in safetensors plus a JSON configuration.

A model directory holds ``config.json`` and ``model.safetensors``. This format never pickles:
safetensors stores raw tensors, and JSON stores the shape of the model. The weights file's
metadata also records a CRC-32 of every tensor and the model configuration the weights were
saved with, so a bit flip anywhere in the data, or a ``config.json`` that no longer matches the
weights (even where the shapes agree, as with ``n_heads``), is an error rather than a silently
different model. Every problem with a file is reported as a :class:`ModelFileError` naming the file.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from selfattention.config import ModelConfig
from selfattention.model import Transformer, build_model
from selfattention.model_files import (
    CHECKSUM_KEY,
    CONFIG_FILE,
    CONFIG_KEY,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    ModelFileError,
    atomic_write,
    check_saved_config,
    load_config,
)

_READABLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def save_model(model: Transformer, directory: Path | str, config: ModelConfig | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory``; return it.

    Each file is written to a temporary name and renamed, so a crash never leaves half a file.
    """
    config = config or model.config
    if config is None:
        raise ValueError("save_model needs the model's configuration (build the model with build_model)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors, aliases = unique_tensors(model)
    metadata = {
        "format": FORMAT,
        "version": str(FORMAT_VERSION),
        "aliases": json.dumps(aliases),
        CONFIG_KEY: json.dumps(config.to_dict(), sort_keys=True),
        **checksum_metadata(tensors),
    }
    atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    document = {"format": FORMAT, "version": FORMAT_VERSION, "model": config.to_dict()}
    text = json.dumps(document, indent=2) + "\n"
    atomic_write(directory / CONFIG_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return directory


def load_model(directory: Path | str, *, device: str | torch.device = "cpu") -> Transformer:
    """Build the model ``config.json`` describes and fill it from ``model.safetensors``."""
    directory = Path(directory)
    if not directory.exists():
        raise ModelFileError(directory, "no such model directory")
    config = load_config(directory)
    model = build_model(config)
    load_weights(model, directory / WEIGHTS_FILE)
    model.eval()
    return model.to(device)


def load_weights(model: Transformer, path: Path | str) -> None:
    """Copy the tensors of a safetensors file into ``model``, checking every name and shape."""
    path = Path(path)
    tensors, metadata = read_tensors(path)
    stored = dict(tensors)  # what the file holds, before tied duplicates are filled in
    expected = model.state_dict()
    _, aliases = unique_tensors(model)
    for alias, source in aliases.items():
        if source in tensors and alias not in tensors:
            tensors[alias] = tensors[source]
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s), e.g. {', '.join(unexpected[:3])}")
        raise ModelFileError(path, "weights do not match config.json: " + "; ".join(parts))
    for name, tensor in tensors.items():
        want = expected[name]
        if tensor.shape != want.shape:
            raise ModelFileError(
                path, f"tensor {name} has shape {tuple(tensor.shape)}, but config.json implies {tuple(want.shape)}"
            )
        if not tensor.is_floating_point() or tensor.dtype not in _READABLE_DTYPES:
            raise ModelFileError(
                path, f"tensor {name} has dtype {tensor.dtype}; expected float32, float16, bfloat16 or float64"
            )
        if not torch.isfinite(tensor).all():
            raise ModelFileError(path, f"tensor {name} contains NaN or infinite values")
    check_checksum(path, stored, metadata)
    if model.config is not None:
        check_saved_config(path, metadata.get(CONFIG_KEY), model.config)
    model.load_state_dict({name: tensor.to(expected[name].dtype) for name, tensor in tensors.items()})


def read_tensors(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file; see :func:`check_checksum` for its integrity."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(
            path, f"not a readable safetensors file ({error}); it may be truncated or corrupted"
        ) from None
    return tensors, metadata


def check_checksum(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Refuse tensors whose CRC-32 differs from the one their file records (a file without one passes)."""
    recorded = metadata.get(CHECKSUM_KEY)
    actual = tensors_checksum(tensors)
    if recorded is not None and actual != recorded:
        raise ModelFileError(
            path,
            f"checksum mismatch (CRC-32 {actual}, but the file records {recorded}): its bytes changed after it "
            "was written, by a bit flip or a damaged copy; use another copy or an earlier checkpoint",
        )


def checksum_metadata(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    """The metadata entry that lets :func:`check_checksum` notice any change to ``tensors``."""
    return {CHECKSUM_KEY: tensors_checksum(tensors)}


def tensors_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """CRC-32 over each tensor's name, dtype, shape and bytes, in name order, as 8 hex digits."""
    crc = 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        crc = zlib.crc32(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode(), crc)
        crc = zlib.crc32(tensor.reshape(-1).view(torch.uint8).numpy().data, crc)
    return f"{crc:08x}"


def unique_tensors(model: Transformer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """State dict without tied duplicates, and the map from each duplicate to the name kept."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    first_name: dict[tuple[int, tuple[int, ...]], str] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if key in first_name:
            aliases[name] = first_name[key]
        else:
            first_name[key] = name
            tensors[name] = tensor.detach().contiguous().cpu()
    return tensors, aliases
