"""Learning curves from ``metrics.jsonl``, drawn to PNG: loss, learning rate, validation BLEU."""

from __future__ import annotations

from pathlib import Path

from selfattention.training.metrics import read_metrics


def plot_curves(run_dir: Path, out: Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    train = [r for r in records if r.get("kind") == "train"]
    valid = [r for r in records if r.get("kind") == "valid"]
    figure, (ax_loss, ax_lr, ax_bleu) = plt.subplots(1, 3, figsize=(15, 4))
    ax_loss.plot([r["step"] for r in train], [r["nll"] for r in train], label="training NLL / token", linewidth=1)
    if valid:
        ax_loss.plot([r["step"] for r in valid], [r["nll"] for r in valid], "o-", label="validation NLL / token")
    ax_loss.set_xlabel("optimiser step")
    ax_loss.set_ylabel("nats per token")
    ax_loss.legend()
    ax_loss.set_title("Loss")
    ax_lr.plot([r["step"] for r in train], [r["lr"] for r in train])
    ax_lr.set_xlabel("optimiser step")
    ax_lr.set_title("Learning rate (warm-up, then 1/sqrt(step))")
    if valid:
        scored = [r for r in valid if "bleu" in r]  # runs without a scorer record NLL only
        ax_bleu.plot([r["step"] for r in scored], [r["bleu"] for r in scored], "o-")
    ax_bleu.set_xlabel("optimiser step")
    ax_bleu.set_title("Validation BLEU (greedy)")
    figure.tight_layout()
    out = out or run_dir / "curves.png"
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
