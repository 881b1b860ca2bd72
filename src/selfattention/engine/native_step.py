"""A decoding step in C: every decoder layer and the output projection in one call.

A step of search at batch 32 is about a hundred small PyTorch operations (products of 32 rows,
layer norms, additions, cache appends), each with a fixed cost in Python and in PyTorch's
dispatch that is larger than its arithmetic. ``kernels/native_step.c`` computes the same step,
what ``Transformer.decode`` gives for one new position with a cache, in one call: its products run
on weights packed once per model for its own small-row kernel, the attention is
``kernels/few_queries.c``'s kernel (linked into the same library), and the caches are
preallocated tensors written in place, each position of a cache row once: a row's history is a
table of the cache rows its earlier positions lie in, so that beam search keeping hypotheses
reorders that table of indices and moves no keys or values. The encoder
and the search stay in PyTorch. An int8 model's products (``precision="int8"``) take its int8
weights and scales as they are and sum in integers (AVX-512 VNNI where the processor has it).
Beam search asks for each row's best few tokens rather than its logits (:meth:`NativeStep.best_tokens`):
the log-softmax and the top k are then one pass of C over the logits (:func:`best_tokens`). Greedy
search asks for each row's best token (:meth:`NativeStep.best_token`), taken through the chunks'
maxima (``top_k.py``).

:func:`start` gives a :class:`NativeStep` for one search, or None where it does not apply: the
model training, a weight neither float32 nor int8 on the CPU (a GPU, float64), an activation or a
module it does not know, no C compiler, or ``SELFATTENTION_NATIVE=0``. The translator then gives
the search ``Transformer.decode`` (:class:`~selfattention.search.steps.TorchStep`), which stays
the definition: a test holds this step's logits to it. What it is worth:
``benchmarks/decoding_levers.py``.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

from selfattention.engine import build as builder
from selfattention.engine import few_queries, switched_off
from selfattention.engine.packed import PackedLinear
from selfattention.engine.top_k import top_k
from selfattention.layers import DecoderLayer, LearnedPositions, SinusoidalPositions
from selfattention.model import Transformer

log = logging.getLogger(__name__)

SOURCE = builder.KERNELS / "native_step.c"
FALLBACK = "decoding steps run through PyTorch"
ACTIVATIONS = {F.relu: 1, F.gelu: 2, F.silu: 3}

_pointer = ctypes.c_void_p


class _Weight(ctypes.Structure):
    """A Linear layer's packed weight: float32 (``scales`` None), or int8 with a scale and a sum per column."""

    _fields_ = [(name, _pointer) for name in ("w", "bias", "scales", "sums")]


class _Model(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_int64) for name in ("d", "heads", "ff", "vocab", "layers")),
        *((name, ctypes.c_int32) for name in ("norm_first", "activation", "final_norm", "pad_")),
        ("eps", ctypes.c_float),
        ("embed_scale", ctypes.c_float),
        *((name, _pointer) for name in ("embed", "positions", "final_w", "final_b")),
        ("out", _Weight),
    ]


_LAYER_WEIGHTS = ("qkv", "self_out", "cross_q", "cross_out", "up", "down")
_LAYER_NORMS = ("norm1_w", "norm1_b", "norm2_w", "norm2_b", "norm3_w", "norm3_b")


class _Layer(ctypes.Structure):
    _fields_ = [*((name, _Weight) for name in _LAYER_WEIGHTS), *((name, _pointer) for name in _LAYER_NORMS)]


@dataclass
class Weights:
    """A Linear layer's weight ``(N, K)`` (float32, or int8 with ``scales`` ``(N,)``) and bias ``(N,)``."""

    values: Tensor
    scales: Tensor | None
    bias: Tensor | None

    def __add__(self, other: Weights) -> Weights:
        """The two stacked (as W_Q, W_K and W_V are), of one kind; a missing bias is zeros."""
        if (self.scales is None) != (other.scales is None):
            raise ValueError("float32 and int8 weights cannot be stacked into one product")
        scales = None if self.scales is None or other.scales is None else torch.cat([self.scales, other.scales])
        bias = None
        if self.bias is not None or other.bias is not None:
            bias = torch.cat(
                [
                    b if b is not None else torch.zeros(len(w.values))
                    for w, b in ((self, self.bias), (other, other.bias))
                ]
            )
        return Weights(torch.cat([self.values, other.values]), scales, bias)


def build(directory: Path | None = None, extra: tuple[str, ...] = ()) -> Path | None:
    """Compile ``native_step.c`` with ``few_queries.c`` into ``directory`` (default: the kernel cache)."""
    return builder.build("native_step", [SOURCE, few_queries.SOURCE], FALLBACK, directory, extra)


@functools.cache
def _library(extra: tuple[str, ...] = ()) -> ctypes.CDLL | None:
    """The step's library, built with ``extra`` compiler flags (none: the one every search uses)."""
    if switched_off():
        return None
    path = build(extra=extra)
    if path is None:
        return None
    try:
        library = ctypes.CDLL(str(path))
        size, pointer = ctypes.c_int64, ctypes.c_void_p
        library.selfattention_packed_size.argtypes = [size, size]
        library.selfattention_packed_size.restype = size
        library.selfattention_pack.argtypes = [pointer, size, size, pointer]
        library.selfattention_pack.restype = None
        library.selfattention_packed_size_int8.argtypes = [size, size]
        library.selfattention_packed_size_int8.restype = size
        library.selfattention_pack_int8.argtypes = [pointer, size, size, pointer, pointer]
        library.selfattention_pack_int8.restype = None
        library.selfattention_linear.argtypes = [pointer, size, size, ctypes.POINTER(_Weight), size, pointer]
        library.selfattention_linear.restype = ctypes.c_int
        library.selfattention_best.argtypes = [
            pointer,
            size,
            size,
            size,
            pointer,
            size,
            size,
            pointer,
            pointer,
            pointer,
        ]
        library.selfattention_best.restype = ctypes.c_int
        library.selfattention_step.argtypes = [
            ctypes.POINTER(_Model), ctypes.POINTER(_Layer), pointer, size, size,
            pointer, size, size, pointer, pointer, size, size, pointer, pointer,
        ]  # fmt: skip
        library.selfattention_step.restype = ctypes.c_int
    except (OSError, AttributeError) as error:
        log.warning("could not load %s (%s); %s", path, error, FALLBACK)
        return None
    return library


def available() -> bool:
    """Whether the step's library is built and loaded here (it is built on first use)."""
    return _library() is not None


def _kind(module: nn.Module) -> str | None:
    """ "float32" or "int8" for a Linear the C step can take, else None; cheap (an int8 weight stays packed)."""
    if type(module) is QuantizedLinear:
        return "int8" if module._packed_params.dtype == torch.qint8 else None
    if type(module) not in (nn.Linear, PackedLinear):
        return None
    weight = module.weight
    if not isinstance(weight, Tensor) or weight.dtype != torch.float32 or weight.device.type != "cpu":
        return None
    return "float32"


class Unsupported(Exception):
    """A weight the C step cannot take (an int8 scheme with zero points), found while packing."""


def _weight(module: nn.Module) -> Weights | None:
    """A Linear's float32 CPU weight, or a dynamically quantised Linear's int8 one; None for anything else."""
    if type(module) is QuantizedLinear:
        weight = module.weight()
        if weight.dtype != torch.qint8:
            return None
        if weight.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            if weight.q_zero_point() != 0:
                return None
            scales = torch.full((weight.shape[0],), weight.q_scale(), dtype=torch.float32)
        elif weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            if weight.q_per_channel_axis() != 0 or bool(weight.q_per_channel_zero_points().any()):
                return None
            scales = weight.q_per_channel_scales().to(torch.float32)
        else:
            return None
        bias = module.bias()
        return Weights(weight.int_repr(), scales, None if bias is None else bias.detach().to(torch.float32))
    if type(module) not in (nn.Linear, PackedLinear):
        return None
    values, bias = module.weight, module.bias
    if not isinstance(values, Tensor) or values.dtype != torch.float32 or values.device.type != "cpu":
        return None
    return Weights(values.detach(), None, bias.detach() if isinstance(bias, Tensor) else None)


def _packable(module: nn.Module) -> Weights:
    weights = _weight(module)
    if weights is None:
        raise Unsupported(f"{type(module).__name__} weight")
    return weights


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
        out = _packable(model.output_proj)
        ff = first.feed_forward.up_proj.out_features
        final = decoder.final_norm
        self.model = _Model(
            d=self.d, heads=self.heads, ff=ff, vocab=self.vocab, layers=self.layers,
            norm_first=int(first.norm_first), activation=ACTIVATIONS[first.feed_forward.activation],
            final_norm=int(final is not None), pad_=0, eps=float(first.self_attn_norm.eps),
            embed_scale=float(embed.scale), embed=self._hold(embed.token.weight.detach()), positions=None,
            final_w=None if final is None else self._hold(final.weight),
            final_b=None if final is None else self._hold(final.bias), out=self.pack(out),
        )  # fmt: skip
        self.layer_array = (_Layer * self.layers)(*(self._layer(layer) for layer in layers))
        self.cross_projections = [(layer.cross_attn.k_proj, layer.cross_attn.v_proj) for layer in layers]

    def _hold(self, tensor: Tensor | None) -> int | None:
        if tensor is None:
            return None
        tensor = tensor.detach().contiguous()
        self._keep.append(tensor)
        return tensor.data_ptr()

    def pack(self, weights: Weights) -> _Weight:
        """``weights`` laid out for ``native_step.c`` (kept alive with this decoder)."""
        rows, columns = weights.values.shape
        values = weights.values.detach().contiguous()
        if weights.scales is None:
            packed = torch.empty(self.library.selfattention_packed_size(rows, columns))
            self.library.selfattention_pack(values.data_ptr(), rows, columns, packed.data_ptr())
            sums = None
        else:
            packed = torch.empty(self.library.selfattention_packed_size_int8(rows, columns), dtype=torch.int8)
            sums = torch.empty(rows, dtype=torch.int32)
            self.library.selfattention_pack_int8(values.data_ptr(), rows, columns, packed.data_ptr(), sums.data_ptr())
        self._keep += [packed] if sums is None else [packed, sums]
        return _Weight(
            packed.data_ptr(), self._hold(weights.bias), self._hold(weights.scales),
            None if sums is None else sums.data_ptr(),
        )  # fmt: skip

    def _layer(self, layer: DecoderLayer) -> _Layer:
        attn, cross, ff = layer.self_attn, layer.cross_attn, layer.feed_forward
        q, k, v = (_packable(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj))
        fields: dict[str, _Weight | int | None] = {"qkv": self.pack(q + k + v)}
        for name, module in (("self_out", attn.out_proj), ("cross_q", cross.q_proj), ("cross_out", cross.out_proj),
                             ("up", ff.up_proj), ("down", ff.down_proj)):  # fmt: skip
            fields[name] = self.pack(_packable(module))
        for index, norm in enumerate((layer.self_attn_norm, layer.cross_attn_norm, layer.feed_forward_norm), 1):
            fields[f"norm{index}_w"], fields[f"norm{index}_b"] = self._hold(norm.weight), self._hold(norm.bias)
        return _Layer(**fields)

    def linear(self, x: Tensor, weights: _Weight, n: int) -> Tensor:
        """``x`` ``(M, K)`` times one packed weight ``(N, K)``, plus its bias: ``(M, N)`` (for tests)."""
        x = x.detach().to(torch.float32).contiguous()
        y = torch.empty(x.shape[0], n)
        if self.library.selfattention_linear(
            x.data_ptr(), x.shape[0], x.shape[1], ctypes.byref(weights), n, y.data_ptr()
        ):
            raise MemoryError("the product could not allocate its scratch memory")
        return y

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
    if model.training or len(decoder.layers) == 0 or _kind(model.output_proj) is None:
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
        if any(_kind(m) is None for m in linears) or layer.feed_forward.up_proj.out_features != ff:
            return False
        norms = (layer.self_attn_norm, layer.cross_attn_norm, layer.feed_forward_norm)
        if any(_norm(n, width) is None for n in norms) or len({n.eps for n in norms}) != 1:
            return False
        if layer.feed_forward.activation not in ACTIVATIONS or layer.norm_first != first.norm_first:
            return False
        if len({_kind(m) for m in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj)}) != 1:
            return False  # W_Q, W_K, W_V are stacked into one product: one kind
    return True


def _version(model: Transformer) -> tuple[object, ...]:
    """What identifies the decoder's weights as they are now: its modules, each weight's address and version.

    An int8 layer's weight is not a parameter: its packed parameters object stands for it (a new
    weight is a new object).
    """
    modules = [*model.decoder.modules(), *model.tgt_embed.modules(), model.output_proj]
    tensors = [*model.decoder.parameters(), *model.tgt_embed.parameters(), *model.output_proj.parameters()]
    return (
        tuple(id(m) for m in modules),
        tuple(id(m._packed_params._packed_params) for m in modules if type(m) is QuantizedLinear),
        tuple((t.data_ptr(), t._version) for t in tensors),
    )


_decoders: weakref.WeakKeyDictionary[Transformer, tuple[tuple[object, ...], NativeDecoder | None]] = (
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
    try:
        with torch.no_grad():
            decoder: NativeDecoder | None = NativeDecoder(model, library)
    except Unsupported as error:
        log.info("%s: %s", error, FALLBACK)
        decoder = None
    _decoders[model] = (version, decoder)
    return decoder


def check_best(vocab: int, k: int, banned: Sequence[int], eos_id: int) -> None:
    """Refuse a best-token search that cannot be made: k out of [1, 64], ids outside the vocabulary."""
    ids = set(banned)
    if any(not 0 <= b < vocab for b in [*ids, eos_id]):
        raise ValueError(f"banned and end ids must lie in [0, {vocab}), got {sorted(ids)} and {eos_id}")
    most = min(64, vocab - len(ids))
    if not 1 <= k <= most:
        raise ValueError(f"k must lie in [1, {most}] (64 at most; {vocab} tokens, {len(ids)} banned), got {k}")


def best_tokens(
    logits: Tensor, k: int, banned: Sequence[int], eos_id: int, library: ctypes.CDLL | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`~selfattention.search.steps.best_tokens` in C: one pass over float32 ``logits`` ``(A, V)``, whose banned columns it sets to -inf.

    Ties go to the lower token id.
    """
    library = library if library is not None else _library()
    if library is None:
        raise RuntimeError("the C decoding step is not available here (no compiler, or SELFATTENTION_NATIVE=0)")
    if logits.dtype != torch.float32 or logits.dim() != 2 or not logits.is_contiguous() or logits.device.type != "cpu":
        raise ValueError(
            f"logits must be a contiguous 2-D float32 CPU tensor, got {logits.dtype} {tuple(logits.shape)}"
        )
    check_best(logits.shape[1], k, banned, eos_id)
    return _best(logits, k, banned_ids(banned), eos_id, library)


def banned_ids(banned: Sequence[int]) -> Tensor:
    """The banned token ids as :func:`_best` takes them: sorted, each once, int64."""
    return torch.tensor(sorted(set(banned)), dtype=torch.int64)


def _best(logits: Tensor, k: int, ids: Tensor, eos_id: int, library: ctypes.CDLL) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`best_tokens` on arguments already checked, the banned ids from :func:`banned_ids`."""
    rows, vocab = logits.shape
    values, indices, eos = torch.empty(rows, k), torch.empty(rows, k, dtype=torch.int64), torch.empty(rows)
    failed = library.selfattention_best(
        logits.data_ptr(), rows, vocab, k, ids.data_ptr(), ids.numel(), eos_id,
        values.data_ptr(), indices.data_ptr(), eos.data_ptr(),
    )  # fmt: skip
    if failed:  # check_best should have caught it
        raise RuntimeError(f"the C best-token search refused k={k} with {vocab} tokens, {ids.numel()} banned")
    return values, indices, eos


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
        self.history = torch.zeros(rows, self.max_len, dtype=torch.int64)  # row r's position p: in cache row [r, p]
        self.table = decoder.position_table(self.max_len)
        decoder.model.positions = self.table.data_ptr()
        self.position = 0
        self.checked: tuple[int, tuple[int, ...], int] | None = None  # the last best-token search let through
        self.banned = banned_ids(())

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
        if rows != self.history.shape[0]:
            raise ValueError(f"{rows} rows do not match the {self.history.shape[0]} rows the search keeps")
        if rows:
            low, high = (int(end) for end in torch.aminmax(ids))
            if low < 0 or high >= decoder.vocab:
                raise ValueError(f"token ids must lie in [0, {decoder.vocab}), got ids from {low} to {high}")
        logits = torch.empty(rows, decoder.vocab)
        decoder.model.positions = self.table.data_ptr()
        failed = decoder.library.selfattention_step(
            ctypes.byref(decoder.model), decoder.layer_array, ids.data_ptr(), rows, self.position,
            self.self_kv.data_ptr(), self.capacity, self.max_len, self.history.data_ptr(),
            self.cross.data_ptr(), self.cross.shape[2], self.cross.shape[4], self.mask.data_ptr(), logits.data_ptr(),
        )  # fmt: skip
        if failed:
            raise MemoryError("the decoding step could not allocate its scratch memory")
        self.position += 1
        return logits

    def best_token(self, tokens: Tensor, banned: Sequence[int]) -> Tensor:
        """Each live row's most likely next token ``(A,)``, never one of ``banned``, through :func:`top_k`."""
        logits = self(tokens)
        logits[:, list(banned)] = -torch.inf
        return top_k(logits, 1)[1][:, 0]

    def best_tokens(self, tokens: Tensor, k: int, banned: Sequence[int], eos_id: int) -> tuple[Tensor, Tensor, Tensor]:
        """As :func:`~selfattention.search.steps.best_tokens` of this step's logits, in one pass of C over them."""
        search = (k, tuple(banned), eos_id)
        if search != self.checked:  # first, so that a refused call leaves the search as it was
            check_best(self.decoder.vocab, k, banned, eos_id)
            self.checked, self.banned = search, banned_ids(banned)
        return _best(self(tokens), k, self.banned, eos_id, self.decoder.library)

    def keep_sources(self, index: Tensor) -> None:
        """Keep the sources ``index`` (finished sentences leave); their rows follow with :meth:`keep_targets`."""
        self.cross = self.cross[:, :, index].contiguous()
        self.mask = self.mask[index].contiguous()

    def keep_targets(self, index: Tensor) -> None:
        """Row i becomes the old row ``index[i]`` (beam search's survivors): its history does; no cache row moves."""
        index = index.to(torch.int64)
        if index.dim() != 1 or index.shape[0] > self.capacity:
            raise IndexError(
                f"at most {self.capacity} cache rows can be kept, as a 1-D index; got {tuple(index.shape)}"
            )
        live = self.history.shape[0]
        if index.numel():
            low, high = (int(end) for end in torch.aminmax(index))
            if low < 0 or high >= live:
                raise IndexError(f"cache rows must lie in [0, {live}), got {index.tolist()}")
        self.history = self.history[index]


def start(model: Transformer, memory: Tensor, memory_mask: Tensor | None, rows: int, steps: int) -> NativeStep | None:
    """A :class:`NativeStep` for this search, or None where the C step does not apply."""
    if memory.dtype != torch.float32 or memory.device.type != "cpu" or memory.shape[0] == 0:
        return None
    decoder = decoder_for(model)
    if decoder is None:
        return None
    return NativeStep(decoder, memory, memory_mask, rows, steps)


__all__ = ["NativeDecoder", "NativeStep", "available", "best_tokens", "build", "check_best", "decoder_for", "start"]
