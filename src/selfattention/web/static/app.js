// Self-attention, step by step: the page's controller. Vanilla JavaScript modules, no build step.
//
// Every token comes from the user's text, so text is only ever set with textContent, never
// parsed as HTML.

import { api, showError } from "./api.js";
import { AttentionView } from "./attention-view.js";
import { compare } from "./context.js";
import { htmlElement } from "./dom.js";
import { renderExplanation } from "./explain.js";
import { compareSentences } from "./contrast.js";
import { HeadsView } from "./heads-view.js";
import { drawModelMap } from "./model-map.js";
import { Watcher } from "./watch.js";

const $ = (id) => document.getElementById(id);

const state = {
  model: null, // GET /api/model
  sentence: null, // {text, target, beam} of the last translation; the selectors redraw it
  attention: null, // the last /api/attention answer
  ticket: 0, // drops answers that arrive after a newer request
  explainOpen: false,
  view: null, // the AttentionView of section 2
  heads: null, // the HeadsView of section 4
  headsTicket: 0,
};

const PLACEHOLDER = "Translate a sentence to see its attention.";

const KIND_NOTES = {
  encoder: "Encoder self-attention: each English piece looks at every English piece, itself included.",
  decoder:
    "Decoder self-attention is masked. A row is the step that writes that French word; it may look only at " +
    "what the decoder has read so far (<s> and the words already written), never at the word it is writing or later ones.",
  cross:
    "Cross-attention: a row is the step that writes that French word, and shows the English it looked at while " +
    "writing it. With “all heads (mean)” this is the alignment of the translation with the English.",
};

// --- model and selectors -------------------------------------------------------------------------

async function loadModel() {
  try {
    const model = await api("/api/model");
    state.model = model;
    $("model-info").textContent =
      `Model: vectors of width d_model = ${model.d_model}; ${model.n_heads} heads per layer, each of width ` +
      `d_k = ${model.head_dim}; ${model.encoder_layers} encoder and ${model.decoder_layers} decoder layers; ` +
      `a vocabulary of ${model.vocab_size} subword pieces.`;
    nameLanguages(model);
    $("text").maxLength = model.max_chars;
    $("target").maxLength = model.max_chars;
    fillSelectors();
    drawMap();
  } catch (error) {
    $("model-info").textContent = `The model could not be loaded: ${error.message}`;
  }
}

const LANGUAGE_NAMES = { en: "English", fr: "French", de: "German", es: "Spanish", it: "Italian", pt: "Portuguese", nl: "Dutch", cs: "Czech", zh: "Chinese", ja: "Japanese" };

// The page names the model's languages: English and French for the bundled model.
function nameLanguages(model) {
  const name = (code) => LANGUAGE_NAMES[code] || code;
  for (const element of document.querySelectorAll(".source-name")) element.textContent = name(model.source_lang);
  for (const element of document.querySelectorAll(".target-name")) element.textContent = name(model.target_lang);
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
  $("kind-note").textContent = KIND_NOTES[kind];
}

// Section 8's map, the attention of section 2 highlighted; a click there selects it in section 2.
function drawMap() {
  if (!state.model) return;
  const chosen = selection();
  drawModelMap($("model-map"), state.model, { kind: chosen.kind, layer: chosen.layer }, (kind, layer) => {
    $("kind").value = kind;
    fillSelectors();
    $("layer").value = String(layer);
    drawMap();
    $("attention-title").scrollIntoView({ block: "start" });
    refresh({ keepPin: false });
  });
}

// Section 4: every layer and head of the kind shown in section 2.
async function refreshHeads() {
  if (!state.sentence) return;
  const ticket = ++state.headsTicket;
  try {
    const data = await api("/api/heads", { ...state.sentence, kind: $("kind").value });
    if (ticket !== state.headsTicket) return;
    state.heads.show(data);
  } catch (error) {
    if (ticket === state.headsTicket) showError($("error"), error.message);
  }
}

function selection() {
  const head = $("head").value;
  return { kind: $("kind").value, layer: Number($("layer").value), head: head === "mean" ? 0 : Number(head), mean: head === "mean" };
}

function setBusy(busy) {
  $("translate-button").disabled = busy;
  $("translate-button").textContent = busy ? "Translating…" : "Translate";
}

// Forget the last translation: nothing on screen may belong to a sentence that is not the one typed.
function clearResult() {
  state.sentence = null;
  state.attention = null;
  state.ticket += 1;
  $("translation").textContent = "";
  for (const id of ["lines", "heatmap"]) {
    $(id).replaceChildren();
    htmlElement("p", PLACEHOLDER, $(id), "placeholder");
  }
  $("explain").replaceChildren();
  for (const id of ["kind", "layer", "head", "explain-button", "heads-layer"]) $(id).disabled = true;
  for (const id of ["head-view", "model-view"]) {
    $(id).replaceChildren();
    htmlElement("p", "Translate a sentence to see every head.", $(id), "placeholder");
  }
  $("head-legend").replaceChildren();
}

// --- translate and draw --------------------------------------------------------------------------

async function translate(event) {
  event.preventDefault();
  if (!state.model) return;
  const text = $("text").value;
  if (!text.trim()) {
    clearResult();
    showError($("error"), "type a sentence first.");
    return;
  }
  state.sentence = { text, target: $("target").value.trim() || null, beam: Number($("beam").value) || 4 };
  setBusy(true);
  try {
    await refresh({ keepPin: false });
    await refreshHeads();
  } finally {
    setBusy(false);
  }
}

async function refresh({ keepPin = true } = {}) {
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
    draw(keepPin);
    drawMap();
    if (state.explainOpen) await explain();
  } catch (error) {
    if (ticket !== state.ticket) return;
    clearResult();
    showError($("error"), error.message);
  }
}

function draw(keepPin) {
  const data = state.attention;
  const chosen = selection();
  const where = `${data.kind} attention, layer ${data.layer}, ${chosen.mean ? "mean of all heads" : `head ${data.head}`}`;
  state.view.show(
    {
      rows: data.rows,
      columns: data.columns,
      weights: chosen.mean ? data.mean : data.weights,
      causal: data.causal,
      where,
      writes: data.kind !== "encoder",
    },
    { keepPin },
  );
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
    renderExplanation(out, data);
  } catch (error) {
    out.replaceChildren();
    htmlElement("p", `Sorry: ${error.message}`, out, "error");
  }
}

// --- start ---------------------------------------------------------------------------------------

function start() {
  state.view = new AttentionView($("lines"), $("heatmap"));
  state.heads = new HeadsView({
    legend: $("head-legend"),
    headView: $("head-view"),
    modelView: $("model-view"),
    layerSelect: $("heads-layer"),
    onOpen: (layer, head) => {
      $("layer").value = String(layer);
      $("head").value = String(head);
      $("attention-title").scrollIntoView({ block: "start" });
      refresh({ keepPin: false });
    },
  });
  const beam = () => Number($("beam").value) || 4;
  new Watcher(() => ({ text: $("text").value, beam: beam() }));
  $("contrast-form").addEventListener("submit", (event) => compareSentences(event, beam));
  $("translate-form").addEventListener("submit", translate);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("translate-form").requestSubmit();
    }
  });
  $("kind").addEventListener("change", () => {
    fillSelectors();
    refresh({ keepPin: false }); // another kind has other tokens: nothing stays selected
    refreshHeads();
  });
  $("layer").addEventListener("change", () => refresh());
  $("head").addEventListener("change", () => refresh());
  $("explain-button").addEventListener("click", explain);
  $("context-form").addEventListener("submit", compare);
  loadModel();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
