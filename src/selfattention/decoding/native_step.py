"""A decoding step in C: every decoder layer and the output projection in one call.

A step of search at batch 32 is about a hundred small PyTorch operations (products of 32 rows,
layer norms, additions, cache appends), each with a fixed cost in Python and in PyTorch's
dispatch that is larger than its arithmetic. ``native_step.c`` computes the same step, what
``Transformer.decode`` gives for one new position with a cache, in one call: its products run on
weights packed once per model for its own small-row kernel, the attention is ``few_queries.c``'s
kernel, and the caches are preallocated tensors written in place. The encoder, the search and the
caches' reordering stay in PyTorch.

:func:`start` gives a :class:`NativeStep` for one search, or None where it does not apply: the
model training, a weight not float32 on the CPU (int8 models, a GPU), an activation or a module
it does not know, no C compiler, or ``SELFATTENTION_NATIVE=0``. The search then runs
``Transformer.decode`` (``steps.TorchStep``), which stays the definition: a test holds this step's
logits to it. What it is worth: ``benchmarks/decoding_levers.py``.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import weakref
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfattention import native
from selfattention.attention import few_queries
from selfattention.decoding.packed import PackedLinear
from selfattention.layers import DecoderLayer, LearnedPositions, SinusoidalPositions
from selfattention.model import Transformer

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native_step.c")
FALLBACK = "decoding steps run through PyTorch"
ACTIVATIONS = {F.relu: 1, F.gelu: 2, F.silu: 3}

_pointer = ctypes.c_void_p


class _Model(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_int64) for name in ("d", "heads", "ff", "vocab", "layers")),
        *((name, ctypes.c_int32) for name in ("norm_first", "activation", "final_norm", "pad_")),
        ("eps", ctypes.c_float),
        ("embed_scale", ctypes.c_float),
        *((name, _pointer) for name in ("embed", "positions", "out", "out_bias", "final_w", "final_b")),
    ]


_LAYER_FIELDS = (
    "qkv", "qkv_b", "self_out", "self_out_b", "norm1_w", "norm1_b",
    "cross_q", "cross_q_b", "cross_out", "cross_out_b", "norm2_w", "norm2_b",
    "up", "up_b", "down", "down_b", "norm3_w", "norm3_b",
)  # fmt: skip


class _Layer(ctypes.Structure):
    _fields_ = [(name, _pointer) for name in _LAYER_FIELDS]


def build(directory: Path | None = None) -> Path | None:
    """Compile ``native_step.c`` with ``few_queries.c`` into ``directory`` (default: the kernel cache)."""
    return native.build("native_step", [SOURCE, few_queries.SOURCE], FALLBACK, directory)


@functools.cache
def _library() -> ctypes.CDLL | None:
    if native.switched_off():
        return None
    path = build()
    if path is None:
        return None
    try:
        library = ctypes.CDLL(str(path))
        size, pointer = ctypes.c_int64, ctypes.c_void_p
        library.selfattention_packed_size.argtypes = [size, size]
        library.selfattention_packed_size.restype = size
        library.selfattention_pack.argtypes = [pointer, size, size, pointer]
        library.selfattention_pack.restype = None
        library.selfattention_step.argtypes = [
            ctypes.POINTER(_Model), ctypes.POINTER(_Layer), pointer, size, size,
            pointer, size, size, pointer, size, size, pointer, pointer,
        ]  # fmt: skip
        library.selfattention_step.restype = ctypes.c_int
        library.selfattention_reorder.argtypes = [pointer, size, size, size, size, size, pointer, size, size]
        library.selfattention_reorder.restype = ctypes.c_int
    except (OSError, AttributeError) as error:
        log.warning("could not load %s (%s); %s", path, error, FALLBACK)
        return None
    return library


def available() -> bool:
    """Whether the step's library is built and loaded here (it is built on first use)."""
    return _library() is not None


def _weight(module: nn.Module) -> tuple[Tensor, Tensor | None] | None:
    """A Linear's float32 CPU weight and bias, or None for anything else (int8, a GPU)."""
    if type(module) not in (nn.Linear, PackedLinear):
        return None
    weight, bias = module.weight, module.bias
    if not isinstance(weight, Tensor) or weight.dtype != torch.float32 or weight.device.type != "cpu":
        return None
    return weight.detach(), bias.detach() if isinstance(bias, Tensor) else None


def _norm(module: nn.Module, width: int) -> nn.LayerNorm | None:
    if type(module) is not nn.LayerNorm or tuple(module.normalized_shape) != (width,):
        return None
    return module


class NativeDecoder:
    """A model's decoder weights laid out for ``native_step.c``; built once per model and weights."""

    def __init__(self, model: Transformer, library: ctypes.CDLL) -> None:
        self.library = library
        self._keep: list[Tensor] = []  # every tensor the C structures point into
        decoder, embed = model.decoder, model.tgt_embed
        layers = _decoder_layers(model)
        first = layers[0]
        self.d, self.heads = first.self_attn.d_model, first.self_attn.n_heads
        self.head_dim = self.d // self.heads
        self.layers = len(layers)
        self.vocab = embed.token.num_embeddings
        self.positions: nn.Module = embed.positions
        self.pad_id = model.pad_id
        out = _weight(model.output_proj)
        assert out is not None
        ff = first.feed_forward.up_proj.out_features
        final = decoder.final_norm
        self.model = _Model(
            d=self.d, heads=self.heads, ff=ff, vocab=self.vocab, layers=self.layers,
            norm_first=int(first.norm_first), activation=ACTIVATIONS[first.feed_forward.activation],
            final_norm=int(final is not None), pad_=0, eps=float(first.self_attn_norm.eps),
            embed_scale=float(embed.scale), embed=self._hold(embed.token.weight.detach()),
            positions=None, out=self._pack(out[0]), out_bias=self._hold(out[1]),
            final_w=None if final is None else self._hold(final.weight),
            final_b=None if final is None else self._hold(final.bias),
        )  # fmt: skip
        self.layer_array = (_Layer * self.layers)(*(self._layer(layer) for layer in layers))
        self.cross_projections = [(layer.cross_attn.k_proj, layer.cross_attn.v_proj) for layer in layers]

    def _hold(self, tensor: Tensor | None) -> int | None:
        if tensor is None:
            return None
        tensor = tensor.detach().contiguous()
        self._keep.append(tensor)
        return tensor.data_ptr()

    def _pack(self, weight: Tensor) -> int:
        rows, columns = weight.shape
        packed = torch.empty(self.library.selfattention_packed_size(rows, columns))
        weight = weight.detach().contiguous()
        self.library.selfattention_pack(weight.data_ptr(), rows, columns, packed.data_ptr())
        self._keep.append(packed)
        return packed.data_ptr()

    def _layer(self, layer: DecoderLayer) -> _Layer:
        attn, cross, ff = layer.self_attn, layer.cross_attn, layer.feed_forward
        q, k, v = (_weight(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj))
        assert q is not None and k is not None and v is not None
        qkv_bias = None if q[1] is None else torch.cat([q[1], k[1], v[1]])  # type: ignore[list-item]
        fields: dict[str, int | None] = {
            "qkv": self._pack(torch.cat([q[0], k[0], v[0]])),
            "qkv_b": self._hold(qkv_bias),
        }
        for name, module in (("self_out", attn.out_proj), ("cross_q", cross.q_proj), ("cross_out", cross.out_proj),
                             ("up", ff.up_proj), ("down", ff.down_proj)):  # fmt: skip
            weight = _weight(module)
            assert weight is not None
            fields[name], fields[f"{name}_b"] = self._pack(weight[0]), self._hold(weight[1])
        for index, norm in enumerate((layer.self_attn_norm, layer.cross_attn_norm, layer.feed_forward_norm), 1):
            fields[f"norm{index}_w"], fields[f"norm{index}_b"] = self._hold(norm.weight), self._hold(norm.bias)
        return _Layer(**fields)

    def position_table(self, length: int) -> Tensor:
        """Positions 0..length-1, (length, D); learned positions stop at their table's end."""
        if isinstance(self.positions, LearnedPositions):
            length = min(length, self.positions.max_positions)
        return self.positions(length, 0).detach().contiguous()


def _decoder_layers(model: Transformer) -> list[DecoderLayer]:
    return [layer for layer in model.decoder.layers if isinstance(layer, DecoderLayer)]


def _supported(model: Transformer) -> bool:
    """Whether every decoder module is one ``native_step.c`` computes, in float32 on the CPU."""
    decoder, embed = model.decoder, model.tgt_embed
    if model.training or len(decoder.layers) == 0 or _weight(model.output_proj) is None:
        return False
    token = embed.token.weight
    if token.dtype != torch.float32 or token.device.type != "cpu":
        return False
    if not isinstance(embed.positions, (SinusoidalPositions, LearnedPositions)):
        return False
    if (model.output_proj.in_features, model.output_proj.out_features) != (
        embed.token.embedding_dim,
        embed.token.num_embeddings,
    ):
        return False
    layers = _decoder_layers(model)
    if len(layers) != len(decoder.layers) or any(type(layer) is not DecoderLayer for layer in layers):
        return False
    first = layers[0]
    width, heads, ff = first.self_attn.d_model, first.self_attn.n_heads, first.feed_forward.up_proj.out_features
    if width % heads or embed.token.embedding_dim != width:
        return False
    if decoder.final_norm is not None and _norm(decoder.final_norm, width) is None:
        return False
    for layer in layers:
        attention = (layer.self_attn, layer.cross_attn)
        if any(a.d_model != width or a.n_heads != heads for a in attention):
            return False
        linears: list[nn.Module] = [m for a in attention for m in (a.q_proj, a.k_proj, a.v_proj, a.out_proj)]
        linears += [layer.feed_forward.up_proj, layer.feed_forward.down_proj]
        if any(_weight(m) is None for m in linears) or layer.feed_forward.up_proj.out_features != ff:
            return False
        norms = (layer.self_attn_norm, layer.cross_attn_norm, layer.feed_forward_norm)
        if any(_norm(n, width) is None for n in norms) or len({n.eps for n in norms}) != 1:
            return False
        if layer.feed_forward.activation not in ACTIVATIONS or layer.norm_first != first.norm_first:
            return False
        if (layer.self_attn.q_proj.bias is None) != (layer.self_attn.v_proj.bias is None):
            return False
    return True


def _version(model: Transformer) -> tuple[tuple[int, int], ...]:
    """What identifies the decoder's weights as they are now: each tensor's address and version."""
    tensors = [*model.decoder.parameters(), *model.tgt_embed.parameters(), *model.output_proj.parameters()]
    return tuple((t.data_ptr(), t._version) for t in tensors)


_decoders: weakref.WeakKeyDictionary[Transformer, tuple[tuple[tuple[int, int], ...], NativeDecoder]] = (
    weakref.WeakKeyDictionary()
)  # beside the model, not in it: a model with ctypes pointers inside could not be copied or pickled


def decoder_for(model: Transformer) -> NativeDecoder | None:
    """``model``'s :class:`NativeDecoder` (packed on first use, again when its weights change), or None."""
    library = _library()
    if library is None or not _supported(model):
        return None
    version = _version(model)
    cached = _decoders.get(model)
    if cached is not None and cached[0] == version:
        return cached[1]
    with torch.no_grad():
        decoder = NativeDecoder(model, library)
    _decoders[model] = (version, decoder)
    return decoder


class NativeStep:
    """One search's decoding steps in C: ``step(tokens)`` gives the next token's logits for each live row.

    ``memory`` ``(B, S, D)`` is the encoder's output and ``memory_mask`` ``(B, 1, 1, S)`` its real
    tokens; ``rows`` (a multiple of B) rows decode, ``rows / B`` per source, for up to ``steps`` steps.
    """

    def __init__(
        self, decoder: NativeDecoder, memory: Tensor, memory_mask: Tensor | None, rows: int, steps: int
    ) -> None:
        self.decoder = decoder
        batch, length, _ = memory.shape
        self.groups = rows // batch
        heads, head_dim = decoder.heads, decoder.head_dim
        cross = torch.empty(decoder.layers, 2, batch, heads, length, head_dim)
        with torch.no_grad():
            for index, (k_proj, v_proj) in enumerate(decoder.cross_projections):
                for kind, projection in enumerate((k_proj, v_proj)):
                    cross[index, kind] = projection(memory).view(batch, length, heads, head_dim).transpose(1, 2)
        self.cross = cross
        if memory_mask is None:
            self.mask = torch.ones(batch, length, dtype=torch.uint8)
        else:
            self.mask = memory_mask.reshape(batch, length).to(torch.uint8).contiguous()
        self.capacity, self.max_len = rows, max(steps, 1)
        self.self_kv = torch.empty(decoder.layers, 2, rows, heads, self.max_len, head_dim)
        self.table = decoder.position_table(self.max_len)
        decoder.model.positions = self.table.data_ptr()
        self.position = 0

    def __call__(self, tokens: Tensor) -> Tensor:
        """Logits ``(A, V)`` for the next token after ``tokens`` ``(A, 1)``, one per live row."""
        decoder = self.decoder
        if self.position >= self.max_len:
            raise ValueError(f"the search ran past the {self.max_len} steps it was started for")
        if self.position >= self.table.shape[0]:
            raise ValueError(
                f"input of {self.position + 1} positions is longer than the {self.table.shape[0]} learned positions"
            )
        ids = tokens.reshape(-1).to(torch.int64).contiguous()
        rows = ids.shape[0]
        if rows != self.cross.shape[2] * self.groups:
            raise ValueError(f"{rows} rows do not match {self.cross.shape[2]} sources of {self.groups} rows each")
        if rows and (int(ids.min()) < 0 or int(ids.max()) >= decoder.vocab):
            raise ValueError(
                f"token ids must lie in [0, {decoder.vocab}), got ids from {int(ids.min())} to {int(ids.max())}"
            )
        logits = torch.empty(rows, decoder.vocab)
        decoder.model.positions = self.table.data_ptr()
        failed = decoder.library.selfattention_step(
            ctypes.byref(decoder.model), decoder.layer_array, ids.data_ptr(), rows, self.position,
            self.self_kv.data_ptr(), self.capacity, self.max_len,
            self.cross.data_ptr(), self.cross.shape[2], self.cross.shape[4], self.mask.data_ptr(), logits.data_ptr(),
        )  # fmt: skip
        if failed:
            raise MemoryError("the decoding step could not allocate its scratch memory")
        self.position += 1
        return logits

    def keep_sources(self, index: Tensor) -> None:
        """Keep the sources ``index`` (finished sentences leave); their rows follow with :meth:`keep_targets`."""
        self.cross = self.cross[:, :, index].contiguous()
        self.mask = self.mask[index].contiguous()

    def keep_targets(self, index: Tensor) -> None:
        """Row i of the caches becomes the old row ``index[i]`` (beam search's survivors)."""
        index = index.to(torch.int64).contiguous()
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.capacity):
            raise IndexError(f"cache rows must lie in [0, {self.capacity}), got {index.tolist()}")
        layers, kinds, _, heads, _, width = self.self_kv.shape
        failed = self.decoder.library.selfattention_reorder(
            self.self_kv.data_ptr(), layers * kinds, self.capacity, heads, self.max_len, width,
            index.data_ptr(), index.shape[0], self.position,
        )  # fmt: skip
        if failed:
            raise MemoryError("reordering the decoding caches could not allocate its scratch memory")


def start(model: Transformer, memory: Tensor, memory_mask: Tensor | None, rows: int, steps: int) -> NativeStep | None:
    """A :class:`NativeStep` for this search, or None where the C step does not apply."""
    if memory.dtype != torch.float32 or memory.device.type != "cpu" or memory.shape[0] == 0:
        return None
    decoder = decoder_for(model)
    if decoder is None:
        return None
    return NativeStep(decoder, memory, memory_mask, rows, steps)


__all__ = ["NativeDecoder", "NativeStep", "available", "build", "decoder_for", "start"]
