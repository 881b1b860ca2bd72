"""What a run writes beside ``metrics.jsonl``: a plain-text log, and TensorBoard scalars.

``train.log`` in the run directory receives every log line of the run (appended on resume).
TensorBoard event files go to ``tensorboard/`` when the ``tensorboard`` extra is installed
(``pip install 'selfattention[tensorboard]'``), through ``torch.utils.tensorboard``: training loss,
NLL, learning rate and tokens/s (and the supervised head's ``antecedent_loss`` when
``train.antecedent_head`` is set), and the validation NLL, BLEU and chrF, by optimiser step.
Without it, one log line says how to get them. ``metrics.jsonl`` stays the source of truth:
both are copies of what it records.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

LOG_FILE = "train.log"
TENSORBOARD_DIR = "tensorboard"
SCALARS = {
    "train": ("loss", "nll", "lr", "tokens_per_s", "antecedent_loss"),
    "valid": ("nll", "bleu", "chrf"),
}

log = logging.getLogger(__name__)


class _AppendingHandler(logging.Handler):
    """Appends each record to a file, opened for that record only: no file is held open between lines
    (a file system may be remounted read-only under a run), and a line that cannot be written turns
    the handler off instead of printing a traceback; the run's own error says what went wrong."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.broken = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.broken:
            return
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(self.format(record) + "\n")
        except OSError:
            self.broken = True


class TextLog:
    """Copies the package's log lines into ``run_dir/train.log`` while open."""

    def __init__(self, run_dir: Path) -> None:
        self.handler = _AppendingHandler(run_dir / LOG_FILE)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setLevel(logging.INFO)
        self.logger = logging.getLogger("selfattention")
        self.previous_level = self.logger.level
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.previous_level)
        self.handler.close()


class TensorBoardLog:
    """TensorBoard scalars mirroring the metrics records, or nothing when the extra is missing."""

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        """``purge_step``: events from this step on, left by a stretch that was cut short, are dropped."""
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except ImportError:
            self.writer = None
            log.info(
                "no TensorBoard event files: pip install 'selfattention[tensorboard]' to get them in %s",
                run_dir / TENSORBOARD_DIR,
            )
            return
        self.writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR), purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        kind = record.get("kind")
        for name in SCALARS.get(str(kind), ()):
            if isinstance(record.get(name), int | float):
                self.writer.add_scalar(f"{kind}/{name}", record[name], global_step=record.get("step", 0))
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
