// The language model of an `rnnkit explain` page, run in the browser (rnnkit/viz/live_model.py documents the
// data format and the equations). Defines window.rnnkitModel (see makeModel) when the page carries weights.
// Arithmetic is float64 on float32 weights: PyTorch's float32 forward differs from it by rounding only.
"use strict";

const rnnkitLiveModel = (function () {
  const LAYER_NORM_EPS = 1e-5;

  function decodeWeights(base64) {
    const bytes = atob(base64);
    const view = new DataView(new ArrayBuffer(bytes.length));
    for (let i = 0; i < bytes.length; i++) view.setUint8(i, bytes.charCodeAt(i));
    const weights = new Float32Array(bytes.length / 4);
    for (let i = 0; i < weights.length; i++) weights[i] = view.getFloat32(4 * i, true);  // stored little-endian
    return weights;
  }

  // out = W x; W (rows, cols) row-major at offset `at` of `w`. Four running sums let the loop pipeline.
  function matVec(w, at, rows, cols, x, out) {
    const tail = cols - (cols % 4);
    for (let r = 0; r < rows; r++) {
      const base = at + r * cols;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let c = 0; c < tail; c += 4) {
        s0 += w[base + c] * x[c];
        s1 += w[base + c + 1] * x[c + 1];
        s2 += w[base + c + 2] * x[c + 2];
        s3 += w[base + c + 3] * x[c + 3];
      }
      for (let c = tail; c < cols; c++) s0 += w[base + c] * x[c];
      out[r] = (s0 + s1) + (s2 + s3);
    }
  }

  function layerNorm(v, start, size, gain, bias) {
    let mean = 0;
    for (let i = 0; i < size; i++) mean += v[start + i];
    mean /= size;
    let variance = 0;
    for (let i = 0; i < size; i++) variance += (v[start + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / size + LAYER_NORM_EPS);
    for (let i = 0; i < size; i++) v[start + i] = (v[start + i] - mean) * inv * gain[i] + bias[i];
  }

  const sigmoid = (a) => 1 / (1 + Math.exp(-a));

  // The number of gate blocks stacked in W_ih / W_hh, and whether the cell carries c as well as h.
  const CELLS = {
    rnn_tanh: {blocks: 1, cell: false},
    rnn_relu: {blocks: 1, cell: false},
    lstm: {blocks: 4, cell: true},
    gru: {blocks: 3, cell: false},
    layernorm_lstm: {blocks: 4, cell: true},
    layernorm_gru: {blocks: 3, cell: false},
  };

  function makeModel(spec) {
    const weights = decodeWeights(spec.weights);
    const H = spec.hidden, V = spec.vocabSize, K = spec.layers, cellName = spec.cell;
    const kind = CELLS[cellName];
    if (!kind) throw new Error("no JavaScript step for the " + cellName + " cell");
    const tensor = (name, required) => {
      const entry = spec.tensors[name];
      if (!entry) {
        if (required) throw new Error("the page's model has no tensor " + name);
        return null;
      }
      return {at: entry[0], rows: entry[1], cols: entry[2], values: weights.subarray(entry[0], entry[0] + entry[1] * entry[2])};
    };
    const zeros = (n) => new Float64Array(n);
    const layers = [];
    for (let k = 0; k < K; k++) {
      const t = (name, required) => tensor(k + "/" + name, required);
      const G = kind.blocks * H;
      const layer = {
        ih: t("weight_ih", true), hh: t("weight_hh", true),
        biasIh: (t("bias_ih") || {values: zeros(G)}).values, biasHh: (t("bias_hh") || {values: zeros(G)}).values,
        bias: (t("bias") || {values: zeros(G)}).values,
        gi: zeros(G), gh: zeros(G),
      };
      if (cellName.startsWith("layernorm_")) {
        for (const name of ["ln_ih_weight", "ln_ih_bias", "ln_hh_weight", "ln_hh_bias"]) layer[name] = t(name, true).values;
        if (kind.cell) for (const name of ["ln_c_weight", "ln_c_bias"]) layer[name] = t(name, true).values;
      }
      layers.push(layer);
    }
    const embedding = spec.embedding ? tensor("embedding.weight", true) : null;
    const decoder = tensor("decoder.weight", true), decoderBias = tensor("decoder.bias", true).values;
    const zoneout = spec.zoneout || 0;
    const lookup = new Map(spec.symbols.map((symbol, id) => [symbol, id]));
    const whitespace = new Set(spec.whitespace);

    // One step of layer k: returns {h, c} from the previous {h, c} (new arrays: callers keep old states).
    function cellStep(layer, k, id, below, previous) {
      const {gi, gh, ih} = layer;
      if (k === 0 && !embedding) {
        for (let r = 0; r < ih.rows; r++) gi[r] = ih.values[r * ih.cols + id];
      } else {
        const x = k === 0 ? embedding.values.subarray(id * embedding.cols, (id + 1) * embedding.cols) : below;
        matVec(ih.values, 0, ih.rows, ih.cols, x, gi);
      }
      matVec(layer.hh.values, 0, layer.hh.rows, layer.hh.cols, previous.h, gh);
      const G = gi.length;
      if (cellName.startsWith("layernorm_")) {
        layerNorm(gi, 0, G, layer.ln_ih_weight, layer.ln_ih_bias);
        layerNorm(gh, 0, G, layer.ln_hh_weight, layer.ln_hh_bias);
      }
      const h = zeros(H);
      let c = null;
      if (kind.blocks === 1) {  // h = act(W_ih x + b_ih + W_hh h + b_hh)
        for (let j = 0; j < H; j++) {
          const a = gi[j] + layer.biasIh[j] + gh[j] + layer.biasHh[j];
          h[j] = cellName === "rnn_relu" ? Math.max(0, a) : Math.tanh(a);
        }
      } else if (kind.blocks === 4) {  // gates i, f, g, o (torch.nn's order)
        c = zeros(H);
        const o = zeros(H);
        const a = (j) => gi[j] + gh[j] + layer.biasIh[j] + layer.biasHh[j] + layer.bias[j];
        for (let j = 0; j < H; j++) {
          const i = sigmoid(a(j)), f = sigmoid(a(H + j)), g = Math.tanh(a(2 * H + j));
          o[j] = sigmoid(a(3 * H + j));
          c[j] = f * previous.c[j] + i * g;
        }
        const read = Float64Array.from(c);  // what h reads of c: c itself, or LN_c(c) for the layer-norm LSTM
        if (cellName === "layernorm_lstm") layerNorm(read, 0, H, layer.ln_c_weight, layer.ln_c_bias);
        for (let j = 0; j < H; j++) h[j] = o[j] * Math.tanh(read[j]);
      } else {  // GRU: gates r, z, n; n = tanh(gi_n + r * gh_n), both biases inside
        for (let j = 0; j < H; j++) {
          const r = sigmoid(gi[j] + layer.biasIh[j] + gh[j] + layer.biasHh[j]);
          const z = sigmoid(gi[H + j] + layer.biasIh[H + j] + gh[H + j] + layer.biasHh[H + j]);
          const n = Math.tanh(gi[2 * H + j] + layer.biasIh[2 * H + j] + r * (gh[2 * H + j] + layer.biasHh[2 * H + j]));
          h[j] = (1 - z) * n + z * previous.h[j];
        }
      }
      if (zoneout > 0) {  // in evaluation zoneout keeps the expectation: p h_{t-1} + (1 - p) h~_t
        for (let j = 0; j < H; j++) h[j] = zoneout * previous.h[j] + (1 - zoneout) * h[j];
        if (c) for (let j = 0; j < H; j++) c[j] = zoneout * previous.c[j] + (1 - zoneout) * c[j];
      }
      return {h, c};
    }

    function initialState() {
      return layers.map(() => ({h: zeros(H), c: kind.cell ? zeros(H) : null}));
    }

    // The state after reading token `id` from `state` (one {h, c} per layer).
    function step(state, id) {
      const next = [];
      let below = null;
      for (let k = 0; k < K; k++) {
        next.push(cellStep(layers[k], k, id, below, state[k]));
        below = next[k].h;
      }
      return next;
    }

    function logits(state, temperature) {
      const out = zeros(V);
      matVec(decoder.values, 0, V, H, state[K - 1].h, out);
      for (let v = 0; v < V; v++) out[v] = (out[v] + decoderBias[v]) / (temperature || 1);
      return out;
    }

    function softmax(scores) {
      let top = -Infinity;
      for (const s of scores) top = Math.max(top, s);
      let total = 0;
      const p = new Float64Array(scores.length);
      for (let v = 0; v < scores.length; v++) total += (p[v] = Math.exp(scores[v] - top));
      for (let v = 0; v < scores.length; v++) p[v] /= total;
      return p;
    }

    // The model's positions in `text`: [{start, end, id, unknown}] with UTF-16 offsets; id -1 for a character
    // outside a character model's vocabulary (not read), an unknown word reads as <unk>.
    function tokenize(text) {
      const tokens = [];
      if (spec.level === "char") {
        let at = 0;
        for (const char of text) {  // code points, as Python's str
          const id = lookup.has(char) ? lookup.get(char) : -1;
          tokens.push({start: at, end: at + char.length, id, unknown: id < 0});
          at += char.length;
        }
        return tokens;
      }
      let start = -1, at = 0;
      const word = (end) => {
        const w = text.slice(start, end);
        const known = lookup.has(w);
        tokens.push({start, end, id: known ? lookup.get(w) : spec.unk, unknown: !known && w !== spec.symbols[spec.unk]});
        start = -1;
      };
      for (const char of text) {
        if (whitespace.has(char)) {
          if (start >= 0) word(at);
          if (char === "\n") tokens.push({start: at, end: at + 1, id: spec.eos, unknown: false});
        } else if (start < 0) {
          start = at;
        }
        at += char.length;
      }
      if (start >= 0) word(at);
      return tokens;
    }

    function run(text) {
      let state = initialState();
      for (const token of tokenize(text)) if (token.id >= 0) state = step(state, token.id);
      return {hidden: state.map((s) => Array.from(s.h)), next: Array.from(softmax(logits(state)))};
    }

    // A PRNG of 32-bit state (mulberry32): the same seed draws the same numbers in every browser.
    function generator(seed) {
      let a = seed >>> 0;
      return function () {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = Math.imul(a ^ (a >>> 15), a | 1);
        t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }

    function piece(id, previous) {
      if (spec.level === "char") return spec.symbols[id];
      if (id === spec.eos) return "\n";
      return previous === null || previous === spec.eos ? spec.symbols[id] : " " + spec.symbols[id];
    }

    // `length` tokens drawn after `prime` from softmax(logits / temperature), as `rnnkit generate` does (an empty
    // prime starts after a line break); the same seed gives the same text. Returns the generated text only.
    function sample(prime, length, temperature, seed) {
      prime = prime === undefined || prime === null ? "" : String(prime);
      if (!Number.isInteger(length) || length < 0) throw new Error("length must be a whole number >= 0, got " + length);
      if (!(typeof temperature === "number" && Number.isFinite(temperature) && temperature > 0)) {
        throw new Error("temperature must be a positive number, got " + temperature);
      }
      if (!Number.isInteger(seed)) throw new Error("seed must be a whole number, got " + seed);
      let ids = tokenize(prime).map((t) => t.id).filter((id) => id >= 0);
      if (!ids.length) {
        const start = spec.level === "char" ? lookup.get("\n") : spec.eos;
        ids = start === undefined || start === null ? [] : [start];
      }
      let state = initialState();
      for (const id of ids) state = step(state, id);
      const random = generator(seed);
      let previous = ids.length ? ids[ids.length - 1] : null;
      const pieces = [];
      for (let n = 0; n < length; n++) {
        const p = softmax(logits(state, temperature));
        const u = random();
        let token = V - 1, mass = 0;
        for (let v = 0; v < V; v++) {
          mass += p[v];
          if (u < mass) { token = v; break; }
        }
        pieces.push(piece(token, previous));
        previous = token;
        if (n + 1 < length) state = step(state, token);
      }
      return pieces.join("");
    }

    return {
      vocab: spec.symbols.slice(), level: spec.level, cell: cellName, layers: K, hidden: H, hasCell: kind.cell,
      tokenize, initialState, step, logits, softmax, run, sample,
    };
  }

  return {makeModel, CELLS};
})();
