// The hidden-unit page of `rnnkit explain` (rnnkit/viz/html_page.py documents the data format).
// Reads the inline JSON, builds the text once, and recolours it whenever the layer, state or unit changes.
"use strict";

const data = JSON.parse(document.getElementById("rnnkit-data").textContent);
const P = data.spans.length;
const QUANTUM = 127;
const NEGATIVE = [33, 102, 172];  // blue at -1
const POSITIVE = [214, 39, 40];   // red at +1
const notFed = new Set(data.notFed);
const unknown = new Set(data.unknown);
const decoded = {};  // "layer/state" -> Int8Array (H * P), unit-major, decoded on first use
const elements = [];  // position -> its <span>

const layerSelect = document.getElementById("layer");
const stateSelect = document.getElementById("state");
const unitInput = document.getElementById("unit");
const tip = document.getElementById("tip");

function quantised(key) {
  if (!(key in decoded)) {
    const bytes = atob(data.activations[key].q);
    const values = new Int8Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) values[i] = (bytes.charCodeAt(i) << 24) >> 24;  // byte -> signed
    decoded[key] = values;
  }
  return decoded[key];
}

function selection() {
  return {layer: Number(layerSelect.value), state: stateSelect.value, unit: Number(unitInput.value)};
}

// Value of the selected unit at a position: [scaled to -1..1, in the state's own units].
function valueAt(position) {
  const s = selection();
  const key = s.layer + "/" + s.state;
  const q = quantised(key)[s.unit * P + position] / QUANTUM;
  return [q, q * data.activations[key].scale[s.unit]];
}

function colour(v) {
  const target = v >= 0 ? POSITIVE : NEGATIVE;
  const t = Math.min(1, Math.abs(v));
  const mix = target.map((c) => Math.round(255 + (c - 255) * t));
  return "rgb(" + mix.join(", ") + ")";
}

function visible(symbol) {
  if (symbol === "\n" || symbol === "<eos>") return "\u23ce";
  if (symbol === " ") return "\u2423";
  if (symbol === "\t") return "\u21e5";
  return symbol;
}

function buildText() {
  const box = document.getElementById("text");
  let at = 0;
  for (let p = 0; p < P; p++) {
    const [start, end] = data.spans[p];
    if (start > at) box.appendChild(document.createTextNode(data.text.slice(at, start)));
    const span = document.createElement("span");
    span.className = "p" + (notFed.has(p) ? " not-fed" : "") + (unknown.has(p) ? " unknown" : "");
    span.dataset.p = String(p);
    span.textContent = data.text.slice(start, end);
    box.appendChild(span);
    elements.push(span);
    at = end;
  }
  if (at < data.text.length) box.appendChild(document.createTextNode(data.text.slice(at)));
}

function recolour() {
  const s = selection();
  const H = data.hidden;
  if (!Number.isInteger(s.unit) || s.unit < 0 || s.unit >= H) return;
  const key = s.layer + "/" + s.state;
  const values = quantised(key);
  for (let p = 0; p < P; p++) {
    const span = elements[p];
    if (notFed.has(p)) continue;
    const v = values[s.unit * P + p] / QUANTUM;
    span.style.backgroundColor = colour(v);
    span.style.color = Math.abs(v) > 0.65 ? "#fff" : "";
  }
  const scale = data.activations[key].scale[s.unit];
  document.getElementById("low").textContent = (-scale).toFixed(2);
  document.getElementById("high").textContent = "+" + scale.toFixed(2);
  for (const button of document.querySelectorAll("#ranking button")) {
    const b = button.dataset;
    button.classList.toggle("current",
      Number(b.layer) === s.layer && b.state === s.state && Number(b.unit) === s.unit);
  }
}

function select(layer, state, unit) {
  layerSelect.value = String(layer);
  stateSelect.value = state;
  unitInput.value = String(unit);
  recolour();
}

function setUpPicker() {
  for (let k = 0; k < data.layers; k++) layerSelect.add(new Option(String(k), String(k)));
  for (const state of data.states) stateSelect.add(new Option(state === "cell" ? "cell c" : "hidden h", state));
  unitInput.max = String(data.hidden - 1);
  layerSelect.addEventListener("change", recolour);
  stateSelect.addEventListener("change", recolour);
  unitInput.addEventListener("input", recolour);
  document.getElementById("prev").addEventListener("click", () => step(-1));
  document.getElementById("next").addEventListener("click", () => step(1));
  document.getElementById("model").textContent =
    data.cell.toUpperCase() + ", " + data.layers + " layer" + (data.layers > 1 ? "s" : "") + " of " + data.hidden +
    " units, " + (data.level === "char" ? "characters" : "words") + "; " + P + " positions" +
    (notFed.size ? ", " + notFed.size + " outside the vocabulary (grey)" : "") +
    (data.level === "word" && unknown.size ? ", " + unknown.size + " read as <unk> (underlined)" : "") +
    ". Hover a " + (data.level === "char" ? "character" : "word") + " for the next-token predictions.";
}

function step(delta) {
  const s = selection();
  const unit = ((Number.isInteger(s.unit) ? s.unit : 0) + delta + data.hidden) % data.hidden;
  select(s.layer, s.state, unit);
}

function setUpRanking() {
  const panel = document.getElementById("ranking");
  for (const [name, description] of Object.entries(data.features)) {
    const section = document.createElement("section");
    const heading = document.createElement("h3");
    heading.textContent = description;
    section.appendChild(heading);
    const matches = data.ranking[name] || [];
    if (!matches.length) {
      const none = document.createElement("p");
      none.className = "hint";
      none.textContent = "constant over this text: nothing to correlate";
      section.appendChild(none);
    }
    for (const m of matches) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.layer = String(m.layer);
      button.dataset.state = m.state;
      button.dataset.unit = String(m.unit);
      const r = (m.correlation >= 0 ? "+" : "") + m.correlation.toFixed(2);
      button.textContent = "layer " + m.layer + " " + m.state + " " + m.unit + "   r = " + r;
      button.addEventListener("click", () => select(m.layer, m.state, m.unit));
      section.appendChild(button);
    }
    panel.appendChild(section);
  }
}

function showTip(event) {
  const target = event.target;
  if (!target.classList || !target.classList.contains("p")) return;
  const p = Number(target.dataset.p);
  const [start, end] = data.spans[p];
  tip.textContent = "";
  const head = document.createElement("div");
  head.className = "head";
  head.textContent = "after \u201c" + visible(data.text.slice(start, end)) + "\u201d (position " + p + ")";
  tip.appendChild(head);
  const ids = data.top.ids[p];
  if (ids === null) {
    const line = document.createElement("div");
    line.textContent = "outside the vocabulary: not read by the model";
    tip.appendChild(line);
  } else {
    const value = document.createElement("div");
    value.textContent = "unit value " + valueAt(p)[1].toFixed(3);
    tip.appendChild(value);
    const table = document.createElement("table");
    table.className = "predictions";
    ids.forEach((id, i) => {
      const row = table.insertRow();
      row.insertCell().textContent = visible(data.top.symbols[id]);
      row.insertCell().textContent = (100 * data.top.probs[p][i]).toFixed(1) + "%";
    });
    tip.appendChild(table);
  }
  tip.hidden = false;
  tip.style.left = Math.min(event.clientX + 14, window.innerWidth - 220) + "px";
  tip.style.top = (event.clientY + 16) + "px";
}

buildText();
setUpPicker();
setUpRanking();
select(data.selected.layer, data.selected.state, data.selected.unit);
const textBox = document.getElementById("text");
textBox.addEventListener("mouseover", showTip);
textBox.addEventListener("mouseleave", () => { tip.hidden = true; });
