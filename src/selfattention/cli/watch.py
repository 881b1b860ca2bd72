"""`selfattention watch`: the decoding step by step, as text."""

from __future__ import annotations

import argparse
import sys

from selfattention.cli.common import CommandError, examples, resolve_model
from selfattention.decoding import MAX_SENTENCE_CHARS, DecodingConfig, check_sentence
from selfattention.inspection.notation import PIECES_NOTE


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "watch",
        help="watch it translate: each step's next-token probabilities, cross-attention and beam",
        description=(
            "Translate a sentence and show the decoding step by step: at each step the token the decoder reads "
            "and the one it writes, the likeliest next tokens (the top of the output softmax), the English it "
            "looked at (that step's cross-attention, mean over one layer's heads) and, with beam search, the "
            f"hypotheses kept and their log-probabilities. {PIECES_NOTE}"
        ),
        epilog=examples(
            'selfattention watch "I am good."',
            'selfattention watch "A dog ate the food because it was hungry." --beam 1 --top 3',
        ),
    )
    parser.add_argument("text", help=f"the English sentence, at most {MAX_SENTENCE_CHARS} characters")
    parser.add_argument("--beam", type=int, default=4, help="beam size; 1 is greedy search (default 4)")
    parser.add_argument("--top", type=int, default=5, help="likeliest next tokens to list per step (default 5)")
    parser.add_argument("--layer", type=int, help="decoder layer whose cross-attention to show (default: the last)")
    parser.add_argument("--looked-at", type=int, default=3, help="English pieces to list per step (default 3)")
    parser.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    parser.set_defaults(run=run_watch)


def run_watch(args: argparse.Namespace) -> int:
    from selfattention.decoding import Translator
    from selfattention.inspection.watch import watch_translation

    for name in ("beam", "top", "looked_at"):
        if getattr(args, name) < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
    translator = Translator.load(resolve_model(args.model))
    layers = len(translator.model.decoder.layers)
    layer = layers - 1 if args.layer is None else args.layer
    if not 0 <= layer < layers:
        raise CommandError(f"--layer {layer} does not exist: the decoder has layers 0 to {layers - 1}")
    text = check_sentence(args.text, encode=translator.tokenizer.encode)
    watched = watch_translation(
        translator.model, translator.tokenizer, text, DecodingConfig(beam_size=args.beam), top_k=args.top
    )
    out = sys.stdout
    out.write(f"Translation: {watched.translation}\n")
    search = "greedy search" if watched.beam_size == 1 else f"beam search, {watched.beam_size} hypotheses"
    out.write(f"{len(watched.steps)} steps ({search}; it ran {watched.search_steps} steps)\n")
    for step in watched.steps:
        out.write(
            f"\nStep {step.index + 1}: reads {step.reads!r}, writes {step.writes!r} ({_percent(step.written_probability)})\n"
        )
        out.write("  likeliest next: " + ", ".join(f"{piece} {_percent(p)}" for piece, p in step.top) + "\n")
        looked = step.cross[layer].mean(dim=0)  # (S,): mean over the layer's heads
        order = looked.argsort(descending=True)[: args.looked_at].tolist()
        pieces = ", ".join(f"{watched.source_labels[j]} {_percent(float(looked[j]))}" for j in order)
        out.write(f"  looked at (cross-attention, layer {layer}, mean of heads): {pieces}\n")
        if watched.beam_size > 1:
            for rank, h in enumerate(step.beam, start=1):
                out.write(f"  beam {rank}: {h.log_prob:8.3f}  {h.text}\n")
            for h in step.ended:
                out.write(f"  finished: {h.log_prob:8.3f}  {h.text}  (score {h.score:.3f}, per token)\n")
    return 0


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"
