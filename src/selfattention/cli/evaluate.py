"""`selfattention evaluate`: translate a test set and score it (BLEU, chrF)."""

from __future__ import annotations

import argparse
import json
import sys

from selfattention.cli.common import CommandError, examples
from selfattention.cli.translate import add_decoding_arguments, decoding_config, load_translator


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="score translations of a test set with BLEU and chrF",
        description=(
            "Translate a source file and score the output against references with sacreBLEU "
            "(cased, detokenised) and chrF. With --corpus multi30k --split test, also report the "
            "Multi30k-comparable BLEU (lower-cased, Moses-tokenised, official references)."
        ),
        epilog=examples(
            "selfattention evaluate --src test.en --ref test.fr", "selfattention evaluate --corpus multi30k"
        ),
    )
    parser.add_argument("--src", help="source file, one English sentence a line (plain or .gz)")
    parser.add_argument("--ref", help="reference file, one French sentence a line")
    parser.add_argument("--corpus", choices=["multi30k", "tatoeba"], help="a built-in corpus instead of --src/--ref")
    parser.add_argument("--split", choices=["valid", "test"], default="test", help="split of --corpus (default test)")
    parser.add_argument("--data-dir", help="where the corpora are (default $SELFATTENTION_DATA or ../shared/data)")
    parser.add_argument("--output", help="also write the translations to this file")
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    add_decoding_arguments(parser)
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from selfattention.data import load_corpus
    from selfattention.data.corpora import multi30k_comparable_references
    from selfattention.data.text_files import read_lines
    from selfattention.evaluation import comparable_bleu, score  # sacreBLEU: here only

    config = decoding_config(args)
    if args.corpus:
        pairs = load_corpus(args.corpus, args.split, args.data_dir)
        sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    elif args.src and args.ref:
        sources, references = read_lines(args.src), read_lines(args.ref)
        if len(sources) != len(references):
            raise CommandError(f"{args.src} has {len(sources)} lines but {args.ref} has {len(references)}")
    else:
        raise CommandError("give --src and --ref, or --corpus")
    translator = load_translator(args, sources, config)
    hypotheses = translator.translate(sources, config)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write("".join(h + "\n" for h in hypotheses))
    result = score(hypotheses, references)
    report = {
        "bleu": round(result.bleu, 2),
        "chrf": round(result.chrf, 2),
        "sentences": len(sources),
        "beam": config.beam_size,
        "signature": result.signature,
    }
    if args.corpus == "multi30k" and args.split == "test":
        report["bleu_comparable"] = round(comparable_bleu(hypotheses, multi30k_comparable_references(args.data_dir)), 2)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        sys.stdout.write(
            f"BLEU {report['bleu']:.2f}  chrF {report['chrf']:.2f}  ({len(sources)} sentences, beam {config.beam_size})\n"
        )
        if "bleu_comparable" in report:
            sys.stdout.write(
                f"Multi30k-comparable BLEU (lower-cased, Moses-tokenised) {report['bleu_comparable']:.2f}\n"
            )
        sys.stdout.write(f"{result.signature}\n")
    return 0
