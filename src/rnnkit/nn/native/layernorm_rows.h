// The layer-normalised cells on the native engine: parameters, layouts, one row's layer norm, and the passes over the rows of one step (see layernorm.cpp).
// Included by layernorm.cpp only (one translation unit per kernel family keeps the build short).
#pragma once

#include <tuple>

#include "recurrence.h"

namespace rnnkit {
namespace {

enum class Family { Lstm, Gru };

constexpr double kEps = 1e-5;        // the norms' epsilon: LN_EPS in rnnkit/nn/cells/base.py (torch.nn.LayerNorm's)
constexpr int64_t kBlockRows = 256;  // rows (steps × N) per block: a full-speed matrix multiply, a small buffer

// The statistics at the end of a workspace row.
enum Stat { kMeanIh = 0, kRstdIh = 1, kRstdHh = 2, kRstdC = 3 };

// The parameters of one layer-direction by role, in the cell's declaration order: weight_ih, weight_hh,
// [bias | bias_ih, bias_hh], ln_ih_weight, ln_ih_bias, ln_hh_weight, ln_hh_bias[, ln_c_weight, ln_c_bias].
struct LnParams {
  Tensor w_ih, w_hh, b_ih, b_hh, ln_ih_w, ln_ih_b, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b;  // lstm: its bias in b_ih
  LnParams(Family family, const Sequence& s) {
    size_t k = 0;
    w_ih = s.params.at(k++);
    w_hh = s.params.at(k++);
    if (s.bias) {
      b_ih = s.params.at(k++);
      if (family == Family::Gru) b_hh = s.params.at(k++);
    }
    ln_ih_w = s.params.at(k++);
    ln_ih_b = s.params.at(k++);
    ln_hh_w = s.params.at(k++);
    ln_hh_b = s.params.at(k++);
    if (family == Family::Lstm) {
      ln_c_w = s.params.at(k++);
      ln_c_b = s.params.at(k++);
    }
  }
};

struct Layout {
  int64_t H, G, W;  // hidden, gate width, workspace width per row-step
  int64_t c_at;     // ĉ (lstm)
  int64_t stats_at;
};

Layout layout_of(Family family, const LnParams& p) {
  const int64_t G = p.w_ih.size(0);
  if (family == Family::Lstm) return {G / 4, G, G + G / 4 + 4, G, G + G / 4};
  return {G / 3, G, G + 3, G, G};
}

// The shifts added after the norms, each summed once: the LSTM's all go on a; the GRU's r and z parts of β_hh + b_hh
// go with gi's, and its n part (inside r ⊙ (...)) stays apart.
struct Shifts {
  Tensor ih;  // (G)
  Tensor n;   // (H), gru
};

Shifts shifts_of(Family family, const LnParams& p, int64_t H) {
  if (family == Family::Lstm) {
    Tensor ih = p.ln_ih_b + p.ln_hh_b;
    if (p.b_ih.defined()) ih.add_(p.b_ih);
    return {ih, Tensor()};
  }
  Tensor hh = p.b_hh.defined() ? p.ln_hh_b + p.b_hh : p.ln_hh_b;
  Tensor ih = p.b_ih.defined() ? p.ln_ih_b + p.b_ih : p.ln_ih_b.clone();
  ih.narrow(0, 0, 2 * H).add_(hh.narrow(0, 0, 2 * H));
  return {ih, hh.narrow(0, 2 * H, H).contiguous()};
}

// What every row pass of one layer-direction reads besides its rows: sizes and the pointwise parameters.
template <typename scalar_t>
struct Pointwise {
  int64_t H, G, W, c_at, stats_at;
  const scalar_t *g_ih, *g_hh, *shift_ih;  // (G)
  const scalar_t* shift_n;                 // (H) gru
  const scalar_t *g_c, *b_c;               // (H) lstm
  Pointwise(const Layout& lay, const LnParams& p, const Shifts& sh)
      : H(lay.H), G(lay.G), W(lay.W), c_at(lay.c_at), stats_at(lay.stats_at),
        g_ih(p.ln_ih_w.data_ptr<scalar_t>()), g_hh(p.ln_hh_w.data_ptr<scalar_t>()),
        shift_ih(sh.ih.data_ptr<scalar_t>()), shift_n(sh.n.defined() ? sh.n.data_ptr<scalar_t>() : nullptr),
        g_c(p.ln_c_w.defined() ? p.ln_c_w.data_ptr<scalar_t>() : nullptr),
        b_c(p.ln_c_b.defined() ? p.ln_c_b.data_ptr<scalar_t>() : nullptr) {}

  // γ_ih ⊙ x̂_ih + shift_ih at [at, at + k), gi the row's x W_ih^T: the input's share of a pre-activation
  Vec<scalar_t> input(const scalar_t* gi, int64_t at, int64_t k, scalar_t mean_ih, scalar_t rstd_ih) const {
    using V = Vec<scalar_t>;
    return V::loadu(g_ih + at, k) * ((V::loadu(gi + at, k) - V(mean_ih)) * V(rstd_ih)) + V::loadu(shift_ih + at, k);
  }
  // γ_hh ⊙ x̂_hh at [at, at + k): the recurrent share (the GRU's n adds shift_n)
  Vec<scalar_t> recurrent(int64_t at, int64_t k, const Vec<scalar_t>& x_hh) const {
    return Vec<scalar_t>::loadu(g_hh + at, k) * x_hh;
  }
};

// The states a step reads and the regularisers, by step and row: what Sequence carries, as raw pointers.
template <typename scalar_t>
struct Rows {
  int64_t N, H;              // H is also P: these cells have no projection
  const scalar_t *h0, *c0;   // (N, H); c0 null for the gru
  const scalar_t *y, *cs;    // (L, N, H) every h_t and c_t
  const bool* resets;        // (L, N) or null
  const scalar_t* dropout;   // (N, H) recurrent dropout's mask or null
  const scalar_t *zh, *zc;   // zoneout's keep masks (L, N, H) or null
  scalar_t zp;               // zoneout's keep probability where the masks are null
  bool zoneout;

  Rows(const Sequence& s, const Tensor& y_, const Tensor& cs_)
      : N(s.N()), H(s.h0.size(1)), h0(s.h0.data_ptr<scalar_t>()),
        c0(s.c0.defined() ? s.c0.data_ptr<scalar_t>() : nullptr), y(y_.data_ptr<scalar_t>()),
        cs(cs_.numel() > 0 ? cs_.data_ptr<scalar_t>() : nullptr),
        resets(s.resets.defined() ? s.resets.data_ptr<bool>() : nullptr),
        dropout(s.recurrent_mask.defined() ? s.recurrent_mask.data_ptr<scalar_t>() : nullptr),
        zh(s.zoneout_h.defined() ? s.zoneout_h.data_ptr<scalar_t>() : nullptr),
        zc(s.zoneout_c.defined() ? s.zoneout_c.data_ptr<scalar_t>() : nullptr), zp(scalar_t(s.zoneout_p)),
        zoneout(s.zoneout()) {}

  // whether row n reads the initial state at step t (the first step, or a reset)
  bool starts(int64_t t, int64_t n) const { return t == 0 || (resets != nullptr && resets[t * N + n]); }
  const scalar_t* h_prev(int64_t t, int64_t n) const { return starts(t, n) ? h0 + n * H : y + ((t - 1) * N + n) * H; }
  const scalar_t* c_prev(int64_t t, int64_t n) const { return starts(t, n) ? c0 + n * H : cs + ((t - 1) * N + n) * H; }
  // zoneout's keep factor m at [j, j + k) of row n, step t, from masks (zh or zc) or the probability
  Vec<scalar_t> keep(const scalar_t* masks, int64_t t, int64_t n, int64_t j, int64_t k) const {
    return masks != nullptr ? Vec<scalar_t>::loadu(masks + (t * N + n) * H + j, k) : Vec<scalar_t>(zp);
  }
};

// ---- one row's layer norm ----------------------------------------------------------------------------------------

template <typename scalar_t>
scalar_t lanes_sum(const Vec<scalar_t>& v) {
  scalar_t lanes[Vec<scalar_t>::size()];
  v.store(lanes);
  scalar_t sum = 0;
  for (int64_t l = 0; l < Vec<scalar_t>::size(); ++l) sum += lanes[l];
  return sum;
}

// (mean, rstd) of x[0, n): two passes (the row is in L1), as exact as torch's layer norm. loadu fills a tail's
// missing lanes with zeros, which the sum ignores and the squares must mask.
template <typename scalar_t>
std::pair<scalar_t, scalar_t> moments(const scalar_t* x, int64_t n) {
  using V = Vec<scalar_t>;
  V sum(0);
  for (int64_t j = 0; j < n; j += V::size()) sum = sum + V::loadu(x + j, std::min<int64_t>(V::size(), n - j));
  const scalar_t mean = lanes_sum(sum) / n;
  V squares(0);
  for (int64_t j = 0; j < n; j += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), n - j);
    const V d = V::set(V(0), V::loadu(x + j, k) - V(mean), k);
    squares = squares + d * d;
  }
  const scalar_t var = lanes_sum(squares) / n;
  return {mean, scalar_t(1) / std::sqrt(var + scalar_t(kEps))};
}

// The backward of LN(x) = γ ⊙ x̂ + β over one row of n, x̂ = (x − shift) · scale (the raw input with its mean and
// rstd, or x̂ itself with 0 and 1): writes dx = rstd · (γ ⊙ dy − mean(γ ⊙ dy) − x̂ · mean(γ ⊙ dy ⊙ x̂)) into out,
// which may be dy or x (each element is read before it is written), and adds dy ⊙ x̂ into d_gain and, where given,
// dy into d_shift.
template <typename scalar_t>
void layer_norm_backward_row(const scalar_t* dy, const scalar_t* x, scalar_t shift, scalar_t scale, scalar_t rstd,
                             const scalar_t* gamma, int64_t n, scalar_t* d_gain, scalar_t* d_shift, scalar_t* out) {
  using V = Vec<scalar_t>;
  V s1(0), s2(0);  // Σ γ dy, Σ γ dy x̂ (a tail's lanes: γ and dy load as zeros)
  for (int64_t j = 0; j < n; j += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), n - j);
    const V d = V::loadu(dy + j, k);
    const V xh = (V::loadu(x + j, k) - V(shift)) * V(scale);
    const V gd = V::loadu(gamma + j, k) * d;
    s1 = s1 + gd;
    s2 = s2 + gd * xh;
    (V::loadu(d_gain + j, k) + d * xh).store(d_gain + j, k);
    if (d_shift != nullptr) (V::loadu(d_shift + j, k) + d).store(d_shift + j, k);
  }
  const V m1(lanes_sum(s1) / n), m2(lanes_sum(s2) / n), r(rstd);
  for (int64_t j = 0; j < n; j += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), n - j);
    const V xh = (V::loadu(x + j, k) - V(shift)) * V(scale);
    (r * (V::loadu(gamma + j, k) * V::loadu(dy + j, k) - m1 - xh * m2)).store(out + j, k);
  }
}

// The statistics of a row's two normalised projections, x W_ih^T (gi) and h_in W_hh^T (xh), each over its G values:
// (mean_ih, rstd_ih, mean_hh, rstd_hh); what the backward needs of them is kept in the row's statistics slots st.
template <typename scalar_t>
std::tuple<scalar_t, scalar_t, scalar_t, scalar_t> both_norms(const scalar_t* gi, const scalar_t* xh, int64_t G,
                                                              scalar_t* st) {
  const auto [mean_ih, rstd_ih] = moments(gi, G);
  const auto [mean_hh, rstd_hh] = moments(xh, G);
  st[kMeanIh] = mean_ih;
  st[kRstdIh] = rstd_ih;
  st[kRstdHh] = rstd_hh;
  return {mean_ih, rstd_ih, mean_hh, rstd_hh};
}

// ---- forward, one row of one step -------------------------------------------------------------------------------
// gi: the row's x W_ih^T (G); w: its workspace row, h_in W_hh^T in [0, G) on entry; h_out, c_out: h_t, c_t.

template <typename scalar_t>
void lstm_forward_row(const Pointwise<scalar_t>& pw, const Rows<scalar_t>& R, int64_t t, int64_t n, scalar_t* gi,
                      scalar_t* w, scalar_t* h_out, scalar_t* c_out) {
  using V = Vec<scalar_t>;
  const int64_t H = pw.H, G = pw.G;
  scalar_t* xh = w;            // h_in W_hh^T, then x̂_hh
  scalar_t* xc = w + pw.c_at;  // c~, then ĉ
  scalar_t* st = w + pw.stats_at;
  const auto [mean_ih, rstd_ih, mean_hh, rstd_hh] = both_norms(gi, xh, G, st);
  const scalar_t* hp = R.h_prev(t, n);
  const scalar_t* cp = R.c_prev(t, n);
  for (int64_t j = 0; j < H; j += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), H - j);
    V a[4];
    for (int64_t b = 0; b < 4; ++b) {
      const V x_hh = (V::loadu(xh + b * H + j, k) - V(mean_hh)) * V(rstd_hh);
      x_hh.store(xh + b * H + j, k);
      a[b] = pw.input(gi, b * H + j, k, mean_ih, rstd_ih) + pw.recurrent(b * H + j, k, x_hh);
    }
    const V i = sigmoid(a[0]), f = sigmoid(a[1]), g = tanh(a[2]), o = sigmoid(a[3]);
    (f * V::loadu(cp + j, k) + i * g).store(xc + j, k);
    o.store(gi + 3 * H + j, k);  // o waits in gi (read no more) for LN_c's statistics
  }
  const auto [mean_c, rstd_c] = moments(xc, H);
  st[kRstdC] = rstd_c;
  for (int64_t j = 0; j < H; j += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), H - j);
    V c = V::loadu(xc + j, k);
    const V x_c = (c - V(mean_c)) * V(rstd_c);
    x_c.store(xc + j, k);
    V h = V::loadu(gi + 3 * H + j, k) * tanh(V::loadu(pw.g_c + j, k) * x_c + V::loadu(pw.b_c + j, k));
    if (R.zoneout) {  // the reference's m ⊙ previous + (1 − m) ⊙ fresh
      const V m = R.keep(R.zh, t, n, j, k), mc = R.keep(R.zc, t, n, j, k), one(1);
      h = m * V::loadu(hp + j, k) + (one - m) * h;
      c = mc * V::loadu(cp + j, k) + (one - mc) * c;
    }
    h.store(h_out + j, k);
    c.store(c_out + j, k);
  }
}

template <typename scalar_t>
void gru_forward_row(const Pointwise<scalar_t>& pw, const Rows<scalar_t>& R, int64_t t, int64_t n,
                     const scalar_t* gi, scalar_t* w, scalar_t* h_out) {
  using V = Vec<scalar_t>;
  const int64_t H = pw.H, G = pw.G;
  scalar_t* xh = w;  // h_in W_hh^T, then x̂_hh
  scalar_t* st = w + pw.stats_at;
  const auto [mean_ih, rstd_ih, mean_hh, rstd_hh] = both_norms(gi, xh, G, st);
  const scalar_t* hp = R.h_prev(t, n);
  const V one(1);
  for (int64_t j = 0; j < H; j += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), H - j);
    V x_hh[3];
    for (int64_t b = 0; b < 3; ++b) {
      x_hh[b] = (V::loadu(xh + b * H + j, k) - V(mean_hh)) * V(rstd_hh);
      x_hh[b].store(xh + b * H + j, k);
    }
    const V r = sigmoid(pw.input(gi, j, k, mean_ih, rstd_ih) + pw.recurrent(j, k, x_hh[0]));
    const V z = sigmoid(pw.input(gi, H + j, k, mean_ih, rstd_ih) + pw.recurrent(H + j, k, x_hh[1]));
    const V gh_n = pw.recurrent(2 * H + j, k, x_hh[2]) + V::loadu(pw.shift_n + j, k);
    const V nn = tanh(pw.input(gi, 2 * H + j, k, mean_ih, rstd_ih) + r * gh_n);
    const V h_prev = V::loadu(hp + j, k);
    V h = nn + z * (h_prev - nn);
    if (R.zoneout) {
      const V m = R.keep(R.zh, t, n, j, k);
      h = m * h_prev + (one - m) * h;
    }
    h.store(h_out + j, k);
  }
}

// ---- backward, one row of one step ------------------------------------------------------------------------------
// w: the workspace row; gi: x W_ih^T recomputed (G), out: dL/d(x W_ih^T); d: out, dL/d(h_in W_hh^T) (G); dh: dL/dh_t
// carried from step t+1, dy: this step's output gradient; dc: dL/dc_t in, dL/dc_{t-1} out; extra: out, what reaches
// h_{t-1} other than through W_hh; scratch: the row's own temporary; acc: the row's parameter-gradient sums.

// acc = [Σ da | Σ da ⊙ x̂_ih | Σ da ⊙ x̂_hh | Σ d LN_c ⊙ ĉ | Σ d LN_c]
template <typename scalar_t>
void lstm_backward_row(const Pointwise<scalar_t>& pw, const Rows<scalar_t>& R, int64_t t, int64_t n,
                       const scalar_t* w, scalar_t* gi, scalar_t* d, const scalar_t* dh, const scalar_t* dy,
                       scalar_t* dc, scalar_t* extra, scalar_t* scratch, scalar_t* acc) {
  using V = Vec<scalar_t>;
  const int64_t H = pw.H, G = pw.G;
  const scalar_t* xh = w;
  const scalar_t* xc = w + pw.c_at;
  const scalar_t* st = w + pw.stats_at;
  const scalar_t mean_ih = st[kMeanIh], rstd_ih = st[kRstdIh];
  const scalar_t* cp = R.c_prev(t, n);
  const V one(1);
  // the gates again, dL/dh~ and the path through LN_c: d LN_c into scratch, d o into d; i, f, g wait in d
  for (int64_t j = 0; j < H; j += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), H - j);
    V a[4];
    for (int64_t b = 0; b < 4; ++b) {
      a[b] = pw.input(gi, b * H + j, k, mean_ih, rstd_ih) + pw.recurrent(b * H + j, k, V::loadu(xh + b * H + j, k));
    }
    const V i = sigmoid(a[0]), f = sigmoid(a[1]), g = tanh(a[2]), o = sigmoid(a[3]);
    V dm = V::loadu(dh + j, k) + V::loadu(dy + j, k);  // dL/dh_t
    if (R.zoneout) {
      const V m = R.keep(R.zh, t, n, j, k);
      (m * dm).store(extra + j, k);
      dm = (one - m) * dm;  // dL/dh~_t
    }
    const V tc = tanh(V::loadu(pw.g_c + j, k) * V::loadu(xc + j, k) + V::loadu(pw.b_c + j, k));
    (dm * o * (one - tc * tc)).store(scratch + j, k);
    (dm * tc * o * (one - o)).store(d + 3 * H + j, k);
    i.store(d + j, k);
    f.store(d + H + j, k);
    g.store(d + 2 * H + j, k);
  }
  layer_norm_backward_row(scratch, xc, scalar_t(0), scalar_t(1), st[kRstdC], pw.g_c, H, acc + 3 * G,
                          acc + 3 * G + H, scratch);  // scratch: LN_c's share of dL/dc~
  for (int64_t j = 0; j < H; j += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), H - j);
    const V i = V::loadu(d + j, k), f = V::loadu(d + H + j, k), g = V::loadu(d + 2 * H + j, k);
    V carried = V::loadu(dc + j, k), kept(0);
    if (R.zoneout) {
      const V mc = R.keep(R.zc, t, n, j, k);
      kept = mc * carried;
      carried = (one - mc) * carried;
    }
    const V dcv = carried + V::loadu(scratch + j, k);  // dL/dc~_t
    (dcv * g * i * (one - i)).store(d + j, k);
    (dcv * V::loadu(cp + j, k) * f * (one - f)).store(d + H + j, k);
    (dcv * i * (one - g * g)).store(d + 2 * H + j, k);
    (dcv * f + kept).store(dc + j, k);  // dL/dc_{t-1}
  }
  // d = dL/da: LN_ih's backward over gi (whose shift gradient Σ da is the biases' too), then LN_hh's over d itself
  layer_norm_backward_row(d, gi, mean_ih, rstd_ih, rstd_ih, pw.g_ih, G, acc + G, acc, gi);
  layer_norm_backward_row(d, xh, scalar_t(0), scalar_t(1), st[kRstdHh], pw.g_hh, G, acc + 2 * G,
                          static_cast<scalar_t*>(nullptr), d);
}

// acc = [Σ dgi | Σ dgi ⊙ x̂_ih | Σ dgh | Σ dgh ⊙ x̂_hh] with dgi, dgh the gradients of gi and gh (after their norms)
template <typename scalar_t>
void gru_backward_row(const Pointwise<scalar_t>& pw, const Rows<scalar_t>& R, int64_t t, int64_t n,
                      const scalar_t* w, scalar_t* gi, scalar_t* d, const scalar_t* dh, const scalar_t* dy,
                      scalar_t* extra, scalar_t* scratch, scalar_t* acc) {
  using V = Vec<scalar_t>;
  const int64_t H = pw.H, G = pw.G;
  const scalar_t* xh = w;
  const scalar_t* st = w + pw.stats_at;
  const scalar_t mean_ih = st[kMeanIh], rstd_ih = st[kRstdIh];
  const scalar_t* hp = R.h_prev(t, n);
  const V one(1);
  for (int64_t j = 0; j < H; j += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), H - j);
    const V r = sigmoid(pw.input(gi, j, k, mean_ih, rstd_ih) + pw.recurrent(j, k, V::loadu(xh + j, k)));
    const V z = sigmoid(pw.input(gi, H + j, k, mean_ih, rstd_ih) + pw.recurrent(H + j, k, V::loadu(xh + H + j, k)));
    const V gh_n = pw.recurrent(2 * H + j, k, V::loadu(xh + 2 * H + j, k)) + V::loadu(pw.shift_n + j, k);
    const V nn = tanh(pw.input(gi, 2 * H + j, k, mean_ih, rstd_ih) + r * gh_n);
    V dv = V::loadu(dh + j, k) + V::loadu(dy + j, k), kept(0);  // dL/dh_t
    if (R.zoneout) {
      const V m = R.keep(R.zh, t, n, j, k);
      kept = m * dv;
      dv = (one - m) * dv;  // dL/dh~_t
    }
    const V dn = dv * (one - z) * (one - nn * nn);  // dL/d(pre-activation of n)
    const V dz = dv * (V::loadu(hp + j, k) - nn) * z * (one - z);
    const V dr = dn * gh_n * r * (one - r);
    (kept + dv * z).store(extra + j, k);  // zoneout's path and h~'s z ⊙ h_{t-1}
    dr.store(d + j, k);
    dz.store(d + H + j, k);
    (dn * r).store(d + 2 * H + j, k);
    dr.store(scratch + j, k);
    dz.store(scratch + H + j, k);
    dn.store(scratch + 2 * H + j, k);
  }
  layer_norm_backward_row(scratch, gi, mean_ih, rstd_ih, rstd_ih, pw.g_ih, G, acc + G, acc, gi);
  layer_norm_backward_row(d, xh, scalar_t(0), scalar_t(1), st[kRstdHh], pw.g_hh, G, acc + 3 * G, acc + 2 * G, d);
}

// ---- between the steps ------------------------------------------------------------------------------------------

// h_in = h_{t-1} ⊙ r for rows [0, rows) of step t into out (rows H apart): the recurrent matrix multiply's input
// where resets or recurrent dropout make it other than rows of h_0 or y[t-1].
template <typename scalar_t>
void gather_recurrent_inputs(const Rows<scalar_t>& R, int64_t t, int64_t rows, scalar_t* out) {
  using V = Vec<scalar_t>;
  for_rows(rows, R.H, [&](int64_t n) {
    const scalar_t* h = R.h_prev(t, n);
    const scalar_t* r = R.dropout != nullptr ? R.dropout + n * R.H : nullptr;
    for (int64_t j = 0; j < R.H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), R.H - j);
      const V v = V::loadu(h + j, k);
      (r != nullptr ? v * V::loadu(r + j, k) : v).store(out + n * R.H + j, k);
    }
  });
}

// After dh = d_gh W_hh over rows [0, bs): recurrent dropout's mask and the extra paths (when the matrix multiply
// could not add them); a row that reset before step t sends its carry to h_0 (and c_0); the window cuts the rest.
template <typename scalar_t>
void carry_rows(const Rows<scalar_t>& R, int64_t t, int64_t bs, bool cut, scalar_t* dh, const scalar_t* extra,
                scalar_t* dc, scalar_t* dh0, scalar_t* dc0) {
  using V = Vec<scalar_t>;
  const int64_t H = R.H;
  for_rows(bs, H, [&](int64_t n) {
    scalar_t* d = dh + n * H;
    if (R.dropout != nullptr) {
      for (int64_t j = 0; j < H; j += V::size()) {
        const int64_t k = std::min<int64_t>(V::size(), H - j);
        V v = V::loadu(d + j, k) * V::loadu(R.dropout + n * H + j, k);
        if (extra != nullptr) v = v + V::loadu(extra + n * H + j, k);
        v.store(d + j, k);
      }
    }
    const bool reset = t > 0 && R.starts(t, n);
    if (reset) {
      for (int64_t j = 0; j < H; ++j) dh0[n * H + j] += d[j];
      if (dc != nullptr) {
        for (int64_t j = 0; j < H; ++j) dc0[n * H + j] += dc[n * H + j];
      }
    }
    if (reset || cut) {
      std::fill(d, d + H, scalar_t(0));
      if (dc != nullptr) std::fill(dc + n * H, dc + (n + 1) * H, scalar_t(0));
    }
  });
}

int64_t block_steps(int64_t L, int64_t N) { return std::clamp<int64_t>(kBlockRows / std::max<int64_t>(N, 1), 1, L); }

}  // namespace
}  // namespace rnnkit
