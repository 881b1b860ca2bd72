"""Which decoding levers pay: each one against the committed decoder, in one process, batch by batch.

    python benchmarks/decoding_levers.py [--sentences 512] [--repeats 7]

One thread (what each ``translate --workers 2`` process runs), batch 32, the bundled model as
``Translator.load`` gives it (oneDNN-packed), the first ``--sentences`` Multi30k test sources,
sorted by length. Each lever is switched on for a batch and off again: the variants take turns
batch by batch (in alternating order), so that a slow stretch of this shared machine falls on all
of them alike. A row's time is the median over ``--repeats`` passes of the sum over its batches.

Greedy levers (the committed decoder, then one change each):

- ``the step through PyTorch's modules (as before)``: ``Transformer.decode`` with its cache for
  each step, instead of the C step of ``engine/native_step.py``, its attention calls of a few
  queries sent to the engine's C kernel (``engine/few_queries.py``) as they were before the C
  step (the reference path itself never calls it). The levers marked ``PyTorch step +`` change
  those modules, so they run on that step: compare them with its row;
- ``PyTorch's fused attention kernel``: ``F.scaled_dot_product_attention`` instead of that C
  kernel (greedy and beam 4), which is the reference step as it is now;
- ``torch.argmax for the next token``: instead of ``top_k(logits, 1)`` (``NativeStep.best_token``);
- ``causal mask for the new position``: the self-attention mask a single new position had
  before (all True), instead of none;
- ``fused q, k, v product``: one oneDNN product with the three weights side by side per
  self-attention layer, instead of three;
- ``explicit attention for one query``: the recipe's matmul, softmax and matmul instead of
  the kernel when a step has a single query row;
- ``key/value buffers``: the self-attention cache written into buffers with room for 16 more
  positions (a view of the filled part goes to the kernel), instead of ``torch.cat`` at each step.

Beam 4 levers (the committed decoder, then one change taken away each; the C step and the PyTorch
step as for greedy):

- ``source repeated per hypothesis``: cross-attention over the source's keys and values repeated
  for each of the K hypotheses (as before), instead of K query rows of one row;
- ``best tokens in PyTorch: log_softmax and top_k``: each hypothesis's 2K best next tokens taken
  by ``torch.log_softmax`` and :func:`top_k` over the C step's logits (as before), instead of
  ``selfattention_best``'s one pass of C over them (``NativeStep.best_tokens``);
- ``best tokens in PyTorch: log_softmax and torch.topk``: the same with ``torch.topk``.

Then ``top_k`` alone against ``torch.topk`` on beam 4's rows (128 × 8,000, k = 8) and against
``torch.argmax`` on greedy's (32 × 8,000, k = 1).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from selfattention.attention import KVCache, MultiHeadAttention
from selfattention.attention import core as attention_core
from selfattention.cli.common import resolve_model
from selfattention.data import load_corpus
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine import few_queries, native_step
from selfattention.engine.allocator import tune_allocator
from selfattention.engine.packed import BATCH_HINT, pack_linears
from selfattention.engine.top_k import top_k

Lever = Callable[[Translator], contextlib.AbstractContextManager[None]]


@contextlib.contextmanager
def committed(translator: Translator) -> Iterator[None]:
    yield


@contextlib.contextmanager
def patched(owner: object, name: str, replacement: object) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def causal_mask_for_the_new_position(translator: Translator) -> contextlib.AbstractContextManager[None]:
    forward = MultiHeadAttention.forward
    masks: dict[int, Tensor] = {}  # one mask per length, as the decoder built one per step

    def with_mask(self: MultiHeadAttention, query: Tensor, key_value: Tensor | None = None, mask: Tensor | None = None, **kw: object) -> object:  # fmt: skip
        cache = kw.get("cache")
        if key_value is None and mask is None and isinstance(cache, KVCache) and query.shape[1] == 1:
            mask = masks.setdefault(cache.length + 1, torch.ones(1, cache.length + 1, dtype=torch.bool))
        return forward(self, query, key_value, mask, **kw)  # type: ignore[arg-type]

    return patched(MultiHeadAttention, "forward", with_mask)


def fused_qkv_product(translator: Translator) -> contextlib.AbstractContextManager[None]:
    packed: dict[int, tuple[Tensor, Tensor]] = {}
    for layer in translator.model.decoder.layers:
        attention = layer.self_attn
        weight = torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight]).detach()
        bias = torch.cat([attention.q_proj.bias, attention.k_proj.bias, attention.v_proj.bias]).detach()
        packed[id(attention)] = (torch.ops.mkldnn._reorder_linear_weight(weight, BATCH_HINT), bias)
    forward = MultiHeadAttention.forward

    def fused(self: MultiHeadAttention, query: Tensor, key_value: Tensor | None = None, mask: Tensor | None = None, **kw: object) -> object:  # fmt: skip
        cache = kw.get("cache")
        if key_value is not None or id(self) not in packed:
            return forward(self, query, key_value, mask, **kw)  # type: ignore[arg-type]
        weight, bias = packed[id(self)]
        qkv = torch.ops.mkldnn._linear_pointwise(query, weight, bias, "none", [], "")
        rows, length, _ = query.shape
        q, k, v = qkv.view(rows, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if isinstance(cache, KVCache):
            k, v = cache.append(k, v)
        heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(self._merge_heads(heads)), None

    return patched(MultiHeadAttention, "forward", fused)


FUSED = attention_core._fused  # PyTorch's kernel, as the reference path calls it


def with_the_engines_kernel(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
    """The fused path, its calls of a few queries sent to the engine's C kernel (as before the C step)."""
    if few_queries.applies(q, k, v, mask, dropout_p):
        return few_queries.attend(q, k, v, mask)
    return FUSED(q, k, v, mask, dropout_p)


def pytorchs_fused_kernel_for_the_step(translator: Translator) -> contextlib.AbstractContextManager[None]:
    return patched(attention_core, "_fused", FUSED)


def explicit_attention_for_one_query(translator: Translator) -> contextlib.AbstractContextManager[None]:
    def explicit(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
        if q.shape[-2] == 1 and dropout_p == 0.0:
            return attention_core.explicit_attention(q, k, v, mask)[0]
        return FUSED(q, k, v, mask, dropout_p)

    return patched(attention_core, "_fused", explicit)


class BufferedCache(KVCache):
    """The self-attention cache in buffers with room for 16 more positions."""

    ROOM = 16

    def __init__(self) -> None:
        super().__init__()
        self.filled = 0

    def append(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        steps = key.shape[-2]
        if self.key is None or self.value is None or self.filled + steps > self.key.shape[-2]:
            old_key = key if self.key is None else torch.cat([self.key[:, :, : self.filled], key], dim=-2)
            old_value = value if self.value is None else torch.cat([self.value[:, :, : self.filled], value], dim=-2)
            self.key, self.value = (
                x.new_empty(*x.shape[:-2], x.shape[-2] + self.ROOM, x.shape[-1]) for x in (old_key, old_value)
            )
            self.key[:, :, : old_key.shape[-2]] = old_key
            self.value[:, :, : old_value.shape[-2]] = old_value
            self.filled = old_key.shape[-2]
        else:
            self.key[:, :, self.filled : self.filled + steps] = key
            self.value[:, :, self.filled : self.filled + steps] = value
            self.filled += steps
        return self.key[:, :, : self.filled], self.value[:, :, : self.filled]


def key_value_buffers(translator: Translator) -> contextlib.AbstractContextManager[None]:
    model = translator.model
    start = model.start_state

    def buffered() -> object:
        state = start()
        state.self_caches = [BufferedCache() for _ in state.self_caches]
        return state

    return patched(model, "start_state", buffered)


def source_repeated_per_hypothesis(translator: Translator) -> contextlib.AbstractContextManager[None]:
    """Cross-attention over K copies of each sentence's keys and values, rebuilt when sentences leave."""
    copies: dict[int, tuple[Tensor, KVCache]] = {}  # id(sentence cache) -> (its keys when copied, the copy)
    grouped = MultiHeadAttention._grouped

    def repeated(self: MultiHeadAttention, query: Tensor, key_value: Tensor, mask: Tensor | None, *, cache: KVCache | None, need_weights: bool, recorder: object) -> object:  # fmt: skip
        groups = query.shape[0] // key_value.shape[0]
        if cache is None:
            return grouped(self, query, key_value, mask, cache=cache, need_weights=need_weights, recorder=recorder)  # type: ignore[arg-type]
        if cache.key is None:
            self._keys_values(key_value, key_value, cache)  # project the source once, as the decoder does
        assert cache.key is not None and cache.value is not None
        seen = copies.get(id(cache))
        if seen is None or seen[0] is not cache.key:
            copy = KVCache()
            copy.store(cache.key.repeat_interleave(groups, 0), cache.value.repeat_interleave(groups, 0))
            copies[id(cache)] = seen = (cache.key, copy)
        rows_mask = None if mask is None else mask.repeat_interleave(groups, 0)
        return self(query, key_value.repeat_interleave(groups, 0), rows_mask, cache=seen[1])

    return patched(MultiHeadAttention, "_grouped", repeated)


def best_tokens_in_pytorch(
    translator: Translator, topk: Callable[[Tensor, int], tuple[Tensor, Tensor]] = top_k
) -> contextlib.AbstractContextManager[None]:
    """``NativeStep.best_tokens`` as ``search.steps.best_tokens`` on the C step's logits, through ``topk``."""

    def in_pytorch(self: native_step.NativeStep, tokens: Tensor, k: int, banned: Sequence[int], eos_id: int) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        log_probs = torch.log_softmax(self(tokens).float(), dim=-1)
        log_probs[:, list(banned)] = -torch.inf
        values, indices = topk(log_probs, k)
        return values, indices, log_probs[:, eos_id]

    return patched(native_step.NativeStep, "best_tokens", in_pytorch)


def torch_topk_for_each_hypothesis(translator: Translator) -> contextlib.AbstractContextManager[None]:
    return best_tokens_in_pytorch(translator, lambda x, k: x.topk(k, dim=-1))


def torch_argmax_for_the_next_token(translator: Translator) -> contextlib.AbstractContextManager[None]:
    return patched(native_step, "top_k", lambda x, k: (None, x.argmax(-1, keepdim=True)))


@contextlib.contextmanager
def the_pytorch_step(translator: Translator) -> Iterator[None]:
    with patched(native_step, "start", lambda *args: None), patched(attention_core, "_fused", with_the_engines_kernel):
        yield


def on_the_pytorch_step(lever: Lever) -> Lever:
    """``lever`` on the step through PyTorch's modules (the levers that change those modules)."""

    @contextlib.contextmanager
    def both(translator: Translator) -> Iterator[None]:
        with the_pytorch_step(translator), lever(translator):
            yield

    return both


PYTORCH_STEP = "the step through PyTorch's modules (as before)"
GREEDY: list[tuple[str, Lever]] = [
    ("committed", committed),
    (PYTORCH_STEP, the_pytorch_step),
    ("PyTorch step + PyTorch's fused attention kernel (as before that)", on_the_pytorch_step(pytorchs_fused_kernel_for_the_step)),
    ("torch.argmax for the next token", torch_argmax_for_the_next_token),
    ("PyTorch step + causal mask for the new position", on_the_pytorch_step(causal_mask_for_the_new_position)),
    ("PyTorch step + fused q, k, v product", on_the_pytorch_step(fused_qkv_product)),
    ("PyTorch step + explicit attention for one query", on_the_pytorch_step(explicit_attention_for_one_query)),
    ("PyTorch step + key/value buffers", on_the_pytorch_step(key_value_buffers)),
]  # fmt: skip
BEAM: list[tuple[str, Lever]] = [
    ("committed", committed),
    (PYTORCH_STEP, the_pytorch_step),
    ("PyTorch step + PyTorch's fused attention kernel (as before that)", on_the_pytorch_step(pytorchs_fused_kernel_for_the_step)),
    ("PyTorch step + source repeated per hypothesis", on_the_pytorch_step(source_repeated_per_hypothesis)),
    ("best tokens in PyTorch: log_softmax and top_k (as before)", best_tokens_in_pytorch),
    ("best tokens in PyTorch: log_softmax and torch.topk", torch_topk_for_each_hypothesis),
]  # fmt: skip


def compare(
    translator: Translator, batches: Sequence[list[list[int]]], beam: int, levers: list[tuple[str, Lever]], repeats: int
) -> None:
    config = DecodingConfig(beam_size=beam, batch_size=32)
    outputs: dict[str, list[list[int]]] = {}
    for name, lever in levers:  # warm-up, and each lever's translations
        with lever(translator):
            outputs[name] = [tokens for batch in batches for tokens in translator.translate_ids(batch, config)]
    seconds = {name: [0.0] * repeats for name, _ in levers}
    for repeat in range(repeats):
        for batch in batches:
            for name, lever in levers if repeat % 2 == 0 else levers[::-1]:
                with lever(translator):
                    started = time.perf_counter()
                    translator.translate_ids(batch, config)
                    seconds[name][repeat] += time.perf_counter() - started
    tokens = sum(len(t) + 1 for t in outputs["committed"])
    base = statistics.median(seconds["committed"])
    search = "greedy" if beam == 1 else f"beam {beam}"
    print(f"\n{search}, {sum(len(b) for b in batches)} sentences, {tokens:,} target tokens, median of {repeats}:\n")
    print("| decoder | tokens/s | committed's speed over this | same translations |")
    print("| --- | ---: | ---: | --- |")
    for name, _ in levers:
        median = statistics.median(seconds[name])
        same = "yes" if outputs[name] == outputs["committed"] else "no"
        print(f"| {name} | {tokens / median:,.0f} | {median / base:.2f}x | {same} |")


def time_top_k(repeats: int) -> None:
    torch.manual_seed(0)
    rows = torch.log_softmax(torch.randn(128, 8000) * 3, dim=-1)
    logits = torch.randn(32, 8000) * 3

    def median_us(function: Callable[[], object]) -> float:
        for _ in range(20):
            function()
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(100):
                function()
            runs.append((time.perf_counter() - started) / 100 * 1e6)
        return statistics.median(runs)

    assert torch.equal(top_k(rows, 8)[1], rows.topk(8, dim=-1).indices)
    assert torch.equal(top_k(logits, 1)[1][:, 0], logits.argmax(dim=-1))
    cases = [
        ("8 largest of each row, 128 x 8,000", "torch.topk", lambda: rows.topk(8, dim=-1), lambda: top_k(rows, 8)),
        ("largest of each row, 32 x 8,000", "torch.argmax", lambda: logits.argmax(dim=-1), lambda: top_k(logits, 1)),
    ]
    print("\n| rows | PyTorch | µs a call | top_k µs a call | top_k's speed-up |")
    print("| --- | --- | ---: | ---: | ---: |")
    for what, name, theirs, ours in cases:
        their_us, our_us = median_us(theirs), median_us(ours)
        print(f"| {what} | {name} | {their_us:,.0f} | {our_us:,.0f} | {their_us / our_us:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=512, help="Multi30k test sources (default 512)")
    parser.add_argument("--repeats", type=int, default=7, help="timed passes per lever (default 7)")
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(1)
    translator = Translator.load(resolve_model(None))
    pack_linears(translator.model)  # the decoder's too (the load leaves them to the C step): the PyTorch step's levers
    sources = [s for s, _ in load_corpus("multi30k", "test", None)][: args.sentences]
    ids = sorted((translator.tokenizer.encode(s) for s in sources), key=len)
    batches = [ids[start : start + 32] for start in range(0, len(ids), 32)]
    print(f"$ python benchmarks/decoding_levers.py --sentences {args.sentences} --repeats {args.repeats}")
    print("\nOne thread, batch 32; each lever is the committed decoder with one change.")
    compare(translator, batches, 1, GREEDY, args.repeats)
    compare(translator, batches, 4, BEAM, args.repeats)
    time_top_k(args.repeats)


if __name__ == "__main__":
    main()
