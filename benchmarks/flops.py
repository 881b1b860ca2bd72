"""Achieved GFLOP/s in training and in decoding, against the machine's float32 matrix-multiply rate.

    python benchmarks/flops.py [--sentences 512]

The ceiling is the best median rate of square float32 matrix products (1024 to 4096) on 2
threads, the most a dense float32 workload gets from these cores, measured twice: with PyTorch's
default product (``a @ b``: MKL, which on AMD processors runs its AVX2 code) and with oneDNN's
(``torch.ops.mkldnn._linear_pointwise``, AVX-512), which ``Translator.load`` uses for float32
inference (``selfattention.engine.packed``). Floating-point operations are
counted by PyTorch's ``FlopCounterMode`` (matrix products and attention; element-wise work is not
counted, so the figures are the useful arithmetic per second). Training: one optimiser step of
the bundled model's shape on a batch of 128 sentences × 28 tokens (3,200 real target tokens),
timed twice: with PyTorch's default products, and with the linear layers on oneDNN as the
trainer runs them (``selfattention.engine.onednn_linear``; counted without it, for the same reason).
Decoding: greedy and beam-4 translation of the first ``--sentences`` Multi30k test sources,
batch 32, with the bundled model as ``Translator.load`` gives it (oneDNN-packed encoder, the
decoder's steps in C where a compiler is found). The counter sees neither oneDNN's calls nor the C
step's, so the operations are counted on the same model unpacked and the same searches run through
PyTorch's step (``search.steps.TorchStep``), which makes the same products; the script says how many
translations differ between the two (none, where the count is exactly of the work that was timed).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from unittest import mock

import torch

from selfattention.cli.common import resolve_model
from selfattention.config import ModelConfig
from selfattention.data.corpora import load_corpus
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine import native_step
from selfattention.engine.allocator import tune_allocator
from selfattention.engine.onednn_linear import OneDNNLinears, onednn_available
from selfattention.engine.packed import onednn_wanted
from selfattention.model import build_model
from selfattention.training.loss import label_smoothed_loss


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    work()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def counted_flops(work: Callable[[], object]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        work()
    return counter.get_total_flops()


def matmul_ceiling() -> list[tuple[str, float]]:
    rates = []
    for n in (1024, 2048, 4096):
        a, b = torch.randn(n, n), torch.randn(n, n)
        seconds = median_seconds(lambda a=a, b=b: a @ b, 7 if n < 4096 else 3)
        rates.append((f"{n} x {n} @ {n} x {n}", 2 * n**3 / seconds / 1e9))
    a, b = torch.randn(3200, 256), torch.randn(256, 1024)  # a feed-forward layer's product in training
    seconds = median_seconds(lambda: a @ b, 21)
    rates.append(("3200 x 256 @ 256 x 1024 (feed-forward in training)", 2 * 3200 * 256 * 1024 / seconds / 1e9))
    if onednn_wanted():
        for n in (1024, 2048, 4096):
            a, weight = torch.randn(n, n), torch.randn(n, n)
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, n)
            seconds = median_seconds(
                lambda a=a, packed=packed: torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], ""),
                7 if n < 4096 else 3,
            )
            rates.append((f"{n} x {n} @ {n} x {n}, oneDNN", 2 * n**3 / seconds / 1e9))
    return rates


def training_rates(config: ModelConfig) -> tuple[int, float, float]:
    """FLOPs of one training step, and its median seconds with PyTorch's products and with oneDNN's."""
    torch.manual_seed(0)
    batch, length = 128, 28
    src = torch.randint(4, config.vocab_size, (batch, length))
    tgt = torch.randint(4, config.vocab_size, (batch, length))
    src[:, -3:] = 0
    tgt[:, -3:] = 0
    real = tgt != 0
    model = build_model(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(linears: bool) -> None:
        optimizer.zero_grad()
        with OneDNNLinears() if linears else contextlib.nullcontext():
            logits = model(src, tgt, keep=real)
        label_smoothed_loss(logits, tgt[real], 0, 0.1)[0].backward()
        optimizer.step()

    onednn = median_seconds(lambda: step(True), 8) if onednn_available() else float("nan")
    return counted_flops(lambda: step(False)), median_seconds(lambda: step(False), 8), onednn


def decoding_rate(
    translator: Translator, unpacked: Translator, sources: list[list[int]], beam: int
) -> tuple[int, float]:
    config = DecodingConfig(beam_size=beam, batch_size=32)
    ordered = sorted(sources, key=len)

    def run(which: Translator) -> list[list[int]]:
        outputs: list[list[int]] = []
        for start in range(0, len(ordered), 32):
            outputs += which.translate_ids(ordered[start : start + 32], config)
        return outputs

    counted: list[list[int]] = []
    with mock.patch.object(native_step, "start", return_value=None):  # PyTorch's step, which the counter sees
        flops = counted_flops(lambda: counted.extend(run(unpacked)))
    differ = sum(a != b for a, b in zip(counted, run(translator), strict=True))
    if differ:
        print(f"beam {beam}: {differ} of {len(ordered)} translations differ between PyTorch's step and the timed one")
    return flops, median_seconds(lambda: run(translator), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=512, help="Multi30k test sources to translate")
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(2)
    print(f"$ python benchmarks/flops.py --sentences {args.sentences}  (torch {torch.__version__}, 2 threads)\n")
    ceiling = matmul_ceiling()
    print("| float32 matrix product | GFLOP/s |")
    print("| --- | ---: |")
    for name, rate in ceiling:
        print(f"| {name} | {rate:,.0f} |")
    peak = max(rate for _, rate in ceiling)
    translator = Translator.load(resolve_model(None))
    unpacked = Translator.load(resolve_model(None), onednn=False)
    assert translator.model.config is not None
    pairs = load_corpus("multi30k", "test", None)[: args.sentences]
    sources = translator.tokenizer.encode_batch([source for source, _ in pairs])
    flops, plain, onednn = training_rates(translator.model.config)
    rows = [("training step (forward, backward, Adam), batch 128 x 28", flops, plain)]
    if onednn_available():
        rows.append(("training step, linear layers on oneDNN (as the trainer)", flops, onednn))
    for beam in (1, 4):
        name = f"{'greedy' if beam == 1 else 'beam 4'} decoding, batch 32, {len(sources)} sentences"
        rows.append((name, *decoding_rate(translator, unpacked, sources, beam)))
    print(f"\nceiling: {peak:,.0f} GFLOP/s\n")
    print("| work | GFLOP counted | seconds (median) | GFLOP/s | share of the ceiling |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, flops, seconds in rows:
        rate = flops / seconds / 1e9
        print(f"| {name} | {flops / 1e9:,.1f} | {seconds:.3f} | {rate:,.1f} | {rate / peak:.0%} |")


if __name__ == "__main__":
    main()
