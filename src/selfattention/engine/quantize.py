"""Precision for inference: float32 as trained, or int8 dynamic quantisation of every Linear layer.

int8 stores each ``nn.Linear`` weight as 8-bit integers with a per-tensor scale and quantises the
activations on the fly (``torch.ao.quantization.quantize_dynamic``); embeddings, layer norms and
attention arithmetic stay float32. CPU only. The tied output projection gets its own int8 copy; the
float32 embedding stays as it was. Decoding steps take the same int8 weights into C
(``native_step``), which quantises each activation row on its own (symmetric, 8 bits) where
PyTorch's layers quantise a whole batch at once.
"""

from __future__ import annotations

import torch
from torch import nn

from selfattention.model import Transformer

PRECISIONS = ("float32", "int8")


class PrecisionError(ValueError):
    """A precision this project cannot run."""


def check_precision(precision: str, device: str | torch.device = "cpu") -> None:
    """Refuse an unknown precision, or int8 anywhere but the CPU, with a message saying why."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision == "int8" and torch.device(device).type != "cpu":
        raise PrecisionError(f"int8 runs on the CPU only, not on {device}")


def with_precision(model: Transformer, precision: str) -> Transformer:
    """``model`` at ``precision``: itself for float32, an int8 copy (Linear layers quantised) for int8."""
    check_precision(precision, next(model.parameters()).device)
    if precision == "float32":
        return model
    quantized = torch.ao.quantization.quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8, inplace=False)
    return quantized
