"""`selfattention attention`: draw a sentence's attention to PNG, SVG or standalone HTML."""

from __future__ import annotations

import argparse
import sys

import torch

from selfattention.cli.common import CommandError, check_layer_and_head, examples, layer_count, resolve_model
from selfattention.decoding import MAX_SENTENCE_CHARS, DecodingConfig, Translator, check_sentence, check_target
from selfattention.inspection.recorder import KINDS

VIEWS = ("lines", "heatmap", "grid", "mean", "rollout", "alignment")
VIEW_HELP = (
    "lines: the seeds' picture, one line per pair, thickness and opacity by weight (default); "
    "heatmap: one head as a matrix; grid: every layer x head (filter with --layers/--heads); "
    "mean: the mean over a layer's heads; rollout: attention rollout through the stack "
    "(an estimate of flow, labelled as such); alignment: cross-attention as a source-target alignment"
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "attention",
        help="draw attention as lines, heatmaps or a grid (PNG, SVG, HTML)",
        description="Translate a sentence and draw the attention the model used, as PNG, SVG or a standalone HTML page.",
        epilog=examples('selfattention attention "A dog ate the food because it was hungry." --token it --out it.png'),
    )
    parser.add_argument("text", help=f"the English sentence, at most {MAX_SENTENCE_CHARS} characters")
    parser.add_argument("--out", required=True, help="picture file: .png, .svg or .html")
    parser.add_argument("--view", choices=VIEWS, default="lines", help=VIEW_HELP)
    parser.add_argument(
        "--kind", choices=KINDS, default="encoder", help="encoder (default), decoder or cross attention"
    )
    parser.add_argument("--layer", type=int, help="layer (default: the last)")
    parser.add_argument("--head", type=int, default=0, help="head (default 0)")
    parser.add_argument("--token", help="in the line view, draw only this word's lines (e.g. it)")
    parser.add_argument("--layers", help="grid: comma-separated layers to show (default all)")
    parser.add_argument("--heads", help="grid: comma-separated heads to show (default all)")
    parser.add_argument("--target", help="French side to use instead of the model's translation")
    parser.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    parser.add_argument("--beam", type=int, default=4, help="beam size for the translation (default 4)")
    parser.set_defaults(run=run_attention)


def parse_indices(text: str | None, limit: int, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CommandError(f"--{what} takes comma-separated numbers, got {text!r}") from None
    bad = [v for v in values if not 0 <= v < limit]
    if bad or not values:
        raise CommandError(f"--{what} {text}: valid values are 0 to {limit - 1}")
    return values


def run_attention(args: argparse.Namespace) -> int:
    from selfattention.inspection import trace_translation
    from selfattention.inspection.aggregate import mean_over_heads, rollout
    from selfattention.inspection.plots import grid, heatmap, line_view, save_figure  # matplotlib: here only
    from selfattention.inspection.words import find_word, group_words

    if args.beam < 1:
        raise CommandError("--beam must be at least 1")
    translator = Translator.load(resolve_model(args.model))
    text = check_sentence(args.text, encode=translator.tokenizer.encode)
    config = translator.model.config
    assert config is not None
    if args.view == "alignment":
        args.kind = "cross"  # before the layer count: cross-attention has the decoder's layers
    n_layers = layer_count(config, args.kind)
    layer = n_layers - 1 if args.layer is None else args.layer
    check_layer_and_head(config, args.kind, layer, args.head)
    if args.view == "rollout" and args.kind == "cross":
        raise CommandError("rollout follows self-attention through one stack; use --kind encoder or decoder")
    trace = trace_translation(
        translator.model,
        translator.tokenizer,
        text,
        target=check_target(args.target, what="--target"),
        decoding=DecodingConfig(beam_size=args.beam),
    )
    rows, columns = trace.labels(args.kind)
    step = trace.recorder.attention(args.kind, layer)
    weights = step.weights[0]  # (H, T, S)
    where = f"{args.kind} attention, layer {layer}"
    if args.view == "lines":
        highlight = None
        if args.token:
            words = group_words(rows)
            try:
                pieces = words[find_word(words, args.token)].pieces
                highlight = next((p for p in pieces if rows[p] != "▁"), pieces[0])  # skip a lone word-start piece
            except ValueError as error:
                raise CommandError(str(error)) from None
        figure = line_view(weights[args.head], rows, columns, highlight=highlight, title=f"{where}, head {args.head}")
    elif args.view == "heatmap":
        figure = heatmap(weights[args.head], rows, columns, title=f"{where}, head {args.head}")
    elif args.view == "mean":
        figure = heatmap(mean_over_heads(weights), rows, columns, title=f"{where}, mean over {config.n_heads} heads")
    elif args.view == "alignment":
        figure = heatmap(
            mean_over_heads(weights),
            trace.produced_labels,  # row i is the step that produced token i
            columns,
            title=f"source-target alignment: cross-attention, layer {layer}, mean over heads (row = French token produced)",
        )
    elif args.view == "rollout":
        layers = [trace.recorder.attention(args.kind, i).weights[0] for i in range(n_layers)]
        figure = heatmap(
            rollout(layers),
            rows,
            columns,
            title=f"attention rollout through {n_layers} {args.kind} layers (an estimate of attention flow)",
        )
    else:
        all_weights = torch.stack([trace.recorder.attention(args.kind, i).weights[0] for i in range(n_layers)])
        figure = grid(
            all_weights,
            rows,
            columns,
            title=f"{args.kind} attention, every layer and head",
            layers=parse_indices(args.layers, n_layers, "layers"),
            heads=parse_indices(args.heads, config.n_heads, "heads"),
        )
    try:
        out = save_figure(
            figure, args.out, title=f"Attention: {text}", caption=f"{where}. Translation: {trace.translation}"
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    sys.stdout.write(f"{out}\nTranslation: {trace.translation}\n")
    return 0
