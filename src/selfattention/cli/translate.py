"""`selfattention translate`: source language in, target language out (English to French for the bundled model)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from selfattention.cli.common import CommandError, examples, read_stdin_lines, resolve_model
from selfattention.decoding.text_translator import DecodingConfig, TextTranslator
from selfattention.engine import PRECISIONS
from selfattention.engine.workers import automatic_workers

log = logging.getLogger(__name__)

WINDOW = 10_000  # lines of standard input translated, then written, together

WORKERS_RULE = (
    "one process for one batch; for more, one process of one thread per core it may use, at most one per batch"
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "translate",
        help="translate sentences (English into French with the bundled model)",
        description=(
            "Translate the sentences given as arguments, or else each line of standard input, "
            "writing one translated line per input line to standard output, from the model's source language "
            "into its target language (English into French for the bundled model). Long text: a line the "
            "model can read at once (its maximum positions less one, in subword pieces: 1023 for "
            "the bundled model) is translated whole; a longer line is split into sentences after "
            ". ! ? and the like, each sentence is translated, and the translations make up its "
            "one output line. A single sentence longer than the model reads is refused, naming "
            "the limit: nothing is cut. Standard input must be UTF-8."
        ),
        epilog=examples('selfattention translate "I am good."', "selfattention translate < english.txt > french.txt"),
    )
    parser.add_argument("text", nargs="*", help="sentences to translate (default: read lines from standard input)")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar (it is drawn only when standard error is a terminal)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=WINDOW,
        metavar="LINES",
        help=(
            f"lines translated together (default {WINDOW}): each window's translations are written as soon "
            "as it is done, so output comes while the rest is translated and a stopped run keeps what it wrote; "
            "within a window, sentences are sorted by length into batches"
        ),
    )
    add_decoding_arguments(parser)
    parser.set_defaults(run=run_translate)


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    parser.add_argument("--beam", type=int, default=4, help="beam size; 1 is greedy search (default 4)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences decoded together (default 32)")
    parser.add_argument(
        "--length-penalty", type=float, default=1.0, help="beam score = log-prob / length^this (default 1.0)"
    )
    parser.add_argument(
        "--max-len-a", type=float, default=1.5, help="longest output = a * source length + b (default a=1.5)"
    )
    parser.add_argument(
        "--max-len-b", type=int, default=10, help="longest output = a * source length + b, in pieces (default b=10)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help=(
            f"decode the batches in up to N forked processes of one thread each (CPU, Linux); 1: this process "
            f"alone, with PyTorch's threads. Default: chosen from the cores and the input, {WORKERS_RULE}"
        ),
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="float32 (default) or int8: Linear layers quantised to 8 bits, faster on a CPU (CPU only)",
    )


def decoding_config(args: argparse.Namespace) -> DecodingConfig:
    if args.beam < 1:
        raise CommandError("--beam must be at least 1")
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    if not args.max_len_a >= 0 or args.max_len_b < 1:  # `not >=` also refuses NaN
        raise CommandError("--max-len-a must be at least 0 and --max-len-b at least 1")
    if args.precision == "int8" and not args.device.startswith("cpu"):
        raise CommandError("--precision int8 runs on the CPU only: drop --device or use --device cpu")
    if args.workers is not None and args.workers < 1:
        raise CommandError("--workers must be at least 1")
    if args.workers is not None and args.workers > 1 and not args.device.startswith("cpu"):
        raise CommandError("--workers runs on the CPU only: drop --device or use --workers 1")
    if args.device.startswith("cuda") and not _cuda_available():
        raise CommandError("--device cuda asked for, but PyTorch sees no CUDA device here")
    return DecodingConfig(args.beam, args.length_penalty, args.max_len_a, args.max_len_b, args.batch_size)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def open_translator(directory: Path, device: str, precision: str) -> TextTranslator:
    """The engine's C model translating alone (:class:`~selfattention.decoding.c_translator.CTranslator`: no
    PyTorch in the process) where it can run the model here, else PyTorch's
    :class:`~selfattention.decoding.Translator` (another device, the engine switched off or not built,
    bfloat16 weights), with one log line saying why."""
    if device == "cpu":
        from selfattention.decoding.c_translator import CTranslator, Unavailable

        try:
            return CTranslator.load(directory, precision)
        except Unavailable as why:
            log.info("translating through PyTorch: the C model cannot (%s)", why)
    from selfattention.decoding import Translator

    return Translator.load(directory, device=device, precision=precision)


def decoding_workers(asked: int | None, batches: int, device: str) -> int:
    """The processes that decode ``batches`` batches: ``--workers`` (never more than the batches), else
    :func:`~selfattention.engine.workers.automatic_workers`; one off the CPU, and for a single batch."""
    if batches < 2 or not device.startswith("cpu"):
        return 1
    return automatic_workers(batches) if asked is None else min(asked, batches)


def load_translator(
    args: argparse.Namespace, texts: Sequence[str], config: DecodingConfig, *, split_long: bool = False
) -> TextTranslator:
    """The --model translator (:func:`open_translator`), with its decoding workers started when ``texts`` make
    more than one batch."""
    from selfattention.decoding import WorkersError

    translator = open_translator(resolve_model(args.model), args.device, args.precision)
    batches = translator.batch_count(texts, config, split_long=split_long)
    workers = decoding_workers(args.workers, batches, args.device)
    if workers > 1:
        try:
            translator.start_workers(workers)
        except WorkersError as error:
            if args.workers is not None:  # asked for by name: say why it cannot be done
                raise CommandError(str(error)) from None
            log.warning("%s; translating in this process", error)
    return translator


def run_translate(args: argparse.Namespace) -> int:
    config = decoding_config(args)
    if args.window < 1:
        raise CommandError("--window must be at least 1 line")
    texts = list(args.text) if args.text else read_stdin_lines()
    translator = load_translator(args, texts, config, split_long=True)
    bar = None
    if len(texts) > config.batch_size and not args.quiet and sys.stderr.isatty():  # no redraws in a log file
        from tqdm import tqdm

        bar = tqdm(total=len(texts), unit="sentence", file=sys.stderr, desc="translating")
    progress = bar.update if bar is not None else None
    try:
        for start in range(0, len(texts), args.window):
            outputs = translator.translate(texts[start : start + args.window], config, progress, split_long=True)
            sys.stdout.write("".join(line + "\n" for line in outputs))
            sys.stdout.flush()  # a window's lines are out before the next one starts
    finally:
        if bar is not None:
            bar.close()
    return 0
