"""Choose the bundled model and its search settings on the validation set (never on the test set).

    python benchmarks/choose_model.py /work/runs/en-fr/best /work/runs/en-fr/averaged \
        --beams 1 4 6 --length-penalties 0.6 1.0 1.4

Translates Multi30k val (1,014 sentences) with every model directory × beam size × length
penalty and prints a markdown table of cased detokenised sacreBLEU and chrF, best first.
"""

from __future__ import annotations

import argparse
import itertools
import time

from selfattention.data import load_corpus
from selfattention.decoding import DecodingConfig, Translator
from selfattention.evaluation import score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model directories to compare")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--length-penalties", type=float, nargs="+", default=[1.0])
    parser.add_argument("--data-dir", help="corpora directory (default $SELFATTENTION_DATA or ../shared/data)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    pairs = load_corpus("multi30k", "valid", args.data_dir)
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    rows = []
    for directory in args.models:
        translator = Translator.load(directory)
        for beam, penalty in itertools.product(args.beams, args.length_penalties):
            if beam == 1 and penalty != args.length_penalties[0]:
                continue  # greedy search has no length penalty
            started = time.perf_counter()
            config = DecodingConfig(beam_size=beam, length_penalty=penalty, batch_size=args.batch_size)
            result = score(translator.translate(sources, config), references)
            rows.append((result.bleu, result.chrf, directory, beam, penalty, time.perf_counter() - started))
    print(f"Multi30k val, {len(pairs)} sentences")
    print()
    print("| model | beam | length penalty | BLEU | chrF | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for bleu, chrf, directory, beam, penalty, seconds in sorted(rows, reverse=True):
        shown_penalty = "–" if beam == 1 else f"{penalty:g}"
        print(f"| {directory} | {beam} | {shown_penalty} | {bleu:.2f} | {chrf:.2f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
