"""What two decoding workers cost beyond their search: the pool's wall time against the time spent inside it.

    python benchmarks/worker_overhead.py [--sentences 1000] [--repeats 3]

``translate --workers 2`` (``selfattention.engine.workers``) forks two processes of one thread
each and sends them batches of 32 (the Multi30k test sources sorted by length, as ``translate``
batches them). Each worker here times its own ``translate_ids`` call for every batch and sends
that back with the batch's tokens, so one pass over the set gives:

- the pool's wall time, from submitting the first batch to receiving and detokenising the last
  (the parent turns each batch's tokens into text as it arrives, as ``translate`` does);
- the time inside the workers, summed over the batches: half of it is the wall time two workers
  would take if sending batches and results and waiting on each other cost nothing;
- the same batches decoded one after another in this process, one thread, nothing beside it.

``wall / (inside / 2)`` is the pool's own overhead (sending batches and tokens, the parent's
detokenising, idle time at the end); ``inside / alone`` is how much slower a worker's search runs
with the other worker busy on the second core (shared caches and memory). A pool pass and an
alone pass take turns; two of each go untimed first, then each figure is the median of
``--repeats`` (the ratios are medians of each pass's ratio).

Last, what starting the pool costs, set against one batch's search: the wall time from asking
for two workers to both having answered (forking the loaded process included), and to stopping
them, median of ``--starts``. ``translate`` starts workers by itself when its input makes two
batches or more (docs/speed.md); this is the cost of that choice.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from selfattention.cli.common import resolve_model
from selfattention.data import load_corpus
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine import native_step
from selfattention.engine.allocator import tune_allocator
from selfattention.engine.workers import DecodingPool


def timed_decoder(translator: Translator) -> Callable[[Sequence[Sequence[int]], DecodingConfig], list[list[int]]]:
    """``translate_ids`` whose answer starts with a row holding its own wall time, in microseconds."""

    def decode(batch: Sequence[Sequence[int]], config: DecodingConfig) -> list[list[int]]:
        started = time.perf_counter()
        tokens = translator.translate_ids(batch, config)
        return [[int((time.perf_counter() - started) * 1e6)], *tokens]

    return decode


def measure(translator: Translator, batches: list[list[list[int]]], beam: int, repeats: int) -> tuple[float, ...]:
    """Medians of: pool wall s, s inside the workers, s alone in one thread, wall / (inside / 2), inside / alone."""
    config = DecodingConfig(beam_size=beam, batch_size=32)
    decode = timed_decoder(translator)
    pool = DecodingPool(decode, 2)
    passes: list[tuple[float, float, float]] = []
    try:
        for number in range(2 + repeats):  # a pool pass, then the same batches alone, in turn
            started = time.perf_counter()
            inside = 0.0
            for result in pool.map(batches, config):  # the parent detokenises each batch, as translate does
                inside += result[0][0] / 1e6
                for tokens in result[1:]:
                    translator.tokenizer.decode(tokens)
            wall = time.perf_counter() - started
            alone = sum(decode(batch, config)[0][0] for batch in batches) / 1e6
            if number >= 2:
                passes.append((wall, inside, alone))
    finally:
        pool.close()
    wall, inside, alone = (statistics.median(p[i] for p in passes) for i in range(3))
    overhead = statistics.median(w / (i / 2) for w, i, _ in passes)
    slowdown = statistics.median(i / a for _, i, a in passes)
    return wall, inside, alone, overhead, slowdown


def start_cost(translator: Translator, starts: int) -> tuple[float, float]:
    """Medians, in seconds, of starting two workers (until both answered) and of stopping them."""
    started, stopped = [], []
    for _ in range(starts):
        begin = time.perf_counter()
        pool = DecodingPool(translator.translate_ids, 2)
        ready = time.perf_counter()
        pool.close()
        started.append(ready - begin)
        stopped.append(time.perf_counter() - ready)
    return statistics.median(started), statistics.median(stopped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=1000, help="Multi30k test sources (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (default 3)")
    parser.add_argument("--starts", type=int, default=20, help="pools started and stopped (default 20)")
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(1)  # this process's own decoding: one thread, as each worker
    translator = Translator.load(resolve_model(None))
    sources = [s for s, _ in load_corpus("multi30k", "test", None)][: args.sentences]
    ids = sorted(translator.tokenizer.encode_batch(sources), key=len)
    batches = [ids[start : start + 32] for start in range(0, len(ids), 32)]
    print(
        f"$ python benchmarks/worker_overhead.py --sentences {args.sentences} --repeats {args.repeats} "
        f"--starts {args.starts}\n"
    )
    print(f"{len(batches)} batches of up to 32; medians of {args.repeats} passes\n")
    print("| search | pool wall s | inside workers s | ideal (inside / 2) s | wall / ideal | one thread alone s "
          "| worker slowdown beside the other | a batch alone, mean s |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for beam in (1, 4):
        wall, busy, single, overhead, slowdown = measure(translator, batches, beam, args.repeats)
        search = "greedy" if beam == 1 else f"beam {beam}"
        print(
            f"| {search} | {wall:.2f} | {busy:.2f} | {busy / 2:.2f} | {overhead:.2f}x | {single:.2f} | {slowdown:.2f}x "
            f"| {single / len(batches):.3f} |"
        )
    native_step.decoder_for(translator.model)  # packed before the forks, as start_workers does
    start, stop = start_cost(translator, args.starts)
    print(
        f"\nStarting 2 workers (fork, until both answered): {start * 1e3:.1f} ms; stopping them: "
        f"{stop * 1e3:.1f} ms (medians of {args.starts})"
    )


if __name__ == "__main__":
    main()
