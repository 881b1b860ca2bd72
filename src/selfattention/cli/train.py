"""`selfattention train` (and `curves`, `download`): train a translator from a TOML config."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from selfattention.cli.common import CommandError, examples


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train a translator from a configuration file",
        description=(
            "Train a Transformer translator from a source language to a target language as the "
            "configuration file says ([model], [data] and [train] tables), writing checkpoints, metrics.jsonl, "
            "train.log, curves.png, TensorBoard scalars (with the tensorboard extra) and the best model (best/) "
            "into --out. Train on the built-in corpora or on your own files (--train, --valid: a .tsv of "
            "source<TAB>target pairs, or SOURCE,TARGET aligned files, plain or .gz). Any setting can be "
            "overridden as table.key=value, anywhere on the line; --print-config shows every setting."
        ),
        epilog=examples(
            "selfattention train --config configs/en-fr.toml --out runs/en-fr train.max_minutes=60",
            "selfattention train --config configs/fr-en.toml --out runs/mine --train my/train.tsv --valid my/dev.tsv "
            "train.valid_every=500",
            "selfattention train --config configs/en-fr.toml --out runs/en-fr --resume",
            "selfattention train --config configs/en-fr.toml --print-config data.source_lang=fr data.target_lang=en",
            "selfattention train --nproc 4 --config configs/en-fr.toml --out runs/en-fr   # 4 GPUs (docs/training.md)",
        ),
    )
    parser.add_argument("--config", required=True, help="TOML configuration, e.g. configs/en-fr.toml")
    parser.add_argument("--out", help="run directory for checkpoints, metrics and models (needed to train)")
    parser.add_argument(
        "--train",
        action="append",
        metavar="CORPUS",
        help=(
            "a training corpus, instead of the file's data.corpora: multi30k, tatoeba, a .tsv(.gz) of "
            "source<TAB>target pairs, or SOURCE,TARGET aligned files; repeat for several"
        ),
    )
    parser.add_argument(
        "--valid",
        metavar="CORPUS",
        help="the validation corpus (the same kinds; several joined with +), used as given, never re-split",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print every setting as TOML, overrides applied, and exit"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    parser.add_argument(
        "--data-dir",
        help="where the built-in corpora are (default $SELFATTENTION_DATA, else shared/data beside the project "
        "checkout or the working directory)",
    )
    parser.add_argument(
        "--init-from",
        metavar="MODEL",
        help=(
            "fine-tune: start from this model's weights and vocabulary (a model directory or a bundled "
            "model's name, e.g. en-fr) with a fresh optimiser and schedule; the same as train.init_from"
        ),
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where to train (default auto: a GPU when PyTorch sees one; each process takes its LOCAL_RANK's)",
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train in N processes on this machine (DistributedDataParallel: gloo on CPU, NCCL on GPUs)",
    )
    parser.add_argument("overrides", nargs="*", metavar="table.key=value", help="settings that replace the file's")
    parser.set_defaults(run=run_train)

    curves = commands.add_parser(
        "curves",
        help="draw a run's learning curves to PNG",
        description="Draw loss, learning rate and validation BLEU of a training run.",
    )
    curves.add_argument("run_dir", help="the run directory (holding metrics.jsonl)")
    curves.add_argument("--out", help="PNG file (default RUN_DIR/curves.png)")
    curves.set_defaults(run=run_curves)

    download = commands.add_parser(
        "download",
        help="fetch a public corpus (needs a network connection)",
        description="Download Multi30k (English, French) from its public repository, checking every file's SHA-256.",
    )
    download.add_argument(
        "corpus",
        choices=["multi30k"],
        help="the corpus to fetch: multi30k (English and French, task 1, SHA-256 checked)",
    )
    download.add_argument("--data-dir", required=True, help="where to put it")
    download.set_defaults(run=run_download)


def run_train(args: argparse.Namespace) -> int:
    from selfattention.cli.common import resolve_model
    from selfattention.evaluation import greedy_bleu
    from selfattention.training import TrainingError, load_run_config, train
    from selfattention.training.checkpoint import list_checkpoints
    from selfattention.training.init_from import adopt_start, check_start

    if args.nproc < 1:
        raise CommandError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc > 1 and "LOCAL_RANK" in os.environ:
        raise CommandError("--nproc starts the processes itself; under torchrun leave it out")
    overrides = list(args.overrides)
    if args.train:
        overrides.append(f"data.corpora={json.dumps(args.train)}")  # a TOML array of basic strings
        if not any(item.startswith("data.repeats=") for item in overrides):
            overrides.append("data.repeats=[]")  # the file's counts were for its own corpora
    if args.valid:
        overrides.append(f"data.valid_corpus={json.dumps(args.valid)}")
    if args.data_dir:
        overrides.append(f"data.data_dir={json.dumps(args.data_dir)}")  # a TOML basic string
    if args.init_from:
        overrides.append(f"train.init_from={json.dumps(str(resolve_model(args.init_from)))}")
    try:
        config = load_run_config(args.config, overrides)  # checked here, before any process starts
        resuming = args.resume and args.out and list_checkpoints(Path(args.out))
        if config.train.init_from and not resuming:  # a resumed run keeps its own shape (the trainer checks)
            config = adopt_start(config)
            check_start(config.model, Path(config.train.init_from))
    except ValueError as error:
        raise CommandError(str(error)) from None
    if args.print_config:
        sys.stdout.write(config.to_toml())
        return 0
    if not args.out:
        raise CommandError("--out is needed to train: the run directory for checkpoints, metrics and models")
    if args.nproc > 1:
        return _launch(args)
    if int(os.environ.get("RANK", "0")) > 0:  # rank 0 speaks for all
        logging.getLogger().setLevel(logging.WARNING)
    try:
        best = train(
            config,
            Path(args.out),
            resume=args.resume,
            show_progress=not args.no_progress,
            device=args.device,
            scorer=greedy_bleu,
        )
    except TrainingError as error:
        raise CommandError(str(error)) from None
    if int(os.environ.get("RANK", "0")) == 0:
        sys.stdout.write(f"best model: {best}\n")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _leave_now()
    return 0


def _leave_now() -> None:
    """End a launched training process here, once its work is written and its process group is gone.

    DistributedDataParallel keeps the gloo process group, and its threads, alive to the end of the
    process (torch 2.13). Once in CI, rank 1 of a finished run aborted on its way out (SIGABRT,
    "terminate called without an active exception", after everything was written); the likely
    cause is a gloo thread still running while Python shuts down (not reproduced in about
    120 two-process launches here). ``os._exit`` skips that shutdown; what this process wrote is closed by now, so
    nothing is lost.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _launch(args: argparse.Namespace) -> int:
    """``selfattention train`` again in ``--nproc`` processes, through torchrun's launcher."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from selfattention.training.distributed import launch

    worker = ["-v"] * args.verbose + ["train", "--config", args.config, "--out", args.out, "--device", args.device]
    worker += ["--resume"] * args.resume + ["--no-progress"] * args.no_progress
    worker += ["--data-dir", args.data_dir] if args.data_dir else []
    worker += ["--init-from", args.init_from] if args.init_from else []
    worker += [item for corpus in args.train or [] for item in ("--train", corpus)]
    worker += ["--valid", args.valid] if args.valid else []
    try:
        launch(args.nproc, [*worker, *args.overrides])
    except ChildFailedError as error:
        failures = ", ".join(f"rank {rank} exited with {failure.exitcode}" for rank, failure in error.failures.items())
        raise CommandError(f"training failed in {len(error.failures)} process(es): {failures}") from None
    return 0


def run_curves(args: argparse.Namespace) -> int:
    from selfattention.training.curves import plot_curves

    try:
        out = plot_curves(Path(args.run_dir), Path(args.out) if args.out else None)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None
    sys.stdout.write(f"{out}\n")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from selfattention.data.corpora import download_multi30k

    sys.stdout.write(f"{download_multi30k(args.data_dir)}\n")
    return 0
