"""`selfattention heads`: which layers and heads link one word to another."""

from __future__ import annotations

import argparse
import sys

from selfattention.cli.common import CommandError, examples, resolve_model
from selfattention.decoding import MAX_SENTENCE_CHARS, DecodingConfig, check_sentence, check_target
from selfattention.inspection.kinds import KINDS


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "heads",
        help="rank every layer and head by the attention from one word to another",
        description=(
            "Rank every layer and head by the weight from one word to another, e.g. from 'it' to "
            "'dog'. Subword pieces are merged into words: attention to a word is the sum over its "
            "pieces, attention from a word the mean over its pieces (Clark et al., 2019)."
        ),
        epilog=examples('selfattention heads "A dog ate the food because it was hungry." --from it --to dog'),
    )
    parser.add_argument(
        "text", help=f"the source sentence (English for the bundled model), at most {MAX_SENTENCE_CHARS} characters"
    )
    parser.add_argument("--from", dest="from_word", required=True, help="the word that attends (query)")
    parser.add_argument("--to", dest="to_word", required=True, help="the word attended to (key)")
    parser.add_argument(
        "--kind", choices=KINDS, default="encoder", help="encoder (default), decoder or cross attention"
    )
    parser.add_argument("--top", type=int, default=10, help="how many heads to list (default 10)")
    parser.add_argument("--target", help="target side to use instead of the model's translation")
    parser.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    parser.set_defaults(run=run_heads)


def run_heads(args: argparse.Namespace) -> int:
    from selfattention.decoding import Translator
    from selfattention.inspection import trace_translation
    from selfattention.inspection.heads import rank_heads

    translator = Translator.load(resolve_model(args.model))
    trace = trace_translation(
        translator.model,
        translator.tokenizer,
        check_sentence(args.text, encode=translator.tokenizer.encode),
        target=check_target(args.target, what="--target"),
        decoding=DecodingConfig(beam_size=4),
    )
    try:
        scores = rank_heads(trace, args.from_word, args.to_word, args.kind)
    except ValueError as error:
        raise CommandError(str(error)) from None
    sys.stdout.write(f"Translation: {trace.translation}\n")
    sys.stdout.write(f"{args.kind} attention from {args.from_word!r} to {args.to_word!r}, strongest first:\n")
    sys.stdout.write(f"{'layer':>5}  {'head':>4}  {'weight':>7}  {'rank':>4}  strongest\n")
    for s in scores[: max(args.top, 1)]:
        sys.stdout.write(f"{s.layer:>5}  {s.head:>4}  {100 * s.weight:>6.1f}%  {s.rank_of_target:>4}  {s.strongest}\n")
    return 0
