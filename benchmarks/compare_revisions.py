"""Translation speed of this checkout against an earlier revision: does a change pay?

    python benchmarks/compare_revisions.py REVISION [--rounds 3] [--searches int8:4 float32:4 int8:1]
        [--translator pytorch|translate]

REVISION (anything ``git worktree add`` takes) is checked out into a temporary directory (its C
kernels built there, for a revision that builds them at install: ``setup.py``); each round then runs, for every search ``precision:beam``, one process on that revision's sources and
one on this checkout's (``PYTHONPATH`` chooses, the same virtual environment and model, the two
taking turns first), each translating the Multi30k test sources (sorted by length, batch 32, one
thread) once to warm up and three times timed. A row is each side's median round, their ratio,
and whether the two gave the same translations (a digest of every output's token ids; where
they differ, how many lines do).

``--translator pytorch`` (the default) times PyTorch's ``Translator`` on both sides;
``--translator translate`` times what ``selfattention translate`` opens on each side
(``cli.translate.open_translator``, the C model alone since it exists; PyTorch's ``Translator`` on
a revision from before it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child(precision: str, beam: int, translator_kind: str) -> None:
    """One side's figures, as a JSON line: median seconds of three passes, tokens and a digest of them."""
    import torch

    from selfattention.cli.common import resolve_model
    from selfattention.data.corpora import load_corpus
    from selfattention.decoding import DecodingConfig, Translator

    try:
        from selfattention.engine.allocator import tune_allocator
    except ImportError:  # a revision from before the engine package
        from selfattention.runtime import tune_allocator  # type: ignore[no-redef]

    tune_allocator()
    torch.set_num_threads(1)
    translator = None
    if translator_kind == "translate":
        try:
            from selfattention.cli.translate import open_translator
        except ImportError:  # a revision from before translate opened the C model: PyTorch's Translator
            pass
        else:
            translator = open_translator(resolve_model(None), "cpu", precision)
    if translator is None:
        translator = Translator.load(resolve_model(None), precision=precision)
    sources = sorted(translator.tokenizer.encode_batch([s for s, _ in load_corpus("multi30k", "test", None)]), key=len)
    config = DecodingConfig(beam_size=beam, batch_size=32)

    def run() -> list[list[int]]:
        out: list[list[int]] = []
        for start in range(0, len(sources), 32):
            out += translator.translate_ids(sources[start : start + 32], config)
        return out

    outputs, times = run(), []
    for _ in range(3):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    digest = hashlib.sha256(json.dumps(outputs).encode()).hexdigest()[:12]
    print(
        json.dumps(
            {
                "seconds": statistics.median(times),
                "tokens": sum(len(o) + 1 for o in outputs),
                "digest": digest,
                "outputs": outputs,
            }
        )
    )


def measure(tree: Path, precision: str, beam: int, translator: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    command = [sys.executable, __file__, "--child", f"{precision}:{beam}:{translator}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the run on {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", nargs="?", default="HEAD", help="the revision to compare against (default HEAD)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every search on both sides (default 3)")
    parser.add_argument("--searches", nargs="+", default=["int8:4", "float32:4", "int8:1"], help="precision:beam")
    parser.add_argument(
        "--translator",
        choices=["pytorch", "translate"],
        default="pytorch",
        help="PyTorch's Translator on both sides, or what `selfattention translate` opens (default pytorch)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        precision, beam, kind = args.child.split(":")
        child(precision, int(beam), kind)
        return
    searches = [(p, int(b)) for p, b in (s.split(":") for s in args.searches)]
    with tempfile.TemporaryDirectory() as scratch:
        old = Path(scratch) / "revision"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.revision], check=True
        )
        try:
            if (old / "setup.py").is_file():  # a revision whose kernels are built at install: build them in place
                subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=old, check=True)
            runs: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
            for round_ in range(args.rounds):
                for precision, beam in searches:
                    sides = [("revision", old), ("this checkout", ROOT)]
                    for name, tree in sides if round_ % 2 == 0 else sides[::-1]:
                        runs.setdefault((precision, beam, name), []).append(
                            measure(tree, precision, beam, args.translator)
                        )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    print(
        f"$ python benchmarks/compare_revisions.py {args.revision} --rounds {args.rounds} --searches {' '.join(args.searches)}"
        f" --translator {args.translator}\n"
    )
    print("| search | revision tokens/s | this checkout tokens/s | this / revision | same translations |")
    print("| --- | --- | --- | --- | --- |")
    for precision, beam in searches:
        speeds = {}
        for name in ("revision", "this checkout"):
            results = runs[(precision, beam, name)]
            speeds[name] = statistics.median(float(r["tokens"]) / float(r["seconds"]) for r in results)
        digests = {str(r["digest"]) for name in ("revision", "this checkout") for r in runs[(precision, beam, name)]}
        ratio = speeds["this checkout"] / speeds["revision"]
        same = f"yes (digest {digests.pop()})" if len(digests) == 1 else "no: " + differing(runs, precision, beam)
        print(
            f"| {precision} beam {beam} | {speeds['revision']:,.0f} | {speeds['this checkout']:,.0f} | "
            f"{ratio:.2f}x | {same} |"
        )


def differing(runs: dict[tuple[str, int, str], list[dict[str, Any]]], precision: str, beam: int) -> str:
    """How many lines the two sides' first rounds translate differently (and whether a side varied by round)."""
    first = [runs[(precision, beam, name)][0]["outputs"] for name in ("revision", "this checkout")]
    lines = sum(a != b for a, b in zip(*first, strict=True))
    varied = [
        name for name in ("revision", "this checkout") if len({r["digest"] for r in runs[(precision, beam, name)]}) > 1
    ]
    return f"{lines:,} of {len(first[0]):,} lines differ" + (
        f"; {' and '.join(varied)} varied by round" if varied else ""
    )


if __name__ == "__main__":
    main()
