"""Pictures of attention, drawn with matplotlib: the seeds' line view, heatmaps, grids.

Every function returns a matplotlib ``Figure``; :func:`save_figure` writes it as PNG, SVG, or a
standalone HTML page (the SVG inline: it opens with no network). Lines and cells carry ids
(``line-i-j``, ``cell-i-j``) in SVG and HTML output, so a drawing can be checked by machine.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor

LINE_COLOUR = "#1f5fa8"
HIGHLIGHT_COLOUR = "#d1495b"
FORMATS = (".png", ".svg", ".html")
_NO_METADATA: dict[str, None] = {"Creator": None, "Date": None, "Format": None, "Type": None}  # no URLs in the SVG


def line_view(
    weights: Tensor,
    query_labels: list[str],
    key_labels: list[str],
    *,
    highlight: int | None = None,
    title: str = "",
    min_weight: float = 0.01,
) -> Figure:
    """Tokens in two columns, one line per (query, key) pair, thickness and opacity by weight.

    With ``highlight``, only that query token's lines are drawn (the seeds' "it" joined to every
    other word); otherwise every query's lines are drawn. ``weights`` is ``(T, S)``.
    """
    t, s = weights.shape
    height = max(t, s) * 0.32 + 1.2
    figure, ax = plt.subplots(figsize=(5.2, height))
    ax.set_xlim(-0.9, 1.9)
    ax.set_ylim(-max(t, s) + 0.5, 1.0)
    ax.axis("off")
    rows = range(t) if highlight is None else [highlight]
    peak = float(weights[list(rows)].max()) if t and s else 1.0
    for i in rows:
        for j in range(s):
            weight = float(weights[i, j])
            if weight < min_weight:
                continue
            strength = weight / peak if peak > 0 else 0.0
            (line,) = ax.plot(
                [0.05, 0.95],
                [-i, -j],
                color=HIGHLIGHT_COLOUR if highlight is not None else LINE_COLOUR,
                linewidth=0.5 + 6.0 * strength,
                alpha=0.15 + 0.85 * strength,
                solid_capstyle="round",
            )
            line.set_gid(f"line-{i}-{j}")
            line.set_label(f"{query_labels[i]} → {key_labels[j]}: {weight:.1%}")
    for i, label in enumerate(query_labels):
        chosen = highlight == i
        ax.text(
            0.0,
            -i,
            label,
            ha="right",
            va="center",
            fontsize=10,
            fontweight="bold" if chosen else "normal",
            color=HIGHLIGHT_COLOUR if chosen else "black",
        )
    for j, label in enumerate(key_labels):
        ax.text(1.0, -j, label, ha="left", va="center", fontsize=10)
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def heatmap(
    weights: Tensor,
    query_labels: list[str],
    key_labels: list[str],
    *,
    title: str = "",
    ax: plt.Axes | None = None,
    annotate: bool | None = None,
) -> Figure:
    """Weights as a matrix: rows are queries, columns keys, tokens on both axes."""
    t, s = weights.shape
    own = ax is None
    if ax is None:
        figure, ax = plt.subplots(figsize=(max(3.0, 0.45 * s + 1.8), max(2.5, 0.4 * t + 1.4)))
    else:
        figure = ax.figure  # type: ignore[assignment]
    image = ax.imshow(
        weights.float().cpu().numpy(), cmap="Blues", vmin=0.0, vmax=max(float(weights.max()), 1e-9), aspect="auto"
    )
    image.set_gid("heatmap")
    ax.set_xticks(range(s), key_labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(t), query_labels, fontsize=8)
    ax.set_title(title, fontsize=9)
    if annotate if annotate is not None else (own and t * s <= 400):
        for i in range(t):
            for j in range(s):
                value = float(weights[i, j])
                text = ax.text(
                    j,
                    i,
                    f"{100 * value:.0f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if value > 0.5 * float(weights.max()) else "black",
                )
                text.set_gid(f"cell-{i}-{j}")
    if own:
        figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
        figure.tight_layout()
    return figure


def grid(
    all_weights: Tensor,
    query_labels: list[str],
    key_labels: list[str],
    *,
    title: str = "",
    layers: list[int] | None = None,
    heads: list[int] | None = None,
) -> Figure:
    """One small heatmap per layer and head; ``all_weights`` is ``(L, H, T, S)``."""
    layers = list(range(all_weights.shape[0])) if layers is None else layers
    heads = list(range(all_weights.shape[1])) if heads is None else heads
    t, s = all_weights.shape[-2:]
    cell = 0.22 * max(t, s) + 1.2
    figure, axes = plt.subplots(len(layers), len(heads), figsize=(cell * len(heads), cell * len(layers)), squeeze=False)
    for r, layer in enumerate(layers):
        for c, head in enumerate(heads):
            ax = axes[r][c]
            heatmap(
                all_weights[layer, head],
                query_labels,
                key_labels,
                ax=ax,
                title=f"layer {layer}, head {head}",
                annotate=False,
            )
            if c:
                ax.set_yticks([])
            if r != len(layers) - 1:
                ax.set_xticks([])
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: Path | str, *, title: str = "", caption: str = "") -> Path:
    """Write PNG, SVG or standalone HTML, chosen by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unsupported picture format {suffix or '(none)'}; use .png, .svg or .html")
    if suffix == ".png":
        figure.savefig(path, dpi=110, bbox_inches="tight")
    elif suffix == ".svg":
        figure.savefig(path, format="svg", bbox_inches="tight", metadata=_NO_METADATA)
    else:
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata=_NO_METADATA)
        svg = buffer.getvalue()
        svg = svg[svg.index("<svg") :]
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title or 'attention')}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
            "figcaption{color:#444;margin-top:.5em}svg{max-width:100%;height:auto}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"
            "</body></html>\n"
        )
        path.write_text(page, encoding="utf-8")
    plt.close(figure)
    return path


def context_plot(report: object) -> Figure:
    """Cosine similarity of a word's vectors across sentences, by layer (a ContextReport)."""
    from selfattention.inspection.context import ContextReport

    assert isinstance(report, ContextReport)
    n = len(report.words)
    figure, ax = plt.subplots(figsize=(7, 4))
    for a in range(n):
        for b in range(a + 1, n):
            values = [float(report.similarity[layer, a, b]) for layer in range(len(report.layer_names))]
            (line,) = ax.plot(
                report.layer_names, values, "o-", label=f"{report.words[a].sentence!r} vs {report.words[b].sentence!r}"
            )
            line.set_gid(f"pair-{a}-{b}")
    ax.set_ylabel("cosine similarity")
    ax.set_ylim(min(0.0, float(report.similarity.min())), 1.02)
    ax.set_title(f"'{report.words[0].word}' through the encoder")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
