"""The ``selfattention`` command line: one module per command, joined here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from selfattention.cli import (
    attention,
    context,
    contrast,
    doctor,
    evaluate,
    explain,
    heads,
    interop,
    serve,
    train,
    translate,
    watch,
)
from selfattention.cli.common import CommandError, Parser
from selfattention.data.text_files import CorpusError
from selfattention.data.tokenizer import TokenizerError
from selfattention.decoding import InputError
from selfattention.engine.allocator import tune_allocator
from selfattention.inspection.notation import PIECES_NOTE
from selfattention.model_files import ModelFileError

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE (13): the status of a process the signal stopped

COMMANDS = (explain, translate, watch, attention, heads, contrast, context, train, evaluate, serve, interop, doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="selfattention",
        description=(
            "Train, run and see Transformer translators, one attention step at a time. The bundled model "
            "translates English (the source) into French (the target); models you train take the languages "
            "of their data."
        ),
        epilog=f"{PIECES_NOTE} A decoder row is named by the token that step writes.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log messages (-vv for debug)")
    parser.add_argument(
        "--version", action=doctor.VersionAction, help="print the version and which engine runs here, then exit"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # table.key=value overrides may come anywhere on a train line, between options too.
    overrides = [item for item in extra if _is_override(item)]
    if overrides and hasattr(args, "overrides"):
        args.overrides = [*args.overrides, *overrides]
    unknown = [item for item in extra if item not in overrides or not hasattr(args, "overrides")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    level = logging.WARNING - 10 * args.verbose if args.verbose else logging.WARNING
    if args.command == "train":
        level = min(level, logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    tune_allocator()  # faster tensor allocation; changes no result
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except (CommandError, CorpusError, InputError, ModelFileError, TokenizerError) as error:
        sys.stderr.write(f"selfattention {args.command}: error: {error}\n")
        return 2
    except BrokenPipeError:  # the reader left (`... | head`): stop quietly, as a process killed by SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush fails no more
        return EXIT_BROKEN_PIPE
    except (ValueError, OSError) as error:  # bad values or unwritable paths that reached the library
        if args.verbose:
            raise
        message = f"{error.strerror}: {error.filename}" if isinstance(error, OSError) and error.filename else str(error)
        sys.stderr.write(f"selfattention {args.command}: error: {message} (run with -v for details)\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


def _is_override(item: str) -> bool:
    """``table.key=value``: a setting for `train`, not an option."""
    key, sep, _ = item.partition("=")
    table, dot, name = key.partition(".")
    return bool(sep and dot and table.isidentifier() and name.isidentifier())


__all__ = ["CommandError", "build_parser", "main"]
