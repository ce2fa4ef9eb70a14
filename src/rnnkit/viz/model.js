// The language model of an `rnnkit explain` page, run in the browser (rnnkit/viz/live_model.py documents the
// data format and the equations). Defines window.rnnkitModel (see makeModel) when the page carries weights.
// Each layer's step is its cell's own equations, traced by Python into a program of ATen operations
// (rnnkit/viz/step_program.py) that OPS below computes: no cell is written here, and any registered cell whose
// operations are all in OPS runs. Arithmetic is float64 on float32 weights: PyTorch's float32 forward differs
// from it by rounding only.
"use strict";

const rnnkitLiveModel = (function () {
  function decodeWeights(base64) {
    const bytes = atob(base64);
    const view = new DataView(new ArrayBuffer(bytes.length));
    for (let i = 0; i < bytes.length; i++) view.setUint8(i, bytes.charCodeAt(i));
    const weights = new Float32Array(bytes.length / 4);
    for (let i = 0; i < weights.length; i++) weights[i] = view.getFloat32(4 * i, true);  // stored little-endian
    return weights;
  }

  // ------------------------------------------------------------------------------- the step programs' operations
  // A tensor is {shape: [d0, d1, ...], data} with its numbers row-major (Float32Array for the weights, else
  // Float64Array); a program's numbers are Python's numbers (a scalar argument) or such tensors.
  const numel = (shape) => shape.reduce((a, b) => a * b, 1);
  const tensorOf = (shape, data) => ({shape, data: data || new Float64Array(numel(shape))});
  const sigmoid = (a) => 1 / (1 + Math.exp(-a));
  const softplus = (a, beta = 1, threshold = 20) => (a * beta > threshold ? a : Math.log1p(Math.exp(a * beta)) / beta);
  const axis = (dim, rank) => (dim < 0 ? dim + rank : dim);

  // f applied element by element to operands broadcast together as torch broadcasts (numbers are scalars).
  function elementwise(f, ...operands) {
    const shapes = operands.map((o) => (typeof o === "object" ? o.shape : []));
    const rank = Math.max(...shapes.map((s) => s.length));
    const shape = [];
    for (let d = 0; d < rank; d++) {
      let n = 1;
      for (const s of shapes) {
        const k = s[d - (rank - s.length)];
        if (k !== undefined && k !== 1) n = k;
      }
      shape.push(n);
    }
    const out = tensorOf(shape);
    const n = out.data.length;
    const read = operands.map((o, j) => {
      if (typeof o !== "object") {
        const value = Number(o);
        return () => value;
      }
      if (o.data.length === n) return (i) => o.data[i];  // same numbers in the same order (leading 1s aside)
      const own = shapes[j], strides = new Array(rank).fill(0);
      for (let d = own.length - 1, step = 1; d >= 0; step *= own[d], d--) {
        if (own[d] !== 1) strides[d + rank - own.length] = step;
      }
      return (i) => {
        let at = 0;
        for (let d = rank - 1; d >= 0; d--) {
          const k = i % shape[d];
          i = (i - k) / shape[d];
          at += k * strides[d];
        }
        return o.data[at];
      };
    });
    const [a, b, c] = read;
    if (read.length === 1) for (let i = 0; i < n; i++) out.data[i] = f(a(i));
    else if (read.length === 2) for (let i = 0; i < n; i++) out.data[i] = f(a(i), b(i));
    else for (let i = 0; i < n; i++) out.data[i] = f(a(i), b(i), c(i));
    return out;
  }

  // (n, K) @ (K, M): rows of b scaled and summed; a zero of a (a one-hot input) costs nothing.
  function mm(a, b) {
    const [n, K] = a.shape, M = b.shape[1];
    const out = tensorOf([n, M]);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < K; k++) {
        const v = a.data[i * K + k];
        if (v === 0) continue;
        for (let j = 0, row = k * M, base = i * M; j < M; j++) out.data[base + j] += v * b.data[row + j];
      }
    }
    return out;
  }

  function transpose(a) {  // a 2-d tensor, copied: the weights are transposed once, when the model loads
    if (a.shape.length < 2) return a;
    const [rows, cols] = a.shape;
    const out = tensorOf([cols, rows], new a.data.constructor(rows * cols));
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out.data[c * rows + r] = a.data[r * cols + c];
    return out;
  }

  // The parts of a along dim, of the given sizes.
  function split(a, sizes, dim) {
    dim = axis(dim, a.shape.length);
    const outer = numel(a.shape.slice(0, dim)), inner = numel(a.shape.slice(dim + 1)), width = a.shape[dim];
    let start = 0;
    return sizes.map((size) => {
      const shape = a.shape.slice();
      shape[dim] = size;
      const out = tensorOf(shape);
      for (let o = 0; o < outer; o++) {
        out.data.set(a.data.subarray((o * width + start) * inner, (o * width + start + size) * inner), o * size * inner);
      }
      start += size;
      return out;
    });
  }

  function reshape(a, shape) {  // -1 takes what is left; the numbers keep their order
    const known = shape.reduce((p, d) => (d === -1 ? p : p * d), 1);
    return tensorOf(shape.map((d) => (d === -1 ? a.data.length / known : d)), a.data);
  }

  function layerNorm(x, normalized, weight, bias, eps) {  // -> [y, mean, rstd] over the last dims
    const size = numel(normalized), rows = x.data.length / size;
    const y = tensorOf(x.shape), mean = tensorOf([rows]), rstd = tensorOf([rows]);
    for (let r = 0; r < rows; r++) {
      let m = 0;
      for (let i = 0; i < size; i++) m += x.data[r * size + i];
      m /= size;
      let variance = 0;
      for (let i = 0; i < size; i++) variance += (x.data[r * size + i] - m) ** 2;
      const inv = 1 / Math.sqrt(variance / size + eps);
      for (let i = 0; i < size; i++) {
        const normal = (x.data[r * size + i] - m) * inv;
        y.data[r * size + i] = normal * (weight ? weight.data[i] : 1) + (bias ? bias.data[i] : 0);
      }
      mean.data[r] = m;
      rstd.data[r] = inv;
    }
    return [y, mean, rstd];
  }

  // ATen's operations, by the names torch.fx records (rnnkit/viz/step_program.py reads this table's names: an
  // operation missing here leaves a cell that uses it to the static page). `alpha` scales the second operand.
  const OPS = {
    "aten.add.Tensor": (a, b, alpha = 1) => elementwise((x, y) => x + alpha * y, a, b),
    "aten.add.Scalar": (a, b, alpha = 1) => elementwise((x, y) => x + alpha * y, a, b),
    "aten.sub.Tensor": (a, b, alpha = 1) => elementwise((x, y) => x - alpha * y, a, b),
    "aten.sub.Scalar": (a, b, alpha = 1) => elementwise((x, y) => x - alpha * y, a, b),
    "aten.rsub.Scalar": (a, b, alpha = 1) => elementwise((x, y) => y - alpha * x, a, b),
    "aten.rsub.Tensor": (a, b, alpha = 1) => elementwise((x, y) => y - alpha * x, a, b),
    "aten.mul.Tensor": (a, b) => elementwise((x, y) => x * y, a, b),
    "aten.mul.Scalar": (a, b) => elementwise((x, y) => x * y, a, b),
    "aten.div.Tensor": (a, b) => elementwise((x, y) => x / y, a, b),
    "aten.div.Scalar": (a, b) => elementwise((x, y) => x / y, a, b),
    "aten.pow.Tensor_Scalar": (a, b) => elementwise((x, y) => x ** y, a, b),
    "aten.maximum.default": (a, b) => elementwise(Math.max, a, b),
    "aten.minimum.default": (a, b) => elementwise(Math.min, a, b),
    "aten.neg.default": (a) => elementwise((x) => -x, a),
    "aten.abs.default": (a) => elementwise(Math.abs, a),
    "aten.exp.default": (a) => elementwise(Math.exp, a),
    "aten.log.default": (a) => elementwise(Math.log, a),
    "aten.log1p.default": (a) => elementwise(Math.log1p, a),
    "aten.sqrt.default": (a) => elementwise(Math.sqrt, a),
    "aten.rsqrt.default": (a) => elementwise((x) => 1 / Math.sqrt(x), a),
    "aten.reciprocal.default": (a) => elementwise((x) => 1 / x, a),
    "aten.sigmoid.default": (a) => elementwise(sigmoid, a),
    "aten.tanh.default": (a) => elementwise(Math.tanh, a),
    "aten.relu.default": (a) => elementwise((x) => Math.max(0, x), a),
    "aten.softplus.default": (a, beta = 1, threshold = 20) => elementwise((x) => softplus(x, beta, threshold), a),
    "aten.clamp.default": (a, low = null, high = null) => elementwise(
      (x) => Math.min(high === null ? Infinity : high, Math.max(low === null ? -Infinity : low, x)), a),
    "aten.clamp_min.default": (a, low) => elementwise((x) => Math.max(low, x), a),
    "aten.clamp_max.default": (a, high) => elementwise((x) => Math.min(high, x), a),
    "aten.ge.Scalar": (a, b) => elementwise((x, y) => Number(x >= y), a, b),
    "aten.gt.Scalar": (a, b) => elementwise((x, y) => Number(x > y), a, b),
    "aten.le.Scalar": (a, b) => elementwise((x, y) => Number(x <= y), a, b),
    "aten.lt.Scalar": (a, b) => elementwise((x, y) => Number(x < y), a, b),
    "aten.where.self": (condition, a, b) => elementwise((c, x, y) => (c ? x : y), condition, a, b),
    "aten.mm.default": mm,
    "aten.addmm.default": (bias, a, b, beta = 1, alpha = 1) =>
      elementwise((x, y) => beta * x + alpha * y, bias, mm(a, b)),
    "aten.t.default": transpose,
    "aten.split.Tensor": (a, size, dim = 0) => {
      const width = a.shape[axis(dim, a.shape.length)];
      const sizes = [];
      for (let start = 0; start < width; start += size) sizes.push(Math.min(size, width - start));
      return split(a, sizes, dim);
    },
    "aten.split_with_sizes.default": (a, sizes, dim = 0) => split(a, sizes, dim),
    "aten.slice.Tensor": (a, dim = 0, start = 0, end = null, step = 1) => {
      if (step !== 1) throw new Error("slices with a step are not supported");
      const width = a.shape[axis(dim, a.shape.length)];
      const from = Math.max(0, start < 0 ? start + width : Math.min(start, width));
      const to = end === null ? width : Math.max(from, end < 0 ? end + width : Math.min(end, width));
      return split(a, [from, to - from, width - to], dim)[1];
    },
    "aten.view.default": reshape,
    "aten.reshape.default": reshape,
    "aten._unsafe_view.default": reshape,
    "aten.unsqueeze.default": (a, dim) => {
      const shape = a.shape.slice();
      shape.splice(axis(dim, shape.length + 1), 0, 1);
      return tensorOf(shape, a.data);
    },
    "aten.squeeze.dim": (a, dim) => {
      const shape = a.shape.slice(), d = axis(dim, shape.length);
      if (shape[d] === 1) shape.splice(d, 1);
      return tensorOf(shape, a.data);
    },
    "aten.expand.default": (a, shape) => {  // -1 keeps a's size; broadcasting a against zeros of the shape
      const full = shape.map((d, i) => (d === -1 ? a.shape[i - (shape.length - a.shape.length)] : d));
      return elementwise((x) => x, a, tensorOf(full));
    },
    "aten.clone.default": (a) => a,
    "aten.alias.default": (a) => a,
    "aten.detach.default": (a) => a,
    "aten._to_copy.default": (a) => a,
    "aten.native_layer_norm.default": layerNorm,
    "getitem": (parts, index) => parts[index],
  };

  // A cell's step as Python traced it (rnnkit/viz/step_program.py): inputs by name (the layer's parameters, then
  // "x" and the state's parts "h", "c"), then operations, each reading earlier values by index. What depends on
  // the parameters alone (a transposed weight) is computed once, here; `run` computes the rest of a step.
  function compileStep(program, parameters) {
    const count = program.inputs.length + program.nodes.length;
    const values = new Array(count), fixed = new Array(count).fill(false);
    const slot = {};
    program.inputs.forEach((name, i) => {
      if (name in parameters) {
        values[i] = parameters[name];
        fixed[i] = true;
      } else {
        slot[name] = i;
      }
    });
    const refs = (arg, into) => {
      if (Array.isArray(arg)) arg.forEach((a) => refs(a, into));
      else if (arg !== null && typeof arg === "object") into.push(arg.ref);
      return into;
    };
    const resolve = (arg, v) => {
      if (Array.isArray(arg)) return arg.map((a) => resolve(a, v));
      if (arg !== null && typeof arg === "object") return v[arg.ref];
      return arg;
    };
    const base = program.inputs.length;
    const pending = [];
    program.nodes.forEach(([op, args], j) => {
      const operation = OPS[op];
      if (!operation) throw new Error("no JavaScript for " + op);
      if (refs(args, []).every((r) => fixed[r])) {
        values[base + j] = operation(...resolve(args, values));
        fixed[base + j] = true;
      } else {
        pending.push([base + j, operation, args]);
      }
    });
    return function run(inputs) {  // {x, h, c}: tensors -> the new state's parts, as the program's outputs
      const v = values.slice();
      for (const name in slot) v[slot[name]] = inputs[name];
      for (const [at, operation, args] of pending) v[at] = operation(...resolve(args, v));
      return program.outputs.map((r) => v[r.ref]);
    };
  }

  function makeModel(spec) {
    const weights = decodeWeights(spec.weights);
    const H = spec.hidden, V = spec.vocabSize, K = spec.layers;
    const tensor = (name) => {
      const entry = spec.tensors[name];
      if (!entry) throw new Error("the page's model has no tensor " + name);
      const [offset, shape] = entry;
      return tensorOf(shape, weights.subarray(offset, offset + numel(shape)));
    };
    const zeros = (n) => new Float64Array(n);
    // Each layer's step, compiled from its program with the layer's parameters (the tensors "k/NAME").
    const layers = spec.steps.map((program, k) => {
      const parameters = {};
      for (const name of program.inputs) if (spec.tensors[k + "/" + name]) parameters[name] = tensor(k + "/" + name);
      return compileStep(program, parameters);
    });
    const hasCell = spec.steps[0].outputs.length > 1;  // the state is (h, c)
    const embedding = spec.embedding ? tensor("embedding.weight") : null;
    const decoder = transpose(tensor("decoder.weight")), decoderBias = tensor("decoder.bias").data;  // (H, V)
    const zoneout = spec.zoneout || 0;
    const lookup = new Map(spec.symbols.map((symbol, id) => [symbol, id]));
    const whitespace = new Set(spec.whitespace);
    const row = (data) => tensorOf([1, data.length], data);

    // One step of layer k: returns {h, c} from the previous {h, c} (new arrays: callers keep old states).
    function cellStep(k, id, below, previous) {
      let x;
      if (k > 0) {
        x = below;
      } else if (embedding) {
        x = embedding.data.subarray(id * embedding.shape[1], (id + 1) * embedding.shape[1]);
      } else {
        x = zeros(spec.inputSize);  // one-hot: the product reads one row of the transposed input weight
        x[id] = 1;
      }
      const inputs = {x: row(x), h: row(previous.h)};
      if (hasCell) inputs.c = row(previous.c);
      const [h, c] = layers[k](inputs).map((part) => Float64Array.from(part.data));
      if (zoneout > 0) {  // in evaluation zoneout keeps the expectation: p h_{t-1} + (1 - p) h~_t
        for (let j = 0; j < h.length; j++) h[j] = zoneout * previous.h[j] + (1 - zoneout) * h[j];
        if (c) for (let j = 0; j < c.length; j++) c[j] = zoneout * previous.c[j] + (1 - zoneout) * c[j];
      }
      return {h, c: hasCell ? c : null};
    }

    function initialState() {
      return layers.map(() => ({h: zeros(H), c: hasCell ? zeros(H) : null}));
    }

    // The state after reading token `id` from `state` (one {h, c} per layer).
    function step(state, id) {
      const next = [];
      let below = null;
      for (let k = 0; k < K; k++) {
        next.push(cellStep(k, id, below, state[k]));
        below = next[k].h;
      }
      return next;
    }

    function logits(state, temperature) {
      const out = mm(row(state[K - 1].h), decoder).data;
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
      vocab: spec.symbols.slice(), level: spec.level, cell: spec.cell, layers: K, hidden: H, hasCell,
      tokenize, initialState, step, logits, softmax, run, sample,
    };
  }

  return {makeModel, OPS};
})();
