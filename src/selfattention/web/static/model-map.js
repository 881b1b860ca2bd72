// Section 8: the seeds' figure of the Transformer as a clickable diagram, with the model's shapes.
// The attention shown in section 2 is highlighted; clicking an attention box shows it there.

import { fitToContents, svgElement } from "./dom.js";

const BOX_W = 340;
const BOX_H = 26;
const GAP = 6;

export function drawModelMap(container, model, current, onSelect) {
  container.replaceChildren();
  const encoderBoxes = 2;
  const decoderBoxes = 3;
  const layerHeight = (n) => n * (BOX_H + GAP) + 18;
  const encoderHeight = model.encoder_layers * layerHeight(encoderBoxes);
  const decoderHeight = model.decoder_layers * layerHeight(decoderBoxes);
  const top = 70;
  const height = top + Math.max(encoderHeight, decoderHeight) + 90;
  const leftX = 20;
  const rightX = leftX + BOX_W + 60;
  const width = rightX + BOX_W + 20;
  const svg = svgElement("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `A map of the model: ${model.encoder_layers} encoder and ${model.decoder_layers} decoder layers`,
    class: "model-map",
  }, container);

  const title = (x, y, text) => (svgElement("text", { x, y, class: "map-title" }, svg).textContent = text);
  title(leftX, 20, `Encoder: ${model.encoder_layers} layers`);
  title(rightX, 20, `Decoder: ${model.decoder_layers} layers`);
  const dk = `${model.n_heads} heads, d_k = ${model.head_dim}`;
  svgElement("text", { x: leftX, y: 40, class: "map-note" }, svg).textContent =
    `English pieces → embeddings + positions (d_model = ${model.d_model})`;
  svgElement("text", { x: rightX, y: 40, class: "map-note" }, svg).textContent = "French so far → embeddings + positions";

  // Layer 0 at the top: the data flows down the page.
  const box = (x, y, label, kind, layer) => {
    const attention = kind !== null;
    const g = svgElement("g", { class: attention ? "map-box attention" : "map-box", "data-kind": kind || "", "data-layer": layer }, svg);
    svgElement("rect", { x, y, width: BOX_W, height: BOX_H, rx: 5 }, g);
    svgElement("text", { x: x + 8, y: y + 17 }, g).textContent = label;
    if (attention) {
      g.setAttribute("tabindex", "0");
      g.setAttribute("role", "button");
      g.setAttribute("aria-label", `show ${kind} attention, layer ${layer}`);
      const pick = () => onSelect(kind, layer);
      g.addEventListener("click", pick);
      g.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          pick();
        }
      });
      if (current && current.kind === kind && current.layer === layer) g.classList.add("current");
    }
    return g;
  };
  const stack = (x, layers, parts) => {
    const per = layerHeight(parts.length);
    for (let layer = 0; layer < layers; layer += 1) {
      const y0 = top + layer * per + 16;
      svgElement("text", { x, y: y0 - 4, class: "map-layer" }, svg).textContent = `layer ${layer}`;
      parts.forEach(([label, kind], k) => box(x, y0 + k * (BOX_H + GAP), label, kind, layer));
    }
  };
  stack(leftX, model.encoder_layers, [
    [`self-attention (${dk})`, "encoder"],
    [`feed-forward (${model.d_model} → ${model.d_ff} → ${model.d_model})`, null],
  ]);
  stack(rightX, model.decoder_layers, [
    [`masked self-attention (${dk})`, "decoder"],
    [`cross-attention to the encoder (${dk})`, "cross"],
    [`feed-forward (${model.d_model} → ${model.d_ff} → ${model.d_model})`, null],
  ]);
  // The encoder's output feeds every decoder layer's cross-attention; the decoder's, the softmax.
  const endY = top + Math.max(encoderHeight, decoderHeight) + 20;
  svgElement("text", { x: leftX, y: top + encoderHeight + 20, class: "map-note" }, svg).textContent =
    "→ the encoder's output: the keys and values of every cross-attention";
  svgElement("text", { x: rightX, y: top + decoderHeight + 20, class: "map-note" }, svg).textContent =
    `→ linear + softmax over ${model.vocab_size} pieces: the next French piece`;
  svgElement("text", { x: leftX, y: endY + 30, class: "map-note" }, svg).textContent =
    "Each sublayer adds its output to its input (a residual connection) and normalises the sum.";
  fitToContents(svg);
}
