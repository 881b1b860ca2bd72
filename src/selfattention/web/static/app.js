// Self-attention, step by step: the page's behaviour. Vanilla JavaScript, no build step.
//
// Every token comes from the user's text, so text is only ever set with textContent, never
// parsed as HTML.

"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  model: null, // GET /api/model
  sentence: null, // {text, target, beam} of the last translation; the selectors redraw it
  attention: null, // the last /api/attention answer
  pinned: null, // the query row picked by a click, or null for all lines
  ticket: 0, // drops answers that arrive after a newer request
  explainOpen: false,
};

const $ = (id) => document.getElementById(id);

// --- talking to the API ------------------------------------------------------------------------

async function api(path, body) {
  const options =
    body === undefined
      ? {}
      : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("the server cannot be reached; is `selfattention serve` still running?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `the server answered ${response.status}`;
    throw new Error(detail);
  }
  return data;
}

function showError(element, message) {
  element.textContent = message ? `Sorry: ${message}` : "";
  element.hidden = !message;
}

// --- small DOM helpers ---------------------------------------------------------------------------

function svgElement(tag, attributes, parent) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes || {})) element.setAttribute(name, String(value));
  if (parent) parent.appendChild(element);
  return element;
}

function htmlElement(tag, text, parent, className) {
  const element = document.createElement(tag);
  if (text !== undefined && text !== null) element.textContent = text;
  if (className) element.className = className;
  if (parent) parent.appendChild(element);
  return element;
}

function percent(weight) {
  const value = 100 * weight;
  if (value > 0 && value < 0.1) return "<0.1 %";
  return `${value >= 9.95 || value === 0 ? value.toFixed(0) : value.toFixed(1)} %`;
}

// White to the attention colour, by weight.
function shade(weight) {
  const w = Math.max(0, Math.min(1, weight));
  const from = [255, 255, 255];
  const to = [31, 78, 156];
  const mix = from.map((c, i) => Math.round(c + (to[i] - c) * Math.sqrt(w)));
  return `rgb(${mix[0]}, ${mix[1]}, ${mix[2]})`;
}

// Approximate width of a label in the 14px system font, to size the drawings.
function textWidth(labels, size) {
  const longest = labels.reduce((most, label) => Math.max(most, label.length), 0);
  return Math.ceil(longest * size * 0.62) + 8;
}

// --- model and selectors -------------------------------------------------------------------------

async function loadModel() {
  try {
    const model = await api("/api/model");
    state.model = model;
    $("model-info").textContent =
      `Model: vectors of width d_model = ${model.d_model}; ${model.n_heads} heads per layer, each of width ` +
      `d_k = ${model.head_dim}; ${model.encoder_layers} encoder and ${model.decoder_layers} decoder layers; ` +
      `a vocabulary of ${model.vocab_size} subword pieces.`;
    $("text").maxLength = model.max_chars;
    $("target").maxLength = model.max_chars;
    fillSelectors();
  } catch (error) {
    $("model-info").textContent = `The model could not be loaded: ${error.message}`;
  }
}

function layerCount(kind) {
  return kind === "encoder" ? state.model.encoder_layers : state.model.decoder_layers;
}

function fillSelectors() {
  const kind = $("kind").value;
  const layer = $("layer");
  const previous = layer.value === "" ? null : Number(layer.value);
  const layers = layerCount(kind);
  layer.replaceChildren();
  for (let i = 0; i < layers; i += 1) {
    const option = htmlElement("option", `${i}${i === 0 ? " (first)" : ""}${i === layers - 1 && i > 0 ? " (last)" : ""}`, layer);
    option.value = String(i);
  }
  layer.value = String(previous !== null && previous < layers ? previous : layers - 1);

  const head = $("head");
  if (head.options.length === 0) {
    for (let h = 0; h < state.model.n_heads; h += 1) htmlElement("option", String(h), head).value = String(h);
    htmlElement("option", "all heads (mean)", head).value = "mean";
    head.value = "0";
  }
  $("kind-note").textContent = {
    encoder: "Encoder self-attention: each English piece looks at every English piece, itself included.",
    decoder:
      "Decoder self-attention is masked: each French piece may look only at itself and the pieces before it, " +
      "because when the model writes a word it has not written the next ones yet.",
    cross: "Cross-attention: each French piece looks at the English sentence, which is how the translation follows the source.",
  }[kind];
}

function selection() {
  const head = $("head").value;
  return { kind: $("kind").value, layer: Number($("layer").value), head: head === "mean" ? 0 : Number(head), mean: head === "mean" };
}

function setBusy(busy) {
  $("translate-button").disabled = busy;
  $("translate-button").textContent = busy ? "Translating…" : "Translate";
}

// --- translate and draw --------------------------------------------------------------------------

async function translate(event) {
  event.preventDefault();
  if (!state.model) return;
  const text = $("text").value;
  if (!text.trim()) {
    showError($("error"), "type an English sentence first.");
    return;
  }
  state.sentence = { text, target: $("target").value.trim() || null, beam: Number($("beam").value) || 4 };
  state.pinned = null;
  setBusy(true);
  try {
    await refresh();
  } finally {
    setBusy(false);
  }
}

async function refresh() {
  if (!state.sentence) return;
  const ticket = ++state.ticket;
  const chosen = selection();
  showError($("error"), null);
  try {
    const data = await api("/api/attention", { ...state.sentence, kind: chosen.kind, layer: chosen.layer, head: chosen.head });
    if (ticket !== state.ticket) return;
    state.attention = data;
    $("translation").textContent = data.translation || "(the model wrote nothing)";
    for (const id of ["kind", "layer", "head", "explain-button"]) $(id).disabled = false;
    if (state.pinned !== null && state.pinned >= data.rows.length) state.pinned = null;
    draw();
    if (state.explainOpen) await explain();
  } catch (error) {
    if (ticket === state.ticket) showError($("error"), error.message);
  }
}

function shownWeights() {
  return selection().mean ? state.attention.mean : state.attention.weights;
}

function draw() {
  const data = state.attention;
  const weights = shownWeights();
  const chosen = selection();
  const where = `${data.kind} attention, layer ${data.layer}, ${chosen.mean ? "mean of all heads" : `head ${data.head}`}`;
  drawLines(data.rows, data.columns, weights, where);
  drawHeatmap(data.rows, data.columns, weights, data.causal, where);
  focusQuery(state.pinned);
}

function drawLines(rows, columns, weights, where) {
  const container = $("lines");
  container.replaceChildren();
  const rowHeight = 26;
  const top = 34;
  const leftWidth = Math.max(130, textWidth(rows, 14));
  const rightWidth = Math.max(70, textWidth(columns, 14));
  const gap = 260;
  const shareWidth = 56;
  const width = leftWidth + gap + rightWidth + shareWidth;
  const tallest = Math.max(rows.length, columns.length);
  const height = top + tallest * rowHeight + 6;
  const leftX = leftWidth;
  const rightX = leftWidth + gap;
  const leftTop = top + ((tallest - rows.length) * rowHeight) / 2;
  const rightTop = top + ((tallest - columns.length) * rowHeight) / 2;
  const yLeft = (i) => leftTop + i * rowHeight + rowHeight / 2;
  const yRight = (j) => rightTop + j * rowHeight + rowHeight / 2;

  const svg = svgElement("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `Attention lines, ${where}`,
  }, container);
  svgElement("text", { x: 4, y: 16, class: "column-title" }, svg).textContent = "looking (queries)";
  svgElement("text", { x: rightX, y: 16, class: "column-title" }, svg).textContent = "looked at (keys)";

  const lines = svgElement("g", {}, svg);
  rows.forEach((row, i) => {
    columns.forEach((column, j) => {
      const w = weights[i][j];
      const line = svgElement("line", {
        x1: leftX + 8,
        y1: yLeft(i),
        x2: rightX - 8,
        y2: yRight(j),
        class: "attn-line",
        "data-query": i,
        "data-key": j,
        "data-weight": w.toFixed(6),
        "stroke-width": (0.5 + 7.5 * w).toFixed(2),
        "stroke-opacity": w > 0 ? (0.08 + 0.92 * w).toFixed(3) : 0,
      }, lines);
      svgElement("title", {}, line).textContent = `'${row}' → '${column}': ${percent(w)}`;
    });
  });

  rows.forEach((row, i) => {
    const token = svgElement("text", {
      x: leftX,
      y: yLeft(i) + 5,
      "text-anchor": "end",
      class: "token query",
      "data-index": i,
      tabindex: 0,
      role: "button",
      "aria-pressed": "false",
      "aria-label": `show only the lines of '${row}'`,
    }, svg);
    token.textContent = row;
    token.addEventListener("mouseenter", () => focusQuery(i));
    token.addEventListener("mouseleave", () => focusQuery(state.pinned));
    token.addEventListener("focus", () => focusQuery(i));
    token.addEventListener("blur", () => focusQuery(state.pinned));
    token.addEventListener("click", () => pin(i));
    token.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        pin(i);
      }
    });
  });
  columns.forEach((column, j) => {
    svgElement("text", { x: rightX, y: yRight(j) + 5, class: "token key", "data-index": j }, svg).textContent = column;
    svgElement("text", { x: width - 4, y: yRight(j) + 5, "text-anchor": "end", class: "share", "data-index": j }, svg);
  });
}

function pin(i) {
  state.pinned = state.pinned === i ? null : i;
  focusQuery(state.pinned);
}

// Show only the lines of query row i (all lines when i is null), with their percentages.
function focusQuery(i) {
  const container = $("lines");
  for (const line of container.querySelectorAll(".attn-line")) {
    line.classList.toggle("hidden", i !== null && Number(line.dataset.query) !== i);
  }
  for (const token of container.querySelectorAll(".token.query")) {
    const active = i !== null && Number(token.dataset.index) === i;
    token.classList.toggle("active", active);
    token.setAttribute("aria-pressed", String(active && state.pinned === i));
  }
  const weights = state.attention ? shownWeights() : null;
  let strongest = -1;
  if (i !== null && weights) strongest = weights[i].indexOf(Math.max(...weights[i]));
  for (const share of container.querySelectorAll(".share")) {
    const j = Number(share.dataset.index);
    share.textContent = i !== null && weights ? percent(weights[i][j]) : "";
  }
  for (const key of container.querySelectorAll(".token.key")) {
    key.classList.toggle("strong", Number(key.dataset.index) === strongest);
  }
}

function drawHeatmap(rows, columns, weights, causal, where) {
  const container = $("heatmap");
  container.replaceChildren();
  const cell = Math.max(16, Math.min(40, Math.floor(420 / Math.max(columns.length, 1))));
  const left = Math.max(60, textWidth(rows, 13));
  const top = Math.max(50, textWidth(columns, 12) * 0.75 + 14);
  const legend = 34;
  const width = left + columns.length * cell + Math.ceil(top * 0.65);  // room for the last slanted label
  const height = top + rows.length * cell + legend + 10;
  const svg = svgElement("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `Attention heatmap, ${where}`,
  }, container);

  columns.forEach((column, j) => {
    const x = left + j * cell + cell / 2;
    svgElement("text", {
      x,
      y: top - 6,
      transform: `rotate(-50 ${x} ${top - 6})`,
      class: "token",
      "font-size": 12,
    }, svg).textContent = column;
  });
  rows.forEach((row, i) => {
    const label = svgElement("text", {
      x: left - 6,
      y: top + i * cell + cell / 2 + 4,
      "text-anchor": "end",
      class: "token row-label",
      "font-size": 13,
    }, svg);
    label.textContent = row;
    label.addEventListener("click", () => pin(i));
    columns.forEach((column, j) => {
      const w = weights[i][j];
      const masked = causal && j > i;
      const rect = svgElement("rect", {
        x: left + j * cell,
        y: top + i * cell,
        width: cell,
        height: cell,
        class: masked ? "cell masked" : "cell",
        "data-weight": w.toFixed(6),
        "data-query": i,
        "data-key": j,
      }, svg);
      if (!masked) rect.setAttribute("fill", shade(w));
      const note = masked ? "masked: the decoder may not look ahead" : percent(w);
      svgElement("title", {}, rect).textContent = `'${row}' → '${column}': ${note}`;
      if (cell >= 28 && !masked) {
        svgElement("text", {
          x: left + j * cell + cell / 2,
          y: top + i * cell + cell / 2 + 3,
          "text-anchor": "middle",
          class: "cell-text",
          fill: w > 0.35 ? "#fff" : "#1d2330",
        }, svg).textContent = Math.round(100 * w);
      }
    });
  });

  // Legend: 0 % to 100 %.
  const y = top + rows.length * cell + 14;
  const steps = 10;
  const barWidth = Math.min(200, columns.length * cell);
  for (let k = 0; k < steps; k += 1) {
    svgElement("rect", { x: left + (k * barWidth) / steps, y, width: barWidth / steps + 0.5, height: 10, fill: shade((k + 0.5) / steps) }, svg);
  }
  svgElement("text", { x: left, y: y + 24, class: "share" }, svg).textContent = "0 %";
  svgElement("text", { x: left + barWidth, y: y + 24, "text-anchor": "end", class: "share" }, svg).textContent = "100 %";
  if (cell >= 28) {
    svgElement("text", { x: left + barWidth + 10, y: y + 9, class: "share" }, svg).textContent = "numbers in cells: percent";
  }
}

// --- step by step --------------------------------------------------------------------------------

async function explain() {
  const out = $("explain");
  state.explainOpen = true;
  $("explain-button").textContent = "Update the steps";
  const chosen = selection();
  if (chosen.mean) {
    out.replaceChildren();
    htmlElement("p", "The mean of all heads has no steps of its own: choose one head above.", out, "note");
    return;
  }
  const ticket = state.ticket;
  try {
    const data = await api("/api/explain", { ...state.sentence, kind: chosen.kind, layer: chosen.layer, head: chosen.head });
    if (ticket !== state.ticket) return;
    renderExplanation(data);
  } catch (error) {
    out.replaceChildren();
    htmlElement("p", `Sorry: ${error.message}`, out, "error");
  }
}

function renderExplanation(e) {
  const out = $("explain");
  out.replaceChildren();
  const s = e.shapes;
  htmlElement("h3", `Layer ${e.layer}, head ${e.head} of ${e.n_heads}: ${e.title}`, out);

  htmlElement("p", "The matrices and their sizes (rows × columns)", out, "step-title");
  const kvSource = e.kind === "cross" ? "the encoder's output" : "X";
  const bias = e.has_bias ? " + b" : "";  // as the model computes it, and as `selfattention explain` prints it
  const shapes = htmlElement("table", null, out, "shapes");
  const shapeRows = [
    ["X", `${s.T} × ${s.d_model}`, e.kind === "encoder" ? "one row per token: the layer's input" : "one row per French token: the decoder layer's input"],
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

  htmlElement("p", "Reading the rows", out, "step-title");
  const list = htmlElement("ul", null, out, "sentences");
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

// --- context -------------------------------------------------------------------------------------

async function compare(event) {
  event.preventDefault();
  const out = $("context-result");
  const error = $("context-error");
  const button = $("context-button");
  showError(error, null);
  button.disabled = true;
  button.textContent = "Comparing…";
  try {
    const data = await api("/api/context", {
      sentences: [$("context-a").value, $("context-b").value],
      word: $("context-word").value,
    });
    renderContext(data);
  } catch (problem) {
    out.replaceChildren();
    showError(error, problem.message);
  } finally {
    button.disabled = false;
    button.textContent = "Compare";
  }
}

function renderContext(data) {
  const out = $("context-result");
  out.replaceChildren();
  const n = data.found.length;
  const pairs = [];
  for (let a = 0; a < n; a += 1) for (let b = a + 1; b < n; b += 1) pairs.push([a, b]);
  const table = htmlElement("table", null, out, "similarity");
  table.id = "context-table";
  htmlElement("caption", `Cosine similarity of '${data.word}' between the sentences, after each layer`, table);
  const head = htmlElement("tr", null, htmlElement("thead", null, table));
  htmlElement("th", "after", head);
  for (const [a, b] of pairs) {
    htmlElement("th", n > 2 ? `sentences ${a + 1} and ${b + 1}` : "similarity", head);
    htmlElement("th", "", head);
  }
  const body = htmlElement("tbody", null, table);
  data.layer_names.forEach((name, layer) => {
    const tr = htmlElement("tr", null, body);
    htmlElement("th", name === "embedding" ? "the embedding (no context yet)" : name, tr);
    for (const [a, b] of pairs) {
      const value = data.similarity[layer][a][b];
      htmlElement("td", value.toFixed(3), tr, "value");
      const track = htmlElement("span", null, htmlElement("td", null, tr), "bar-track");
      const bar = htmlElement("span", null, track, "bar");
      bar.style.width = `${Math.round(160 * Math.max(0, value))}px`;
    }
  });
  const list = htmlElement("ul", null, out, "pieces");
  data.found.forEach((word, i) => {
    const near = data.neighbours[i].slice(0, 6).map((x) => `${x.piece} (${x.cosine.toFixed(2)})`).join(", ");
    htmlElement(
      "li",
      `Sentence ${i + 1}: '${word}' is made of the pieces ${data.pieces[i].join(" ")}. ` +
        `Nearest vocabulary pieces to its last-layer vector: ${near}.`,
      list,
    );
  });
}

// --- start ---------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("translate-form").addEventListener("submit", translate);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("translate-form").requestSubmit();
    }
  });
  $("kind").addEventListener("change", () => {
    state.pinned = null; // another kind has other tokens
    fillSelectors();
    refresh();
  });
  $("layer").addEventListener("change", refresh);
  $("head").addEventListener("change", refresh);
  $("explain-button").addEventListener("click", explain);
  $("context-form").addEventListener("submit", compare);
  loadModel();
});
