"""Where one decoding worker's time goes: PyTorch's profiler over greedy search, one thread.

    python benchmarks/decoding_profile.py [--sentences 256] [--beam 1]

One thread is what each ``translate --workers 2`` process runs. The bundled model as
``Translator.load`` gives it (oneDNN-packed), batch 32, the first ``--sentences`` Multi30k test
sources (after a warm-up on 64). Prints the wall time and the operators with the largest share
of self CPU time, and the share of the products by layer kind, from the model's shapes.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from selfattention.cli.common import resolve_model
from selfattention.data import load_corpus
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine.allocator import tune_allocator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=256, help="Multi30k test sources (default 256)")
    parser.add_argument("--beam", type=int, default=1, help="beam size (default 1: greedy)")
    parser.add_argument("--precision", default="float32", choices=["float32", "int8"], help="as translate --precision")
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(1)
    translator = Translator.load(resolve_model(None), precision=args.precision)
    sources = [s for s, _ in load_corpus("multi30k", "test", None)][: args.sentences]
    config = DecodingConfig(beam_size=args.beam, batch_size=32)
    translator.translate(sources[:64], config)
    started = time.perf_counter()
    translator.translate(sources, config)
    seconds = time.perf_counter() - started
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
        translator.translate(sources, config)
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    search = "greedy" if args.beam == 1 else f"beam {args.beam}"
    print(
        f"$ python benchmarks/decoding_profile.py --sentences {args.sentences} --beam {args.beam} --precision {args.precision}"
    )
    print(
        f"\n{args.precision}, {search}, batch 32, 1 thread, {len(sources)} sentences: {seconds:.2f} s unprofiled; ",
        end="",
    )
    print(f"{total / 1e6:.2f} s in PyTorch operators when profiled (the rest is Python between them)\n")
    print("| operator | calls | self CPU ms | share of operator time |")
    print("| --- | ---: | ---: | ---: |")
    for event in events[:10]:
        print(
            f"| `{event.key}` | {event.count:,} | {event.self_cpu_time_total / 1e3:,.1f} "
            f"| {event.self_cpu_time_total / total:.1%} |"
        )
    products = [e for e in profiler.key_averages(group_by_input_shape=True) if "linear" in e.key]
    products.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    product_total = sum(e.self_cpu_time_total for e in products)
    print("\nThe linear products by shape (input, weight), largest first:\n")
    print("| input | weight | calls | µs a call | share of product time |")
    print("| --- | --- | ---: | ---: | ---: |")
    for event in products[:6]:
        shapes = event.input_shapes
        print(
            f"| {tuple(shapes[0])} | {tuple(shapes[1])} | {event.count:,} | {event.self_cpu_time_total / event.count:,.0f} "
            f"| {event.self_cpu_time_total / product_total:.0%} |"
        )
    vocab = translator.model.config.vocab_size if translator.model.config is not None else -1
    projection = sum(e.self_cpu_time_total for e in products if e.input_shapes and e.input_shapes[1][:1] == [vocab])
    print(
        f"\nAll calls of the output projection (weight rows = vocabulary): {projection / product_total:.0%} of product time"
    )
    model = translator.model.config
    assert model is not None
    d, ff, vocab, layers = model.d_model, model.d_ff, model.vocab_size, model.decoder_layers
    per_layer = {
        "self-attention q, k, v, out": 4 * d * d,
        "cross-attention q, out": 2 * d * d,
        "feed-forward": 2 * d * ff,
    }
    rows = {name: layers * macs for name, macs in per_layer.items()} | {"output projection": d * vocab}
    everything = sum(rows.values())
    print("\nMultiply-adds per target token in one decoder step (cross-attention keys and values are cached):\n")
    print("| layer kind | multiply-adds | share |")
    print("| --- | ---: | ---: |")
    for name, macs in rows.items():
        print(f"| {name} | {macs:,} | {macs / everything:.0%} |")


if __name__ == "__main__":
    main()
