"""Standalone HTML pages that draw attention as the web page does: hover a word to see its lines.

The page's own drawing code (``drawing/dom.js`` and ``drawing/attention-view.js``, which the web
page loads as modules) is inlined with the weights as JSON, so the file opens with no server and
no network, and behaves like the page: pointing at a query word shows only its lines with their
percentages, a click keeps them, and the heatmap and legends are the page's.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from torch import Tensor

DRAWING_DIR = Path(__file__).resolve().parent / "drawing"
SCRIPTS = ("dom.js", "attention-view.js")  # in dependency order
_IMPORT = re.compile(r"^import .*? from \"\./[\w-]+\.js\";\n", re.MULTILINE)
_EXPORT = re.compile(r"^export ", re.MULTILINE)

_BOOT = """
const data = JSON.parse(document.getElementById("attention-data").textContent);
new AttentionView(document.getElementById("lines"), document.getElementById("heatmap")).show(data);
"""

_PAGE_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#1d2330}"
    "figure{margin:0 0 2em}figcaption{color:#444;margin:.5em 0}"
    ".drawing svg{display:block;max-width:100%;height:auto}"
)


def inline_script() -> str:
    """The drawing modules as one script: their imports of each other and ``export`` removed."""
    parts = []
    for name in SCRIPTS:
        source = (DRAWING_DIR / name).read_text(encoding="utf-8")
        parts.append(_EXPORT.sub("", _IMPORT.sub("", source)))
    return "\n".join(parts)


def attention_page(
    weights: Tensor,
    rows: list[str],
    columns: list[str],
    *,
    title: str,
    caption: str = "",
    causal: bool = False,
    writes: bool = False,
) -> str:
    """One ``(T, S)`` matrix of attention weights as a standalone, interactive HTML page.

    ``causal`` greys the cells above the diagonal (decoder self-attention); ``writes`` says that a
    row is named by the token a decoder step writes.
    """
    t, s = weights.shape
    if len(rows) != t or len(columns) != s:
        raise ValueError(f"{len(rows)} row and {len(columns)} column labels for a {t} x {s} matrix")
    data = {
        "rows": rows,
        "columns": columns,
        "weights": [[round(float(v), 6) for v in row] for row in weights.float().cpu().tolist()],
        "causal": causal,
        "writes": writes,
        "where": title,
    }
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")  # never ends the <script> early
    css = (DRAWING_DIR / "drawing.css").read_text(encoding="utf-8")
    script = inline_script().replace("</script", "<\\/script")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_CSS}\n{css}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(caption)}</p>"
        "<figure><figcaption>Lines: point at (or click) a word on the left to see only its lines and their "
        'percentages.</figcaption><div id="lines" class="drawing"></div></figure>'
        "<figure><figcaption>Heatmap: one row per query, one column per key; hover a cell for its weight."
        '</figcaption><div id="heatmap" class="drawing"></div></figure>'
        f'<script type="application/json" id="attention-data">{payload}</script>'
        f'<script type="module">\n{script}\n{_BOOT}</script>'
        "</body></html>\n"
    )
