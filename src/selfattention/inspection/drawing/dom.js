// Small DOM helpers shared by the web page and the standalone HTML exports.
//
// Every label comes from the user's text, so text is only ever set with textContent, never parsed
// as HTML.

export const SVG_NS = "http://www.w3.org/2000/svg";

export function svgElement(tag, attributes, parent) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes || {})) element.setAttribute(name, String(value));
  if (parent) parent.appendChild(element);
  return element;
}

export function htmlElement(tag, text, parent, className) {
  const element = document.createElement(tag);
  if (text !== undefined && text !== null) element.textContent = text;
  if (className) element.className = className;
  if (parent) parent.appendChild(element);
  return element;
}

export function percent(weight) {
  const value = 100 * weight;
  if (value > 0 && value < 0.1) return "<0.1 %";
  return `${value >= 9.95 || value === 0 ? value.toFixed(0) : value.toFixed(1)} %`;
}

// White to the attention colour, by weight (square root, so small weights still show).
export function shade(weight) {
  const w = Math.max(0, Math.min(1, weight));
  const from = [255, 255, 255];
  const to = [31, 78, 156];
  const mix = from.map((c, i) => Math.round(c + (to[i] - c) * Math.sqrt(w)));
  return `rgb(${mix[0]}, ${mix[1]}, ${mix[2]})`;
}

// Approximate width of a label, to size a drawing before it is measured.
export function textWidth(labels, size) {
  const longest = labels.reduce((most, label) => Math.max(most, label.length), 0);
  return Math.ceil(longest * size * 0.62) + 8;
}

// Size an SVG to what was drawn in it (rotated and long labels included), with a margin.
export function fitToContents(svg, margin = 6) {
  let box;
  try {
    box = svg.getBBox();
  } catch (error) {
    return; // not rendered (e.g. display: none): keep the estimated size
  }
  if (!box || box.width === 0) return;
  const x = Math.floor(Math.min(0, box.x) - margin);
  const y = Math.floor(Math.min(0, box.y) - margin);
  const width = Math.ceil(Math.max(box.x + box.width, Number(svg.getAttribute("width"))) - x + margin);
  const height = Math.ceil(Math.max(box.y + box.height, Number(svg.getAttribute("height"))) - y + margin);
  svg.setAttribute("viewBox", `${x} ${y} ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
}
