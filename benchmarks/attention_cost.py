"""Attention's cost as the sequence grows: median time and peak memory of each path, 128 to 16,384 tokens.

    python benchmarks/attention_cost.py                # the full run: 128 ... 16,384 tokens
    python benchmarks/attention_cost.py --quick        # 128 ... 2,048 tokens, fewer repeats

Self-attention of one sequence (T = S = n), batch 1, 4 heads of 64 (the bundled model's
attention: d_model 256 in 4 heads), float32, on the CPU. The paths are the real code:

- ``ours fused`` / ``ours fused + mask``: :func:`selfattention.attention.scaled_dot_product_attention`
  without weights (it calls PyTorch's kernel), without a mask and with a padding mask ``(1, 1, 1, S)``
  whose last eighth of the keys is padding;
- ``torch fused`` / ``torch fused + mask``: ``torch.nn.functional.scaled_dot_product_attention``
  itself, the same inputs (the mask as it is, so rows are never empty);
- ``explicit``: :func:`selfattention.attention.explicit_attention`, the seeds' four steps, which
  builds the (T, S) scores, scaled scores and weights;
- ``chunked``: :func:`selfattention.attention.chunked_attention` without weights, the same recipe
  over blocks of 512 query rows.

Peak memory: each (path, length) runs in a fresh process that makes its inputs, runs the path once
at a small length (so that code and thread pools are loaded), resets the kernel's high-water mark
of its resident memory (``echo 5 > /proc/self/clear_refs``), reads its resident memory, runs the
path once, and reports ``VmHWM - VmRSS before``: the memory the call itself touched at its peak,
inputs excluded, output included. That process fixes glibc's mmap threshold at its default
(128 KiB), so that every freed large block goes back to the system: without that, glibc raises the
threshold as blocks are freed and reuses heap pages, and the figure follows the allocator's history
(the chunked path's 16 MiB blocks at 2,048 tokens showed as 131 MiB instead of 67 MiB).

Time: the median of the timed runs (after one untimed run) in another fresh process, with the
allocator left as it is.

It prints the command it ran, a markdown table, the fitted slopes of log(time) and log(memory)
against log(n), and the targets checked; ``--out`` also writes them to a file, ``--plot`` draws
docs/images/attention_cost.png (log-log, with the n and n² slopes for reference).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from selfattention.attention import chunked_attention, explicit_attention, lengths_mask, scaled_dot_product_attention

PATHS = ("ours fused", "ours fused + mask", "torch fused", "torch fused + mask", "explicit", "chunked")
FULL_SIZES = [2**p for p in range(7, 15)]  # 128 ... 16,384
QUICK_SIZES = [2**p for p in range(7, 12)]  # 128 ... 2,048
HEADS, HEAD_DIM, CHUNK = 4, 64, 512
ROOT = Path(__file__).resolve().parents[1]


def inputs(n: int, heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(n)
    q, k, v = (torch.randn(1, heads, n, HEAD_DIM, generator=gen) for _ in range(3))  # (B, H, L, Dh)
    mask = lengths_mask(torch.tensor([n - n // 8]), n)  # (1, 1, 1, S): the last eighth is padding
    return q, k, v, mask


def run(path: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        if path == "ours fused":
            return scaled_dot_product_attention(q, k, v)[0]
        if path == "ours fused + mask":
            return scaled_dot_product_attention(q, k, v, mask)[0]
        if path == "torch fused":
            return F.scaled_dot_product_attention(q, k, v)
        if path == "torch fused + mask":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        if path == "explicit":
            return explicit_attention(q, k, v)[0]
        if path == "chunked":
            return chunked_attention(q, k, v, chunk_size=CHUNK, need_weights=False)[0]
    raise ValueError(f"unknown path {path!r}")


def _status_kib(field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"/proc/self/status has no {field}")
    return int(found.group(1))


def worker(task: str, path: str, n: int, heads: int, repeats: int) -> dict[str, float]:
    """One (path, length) in this fresh process: the call's peak memory, or its median time."""
    run(path, *inputs(64, heads))  # load the code paths and thread pools at a small length
    q, k, v, mask = inputs(n, heads)
    if task == "memory":
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident memory
        before = _status_kib("VmRSS")
        run(path, q, k, v, mask)
        return {"peak_mib": (_status_kib("VmHWM") - before) / 1024}
    run(path, q, k, v, mask)  # one untimed run at this length
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(path, q, k, v, mask)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times)}


def measure(path: str, n: int, heads: int, repeats: int, threads: int) -> dict[str, float] | str:
    """Run :func:`worker` in a fresh process; a string says why the configuration was skipped."""
    if path == "explicit":
        need = 3 * heads * n * n * 4 / 2**30  # scores, scaled scores and weights, float32
        available = _status_available_gib()
        if need > 0.8 * available:
            return f"skipped: needs ~{need:.0f} GiB, {available:.0f} GiB available"
    result: dict[str, float] = {}
    for task in ("memory", "time"):
        command = [sys.executable, __file__, "--worker", task, path, str(n), str(heads), str(repeats), str(threads)]
        # For memory, glibc's default mmap threshold (128 KiB), fixed: every freed large block then goes
        # back to the system, so the peak resident memory is the peak of live tensors. Times are taken
        # in another process, with the allocator as it always is.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"} if task == "memory" else None
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            return f"failed ({task}): {lines[-1] if lines else done.returncode}"
        result.update(json.loads(done.stdout))
    return result


def _status_available_gib() -> float:
    found = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return int(found.group(1)) / 2**20 if found else 0.0


def slope(sizes: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) against log(n)."""
    xs, ys = [math.log(n) for n in sizes], [math.log(max(v, 1e-9)) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _fmt_mib(mib: float) -> str:
    return f"{mib:,.1f} MiB" if mib < 1024 else f"{mib / 1024:,.2f} GiB"


def report(results: dict[str, dict[int, dict[str, float] | str]], sizes: list[int]) -> list[str]:
    """The table, the slopes and the targets, as markdown lines."""
    lines = ["| tokens | " + " | ".join(PATHS) + " |", "|---:|" + "---:|" * len(PATHS)]
    for n in sizes:
        cells = []
        for path in PATHS:
            cell = results[path][n]
            cells.append(
                cell if isinstance(cell, str) else f"{_fmt_time(cell['seconds'])}, {_fmt_mib(cell['peak_mib'])}"
            )
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    lines += ["", "Each cell: median time, peak memory of the call (inputs excluded).", ""]
    fit_sizes = [n for n in sizes if n >= 1024] if max(sizes) >= 4096 else sizes[-3:]
    lines += [
        f"Slopes of log(time) and log(memory) against log(n), fitted over {', '.join(map(str, fit_sizes))} tokens:",
        "",
    ]
    slopes: dict[str, tuple[float, float]] = {}
    for path in PATHS:
        measured = [n for n in fit_sizes if not isinstance(results[path][n], str)]
        if len(measured) < 2:
            lines.append(f"- {path}: too few lengths measured")
            continue
        cells = [results[path][n] for n in measured]
        time_slope = slope(measured, [c["seconds"] for c in cells])  # type: ignore[index]
        memory_slope = slope(measured, [c["peak_mib"] for c in cells])  # type: ignore[index]
        slopes[path] = (time_slope, memory_slope)
        lines.append(f"- {path}: time ~ n^{time_slope:.2f}, memory ~ n^{memory_slope:.2f}")
    lines += ["", "Targets:", ""]
    lines += [f"- {line}" for line in targets(results, sizes, slopes)]
    return lines


def targets(
    results: dict[str, dict[int, dict[str, float] | str]], sizes: list[int], slopes: dict[str, tuple[float, float]]
) -> list[str]:
    out = []
    largest = max(sizes)
    for ours, theirs in (("ours fused", "torch fused"), ("ours fused + mask", "torch fused + mask")):
        a, b = results[ours][largest], results[theirs][largest]
        if isinstance(a, str) or isinstance(b, str):
            out.append(f"{ours} vs {theirs} at {largest:,}: not measured")
            continue
        ratio = a["peak_mib"] / max(b["peak_mib"], 1e-9)
        verdict = "PASS" if ratio <= 1.2 else "FAIL"
        out.append(f"{verdict}: {ours} peak memory at {largest:,} tokens is {ratio:.2f} x {theirs}'s (target <= 1.2)")

    def check(path: str, which: int, low: float, high: float, what: str) -> None:
        if path not in slopes:
            out.append(f"{path}: {what}: not measured")
            return
        value = slopes[path][which]
        verdict = "PASS" if low <= value <= high else "FAIL"
        out.append(f"{verdict}: {path} {what}: slope {value:.2f} (target {low} to {high})")

    for path in PATHS:
        check(path, 0, 1.7, 2.3, "time quadratic")
    # O(n): a slope at most 1.3; below 1 is a fixed part (the kernel's buffers) beside the output.
    check("ours fused", 1, 0.0, 1.3, "memory linear, O(n)")
    check("ours fused + mask", 1, 0.0, 1.3, "memory linear, O(n)")
    check("explicit", 1, 1.7, 2.3, "memory quadratic")
    check("chunked", 1, 0.7, 1.3, f"memory linear in S at a fixed chunk of {CHUNK}")
    return out


def plot(results: dict[str, dict[int, dict[str, float] | str]], sizes: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name in PATHS:
        measured = [n for n in sizes if not isinstance(results[name][n], str)]
        cells = [results[name][n] for n in measured]
        time_axis.plot(measured, [c["seconds"] for c in cells], marker="o", label=name)  # type: ignore[index]
        memory_axis.plot(measured, [c["peak_mib"] for c in cells], marker="o", label=name)  # type: ignore[index]
    for axis, key in ((time_axis, "seconds"), (memory_axis, "peak_mib")):
        anchor = results["explicit"][sizes[len(sizes) // 2]]
        if isinstance(anchor, str):
            continue
        n0, y0 = sizes[len(sizes) // 2], anchor[key]
        axis.plot(sizes, [y0 * (n / n0) ** 2 for n in sizes], "k--", linewidth=1, label="n² (reference)")
        if key == "peak_mib":
            fused = results["ours fused"][n0]
            if not isinstance(fused, str):
                axis.plot(sizes, [fused[key] * n / n0 for n in sizes], "k:", linewidth=1, label="n (reference)")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("sequence length n (tokens, T = S)")
        axis.grid(True, which="both", alpha=0.3)
    time_axis.set_ylabel("median time (s)")
    memory_axis.set_ylabel("peak memory of the call (MiB)")
    time_axis.set_title("Time")
    memory_axis.set_title("Peak memory")
    memory_axis.legend(fontsize=8)
    figure.suptitle(f"Self-attention cost on the CPU: batch 1, {HEADS} heads of {HEAD_DIM}, float32")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        task, path, (n, heads, repeats, threads) = argv[1], argv[2], map(int, argv[3:7])
        torch.set_num_threads(threads)
        sys.stdout.write(json.dumps(worker(task, path, n, heads, repeats)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 to 2,048 tokens, 3 repeats")
    parser.add_argument("--sizes", type=int, nargs="+", help="lengths to measure (default: 128 to 16,384)")
    parser.add_argument("--repeats", type=int, help="timed runs per configuration (default 5, 3 above 4,096 tokens)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS), help="paths to measure")
    parser.add_argument(
        "--out", type=Path, help="also write the report (markdown) here, and the figures beside it (.json)"
    )
    parser.add_argument("--plot", type=Path, help="draw the log-log picture here (e.g. docs/images/attention_cost.png)")
    args = parser.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *argv])
    header = [
        f"Command: `{command}`",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; torch {torch.__version__}, "
        f"{args.threads} threads, {os.cpu_count()} cores",
        f"Shape: batch 1, {HEADS} heads of {HEAD_DIM}, T = S = n, float32; chunk {CHUNK} rows.",
        "",
    ]
    sys.stdout.write("\n".join(header) + "\n")
    results: dict[str, dict[int, dict[str, float] | str]] = {path: {} for path in PATHS}
    for n in sizes:
        repeats = args.repeats or (3 if args.quick or n > 4096 else 5)
        for path in PATHS:
            results[path][n] = measure(path, n, HEADS, repeats, args.threads) if path in args.paths else "not run"
            cell = results[path][n]
            shown = cell if isinstance(cell, str) else f"{_fmt_time(cell['seconds'])}, {_fmt_mib(cell['peak_mib'])}"
            sys.stderr.write(f"{n:>6} {path:<20} {shown}\n")
    lines = report(results, sizes)
    sys.stdout.write("\n".join(lines) + "\n")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(["# Attention cost", "", *header, *lines]) + "\n", encoding="utf-8")
        raw = {path: {str(n): cell for n, cell in cells.items()} for path, cells in results.items()}
        args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    if args.plot:
        plot(results, sizes, args.plot)
        sys.stdout.write(f"Picture: {args.plot}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
