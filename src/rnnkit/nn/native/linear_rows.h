// The linear cells on the native engine: each cell's coefficients and their backward, vectorised (see linear.cpp).
// Included by linear.cpp only (one translation unit per kernel family keeps the build short).
#pragma once

#include "recurrence.h"

namespace rnnkit {
namespace {

// dL/dx's rows (L·N, In), to be written block by block; an empty tensor when dL/dx is not wanted.
Tensor empty_dx(const Sequence& s) {
  return s.input_grad ? at::empty({s.L() * s.N(), s.x.size(2)}, s.x.options()) : at::empty({0}, s.x.options());
}

constexpr double kRglruC = 8.0;  // Griffin's constant c: a = σ(Λ)^(c r)
constexpr int64_t kBlockRows = 2048;  // rows (steps × N) of a block of steps: large enough for efficient matmuls

// Units of work: row n × columns [j0, j1). Each runs its row's L steps in order, so units are independent.
// Enough of them for every thread (4 per thread, for balance), each a whole number of vectors and at least 64
// columns wide where H allows, so that every step reads whole cache lines of each stream.
template <typename scalar_t, typename F>
void for_units(int64_t L, int64_t N, int64_t H, const F& f) {
  if (N == 0 || H == 0) return;  // an empty batch or state: nothing to run
  const int64_t lanes = Vec<scalar_t>::size();
  const int64_t wanted = (4 * at::get_num_threads() + N - 1) / N;
  int64_t per_row = std::clamp<int64_t>(wanted, 1, std::max<int64_t>(1, H / 64));
  const int64_t width = (((H + per_row - 1) / per_row + lanes - 1) / lanes) * lanes;
  per_row = (H + width - 1) / width;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(L * width, 1));  // small work: one thread
  at::parallel_for(0, N * per_row, grain, [&](int64_t begin, int64_t end) {
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t n = unit / per_row, j0 = (unit % per_row) * width;
      f(n, j0, std::min(j0 + width, H));
    }
  });
}

// Steps per block: about kBlockRows rows (steps × N).
int64_t block_steps(int64_t L, int64_t N) {
  return std::min(L, std::max<int64_t>(1, kBlockRows / std::max<int64_t>(N, 1)));
}

// The number of steps of each row (rows sorted by decreasing length): L for all without batch_sizes.
std::vector<int64_t> row_lengths(const Sequence& s) {
  std::vector<int64_t> len(s.N(), 0);
  for (int64_t t = 0; t < s.L(); ++t) {
    for (int64_t n = 0; n < s.alive(t); ++n) len[n] = t + 1;
  }
  return len;
}

// g(v) = max(v, 0) + σ(min(v, 0)) and, when asked, g'(v): 1 from 0 up, σ(v) (1 − σ(v)) below.
template <typename scalar_t>
Vec<scalar_t> candidate(const Vec<scalar_t>& v, Vec<scalar_t>* slope = nullptr) {
  using V = Vec<scalar_t>;
  const V zero(0);
  const V s = sigmoid(at::vec::minimum(v, zero));
  if (slope != nullptr) *slope = V::blendv(s * (V(1) - s), V(1), v >= zero);
  return at::vec::maximum(v, zero) + s;
}

// minGRU and minLSTM: the input projection x W_ih^T + b_ih (G = W columns) is all there is to project.
struct InputProjection {
  Tensor w, b;  // (G, In), (G) or undefined
  explicit InputProjection(const Sequence& s) : w(s.params.at(0)), b(s.bias ? s.params.at(1) : Tensor()) {}

  // the pre-activations of rows [r0, r0 + rows) of (L·N) into ws2 (L·N, G)
  void project(const Sequence& s, const Tensor& ws2, int64_t r0, int64_t rows) const {
    Tensor out = ws2.narrow(0, r0, rows);
    const Tensor x2 = s.x.view({s.L() * s.N(), s.x.size(2)}).narrow(0, r0, rows);
    if (b.defined()) {
      at::addmm_out(out, b, x2, w.t());
    } else {
      at::mm_out(out, x2, w.t());
    }
  }

  // The gradients, block of steps by block: dx's rows written, the parameters' gradients summed.
  struct Gradients {
    Tensor dx, dw, db;  // (L·N, In), (G, In), (G) or undefined
  };

  Gradients start(const Sequence& s) const {
    return {empty_dx(s), at::zeros_like(w),
            b.defined() ? at::zeros_like(b) : Tensor()};
  }

  // d: dL/d(pre-activations) of the steps from t0 on, (T, N, G)
  void add(const Sequence& s, const Tensor&, const Tensor& d, int64_t t0, Gradients& g) const {
    const int64_t N = s.N(), In = s.x.size(2), rows = d.size(0) * N;
    const Tensor d2 = d.view({rows, w.size(0)});
    if (s.input_grad) {
      Tensor dx = g.dx.narrow(0, t0 * N, rows);
      at::mm_out(dx, d2, w);
    }
    g.dw.addmm_(d2.t(), s.x.view({s.L() * N, In}).narrow(0, t0 * N, rows));
    if (g.db.defined()) g.db.add_(d2.sum(0));
  }

  // dx (L, N, In) and the gradients of weight_ih, bias_ih
  std::pair<Tensor, std::vector<Tensor>> finish(const Sequence& s, const Gradients& g, const Tensor&) const {
    std::vector<Tensor> grads{g.dw};
    if (g.db.defined()) grads.push_back(g.db);
    return {s.input_grad ? g.dx.view({s.L(), s.N(), s.x.size(2)}) : g.dx, grads};
  }
};

// Each cell gives, for one step of one row at lanes [j, j + k) (w: the row of ws, d: the row of its gradient):
//   coefficients(w, j, k, a, b)             a_t, b_t from the pre-activations; stores what backward reads into w
//   gradients(w, d, acc, j, k, db, h_prev)  from db = dL/db_t and h_{t-1}: writes dL/d(pre-activations) into d
//                                           (and rglru: adds d log a ⊙ r into acc, the row's (H) sum); returns a_t
// and, block of steps by block: project (the block's pre-activations into ws); start, add and finish (the gradients
// of the projections from the block's dL/d(pre-activations): dx's rows, the parameters' gradients summed).

template <typename scalar_t_>
struct MinGru : InputProjection {
  using scalar_t = scalar_t_;
  using V = Vec<scalar_t>;
  static constexpr int64_t kWidth = 2;  // W = 2H
  static constexpr bool kAccumulates = false;
  int64_t H;
  explicit MinGru(const Sequence& s) : InputProjection(s), H(s.h0.size(1)) {}

  void coefficients(scalar_t* w, int64_t j, int64_t k, V& a, V& b) const {
    const V z = sigmoid(V::loadu(w + j, k));
    z.store(w + j, k);
    a = V(1) - z;
    b = z * candidate<scalar_t>(V::loadu(w + H + j, k));
  }

  // h~ = (1 − z) h_{t-1} + z h̃:  dv_z = db (h̃ − h_{t-1}) z (1 − z),  dv_h = db z g'(v_h)
  V gradients(const scalar_t* w, scalar_t* d, scalar_t*, int64_t j, int64_t k, const V& db, const V& h_prev) const {
    const V z = V::loadu(w + j, k);
    const V a = V(1) - z;
    V slope;
    const V cand = candidate<scalar_t>(V::loadu(w + H + j, k), &slope);
    (db * (cand - h_prev) * z * a).store(d + j, k);
    (db * z * slope).store(d + H + j, k);
    return a;
  }
};

template <typename scalar_t_>
struct MinLstm : InputProjection {
  using scalar_t = scalar_t_;
  using V = Vec<scalar_t>;
  static constexpr int64_t kWidth = 3;  // W = 3H
  static constexpr bool kAccumulates = false;
  int64_t H;
  explicit MinLstm(const Sequence& s) : InputProjection(s), H(s.h0.size(1)) {}

  // f' and i' from f and i, the same numbers in forward and backward; i' by its own ratio rather than as 1 − f',
  // which would lose its digits where f' is close to 1
  static void normalise(const V& f, const V& i, V& f_n, V& i_n) {
    const V eps(std::numeric_limits<scalar_t>::min());
    const V inv = V(1) / (f + i + eps + eps);
    f_n = (f + eps) * inv;
    i_n = (i + eps) * inv;
  }

  void coefficients(scalar_t* w, int64_t j, int64_t k, V& a, V& b) const {
    const V f = sigmoid(V::loadu(w + j, k));
    const V i = sigmoid(V::loadu(w + H + j, k));
    f.store(w + j, k);
    i.store(w + H + j, k);
    V i_n;
    normalise(f, i, a, i_n);
    b = i_n * candidate<scalar_t>(V::loadu(w + 2 * H + j, k));
  }

  // h~ = f' h_{t-1} + i' h̃ with df'/dv_f = f' i' (1 − f), df'/dv_i = −f' i' (1 − i), i' = 1 − f':
  //   dd = db (h_{t-1} − h̃) f' i',  dv_f = dd (1 − f),  dv_i = −dd (1 − i),  dv_h = db i' g'(v_h)
  V gradients(const scalar_t* w, scalar_t* d, scalar_t*, int64_t j, int64_t k, const V& db, const V& h_prev) const {
    const V one(1);
    const V f = V::loadu(w + j, k), i = V::loadu(w + H + j, k);
    V f_n, i_n, slope;
    normalise(f, i, f_n, i_n);
    const V cand = candidate<scalar_t>(V::loadu(w + 2 * H + j, k), &slope);
    const V dd = db * (h_prev - cand) * f_n * i_n;
    (dd * (one - f)).store(d + j, k);
    (dd * (i - one)).store(d + H + j, k);
    (db * i_n * slope).store(d + 2 * H + j, k);
    return f_n;
  }
};

template <typename scalar_t_>
struct Rglru {
  using scalar_t = scalar_t_;
  using V = Vec<scalar_t>;
  static constexpr int64_t kWidth = 3;  // W = 3H
  static constexpr bool kAccumulates = true;  // dΛ sums d log a ⊙ r over steps and rows
  int64_t H;
  // parameters in declaration order: weight_in, [bias_in], weight_a, [bias_a], weight_x, [bias_x], lambda
  Tensor w_in, b_in, w_gates, b_gates, lambda;  // w_gates = [W_a; W_x] (2H, H), b_gates = [b_a; b_x]
  Tensor rate;  // (H): ρ = −c softplus(−Λ), so that log a = ρ r
  const scalar_t* rate_p;

  explicit Rglru(const Sequence& s) : H(s.h0.size(1)) {
    const auto& p = s.params;
    w_in = p.at(0);
    const size_t k = s.bias ? 1 : 0;  // the parameters after each weight shift by its bias
    w_gates = at::cat({p.at(1 + k), p.at(2 + 2 * k)});
    if (s.bias) {
      b_in = p.at(1);
      b_gates = at::cat({p.at(3), p.at(5)});
    }
    lambda = p.at(3 + 3 * k);
    rate = (at::softplus(-lambda) * -kRglruC).contiguous();
    rate_p = rate.data_ptr<scalar_t>();
  }

  // the pre-activations [u | v_a | v_x] of rows [r0, r0 + rows) of (L·N) into ws2 (L·N, 3H)
  void project(const Sequence& s, const Tensor& ws2, int64_t r0, int64_t rows) const {
    const Tensor block = ws2.narrow(0, r0, rows);
    Tensor u = block.narrow(1, 0, H), gates = block.narrow(1, H, 2 * H);  // rows 3H apart
    const Tensor x2 = s.x.view({s.L() * s.N(), s.x.size(2)}).narrow(0, r0, rows);
    if (b_in.defined()) {
      at::addmm_out(u, b_in, x2, w_in.t());
      at::addmm_out(gates, b_gates, u, w_gates.t());
    } else {
      at::mm_out(u, x2, w_in.t());
      at::mm_out(gates, u, w_gates.t());
    }
  }

  // a and sqrt(1 − a²) from log a = ρ r by one transcendental: with e = expm1(log a) = a − 1, exact near a = 1,
  // 1 − a² = −e (e + 2) without cancellation
  static void decay(const V& rho, const V& r, V& a, V& scale) {
    const V e = (rho * r).expm1();
    a = e + V(1);
    scale = (e * (e + V(2))).neg().sqrt();
  }

  void coefficients(scalar_t* w, int64_t j, int64_t k, V& a, V& b) const {
    const V r = sigmoid(V::loadu(w + H + j, k));
    const V i = sigmoid(V::loadu(w + 2 * H + j, k));
    r.store(w + H + j, k);
    i.store(w + 2 * H + j, k);
    V scale;
    decay(V::loadu(rate_p + j, k), r, a, scale);
    b = scale * i * V::loadu(w + j, k);
  }

  // with s = sqrt(1 − a²) and ds/d log a = −a² / s (a / s taken as a s / (s² + ε): 0 where s = 0):
  //   d log a = db a (h_{t-1} − i u a / s),  dv_a = d log a ρ r (1 − r),  dv_x = db s u i (1 − i),
  //   du (direct) = db s i;  acc += d log a r  (dΛ = c σ(−Λ) Σ d log a r)
  V gradients(const scalar_t* w, scalar_t* d, scalar_t* acc, int64_t j, int64_t k, const V& db,
              const V& h_prev) const {
    const V one(1);
    const V u = V::loadu(w + j, k), r = V::loadu(w + H + j, k), i = V::loadu(w + 2 * H + j, k);
    const V rho = V::loadu(rate_p + j, k);
    V a, scale;
    decay(rho, r, a, scale);
    const V ratio = a * scale / (scale * scale + V(std::numeric_limits<scalar_t>::min()));
    const V d_log_a = db * a * (h_prev - i * u * ratio);
    (V::loadu(acc + j, k) + d_log_a * r).store(acc + j, k);
    (d_log_a * rho * r * (one - r)).store(d + H + j, k);
    const V d_iu = db * scale;
    (d_iu * u * i * (one - i)).store(d + 2 * H + j, k);
    (d_iu * i).store(d + j, k);
    return a;
  }

  // The gradients, block of steps by block: dx's rows written, the parameters' gradients summed.
  struct Gradients {
    Tensor dx, dw_in, db_in, dw_gates, db_gates;  // (L·N, In), (H, In), (H), (2H, H), (2H); biases or undefined
  };

  Gradients start(const Sequence& s) const {
    const bool bias = b_in.defined();
    return {empty_dx(s), at::zeros_like(w_in),
            bias ? at::zeros_like(b_in) : Tensor(), at::zeros_like(w_gates), bias ? at::zeros_like(b_gates) : Tensor()};
  }

  // d (T, N, 3H) = [du direct | dv_a | dv_x] of the steps from t0 on
  void add(const Sequence& s, const Tensor& ws, const Tensor& d, int64_t t0, Gradients& g) const {
    const int64_t N = s.N(), In = s.x.size(2), rows = d.size(0) * N;
    const Tensor d2 = d.view({rows, 3 * H});
    Tensor du = d2.narrow(1, 0, H);
    const Tensor d_gates = d2.narrow(1, H, 2 * H);
    const Tensor u = ws.view({s.L() * N, 3 * H}).narrow(0, t0 * N, rows).narrow(1, 0, H);
    du.addmm_(d_gates, w_gates);  // the gates' path back to u
    g.dw_gates.addmm_(d_gates.t(), u);
    if (s.input_grad) {
      Tensor dx = g.dx.narrow(0, t0 * N, rows);
      at::mm_out(dx, du, w_in);
    }
    g.dw_in.addmm_(du.t(), s.x.view({s.L() * N, In}).narrow(0, t0 * N, rows));
    if (g.db_in.defined()) {
      g.db_in.add_(du.sum(0));
      g.db_gates.add_(d_gates.sum(0));
    }
  }

  // dx (L, N, In) and the parameters' gradients in declaration order; acc (N, H): Σ_t d log a ⊙ r per row
  std::pair<Tensor, std::vector<Tensor>> finish(const Sequence& s, const Gradients& g, const Tensor& acc) const {
    const bool bias = g.db_in.defined();
    std::vector<Tensor> grads{g.dw_in};
    if (bias) grads.push_back(g.db_in);
    grads.push_back(g.dw_gates.narrow(0, 0, H));
    if (bias) grads.push_back(g.db_gates.narrow(0, 0, H));
    grads.push_back(g.dw_gates.narrow(0, H, H));
    if (bias) grads.push_back(g.db_gates.narrow(0, H, H));
    grads.push_back(at::sigmoid(-lambda) * kRglruC * acc.sum(0));  // dΛ = c σ(−Λ) Σ d log a ⊙ r
    return {s.input_grad ? g.dx.view({s.L(), s.N(), s.x.size(2)}) : g.dx, grads};
  }
};

}  // namespace
}  // namespace rnnkit
