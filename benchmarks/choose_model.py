"""Choose the bundled model and its search settings on the validation set (never on the test set).

    python benchmarks/choose_model.py /work/runs/en-fr/best /work/runs/en-fr/averaged \
        --beams 1 4 6 --length-penalties 0.6 1.0 1.4

Translates the validation split of each corpus (default Multi30k val, 1,014 sentences; a general
model: ``--corpora multi30k tatoeba``) with every model directory × beam size × length penalty and
prints a markdown table of cased detokenised sacreBLEU and chrF per corpus, best mean BLEU first.
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
    parser.add_argument(
        "--corpora", nargs="+", default=["multi30k"], help="corpora whose validation split scores (default multi30k)"
    )
    args = parser.parse_args()
    sets = {name: load_corpus(name, "valid", args.data_dir) for name in args.corpora}
    rows = []
    for directory in args.models:
        translator = Translator.load(directory)
        for beam, penalty in itertools.product(args.beams, args.length_penalties):
            if beam == 1 and penalty != args.length_penalties[0]:
                continue  # greedy search has no length penalty
            started = time.perf_counter()
            config = DecodingConfig(beam_size=beam, length_penalty=penalty, batch_size=args.batch_size)
            scores = []
            for pairs in sets.values():
                result = score(translator.translate([s for s, _ in pairs], config), [t for _, t in pairs])
                scores.append((result.bleu, result.chrf))
            mean = sum(bleu for bleu, _ in scores) / len(scores)
            rows.append((mean, scores, directory, beam, penalty, time.perf_counter() - started))
    print(", ".join(f"{name} val, {len(pairs)} sentences" for name, pairs in sets.items()))
    print()
    columns = "".join(f" {name} BLEU | {name} chrF |" for name in sets)
    mean_column = " mean BLEU |" if len(sets) > 1 else ""
    print(f"| model | beam | length penalty |{columns}{mean_column} seconds |")
    print("| --- | ---: | ---: |" + " ---: |" * (2 * len(sets) + (len(sets) > 1) + 1))
    for mean, scores, directory, beam, penalty, seconds in sorted(rows, key=lambda row: row[0], reverse=True):
        shown_penalty = "–" if beam == 1 else f"{penalty:g}"
        cells = "".join(f" {bleu:.2f} | {chrf:.2f} |" for bleu, chrf in scores)
        mean_cell = f" {mean:.2f} |" if len(sets) > 1 else ""
        print(f"| {directory} | {beam} | {shown_penalty} |{cells}{mean_cell} {seconds:.0f} |")


if __name__ == "__main__":
    main()
