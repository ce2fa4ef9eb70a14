// The layer-normalised cells on the native engine: layernorm_lstm and layernorm_gru.
//
// Their equations (rnnkit/nn/cells/layernorm_lstm.py, layernorm_gru.py), with LN(v) = γ ⊙ x̂ + β over a row's values,
// x̂ = (v − mean v) · rstd, rstd = 1 / sqrt(var v + 1e-5):
//
//   lstm: a = LN_ih(x W_ih^T) + LN_hh(h_in W_hh^T) + b                    (4H)
//         i, f, o = σ(a_i, a_f, a_o), g = tanh(a_g);  c~ = f ⊙ c_{t-1} + i ⊙ g;  h~ = o ⊙ tanh(LN_c(c~))
//   gru:  gi = LN_ih(x W_ih^T) + b_ih,  gh = LN_hh(h_in W_hh^T) + b_hh     (3H each)
//         r, z = σ(gi_r + gh_r, gi_z + gh_z);  n = tanh(gi_n + r ⊙ gh_n);  h~ = (1 − z) ⊙ n + z ⊙ h_{t-1}
//
// Per layer and direction, a block of steps at a time (about kBlockRows rows): the input projection x W_ih^T of the
// block is one matrix multiply; per step one matrix multiply writes h_in W_hh^T into the saved workspace, then ONE
// vectorised pass per row (parallel over the rows) does the rest: both norms' statistics, x̂_hh written over the
// product, the gates, c~, LN_c, h_t and zoneout. Every shift that lands on the same pre-activation is summed once
// before the loop (β_ih + β_hh + b for the LSTM; for the GRU those of r and z).
//
// The saved workspace is lean: x W_ih^T is recomputed in the backward, block by block (one matrix multiply each, as
// large as the forward's), and the gates from it and x̂_hh (their activations cost less than the memory), so ws keeps
// only what would cost a matrix multiply per step (x̂_hh) or cannot be had back at all:
//   lstm: ws = [x̂_hh (4H) | ĉ = LN_c's x̂ (H) | mean_ih, rstd_ih, rstd_hh, rstd_c]
//   gru:  ws = [x̂_hh (3H) | mean_ih, rstd_ih, rstd_hh]
// With y and cs an LSTM step keeps 7H + 4 values per row; a per-step loop under autograd keeps about 16H (the two
// projections its norms save, four activations, c, tanh(LN_c(c)), h, the stacked output). No buffer spans all L
// steps besides the outputs and ws. Per row and step of the backward, one pass runs the cell's chain rule and the norms' backward
//   dv = rstd ⊙ (γ ⊙ dy − mean(γ ⊙ dy) − x̂ · mean(γ ⊙ dy ⊙ x̂))
// adding the gains' and shifts' gradients into sums per row (summed over the rows at the end, so that the result
// does not depend on how the rows are shared among threads). dx, dW_ih and dW_hh are one matrix multiply per block.
#include <algorithm>
#include <cmath>
#include <utility>

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
  const auto [mean_ih, rstd_ih] = moments(gi, G);
  const auto [mean_hh, rstd_hh] = moments(xh, G);
  st[kMeanIh] = mean_ih;
  st[kRstdIh] = rstd_ih;
  st[kRstdHh] = rstd_hh;
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
  const auto [mean_ih, rstd_ih] = moments(gi, G);
  const auto [mean_hh, rstd_hh] = moments(xh, G);
  st[kMeanIh] = mean_ih;
  st[kRstdIh] = rstd_ih;
  st[kRstdHh] = rstd_hh;
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

// ---- the sequence -----------------------------------------------------------------------------------------------

template <typename scalar_t>
ForwardResult layernorm_forward(Family family, const Sequence& s) {
  const LnParams p(family, s);
  const Layout lay = layout_of(family, p);
  const bool lstm = family == Family::Lstm;
  const int64_t L = s.L(), N = s.N(), In = s.x.size(2), H = lay.H, G = lay.G, W = lay.W, K = block_steps(L, N);
  Tensor ws = buffer(s, {L, N, W});
  Tensor y = buffer(s, {L, N, H});
  Tensor cs = lstm ? buffer(s, {L, N, H}) : at::empty({0}, s.x.options());
  const Shifts shifts = shifts_of(family, p, H);
  const Pointwise<scalar_t> pw(lay, p, shifts);
  const Rows<scalar_t> R(s, y, cs);
  const bool gathers = s.recurrent_mask.defined() || s.resets.defined();
  Tensor h_in_buf = gathers ? at::empty({N, H}, s.x.options()) : Tensor();
  Tensor gi = at::empty({K * N, G}, s.x.options());  // x W_ih^T of one block of steps
  const Tensor x2 = s.x.reshape({L * N, In});
  const Tensor w_ih_t = p.w_ih.t(), w_hh_t = p.w_hh.t();
  scalar_t* ws_p = ws.data_ptr<scalar_t>();
  scalar_t* y_p = y.data_ptr<scalar_t>();
  scalar_t* cs_p = lstm ? cs.data_ptr<scalar_t>() : nullptr;
  scalar_t* gi_p = gi.data_ptr<scalar_t>();

  for (int64_t t0 = 0; t0 < L; t0 += K) {
    const int64_t t1 = std::min(L, t0 + K);
    Tensor gi_block = gi.narrow(0, 0, (t1 - t0) * N);
    at::mm_out(gi_block, x2.narrow(0, t0 * N, (t1 - t0) * N), w_ih_t);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t bs = s.alive(t);
      Tensor h_in;  // (bs, H)
      if (gathers) {
        gather_recurrent_inputs(R, t, bs, h_in_buf.data_ptr<scalar_t>());
        h_in = h_in_buf.narrow(0, 0, bs);
      } else {
        h_in = t == 0 ? s.h0.narrow(0, 0, bs) : y[t - 1].narrow(0, 0, bs);
      }
      Tensor gh = ws[t].narrow(0, 0, bs).narrow(1, 0, G);  // (bs, G), rows W apart
      at::mm_out(gh, h_in, w_hh_t);
      scalar_t* gi_t = gi_p + (t - t0) * N * G;
      scalar_t* ws_t = ws_p + t * N * W;
      const int64_t out_t = t * N * H;
      for_rows(bs, 8 * G, [&](int64_t n) {
        if (lstm) {
          lstm_forward_row(pw, R, t, n, gi_t + n * G, ws_t + n * W, y_p + out_t + n * H, cs_p + out_t + n * H);
        } else {
          gru_forward_row(pw, R, t, n, gi_t + n * G, ws_t + n * W, y_p + out_t + n * H);
        }
      });
    }
  }
  const Tensor last = last_steps(s);
  const Tensor rows = at::arange(N, last.options());
  Tensor h_n = y.index({last, rows});
  Tensor c_n = lstm ? cs.index({last, rows}) : at::empty({0}, s.x.options());
  return {y, h_n, c_n, cs, ws};
}

template <typename scalar_t>
BackwardResult layernorm_backward(Family family, const Sequence& s, const Tensor& y, const Tensor& cs,
                                  const Tensor& ws, const Tensor& dy_in, const Tensor& dh_n, const Tensor& dc_n) {
  const LnParams p(family, s);
  const Layout lay = layout_of(family, p);
  const bool lstm = family == Family::Lstm;
  const int64_t L = s.L(), N = s.N(), In = s.x.size(2), H = lay.H, G = lay.G, W = lay.W, K = block_steps(L, N);
  const Shifts shifts = shifts_of(family, p, H);
  const Pointwise<scalar_t> pw(lay, p, shifts);
  const Rows<scalar_t> R(s, y, cs);
  const auto opts = s.x.options();
  const Tensor dy = dy_in.contiguous();
  const bool gathers = s.recurrent_mask.defined() || s.resets.defined();

  Tensor dh = dh_n.clone(at::MemoryFormat::Contiguous);  // (N, H): dL/dh carried back to the previous step
  Tensor dc = lstm ? dc_n.clone(at::MemoryFormat::Contiguous) : Tensor();  // (N, H)
  Tensor dh0_reset = s.resets.defined() ? at::zeros_like(s.h0) : Tensor();
  Tensor dc0_reset = (lstm && s.resets.defined()) ? at::zeros_like(s.c0) : Tensor();
  Tensor gi = at::empty({K * N, G}, opts);    // a block's x W_ih^T, then dL/d(x W_ih^T)
  Tensor d_gh = at::empty({K * N, G}, opts);  // a block's dL/d(h_in W_hh^T)
  Tensor h_in = gathers ? at::empty({K * N, H}, opts) : Tensor();  // a block's h_in, for dW_hh
  Tensor scratch = at::empty({N, lstm ? H : G}, opts);
  const bool has_extra = !lstm || R.zoneout;  // a path to h_{t-1} besides W_hh
  Tensor extra = has_extra ? at::empty({N, H}, opts) : Tensor();
  Tensor acc = at::zeros({N, lstm ? 3 * G + 2 * H : 4 * G}, opts);  // the norms' and biases' gradients, per row
  Tensor dx = s.input_grad ? at::empty({L, N, In}, opts) : at::empty({0}, opts);
  Tensor dw_ih = at::zeros_like(p.w_ih), dw_hh = at::zeros_like(p.w_hh);
  const Tensor x2 = s.x.reshape({L * N, In}), y2 = y.view({L * N, H});
  Tensor dx2 = s.input_grad ? dx.view({L * N, In}) : dx;
  const Tensor w_ih_t = p.w_ih.t();
  const scalar_t* ws_p = ws.data_ptr<scalar_t>();
  const scalar_t* dy_p = dy.data_ptr<scalar_t>();
  scalar_t* gi_p = gi.data_ptr<scalar_t>();
  scalar_t* dgh_p = d_gh.data_ptr<scalar_t>();
  scalar_t* dh_p = dh.data_ptr<scalar_t>();
  scalar_t* dc_p = lstm ? dc.data_ptr<scalar_t>() : nullptr;
  scalar_t* extra_p = has_extra ? extra.data_ptr<scalar_t>() : nullptr;
  scalar_t* scratch_p = scratch.data_ptr<scalar_t>();
  scalar_t* acc_p = acc.data_ptr<scalar_t>();
  const int64_t A = acc.size(1), S = scratch.size(1);
  const bool masked = R.dropout != nullptr;
  const auto row = [](scalar_t* base, int64_t n, int64_t width) { return base != nullptr ? base + n * width : nullptr; };

  for (int64_t t0 = (L - 1) / K * K; t0 >= 0; t0 -= K) {  // the forward's blocks, last first
    const int64_t t1 = std::min(L, t0 + K), T = t1 - t0;
    Tensor gi_block = gi.narrow(0, 0, T * N), dgh_block = d_gh.narrow(0, 0, T * N);
    at::mm_out(gi_block, x2.narrow(0, t0 * N, T * N), w_ih_t);
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t bs = s.alive(t);
      scalar_t* gi_t = gi_p + (t - t0) * N * G;
      scalar_t* dgh_t = dgh_p + (t - t0) * N * G;
      const scalar_t* ws_t = ws_p + t * N * W;
      const scalar_t* dy_t = dy_p + t * N * H;
      for_rows(bs, 16 * G, [&](int64_t n) {
        if (lstm) {
          lstm_backward_row(pw, R, t, n, ws_t + n * W, gi_t + n * G, dgh_t + n * G, dh_p + n * H, dy_t + n * H,
                            dc_p + n * H, row(extra_p, n, H), scratch_p + n * S, acc_p + n * A);
        } else {
          gru_backward_row(pw, R, t, n, ws_t + n * W, gi_t + n * G, dgh_t + n * G, dh_p + n * H, dy_t + n * H,
                           extra_p + n * H, scratch_p + n * S, acc_p + n * A);
        }
      });
      if (bs < N) {  // the block's matrix multiplies read all N rows: the ended ones contribute nothing
        std::fill(gi_t + bs * G, gi_t + N * G, scalar_t(0));
        std::fill(dgh_t + bs * G, dgh_t + N * G, scalar_t(0));
      }
      // dL/dh_{t-1} = (d_gh W_hh) ⊙ r + extra, written over dh (consumed above)
      Tensor dh_t = dh.narrow(0, 0, bs);
      const Tensor dgh_rows = dgh_block.narrow(0, (t - t0) * N, bs);
      if (has_extra && !masked) {
        at::addmm_out(dh_t, extra.narrow(0, 0, bs), dgh_rows, p.w_hh);
      } else {
        at::mm_out(dh_t, dgh_rows, p.w_hh);
      }
      const bool cut = s.bptt_window > 0 && t > 0 && t % s.bptt_window == 0;  // truncation: nothing crosses
      if (masked || (t > 0 && R.resets != nullptr) || cut) {
        carry_rows(R, t, bs, cut, dh_p, masked ? extra_p : nullptr, dc_p,
                   dh0_reset.defined() ? dh0_reset.data_ptr<scalar_t>() : nullptr,
                   dc0_reset.defined() ? dc0_reset.data_ptr<scalar_t>() : nullptr);
      }
    }
    // the block's products: dx = d_gi W_ih, dW_ih += d_gi^T x, dW_hh += d_gh^T h_in
    const Tensor x_block = x2.narrow(0, t0 * N, T * N);
    if (s.input_grad) {
      Tensor dx_block = dx2.narrow(0, t0 * N, T * N);
      at::mm_out(dx_block, gi_block, p.w_ih);
    }
    dw_ih.addmm_(gi_block.t(), x_block);
    if (gathers) {
      for (int64_t t = t0; t < t1; ++t) gather_recurrent_inputs(R, t, N, h_in.data_ptr<scalar_t>() + (t - t0) * N * H);
      dw_hh.addmm_(dgh_block.t(), h_in.narrow(0, 0, T * N));
    } else if (t0 == 0) {  // step 0 reads h_0, step t > 0 reads y[t-1]
      dw_hh.addmm_(dgh_block.narrow(0, 0, N).t(), s.h0);
      if (T > 1) dw_hh.addmm_(dgh_block.narrow(0, N, (T - 1) * N).t(), y2.narrow(0, 0, (T - 1) * N));
    } else {
      dw_hh.addmm_(dgh_block.t(), y2.narrow(0, (t0 - 1) * N, T * N));
    }
  }

  const Tensor sums = acc.sum(0);  // (A)
  const auto part = [&](int64_t block, int64_t width) { return sums.narrow(0, block, width).clone(); };
  std::vector<Tensor> grads{dw_ih, dw_hh};
  if (lstm) {  // a = LN_ih(...) + LN_hh(...) + b: b, β_ih and β_hh all get Σ da
    if (s.bias) grads.push_back(part(0, G));
    for (const Tensor& g : {part(G, G), part(0, G), part(2 * G, G), part(0, G), part(3 * G, H), part(3 * G + H, H)}) {
      grads.push_back(g);
    }
  } else {  // gi = LN_ih(...) + b_ih, gh = LN_hh(...) + b_hh
    if (s.bias) {
      grads.push_back(part(0, G));
      grads.push_back(part(2 * G, G));
    }
    for (const Tensor& g : {part(G, G), part(0, G), part(3 * G, G), part(2 * G, G)}) grads.push_back(g);
  }
  Tensor dh0 = dh0_reset.defined() ? dh + dh0_reset : dh;
  Tensor dc0 = lstm ? (dc0_reset.defined() ? dc + dc0_reset : dc) : at::empty({0}, opts);
  return {dx, dh0, dc0, grads};
}

Kernel layernorm_kernel(Family family) {
  return dispatched_kernel(
      [family](auto tag, const Sequence& s) { return layernorm_forward<decltype(tag)>(family, s); },
      [family](auto tag, const auto&... args) { return layernorm_backward<decltype(tag)>(family, args...); },
      [family](const Sequence& s) { return layout_of(family, LnParams(family, s)).W; });
}

}  // namespace

RNNKIT_REGISTER_KERNEL(layernorm_lstm, layernorm_kernel(Family::Lstm));
RNNKIT_REGISTER_KERNEL(layernorm_gru, layernorm_kernel(Family::Gru));

}  // namespace rnnkit
