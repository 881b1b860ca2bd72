"""Summarise a training run from its metrics.jsonl: wall time, tokens/s, epochs, validation BLEU.

    python benchmarks/training_record.py runs/en-fr
    python benchmarks/training_record.py runs/stage-1 runs/stage-2 runs/stage-3   # a model made in stages

With several run directories (each stage started from the one before, ``--init-from``), each is
summarised in turn, then their training time in all.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

from selfattention.training.metrics import read_metrics


def summarise(run_dir: Path) -> float:
    """Print one run's record; its training time in hours."""
    records = read_metrics(run_dir)
    train = [r for r in records if r["kind"] == "train" and r["step"] > 1]
    valid = [r for r in records if r["kind"] == "valid"]
    epoch_ends = [r for r in valid if r.get("at", "epoch end") == "epoch end"]  # older runs validated there only
    last = records[-1]
    hours = float(last["seconds"]) / 3600
    print(
        f"optimiser steps: {last['step']}, epochs finished: {len(epoch_ends)}, validations: {len(valid)}, "
        f"training time: {hours:.2f} h"
    )
    window = statistics.median(b["step"] - a["step"] for a, b in itertools.pairwise(train)) if len(train) > 1 else 0
    print(
        f"target tokens/s: median {statistics.median(r['tokens_per_s'] for r in train):.0f} "
        f"over {len(train)} windows of {window:g} steps"
    )
    print()
    print("| epoch | step | at | hours | validation NLL | validation BLEU (greedy) |")
    print("| ---: | ---: | --- | ---: | ---: | ---: |")
    for r in valid:
        at = r.get("at", "epoch end")
        print(f"| {r['epoch']} | {r['step']} | {at} | {r['seconds'] / 3600:.2f} | {r['nll']:.3f} | {r['bleu']:.2f} |")
    return hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="run_dir", help="a run directory, or a stage's each")
    args = parser.parse_args()
    if len(args.run_dirs) == 1:
        summarise(args.run_dirs[0])
        return
    total = 0.0
    for stage, run_dir in enumerate(args.run_dirs, 1):
        print(f"\n### Stage {stage}: {run_dir}\n")
        total += summarise(run_dir)
    print(f"\nTraining time in all: {total:.2f} h over {len(args.run_dirs)} stages.")


if __name__ == "__main__":
    main()
