"""Reading text corpora line by line: plain or gzip, UTF-8, with errors that name file and line.

A byte-order mark at the start is dropped; ``\\r\\n`` and lone ``\\r`` line endings count as
line ends, so files from any platform read the same. Text in another encoding (UTF-16, Latin-1,
Windows-1252) is refused, naming the file and the first line that is not UTF-8.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the message names the file (and line)."""


def open_bytes(path: Path) -> bytes:
    """The whole file's bytes, decompressed when it ends in ``.gz``."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if path.suffix == ".gz" else data
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise CorpusError(f"{path}: cannot read ({error})") from None


def read_lines(path: Path | str) -> list[str]:
    """Every line of a UTF-8 text file, without line endings."""
    path = Path(path)
    return list(iter_lines(path))


def iter_lines(path: Path) -> Iterator[str]:
    data = open_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise CorpusError(f"{path}: UTF-16 text (byte-order mark {data[:2].hex(' ')}); save it as UTF-8")
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CorpusError(
                f"{path}, line {number}: invalid UTF-8 (byte {error.start + 1} of the line: "
                f"{raw[error.start : error.start + 1]!r}); if the file is Latin-1 or Windows-1252, save it as UTF-8"
            ) from None
