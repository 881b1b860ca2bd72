"""What a user meets: `selfattention translate` as a whole process against a CTranslate2 process.

    flock /tmp/selfattention-bench.lock python benchmarks/whole_process.py --rounds 7   # full run
    python benchmarks/whole_process.py --quick                                          # smoke run

Each figure is the wall time of one process, from its start to its exit, reading the Multi30k
test_2016_flickr sources (1,000 lines) on standard input and writing the translations to a file:

- ours: ``selfattention translate --beam B --batch-size 32`` with no other flags (the default
  workers and threads; ``--precision int8`` for the int8 row);
- CTranslate2: a script that imports ``ctranslate2``, ``sentencepiece`` and the package's case
  markers only (``selfattention.data.casing``: pure Python, no PyTorch), loads the same weights
  (``selfattention export-ct2``, float32 or int8) with ``inter_threads=2, intra_threads=1``,
  encodes with the model's own SentencePiece file (capitals marked first when the vocabulary has
  the case marker, as our tokenizer does), translates with ``max_batch_size=32`` (CTranslate2
  sorts by length itself) and writes the detokenised lines.

The two take turns, in alternating order, ``--rounds`` times; each figure is its command's median,
and the ratio is ours' median over CTranslate2's. Both outputs are scored (cased detokenised
sacreBLEU against the French references) and compared line by line, so a fast wrong answer shows.

Start-up: ``selfattention translate "Hello."`` against ``python -c "import torch"``, taking turns
``--start-rounds`` times; the figure is the difference of the medians.

This process imports neither torch nor the package: it only starts the others and times them.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CLI = str(BIN / "selfattention")

CT2_SCRIPT = """\
import sys
import ctranslate2
import sentencepiece
from selfattention.data.casing import has_case_marker, mark_capitals, restore_capitals

model, spm_file, beam, compute_type = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
processor = sentencepiece.SentencePieceProcessor(model_file=spm_file)
marks = has_case_marker(processor)
lines = sys.stdin.read().splitlines()
lines = [mark_capitals(line) for line in lines] if marks else lines
sources = [pieces + ["</s>"] for pieces in processor.encode(lines, out_type=str)]
translator = ctranslate2.Translator(
    model, device="cpu", compute_type=compute_type, inter_threads=2, intra_threads=1
)
results = translator.translate_batch(
    sources,
    max_batch_size=32,
    beam_size=beam,
    max_decoding_length=int(1.5 * max(len(s) for s in sources)) + 10,
    suppress_sequences=[["<s>"], ["<pad>"]],
)
texts = [processor.decode(r.hypotheses[0]) for r in results]
sys.stdout.write("".join((restore_capitals(t) if marks else t) + "\\n" for t in texts))
"""


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


def timed(command: list[str], stdin: Path | None, stdout: Path | None) -> float:
    """Seconds from the start of the process to its exit; a failing command stops the benchmark."""
    with (
        open(stdin, "rb") if stdin else open(os.devnull, "rb") as given,
        open(stdout, "wb") if stdout else open(os.devnull, "wb") as taken,
    ):
        start = time.perf_counter()
        result = subprocess.run(command, stdin=given, stdout=taken, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr.decode(errors='replace')}")
    return seconds


def alternate(commands: dict[str, tuple[list[str], Path | None, Path | None]], rounds: int) -> dict[str, list[float]]:
    """Each command once per round, in alternating order; the seconds of each, round by round."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for number in range(rounds):
        for name in names if number % 2 == 0 else names[::-1]:
            times[name].append(timed(*commands[name]))
    return times


def bleu(outputs: Path, references: list[str]) -> float:
    import sacrebleu

    hypotheses = outputs.read_text(encoding="utf-8").splitlines()
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def same_lines(a: Path, b: Path) -> int:
    return sum(x == y for x, y in zip(a.read_text().splitlines(), b.read_text().splitlines(), strict=True))


def seconds(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="en-fr", help="model directory or bundled name (default en-fr)")
    parser.add_argument("--data-dir", type=Path, default=HERE.parent.parent / "shared" / "data", help="corpora")
    parser.add_argument("--rounds", type=int, default=7, help="turns of each translation command (default 7)")
    parser.add_argument("--start-rounds", type=int, default=15, help="turns of the start-up pair (default 15)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4], help="beam sizes (default 1 4)")
    parser.add_argument("--precisions", nargs="+", default=["float32", "int8"], choices=["float32", "int8"])
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 lines, 2 rounds, greedy float32")
    args = parser.parse_args()
    sources = read_lines(args.data_dir / "multi30k" / "test_2016_flickr.en.gz")
    references = read_lines(args.data_dir / "multi30k" / "test_2016_flickr.fr.gz")
    if args.quick:
        sources, references = sources[:64], references[:64]
        args.rounds, args.start_rounds, args.beams, args.precisions = 2, 2, [1], ["float32"]
    print(f"command: python {' '.join(sys.argv)}")
    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {len(sources)} Multi30k test lines")
    print("each figure: median wall seconds of whole processes (min–max), the commands taking turns\n")
    with tempfile.TemporaryDirectory(prefix="whole-process-") as name:
        scratch = Path(name)
        given = scratch / "test.en"
        given.write_text("".join(line + "\n" for line in sources), encoding="utf-8")
        ct2_script = scratch / "ct2_translate.py"
        ct2_script.write_text(CT2_SCRIPT)
        model_dir = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from selfattention.cli.common import resolve_model; print(resolve_model(sys.argv[1]))",
                args.model,
            ],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout.strip()
        spm_file = str(Path(model_dir) / "tokenizer.model")
        print("| precision | search | ours s | CTranslate2 s | ours / CT2 | BLEU ours | BLEU CT2 | same lines |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for precision in args.precisions:
            exported = scratch / f"ct2-{precision}"
            timed([CLI, "export-ct2", model_dir, "--out", str(exported), "--quantization", precision], None, None)
            for beam in args.beams:
                ours_out, ct2_out = scratch / "ours.fr", scratch / "ct2.fr"
                ours = [CLI, "translate", "--model", model_dir, "--beam", str(beam), "--batch-size", "32"]
                if precision != "float32":
                    ours += ["--precision", precision]
                ct2 = [sys.executable, str(ct2_script), str(exported), spm_file, str(beam), precision]
                times = alternate({"ours": (ours, given, ours_out), "ct2": (ct2, given, ct2_out)}, args.rounds)
                ratio = statistics.median(times["ours"]) / statistics.median(times["ct2"])
                search = "greedy" if beam == 1 else f"beam {beam}"
                print(
                    f"| {precision} | {search} | {seconds(times['ours'])} | {seconds(times['ct2'])} | {ratio:.2f}× "
                    f"| {bleu(ours_out, references):.2f} | {bleu(ct2_out, references):.2f} "
                    f"| {same_lines(ours_out, ct2_out)} / {len(sources)} |",
                    flush=True,
                )
        start = alternate(
            {
                "import torch": ([sys.executable, "-c", "import torch"], None, None),
                "translate": ([CLI, "translate", "Hello."], None, None),
            },
            args.start_rounds,
        )
    gap = statistics.median(start["translate"]) - statistics.median(start["import torch"])
    print("\n| start-up | seconds |")
    print("| --- | ---: |")
    print(f'| `python -c "import torch"` | {seconds(start["import torch"])} |')
    print(f'| `selfattention translate "Hello."` | {seconds(start["translate"])} |')
    print(f"| difference of the medians | {gap:.2f} |")


if __name__ == "__main__":
    main()
