// Section 4: every head at once. The head view draws one layer's heads over each other, each in
// its own colour (as bertviz's head view does); the model view draws a small heatmap for every
// layer and head, and a click on one opens it in section 2.

import { htmlElement, percent, shade, svgElement, textWidth, fitToContents } from "./dom.js";

// Tableau's ten colours, then darker ones: one per head.
export const HEAD_COLOURS = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
  "#1f3b5a", "#8c4a0b", "#7a1f22", "#2f5d59", "#2a5a24", "#7d6a12",
];

export class HeadsView {
  constructor({ legend, headView, modelView, layerSelect, onOpen }) {
    this.legend = legend;
    this.headView = headView;
    this.modelView = modelView;
    this.layerSelect = layerSelect;
    this.onOpen = onOpen; // (layer, head) => void
    this.data = null;
    this.hidden = new Set(); // heads switched off in the head view
    this.focused = null;
    layerSelect.addEventListener("change", () => this.drawHeadView());
  }

  show(data) {
    this.data = data;
    const layers = data.weights.length;
    const previous = this.layerSelect.value === "" ? layers - 1 : Math.min(Number(this.layerSelect.value), layers - 1);
    this.layerSelect.replaceChildren();
    for (let i = 0; i < layers; i += 1) htmlElement("option", String(i), this.layerSelect).value = String(i);
    this.layerSelect.value = String(previous);
    this.layerSelect.disabled = false;
    this.drawLegend();
    this.drawHeadView();
    this.drawModelView();
  }

  drawLegend() {
    this.legend.replaceChildren();
    const heads = this.data.weights[0].length;
    for (let h = 0; h < heads; h += 1) {
      const button = htmlElement("button", `head ${h}`, this.legend, "head-chip");
      button.type = "button";
      button.style.setProperty("--chip", HEAD_COLOURS[h % HEAD_COLOURS.length]);
      button.setAttribute("aria-pressed", String(!this.hidden.has(h)));
      button.dataset.head = String(h);
      button.addEventListener("click", () => {
        if (this.hidden.has(h)) this.hidden.delete(h);
        else this.hidden.add(h);
        button.setAttribute("aria-pressed", String(!this.hidden.has(h)));
        this.applyFocus();
      });
    }
  }

  drawHeadView() {
    if (!this.data) return;
    const { rows, columns } = this.data;
    const layer = Number(this.layerSelect.value);
    const heads = this.data.weights[layer];
    const container = this.headView;
    container.replaceChildren();
    const rowHeight = 24;
    const top = 30;
    const leftWidth = Math.max(110, textWidth(rows, 14));
    const gap = 240;
    const width = leftWidth + gap + Math.max(80, textWidth(columns, 14));
    const tallest = Math.max(rows.length, columns.length);
    const height = top + tallest * rowHeight + 8;
    const y = (i) => top + i * rowHeight + rowHeight / 2;
    const svg = svgElement("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": `Head view: ${this.data.kind} attention, layer ${layer}, ${heads.length} heads in colour`,
      "font-size": 14,
    }, container);
    const lines = svgElement("g", {}, svg);
    heads.forEach((weights, h) => {
      const colour = HEAD_COLOURS[h % HEAD_COLOURS.length];
      weights.forEach((row, i) => {
        row.forEach((w, j) => {
          if (w < 0.02) return; // a head's faint lines would hide the others
          const line = svgElement("line", {
            x1: leftWidth + 8,
            y1: y(i),
            x2: leftWidth + gap - 8,
            y2: y(j),
            stroke: colour,
            "stroke-width": (0.5 + 5 * w).toFixed(2),
            "stroke-opacity": (0.15 + 0.75 * w).toFixed(3),
            class: "head-line",
            "data-head": h,
            "data-query": i,
            "data-key": j,
          }, lines);
          svgElement("title", {}, line).textContent = `head ${h}: '${rows[i]}' → '${columns[j]}' ${percent(w)}`;
        });
      });
    });
    rows.forEach((row, i) => {
      const token = svgElement("text", {
        x: leftWidth,
        y: y(i) + 5,
        "text-anchor": "end",
        class: "token query",
        tabindex: 0,
        "data-index": i,
        "aria-label": `show every head's lines from '${row}'`,
      }, svg);
      token.textContent = row;
      token.addEventListener("mouseenter", () => this.focus(i));
      token.addEventListener("focus", () => this.focus(i));
      token.addEventListener("mouseleave", () => this.focus(null));
      token.addEventListener("blur", () => this.focus(null));
    });
    columns.forEach((column, j) => {
      svgElement("text", { x: leftWidth + gap, y: y(j) + 5, class: "token key", "data-index": j }, svg).textContent = column;
    });
    fitToContents(svg);
    this.applyFocus();
  }

  focus(i) {
    this.focused = i;
    this.applyFocus();
  }

  applyFocus() {
    for (const line of this.headView.querySelectorAll(".head-line")) {
      const off = this.hidden.has(Number(line.dataset.head));
      const other = this.focused !== null && Number(line.dataset.query) !== this.focused;
      line.classList.toggle("hidden", off || other);
    }
    for (const token of this.headView.querySelectorAll(".token.query")) {
      token.classList.toggle("active", Number(token.dataset.index) === this.focused);
    }
  }

  drawModelView() {
    const { weights, rows, columns, causal } = this.data;
    const container = this.modelView;
    container.replaceChildren();
    const size = 84;
    const cell = size / Math.max(rows.length, columns.length);
    const table = htmlElement("table", null, container, "thumbnails");
    const head = htmlElement("tr", null, htmlElement("thead", null, table));
    htmlElement("th", "", head);
    weights[0].forEach((_, h) => (htmlElement("th", `head ${h}`, head).scope = "col"));
    const body = htmlElement("tbody", null, table);
    weights.forEach((layerWeights, layer) => {
      const tr = htmlElement("tr", null, body);
      htmlElement("th", `layer ${layer}`, tr).scope = "row";
      layerWeights.forEach((matrix, h) => {
        const button = htmlElement("button", null, htmlElement("td", null, tr), "thumbnail");
        button.type = "button";
        button.dataset.layer = String(layer);
        button.dataset.head = String(h);
        button.setAttribute("aria-label", `open layer ${layer}, head ${h} in section 2`);
        button.title = `layer ${layer}, head ${h}: click to open`;
        const svg = svgElement("svg", { viewBox: `0 0 ${size} ${size}`, width: size, height: size, "aria-hidden": "true" }, button);
        matrix.forEach((row, i) => {
          row.forEach((w, j) => {
            const masked = causal && j > i;
            svgElement("rect", {
              x: j * cell,
              y: i * cell,
              width: cell + 0.2,
              height: cell + 0.2,
              fill: masked ? "#eceef2" : shade(w),
            }, svg);
          });
        });
        button.addEventListener("click", () => this.onOpen(layer, h));
      });
    });
  }
}
