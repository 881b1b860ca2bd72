"""Training throughput: our trainer against a plain ``torch.nn.Transformer`` of the same size.

    python benchmarks/training_throughput.py [--steps 150] [--config configs/en-fr.toml]

Both train from scratch on the same batches: the first ``--steps`` batches of epoch 0 of the
config's corpora (Multi30k + Tatoeba, bucketed by length into ``train.max_tokens`` padded
tokens), tokenised with the bundled model's vocabulary, 2 threads. Ours is the real
:class:`~selfattention.training.trainer.Trainer` (``selfattention train``); the baseline is
``nn.Transformer`` with the same widths, depths, dropout, tied embeddings and sinusoidal
positions, ``F.cross_entropy`` with label smoothing 0.1 over every position, and the same Adam,
warm-up schedule and clipping. Each runs in its own process; the baseline twice, with glibc's
default allocator and with the thresholds ours raises (``selfattention.engine.allocator.tune_allocator``),
so that the ratio is against the baseline at its best.

Throughput is the median of target tokens/s over windows of 25 steps, leaving out the first
window (warm-up). "Equal loss curves": the NLL per target token at the same steps is printed for
each, and their mean over the second half of the run.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 25
NAMES = {
    "ours": "ours (`selfattention train`)",
    "ours-bf16": "ours, bfloat16 autocast",
    "baseline": "nn.Transformer, glibc default allocator",
    "baseline-tuned": "nn.Transformer, allocator thresholds raised",
}


def _prepared_trainer(config_path: str, steps: int, run_dir: Path, precision: str = "float32"):  # type: ignore[no-untyped-def]
    from selfattention.cli.common import resolve_model
    from selfattention.training.config import load_run_config
    from selfattention.training.trainer import Trainer

    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(resolve_model(None) / "tokenizer.model", run_dir / "tokenizer.model")  # no vocabulary training
    overrides = [f"train.max_steps={steps}", "train.checkpoint_every=0", "train.average_last=0", "train.threads=2"]
    overrides.append(f"train.precision={precision}")
    config = load_run_config(config_path, overrides)
    return Trainer(config, run_dir, show_progress=False)


def run_ours(config_path: str, steps: int, precision: str = "float32") -> dict[str, list[float]]:
    from selfattention.engine.allocator import tune_allocator

    tune_allocator()  # as `selfattention train` does
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _prepared_trainer(config_path, steps, Path(tmp) / "run", precision)
        trainer.fit()
        records = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").open()]
    train = [r for r in records if r["kind"] == "train" and r["step"] % WINDOW == 0]
    return {
        "step": [r["step"] for r in train],
        "tokens_per_s": [r["tokens_per_s"] for r in train],
        "nll": [r["nll"] for r in train],
    }


def run_baseline(config_path: str, steps: int, tuned: bool) -> dict[str, list[float]]:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from selfattention.data.batching import collate, token_batches
    from selfattention.engine.allocator import tune_allocator
    from selfattention.layers import sinusoidal_table
    from selfattention.training.schedule import inverse_sqrt_lr

    if tuned:
        tune_allocator()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _prepared_trainer(config_path, steps, Path(tmp) / "run")
        trainer.prepare(resume=False)  # the same examples, vocabulary and config as ours
        examples, config = trainer.examples, trainer.config
    m, t = config.model, config.train
    torch.set_num_threads(2)
    torch.manual_seed(t.seed)

    class Baseline(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(m.vocab_size, m.d_model, padding_idx=m.pad_id)
            nn.init.normal_(self.embed.weight, 0.0, m.d_model**-0.5)
            self.register_buffer("positions", sinusoidal_table(m.max_positions, m.d_model))
            self.dropout = nn.Dropout(m.dropout)
            self.transformer = nn.Transformer(
                d_model=m.d_model,
                nhead=m.n_heads,
                num_encoder_layers=m.encoder_layers,
                num_decoder_layers=m.decoder_layers,
                dim_feedforward=m.d_ff,
                dropout=m.dropout,
                batch_first=True,
            )

        def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.embed(ids) * math.sqrt(m.d_model) + self.positions[: ids.shape[1]]
            return self.dropout(x)

        def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
            causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
            out = self.transformer(
                self.embed_tokens(src),
                self.embed_tokens(tgt),
                tgt_mask=causal,
                src_key_padding_mask=src == m.pad_id,
                tgt_key_padding_mask=tgt == m.pad_id,
                memory_key_padding_mask=src == m.pad_id,
            )
            return out @ self.embed.weight.T  # tied output projection

    model = Baseline().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=t.peak_lr, betas=t.adam_betas, eps=t.adam_eps)
    order = token_batches(examples, t.max_tokens, seed=t.seed, epoch=0)[:steps]
    result: dict[str, list[float]] = {"step": [], "tokens_per_s": [], "nll": []}
    window_tokens, window_start = 0, time.monotonic()
    for step, indices in enumerate(order, start=1):
        batch = collate([examples[i] for i in indices])
        tokens = batch.target_tokens
        optimizer.zero_grad(set_to_none=True)
        logits = model(batch.src, batch.tgt_in).reshape(-1, m.vocab_size)
        target = batch.tgt_out.reshape(-1)
        loss = F.cross_entropy(
            logits, target, ignore_index=m.pad_id, label_smoothing=t.label_smoothing, reduction="sum"
        )
        (loss / tokens).backward()
        nn.utils.clip_grad_norm_(model.parameters(), t.clip_norm)
        for group in optimizer.param_groups:
            group["lr"] = inverse_sqrt_lr(step, t.peak_lr, t.warmup_steps)
        optimizer.step()
        window_tokens += tokens
        if step % WINDOW == 0:
            now = time.monotonic()
            nll = F.cross_entropy(logits.detach(), target, ignore_index=m.pad_id, reduction="sum")
            result["step"].append(step)
            result["tokens_per_s"].append(window_tokens / (now - window_start))
            result["nll"].append(float(nll) / tokens)
            window_tokens, window_start = 0, time.monotonic()  # the NLL is outside the windows' time
    return result


def _child(kind: str, config_path: str, steps: int) -> None:
    if kind == "ours":
        result = run_ours(config_path, steps)
    elif kind == "ours-bf16":
        result = run_ours(config_path, steps, "bf16")
    else:
        result = run_baseline(config_path, steps, tuned=kind == "baseline-tuned")
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps per run (a multiple of 25)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "en-fr.toml"))
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=list(NAMES),
        default=["ours", "baseline", "baseline-tuned"],
        help="which runs (ours-bf16: ours under bfloat16 autocast, train.precision=bf16)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.config, args.steps)
        return
    print(
        f"$ python benchmarks/training_throughput.py --steps {args.steps} --config {args.config} "
        f"--runs {' '.join(args.runs)}"
    )
    runs = {}
    names = {kind: NAMES[kind] for kind in ["ours", *args.runs] if kind in args.runs or kind == "ours"}
    for kind in names:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--steps", str(args.steps), "--config", args.config],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"{kind} failed:\n{out.stderr[-3000:]}")
        runs[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    rates = {kind: statistics.median(run["tokens_per_s"][1:]) for kind, run in runs.items()}
    half = len(runs["ours"]["nll"]) // 2
    print("\n| run | target tokens/s (median of 25-step windows) | ours / this | mean NLL, 2nd half |")
    print("| --- | ---: | ---: | ---: |")
    for kind, name in names.items():
        mean_nll = statistics.mean(runs[kind]["nll"][half:])
        print(f"| {name} | {rates[kind]:,.0f} | {rates['ours'] / rates[kind]:.2f}x | {mean_nll:.3f} |")
    print("\nNLL per target token at step:")
    print("| step | " + " | ".join(names[k] for k in names) + " |")
    print("| ---: |" + " ---: |" * len(names))
    for i, step in enumerate(runs["ours"]["step"]):
        print(f"| {step} | " + " | ".join(f"{runs[k]['nll'][i]:.3f}" for k in names) + " |")
    baselines = [rates[kind] for kind in ("baseline", "baseline-tuned") if kind in rates]
    if baselines:
        verdict = "met" if rates["ours"] >= 1.3 * max(baselines) else "missed"
        print(f"\ntarget: ours >= 1.3x the best baseline: {rates['ours'] / max(baselines):.2f}x ({verdict})")


if __name__ == "__main__":
    main()
