"""Precision for inference: float32 as trained, or int8 Linear layers computed by the engine's own int8 product.

int8 swaps every ``nn.Linear`` of a copy of the model for an :class:`Int8Linear`: its weight as
8-bit integers with one scale per output column (symmetric: ``W[n] ≈ scales[n] * q[n]``, ``q`` in
[-127, 127], ``scales[n] = max|W[n]| / 127``) and its bias in float32. Embeddings, layer norms and
the attention arithmetic stay float32; the tied output projection gets its own int8 copy, the
float32 embedding stays as it was. CPU only.

Each product quantises every row of its input the same way, on the fly (one scale per row,
``max|x| / 127``, rounded to the nearest, ties to even), sums the products of the integers
exactly and scales the sums back: ``y[m, n] = s[m] * scales[n] * sum_k qx[m, k] q[n, k] + b[n]``.
That is ``kernels/products.c``'s int8 product: the C decoding step computes the decoder's
layers with it (packing their weights for itself), and an :class:`Int8Linear` runs every other
layer (the encoder's, the source's keys and values) through the same kernel
(``selfattention_linear``), its weight packed once. Without the engine's library, or with the
engine off (``SELFATTENTION_NATIVE=0``), :func:`int8_linear` computes the same integers in
PyTorch; the results then differ from the kernel's in float32 rounding only.
"""

from __future__ import annotations

import copy
import ctypes
import threading
import weakref
from collections.abc import Collection

import torch
from torch import Tensor, nn

from selfattention.engine import PRECISIONS, library
from selfattention.engine.library import Weight
from selfattention.engine.packed import PackedLinear
from selfattention.model import Transformer

LEVELS = 127  # int8 values lie in [-127, 127], for weights and activations alike
EXACT_FLOAT32_K = 2**24 // LEVELS**2  # up to 1040 products of such integers sum exactly in float32


class PrecisionError(ValueError):
    """A precision this project cannot run."""


def check_precision(precision: str, device: str | torch.device = "cpu") -> None:
    """Refuse an unknown precision, or int8 anywhere but the CPU, with a message saying why."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision == "int8" and torch.device(device).type != "cpu":
        raise PrecisionError(f"int8 runs on the CPU only, not on {device}")


def quantize_rows(x: Tensor) -> tuple[Tensor, Tensor]:
    """Each row (last dimension) of float32 ``x`` as integers in [-127, 127] (float32) and its scale ``(..., 1)``.

    As ``products.c`` quantises: scale ``max|x| / 127`` (1 for a zero row), ``x`` times the
    scale's float32 inverse, clamped, rounded to the nearest integer, ties to even.
    """
    top = x.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(top > 0, top / LEVELS, torch.ones_like(top))
    return torch.round((x * (1.0 / scale)).clamp(-LEVELS, LEVELS)), scale


def int8_linear(x: Tensor, weight: Tensor, scales: Tensor, bias: Tensor | None) -> Tensor:
    """The int8 product in PyTorch: ``x`` ``(..., K)`` float32, ``weight`` ``(N, K)`` int8, ``scales`` ``(N,)``.

    The sums of integer products are exact: in float32 while K <= 1040 (each partial sum stays
    below 2^24) and PyTorch's float32 products are full float32, in float64 otherwise; never
    under autocast.
    """
    q, scale = quantize_rows(x.to(torch.float32))
    full = weight.shape[1] <= EXACT_FLOAT32_K and torch.get_float32_matmul_precision() == "highest"
    exact = torch.float32 if full else torch.float64
    with torch.autocast(x.device.type, enabled=False):
        sums = (q.to(exact) @ weight.to(exact).T).to(torch.float32)
    y = sums * (scale * scales)
    return y if bias is None else y + bias


class PackedInt8:
    """An int8 weight ``(N, K)`` laid out for ``native_step.c`` (``selfattention_pack_int8``): ``weight``
    is engine.h's ``weight_t``, pointing into the tensors this object keeps."""

    def __init__(self, cdll: ctypes.CDLL, values: Tensor, scales: Tensor, bias: Tensor | None) -> None:
        rows, columns = values.shape
        values = values.contiguous()
        packed = torch.empty(cdll.selfattention_packed_size_int8(rows, columns), dtype=torch.int8)
        sums = torch.empty(rows, dtype=torch.int32)  # each column's sum of weights
        cdll.selfattention_pack_int8(values.data_ptr(), rows, columns, packed.data_ptr(), sums.data_ptr())
        self.scales = scales.detach().to(torch.float32).contiguous()
        self.bias = None if bias is None else bias.detach().to(torch.float32).contiguous()
        self.packed, self.sums = packed, sums
        self.weight = Weight(
            packed.data_ptr(), None if self.bias is None else self.bias.data_ptr(), self.scales.data_ptr(),
            sums.data_ptr(),
        )  # fmt: skip


# Beside the layers, not in them: a module holding ctypes pointers could not be copied or pickled.
_packs: weakref.WeakKeyDictionary[Int8Linear, tuple[tuple[tuple[int, int], ...], PackedInt8]] = (
    weakref.WeakKeyDictionary()
)
_packing = threading.Lock()  # two threads' first products on one layer pack it once


class Int8Linear(nn.Module):
    """``nn.Linear``'s product on an int8 weight with one scale per output column; inference only.

    ``weight`` ``(N, K)`` int8, ``scales`` ``(N,)`` float32 and ``bias`` ``(N,)`` float32 (or None)
    are buffers. The product runs in the engine's C kernel when its library is loaded (the weight
    packed at the first product, or by :func:`pack_int8_linears`, and again if the weight changes),
    else in :func:`int8_linear`.
    """

    weight: Tensor
    scales: Tensor
    bias: Tensor | None

    def __init__(self, weight: Tensor, scales: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        if weight.dtype != torch.int8 or weight.dim() != 2 or scales.shape != weight.shape[:1]:
            raise ValueError(
                f"an int8 Linear needs an int8 (N, K) weight and N scales, got {weight.dtype} "
                f"{tuple(weight.shape)} and {tuple(scales.shape)}"
            )
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight", weight)
        self.register_buffer("scales", scales.to(torch.float32))
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32))

    @classmethod
    def from_float(cls, linear: nn.Linear | PackedLinear) -> Int8Linear:
        """An ``nn.Linear``'s weight quantised symmetrically, one scale per output column (max|W[n]| / 127)."""
        weight = linear.weight.detach().to(torch.float32)
        top = weight.abs().amax(dim=1)
        scales = torch.where(top > 0, top / LEVELS, torch.ones_like(top))
        values = torch.round(weight / scales[:, None]).clamp(-LEVELS, LEVELS).to(torch.int8)
        bias = linear.bias
        return cls(values, scales, None if bias is None else bias.detach())

    def packed(self, cdll: ctypes.CDLL) -> PackedInt8:
        """The weight packed for ``cdll``'s int8 product: once, and again after a buffer changes (a new weight, say)."""
        key = tuple((t.data_ptr(), t._version) for t in (self.weight, self.scales, self.bias) if t is not None)
        with _packing:
            found = _packs.get(self)
            if found is None or found[0] != key:
                found = _packs[self] = (key, PackedInt8(cdll, self.weight, self.scales, self.bias))
            return found[1]

    def forward(self, x: Tensor) -> Tensor:
        loaded = library.load()
        if loaded is None or x.device.type != "cpu" or (torch.is_grad_enabled() and x.requires_grad):
            return int8_linear(x, self.weight, self.scales, self.bias)
        packed = self.packed(loaded.cdll)
        rows = x.detach().reshape(-1, self.in_features).to(torch.float32).contiguous()
        y = torch.empty(rows.shape[0], self.out_features)
        if loaded.cdll.selfattention_linear(
            rows.data_ptr(), rows.shape[0], self.in_features, ctypes.byref(packed.weight), self.out_features,
            y.data_ptr(),
        ):  # fmt: skip
            raise MemoryError("the int8 product could not allocate its scratch memory")
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def with_precision(model: Transformer, precision: str) -> Transformer:
    """``model`` at ``precision``: itself for float32, an int8 copy (every Linear an :class:`Int8Linear`) for int8."""
    check_precision(precision, next(model.parameters()).device)
    if precision == "float32":
        return model
    quantized = copy.deepcopy(model).eval()
    targets = [
        (parent, name, child)
        for parent in quantized.modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear or type(child) is PackedLinear
    ]
    with torch.no_grad():
        for parent, name, child in targets:
            setattr(parent, name, Int8Linear.from_float(child))
    return quantized


def pack_int8_linears(model: nn.Module, leave: Collection[nn.Module] = ()) -> int:
    """Pack every :class:`Int8Linear` inside ``model`` but those in ``leave`` for the engine's kernel, now.

    ``leave``: layers the C decoding step computes, which it packs for itself. Packing at load
    rather than at the first product lets forked decoding workers share the packed weights.
    Returns how many were packed: none without the engine's library.
    """
    loaded = library.load()
    if loaded is None:
        return 0
    left = {id(module) for module in leave}
    layers = [m for m in model.modules() if type(m) is Int8Linear and id(m) not in left]
    for layer in layers:
        layer.packed(loaded.cdll)
    return len(layers)


__all__ = [
    "PRECISIONS",
    "Int8Linear",
    "PackedInt8",
    "PrecisionError",
    "check_precision",
    "int8_linear",
    "pack_int8_linears",
    "quantize_rows",
    "with_precision",
]
