// One head's attention drawn two ways, as the page and the standalone HTML export show it: the
// seeds' lines (query words on the left, key words on the right) and a heatmap, each with its
// legend. Pointing at a query word shows only its lines and their percentages; a click (or Enter)
// keeps them until the word is clicked again.

import { fitToContents, percent, shade, svgElement, textWidth } from "./dom.js";

export const FAINT = 0.05; // with every row shown, lines under this weight are hidden

// Where the pointer last was. A drawing that appears under a still pointer gets a "mouseenter" at
// that same spot; it is not the user pointing at a word, and must not select one.
const pointer = { x: null, y: null };
document.addEventListener("mousemove", (event) => { // whole pixels, as "mouseenter" reports them
  pointer.x = event.clientX;
  pointer.y = event.clientY;
});

export class AttentionView {
  constructor(linesContainer, heatmapContainer) {
    this.linesContainer = linesContainer;
    this.heatmapContainer = heatmapContainer;
    this.data = null;
    this.pinned = null;
    this.drawnUnder = null;
  }

  // data: {rows, columns, weights, causal, where, writes}; `writes` when a row is named by the
  // token a decoder step writes.
  show(data, { keepPin = false } = {}) {
    this.data = data;
    if (!keepPin || this.pinned === null || this.pinned >= data.rows.length) this.pinned = null;
    this.drawnUnder = { ...pointer };
    if (this.linesContainer) this.drawLines();
    if (this.heatmapContainer) this.drawHeatmap();
    this.focus(this.pinned);
  }

  movedSinceDrawn(event) {
    const under = this.drawnUnder;
    return under === null || under.x === null || event.clientX !== under.x || event.clientY !== under.y;
  }

  pin(i) {
    this.pinned = this.pinned === i ? null : i;
    this.focus(this.pinned);
  }

  // Show only the lines of query row i (all lines when i is null), with their percentages.
  focus(i) {
    const container = this.linesContainer;
    if (!container || !this.data) return;
    for (const line of container.querySelectorAll(".attn-line")) {
      const own = Number(line.dataset.query) === i;
      line.classList.toggle("hidden", i !== null && !own);
      const faint = Number(line.dataset.weight) < FAINT && line.dataset.strongest !== "true";
      line.classList.toggle("faint", i === null && faint);
    }
    for (const token of container.querySelectorAll(".token.query")) {
      const active = i !== null && Number(token.dataset.index) === i;
      token.classList.toggle("active", active);
      token.setAttribute("aria-pressed", String(active && this.pinned === i));
    }
    const weights = this.data.weights;
    const strongest = i === null ? -1 : weights[i].indexOf(Math.max(...weights[i]));
    for (const share of container.querySelectorAll(".share")) {
      share.textContent = i === null ? "" : percent(weights[i][Number(share.dataset.index)]);
    }
    for (const key of container.querySelectorAll(".token.key")) {
      key.classList.toggle("strong", Number(key.dataset.index) === strongest);
    }
    for (const label of (this.heatmapContainer || container).querySelectorAll(".row-label")) {
      label.classList.toggle("active", Number(label.dataset.index) === i);
    }
  }

  drawLines() {
    const { rows, columns, weights, where, writes } = this.data;
    const container = this.linesContainer;
    container.replaceChildren();
    const long = Math.max(rows.length, columns.length) > 24;
    const rowHeight = long ? 20 : 26;
    const fontSize = long ? 12 : 14;
    const top = 34;
    const leftWidth = Math.max(130, textWidth(rows, fontSize));
    const rightWidth = Math.max(70, textWidth(columns, fontSize));
    const gap = 260;
    const shareWidth = 56;
    const width = leftWidth + gap + rightWidth + shareWidth;
    const tallest = Math.max(rows.length, columns.length);
    const legendTop = top + tallest * rowHeight + 14;
    const height = legendTop + 40;
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
      "font-size": fontSize,
    }, container);
    svgElement("text", { x: 4, y: 16, class: "column-title" }, svg).textContent =
      writes ? "writing (queries)" : "looking (queries)";
    svgElement("text", { x: rightX, y: 16, class: "column-title" }, svg).textContent = "looked at (keys)";

    const lines = svgElement("g", {}, svg);
    rows.forEach((row, i) => {
      const strongest = weights[i].indexOf(Math.max(...weights[i]));
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
          "data-strongest": String(j === strongest),
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
      token.addEventListener("mouseenter", (event) => {
        if (this.movedSinceDrawn(event)) this.focus(i);
      });
      token.addEventListener("mouseleave", () => this.focus(this.pinned));
      token.addEventListener("focus", () => this.focus(i));
      token.addEventListener("blur", () => this.focus(this.pinned));
      token.addEventListener("click", () => this.pin(i));
      token.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          this.pin(i);
        }
      });
    });
    columns.forEach((column, j) => {
      svgElement("text", { x: rightX, y: yRight(j) + 5, class: "token key", "data-index": j }, svg).textContent = column;
      svgElement("text", { x: width - 4, y: yRight(j) + 5, "text-anchor": "end", class: "share", "data-index": j }, svg);
    });

    // Legend: what a line's thickness means, and which lines are hidden.
    const legend = svgElement("g", { class: "legend", "aria-label": "legend" }, svg);
    [0.1, 0.5, 1.0].forEach((w, k) => {
      const x = 4 + k * 120;
      svgElement("line", {
        x1: x,
        y1: legendTop,
        x2: x + 44,
        y2: legendTop,
        class: "legend-line",
        "stroke-width": (0.5 + 7.5 * w).toFixed(2),
        "stroke-opacity": (0.08 + 0.92 * w).toFixed(3),
      }, legend);
      svgElement("text", { x: x + 50, y: legendTop + 4, class: "legend-label" }, legend).textContent = percent(w);
    });
    svgElement("text", { x: 4, y: legendTop + 26, class: "legend-label" }, legend).textContent =
      `Lines under ${percent(FAINT)} (except each word's strongest) are hidden until you point at their word.`;
    fitToContents(svg);
  }

  drawHeatmap() {
    const { rows, columns, weights, causal, where, writes } = this.data;
    const container = this.heatmapContainer;
    container.replaceChildren();
    const cell = Math.max(14, Math.min(40, Math.floor(420 / Math.max(columns.length, rows.length, 1))));
    const rowFont = cell < 18 ? 11 : 13;
    const left = Math.max(60, textWidth(rows, rowFont));
    const top = Math.max(50, textWidth(columns, 12) * 0.8 + 14);
    const width = left + columns.length * cell + 40;
    const legendTop = top + rows.length * cell + 16;
    const height = legendTop + 40;
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
        class: "token column-label",
        "font-size": 12,
      }, svg).textContent = column;
    });
    rows.forEach((row, i) => {
      const label = svgElement("text", {
        x: left - 6,
        y: top + i * cell + cell / 2 + 4,
        "text-anchor": "end",
        class: "token row-label",
        "data-index": i,
        "font-size": rowFont,
      }, svg);
      label.textContent = row;
      label.addEventListener("click", () => this.pin(i));
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
        const verb = writes ? "writing" : "";
        svgElement("title", {}, rect).textContent = `${verb ? `${verb} ` : ""}'${row}' → '${column}': ${note}`;
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

    // Colour bar: 0 % to 100 %.
    const steps = 10;
    const barWidth = 200;
    const bar = svgElement("g", { class: "colour-bar", "aria-label": "colour bar: attention weight from 0 % to 100 %" }, svg);
    for (let k = 0; k < steps; k += 1) {
      svgElement("rect", { x: left + (k * barWidth) / steps, y: legendTop, width: barWidth / steps + 0.5, height: 10, fill: shade((k + 0.5) / steps) }, bar);
    }
    svgElement("text", { x: left, y: legendTop + 24, class: "legend-label" }, bar).textContent = "0 %";
    svgElement("text", { x: left + barWidth, y: legendTop + 24, "text-anchor": "end", class: "legend-label" }, bar).textContent = "100 %";
    svgElement("text", { x: left + barWidth + 10, y: legendTop + 9, class: "legend-label" }, bar).textContent =
      cell >= 28 ? "attention weight (numbers in cells: percent)" : "attention weight";
    fitToContents(svg);
  }
}
