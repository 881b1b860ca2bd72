"""What every command shares: the error type, finding the model, reading text input."""

from __future__ import annotations

import sys
from pathlib import Path

BUNDLED_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "en-fr"


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
