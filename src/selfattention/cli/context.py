"""`selfattention context`: how a word's vector changes with its sentence, layer by layer."""

from __future__ import annotations

import argparse
import sys

from selfattention.cli.common import CommandError, examples, resolve_model
from selfattention.decoding import MAX_SENTENCE_CHARS, check_sentence


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "context",
        help="compare one word's contextual vectors across sentences, layer by layer",
        description=(
            "Follow one word through the encoder in several sentences: the cosine similarity of its "
            "vectors between sentences after the embedding layer and after each encoder layer, and "
            "the vocabulary pieces nearest its last-layer vector. A word split into pieces is the "
            "mean of its pieces."
        ),
        epilog=examples(
            'selfattention context "I love Apple phones" "I love apple juice" --word apple --out apple.png'
        ),
    )
    parser.add_argument(
        "sentences",
        nargs="+",
        help=f"two or more sentences that share the word, each at most {MAX_SENTENCE_CHARS} characters",
    )
    parser.add_argument("--word", required=True, help="the shared word (case-insensitive)")
    parser.add_argument("--out", help="also draw the similarity by layer to this PNG/SVG/HTML file")
    parser.add_argument("--neighbours", type=int, default=6, help="nearest vocabulary pieces to list (default 6)")
    parser.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    parser.set_defaults(run=run_context)


def run_context(args: argparse.Namespace) -> int:
    from selfattention.decoding import Translator
    from selfattention.inspection.context import compare_contexts

    if len(args.sentences) < 2:
        raise CommandError("give at least two sentences that share the word")
    translator = Translator.load(resolve_model(args.model))
    sentences = [
        check_sentence(s, what=f"sentence {i + 1}", encode=translator.tokenizer.encode)
        for i, s in enumerate(args.sentences)
    ]
    try:
        report = compare_contexts(
            translator.model, translator.tokenizer, sentences, args.word, top_k=max(args.neighbours, 1)
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    for index, found in enumerate(report.words):
        sys.stdout.write(f"[{index}] {found.sentence!r}: {found.word!r} = pieces {' '.join(found.pieces)}\n")
    pairs = [(a, b) for a in range(len(sentences)) for b in range(a + 1, len(sentences))]
    sys.stdout.write("\ncosine similarity of the word's vectors\n")
    sys.stdout.write(f"{'after':>10}  " + "  ".join(f"[{a}]~[{b}]" for a, b in pairs) + "\n")
    for layer, name in enumerate(report.layer_names):
        values = "  ".join(f"{float(report.similarity[layer, a, b]):>7.3f}" for a, b in pairs)
        sys.stdout.write(f"{name:>10}  {values}\n")
    sys.stdout.write("\nnearest vocabulary pieces to the last layer's vector\n")
    for index, neighbours in enumerate(report.neighbours):
        sys.stdout.write(f"[{index}] " + ", ".join(f"{piece} {value:.2f}" for piece, value in neighbours) + "\n")
    if args.out:
        from selfattention.inspection.plots import context_plot, save_figure

        try:
            out = save_figure(context_plot(report), args.out, title=f"'{args.word}' in context")
        except ValueError as error:
            raise CommandError(str(error)) from None
        sys.stdout.write(f"\n{out}\n")
    return 0
