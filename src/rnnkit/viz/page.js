// The hidden-unit page of `rnnkit explain` (rnnkit/viz/html_page.py documents the data format).
// Text tab: the shown text coloured by the chosen unit; selecting a span ranks the units by example.
// Type tab (pages that carry the model): the model reads what the user types, colours it, samples from it.
// Gradient tab: ‖∂L/∂h_t‖ of the trained model over the shown text.
"use strict";

const data = JSON.parse(document.getElementById("rnnkit-data").textContent);
const P = data.spans.length;
const H = data.hidden;
const QUANTUM = 127;
const NEGATIVE = [33, 102, 172];  // blue at -1
const POSITIVE = [214, 39, 40];   // red at +1
const GRADIENT = [118, 42, 131];  // purple: a large gradient
const TOP = 5;
const notFed = new Set(data.notFed);
const unknown = new Set(data.unknown);
const keys = [];  // "layer/state" of every recorded state
for (let k = 0; k < data.layers; k++) for (const state of data.states) keys.push(k + "/" + state);

const model = data.model ? rnnkitLiveModel.makeModel(data.model) : null;
const page = {ready: false, latencies: []};  // window.rnnkitPage: ready once the text is coloured; keystroke timings
window.rnnkitPage = page;
if (model) {
  window.rnnkitModel = {
    vocab: model.vocab,
    run: (text) => model.run(String(text)),
    sample: (prime, length, temperature, seed) => model.sample(prime, length, temperature, seed),
  };
}

const layerSelect = document.getElementById("layer");
const stateSelect = document.getElementById("state");
const unitInput = document.getElementById("unit");
const tip = document.getElementById("tip");
const textBox = document.getElementById("text");

// ------------------------------------------------------------------------------------- the shown text's states

// values[key]: Float32Array (P * H), position-major; scale[key]: Float64Array (H), the colour scale of each unit;
// top[p]: [[symbol, probability], ...] best first, or null where the model read nothing.
const shown = {values: {}, scale: {}, top: new Array(P).fill(null)};

function decodeStatic() {
  for (const key of keys) {
    const block = data.activations[key];
    const bytes = atob(block.q);
    const values = new Float32Array(P * H);
    for (let u = 0; u < H; u++) {
      for (let p = 0; p < P; p++) {
        const q = (bytes.charCodeAt(u * P + p) << 24) >> 24;  // byte -> signed
        values[p * H + u] = (q / QUANTUM) * block.scale[u];
      }
    }
    shown.values[key] = values;
    shown.scale[key] = Float64Array.from(block.scale);
  }
  for (let p = 0; p < P; p++) {
    const ids = data.top.ids[p];
    if (ids !== null) shown.top[p] = ids.map((id, i) => [data.top.symbols[id], data.top.probs[p][i]]);
  }
}

function storeState(values, offset, state) {
  for (let k = 0; k < data.layers; k++) {
    for (const name of data.states) {
      const source = name === "hidden" ? state[k].h : state[k].c;
      const target = values[k + "/" + name];
      for (let u = 0; u < H; u++) target[offset + u] = name === "tanh_cell" ? Math.tanh(source[u]) : source[u];
    }
  }
}

function topOf(probabilities, count) {
  const best = [];
  for (let v = 0; v < probabilities.length; v++) {
    if (best.length < count || probabilities[v] > best[best.length - 1][1]) {
      best.push([v, probabilities[v]]);
      best.sort((a, b) => b[1] - a[1]);
      if (best.length > count) best.pop();
    }
  }
  return best.map(([v, p]) => [model.vocab[v], p]);
}

// The colour scale of each unit over the shown text: 1 for h unless |h| exceeds it, max |c| for c.
function computeScales() {
  for (const key of keys) {
    const values = shown.values[key];
    const largest = new Float64Array(H);
    for (let p = 0; p < P; p++) {
      if (notFed.has(p)) continue;
      for (let u = 0; u < H; u++) largest[u] = Math.max(largest[u], Math.abs(values[p * H + u]));
    }
    const isCell = key.endsWith("/cell");
    shown.scale[key] = largest.map((m) => (isCell ? (m > 0 ? m : 1) : Math.max(m, 1)));
  }
}

// Runs the model over the shown text in slices, so that the page stays responsive while it opens.
function computeShown(done) {
  for (const key of keys) shown.values[key] = new Float32Array(P * H);
  let state = model.initialState();
  let p = 0;
  const status = document.getElementById("model");
  function slice() {
    const end = Math.min(P, p + 100);
    for (; p < end; p++) {
      if (data.ids[p] < 0) continue;
      state = model.step(state, data.ids[p]);
      storeState(shown.values, p * H, state);
      shown.top[p] = topOf(model.softmax(model.logits(state)), TOP);
    }
    if (p < P) {
      status.dataset.progress = "reading the text: " + Math.round((100 * p) / P) + "%";
      describeModel();
      setTimeout(slice, 0);
    } else {
      delete status.dataset.progress;
      computeScales();
      done();
    }
  }
  slice();
}

// ------------------------------------------------------------------------------------- colours and the picker

function selection() {
  return {layer: Number(layerSelect.value), state: stateSelect.value, unit: Number(unitInput.value)};
}

function colour(v) {
  const target = v >= 0 ? POSITIVE : NEGATIVE;
  const t = Math.min(1, Math.abs(v));
  const mix = target.map((c) => Math.round(255 + (c - 255) * t));
  return "rgb(" + mix.join(", ") + ")";
}

function paint(span, v) {
  span.style.backgroundColor = colour(v);
  span.style.color = Math.abs(v) > 0.65 ? "#fff" : "";
}

function visible(symbol) {
  if (symbol === "\n" || symbol === "<eos>") return "\u23ce";
  if (symbol === " ") return "\u2423";
  if (symbol === "\t") return "\u21e5";
  return symbol;
}

const elements = [];  // position -> its <span> in the Text tab

function buildText(box, list, className) {
  let at = 0;
  for (let p = 0; p < P; p++) {
    const [start, end] = data.spans[p];
    if (start > at) box.appendChild(document.createTextNode(data.text.slice(at, start)));
    const span = document.createElement("span");
    span.className = className + (notFed.has(p) ? " not-fed" : "") + (unknown.has(p) ? " unknown" : "");
    span.dataset.p = String(p);
    span.textContent = data.text.slice(start, end);
    box.appendChild(span);
    list.push(span);
    at = end;
  }
  if (at < data.text.length) box.appendChild(document.createTextNode(data.text.slice(at)));
}

// The selected unit's value at position p of the shown text, on the colour scale (-1..1).
function scaled(key, unit, p) {
  return shown.values[key][p * H + unit] / shown.scale[key][unit];
}

function recolour() {
  const s = selection();
  if (!page.ready || !Number.isInteger(s.unit) || s.unit < 0 || s.unit >= H) return;
  const key = s.layer + "/" + s.state;
  for (let p = 0; p < P; p++) if (!notFed.has(p)) paint(elements[p], scaled(key, s.unit, p));
  const scale = shown.scale[key][s.unit];
  document.getElementById("low").textContent = (-scale).toFixed(2);
  document.getElementById("high").textContent = "+" + scale.toFixed(2);
  for (const button of document.querySelectorAll("#side button[data-unit]")) {
    const b = button.dataset;
    button.classList.toggle("current", Number(b.layer) === s.layer && b.state === s.state && Number(b.unit) === s.unit);
  }
  if (model) recolourLive();
}

function select(layer, state, unit) {
  layerSelect.value = String(layer);
  stateSelect.value = state;
  unitInput.value = String(unit);
  recolour();
}

function step(delta) {
  const s = selection();
  select(s.layer, s.state, ((Number.isInteger(s.unit) ? s.unit : 0) + delta + H) % H);
}

function describeModel() {
  const line = document.getElementById("model");
  const progress = line.dataset.progress;
  line.textContent =
    data.cell.toUpperCase() + ", " + data.layers + " layer" + (data.layers > 1 ? "s" : "") + " of " + H +
    " units, " + (data.level === "char" ? "characters" : "words") + "; " + P + " positions" +
    (notFed.size ? ", " + notFed.size + " outside the vocabulary (grey)" : "") +
    (data.level === "word" && unknown.size ? ", " + unknown.size + " read as <unk> (underlined)" : "") +
    (data.read ? "; the page shows the first " + P + " of the " + data.read.positions + " positions read (" +
      data.read.characters + " characters), and ranked the units over all of them" : "") +
    ". Hover a " + (data.level === "char" ? "character" : "word") + " for the next-token predictions. " +
    (model ? "The model runs in this page: type your own text in the Type tab."
      : "This page cannot run the model (" + (data.static || "no weights in the page") +
        "): it shows the text as rnnkit computed it.") +
    (progress ? " (" + progress + ")" : "");
}

function setUpPicker() {
  for (let k = 0; k < data.layers; k++) layerSelect.add(new Option(String(k), String(k)));
  const labels = {hidden: "hidden h", cell: "cell c", tanh_cell: "tanh(c)"};
  for (const state of data.states) stateSelect.add(new Option(labels[state] || state, state));
  unitInput.max = String(H - 1);
  layerSelect.addEventListener("change", recolour);
  stateSelect.addEventListener("change", recolour);
  unitInput.addEventListener("input", recolour);
  document.getElementById("prev").addEventListener("click", () => step(-1));
  document.getElementById("next").addEventListener("click", () => step(1));
  describeModel();
}

function unitButton(layer, state, unit, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.layer = String(layer);
  button.dataset.state = state;
  button.dataset.unit = String(unit);
  button.textContent = "layer " + layer + " " + state + " " + unit + "   " + label;
  button.addEventListener("click", () => select(layer, state, unit));
  return button;
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
      const r = (m.correlation >= 0 ? "+" : "") + m.correlation.toFixed(2);
      section.appendChild(unitButton(m.layer, m.state, m.unit, "r = " + r));
    }
    panel.appendChild(section);
  }
  if (data.constant.length) {
    const note = document.createElement("p");
    note.className = "hint";
    note.textContent = "Not ranked, constant over this text: " + data.constant.join(", ") + ".";
    panel.appendChild(note);
  }
}

// ------------------------------------------------------------------------------------- hover

function showTip(event) {
  const target = event.target;
  if (!target.classList || !target.classList.contains("p") || !page.ready) return;
  const p = Number(target.dataset.p);
  const [start, end] = data.spans[p];
  tip.textContent = "";
  const head = document.createElement("div");
  head.className = "head";
  head.textContent = "after \u201c" + visible(data.text.slice(start, end)) + "\u201d (position " + p + ")";
  tip.appendChild(head);
  const top = shown.top[p];
  if (top === null) {
    const line = document.createElement("div");
    line.textContent = "outside the vocabulary: not read by the model";
    tip.appendChild(line);
  } else {
    const s = selection();
    const value = document.createElement("div");
    value.textContent = "unit value " + shown.values[s.layer + "/" + s.state][p * H + s.unit].toFixed(3);
    tip.appendChild(value);
    if (gradientAt.has(p)) {
      const line = document.createElement("div");
      line.textContent = "\u2016\u2202L/\u2202h_t\u2016 " + gradientAt.get(p).toExponential(2);
      tip.appendChild(line);
    }
    const table = document.createElement("table");
    table.className = "predictions";
    for (const [symbol, probability] of top) {
      const row = table.insertRow();
      row.insertCell().textContent = visible(symbol);
      row.insertCell().textContent = (100 * probability).toFixed(1) + "%";
    }
    tip.appendChild(table);
  }
  tip.hidden = false;
  tip.style.left = Math.min(event.clientX + 14, window.innerWidth - 220) + "px";
  tip.style.top = (event.clientY + 16) + "px";
}

// ------------------------------------------------------------------------------------- find units by example

// Units most on inside the selected positions and off outside: score = mean inside - mean outside of the value on
// the colour scale (rnnkit.viz.units_by_example computes the same). The top-N units then "fire" at a position where
// their signed mean there is past halfway between its mean inside the selection and its mean outside.
function rankByExample(inside) {
  const fed = [];
  for (let p = 0; p < P; p++) if (!notFed.has(p)) fed.push(p);
  const inCount = fed.filter((p) => inside.has(p)).length;
  const outCount = fed.length - inCount;
  if (!inCount || !outCount) return [];
  const found = [];
  for (const key of keys) {
    const values = shown.values[key], scale = shown.scale[key];
    const sumIn = new Float64Array(H), sumOut = new Float64Array(H);
    for (const p of fed) {
      const sums = inside.has(p) ? sumIn : sumOut;
      for (let u = 0; u < H; u++) sums[u] += values[p * H + u] / scale[u];
    }
    const [layer, state] = key.split("/");
    for (let u = 0; u < H; u++) {
      found.push({layer: Number(layer), state, unit: u, score: sumIn[u] / inCount - sumOut[u] / outCount});
    }
  }
  found.sort((a, b) => Math.abs(b.score) - Math.abs(a.score) || a.layer - b.layer ||
    (a.state < b.state ? -1 : a.state > b.state ? 1 : 0) || a.unit - b.unit);
  return found;
}

let chosen = null;  // {inside: Set of positions, ranked: [...]} of the current selection

function markMatches() {
  for (const span of elements) span.classList.remove("chosen", "match");
  if (!chosen) return;
  const count = Math.max(1, Math.min(50, Number(document.getElementById("match-count").value) || 5));
  const set = chosen.ranked.slice(0, count);
  const fires = new Float64Array(P);
  let sumIn = 0, sumOut = 0, nIn = 0, nOut = 0;
  for (let p = 0; p < P; p++) {
    if (notFed.has(p)) continue;
    let f = 0;
    for (const m of set) f += Math.sign(m.score) * scaled(m.layer + "/" + m.state, m.unit, p);
    fires[p] = f / set.length;
    if (chosen.inside.has(p)) { sumIn += fires[p]; nIn++; } else { sumOut += fires[p]; nOut++; }
  }
  const threshold = (sumIn / nIn + sumOut / nOut) / 2;
  let matches = 0;
  for (let p = 0; p < P; p++) {
    if (notFed.has(p)) continue;
    if (chosen.inside.has(p)) elements[p].classList.add("chosen");
    else if (fires[p] >= threshold) { elements[p].classList.add("match"); matches++; }
  }
  document.getElementById("matches-summary").textContent =
    chosen.inside.size + " selected position" + (chosen.inside.size > 1 ? "s" : "") + "; the top " + set.length +
    " unit" + (set.length > 1 ? "s" : "") + " together also fire at " + matches +
    " other position" + (matches === 1 ? "" : "s") + " (underlined). Score: mean inside minus mean outside.";
}

function showMatches(inside) {
  const ranked = rankByExample(inside);
  const panel = document.getElementById("matches");
  const list = document.getElementById("matches-list");
  list.textContent = "";
  if (!ranked.length) {
    chosen = null;
    panel.hidden = true;
    markMatches();
    return;
  }
  chosen = {inside, ranked};
  for (const m of ranked.slice(0, 10)) {
    list.appendChild(unitButton(m.layer, m.state, m.unit, "score " + (m.score >= 0 ? "+" : "") + m.score.toFixed(2)));
  }
  panel.hidden = false;
  markMatches();
  const best = ranked[0];
  select(best.layer, best.state, best.unit);
}

// The offset in the text (UTF-16 units, as data.spans) of a boundary point inside the text box.
function textOffset(container, offset) {
  const before = document.createRange();
  before.setStart(textBox, 0);
  before.setEnd(container, offset);
  return before.toString().length;
}

function onTextSelection() {
  const selected = window.getSelection();
  if (!page.ready || !selected.rangeCount || selected.isCollapsed) return;
  const range = selected.getRangeAt(0);
  if (!textBox.contains(range.startContainer) || !textBox.contains(range.endContainer)) return;
  const from = textOffset(range.startContainer, range.startOffset), to = textOffset(range.endContainer, range.endOffset);
  const inside = new Set();
  for (let p = 0; p < P; p++) {
    const [start, end] = data.spans[p];
    if (!notFed.has(p) && start < to && end > from) inside.add(p);
  }
  if (inside.size) showMatches(inside);
}

// ------------------------------------------------------------------------------------- the Type tab

// tokens: the model's positions in the box's text; states[i]: the state after token i, computed so far (a long
// paste is read in slices, so states may trail tokens for a moment); spans[i]: token i in the coloured copy.
const live = {tokens: [], states: [], spans: [], text: "", job: 0};
const liveInput = document.getElementById("live-input");
const liveColour = document.getElementById("live-colour");
const LIVE_SLICE = 400;  // tokens read between two looks at the event queue

function sameToken(a, b, oldText, newText) {
  return a.start === b.start && a.end === b.end && a.id === b.id &&
    oldText.slice(a.start, a.end) === newText.slice(b.start, b.end);
}

function liveValue(index) {
  const s = selection();
  const state = live.states[index][s.layer];
  const raw = s.state === "hidden" ? state.h[s.unit] :
    s.state === "tanh_cell" ? Math.tanh(state.c[s.unit]) : state.c[s.unit];
  const scale = shown.scale[s.layer + "/" + s.state];
  return raw / (scale ? scale[s.unit] : 1);
}

function unitChosen() {
  const s = selection();
  return Number.isInteger(s.unit) && s.unit >= 0 && s.unit < H;
}

function recolourLive() {
  if (!unitChosen()) return;
  for (let i = 0; i < live.states.length; i++) if (live.tokens[i].id >= 0) paint(live.spans[i], liveValue(i));
}

// Re-reads the text from the first token that changed: typing at the end costs one step of the model. A newer
// edit stops the reading of an older one (live.job).
function updateLive(started) {
  const job = ++live.job;
  const text = liveInput.value;
  const tokens = model.tokenize(text);
  let keep = 0;
  const known = Math.min(live.tokens.length, live.states.length);
  while (keep < known && keep < tokens.length && sameToken(live.tokens[keep], tokens[keep], live.text, text)) keep++;
  live.states.length = keep;
  // Rebuild the coloured copy from the first changed token on.
  const anchor = keep ? live.spans[keep - 1] : null;
  while (anchor ? anchor.nextSibling : liveColour.firstChild) liveColour.removeChild(anchor ? anchor.nextSibling : liveColour.firstChild);
  live.spans.length = keep;
  let at = keep ? tokens[keep - 1].end : 0;
  for (let i = keep; i < tokens.length; i++) {
    const token = tokens[i];
    if (token.start > at) liveColour.appendChild(document.createTextNode(text.slice(at, token.start)));
    const span = document.createElement("span");
    span.className = "p" + (token.id < 0 ? " not-fed" : "") + (token.unknown ? " unknown" : "");
    span.textContent = text.slice(token.start, token.end);
    liveColour.appendChild(span);
    live.spans.push(span);
    at = token.end;
  }
  live.tokens = tokens;
  live.text = text;
  // Trailing text, and a last line that keeps the copy as tall as the box when the text ends with a newline.
  liveColour.appendChild(document.createTextNode(text.slice(at) + "\n"));
  liveInput.style.height = "auto";
  liveInput.style.height = Math.max(liveInput.scrollHeight, liveColour.scrollHeight) + "px";
  const status = document.getElementById("live-status");
  let state = keep ? live.states[keep - 1] : model.initialState();
  let i = keep;
  function slice() {
    if (job !== live.job) return;
    const end = Math.min(tokens.length, i + LIVE_SLICE);
    const paintIt = unitChosen();
    for (; i < end; i++) {
      if (tokens[i].id >= 0) state = model.step(state, tokens[i].id);
      live.states.push(state);
      if (paintIt && tokens[i].id >= 0) paint(live.spans[i], liveValue(i));
    }
    if (i < tokens.length) {
      status.textContent = "reading: " + i + " of " + tokens.length + " tokens";
      setTimeout(slice, 0);
      return;
    }
    if (status.textContent.startsWith("reading")) status.textContent = "";
    showNext();
    if (started !== undefined) {
      const update = performance.now() - started;
      requestAnimationFrame(() => {
        page.latencies.push({update, frame: performance.now() - started, tokens: tokens.length - keep});
      });
    }
  }
  slice();
}

// The next-token distribution after the token just before the caret (at the end: after the whole text).
function showNext() {
  const caret = liveInput.selectionStart === undefined ? live.text.length : liveInput.selectionEnd;
  let index = -1;
  for (let i = 0; i < live.states.length && live.tokens[i].end <= caret; i++) index = i;
  const state = index >= 0 ? live.states[index] : model.initialState();
  const probabilities = model.softmax(model.logits(state));
  const table = document.getElementById("live-next-table");
  table.textContent = "";
  for (const [symbol, probability] of topOf(probabilities, 10)) {
    const row = table.insertRow();
    row.insertCell().textContent = visible(symbol);
    const bar = row.insertCell();
    const fill = document.createElement("span");
    fill.className = "bar";
    fill.style.width = (100 * probability).toFixed(1) + "%";
    bar.appendChild(fill);
    row.insertCell().textContent = (100 * probability).toFixed(1) + "%";
  }
  document.getElementById("live-next-title").textContent = index >= 0
    ? "next token after \u201c" + visible(live.text.slice(live.tokens[index].start, live.tokens[index].end)) + "\u201d"
    : "next token at the start";
}

function generate() {
  const status = document.getElementById("live-status");
  const length = Number(document.getElementById("gen-length").value);
  const temperature = Number(document.getElementById("gen-temperature").value);
  const seed = Number(document.getElementById("gen-seed").value);
  try {
    const started = performance.now();
    const text = model.sample(liveInput.value, length, temperature, seed);
    status.textContent = length + " tokens in " + Math.round(performance.now() - started) + " ms";
    liveInput.value += text;
    updateLive();
  } catch (error) {
    status.textContent = error.message;
  }
}

function setUpLive() {
  document.querySelector('#tabs button[data-tab="live"]').hidden = false;
  liveInput.addEventListener("input", (event) => updateLive(event.timeStamp));
  for (const name of ["keyup", "click", "select"]) liveInput.addEventListener(name, showNext);
  document.getElementById("generate").addEventListener("click", generate);
  updateLive();
}

// ------------------------------------------------------------------------------------- the Gradient tab

const gradientAt = new Map();  // position -> ‖∂L/∂h_t‖ of the top layer

function setUpGradient() {
  const g = data.gradient;
  document.querySelector('#tabs button[data-tab="gradient"]').hidden = false;
  document.getElementById("gradient-caption").textContent = g.caption;
  const top = g.norms[g.norms.length - 1];
  g.positions.forEach((p, i) => gradientAt.set(p, top[i]));
  drawGradientChart(g);
  const box = document.getElementById("gradient-text");
  const spans = [];
  buildText(box, spans, "g");
  const logs = top.filter((v) => v > 0).map(Math.log10);
  const low = Math.min(...logs), high = Math.max(...logs);
  g.positions.forEach((p, i) => {
    const v = top[i];
    const t = v > 0 && high > low ? (Math.log10(v) - low) / (high - low) : 0;
    const mix = GRADIENT.map((c) => Math.round(255 + (c - 255) * t));
    spans[p].style.backgroundColor = "rgb(" + mix.join(", ") + ")";
    spans[p].style.color = t > 0.65 ? "#fff" : "";
    spans[p].title = "\u2016\u2202L/\u2202h_t\u2016 = " + (v > 0 ? v.toExponential(2) : "0 (underflow)");
  });
}

function svg(name, attributes, parent) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  parent.appendChild(element);
  return element;
}

function drawGradientChart(g) {
  const chart = document.getElementById("gradient-chart");
  const width = 900, height = 300, left = 60, right = 15, topMargin = 10, bottom = 35;
  const n = g.positions.length;
  const all = g.norms.flat().filter((v) => v > 0);
  if (!n || !all.length) return;
  const lowExp = Math.floor(Math.log10(Math.min(...all))), highExp = Math.ceil(Math.log10(Math.max(...all)));
  const span = Math.max(1, highExp - lowExp);
  const x = (i) => left + (n > 1 ? (i / (n - 1)) * (width - left - right) : 0);
  const y = (v) => topMargin + ((highExp - Math.log10(v)) / span) * (height - topMargin - bottom);
  const every = Math.max(1, Math.ceil(span / 8));
  for (let e = lowExp; e <= highExp; e += every) {
    svg("line", {x1: left, x2: width - right, y1: y(10 ** e), y2: y(10 ** e), class: "grid"}, chart);
    svg("text", {x: left - 6, y: y(10 ** e) + 4, "text-anchor": "end", class: "tick"}, chart).textContent = "1e" + e;
  }
  for (let i = 0; i < 5; i++) {
    const index = Math.round((i / 4) * (n - 1));
    svg("text", {x: x(index), y: height - bottom + 14, "text-anchor": "middle", class: "tick"}, chart).textContent =
      String(g.positions[index]);
  }
  svg("text", {x: (left + width) / 2, y: height - 3, "text-anchor": "middle", class: "tick"}, chart).textContent =
    "position t in the shown text (the loss is at the right end)";
  g.norms.forEach((norms, k) => {
    let path = "";
    let pen = false;
    norms.forEach((v, i) => {
      if (v > 0) { path += (pen ? "L" : "M") + x(i).toFixed(1) + "," + y(v).toFixed(1); pen = true; } else { pen = false; }
    });
    svg("path", {d: path, class: "curve layer" + (k === g.norms.length - 1 ? " top" : ""), "data-layer": k}, chart);
    // The legend sits top left, where the curves are low: the gradient is smallest far from the loss.
    svg("text", {x: left + 8, y: topMargin + 14 + 14 * k, "text-anchor": "start", class: "tick legend" + (k === g.norms.length - 1 ? " top" : "")}, chart)
      .textContent = (k === g.norms.length - 1 ? "\u2014 top layer " : "\u2014 layer ") + k;
  });
}

// ------------------------------------------------------------------------------------- tabs and start

function setUpTabs() {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => {
      for (const other of document.querySelectorAll("#tabs button")) other.classList.toggle("current", other === button);
      for (const pane of document.querySelectorAll(".pane")) pane.hidden = pane.id !== "tab-" + button.dataset.tab;
      if (button.dataset.tab === "live") updateLive();
    });
  }
}

function start() {
  page.ready = true;
  select(data.selected.layer, data.selected.state, data.selected.unit);
  if (model) setUpLive();
  describeModel();
}

buildText(textBox, elements, "p");
setUpPicker();
setUpRanking();
setUpTabs();
if (data.gradient) setUpGradient();
textBox.addEventListener("mouseover", showTip);
textBox.addEventListener("mouseleave", () => { tip.hidden = true; });
textBox.addEventListener("mouseup", onTextSelection);
document.getElementById("match-count").addEventListener("input", markMatches);
document.getElementById("clear-selection").addEventListener("click", () => {
  window.getSelection().removeAllRanges();
  showMatches(new Set());
});
if (model) {
  computeShown(start);
} else {
  decodeStatic();
  start();
}
