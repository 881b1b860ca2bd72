"""Training-step throughput of the bundled model's shape, with and without each speed-up.

    python benchmarks/training_step.py

Each variant runs in its own process (the allocator setting is process-wide): d_model 256,
5 + 3 layers, 8k vocabulary, a batch of 128 × 30 target tokens (5 of them padding per row),
2 threads; the median of 8 optimiser steps after one warm-up step. Prints a markdown table.
The last variant runs the linear layers' products on oneDNN (``selfattention/engine/onednn_linear.py``).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time

VARIANTS = [
    ("before: F.cross_entropy on every position, dropout inside the feed-forward", "full", None, False, False),
    ("one-pass loss on real positions", "real", None, False, False),
    ("+ no feed-forward dropout", "real", 0.0, False, False),
    ("+ allocator thresholds raised", "real", 0.0, True, False),
    ("+ linear layers on oneDNN", "real", 0.0, True, True),
]


def measure(loss_kind: str, activation_dropout: float | None, tune: bool, onednn: bool) -> float:
    """Target tokens/s of one variant, in this process."""
    import torch
    import torch.nn.functional as F

    from selfattention.config import ModelConfig
    from selfattention.engine.allocator import tune_allocator
    from selfattention.engine.onednn_linear import OneDNNLinears
    from selfattention.model import build_model
    from selfattention.training.loss import label_smoothed_loss

    if tune:
        tune_allocator()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    vocab, batch, src_len, tgt_len = 8000, 128, 28, 30
    src = torch.randint(4, vocab, (batch, src_len))
    tgt = torch.randint(4, vocab, (batch, tgt_len))
    src[:, -5:] = 0
    tgt[:, -5:] = 0
    config = ModelConfig(
        vocab_size=vocab, d_model=256, n_heads=4, d_ff=1024, encoder_layers=5, decoder_layers=3,
        dropout=0.2, attention_dropout=0.1, activation_dropout=activation_dropout,
    )  # fmt: skip
    model = build_model(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    real = tgt != 0

    def loss() -> torch.Tensor:
        with OneDNNLinears() if onednn else contextlib.nullcontext():
            return forward_loss()

    def forward_loss() -> torch.Tensor:
        if loss_kind == "full":
            logits = model(src, tgt).reshape(-1, vocab)
            return F.cross_entropy(logits, tgt.reshape(-1), ignore_index=0, label_smoothing=0.1, reduction="sum")
        return label_smoothed_loss(model(src, tgt, keep=real), tgt[real], 0, 0.1)[0]

    times = []
    for _ in range(9):
        started = time.perf_counter()
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return int(real.sum()) / statistics.median(times[1:])


def main() -> None:
    if len(sys.argv) == 2:  # a child: one variant, given as JSON
        loss_kind, activation_dropout, tune, onednn = json.loads(sys.argv[1])
        print(measure(loss_kind, activation_dropout, tune, onednn))
        return
    print("| variant | target tokens/s |")
    print("| --- | ---: |")
    for name, *settings in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, json.dumps(settings)], capture_output=True, text=True, check=True
        )
        print(f"| {name} | {float(out.stdout.strip()):,.0f} |")


if __name__ == "__main__":
    main()
