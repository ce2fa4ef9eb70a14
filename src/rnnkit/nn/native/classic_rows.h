// torch.nn's four cells on the native engine: their parameters, and the passes over the rows of one step (see classic.cpp).
// Included by classic.cpp only (one translation unit per kernel family keeps the build short).
#pragma once

#include "recurrence.h"

namespace rnnkit {
namespace {

enum class Family { RnnTanh, RnnRelu, Lstm, Gru };

// The parameters of one layer-direction by role, from the cell's declaration order
// (weight_ih, weight_hh[, bias_ih, bias_hh][, weight_hr]).
struct ClassicParams {
  Tensor w_ih, w_hh, b_ih, b_hh, w_hr;
  ClassicParams(const Sequence& s) {
    w_ih = s.params.at(0);
    w_hh = s.params.at(1);
    size_t k = 2;
    if (s.bias) {
      b_ih = s.params.at(2);
      b_hh = s.params.at(3);
      k = 4;
    }
    if (s.params.size() > k) w_hr = s.params.at(k);
  }
};

struct Shape {
  int64_t H, P, G, W;  // hidden, output, gate width, saved width per row-step
};

Shape shape_of(Family family, const ClassicParams& p) {
  const int64_t G = p.w_ih.size(0);
  switch (family) {
    case Family::Lstm: {
      const int64_t H = G / 4;
      const int64_t P = p.w_hr.defined() ? p.w_hr.size(0) : H;
      return {H, P, G, G + H + (p.w_hr.defined() ? H : 0)};
    }
    case Family::Gru:
      return {G / 3, G / 3, G, G + G / 3};
    default:
      return {G, G, G, G};
  }
}

// The bias added to the input projection: both biases where they sum (all gates of rnn and lstm; r and z of gru).
Tensor folded_bias(Family family, const ClassicParams& p, int64_t H) {
  if (!p.b_ih.defined()) return Tensor();
  if (family != Family::Gru) return p.b_ih + p.b_hh;
  Tensor b = p.b_ih.clone();
  b.narrow(0, 0, 2 * H).add_(p.b_hh.narrow(0, 0, 2 * H));
  return b;
}

// ---- zoneout inside the pointwise passes ---------------------------------------------------------------------

// One step's zoneout: state = m ⊙ previous + (1 − m) ⊙ fresh, m this step's keep mask (training) or the keep
// probability p (evaluation); off: the state is the fresh value.
template <typename scalar_t>
struct Zone {
  bool on = false;
  const scalar_t* mask = nullptr;  // the step's mask rows, `width` apart; null: the probability p
  scalar_t p = 0;
  int64_t width = 0;

  Vec<scalar_t> keep(int64_t n, int64_t j, int64_t k) const {
    return mask != nullptr ? Vec<scalar_t>::loadu(mask + n * width + j, k) : Vec<scalar_t>(p);
  }
  // backward: dL/d(state) d splits into what reaches the fresh value, left in d, and what reaches the previous state
  // directly (m ⊙ d), returned
  Vec<scalar_t> split(int64_t n, int64_t j, int64_t k, Vec<scalar_t>& d) const {
    const Vec<scalar_t> m = keep(n, j, k);
    const Vec<scalar_t> kept = d * m;
    d = d - kept;
    return kept;
  }
  // the state of row n, columns [j, j + k), from its fresh and its previous value
  Vec<scalar_t> mix(int64_t n, int64_t j, int64_t k, const Vec<scalar_t>& fresh, const scalar_t* previous) const {
    if (!on) return fresh;
    const Vec<scalar_t> m = keep(n, j, k);
    return m * Vec<scalar_t>::loadu(previous + j, k) + (Vec<scalar_t>(1) - m) * fresh;
  }
};

template <typename scalar_t>
Zone<scalar_t> zone_of(const Sequence& s, const Tensor& masks, int64_t t) {
  Zone<scalar_t> z;
  z.on = s.zoneout();
  if (masks.defined()) {
    z.width = masks.size(2);
    z.mask = masks.data_ptr<scalar_t>() + t * masks.size(1) * z.width;
  } else {
    z.p = static_cast<scalar_t>(s.zoneout_p);
  }
  return z;
}

// ---- pointwise forward, rows [0, bs) of one step -----------------------------------------------------------------
// ws: the gate blocks (pre-activations with h_in W_hh^T added), W apart; hp: h_{t-1} rows; out: h_t rows (after
// zoneout); ld*: the distance between rows.

template <typename scalar_t>
void rnn_forward_rows(bool relu, scalar_t* ws, int64_t W, const scalar_t* hp, int64_t ldh, scalar_t* out,
                      int64_t ldo, const Zone<scalar_t>& zh, int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, H, [&](int64_t n) {
    scalar_t* a = ws + n * W;
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      V v = V::loadu(a + j, k);
      v = relu ? at::vec::clamp_min(v, V(0)) : tanh(v);
      v.store(a + j, k);  // h~_t: relu' and tanh' read it
      zh.mix(n, j, k, v, hp + n * ldh).store(out + n * ldo + j, k);
    }
  });
}

// c~ = f ⊙ c_{t-1} + i ⊙ g into ws, c_t (zoneout zc) into cs_out; h~ = o ⊙ tanh(c~), h_t (zoneout zh) into out.
template <typename scalar_t>
void lstm_forward_rows(scalar_t* ws, int64_t W, const scalar_t* c_prev, scalar_t* cs_out, const Zone<scalar_t>& zc,
                       const scalar_t* hp, int64_t ldh, scalar_t* out, int64_t ldo, const Zone<scalar_t>& zh,
                       int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, 4 * H, [&](int64_t n) {
    scalar_t* a = ws + n * W;
    scalar_t* c_new = a + 4 * H;
    const scalar_t* cp = c_prev + n * H;
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      const V i = sigmoid(V::loadu(a + j, k));
      const V f = sigmoid(V::loadu(a + H + j, k));
      const V g = tanh(V::loadu(a + 2 * H + j, k));
      const V o = sigmoid(V::loadu(a + 3 * H + j, k));
      const V c = f * V::loadu(cp + j, k) + i * g;
      i.store(a + j, k);
      f.store(a + H + j, k);
      g.store(a + 2 * H + j, k);
      o.store(a + 3 * H + j, k);
      c.store(c_new + j, k);
      zc.mix(n, j, k, c, cp).store(cs_out + n * H + j, k);
      zh.mix(n, j, k, o * tanh(c), hp + n * ldh).store(out + n * ldo + j, k);
    }
  });
}

template <typename scalar_t>
void gru_forward_rows(scalar_t* ws, int64_t W, const scalar_t* gh, const scalar_t* b_hn, const scalar_t* hp,
                      int64_t ldh, scalar_t* out, int64_t ldo, const Zone<scalar_t>& zh, int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, 3 * H, [&](int64_t n) {
    scalar_t* a = ws + n * W;
    scalar_t* ghn_saved = a + 3 * H;
    const scalar_t* g = gh + n * 3 * H;
    const scalar_t* h = hp + n * ldh;
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      const V r = sigmoid(V::loadu(a + j, k) + V::loadu(g + j, k));
      const V z = sigmoid(V::loadu(a + H + j, k) + V::loadu(g + H + j, k));
      V ghn = V::loadu(g + 2 * H + j, k);
      if (b_hn != nullptr) ghn = ghn + V::loadu(b_hn + j, k);
      const V nn = tanh(V::loadu(a + 2 * H + j, k) + r * ghn);
      r.store(a + j, k);
      z.store(a + H + j, k);
      nn.store(a + 2 * H + j, k);
      ghn.store(ghn_saved + j, k);
      zh.mix(n, j, k, nn + z * (V::loadu(h + j, k) - nn), h).store(out + n * ldo + j, k);
    }
  });
}

// ---- pointwise backward, rows [0, bs) of one step ----------------------------------------------------------------
// dh: dL/dh_t rows in total (H apart); with zoneout zh, dL/dh~ = (1 − m) dh and m dh reaches h_{t-1} directly.
// Each writes the gate gradients d_gi (and d_gh for the gru) and `carry`, what reaches h_{t-1} other than through
// W_hh (zoneout's m dh; the gru's z dh~ too), which the caller adds after d gh W_hh.

template <typename scalar_t>
void rnn_backward_rows(bool relu, const scalar_t* ws, int64_t W, const scalar_t* dh, const Zone<scalar_t>& zh,
                       scalar_t* carry, scalar_t* d_gi, int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, H, [&](int64_t n) {
    const scalar_t* h = ws + n * W;
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      V d = V::loadu(dh + n * H + j, k);
      if (zh.on) zh.split(n, j, k, d).store(carry + n * H + j, k);
      const V hv = V::loadu(h + j, k);
      const V slope = relu ? V::blendv(V(0), V(1), hv > V(0)) : V(1) - hv * hv;
      (d * slope).store(d_gi + n * H + j, k);
    }
  });
}

// dm: dL/dm_t rows (m = o ⊙ tanh(c~), before a projection; zh on only without one); dc: dL/dc_t in, dL/dc_{t-1} out.
template <typename scalar_t>
void lstm_backward_rows(const scalar_t* ws, int64_t W, const scalar_t* dm, const Zone<scalar_t>& zh, scalar_t* carry,
                        scalar_t* dc, const Zone<scalar_t>& zc, const scalar_t* c_prev, scalar_t* d_gi, int64_t bs,
                        int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, 4 * H, [&](int64_t n) {
    const scalar_t* a = ws + n * W;
    const scalar_t* c_new = a + 4 * H;
    const scalar_t* cp = c_prev + n * H;
    scalar_t* dcr = dc + n * H;
    scalar_t* dg = d_gi + n * 4 * H;
    const V one(1);
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      const V i = V::loadu(a + j, k), f = V::loadu(a + H + j, k), g = V::loadu(a + 2 * H + j, k),
              o = V::loadu(a + 3 * H + j, k);
      const V tc = tanh(V::loadu(c_new + j, k));
      V dmv = V::loadu(dm + n * H + j, k);
      if (zh.on) zh.split(n, j, k, dmv).store(carry + n * H + j, k);
      V dct = V::loadu(dcr + j, k);
      const V keep_c = zc.on ? zc.split(n, j, k, dct) : V(0);
      const V dcv = dct + dmv * o * (one - tc * tc);  // dL/dc~_t
      (dcv * g * i * (one - i)).store(dg + j, k);
      (dcv * V::loadu(cp + j, k) * f * (one - f)).store(dg + H + j, k);
      (dcv * i * (one - g * g)).store(dg + 2 * H + j, k);
      (dmv * tc * o * (one - o)).store(dg + 3 * H + j, k);
      (dcv * f + keep_c).store(dcr + j, k);  // dL/dc_{t-1}: through c~_t and zoneout's keep path
    }
  });
}

template <typename scalar_t>
void gru_backward_rows(const scalar_t* ws, int64_t W, const scalar_t* dh, const Zone<scalar_t>& zh,
                       const scalar_t* h_prev, int64_t ldh, scalar_t* d_gi, scalar_t* d_gh, scalar_t* carry,
                       int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, 3 * H, [&](int64_t n) {
    const scalar_t* a = ws + n * W;
    const scalar_t* hp = h_prev + n * ldh;
    scalar_t* gi = d_gi + n * 3 * H;
    scalar_t* gh = d_gh + n * 3 * H;
    const V one(1);
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      const V r = V::loadu(a + j, k), z = V::loadu(a + H + j, k), nn = V::loadu(a + 2 * H + j, k),
              ghn = V::loadu(a + 3 * H + j, k);
      V dv = V::loadu(dh + n * H + j, k);
      const V keep = zh.on ? zh.split(n, j, k, dv) : V(0);
      const V dn = dv * (one - z) * (one - nn * nn);  // dL/d(pre-activation of n)
      const V dz = dv * (V::loadu(hp + j, k) - nn) * z * (one - z);
      const V dr = dn * ghn * r * (one - r);
      dr.store(gi + j, k);
      dz.store(gi + H + j, k);
      dn.store(gi + 2 * H + j, k);
      dr.store(gh + j, k);
      dz.store(gh + H + j, k);
      (dn * r).store(gh + 2 * H + j, k);
      (dv * z + keep).store(carry + n * H + j, k);
    }
  });
}

// ---- resets, row by row (no per-step allocation) --------------------------------------------------------------

// The state step t reads, (bs, S): a view of h_0 at t = 0 or of the state after step t-1; where rows reset before
// step t, a copy in ``scratch`` with those rows taken from h_0.
template <typename scalar_t>
Tensor read_previous(const Sequence& s, const Tensor& first, const Tensor& seq, int64_t t, int64_t bs,
                     Tensor& scratch) {
  Tensor prev = t == 0 ? first.narrow(0, 0, bs) : seq[t - 1].narrow(0, 0, bs);
  if (t == 0 || !s.resets.defined()) return prev;
  const bool* reset = s.resets.data_ptr<bool>() + t * s.N();
  if (std::none_of(reset, reset + bs, [](bool r) { return r; })) return prev;
  Tensor out = scratch.narrow(0, 0, bs);
  out.copy_(prev);
  const int64_t S = first.size(1);
  for (int64_t n = 0; n < bs; ++n) {
    if (reset[n]) std::copy_n(first.data_ptr<scalar_t>() + n * S, S, out.data_ptr<scalar_t>() + n * S);
  }
  return out;
}

// A row that reset before step t read h_0, not h_{t-1}: the gradient its carry holds goes to h_0 (to_first).
template <typename scalar_t>
void route_resets(const Sequence& s, int64_t t, int64_t bs, Tensor& carry, Tensor& to_first) {
  if (t == 0 || !s.resets.defined()) return;
  const bool* reset = s.resets.data_ptr<bool>() + t * s.N();
  const int64_t S = carry.size(1);
  scalar_t* c = carry.data_ptr<scalar_t>();
  scalar_t* f = to_first.data_ptr<scalar_t>();
  for (int64_t n = 0; n < bs; ++n) {
    if (!reset[n]) continue;
    for (int64_t j = 0; j < S; ++j) f[n * S + j] += c[n * S + j];
    std::fill_n(c + n * S, S, scalar_t(0));
  }
}

}  // namespace
}  // namespace rnnkit
