"""Run every benchmark, one after another, and keep each one's output in ``benchmarks/results/``.

    python benchmarks/run_all.py                    # all of them (over an hour on 2 cores)
    python benchmarks/run_all.py --only flops attention_cost
    python benchmarks/run_all.py --quick            # the short versions, where a benchmark has one

Each benchmark runs alone in its own process (they would distort each other's timings on two
cores). Its output (markdown tables) goes to ``benchmarks/results/NAME.md``, headed by the command,
the date and the processor (its model name, family and model number: the same name covers
processors whose vector units differ); pictures go where the benchmark draws them (``docs/images/``). BENCHMARKS.md quotes
these files. A benchmark that fails is reported and the others still run; the exit status is 1
if any failed. ``training_record`` needs the training run's directory (``--run-dir``, or each stage's) and is
skipped without one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# name: (arguments, extra arguments for --quick, or None when there is no short version)
BENCHMARKS: dict[str, tuple[list[str], list[str] | None]] = {
    "quality": (["--beams", "1", "4"], ["--beams", "1"]),
    "everyday": ([], None),
    "translation_speed": (["--rounds", "3", "--latency-n", "100"], ["--quick", "--rounds", "1"]),
    "whole_process": ([], ["--quick"]),
    "training_throughput": (["--steps", "150"], ["--steps", "50"]),
    "training_step": ([], None),
    "flops": ([], ["--sentences", "128"]),
    "decoding_profile": ([], ["--sentences", "64"]),
    "decoding_levers": ([], ["--sentences", "64", "--repeats", "1"]),
    "worker_overhead": ([], ["--sentences", "64", "--repeats", "1", "--starts", "3"]),
    "neighbour_slowdown": ([], ["--sentences", "64"]),
    "attention_cost": ([], ["--quick"]),
    "web_load": ([], ["--requests", "60", "--clients", "4", "--isolation-requests", "20"]),
    "training_record": ([], None),
}


def processor() -> str:
    """``model name (family F, model M), N cores`` from /proc/cpuinfo, or what platform knows elsewhere."""
    import platform

    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", platform.machine())
    family = f" (family {fields['cpu family']}, model {fields.get('model', '?')})" if "cpu family" in fields else ""
    return f"{name}{family}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run just these")
    parser.add_argument("--quick", action="store_true", help="short versions where a benchmark has one")
    parser.add_argument(
        "--run-dir",
        type=Path,
        nargs="+",
        help="the training run's directory (or each stage's, in order), for training_record",
    )
    args = parser.parse_args()
    failed = []
    for name in args.only or list(BENCHMARKS):
        arguments, quick = BENCHMARKS[name]
        if name == "training_record":
            if args.run_dir is None:
                print("training_record: skipped (give --run-dir)")
                continue
            arguments = [str(run_dir) for run_dir in args.run_dir]
        if args.quick and quick is not None:
            arguments = arguments + quick  # a repeated option: the later one wins
        command = [sys.executable, str(HERE / f"{name}.py"), *arguments]
        shown = " ".join(["python", f"benchmarks/{name}.py", *arguments])
        print(f"{name}: $ {shown}", flush=True)
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True)
        minutes = (time.monotonic() - started) / 60
        if result.returncode != 0:
            failed.append(name)
            print(f"{name}: FAILED after {minutes:.1f} min\n{result.stderr[-2000:]}", flush=True)
            continue
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        header = (
            f"<!-- written by benchmarks/run_all.py -->\n`$ {shown}` ({stamp}, {minutes:.1f} min, {processor()})\n\n"
        )
        (RESULTS / f"{name}.md").write_text(header + result.stdout, encoding="utf-8")
        print(f"{name}: done in {minutes:.1f} min -> benchmarks/results/{name}.md", flush=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
