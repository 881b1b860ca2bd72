"""One head's attention, step by step, as the seeds walk through it.

Takes the steps a :class:`TraceRecorder` collected and lays out, for one layer and one head,
what the seeds show: the shapes of X, Q, K and V; the score matrix Q·Kᵀ; its division by
sqrt(d_k); the softmax rows as percentages; Z; and one sentence per row saying where the word
looks. :func:`render_explanation` turns it into text with the tokens as row and column labels.

A long input (thousands of tokens) is shown through a window: ``max_tokens`` keeps the matrices to
their first rows and columns, and each row's sentence to its strongest keys (the row sums are
still those of the whole rows). The scores are computed for the chosen head only, from its Q and K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from selfattention.attention.core import scale_scores, similarity_scores
from selfattention.inspection.recorder import AttentionKind, AttentionStep

KIND_TITLES: dict[str, str] = {
    "encoder": "encoder self-attention",
    "decoder": "decoder (masked) self-attention",
    "cross": "cross-attention (decoder queries, encoder keys and values)",
}


@dataclass(frozen=True)
class HeadExplanation:
    """The numbers of one head, for one sentence, with the tokens that label them."""

    kind: AttentionKind
    layer: int
    head: int
    n_heads: int
    query_tokens: list[str]
    key_tokens: list[str]
    d_model: int
    d_k: int
    x: Tensor  # (T, D)
    q: Tensor  # (T, Dh)
    k: Tensor  # (S, Dh)
    v: Tensor  # (S, Dh)
    scores: Tensor  # (T, S)
    scaled_scores: Tensor  # (T, S)
    weights: Tensor  # (T, S)
    output: Tensor  # (T, Dh)
    has_bias: bool = True

    def row_sentence(self, row: int, max_keys: int | None = None) -> str:
        """Where one row looks, e.g. "'I' attends to itself 90 %, to 'am' 7 %, to 'good' 3 %.".

        A decoder row is named by the token its step writes: "Writing 'nourriture', it looks at
        'food' 95 %, ...". With more keys than ``max_keys``, the sentence names the ``max_keys``
        strongest and sums the rest.
        """
        weights = self.weights[row]
        if float(weights.sum()) == 0.0:
            return f"{self._who(row)} may attend to nothing here (masked), so its output is zero."
        if max_keys is not None and len(self.key_tokens) > max_keys:
            top = torch.topk(weights, max_keys)
            parts = [self._share(row, column, weight) for column, weight in zip(*top, strict=True)]
            rest = float(weights.sum()) - float(top.values.sum())
            others = len(self.key_tokens) - max_keys
            return (
                f"{self._who(row)} {self._verb()} most "
                + ", ".join(parts)
                + f"; the other {others:,} tokens share {_percent(rest)}."
            )
        parts = [self._share(row, column, weight) for column, weight in enumerate(weights)]
        lead = f"{self._who(row)} {self._verb()} " + ", ".join(parts) + "."
        if len(self.key_tokens) > 4:
            lead += f" Strongest: '{self.key_tokens[int(weights.argmax())]}'."
        return lead

    def _who(self, row: int) -> str:
        token = self.query_tokens[row]
        return f"'{token}'" if self.kind == "encoder" else f"Writing '{token}', the decoder"

    def _verb(self) -> str:
        return "attends" if self.kind == "encoder" else "looks"

    def _share(self, row: int, column: Tensor | int, weight: Tensor | float) -> str:
        column = int(column)
        preposition = "to" if self.kind == "encoder" else "at"
        target = "itself" if self.kind == "encoder" and column == row else f"'{self.key_tokens[column]}'"
        return f"{preposition} {target} {_percent(float(weight))}"


def explain_head(
    step: AttentionStep,
    head: int,
    query_tokens: list[str],
    key_tokens: list[str] | None = None,
    *,
    batch_index: int = 0,
    has_bias: bool = True,
) -> HeadExplanation:
    """Pick one head of one sentence out of a recorded attention call."""
    n_heads = step.q.shape[1]
    if not 0 <= head < n_heads:
        raise ValueError(f"head {head} does not exist: this layer has heads 0 to {n_heads - 1}")
    key_tokens = query_tokens if key_tokens is None else key_tokens
    t, s = step.weights.shape[-2:]
    if len(query_tokens) != t or len(key_tokens) != s:
        raise ValueError(
            f"{len(query_tokens)} query and {len(key_tokens)} key labels given for a {t} x {s} score matrix"
        )
    b = batch_index
    scores = similarity_scores(step.q[b, head], step.k[b, head])  # (T, S), this head's only
    return HeadExplanation(
        kind=step.kind,
        layer=step.layer,
        head=head,
        n_heads=n_heads,
        query_tokens=list(query_tokens),
        key_tokens=list(key_tokens),
        d_model=step.x.shape[-1],
        d_k=step.head_dim,
        x=step.x[b],
        q=step.q[b, head],
        k=step.k[b, head],
        v=step.v[b, head],
        scores=scores,
        scaled_scores=scale_scores(scores, step.head_dim),
        weights=step.weights[b, head],
        output=step.output[b, head],
        has_bias=has_bias,
    )


def render_explanation(explanation: HeadExplanation, *, max_columns: int = 8, max_tokens: int | None = None) -> str:
    """The steps as text, the tokens labelling rows and columns.

    ``max_tokens`` shows at most that many rows and columns of each matrix (all by default).
    """
    e = explanation
    t, s = len(e.query_tokens), len(e.key_tokens)
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    rows_shown = t if max_tokens is None else min(t, max_tokens)
    columns_shown = s if max_tokens is None else min(s, max_tokens)
    window = (rows_shown, columns_shown) != (t, s)
    shown = (slice(0, rows_shown), slice(0, columns_shown))
    row_labels, column_labels = e.query_tokens[:rows_shown], e.key_tokens[:columns_shown]
    window_note = f" (first {rows_shown} of {t} rows, {columns_shown} of {s} columns)" if window else ""
    sqrt_dk = math.sqrt(e.d_k)
    sqrt_text = f"{sqrt_dk:g}" if sqrt_dk.is_integer() else f"{sqrt_dk:.4f}"
    bias = " + b" if e.has_bias else ""
    source = "the decoder's input" if e.kind != "encoder" else "the encoder layer's input"
    kv_source = "the encoder's output" if e.kind == "cross" else "X"
    shapes = [
        ("X", f"{t} x {e.d_model}", f"one row per token ({source})" + _decoder_rows_note(e.kind)),
        ("W_Q, W_K, W_V", f"{e.d_model} x {e.d_k}", f"this head's learned projections (d_k = {e.d_k})"),
        (f"Q = X·W_Q{bias}", f"{t} x {e.d_k}", "what each word is looking for"),
        (f"K = {kv_source}·W_K{bias}", f"{s} x {e.d_k}", "what each word offers for matching"),
        (f"V = {kv_source}·W_V{bias}", f"{s} x {e.d_k}", "what each word passes on"),
    ]
    name_width = max(len(name) for name, _, _ in shapes)
    shape_width = max(len(shape) for _, shape, _ in shapes)
    lines = [
        f"Layer {e.layer}, head {e.head} of {e.n_heads}: {KIND_TITLES[e.kind]}",
        "",
        "Shapes",
        *(f"  {name.ljust(name_width)}  {shape.ljust(shape_width)}  {note}" for name, shape, note in shapes),
        "",
        f"Step 1: similarity scores Q·Kᵀ ({t} x {s}); row = query word, column = key word{window_note}",
        *_matrix(e.scores[shown], row_labels, column_labels, _number),
        "",
        f"Step 2: divide by sqrt(d_k) = sqrt({e.d_k}) = {sqrt_text}, which keeps the softmax's gradients stable",
        *_matrix(e.scaled_scores[shown], row_labels, column_labels, _number),
        "",
        "Step 3: softmax along each row: attention weights in percent, each row sums to 100 %"
        + (" (the sums are of whole rows)" if window else ""),
        *_matrix(e.weights[shown], row_labels, column_labels, _percent, row_sums=e.weights[:rows_shown].sum(dim=-1)),
        "",
        f"Step 4: Z = weights·V ({t} x {e.d_k}): each row is the weighted sum of the value vectors"
        + (f" (first {max_columns} of {e.d_k} columns)" if e.d_k > max_columns else "")
        + (f" (first {rows_shown} of {t} rows)" if rows_shown < t else ""),
        *_matrix(
            e.output[:rows_shown, :max_columns], row_labels, [f"z{j}" for j in range(min(e.d_k, max_columns))], _number
        ),
        "",
        "Reading the rows" + (f" (the first {rows_shown} of {t})" if rows_shown < t else ""),
        *(f"  {e.row_sentence(row, max_tokens)}" for row in range(rows_shown)),
    ]
    return "\n".join(lines)


def _decoder_rows_note(kind: AttentionKind) -> str:
    if kind == "encoder":
        return ""
    return "; a row is named by the token its step writes, and reads the token before it (<s> first)"


def _number(value: float) -> str:
    return f"{value:.2f}"


def _percent(value: float) -> str:
    return f"{100.0 * value:.0f} %" if abs(100.0 * value - round(100.0 * value)) < 0.05 else f"{100.0 * value:.1f} %"


def _matrix(
    values: Tensor, rows: list[str], columns: list[str], fmt: object, row_sums: Tensor | None = None
) -> list[str]:
    formatter = fmt if callable(fmt) else _number
    cells = [[formatter(v) for v in row] for row in values.tolist()]
    header = list(columns) + (["sum"] if row_sums is not None else [])
    if row_sums is not None:
        for cells_row, total in zip(cells, row_sums.tolist(), strict=True):
            cells_row.append(formatter(total))
    label_width = max((len(r) for r in rows), default=0)
    widths = [max(len(h), *(len(c[j]) for c in cells)) if cells else len(h) for j, h in enumerate(header)]
    out = ["  " + " " * label_width + "  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    for label, cells_row in zip(rows, cells, strict=True):
        out.append(
            "  "
            + label.ljust(label_width)
            + "  "
            + "  ".join(c.rjust(w) for c, w in zip(cells_row, widths, strict=True))
        )
    return out
