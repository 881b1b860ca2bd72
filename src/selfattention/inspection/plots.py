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
FAINT = 0.05  # with every row drawn, lines under this weight are left out (as on the web page)
_NO_METADATA: dict[str, None] = {"Creator": None, "Date": None, "Format": None, "Type": None}  # no URLs in the SVG


def line_view(
    weights: Tensor,
    query_labels: list[str],
    key_labels: list[str],
    *,
    highlight: int | None = None,
    title: str = "",
    min_weight: float = FAINT,
) -> Figure:
    """Tokens in two columns, one line per (query, key) pair, thickness and opacity by weight.

    With ``highlight``, only that query token's lines are drawn (the seeds' "it" joined to every
    other word); otherwise every query's lines of at least ``min_weight`` are drawn, and each row's
    strongest line whatever its weight. A legend gives the thickness of 10 %, 50 % and 100 %.
    ``weights`` is ``(T, S)``.
    """
    t, s = weights.shape
    tallest = max(t, s)
    font = 10 if tallest <= 24 else max(6, 10 - (tallest - 24) // 6)
    step = 0.32 if tallest <= 24 else 0.26
    figure, ax = plt.subplots(figsize=(5.6, tallest * step + 1.8))
    ax.set_xlim(-0.9, 1.9)
    ax.set_ylim(-tallest - 1.3, 1.0)
    ax.axis("off")
    rows = range(t) if highlight is None else [highlight]
    colour = HIGHLIGHT_COLOUR if highlight is not None else LINE_COLOUR
    for i in rows:
        strongest = int(weights[i].argmax()) if s else -1
        for j in range(s):
            weight = float(weights[i, j])
            if weight < min_weight and not (highlight is None and j == strongest and weight > 0):
                continue
            width, alpha = _line_style(weight)
            (line,) = ax.plot(
                [0.05, 0.95], [-i, -j], color=colour, solid_capstyle="round", linewidth=width, alpha=alpha
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
            fontsize=font,
            fontweight="bold" if chosen else "normal",
            color=HIGHLIGHT_COLOUR if chosen else "black",
        )
    for j, label in enumerate(key_labels):
        ax.text(1.0, -j, label, ha="left", va="center", fontsize=font)
    # Legend: the thickness of three weights, and what is left out.
    legend_y = -tallest - 0.4
    for k, weight in enumerate((0.1, 0.5, 1.0)):
        x = -0.6 + 0.85 * k
        width, alpha = _line_style(weight)
        (sample,) = ax.plot([x, x + 0.3], [legend_y, legend_y], color=colour, linewidth=width, alpha=alpha)
        sample.set_gid(f"legend-{k}")
        ax.text(x + 0.35, legend_y, f"{weight:.0%}", va="center", fontsize=8)
    left_out = "" if highlight is not None else f"; lines under {min_weight:.0%} are left out, but each row's strongest"
    ax.text(-0.6, legend_y - 0.8, f"line thickness = attention weight{left_out}", va="center", fontsize=7, color="#444")
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def _line_style(weight: float) -> tuple[float, float]:
    """Line width and opacity by weight, as the web page draws them."""
    return 0.5 + 6.0 * weight, 0.1 + 0.9 * weight


def heatmap(
    weights: Tensor,
    query_labels: list[str],
    key_labels: list[str],
    *,
    title: str = "",
    ax: plt.Axes | None = None,
    annotate: bool | None = None,
    vmax: float | None = None,
) -> Figure:
    """Weights as a matrix: rows are queries, columns keys, tokens on both axes.

    The colour scale runs from 0 to ``vmax`` (default: the largest weight); a figure of its own
    gets a colour bar.
    """
    t, s = weights.shape
    own = ax is None
    if ax is None:
        figure, ax = plt.subplots(figsize=(max(3.0, 0.45 * s + 1.8), max(2.5, 0.4 * t + 1.4)))
    else:
        figure = ax.figure  # type: ignore[assignment]
    top = max(float(weights.max()), 1e-9) if vmax is None else vmax
    image = ax.imshow(weights.float().cpu().numpy(), cmap="Blues", vmin=0.0, vmax=top, aspect="auto")
    image.set_gid("heatmap")
    font = 8 if max(t, s) <= 24 else 6
    ax.set_xticks(range(s), key_labels, rotation=60, ha="right", fontsize=font)
    ax.set_yticks(range(t), query_labels, fontsize=font)
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
    """One small heatmap per layer and head, on one colour scale with one colour bar.

    ``all_weights`` is ``(L, H, T, S)``.
    """
    layers = list(range(all_weights.shape[0])) if layers is None else layers
    heads = list(range(all_weights.shape[1])) if heads is None else heads
    t, s = all_weights.shape[-2:]
    cell = 0.22 * max(t, s) + 1.2
    figure, axes = plt.subplots(
        len(layers), len(heads), figsize=(cell * len(heads) + 1.2, cell * len(layers)), squeeze=False
    )
    shown = all_weights[layers][:, heads]
    top = max(float(shown.max()), 1e-9)
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
                vmax=top,
            )
            if c:
                ax.set_yticks([])
            if r != len(layers) - 1:
                ax.set_xticks([])
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    image = axes[0][0].images[0]
    figure.colorbar(image, ax=axes, fraction=0.03, pad=0.02, label="attention weight")
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
