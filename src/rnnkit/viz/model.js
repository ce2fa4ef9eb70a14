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
  const softplus = (a) => Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a)));
  const logSigmoid = (a) => -softplus(-a);
  const candidate = (v) => (v >= 0 ? v + 0.5 : sigmoid(v));  // minGRU's g: v + 0.5 for v >= 0, σ(v) below
  const RGLRU_C = 8;  // log a_t = -c r_t softplus(-Λ)

  // Each cell: the gate blocks stacked in its input weight (and W_hh when it has one), whether it carries c as
  // well as h, the name of its input weight, and its step from the input projection gi = W x (all blocks) and,
  // with W_hh, gh = W_hh h_{t-1}. The equations are rnnkit.nn's (rnnkit/nn/cells/NAME.py).
  const CELLS = {
    rnn_tanh: {blocks: 1, step: elman(Math.tanh)},
    rnn_relu: {blocks: 1, step: elman((a) => Math.max(0, a))},
    lstm: {blocks: 4, cell: true, step: lstm},
    gru: {blocks: 3, step: gru},
    layernorm_lstm: {blocks: 4, cell: true, layerNorm: true, step: lstm},
    layernorm_gru: {blocks: 3, layerNorm: true, step: gru},
    mingru: {blocks: 2, linear: true, step: minGru},
    minlstm: {blocks: 3, linear: true, step: minLstm},
    rglru: {blocks: 1, linear: true, input: "weight_in", step: rgLru},
  };

  function elman(activation) {  // h = act(W_ih x + b_ih + W_hh h + b_hh)
    return (L, gi, gh, previous, h) => {
      for (let j = 0; j < h.length; j++) h[j] = activation(gi[j] + L.bias_ih[j] + gh[j] + L.bias_hh[j]);
    };
  }

  function lstm(L, gi, gh, previous, h, c) {  // gates i, f, g, o (torch.nn's order); layer norm: h = o tanh(LN_c(c))
    const H = h.length;
    const a = (j) => gi[j] + gh[j] + L.bias_ih[j] + L.bias_hh[j] + L.bias[j];
    const o = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const i = sigmoid(a(j)), f = sigmoid(a(H + j)), g = Math.tanh(a(2 * H + j));
      o[j] = sigmoid(a(3 * H + j));
      c[j] = f * previous.c[j] + i * g;
    }
    const read = Float64Array.from(c);
    if (L.ln_c_weight) layerNorm(read, 0, H, L.ln_c_weight, L.ln_c_bias);
    for (let j = 0; j < H; j++) h[j] = o[j] * Math.tanh(read[j]);
  }

  function gru(L, gi, gh, previous, h) {  // gates r, z, n; n = tanh(gi_n + b_in + r (gh_n + b_hn))
    const H = h.length;
    for (let j = 0; j < H; j++) {
      const r = sigmoid(gi[j] + L.bias_ih[j] + gh[j] + L.bias_hh[j]);
      const z = sigmoid(gi[H + j] + L.bias_ih[H + j] + gh[H + j] + L.bias_hh[H + j]);
      const n = Math.tanh(gi[2 * H + j] + L.bias_ih[2 * H + j] + r * (gh[2 * H + j] + L.bias_hh[2 * H + j]));
      h[j] = (1 - z) * n + z * previous.h[j];
    }
  }

  function minGru(L, gi, gh, previous, h) {  // z = σ(v_z), h = (1 - z) h_{t-1} + z g(v_h); rows [z; h~]
    const H = h.length;
    for (let j = 0; j < H; j++) {
      const z = sigmoid(gi[j] + L.bias_ih[j]);
      h[j] = (1 - z) * previous.h[j] + z * candidate(gi[H + j] + L.bias_ih[H + j]);
    }
  }

  function minLstm(L, gi, gh, previous, h) {  // f' = f / (f + i) = σ(log σ(v_f) - log σ(v_i)); rows [f; i; h~]
    const H = h.length;
    for (let j = 0; j < H; j++) {
      const forget = sigmoid(logSigmoid(gi[j] + L.bias_ih[j]) - logSigmoid(gi[H + j] + L.bias_ih[H + j]));
      h[j] = forget * previous.h[j] + (1 - forget) * candidate(gi[2 * H + j] + L.bias_ih[2 * H + j]);
    }
  }

  function rgLru(L, gi, gh, previous, h) {  // u = W_in x + b_in; h = a h_{t-1} + sqrt(1 - a²) (σ(W_x u + b_x) u)
    const H = h.length;
    const u = new Float64Array(H), va = new Float64Array(H), vx = new Float64Array(H);
    for (let j = 0; j < H; j++) u[j] = gi[j] + L.bias_in[j];
    matVec(L.weight_a, 0, H, H, u, va);
    matVec(L.weight_x, 0, H, H, u, vx);
    for (let j = 0; j < H; j++) {
      const r = sigmoid(va[j] + L.bias_a[j]), i = sigmoid(vx[j] + L.bias_x[j]);
      const a = Math.exp(-RGLRU_C * r * softplus(-L.lambda[j]));
      h[j] = a * previous.h[j] + Math.sqrt(1 - a * a) * (i * u[j]);
    }
  }

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
      return {rows: entry[1], cols: entry[2], values: weights.subarray(entry[0], entry[0] + entry[1] * entry[2])};
    };
    const zeros = (n) => new Float64Array(n);
    const G = kind.blocks * H;
    const layers = [];
    for (let k = 0; k < K; k++) {
      // Every parameter of the layer by its base name; a missing bias (bias=False) reads as zeros.
      const layer = {input: tensor(k + "/" + (kind.input || "weight_ih"), true), hh: tensor(k + "/weight_hh", false),
        gi: zeros(G), gh: zeros(G)};
      for (const name of ["bias_ih", "bias_hh", "bias", "bias_in", "bias_a", "bias_x"]) layer[name] = zeros(G);
      for (const name of Object.keys(spec.tensors)) {
        if (name.startsWith(k + "/")) layer[name.slice(name.indexOf("/") + 1)] = tensor(name).values;
      }
      if (!kind.linear && !layer.hh) throw new Error("the page's model has no tensor " + k + "/weight_hh");
      layers.push(layer);
    }
    const embedding = spec.embedding ? tensor("embedding.weight", true) : null;
    const decoder = tensor("decoder.weight", true), decoderBias = tensor("decoder.bias", true).values;
    const zoneout = spec.zoneout || 0;
    const lookup = new Map(spec.symbols.map((symbol, id) => [symbol, id]));
    const whitespace = new Set(spec.whitespace);

    // One step of layer k: returns {h, c} from the previous {h, c} (new arrays: callers keep old states).
    function cellStep(layer, k, id, below, previous) {
      const {gi, gh, input} = layer;
      if (k === 0 && !embedding) {  // a one-hot input picks column `id` of the input weight
        for (let r = 0; r < input.rows; r++) gi[r] = input.values[r * input.cols + id];
      } else {
        const x = k === 0 ? embedding.values.subarray(id * embedding.cols, (id + 1) * embedding.cols) : below;
        matVec(input.values, 0, input.rows, input.cols, x, gi);
      }
      if (layer.hh) matVec(layer.hh.values, 0, layer.hh.rows, layer.hh.cols, previous.h, gh);
      if (kind.layerNorm) {
        layerNorm(gi, 0, G, layer.ln_ih_weight, layer.ln_ih_bias);
        layerNorm(gh, 0, G, layer.ln_hh_weight, layer.ln_hh_bias);
      }
      const h = zeros(H);
      const c = kind.cell ? zeros(H) : null;
      kind.step(layer, gi, gh, previous, h, c);
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
      vocab: spec.symbols.slice(), level: spec.level, cell: cellName, layers: K, hidden: H, hasCell: Boolean(kind.cell),
      tokenize, initialState, step, logits, softmax, run, sample,
    };
  }

  return {makeModel, CELLS};
})();
