"""What every command shares: the error type, finding the model, reading text input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from selfattention.config import ModelConfig

BUNDLED_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "en-fr"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but a text written on several lines (an epilog of examples) keeps its lines."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """An argument parser whose help keeps written examples as they are (:class:`HelpFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def examples(*commands: str) -> str:
    """An epilog that lists example commands, one a line."""
    return "Examples:\n" + "\n".join(f"  {command}" for command in commands)


class CommandError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


def resolve_model(name: str | None) -> Path:
    """A model directory: a path, the name of a bundled model, or the default bundled model."""
    if name is None:
        name = DEFAULT_MODEL
    path = Path(name)
    if path.is_dir():
        return path
    bundled = BUNDLED_MODELS / name
    if bundled.is_dir():
        return bundled
    known = sorted(p.name for p in BUNDLED_MODELS.iterdir() if p.is_dir()) if BUNDLED_MODELS.is_dir() else []
    hint = f"bundled models: {', '.join(known)}" if known else "no model is bundled with this installation yet"
    raise CommandError(f"no model at {name!r} ({hint}); train one with `selfattention train` and pass --model DIR")


def layer_count(config: ModelConfig, kind: str) -> int:
    """Layers of one kind of attention: the encoder's for "encoder", the decoder's otherwise."""
    return config.encoder_layers if kind == "encoder" else config.decoder_layers


def check_layer_and_head(config: ModelConfig, kind: str, layer: int, head: int) -> None:
    """Refuse a --layer or --head the model does not have, naming the valid range."""
    layers = layer_count(config, kind)
    if not 0 <= layer < layers:
        raise CommandError(f"--layer {layer} does not exist: the model has layers 0 to {layers - 1}")
    if not 0 <= head < config.n_heads:
        raise CommandError(f"--head {head} does not exist: each layer has heads 0 to {config.n_heads - 1}")


def read_stdin_lines() -> list[str]:
    """Standard input as lines; invalid UTF-8 is an error naming the line."""
    data = sys.stdin.buffer.read()
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, raw in enumerate(lines, start=1):
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise CommandError(f"standard input, line {number}: invalid UTF-8 at byte {error.start + 1}") from None
    return out
