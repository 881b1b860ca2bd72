"""Translation quality of a model: BLEU and chrF on Multi30k test_2016_flickr and Tatoeba test.

    python benchmarks/quality.py                       # the bundled en-fr model
    python benchmarks/quality.py --model runs/en-fr/best --beams 1 4

Prints a markdown table for BENCHMARKS.md: cased detokenised sacreBLEU and chrF, the
Multi30k-comparable BLEU (lower-cased, Moses-tokenised, official references), and the time
each took on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

from selfattention.cli.common import resolve_model
from selfattention.data import load_corpus
from selfattention.data.corpora import multi30k_comparable_references
from selfattention.decoding import DecodingConfig, Translator
from selfattention.evaluation import comparable_bleu, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the bundled en-fr)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4], help="beam sizes to try (default 1 4)")
    parser.add_argument("--data-dir", help="corpora directory (default $SELFATTENTION_DATA or ../shared/data)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    translator = Translator.load(resolve_model(args.model))
    test_sets = {
        "Multi30k test_2016_flickr": load_corpus("multi30k", "test", args.data_dir),
        "Tatoeba test (our split)": load_corpus("tatoeba", "test", args.data_dir),
    }
    comparable_refs = multi30k_comparable_references(args.data_dir)
    print("| test set | sentences | search | BLEU (cased, detok.) | chrF | comparable BLEU | seconds |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for name, pairs in test_sets.items():
        sources, references = [s for s, _ in pairs], [t for _, t in pairs]
        for beam in args.beams:
            started = time.perf_counter()
            hypotheses = translator.translate(sources, DecodingConfig(beam_size=beam, batch_size=args.batch_size))
            seconds = time.perf_counter() - started
            result = score(hypotheses, references)
            comparable = f"{comparable_bleu(hypotheses, comparable_refs):.2f}" if name.startswith("Multi30k") else "–"
            search = "greedy" if beam == 1 else f"beam {beam}"
            print(
                f"| {name} | {len(pairs)} | {search} | {result.bleu:.2f} | {result.chrf:.2f} | {comparable} | {seconds:.0f} |"
            )
    print()
    print(f"sacreBLEU signature: {result.signature}")
    lengths = [len(source.split()) for source, _ in test_sets["Multi30k test_2016_flickr"]]
    print(f"Multi30k test source length: mean {statistics.mean(lengths):.1f} words")


if __name__ == "__main__":
    main()
