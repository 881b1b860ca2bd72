// Section 4: one word's vector in several sentences, layer by layer (POST /api/context).

import { api, showError } from "./api.js";
import { htmlElement } from "./dom.js";

const $ = (id) => document.getElementById(id);

export async function compare(event) {
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
    renderContext(out, data);
  } catch (problem) {
    out.replaceChildren();
    showError(error, problem.message);
  } finally {
    button.disabled = false;
    button.textContent = "Compare";
  }
}

function renderContext(out, data) {
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
    htmlElement("th", name === "embedding" ? "the embedding and position (no context yet)" : `encoder ${name}`, tr);
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
    const pieces = data.pieces[i];
    htmlElement("li", `Sentence ${i + 1}: '${word}' is ${pieces.length === 1 ? "the piece" : "the pieces"} ${pieces.join(" ")}, at position ${data.positions[i]}.`, list);
  });
  htmlElement("p", contextReading(data), out, "note context-reading");
}

// What the first row says: the same start, or different starts and why.
function contextReading(data) {
  const samePieces = data.pieces.every((p) => p.join(" ") === data.pieces[0].join(" "));
  const samePlace = data.positions.every((p) => p === data.positions[0]);
  const first = data.similarity[0][0][1];
  const last = data.similarity[data.similarity.length - 1][0][1];
  if (samePieces && samePlace) {
    return `Same pieces at the same position: the word starts as the same vector (${first.toFixed(2)}), ` +
      `and the encoder's layers pull it apart by context, to ${last.toFixed(2)} after the last layer.`;
  }
  const why = samePieces
    ? "the same pieces at different positions (each position adds its own signal)"
    : "different pieces, so different embeddings";
  return `These start apart (${first.toFixed(2)}): ${why}. For context alone, compare a word that is the same ` +
    "piece at the same position in both sentences.";
}
