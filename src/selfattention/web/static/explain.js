// Section 3: one head's four steps with its real numbers (POST /api/explain).

import { htmlElement, percent, shade } from "./dom.js";

export function renderExplanation(out, e) {
  out.replaceChildren();
  const s = e.shapes;
  htmlElement("h3", `Layer ${e.layer}, head ${e.head} of ${e.n_heads}: ${e.title}`, out);

  htmlElement("p", "The matrices and their sizes (rows × columns)", out, "step-title");
  const kvSource = e.kind === "cross" ? "the encoder's output" : "X";
  const bias = e.has_bias ? " + b" : ""; // as the model computes it, and as `selfattention explain` prints it
  const xNote =
    e.kind === "encoder"
      ? "one row per token: the layer's input"
      : "one row per decoder step; a row is named by the word that step writes and reads the word before it (<s> first)";
  const shapes = htmlElement("table", null, out, "shapes");
  const shapeRows = [
    ["X", `${s.T} × ${s.d_model}`, xNote],
    ["W_Q, W_K, W_V", `${s.d_model} × ${s.d_k}`, `this head's learned projections (d_k = ${s.d_k})`],
    [`Q = X·W_Q${bias}`, `${s.T} × ${s.d_k}`, "queries: what each word is looking for"],
    [`K = ${kvSource}·W_K${bias}`, `${s.S} × ${s.d_k}`, "keys: what each word offers to be matched"],
    [`V = ${kvSource}·W_V${bias}`, `${s.S} × ${s.d_k}`, "values: what each word passes on"],
  ];
  for (const [name, size, note] of shapeRows) {
    const tr = htmlElement("tr", null, shapes);
    htmlElement("code", name, htmlElement("td", null, tr));
    htmlElement("td", size, tr);
    htmlElement("td", note, tr);
  }

  const maskNote = e.causal
    ? " Grey cells are masked: a French word may not look at later words, so they get −∞ before the softmax and 0 % after it."
    : "";
  htmlElement("p", `Step 1: similarity scores Q·Kᵀ (${s.T} × ${s.S})`, out, "step-title");
  htmlElement("p", "Each query row is multiplied with each key: a large number means the two match well." + maskNote, out, "step-note");
  out.appendChild(matrix(e.scores, e.query_tokens, e.key_tokens, (v) => v.toFixed(2), e.causal));

  const root = Number.isInteger(e.sqrt_dk) ? String(e.sqrt_dk) : e.sqrt_dk.toFixed(4);
  htmlElement("p", `Step 2: divide by √d_k = √${e.d_k} = ${root}`, out, "step-title");
  htmlElement("p", "Scaling keeps the scores in a range where the softmax still spreads its attention (and its gradients stay useful).", out, "step-note");
  out.appendChild(matrix(e.scaled_scores, e.query_tokens, e.key_tokens, (v) => v.toFixed(2), e.causal));

  htmlElement("p", "Step 3: softmax along each row → attention weights in percent", out, "step-title");
  htmlElement("p", "Every row becomes positive numbers that add up to 100 %: how much of its attention each word gives each other word.", out, "step-note");
  out.appendChild(matrix(e.weights, e.query_tokens, e.key_tokens, percent, e.causal, true));

  const shown = e.output_columns < e.d_k ? ` (first ${e.output_columns} of ${e.d_k} columns)` : "";
  htmlElement("p", `Step 4: Z = weights · V (${s.T} × ${s.d_k})${shown}`, out, "step-title");
  htmlElement("p", "Each word's output is the mix of the value vectors, weighted by its row of percentages.", out, "step-note");
  const zColumns = Array.from({ length: e.output_columns }, (_, j) => `z${j}`);
  out.appendChild(matrix(e.output, e.query_tokens, zColumns, (v) => v.toFixed(2), false));

  // The rows in words, the strongest few of each, folded away: the table above has every number.
  const reading = htmlElement("details", null, out, "reading");
  htmlElement("summary", `Reading the rows: where each word looks most (${e.row_sentences.length} sentences)`, reading);
  const list = htmlElement("ul", null, reading, "sentences");
  for (const sentence of e.row_sentences) htmlElement("li", sentence, list);
}

function matrix(values, rows, columns, format, causal, weights = false) {
  const wrap = document.createElement("div");
  wrap.className = "matrix-wrap";
  const table = htmlElement("table", null, wrap, "matrix");
  const head = htmlElement("tr", null, htmlElement("thead", null, table));
  htmlElement("th", "", head);
  for (const column of columns) htmlElement("th", column, head).scope = "col";
  if (weights) htmlElement("th", "sum", head).scope = "col";
  const body = htmlElement("tbody", null, table);
  values.forEach((row, i) => {
    const tr = htmlElement("tr", null, body);
    htmlElement("th", rows[i], tr).scope = "row";
    row.forEach((value, j) => {
      const masked = causal && j > i;
      const td = htmlElement("td", masked && !weights ? "masked" : format(value), tr);
      if (masked) td.classList.add("masked");
      if (weights && !masked) {
        td.style.backgroundColor = shade(value);
        if (value > 0.35) td.classList.add("dark");
      }
    });
    if (weights) htmlElement("td", percent(row.reduce((a, b) => a + b, 0)), tr, "sum");
  });
  return wrap;
}
