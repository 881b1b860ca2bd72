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
weights and scales as they are and sum in integers (AVX-512 VNNI in the build for processors that have it).
Beam search asks for each row's best few tokens rather than its logits (:meth:`NativeStep.best_tokens`):
the log-softmax and the top k are then one pass of C over the logits (:func:`best_tokens`). Greedy
search asks for each row's best token (:meth:`NativeStep.best_token`), taken through the chunks'
maxima (``top_k.py``).

:func:`start` gives a :class:`NativeStep` for one search, or None where it does not apply: the
model training, a weight neither float32 nor int8 on the CPU (a GPU, float64), an activation or a
module it does not know, decoder layers whose settings differ (the C step takes one activation,
LayerNorm epsilon and norm placement for all), no engine library (:mod:`~selfattention.engine.library`
says why), or ``SELFATTENTION_NATIVE=0``. The translator then gives the search
``Transformer.decode`` (:class:`~selfattention.search.steps.TorchStep`), which stays the
definition: a test holds this step's logits to it. What it is worth: ``benchmarks/decoding_levers.py``.

Searches on one model may run at once (a web server's clients): the packed weights are only read,
and each :class:`NativeStep` holds its own caches, history and table of positions.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from selfattention.engine import library
from selfattention.engine.decoder_settings import ACTIVATIONS, settings
from selfattention.engine.library import Layer, Model, Weight
from selfattention.engine.packed import PackedLinear
from selfattention.engine.quantize import Int8Linear, PackedInt8
from selfattention.engine.top_k import top_k
from selfattention.layers import DecoderLayer, LearnedPositions
from selfattention.model import Transformer

log = logging.getLogger(__name__)

FALLBACK = "decoding steps run through PyTorch"


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


def _library() -> ctypes.CDLL | None:
    """The engine's library, as :func:`selfattention.engine.library.load` gives it, or None."""
    loaded = library.load()
    return None if loaded is None else loaded.cdll


def available() -> bool:
    """Whether the engine's library is loaded here (built at install, checked at load)."""
    return _library() is not None


class Unsupported(Exception):
    """A model the C step cannot take: found by :func:`settings`, or while packing."""


def _weight(module: nn.Module) -> Weights | None:
    """A Linear's float32 CPU weight, or an :class:`Int8Linear`'s int8 one; None for anything else."""
    if type(module) is Int8Linear:
        return Weights(module.weight, module.scales, module.bias)
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


def computed_linears(model: Transformer) -> list[nn.Module]:
    """The Linear layers the C step computes for ``model`` (none where it would not take the model).

    Those are the decoder's but the cross-attention's key and value projections (PyTorch projects
    the source through them once per search), and the output projection. Their weights are packed
    once, for native_step.c; packing them for oneDNN as well (:func:`~selfattention.engine.packed.pack_linears`)
    would only hold a second copy.
    """
    if _library() is None or model.training or isinstance(settings(model), str):
        return []
    modules: list[nn.Module] = [model.output_proj]
    for layer in _decoder_layers(model):
        attn, cross, ff = layer.self_attn, layer.cross_attn, layer.feed_forward
        modules += [attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj, cross.q_proj, cross.out_proj]
        modules += [ff.up_proj, ff.down_proj]
    return modules


class NativeDecoder:
    """A model's decoder weights laid out for ``native_step.c``; built once per model and weights, then only read."""

    def __init__(self, model: Transformer, cdll: ctypes.CDLL) -> None:
        found = settings(model)
        if isinstance(found, str):
            raise Unsupported(found)
        self.library = cdll
        self._keep: list[Tensor | PackedInt8] = []  # every tensor the C structures point into
        decoder, embed = model.decoder, model.tgt_embed
        layers = _decoder_layers(model)
        self.d, self.heads = embed.token.embedding_dim, found.heads
        self.head_dim = self.d // self.heads
        self.layers = len(layers)
        self.vocab = embed.token.num_embeddings
        self.positions: nn.Module = embed.positions
        self.pad_id = model.pad_id
        out = _packable(model.output_proj)
        final = decoder.final_norm
        self.model = Model(
            d=self.d, heads=self.heads, ff=found.feed_forward_width, vocab=self.vocab, layers=self.layers,
            norm_first=int(found.norm_placement == "pre-LN"), activation=ACTIVATIONS[layers[0].feed_forward.activation],
            final_norm=int(final is not None), pad_=0, eps=found.layer_norm_epsilon,
            embed_scale=float(embed.scale), embed=self._hold(embed.token.weight.detach()),
            final_w=None if final is None else self._hold(final.weight),
            final_b=None if final is None else self._hold(final.bias), out=self.pack(out),
        )  # fmt: skip
        self.layer_array = (Layer * self.layers)(*(self._layer(layer) for layer in layers))
        self.cross_projections = [(layer.cross_attn.k_proj, layer.cross_attn.v_proj) for layer in layers]

    def _hold(self, tensor: Tensor | None) -> int | None:
        if tensor is None:
            return None
        tensor = tensor.detach().contiguous()
        self._keep.append(tensor)
        return tensor.data_ptr()

    def pack(self, weights: Weights) -> Weight:
        """``weights`` laid out for ``native_step.c`` (kept alive with this decoder)."""
        values = weights.values.detach().contiguous()
        if weights.scales is not None:
            int8 = PackedInt8(self.library, values, weights.scales, weights.bias)
            self._keep.append(int8)
            return int8.weight
        rows, columns = values.shape
        packed = torch.empty(self.library.selfattention_packed_size(rows, columns))
        self.library.selfattention_pack(values.data_ptr(), rows, columns, packed.data_ptr())
        self._keep.append(packed)
        return Weight(packed.data_ptr(), self._hold(weights.bias), None, None)

    def _layer(self, layer: DecoderLayer) -> Layer:
        attn, cross, ff = layer.self_attn, layer.cross_attn, layer.feed_forward
        q, k, v = (_packable(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj))
        fields: dict[str, Weight | int | None] = {"qkv": self.pack(q + k + v)}
        for name, module in (("self_out", attn.out_proj), ("cross_q", cross.q_proj), ("cross_out", cross.out_proj),
                             ("up", ff.up_proj), ("down", ff.down_proj)):  # fmt: skip
            fields[name] = self.pack(_packable(module))
        for index, norm in enumerate((layer.self_attn_norm, layer.cross_attn_norm, layer.feed_forward_norm), 1):
            fields[f"norm{index}_w"], fields[f"norm{index}_b"] = self._hold(norm.weight), self._hold(norm.bias)
        return Layer(**fields)

    def linear(self, x: Tensor, weights: Weight, n: int) -> Tensor:
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


def _version(model: Transformer) -> tuple[object, ...]:
    """What identifies the decoder's weights as they are now: its modules, each weight's address and version.

    An int8 layer's weight, scales and bias are buffers, not parameters: they count too.
    """
    modules = [*model.decoder.modules(), *model.tgt_embed.modules(), model.output_proj]
    tensors: list[Tensor] = [
        *model.decoder.parameters(),
        *model.tgt_embed.parameters(),
        *model.output_proj.parameters(),
    ]
    tensors += [t for m in modules if type(m) is Int8Linear for t in (m.weight, m.scales, m.bias) if t is not None]
    return (tuple(id(m) for m in modules), tuple((t.data_ptr(), t._version) for t in tensors))


_decoders: weakref.WeakKeyDictionary[Transformer, tuple[tuple[object, ...], NativeDecoder | None]] = (
    weakref.WeakKeyDictionary()
)  # beside the model, not in it: a model with ctypes pointers inside could not be copied or pickled
_refusals: weakref.WeakKeyDictionary[Transformer, str] = weakref.WeakKeyDictionary()  # the last one logged
_packing = threading.Lock()  # two searches starting at once on a new model pack it once


def _refuse(model: Transformer, reason: str) -> None:
    """Log why the C step does not take ``model``: once per model and reason."""
    with _packing:
        if _refusals.get(model) == reason:
            return
        _refusals[model] = reason
    log.warning("the C decoding step does not take this model: %s; %s", reason, FALLBACK)


def decoder_for(model: Transformer) -> NativeDecoder | None:
    """``model``'s :class:`NativeDecoder` (packed on first use, again when its weights or settings change), or None.

    None for a model in training, without the engine's library (its loading logged why), or for a
    model the C step does not compute (logged once per model, with the reason).
    """
    cdll = _library()
    if cdll is None or model.training:
        return None
    found = settings(model)
    if isinstance(found, str):
        _refuse(model, found)
        return None
    version = (found, _version(model))
    with _packing:
        cached = _decoders.get(model)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            with torch.no_grad():
                decoder: NativeDecoder | None = NativeDecoder(model, cdll)
        except Unsupported as error:
            decoder = None
            reason = str(error)
        _decoders[model] = (version, decoder)
    if decoder is None:
        _refuse(model, reason)
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
    logits: Tensor, k: int, banned: Sequence[int], eos_id: int, cdll: ctypes.CDLL | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`~selfattention.search.steps.best_tokens` in C: one pass over float32 ``logits`` ``(A, V)``, whose banned columns it sets to -inf.

    Ties go to the lower token id.
    """
    cdll = cdll if cdll is not None else _library()
    if cdll is None:
        raise RuntimeError(f"the C decoding step is not available here ({library.why_not()})")
    if logits.dtype != torch.float32 or logits.dim() != 2 or not logits.is_contiguous() or logits.device.type != "cpu":
        raise ValueError(
            f"logits must be a contiguous 2-D float32 CPU tensor, got {logits.dtype} {tuple(logits.shape)}"
        )
    check_best(logits.shape[1], k, banned, eos_id)
    return _best(logits, k, banned_ids(banned), eos_id, cdll)


def banned_ids(banned: Sequence[int]) -> Tensor:
    """The banned token ids as :func:`_best` takes them: sorted, each once, int64."""
    return torch.tensor(sorted(set(banned)), dtype=torch.int64)


def _best(logits: Tensor, k: int, ids: Tensor, eos_id: int, cdll: ctypes.CDLL) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`best_tokens` on arguments already checked, the banned ids from :func:`banned_ids`."""
    rows, vocab = logits.shape
    values, indices, eos = torch.empty(rows, k), torch.empty(rows, k, dtype=torch.int64), torch.empty(rows)
    failed = cdll.selfattention_best(
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
        self.table = decoder.position_table(self.max_len)  # this search's own: the decoder is shared
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
        failed = decoder.library.selfattention_step(
            ctypes.byref(decoder.model), decoder.layer_array, self.table.data_ptr(), ids.data_ptr(), rows, self.position,
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


__all__ = [
    "NativeDecoder",
    "NativeStep",
    "available",
    "best_tokens",
    "check_best",
    "computed_linears",
    "decoder_for",
    "start",
]
