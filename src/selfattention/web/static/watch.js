// Section 5: watch it translate. POST /api/watch gives every step of the decoding; the controls
// move through them, and Play steps on its own.

import { api, showError } from "./api.js";
import { htmlElement, percent, shade } from "./dom.js";

const $ = (id) => document.getElementById(id);
const PLAY_MS = 1100;

export class Watcher {
  constructor(sentence) {
    this.sentence = sentence; // () => {text, beam}
    this.data = null;
    this.step = 0;
    this.timer = null;
    $("watch-button").addEventListener("click", () => this.load());
    $("watch-first").addEventListener("click", () => this.go(0));
    $("watch-previous").addEventListener("click", () => this.go(this.step - 1));
    $("watch-next").addEventListener("click", () => this.go(this.step + 1));
    $("watch-play").addEventListener("click", () => this.togglePlay());
    $("watch-step").addEventListener("input", (event) => this.go(Number(event.target.value)));
    $("watch-layer").addEventListener("change", () => this.render());
  }

  async load() {
    const { text, beam } = this.sentence();
    const button = $("watch-button");
    showError($("watch-error"), null);
    this.stop();
    if (!text.trim()) {
      this.data = null;
      $("watch").hidden = true;
      showError($("watch-error"), "type a sentence in section 1 first.");
      return;
    }
    button.disabled = true;
    button.textContent = "Translating…";
    try {
      this.data = await api("/api/watch", { text, beam, top: 5 });
      const layers = this.data.steps[0].cross.length;
      const select = $("watch-layer");
      select.replaceChildren();
      for (let i = 0; i < layers; i += 1) htmlElement("option", `${i}${i === layers - 1 ? " (last)" : ""}`, select).value = String(i);
      select.value = String(layers - 1);
      $("watch-step").max = String(this.data.steps.length - 1);
      $("watch-step-count").textContent = String(this.data.steps.length);
      $("watch").hidden = false;
      this.go(0);
    } catch (error) {
      this.data = null;
      $("watch").hidden = true;
      showError($("watch-error"), error.message);
    } finally {
      button.disabled = false;
      button.textContent = "Watch the sentence above being translated";
    }
  }

  go(step) {
    if (!this.data) return;
    this.step = Math.max(0, Math.min(this.data.steps.length - 1, step));
    if (this.step === this.data.steps.length - 1) this.stop();
    this.render();
  }

  togglePlay() {
    if (this.timer !== null) {
      this.stop();
      return;
    }
    if (this.step === this.data.steps.length - 1) this.go(0);
    $("watch-play").textContent = "Pause";
    $("watch-play").setAttribute("aria-label", "pause");
    this.timer = setInterval(() => this.go(this.step + 1), PLAY_MS);
  }

  stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    $("watch-play").textContent = "Play";
    $("watch-play").setAttribute("aria-label", "play");
  }

  render() {
    const data = this.data;
    const step = data.steps[this.step];
    $("watch-step").value = String(this.step);
    $("watch-step-number").textContent = String(this.step + 1);

    // The French so far, the piece written at this step in bold.
    const written = $("watch-written");
    written.replaceChildren();
    htmlElement("span", "Written so far: ", written, "muted");
    data.steps.slice(0, this.step).forEach((s) => htmlElement("span", s.writes, written, "piece"));
    htmlElement("span", step.writes, written, "piece current");
    htmlElement("span", ` (reads '${step.reads}', writes '${step.writes}' with ${percent(step.probability)})`, written, "muted");

    const top = $("watch-top");
    top.replaceChildren();
    for (const candidate of step.top) {
      const li = htmlElement("li", null, top, candidate.piece === step.writes ? "chosen" : "");
      htmlElement("span", candidate.piece, li, "bar-label");
      const track = htmlElement("span", null, li, "bar-track");
      htmlElement("span", null, track, "bar").style.width = `${Math.round(100 * candidate.probability)}%`;
      htmlElement("span", percent(candidate.probability), li, "bar-value");
    }

    const layer = Number($("watch-layer").value);
    const heads = step.cross[layer];
    const mean = data.source_tokens.map((_, j) => heads.reduce((sum, row) => sum + row[j], 0) / heads.length);
    const source = $("watch-source");
    source.replaceChildren();
    data.source_tokens.forEach((token, j) => {
      const span = htmlElement("span", token, source, "source-piece");
      span.style.backgroundColor = shade(mean[j]);
      if (mean[j] > 0.35) span.classList.add("dark");
      span.title = `${percent(mean[j])} of this step's attention`;
      span.dataset.weight = mean[j].toFixed(6);
    });

    const beam = $("watch-beam");
    beam.replaceChildren();
    const head = htmlElement("tr", null, htmlElement("thead", null, beam));
    for (const title of ["", "hypothesis", "log-probability"]) htmlElement("th", title, head).scope = "col";
    const body = htmlElement("tbody", null, beam);
    if (step.beam.length === 0 && step.ended.length === 0) {
      htmlElement("td", "The search had stopped before this step.", htmlElement("tr", null, body)).colSpan = 3;
    }
    step.beam.forEach((h, rank) => {
      const tr = htmlElement("tr", null, body);
      htmlElement("td", String(rank + 1), tr);
      htmlElement("td", h.text || "(nothing yet)", tr);
      htmlElement("td", h.log_prob.toFixed(3), tr, "number");
    });
    for (const h of step.ended) {
      const tr = htmlElement("tr", null, body, "ended");
      htmlElement("td", "done", tr);
      htmlElement("td", `${h.text} (score per length ${h.score.toFixed(3)})`, tr);
      htmlElement("td", h.log_prob.toFixed(3), tr, "number");
    }
  }
}
