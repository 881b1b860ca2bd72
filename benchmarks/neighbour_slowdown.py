"""Why translation_speed.py runs each engine in its own process: a neighbour slows PyTorch's search.

    python benchmarks/neighbour_slowdown.py [--sentences 320]      # both neighbours, a process each

Beam-4 translation (batch 32, 2 threads) of the first ``--sentences`` Multi30k test sources with
the bundled model, twice alone, then twice more in the same process after a CTranslate2
translator (the same weights, ``inter_threads=2, intra_threads=1``) has been created and has
translated one batch, or after ``transformers`` has been imported. Without ``--neighbour``, it
runs itself once for each, in a fresh process. Prints target tokens/s for each run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from selfattention.cli.common import resolve_model
from selfattention.data import load_corpus
from selfattention.decoding import DecodingConfig, Translator
from selfattention.engine.allocator import tune_allocator

NEIGHBOURS = ("ctranslate2", "transformers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=320, help="Multi30k test sources (default 320)")
    parser.add_argument("--neighbour", choices=NEIGHBOURS, help="only this one, in this process")
    args = parser.parse_args()
    if args.neighbour is None:
        for neighbour in NEIGHBOURS:
            command = [sys.executable, __file__, "--sentences", str(args.sentences), "--neighbour", neighbour]
            subprocess.run(command, check=True)
            print()
        return
    tune_allocator()
    torch.set_num_threads(2)
    translator = Translator.load(resolve_model(None))
    sources = [s for s, _ in load_corpus("multi30k", "test", None)][: args.sentences]
    config = DecodingConfig(beam_size=4, batch_size=32)

    def rate() -> float:
        started = time.perf_counter()
        outputs = translator.translate(sources, config)
        seconds = time.perf_counter() - started
        return sum(len(ids) + 1 for ids in translator.tokenizer.encode_batch(outputs)) / seconds

    print(f"$ python benchmarks/neighbour_slowdown.py --sentences {args.sentences} --neighbour {args.neighbour}\n")
    alone = [rate(), rate()]
    with tempfile.TemporaryDirectory() as scratch:
        if args.neighbour == "ctranslate2":
            import ctranslate2

            from selfattention.interop import export_ct2

            exported = export_ct2(translator.model, translator.tokenizer, Path(scratch) / "ct2", "float32")
            neighbour = ctranslate2.Translator(str(exported), device="cpu", inter_threads=2, intra_threads=1)
            neighbour.translate_batch([["▁Hello", "</s>"]] * 4)
        else:
            import transformers  # noqa: F401

        beside = [rate(), rate()]
    print("| beam 4, batch 32 | target tokens/s, two runs |")
    print("| --- | ---: |")
    print(f"| alone | {alone[0]:,.0f}, {alone[1]:,.0f} |")
    print(f"| beside {args.neighbour} | {beside[0]:,.0f}, {beside[1]:,.0f} |")


if __name__ == "__main__":
    main()
