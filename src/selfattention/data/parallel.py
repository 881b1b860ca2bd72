"""Parallel corpora: aligned sentence pairs from two files or from tab-separated pairs.

Pairs that are empty on either side, or longer than a limit, are skipped and counted; the
counts are logged and returned, never dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from selfattention.data.text_files import CorpusError, read_lines

log = logging.getLogger(__name__)

Pair = tuple[str, str]


@dataclass
class ReadReport:
    """What reading a corpus kept and what it skipped, and why."""

    source: str
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def log(self) -> None:
        if self.skipped:
            details = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
            log.info("%s: kept %d pairs, skipped %s", self.source, self.kept, details)
        else:
            log.info("%s: kept %d pairs", self.source, self.kept)


def read_parallel(
    src_path: Path | str, tgt_path: Path | str, *, max_chars: int | None = None
) -> tuple[list[Pair], ReadReport]:
    """Aligned files, one sentence a line (plain or ``.gz``): the same line in each is a pair."""
    src_path, tgt_path = Path(src_path), Path(tgt_path)
    sources, targets = read_lines(src_path), read_lines(tgt_path)
    if len(sources) != len(targets):
        raise CorpusError(
            f"{src_path} has {len(sources)} lines but {tgt_path} has {len(targets)}: aligned files need equal line counts"
        )
    report = ReadReport(f"{src_path.name} + {tgt_path.name}")
    pairs = _keep(zip(sources, targets, strict=True), report, max_chars)
    report.log()
    return pairs, report


def read_tsv(path: Path | str, *, max_chars: int | None = None) -> tuple[list[Pair], ReadReport]:
    """Tab-separated pairs ``source<TAB>target[<TAB>anything]`` (Tatoeba's layout).

    The first field is the English side, the second the French; any further fields are ignored
    (Tatoeba's own downloads add an attribution). A tab inside a sentence cannot be told from a
    separator: such a line is read by the same rule, and lines with more fields than most of the
    file's are named in a warning, since the cause may be a tab inside a sentence.
    """
    path = Path(path)
    raw: list[Pair] = []
    field_counts: dict[int, list[int]] = {}  # number of fields: the lines that have it
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            raw.append(("", ""))
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise CorpusError(f"{path}, line {number}: expected 'source<TAB>target', found no tab")
        field_counts.setdefault(len(fields), []).append(number)
        raw.append((fields[0], fields[1]))
    if len(field_counts) > 1:
        usual = max(field_counts, key=lambda count: len(field_counts[count]))
        odd = sorted(number for count, numbers in field_counts.items() if count > usual for number in numbers)
        if odd:
            shown = ", ".join(map(str, odd[:5])) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
            log.warning(
                "%s, line(s) %s: more tab-separated fields than the file's usual %d (a tab inside a sentence?); "
                "read as source, target and ignored fields",
                path,
                shown,
                usual,
            )
    report = ReadReport(path.name)
    pairs = _keep(raw, report, max_chars)
    report.log()
    return pairs, report


def _keep(pairs: object, report: ReadReport, max_chars: int | None) -> list[Pair]:
    kept: list[Pair] = []
    for source, target in pairs:  # type: ignore[attr-defined]
        source, target = source.strip(), target.strip()
        if not source or not target:
            report.skip("empty")
        elif max_chars is not None and max(len(source), len(target)) > max_chars:
            report.skip(f"longer than {max_chars} characters")
        else:
            kept.append((source, target))
    report.kept = len(kept)
    return kept
