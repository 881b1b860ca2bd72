"""Translation speed of the bundled model against Hugging Face generate() and CTranslate2, same weights.

    flock /tmp/selfattention-bench.lock python benchmarks/translation_speed.py --rounds 3  # full run
    python benchmarks/translation_speed.py --quick                                        # smoke run

The model (default: the bundled en-fr) is exported with ``export_marian`` (for transformers) and
``export_ct2`` (float32 and int8), so every engine runs the same weights. Inputs: the Multi30k
test_2016_flickr sources (1,000 sentences) and a long set (consecutive test sentences joined in
pairs: 500 inputs). Batch 32: target tokens/s over the whole set, each engine given the inputs
sorted by length; every engine is warmed up on the first 64 inputs (two batches, so that both
of our decoding workers get one: ``translate`` decodes a single batch without them), then
translates the set twice, and the second pass is the figure, the first printed beside it.
Batch 1: latency per sentence (median and p95) over the first ``--latency-n`` inputs, the same
for all engines. Target tokens are counted with our tokenizer on each engine's output text,
plus one for the end token. BLEU is cased detokenised sacreBLEU on the Multi30k references (the
long set's references are joined the same way). Prints markdown tables.

``--rounds N`` measures every engine N times, the engines taking turns (in alternating order), and
reports each figure's median round: this shared machine has slow stretches minutes long, and a
single round can catch one engine in one.

Each engine runs in its own process (the script starts itself with ``--child``): with
CTranslate2 loaded, PyTorch's beam search in the same process ran about 30 % slower here
(``benchmarks/neighbour_slowdown.py``), so
sharing a process would measure the neighbour, not the engine.

"ours float32" is what ``selfattention translate`` runs: the C model alone
(``decoding.c_translator.CTranslator``: the encoder and each decoding step in the engine's C
kernels, the search in numpy; no PyTorch needed); at batch 32 it decodes in ``--workers`` forked
processes of one thread each (``selfattention translate --workers 2``,
``selfattention.engine.workers``), at batch 1 in this process: the same split CTranslate2 gets
(inter threads at batch 32, intra threads at batch 1). "ours float32 1 process" decodes every
batch in this process. "ours float32 PyTorch model" is the PyTorch ``Translator`` (what the
web page and the library's ``Translator.load`` give): the encoder's Linear weights packed for
oneDNN, each decoding step one call into the same C step; "ours float32 PyTorch step" is that
with the C step taken out (each step through PyTorch's modules, on the same packed weights).
"ours int8" and "ours int8 1 process" likewise, the C model quantised to int8 as
``precision="int8"`` quantises it. The glibc allocator thresholds are raised first, as
``selfattention translate`` does.

``--engines`` measures a subset (the ratios table then shows only the ratios it has).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from selfattention.cli.common import resolve_model
from selfattention.data import load_corpus
from selfattention.decoding import DecodingConfig, TextTranslator, Translator
from selfattention.decoding.c_translator import CTranslator
from selfattention.engine import native_step
from selfattention.engine.allocator import tune_allocator
from selfattention.engine.packed import pack_linears
from selfattention.evaluation import score
from selfattention.interop import export_ct2, export_marian

Engine = Callable[[Sequence[str], int, int], list[str]]  # (texts, beam, batch size) -> translations


@dataclass(frozen=True)
class Row:
    engine: str
    data: str
    search: str
    batch: int
    tokens_per_s: float  # at batch 32: the second timed pass over the set
    median_ms: float
    p95_ms: float
    bleu: float
    first_pass_tokens_per_s: float = 0.0  # at batch 32: the first pass, right after the warm-up


def ours(translator: TextTranslator) -> Engine:
    def run(texts: Sequence[str], beam: int, batch: int) -> list[str]:
        return translator.translate(texts, DecodingConfig(beam_size=beam, batch_size=batch))

    return run


def hugging_face(directory: Path, translator: Translator) -> Engine:
    from transformers import MarianMTModel

    model = MarianMTModel.from_pretrained(str(directory)).eval()
    tokenizer, eos = translator.tokenizer, translator.eos_id
    banned = [[translator.pad_id], [translator.bos_id]]

    def run(texts: Sequence[str], beam: int, batch: int) -> list[str]:
        ids = [[*tokenizer.encode(text), eos] for text in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        outputs: list[str] = [""] * len(ids)
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            width = max(len(ids[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), translator.pad_id)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            with torch.inference_mode():
                generated = model.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    num_beams=beam,
                    do_sample=False,
                    max_new_tokens=int(1.5 * (width - 1)) + 10,
                    bad_words_ids=banned,
                    length_penalty=1.0,
                    early_stopping=True,
                )
            for row, i in zip(generated.tolist(), chunk, strict=True):
                row = row[1:]
                row = row[: row.index(eos)] if eos in row else row
                outputs[i] = tokenizer.decode([t for t in row if t != translator.pad_id])
        return outputs

    return run


def ctranslate2_engine(directory: Path, translator: Translator, compute_type: str, inter: int, intra: int) -> Engine:
    import ctranslate2

    engine = ctranslate2.Translator(
        str(directory), device="cpu", compute_type=compute_type, inter_threads=inter, intra_threads=intra
    )
    tokenizer = translator.tokenizer
    # The start and padding pieces, never written ("<s>", "<pad>"; an imported Marian model starts with "<pad>").
    suppressed = [[piece] for piece in dict.fromkeys(tokenizer.pieces([translator.bos_id, translator.pad_id]))]

    def run(texts: Sequence[str], beam: int, batch: int) -> list[str]:
        sources = [[*tokenizer.pieces(tokenizer.encode(text)), "</s>"] for text in texts]
        longest = max(len(s) for s in sources)
        results = engine.translate_batch(
            sources,
            max_batch_size=batch,
            beam_size=beam,
            length_penalty=1.0,
            max_decoding_length=int(1.5 * longest) + 10,
            suppress_sequences=suppressed,
        )
        return [tokenizer.decode([tokenizer.piece_id(p) for p in r.hypotheses[0]]) for r in results]

    return run


WARM_UP = 64  # inputs translated before timing: two batches of 32


def measure(
    name: str, engine: Engine, data: str, texts: list[str], refs: list[str], beam: int, latency_n: int, tok: Translator
) -> list[Row]:
    search = "greedy" if beam == 1 else f"beam {beam}"
    engine(texts[:WARM_UP], beam, 32)  # two batches: one for each decoding worker
    passes = []
    for _ in range(2):  # the second is the figure; the first beside it
        started = time.perf_counter()
        outputs = engine(texts, beam, 32)
        passes.append(time.perf_counter() - started)
    tokens = sum(len(tok.tokenizer.encode(o)) + 1 for o in outputs)
    rows = [Row(name, data, search, 32, tokens / passes[1], 0.0, 0.0, score(outputs, refs).bleu, tokens / passes[0])]
    latencies, out1 = [], []
    for text in texts[:latency_n]:
        started = time.perf_counter()
        out1 += engine([text], beam, 1)
        latencies.append(1000 * (time.perf_counter() - started))
    tokens = sum(len(tok.tokenizer.encode(o)) + 1 for o in out1)
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]
    rows.append(
        Row(
            name,
            data,
            search,
            1,
            tokens / (sum(latencies) / 1000),
            statistics.median(latencies),
            p95,
            score(out1, refs[:latency_n]).bleu,
        )
    )
    print(
        f"  {name} {data} {search}: {rows[0].tokens_per_s:.0f} tok/s (first pass {rows[0].first_pass_tokens_per_s:.0f}),"
        f" {rows[1].median_ms:.1f} ms",
        file=sys.stderr,
    )
    return rows


ENGINES = (
    "ours float32",
    "ours float32 1 process",
    "ours float32 PyTorch model",
    "ours float32 PyTorch step",
    "ours int8",
    "ours int8 1 process",
    "HF float32",
    "CT2 float32",
    "CT2 int8",
)


def build_engine(name: str, directory: Path, scratch: Path, args: argparse.Namespace) -> tuple[Engine, Translator]:
    """One engine, and the float32 translator whose tokenizer counts tokens; in this process only."""
    f32 = Translator.load(directory)
    if name.endswith("PyTorch step"):  # the C step out, the rest of the engine in
        native_step.start = lambda *args: None
        pack_linears(f32.model)  # the decoder's layers too: the load leaves them to the C step
    if name.startswith("ours"):
        precision = "int8" if "int8" in name else "float32"
        pytorch = name.endswith(("PyTorch model", "PyTorch step"))  # else what `translate` runs: the C model
        translator: TextTranslator = f32 if pytorch else CTranslator.load(directory, precision)
        if not name.endswith("1 process"):  # one sentence at a time (batch 1) never leaves this process
            translator.start_workers(args.workers)
        return ours(translator), f32
    if name == "HF float32":
        return hugging_face(scratch / "marian", f32), f32
    q = name.split()[1]
    batch_threads = tuple(int(x) for x in args.ct2_batch_threads.split(","))
    latency_threads = tuple(int(x) for x in args.ct2_latency_threads.split(","))
    b = ctranslate2_engine(scratch / f"ct2-{q}", f32, q, *batch_threads)
    one = ctranslate2_engine(scratch / f"ct2-{q}", f32, q, *latency_threads)
    return (lambda t, beam, n: (b if n > 1 else one)(t, beam, n)), f32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the bundled en-fr)")
    parser.add_argument("--data-dir", help="corpora directory (default $SELFATTENTION_DATA or ../shared/data)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 sentences, 10 for latency, greedy only")
    parser.add_argument("--latency-n", type=int, default=200, help="inputs timed one at a time (default 200)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4], help="beam sizes (default 1 4)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for ours and transformers (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="our decoding processes at batch 32 (default 2)")
    parser.add_argument("--ct2-batch-threads", default="2,1", help="CT2 inter,intra threads at batch 32 (default 2,1)")
    parser.add_argument("--ct2-latency-threads", default="1,2", help="CT2 inter,intra threads at batch 1 (default 1,2)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every engine this many times, each its median (default 1)"
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=ENGINES,
        default=list(ENGINES),
        metavar="ENGINE",
        help="engines to measure (default all)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # ENGINE@SCRATCH: measure one engine, print JSON rows
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    torch.set_num_threads(args.threads)
    tuned = tune_allocator()  # as `selfattention translate` does
    pairs = load_corpus("multi30k", "test", args.data_dir)
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    sets = {
        "multi30k": (sources, references),
        "long (pairs)": (
            [f"{a} {b}" for a, b in zip(sources[::2], sources[1::2], strict=True)],
            [f"{a} {b}" for a, b in zip(references[::2], references[1::2], strict=True)],
        ),
    }
    beams, latency_n = args.beams, args.latency_n
    if args.quick:
        sets = {name: (s[:64], r[:64]) for name, (s, r) in sets.items()}
        beams, latency_n = [1], 10
    directory = resolve_model(args.model)
    if args.child:
        name, scratch = args.child.split("@", 1)
        engine, f32 = build_engine(name, directory, Path(scratch), args)
        rows = [
            row
            for data, (texts, refs) in sets.items()
            for beam in beams
            for row in measure(name, engine, data, texts, refs, beam, latency_n, f32)
        ]
        print(json.dumps([dataclasses.asdict(row) for row in rows]))
        return
    print(f"command: python {' '.join(sys.argv)}")
    print(f"glibc allocator thresholds raised (as the CLI does): {tuned}")
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; torch {torch.__version__}, threads {args.threads}"
    )
    print(f"CT2 threads (inter,intra): batch 32 {args.ct2_batch_threads}, batch 1 {args.ct2_latency_threads}")
    print(f"ours at batch 32: {args.workers} worker processes x 1 thread; at batch 1: 1 process x {args.threads}")
    print("each engine measured in its own process (CTranslate2's runtime in a process slows PyTorch's there)")
    plain = Translator.load(directory, onednn=False)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="translation-speed-") as scratch:
        export_marian(plain.model, plain.tokenizer, Path(scratch) / "marian")
        for q in ("float32", "int8"):
            export_ct2(plain.model, plain.tokenizer, Path(scratch) / f"ct2-{q}", q)
        passed = [a for a in sys.argv[1:] if not a.startswith("--child")]
        for round_number in range(args.rounds):  # the engines take turns, in alternating order
            engines = [name for name in ENGINES if name in args.engines]
            for name in engines if round_number % 2 == 0 else engines[::-1]:
                command = [sys.executable, __file__, *passed, "--child", f"{name}@{scratch}"]
                result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
                rows += [Row(**row) for row in json.loads(result.stdout.strip().splitlines()[-1])]
    if args.rounds > 1:
        print(f"rounds: {args.rounds}, the engines in turn; each figure is its engine's median round")
    print_tables(median_rounds(rows))


def median_rounds(rows: list[Row]) -> list[Row]:
    """One row per engine, data, search and batch: its median round (tokens/s at batch 32, latency at 1).

    With an even number of rounds, the slower of the two middle ones. Rows keep the engines' order.
    """
    groups: dict[tuple[str, str, str, int], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.engine, row.data, row.search, row.batch), []).append(row)
    chosen = []
    for group in groups.values():
        if group[0].batch == 1:
            ranked = sorted(group, key=lambda r: -r.median_ms)
        else:
            ranked = sorted(group, key=lambda r: r.tokens_per_s)
        chosen.append(ranked[(len(ranked) - 1) // 2])
    order = {name: i for i, name in enumerate(ENGINES)}
    return sorted(chosen, key=lambda r: order[r.engine])


def print_tables(rows: list[Row]) -> None:
    def find(engine: str, data: str, search: str, batch: int) -> Row | None:
        return next((r for r in rows if (r.engine, r.data, r.search, r.batch) == (engine, data, search, batch)), None)

    def ratio(a: Row | None, b: Row | None, value: Callable[[Row], float]) -> str:
        return "-" if a is None or b is None else f"{value(a) / value(b):.2f}"

    print("\n### Batch 32: target tokens/s over the whole set (second pass; the first beside it)\n")
    print("| data | search | engine | tokens/s | first pass tokens/s | BLEU |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for r in rows:
        if r.batch == 32:
            print(
                f"| {r.data} | {r.search} | {r.engine} | {r.tokens_per_s:,.0f} | {r.first_pass_tokens_per_s:,.0f} "
                f"| {r.bleu:.2f} |"
            )
    print("\n### Batch 1: latency per sentence\n")
    print("| data | search | engine | median ms | p95 ms | tokens/s | BLEU |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        if r.batch == 1:
            print(
                f"| {r.data} | {r.search} | {r.engine} | {r.median_ms:.1f} | {r.p95_ms:.1f} "
                f"| {r.tokens_per_s:,.0f} | {r.bleu:.2f} |"
            )
    print("\n### Ratios\n")
    print(
        "| data | search | ours/CT2 f32 tok/s | ours/HF tok/s | ours/CT2 int8 tok/s | ours/CT2 f32 median latency "
        "| BLEU int8 - f32 (ours) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    speed, latency = (lambda r: r.tokens_per_s), (lambda r: r.median_ms)
    for data, search in dict.fromkeys((r.data, r.search) for r in rows):
        o32, o8 = find("ours float32", data, search, 32), find("ours int8", data, search, 32)
        c32, c8, hf = (find(e, data, search, 32) for e in ("CT2 float32", "CT2 int8", "HF float32"))
        l_o, l_c = find("ours float32", data, search, 1), find("CT2 float32", data, search, 1)
        bleu = "-" if o8 is None or o32 is None else f"{o8.bleu - o32.bleu:+.2f}"
        print(
            f"| {data} | {search} | {ratio(o32, c32, speed)} | {ratio(o32, hf, speed)} "
            f"| {ratio(o8, c8, speed)} | {ratio(l_o, l_c, latency)} | {bleu} |"
        )


if __name__ == "__main__":
    main()
