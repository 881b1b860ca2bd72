"""float32 inference with the Linear layers' weights laid out once for oneDNN.

PyTorch multiplies float32 matrices on the CPU with MKL, which on AMD processors runs its AVX2
code: about 165 GFLOP/s on this project's 2-core AMD EPYC, against 300-370 for oneDNN's AVX-512
kernels on the same cores (``benchmarks/flops.py`` measures both). :func:`pack_linears` swaps every
``nn.Linear`` of a model for a :class:`PackedLinear`, whose weight oneDNN has reordered into its
own blocked layout at load time, so that each decoding step's products run at oneDNN's speed:
2-3x faster per layer at batch 32 (docs/speed.md).

The swap is for inference only: a :class:`PackedLinear` keeps the original ``weight`` and ``bias``
(shared, not copied; inspection reads them), and falls back to ``F.linear`` whenever gradients are
wanted, the input is not float32 on the CPU, or the packed copy no longer matches the weight's
version (someone changed the weight after packing). The engine's switch,
``SELFATTENTION_NATIVE=0``, turns packing off.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfattention.engine.onednn_linear import onednn_available

BATCH_HINT = 32  # the row count oneDNN lays the weight out for; measured best from 1 to 1,088 rows


def onednn_wanted() -> bool:
    """Whether oneDNN float32 products are available here and the engine is on (not ``SELFATTENTION_NATIVE=0``)."""
    return onednn_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")


class PackedLinear(nn.Module):
    """``nn.Linear``'s product, with a oneDNN-packed copy of the weight for float32 CPU inference."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        with torch.no_grad():
            self._packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), BATCH_HINT)
        self._packed_version = linear.weight._version

    def forward(self, x: Tensor) -> Tensor:
        usable = (
            x.dtype == torch.float32
            and x.device.type == "cpu"
            and self.weight.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))
            and self.weight._version == self._packed_version
        )
        if not usable:
            return F.linear(x, self.weight, self.bias)
        bias = None if self.bias is None else self.bias.detach()
        return torch.ops.mkldnn._linear_pointwise(x, self._packed, bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def pack_linears(model: nn.Module, leave: Collection[nn.Module] = ()) -> int:
    """Swap every float32 CPU ``nn.Linear`` inside ``model`` but those in ``leave`` for a :class:`PackedLinear`, in place.

    ``leave``: layers computed elsewhere (the C decoding step packs its own copy of the decoder's
    weights: a oneDNN copy of them too would be memory spent for nothing). Returns how many were
    swapped: none when oneDNN is unavailable or turned off.
    """
    if not onednn_wanted():
        return 0
    left = {id(module) for module in leave}
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear
        and id(child) not in left
        and child.weight.dtype == torch.float32
        and child.weight.device.type == "cpu"
    ]
    for parent, name, child in targets:
        setattr(parent, name, PackedLinear(child))
    return len(targets)
