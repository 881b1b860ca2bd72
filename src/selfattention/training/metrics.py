"""Metrics appended to ``metrics.jsonl`` (one JSON object a line), and read back for plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfattention.model_io import atomic_write

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / METRICS_FILE

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records beyond ``step`` (written after the checkpoint a resumed run starts from).

        A line a killed process left half-written is dropped too; the file is replaced atomically.
        """
        if not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        text = "".join(line + "\n" for line in lines if line.strip() and _step_of(line) <= step)
        atomic_write(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _step_of(line: str) -> float:
    """The step of a record; a blank or half-written line (a crash mid-write) sorts last."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return float("inf")
    return record.get("step", 0) if isinstance(record, dict) else float("inf")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics (is this a training run directory?)")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: invalid JSON ({error.msg})") from None
    return records
