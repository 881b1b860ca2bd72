"""`selfattention attention`: draw a sentence's attention to PNG, SVG or standalone HTML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from selfattention.cli.common import CommandError, check_layer_and_head, examples, layer_count, resolve_model
from selfattention.decoding import MAX_SENTENCE_CHARS, DecodingConfig, check_sentence, check_target
from selfattention.inspection.kinds import KINDS
from selfattention.inspection.notation import LONE_WORD_START, PIECES_NOTE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
        description=(
            "Translate a sentence and draw the attention the model used, as PNG, SVG or a standalone HTML page "
            "that highlights a word's lines when you point at it. Decoder rows (--kind decoder or cross) are "
            f"named by the target token that step writes. {PIECES_NOTE}"
        ),
        epilog=examples('selfattention attention "A dog ate the food because it was hungry." --token it --out it.png'),
    )
    parser.add_argument(
        "text", help=f"the source sentence (English for the bundled model), at most {MAX_SENTENCE_CHARS} characters"
    )
    parser.add_argument("--out", required=True, help="picture file: .png, .svg, or .html (interactive, opens offline)")
    parser.add_argument("--view", choices=VIEWS, default="lines", help=VIEW_HELP)
    parser.add_argument(
        "--kind", choices=KINDS, default="encoder", help="encoder (default), decoder or cross attention"
    )
    parser.add_argument("--layer", type=int, help="layer (default: the last)")
    parser.add_argument("--head", type=int, default=0, help="head (default 0)")
    parser.add_argument("--token", help="in the line view, draw only this word's lines (e.g. it)")
    parser.add_argument("--layers", help="grid: comma-separated layers to show (default all)")
    parser.add_argument("--heads", help="grid: comma-separated heads to show (default all)")
    parser.add_argument("--target", help="target side to use instead of the model's translation")
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
    import torch

    from selfattention.decoding import Translator
    from selfattention.inspection import trace_translation
    from selfattention.inspection.aggregate import mean_over_heads, rollout
    from selfattention.inspection.interactive import attention_page
    from selfattention.inspection.plots import grid, heatmap, line_view  # matplotlib: here only
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
    writes = args.kind != "encoder"  # decoder rows are named by the token their step writes
    rows_note = " (row = the target token that step writes)" if writes else ""
    out = Path(args.out)
    if args.view == "grid":
        all_weights = torch.stack([trace.recorder.attention(args.kind, i).weights[0] for i in range(n_layers)])
        figure = grid(
            all_weights,
            rows,
            columns,
            title=f"{args.kind} attention, every layer and head{rows_note}",
            layers=parse_indices(args.layers, n_layers, "layers"),
            heads=parse_indices(args.heads, config.n_heads, "heads"),
        )
        return _save(figure, out, text, where, trace.translation)
    highlight = None
    if args.view == "lines" and args.token:
        words = group_words(rows)
        try:
            pieces = words[find_word(words, args.token)].pieces
            highlight = next((p for p in pieces if rows[p] != LONE_WORD_START), pieces[0])  # skip a lone word start
        except ValueError as error:
            raise CommandError(str(error)) from None
    if args.view in ("lines", "heatmap"):
        matrix, title = weights[args.head], f"{where}, head {args.head}{rows_note}"
    elif args.view == "mean":
        matrix, title = mean_over_heads(weights), f"{where}, mean over {config.n_heads} heads{rows_note}"
    elif args.view == "alignment":
        matrix = mean_over_heads(weights)
        title = f"source-target alignment: cross-attention, layer {layer}, mean over heads{rows_note}"
    else:  # rollout
        layers = [trace.recorder.attention(args.kind, i).weights[0] for i in range(n_layers)]
        matrix = rollout(layers)
        title = f"attention rollout through {n_layers} {args.kind} layers (an estimate of attention flow){rows_note}"
    if out.suffix.lower() == ".html":  # interactive, as the web page draws it
        page = attention_page(
            matrix,
            rows,
            columns,
            title=title,
            caption=f"{text} → {trace.translation}. {PIECES_NOTE}",
            causal=args.kind == "decoder",
            writes=writes,
        )
        try:
            out.write_text(page, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"cannot write {out}: {error.strerror or error}") from None
        sys.stdout.write(f"{out}\nTranslation: {trace.translation}\n")
        return 0
    if args.view == "lines":
        figure = line_view(matrix, rows, columns, highlight=highlight, title=title)
    else:
        figure = heatmap(matrix, rows, columns, title=title)
    return _save(figure, out, text, where, trace.translation)


def _save(figure: Figure, out: Path, text: str, where: str, translation: str) -> int:
    from selfattention.inspection.plots import save_figure

    try:
        saved = save_figure(figure, out, title=f"Attention: {text}", caption=f"{where}. Translation: {translation}")
    except ValueError as error:
        raise CommandError(str(error)) from None
    sys.stdout.write(f"{saved}\nTranslation: {translation}\n")
    return 0
