"""`selfattention explain`: one attention head, step by step, as the seeds show it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selfattention.cli.common import CommandError, check_layer_and_head, examples, resolve_model
from selfattention.data.tokenizer import BOS_ID
from selfattention.decoding import MAX_SENTENCE_CHARS, check_sentence, check_target
from selfattention.inspection.kinds import KINDS


def add_parser(commands: argparse._SubParsersAction) -> None:
    explain = commands.add_parser(
        "explain",
        help="show self-attention step by step on a sentence",
        description=(
            "Show one attention head at work on a sentence, as the seeds do: the shapes of X, Q, K "
            "and V; the similarity scores Q·Kᵀ; their division by sqrt(d_k); the softmax weights "
            "as percentages; the output Z; and where each word looks."
        ),
        epilog=examples('selfattention explain "I am good"', "selfattention explain --example toy"),
    )
    explain.add_argument(
        "text",
        nargs="?",
        help=f"the source sentence (English for the bundled model), at most {MAX_SENTENCE_CHARS} characters (not with --example)",
    )
    explain.add_argument("--layer", type=int, default=0, help="layer to show, from 0 (default 0)")
    explain.add_argument("--head", type=int, default=0, help="head to show, from 0 (default 0)")
    explain.add_argument(
        "--kind",
        choices=KINDS,
        default="encoder",
        help="encoder self-attention (default), decoder self-attention, or cross-attention",
    )
    explain.add_argument(
        "--target", help="the target side for --kind decoder or cross (default: the model's own translation)"
    )
    explain.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    explain.add_argument(
        "--example",
        choices=["toy"],
        help="toy: seed 001's 'love Apple phones' with 2-dimensional vectors, computed exactly",
    )
    explain.add_argument("--columns", type=int, default=8, help="columns of Z to print (default 8)")
    explain.add_argument(
        "--random",
        action="store_true",
        help="use an untrained, seeded random model of the seeds' sizes (d_model 512, d_k 64) instead of a trained one",
    )
    explain.add_argument("--seed", type=int, default=0, help="seed of the random model (default 0)")
    explain.set_defaults(run=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    from selfattention.decoding import Translator
    from selfattention.inspection import explain_head, render_explanation, toy_attention, trace_translation
    from selfattention.inspection.toy import TOY_TOKENS

    if args.columns < 1:
        raise CommandError("--columns must be at least 1")
    if args.example == "toy":
        if args.text:
            raise CommandError("--example toy uses its own sentence; leave out the text")
        step = toy_attention()
        sys.stdout.write(
            "Seed 001's toy example: 'love Apple phones' with 2-dimensional embeddings,\n"
            "W_Q = identity, W_K = [[1, 1], [0, 1]], W_V = identity.\n\n"
        )
        sys.stdout.write(render_explanation(explain_head(step, 0, TOY_TOKENS, has_bias=False)) + "\n")
        return 0
    text = args.text or ""
    if args.random and args.model:
        raise CommandError("--random and --model exclude each other")
    model_dir = None if args.random else find_model(args.model)
    if model_dir is None:
        return _explain_placeholder(args, text)
    translator = Translator.load(model_dir)
    config = translator.model.config
    assert config is not None
    check_layer_and_head(config, args.kind, args.layer, args.head)
    text = check_sentence(text, encode=translator.tokenizer.encode)
    target = check_target(args.target, what="--target")
    # Only the call shown is kept: the others run the fused kernel, and no scores are stored.
    trace = trace_translation(
        translator.model, translator.tokenizer, text, target=target, kinds=[args.kind], layers=[args.layer]
    )
    sys.stdout.write(
        f"Model: {model_dir} (d_model {config.d_model}, {config.n_heads} heads of d_k {config.head_dim}, "
        f"{config.encoder_layers} + {config.decoder_layers} layers)\n"
        f"Translation: {trace.translation}\n"
        "Tokens are subword pieces; ## marks a piece that continues a word, </s> ends the sentence.\n\n"
    )
    step = trace.recorder.attention(args.kind, args.layer)
    rows, columns = trace.labels(args.kind)
    sys.stdout.write(render_explanation(explain_head(step, args.head, rows, columns), max_columns=args.columns) + "\n")
    return 0


def find_model(name: str | None) -> Path | None:
    """The model to explain: --model, else the bundled model, else None (use the stand-in)."""
    if name is not None:
        return resolve_model(name)
    try:
        return resolve_model(None)
    except CommandError:
        return None


def _explain_placeholder(args: argparse.Namespace, text: str) -> int:
    import torch

    from selfattention.inspection import TraceRecorder, explain_head, render_explanation
    from selfattention.inspection.placeholder import placeholder_model, split_words, word_ids

    words = split_words(check_sentence(text, encode=split_words))
    target = split_words(check_target(args.target, what="--target") or "")
    if args.kind != "encoder" and not target:
        raise CommandError(f'--kind {args.kind} needs the target side: add --target "Je vais bien"')
    model = placeholder_model(args.seed)
    assert model.config is not None
    check_layer_and_head(model.config, args.kind, args.layer, args.head)
    sys.stdout.write(
        f"Model: randomly initialised (seed {args.seed}), the seeds' sizes: d_model 512, 8 heads of d_k 64, "
        "6 + 6 layers.\nThe weights are random (untrained), so the pattern "
        "shows the mechanics, not meaning.\n\n"
    )
    recorder = TraceRecorder(kinds=[args.kind], layers=[args.layer])  # only the call shown is kept
    src = word_ids(words)
    query_tokens, key_tokens = words, words
    with torch.no_grad():
        if args.kind == "encoder":
            model.encode(src, recorder=recorder)
        else:
            tgt = torch.cat([torch.tensor([[BOS_ID]]), word_ids(target)], dim=1)  # start token, then the words
            model(src, tgt, recorder=recorder)
            query_tokens = ["<s>", *target]
            key_tokens = words if args.kind == "cross" else query_tokens
    step = recorder.attention(args.kind, args.layer)
    explanation = explain_head(step, args.head, query_tokens, key_tokens)
    sys.stdout.write(render_explanation(explanation, max_columns=args.columns) + "\n")
    return 0
