"""`selfattention evaluate`: translate a test set and score it (BLEU, chrF)."""

from __future__ import annotations

import argparse
import json
import sys

from selfattention.cli.common import CommandError, examples, resolve_model
from selfattention.cli.translate import add_decoding_arguments, decoding_config, load_translator


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="score translations of a test set with BLEU and chrF",
        description=(
            "Translate a test set and score the output against its references with sacreBLEU "
            "(cased, detokenised; tokenised for the model's target language: 13a, or zh, ja-mecab, ko-mecab "
            "where sacreBLEU's documentation says so) and chrF. The test set is --src and --ref files, a "
            "--test file of source<TAB>target pairs, or a built-in --corpus in the model's languages. With "
            "--corpus multi30k --split test, also report the Multi30k-comparable BLEU (lower-cased, "
            "Moses-tokenised, official references)."
        ),
        epilog=examples(
            "selfattention evaluate --src test.en --ref test.fr",
            "selfattention evaluate --test my/test.tsv --model runs/mine/best",
            "selfattention evaluate --corpus multi30k",
        ),
    )
    parser.add_argument("--src", help="source file, one source sentence a line (plain or .gz)")
    parser.add_argument("--ref", help="reference file, one target sentence a line")
    parser.add_argument("--test", metavar="TSV", help="a test file of source<TAB>target pairs (.tsv, plain or .gz)")
    parser.add_argument("--corpus", choices=["multi30k", "tatoeba"], help="a built-in corpus instead of --src/--ref")
    parser.add_argument(
        "--tokenize", help="sacreBLEU's tokenizer for BLEU (default: by the model's target language, 13a for most)"
    )
    parser.add_argument("--split", choices=["valid", "test"], default="test", help="split of --corpus (default test)")
    parser.add_argument(
        "--data-dir",
        help="where the built-in corpora are (default $SELFATTENTION_DATA, else shared/data beside the project "
        "checkout or the working directory)",
    )
    parser.add_argument("--output", help="also write the translations to this file")
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    add_decoding_arguments(parser)
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from selfattention.data import load_corpus
    from selfattention.data.corpora import multi30k_comparable_references
    from selfattention.data.parallel import read_tsv
    from selfattention.evaluation import comparable_bleu, score  # sacreBLEU: here only
    from selfattention.model_io import load_config

    config = decoding_config(args)
    given = [name for name, value in (("--corpus", args.corpus), ("--test", args.test)) if value]
    given += ["--src/--ref"] if args.src or args.ref else []
    if len(given) != 1:
        raise CommandError("give one test set: --src and --ref, --test FILE.tsv, or --corpus")
    if args.tokenize is not None:  # before any translating: a typo or a missing package is said at once
        _check_tokenizer(args.tokenize)
    model_config = load_config(resolve_model(args.model))
    source_lang, target_lang = model_config.source_lang, model_config.target_lang
    if args.corpus:
        pairs = load_corpus(args.corpus, args.split, args.data_dir, source_lang=source_lang, target_lang=target_lang)
        sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    elif args.test:
        pairs, read = read_tsv(args.test)
        if not pairs:
            raise CommandError(f"{args.test}: no pairs to score ({_why_empty(read.skipped)})")
        if read.skipped:
            raise CommandError(
                f"{args.test}: {sum(read.skipped.values())} line(s) with an empty side; a test set is scored whole"
            )
        sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    elif args.src or args.ref:
        if not (args.src and args.ref):
            raise CommandError("give both --src and --ref (or --test FILE.tsv)")
        sources, references = _read_side(args.src, "--src"), _read_side(args.ref, "--ref")
        if len(sources) != len(references):
            raise CommandError(f"{args.src} has {len(sources)} lines but {args.ref} has {len(references)}")
    translator = load_translator(args, sources, config)
    hypotheses = translator.translate(sources, config)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write("".join(h + "\n" for h in hypotheses))
    result = score(hypotheses, references, target_lang if args.tokenize is None else None, tokenize=args.tokenize)
    report = {
        "bleu": round(result.bleu, 2),
        "chrf": round(result.chrf, 2),
        "sentences": len(sources),
        "beam": config.beam_size,
        "signature": result.signature,
    }
    if args.corpus == "multi30k" and args.split == "test":
        comparable = multi30k_comparable_references(args.data_dir, target_lang)
        report["bleu_comparable"] = round(comparable_bleu(hypotheses, comparable, target_lang), 2)
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


def _read_side(path: str, option: str) -> list[str]:
    """One side of a test set: refused when empty, blank, or a TSV given where one sentence a line is expected."""
    from selfattention.data.text_files import read_lines

    lines = read_lines(path)
    if not lines:
        raise CommandError(f"{path} ({option}): the file is empty")
    blank = [number for number, line in enumerate(lines, start=1) if not line.strip()]
    if len(blank) == len(lines):
        raise CommandError(f"{path} ({option}): every line is blank")
    if blank:
        shown = ", ".join(map(str, blank[:5])) + (f" and {len(blank) - 5} more" if len(blank) > 5 else "")
        raise CommandError(f"{path} ({option}), line(s) {shown}: blank; every line of a test set needs a sentence")
    tabbed = [number for number, line in enumerate(lines, start=1) if "\t" in line]
    if len(tabbed) > len(lines) // 2:
        raise CommandError(
            f"{path} ({option}): lines hold tabs (line {tabbed[0]}: a TSV of pairs?); give pairs as --test {path}, "
            "or one sentence a line as --src / --ref"
        )
    return lines


def _check_tokenizer(name: str) -> None:
    import sacrebleu

    if name not in sacrebleu.metrics.BLEU.TOKENIZERS:
        raise CommandError(f"--tokenize {name}: choose one of {', '.join(sacrebleu.metrics.BLEU.TOKENIZERS)}")
    try:
        sacrebleu.metrics.BLEU(tokenize=name)
    except (ImportError, RuntimeError, OSError, SystemExit) as error:
        raise CommandError(
            f"--tokenize {name} cannot run here ({error}); install its package or choose another"
        ) from None


def _why_empty(skipped: dict[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items())) or "the file is empty"
