"""Training's linear layers through oneDNN: y = x W^T + b, and its backward pass, on a CPU.

Shapes: M rows (every dimension of the input but the last, flattened), I input features,
O output features.

PyTorch sends a float32 matrix product on a CPU to MKL, which on AMD processors runs its AVX2
code: 172-181 GFLOP/s on the 2-core Zen 5 benchmark machine. oneDNN (PyTorch's ``mkldnn``
operators) compiles AVX-512 kernels for the processor at hand and runs the same products at
361-394 GFLOP/s (``benchmarks/flops.py``), with errors of the same order as MKL's. :class:`OneDNNLinear` computes all
three products of a linear layer with it:

    forward      y      = x W^T + b        (M, I) x (I, O), the bias fused in
    backward     grad_x = grad_y W         (M, O) x (O, I)
                 grad_W = grad_y^T x       (O, M) x (M, I), or its transpose x^T grad_y when O > I
                 grad_b = sum of grad_y over the rows

grad_W of the wide output projection (8,000 outputs from 256 inputs) is computed as its
transpose, x^T grad_y. Operands are passed as views; oneDNN makes a contiguous copy of a
transposed first operand itself. What it is worth in a whole training step:
``benchmarks/training_step.py`` and ``benchmarks/training_throughput.py`` (BENCHMARKS.md).

:class:`OneDNNLinears` is the one switch: inside ``with OneDNNLinears():`` every
``torch.nn.functional.linear`` call (every ``nn.Linear``, the tied output projection among them)
whose tensors are float32 on a CPU, outside autocast, goes through :class:`OneDNNLinear`; any
other call (float64, bfloat16, CUDA, autocast, or a PyTorch without the oneDNN operator) is left
to ``F.linear``. The trainer enters it around the forward pass unless ``train.onednn_linear =
false`` (docs/training.md) or the engine is switched off (``SELFATTENTION_NATIVE=0``: then
:func:`onednn_available` answers False).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.overrides import TorchFunctionMode

from selfattention.engine import switched_off


def onednn_available() -> bool:
    """True when this PyTorch has oneDNN and its fused linear operator, and the engine is on."""
    if switched_off():
        return False
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _product(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """a b^T (+ bias) by oneDNN: a (M, K), b (N, K), both 2-D, either may be a strided view."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


def takes_onednn(input: Tensor, weight: Tensor, bias: Tensor | None) -> bool:
    """Whether a linear call runs on oneDNN: float32 CPU tensors, no autocast, the operator present."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return (
        all(t.dtype == torch.float32 and t.device.type == "cpu" and t.layout == torch.strided for t in tensors)
        and weight.dim() == 2
        and input.dim() >= 1
        and input.numel() > 0
        and weight.numel() > 0
        and not torch.is_autocast_enabled("cpu")
        and onednn_available()
    )


class OneDNNLinear(torch.autograd.Function):
    """``F.linear(input, weight, bias)`` with its forward and backward products on oneDNN."""

    @staticmethod
    def forward(ctx: Any, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        rows = input.reshape(-1, input.shape[-1])  # (M, I)
        output = _product(rows, weight, bias)  # (M, O)
        ctx.save_for_backward(rows, weight)
        ctx.input_shape = input.shape
        ctx.has_bias = bias is not None
        return output.view(*input.shape[:-1], weight.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        rows, weight = ctx.saved_tensors
        grad = grad_output.reshape(-1, weight.shape[0])  # (M, O)
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = _product(grad, weight.t()).view(ctx.input_shape)  # (M, O) x (O, I)
        if ctx.needs_input_grad[1]:
            out_features, in_features = weight.shape
            if out_features > in_features:  # the wide output projection: (I, M) x (M, O), transposed
                grad_weight = _product(rows.t(), grad.t()).t()
            else:
                grad_weight = _product(grad.t(), rows.t())  # (O, M) x (M, I)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_input, grad_weight, grad_bias


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear``, on oneDNN when :func:`takes_onednn` says so."""
    if takes_onednn(input, weight, bias):
        return OneDNNLinear.apply(input, weight, bias)
    return F.linear(input, weight, bias)


class OneDNNLinears(TorchFunctionMode):
    """Within this context, ``F.linear`` (and so every ``nn.Linear``) is :func:`linear`."""

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.linear:
            return linear(*args, **kwargs)
        return func(*args, **kwargs)


__all__ = ["OneDNNLinear", "OneDNNLinears", "linear", "onednn_available", "takes_onednn"]
