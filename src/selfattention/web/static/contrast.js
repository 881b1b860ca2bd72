// Section 6: why "il" and not "elle" (POST /api/contrast).

import { api, showError } from "./api.js";
import { htmlElement, percent } from "./dom.js";

const $ = (id) => document.getElementById(id);
const HEADS_SHOWN = 6;

export async function compareSentences(event, beam) {
  event.preventDefault();
  const out = $("contrast-result");
  const error = $("contrast-error");
  const button = $("contrast-button");
  showError(error, null);
  const antecedents = $("contrast-antecedents").value.split(/[,;]| and /).map((w) => w.trim()).filter(Boolean);
  button.disabled = true;
  button.textContent = "Translating both…";
  try {
    const data = await api("/api/contrast", {
      sentences: [$("contrast-a").value, $("contrast-b").value],
      pronoun: $("contrast-pronoun").value,
      antecedents: antecedents.length ? antecedents : null,
      beam: beam(),
    });
    render(out, data);
  } catch (problem) {
    out.replaceChildren();
    showError(error, problem.message);
  } finally {
    button.disabled = false;
    button.textContent = "Compare the two";
  }
}

function render(out, data) {
  out.replaceChildren();
  const pairs = htmlElement("div", null, out, "contrast-pairs");
  data.sentences.forEach((sentence, i) => {
    const card = htmlElement("div", null, pairs, "contrast-pair");
    htmlElement("p", `${i + 1}. ${sentence}`, card, "source-sentence");
    htmlElement("p", `→ ${data.translations[i]}`, card, "translation-line");
    const step = data.steps[i];
    if (step.index === null) {
      htmlElement("p", `The translation writes none of ${data.choices.join(", ")}.`, card, "note");
      return;
    }
    htmlElement("p", `Step ${step.index + 1} writes '${step.written}'. How likely each was there:`, card, "note");
    const list = htmlElement("ol", null, card, "bars");
    for (const choice of data.choices) {
      const p = step.probabilities[choice] ?? 0;
      const li = htmlElement("li", null, list, choice === step.written ? "chosen" : "");
      li.dataset.choice = choice;
      htmlElement("span", choice, li, "bar-label");
      htmlElement("span", null, htmlElement("span", null, li, "bar-track"), "bar").style.width = `${Math.round(100 * p)}%`;
      htmlElement("span", percent(p), li, "bar-value");
    }
  });
  const [a, b] = data.antecedents;
  htmlElement(
    "h3",
    `Heads whose attention from '${data.pronoun}' moves most between '${a}' and '${b}'`,
    out,
  );
  const table = htmlElement("table", null, out, "shifts");
  table.id = "contrast-heads";
  const head = htmlElement("tr", null, htmlElement("thead", null, table));
  for (const title of ["layer", "head", `to '${a}': 1 → 2`, `to '${b}': 1 → 2`, "shift"]) htmlElement("th", title, head).scope = "col";
  const body = htmlElement("tbody", null, table);
  for (const h of data.heads.slice(0, HEADS_SHOWN)) {
    const tr = htmlElement("tr", null, body);
    htmlElement("td", String(h.layer), tr);
    htmlElement("td", String(h.head), tr);
    htmlElement("td", `${percent(h.first[0])} → ${percent(h.second[0])}`, tr);
    htmlElement("td", `${percent(h.first[1])} → ${percent(h.second[1])}`, tr);
    htmlElement("td", `${h.shift >= 0 ? "+" : "−"}${(100 * Math.abs(h.shift)).toFixed(1)} points`, tr, "number");
  }
  htmlElement(
    "p",
    `shift = (to '${a}' − to '${b}' in sentence 1) − (the same in sentence 2): positive when the head looks more ` +
      `at '${a}' in sentence 1 than in sentence 2. A model that resolves '${data.pronoun}' has heads with large shifts.`,
    out,
    "note",
  );
}
