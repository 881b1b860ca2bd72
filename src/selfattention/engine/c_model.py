"""The whole model laid out for the engine's C kernels, from numpy arrays: translating without PyTorch.

:class:`CModel` takes a :class:`~selfattention.config.ModelConfig` and the model's weights by
their state-dict names (``encoder.layers.0.self_attn.q_proj.weight``, ...; tied duplicates may be
left out, as ``model.safetensors`` leaves them), packs every Linear once for ``kernels/products.c``
(float32, or int8 quantised as :meth:`~selfattention.engine.quantize.Int8Linear.from_float` does),
and fills engine.h's structs: ``encoder_layer_t`` for ``selfattention_encode`` and ``layer_t`` for
``selfattention_step``. It computes

- :meth:`CModel.encode`: what ``Transformer.encode`` gives, in ``kernels/encoder.c``;
- :meth:`CModel.cross_kv`: each decoder layer's cross-attention keys and values of that output,
  laid out as the C step reads them;
- and holds the decoder's structs and position table for the decoding steps.

Nothing here imports PyTorch: a translation that runs only through the C kernels starts in a
fraction of ``import torch``'s time. The PyTorch modules stay the definition; the tests hold this
model's outputs to theirs.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from selfattention.config import ModelConfig
from selfattention.engine import PRECISIONS
from selfattention.engine.library import EncoderLayer, Layer, Model, Weight

ACTIVATION_CODES = {"relu": 1, "gelu": 2, "silu": 3}  # engine.h's ACT_RELU, ACT_GELU, ACT_SILU
LEVELS = 127  # int8 weights lie in [-127, 127]


class CModelError(ValueError):
    """Weights that do not make the model their configuration describes."""


def sinusoidal_table(length: int, d_model: int, layout: str = "interleaved") -> np.ndarray:
    """:func:`selfattention.layers.sinusoidal_table` in numpy: (length, d_model) float32.

    The interleaved table is computed in float32 and the halves table in float64, as there; the
    sines and cosines of two libraries may differ in the last bit.
    """
    dtype: type[np.floating[Any]] = np.float64 if layout == "halves" else np.float32
    positions = np.arange(length, dtype=dtype)[:, None]
    step = np.asarray(-math.log(10000.0) / d_model, dtype=dtype)
    inverse_freq = np.exp(np.arange(0, d_model, 2, dtype=dtype) * step)
    angles = positions * inverse_freq[None, :]
    if layout == "halves":
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)
    table = np.zeros((length, d_model), dtype=np.float32)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)
    return table


def quantize_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``weight`` (N, K) as int8 with one scale per output row: ``scales[n] = max|W[n]| / 127`` (1 for a zero row)."""
    weight = np.asarray(weight, dtype=np.float32)
    top = np.abs(weight).max(axis=1)
    scales = np.where(top > 0, top / np.float32(LEVELS), np.float32(1)).astype(np.float32)
    values = np.clip(np.rint(weight / scales[:, None]), -LEVELS, LEVELS).astype(np.int8)
    return values, scales


def _address(array: np.ndarray | None) -> int | None:
    return None if array is None else int(array.ctypes.data)


class CModel:
    """A model's weights packed for the C kernels (only read once built: searches may share it)."""

    def __init__(
        self,
        config: ModelConfig,
        arrays: Mapping[str, np.ndarray],
        cdll: ctypes.CDLL,
        precision: str = "float32",
    ) -> None:
        if precision not in PRECISIONS:
            raise CModelError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
        self.config, self.library, self.precision = config, cdll, precision
        self._arrays = dict(arrays)
        self._used: set[str] = set()  # the names read: any other is a tensor of another model
        self._keep: list[np.ndarray] = []  # every array the structs point into
        d = config.d_model
        self.d, self.heads, self.head_dim = d, config.n_heads, config.head_dim
        self.vocab, self.pad_id = config.vocab_size, config.pad_id
        if config.tie_embeddings:  # one matrix, stored once under the source's name (or copies of it)
            shared = self._array("src_embed.token.weight", (self.vocab, d))
            for name in ("tgt_embed.token.weight", "output_proj.weight"):
                if name in self._arrays and not np.array_equal(self._array(name), shared):
                    raise CModelError(
                        f"tensor {name} differs from src_embed.token.weight, to which the configuration ties it"
                    )
                self._arrays[name] = shared
        self.encoder_model = self._model("src_embed", "encoder", config.encoder_layers, out=None)
        self.decoder_model = self._model("tgt_embed", "decoder", config.decoder_layers, out="output_proj")
        self.encoder_layers = (EncoderLayer * config.encoder_layers)(
            *(self._encoder_layer(f"encoder.layers.{i}.") for i in range(config.encoder_layers))
        )
        self.decoder_layers = (Layer * config.decoder_layers)(
            *(self._decoder_layer(f"decoder.layers.{i}.") for i in range(config.decoder_layers))
        )
        self.cross_kv_weights = (Weight * config.decoder_layers)(
            *(self._linear(f"decoder.layers.{i}.cross_attn.k_proj", f"decoder.layers.{i}.cross_attn.v_proj")
              for i in range(config.decoder_layers))
        )  # fmt: skip
        self.source_positions = self._positions("src_embed")
        self.target_positions = self._positions("tgt_embed")
        unexpected = sorted(set(arrays) - self._used)
        if unexpected:
            raise CModelError(
                f"the weights do not match the configuration: unexpected {len(unexpected)} tensor(s), "
                f"e.g. {', '.join(unexpected[:3])}"
            )
        self._arrays = {}  # what the structs need is kept; the rest may go

    # -- building --------------------------------------------------------------------------------

    def _array(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        self._used.add(name)
        try:
            array = self._arrays[name]
        except KeyError:
            raise CModelError(f"the weights have no tensor {name}") from None
        array = np.ascontiguousarray(array, dtype=np.float32)
        if shape is not None and array.shape != shape:
            raise CModelError(f"tensor {name} has shape {array.shape}, but the configuration implies {shape}")
        return array

    def _hold(self, array: np.ndarray | None) -> int | None:
        if array is None:
            return None
        self._keep.append(array)
        return _address(array)

    def _shape(self, name: str) -> tuple[int, int]:
        """The weight shape ``(N, K)`` the configuration gives the Linear layer ``name``."""
        d, ff = self.d, self.config.d_ff
        if name == "output_proj":
            return (self.vocab, d)
        return {"up_proj": (ff, d), "down_proj": (d, ff)}.get(name.rpartition(".")[2], (d, d))

    def _linear(self, *names: str) -> Weight:
        """The Linear layers ``names`` (their outputs stacked, as W_Q, W_K and W_V are), packed; each weight and
        bias of the configuration's shape (every layer has a bias, the output projection with ``output_bias``)."""
        weights = [self._array(f"{name}.weight", self._shape(name)) for name in names]
        k = weights[0].shape[1]
        biases = [
            self._array(f"{name}.bias", (self._shape(name)[0],))
            if name != "output_proj" or self.config.output_bias
            else None
            for name in names
        ]
        bias = None if biases[0] is None else np.concatenate([b for b in biases if b is not None])
        weight = np.concatenate(weights) if len(weights) > 1 else weights[0]
        n = weight.shape[0]
        if self.precision == "int8":
            values, scales = quantize_weight(weight)
            packed = np.empty(self.library.selfattention_packed_size_int8(n, k), dtype=np.int8)
            sums = np.empty(n, dtype=np.int32)
            self.library.selfattention_pack_int8(_address(values), n, k, _address(packed), _address(sums))
            return Weight(self._hold(packed), self._hold(bias), self._hold(scales), self._hold(sums))
        packed = np.empty(self.library.selfattention_packed_size(n, k), dtype=np.float32)
        self.library.selfattention_pack(_address(weight), n, k, _address(packed))
        return Weight(self._hold(packed), self._hold(bias), None, None)

    def _norm(self, name: str) -> tuple[int | None, int | None]:
        return self._hold(self._array(f"{name}.weight", (self.d,))), self._hold(self._array(f"{name}.bias", (self.d,)))

    def _model(self, embed: str, stack: str, layers: int, out: str | None) -> Model:
        config = self.config
        final_w = final_b = None
        if config.norm == "pre":
            final_w, final_b = self._norm(f"{stack}.final_norm")
        return Model(
            d=self.d, heads=self.heads, ff=config.d_ff, vocab=self.vocab, layers=layers,
            norm_first=int(config.norm == "pre"), activation=ACTIVATION_CODES[config.activation],
            final_norm=int(config.norm == "pre"), pad_=0, eps=config.layer_norm_eps,
            embed_scale=math.sqrt(self.d) if config.scale_embedding else 1.0,
            embed=self._hold(self._array(f"{embed}.token.weight", (self.vocab, self.d))),
            final_w=final_w, final_b=final_b, out=Weight() if out is None else self._linear(out),
        )  # fmt: skip

    def _encoder_layer(self, prefix: str) -> EncoderLayer:
        attention, ff = f"{prefix}self_attn.", f"{prefix}feed_forward."
        norm1_w, norm1_b = self._norm(f"{prefix}self_attn_norm")
        norm2_w, norm2_b = self._norm(f"{prefix}feed_forward_norm")
        return EncoderLayer(
            qkv=self._linear(f"{attention}q_proj", f"{attention}k_proj", f"{attention}v_proj"),
            out=self._linear(f"{attention}out_proj"), up=self._linear(f"{ff}up_proj"),
            down=self._linear(f"{ff}down_proj"), norm1_w=norm1_w, norm1_b=norm1_b, norm2_w=norm2_w, norm2_b=norm2_b,
        )  # fmt: skip

    def _decoder_layer(self, prefix: str) -> Layer:
        attention, cross, ff = f"{prefix}self_attn.", f"{prefix}cross_attn.", f"{prefix}feed_forward."
        norms = [self._norm(f"{prefix}{name}") for name in ("self_attn_norm", "cross_attn_norm", "feed_forward_norm")]
        return Layer(
            qkv=self._linear(f"{attention}q_proj", f"{attention}k_proj", f"{attention}v_proj"),
            self_out=self._linear(f"{attention}out_proj"), cross_q=self._linear(f"{cross}q_proj"),
            cross_out=self._linear(f"{cross}out_proj"), up=self._linear(f"{ff}up_proj"),
            down=self._linear(f"{ff}down_proj"),
            norm1_w=norms[0][0], norm1_b=norms[0][1], norm2_w=norms[1][0], norm2_b=norms[1][1],
            norm3_w=norms[2][0], norm3_b=norms[2][1],
        )  # fmt: skip

    def _positions(self, embed: str) -> np.ndarray:
        config = self.config
        if config.positional == "learned":
            return self._array(f"{embed}.positions.weight", (config.max_positions, self.d))
        layout = "halves" if config.positional == "sinusoidal_halves" else "interleaved"
        return sinusoidal_table(config.max_positions, self.d, layout)

    def position_table(self, table: np.ndarray, length: int) -> np.ndarray:
        """Positions 0..length-1 of ``table``: sinusoids grow on demand; learned positions refuse to."""
        if length <= len(table):
            return table
        if self.config.positional == "learned":
            raise ValueError(f"input of {length} positions is longer than the {len(table)} learned positions")
        layout = "halves" if self.config.positional == "sinusoidal_halves" else "interleaved"
        return sinusoidal_table(length, self.d, layout)

    # -- computing -------------------------------------------------------------------------------

    def encode(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's output ``(B, S, D)`` for token ids ``(B, S)`` (padded with the pad id), and the mask of
        real tokens ``(B, S)`` (uint8) that attention to it takes."""
        tokens = np.ascontiguousarray(tokens, dtype=np.int64)
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be (B, S), got shape {tokens.shape}")
        sources, length = tokens.shape
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.vocab):
            raise ValueError(f"token ids must lie in [0, {self.vocab}), got ids from {tokens.min()} to {tokens.max()}")
        positions = self.position_table(self.source_positions, length)
        mask = np.ascontiguousarray(tokens != self.pad_id, dtype=np.uint8)
        memory = np.empty((sources, length, self.d), dtype=np.float32)
        if sources and length and self.library.selfattention_encode(
            ctypes.byref(self.encoder_model), self.encoder_layers, _address(positions), _address(tokens),
            sources, length, _address(mask), _address(memory),
        ):  # fmt: skip
            raise MemoryError("the encoder could not allocate its scratch memory")
        return memory, mask

    def cross_kv(self, memory: np.ndarray) -> np.ndarray:
        """Each decoder layer's cross-attention keys and values of ``memory`` ``(B, S, D)``:
        ``(layers, 2, B, H, S, Dh)``, as ``selfattention_step`` reads them."""
        memory = np.ascontiguousarray(memory, dtype=np.float32)
        sources, length, _ = memory.shape
        out = np.empty((self.config.decoder_layers, 2, sources, self.heads, length, self.head_dim), dtype=np.float32)
        if sources and length and self.library.selfattention_cross_kv(
            ctypes.byref(self.decoder_model), self.cross_kv_weights, _address(memory), sources, length, _address(out)
        ):  # fmt: skip
            raise MemoryError("the cross-attention projection could not allocate its scratch memory")
        return out


__all__ = ["ACTIVATION_CODES", "PRECISIONS", "CModel", "CModelError", "quantize_weight", "sinusoidal_table"]
