"""Beam search's cache reordering: the C step's reorder against PyTorch's indexing of the same caches.

    python benchmarks/cache_reorder.py [--sentences 256] [--repeats 7]

At each step beam search keeps each sentence's best hypotheses, and every decoder layer's
self-attention keys and values follow them: row i of the caches becomes the old row ``index[i]``.
The indices here are real ones: beam 4 over the first ``--sentences`` Multi30k test sources
(sorted by length, batch 32, the bundled model), recorded with the number of positions filled at
each call. They are then replayed, one thread, on caches of the same shapes, by
``NativeStep.keep_targets`` (``selfattention_reorder`` in ``decoding/native_step.c``: each row that
moves copied once, rows that stay not at all) and by PyTorch's indexing of the filled positions
(``caches[:, :, :n, :, :used] = caches[:, :, index, :, :used]``, a gather into a new tensor and a
copy back, as ``index_select`` on a cache does). A row is the median over ``--repeats`` passes of
the whole replay; the two take turns pass by pass.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from selfattention.cli.common import resolve_model
from selfattention.data.corpora import load_corpus
from selfattention.decoding import DecodingConfig, Translator, native_step


def recorded_calls(translator: Translator, sources: list[list[int]]) -> tuple[list[tuple[torch.Tensor, int]], int]:
    """Each ``keep_targets`` call of beam 4 over ``sources``: (index, positions filled), and the most rows."""
    calls: list[tuple[torch.Tensor, int]] = []
    original = native_step.NativeStep.keep_targets

    def recording(step: native_step.NativeStep, index: torch.Tensor) -> None:
        calls.append((index.clone(), step.position))
        original(step, index)

    native_step.NativeStep.keep_targets = recording  # type: ignore[method-assign]
    try:
        for start in range(0, len(sources), 32):
            translator.translate_ids(sources[start : start + 32], DecodingConfig(beam_size=4, batch_size=32))
    finally:
        native_step.NativeStep.keep_targets = original  # type: ignore[method-assign]
    return calls, max(index.shape[0] for index, _ in calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=256, help="Multi30k test sources to decode with beam 4")
    parser.add_argument("--repeats", type=int, default=7, help="passes over the recorded calls, each way")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"$ python benchmarks/cache_reorder.py --sentences {args.sentences} --repeats {args.repeats}\n")
    translator = Translator.load(resolve_model(None))
    pairs = load_corpus("multi30k", "test", None)[: args.sentences]
    sources = sorted(translator.tokenizer.encode_batch([source for source, _ in pairs]), key=len)
    if not native_step.available():
        raise SystemExit("the C decoding step is not available here (no compiler, or SELFATTENTION_NATIVE=0)")
    calls, rows = recorded_calls(translator, sources)
    steps = max(used for _, used in calls) + 1
    model = translator.model
    with torch.no_grad():
        src = torch.full((rows // 4, 4), 5)
        step = native_step.start(model, model.encode(src), model.source_mask(src), rows, steps)
    assert step is not None
    step.self_kv.normal_()
    caches = step.self_kv
    moved = sum(int((index != torch.arange(index.shape[0])).sum()) for index, _ in calls)

    def ours() -> None:
        for index, used in calls:
            step.position = used
            step.keep_targets(index)

    def pytorchs() -> None:
        for index, used in calls:
            caches[:, :, : index.shape[0], :, :used] = caches[:, :, index, :, :used]

    theirs = caches.clone()
    for number, (index, used) in enumerate(calls):  # the same caches after every call, both ways
        step.position = used
        step.keep_targets(index)
        theirs[:, :, : index.shape[0], :, :used] = theirs[:, :, index, :, :used]
        if not torch.equal(caches, theirs):
            raise SystemExit(f"the two reorders disagree after call {number}")
    times: dict[str, list[float]] = {"C reorder (NativeStep.keep_targets)": [], "PyTorch indexing": []}
    for repeat in range(args.repeats):
        order = list(zip(times, (ours, pytorchs), strict=True))
        for name, work in order if repeat % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - started)
    layers, kinds, _, heads, _, width = caches.shape
    print(
        f"{len(calls)} reorders of beam 4 over {len(sources)} sentences, {moved} rows moved in all; caches of "
        f"{layers} layers x {kinds} (keys, values) x up to {rows} rows x {heads} heads x {width}, "
        f"up to {steps - 1} positions filled\n"
    )
    print("| reorder | ms per pass (median) | PyTorch / this |")
    print("| --- | ---: | ---: |")
    reference = statistics.median(times["PyTorch indexing"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1e3:,.1f} | {reference / median:.2f}x |")


if __name__ == "__main__":
    main()
