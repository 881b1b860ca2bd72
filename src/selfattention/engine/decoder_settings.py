"""Whether the C decoding step computes a model's decoder: every module and every layer's settings.

``kernels/native_step.c`` takes one set of settings for the whole decoder (``model_t``: heads,
feed-forward width, activation, LayerNorm epsilon, norm placement), Linear layers float32 or int8
on the CPU, and LayerNorms over the model's width. :func:`settings` checks each decoder layer, not
only the first: its kind, widths, Linear layers (and their shapes) and LayerNorms, and its
settings against the first layer's; then the final LayerNorm (its epsilon too), the target
embeddings, the positions and the output projection. It gives the decoder's :class:`Settings`, or
the reason the C step cannot take the model, which the caller logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfattention.engine.packed import PackedLinear
from selfattention.engine.quantize import Int8Linear
from selfattention.layers import DecoderLayer, LearnedPositions, SinusoidalPositions
from selfattention.model import Transformer

ACTIVATIONS = {F.relu: 1, F.gelu: 2, F.silu: 3}  # native_step.c's ACT_RELU, ACT_GELU, ACT_SILU
ACTIVATION_NAMES = {F.relu: "relu", F.gelu: "gelu", F.silu: "silu"}


def kind(module: nn.Module) -> str | None:
    """ "float32" or "int8" for a Linear the C step can take, else None."""
    if type(module) is Int8Linear:
        return "int8" if module.weight.device.type == "cpu" else None
    if type(module) not in (nn.Linear, PackedLinear):
        return None
    weight = module.weight
    if not isinstance(weight, Tensor) or weight.dtype != torch.float32 or weight.device.type != "cpu":
        return None
    return "float32"


def _norm(module: nn.Module | None, width: int) -> str | None:
    """Why ``module`` is not a LayerNorm over ``width`` features that native_step.c computes (None: it is)."""
    if type(module) is not nn.LayerNorm:
        return f"a {type(module).__name__}, not a LayerNorm"
    if tuple(module.normalized_shape) != (width,):
        return f"a LayerNorm over {tuple(module.normalized_shape)}, not ({width},)"
    return None


@dataclass(frozen=True)
class Settings:
    """What native_step.c takes once for the whole decoder (``model_t``): every layer's must be these."""

    heads: int
    feed_forward_width: int
    activation: str
    layer_norm_epsilon: float
    norm_placement: str  # "pre-LN" or "post-LN"


_LABELS = {
    "heads": "heads",
    "feed_forward_width": "feed-forward width",
    "activation": "activation",
    "layer_norm_epsilon": "LayerNorm epsilon",
    "norm_placement": "norm placement",
}


def _layer_settings(layer: nn.Module, width: int) -> Settings | str:
    """One decoder layer's :class:`Settings`, or why native_step.c cannot compute the layer."""
    if type(layer) is not DecoderLayer:
        return f"it is a {type(layer).__name__}, not a DecoderLayer"
    attn, cross, ff = layer.self_attn, layer.cross_attn, layer.feed_forward
    if attn.d_model != width or cross.d_model != width:
        return f"its attention is {attn.d_model} and {cross.d_model} wide, not the embeddings' {width}"
    if attn.n_heads != cross.n_heads:
        return f"its self-attention has {attn.n_heads} heads and its cross-attention {cross.n_heads}"
    inner = int(getattr(ff.up_proj, "out_features", 0))
    linears = {
        **{f"self_attn.{n}": (getattr(attn, n), (width, width)) for n in ("q_proj", "k_proj", "v_proj", "out_proj")},
        **{f"cross_attn.{n}": (getattr(cross, n), (width, width)) for n in ("q_proj", "k_proj", "v_proj", "out_proj")},
        "feed_forward.up_proj": (ff.up_proj, (inner, width)),
        "feed_forward.down_proj": (ff.down_proj, (width, inner)),
    }
    for name, (module, shape) in linears.items():
        if kind(module) is None:
            return f"its {name} is a {type(module).__name__} the C step does not take (float32 or int8 on the CPU)"
        if (module.out_features, module.in_features) != shape:
            return f"its {name} is {module.in_features} -> {module.out_features}, not {shape[1]} -> {shape[0]}"
    if len({kind(attn.q_proj), kind(attn.k_proj), kind(attn.v_proj)}) != 1:
        return "its W_Q, W_K and W_V are not all float32 or all int8 (they are one product)"
    norms = (layer.self_attn_norm, layer.cross_attn_norm, layer.feed_forward_norm)
    for name, norm in zip(("self_attn_norm", "cross_attn_norm", "feed_forward_norm"), norms, strict=True):
        problem = _norm(norm, width)
        if problem is not None:
            return f"its {name} is {problem}"
    if len({norm.eps for norm in norms}) != 1:
        return f"its LayerNorms have different epsilons ({', '.join(str(n.eps) for n in norms)})"
    if ff.activation not in ACTIVATIONS:
        return f"its activation {getattr(ff.activation, '__name__', ff.activation)} is not relu, gelu or silu"
    return Settings(
        heads=attn.n_heads, feed_forward_width=inner, activation=ACTIVATION_NAMES[ff.activation],
        layer_norm_epsilon=float(norms[0].eps), norm_placement="pre-LN" if layer.norm_first else "post-LN",
    )  # fmt: skip


def settings(model: Transformer) -> Settings | str:
    """The decoder's :class:`Settings`, the same in every layer, or why native_step.c cannot compute its step.

    Every decoder module is checked: each layer's kind, widths, Linear layers (float32 or int8 on
    the CPU, of the right shapes) and LayerNorms, and each layer's settings against the first's,
    then the final LayerNorm (its epsilon too), the embeddings, positions and output projection.
    """
    decoder, embed = model.decoder, model.tgt_embed
    token = embed.token.weight
    if token.dtype != torch.float32 or token.device.type != "cpu":
        return f"its target embeddings are {token.dtype} on {token.device.type}, not float32 on the CPU"
    if not isinstance(embed.positions, (SinusoidalPositions, LearnedPositions)):
        return f"its positions are a {type(embed.positions).__name__}"
    width, vocab = embed.token.embedding_dim, embed.token.num_embeddings
    if len(decoder.layers) == 0:
        return "its decoder has no layers"
    found = [_layer_settings(layer, width) for layer in decoder.layers]
    for index, layer in enumerate(found):
        if isinstance(layer, str):
            return f"decoder layer {index}: {layer}"
    first = found[0]
    assert isinstance(first, Settings)
    if width % first.heads:
        return f"its width {width} is not a multiple of its {first.heads} heads"
    for index, layer in enumerate(found[1:], 1):
        for field, value in vars(layer).items():
            if value != getattr(first, field):
                return (
                    f"decoder layer {index}'s {_LABELS[field]} ({value}) differs from layer 0's "
                    f"({getattr(first, field)}), and the C step takes one for every layer"
                )
    final = decoder.final_norm
    if final is not None:
        problem = _norm(final, width)
        if problem is not None:
            return f"its final norm is {problem}"
        if final.eps != first.layer_norm_epsilon:
            return f"its final LayerNorm's epsilon ({final.eps}) differs from the layers' ({first.layer_norm_epsilon})"
    out = model.output_proj
    if kind(out) is None:
        return f"its output projection is a {type(out).__name__} the C step does not take"
    if (out.in_features, out.out_features) != (width, vocab):
        return f"its output projection is {out.in_features} -> {out.out_features}, not {width} -> {vocab}"
    return first


__all__ = ["ACTIVATIONS", "Settings", "kind", "settings"]
