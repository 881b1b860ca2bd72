"""`selfattention contrast`: why "il" and not "elle", from two sentences that differ in one word."""

from __future__ import annotations

import argparse
import sys

from selfattention.cli.common import CommandError, examples, resolve_model
from selfattention.decoding import MAX_SENTENCE_CHARS, DecodingConfig, check_sentence


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "contrast",
        help='why "il" and not "elle": two sentences that differ in one word, side by side',
        description=(
            "Translate two sentences that differ in one word (e.g. 'hungry' / 'delicious') and show what changes: "
            "both translations, the probability of each French pronoun (il, elle) at the step that writes it, and "
            "the encoder heads whose attention from the English pronoun moves most from one antecedent to the "
            "other (shift = (to 1 - to 2 in sentence 1) - (to 1 - to 2 in sentence 2))."
        ),
        epilog=examples(
            'selfattention contrast "The dog ate the soup because it was hungry." '
            '"The dog ate the soup because it was delicious."',
            'selfattention contrast "The girl took the apple because it was red." '
            '"The girl took the apple because she was hungry." --pronoun it --antecedents girl apple',
        ),
    )
    parser.add_argument("first", help=f"the first sentence, at most {MAX_SENTENCE_CHARS} characters")
    parser.add_argument("second", help="the second sentence, the same but for one word")
    parser.add_argument("--pronoun", default="it", help="the English pronoun to follow (default it)")
    parser.add_argument(
        "--antecedents", nargs=2, metavar=("WORD1", "WORD2"), help="the two words it may refer to (default: found)"
    )
    parser.add_argument(
        "--choices", nargs="+", default=["il", "elle"], help="French pieces to compare (default il elle)"
    )
    parser.add_argument("--top", type=int, default=5, help="heads to list (default 5)")
    parser.add_argument("--beam", type=int, default=4, help="beam size for the translations (default 4)")
    parser.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    parser.set_defaults(run=run_contrast)


def run_contrast(args: argparse.Namespace) -> int:
    from selfattention.decoding import Translator
    from selfattention.inspection.contrast import contrast

    if args.beam < 1 or args.top < 1:
        raise CommandError("--beam and --top must be at least 1")
    translator = Translator.load(resolve_model(args.model))
    sentences = [
        check_sentence(s, what=f"sentence {i}", encode=translator.tokenizer.encode)
        for i, s in enumerate((args.first, args.second), start=1)
    ]
    try:
        result = contrast(
            translator,
            *sentences,
            pronoun=args.pronoun,
            antecedents=args.antecedents,
            choices=args.choices,
            decoding=DecodingConfig(beam_size=args.beam),
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    out = sys.stdout
    one, two = result.antecedents
    for number, (text, translation, step) in enumerate(
        zip(result.sentences, result.translations, result.steps, strict=True), start=1
    ):
        out.write(f"{number}. {text}\n   → {translation}\n")
        if step.index is None:
            out.write(f"   writes none of {', '.join(result.choices)}\n")
        else:
            shares = ", ".join(f"{choice} {100 * p:.1f} %" for choice, p in step.probabilities.items())
            out.write(f"   step {step.index + 1} writes {step.written!r}: {shares}\n")
    out.write(
        f"\nHeads whose attention from {result.pronoun!r} moves most between {one!r} and {two!r} "
        "(sentence 1 → sentence 2):\n"
    )
    out.write(f"{'layer':>5}  {'head':>4}  {'to ' + one:>14}  {'to ' + two:>14}  {'shift':>7}\n")
    for h in result.heads[: args.top]:
        to_one = f"{100 * h.first[0]:.0f}→{100 * h.second[0]:.0f} %"
        to_two = f"{100 * h.first[1]:.0f}→{100 * h.second[1]:.0f} %"
        out.write(f"{h.layer:>5}  {h.head:>4}  {to_one:>14}  {to_two:>14}  {100 * h.shift:>+6.1f}\n")
    return 0
