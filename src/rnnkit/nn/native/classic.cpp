// torch.nn's four cells on the native engine: rnn_tanh, rnn_relu, lstm (with proj_size) and gru.
//
// Per layer and direction: the input projection of all L steps is one matrix multiply, gi = x W_ih^T + b, written
// into the saved workspace ws (L, N, W); per step one matrix multiply adds h_in W_hh^T into gi_t (a separate buffer
// for the GRU, whose b_hn sits inside r ⊙ (...)), then one vectorised pass over the rows runs the cell's pointwise
// equations in place: the gates' activations replace their pre-activations in ws, which the backward pass reads.
//
//   rnn:  h~ = act(a)                                   ws = [h~]
//   lstm: i, f, o = σ, g = tanh; c~ = f ⊙ c + i ⊙ g;    ws = [i f g o | c~ | m]   (m only with proj_size)
//         m = o ⊙ tanh(c~); h~ = m (or m W_hr^T)
//   gru:  r, z = σ; n = tanh(a_n + r ⊙ (gh_n + b_hn));  ws = [r z n | gh_n + b_hn]
//         h~ = (1 − z) ⊙ n + z ⊙ h_{t-1}
#include <algorithm>

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
      if (zh.on) {
        const V m = zh.keep(n, j, k);
        (d * m).store(carry + n * H + j, k);
        d = d * (V(1) - m);
      }
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
      if (zh.on) {
        const V m = zh.keep(n, j, k);
        (dmv * m).store(carry + n * H + j, k);
        dmv = dmv * (one - m);
      }
      V dct = V::loadu(dcr + j, k), keep_c(0);
      if (zc.on) {
        const V m = zc.keep(n, j, k);
        keep_c = dct * m;
        dct = dct * (one - m);
      }
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
      V dv = V::loadu(dh + n * H + j, k), keep(0);
      if (zh.on) {
        const V m = zh.keep(n, j, k);
        keep = dv * m;
        dv = dv * (one - m);
      }
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

// ---- the sequence ----------------------------------------------------------------------------------------------

template <typename scalar_t>
ForwardResult classic_forward(Family family, const Sequence& s) {
  const ClassicParams p(s);
  const Shape sh = shape_of(family, p);
  const int64_t L = s.L(), N = s.N(), In = s.x.size(2), H = sh.H, P = sh.P, G = sh.G, W = sh.W;
  const bool lstm = family == Family::Lstm, gru = family == Family::Gru, proj = p.w_hr.defined();

  // padding rows of ws are never read (steps run rows [0, bs), the large products the rows alive): not zeroed
  Tensor ws = at::empty({L, N, W}, s.x.options());
  Tensor gates = ws.view({L * N, W}).narrow(1, 0, G);  // (L*N, G), rows W apart
  const Tensor bias = folded_bias(family, p, H);
  const Tensor alive = alive_rows(s);
  if (alive.defined()) {  // the steps rows are alive at only: padding costs no flops (its gates stay 0)
    gates.index_copy_(0, alive, linear_rows(rows_of(s.x.reshape({L * N, In}), alive), p.w_ih, bias));
  } else if (bias.defined()) {
    at::addmm_out(gates, bias, s.x.reshape({L * N, In}), p.w_ih.t());
  } else {
    at::mm_out(gates, s.x.reshape({L * N, In}), p.w_ih.t());
  }
  Tensor y = buffer(s, {L, N, P});
  Tensor cs = lstm ? buffer(s, {L, N, H}) : at::empty({0}, s.x.options());
  const Tensor w_hh_t = p.w_hh.t();
  const Tensor w_hr_t = proj ? p.w_hr.t() : Tensor();
  const scalar_t* b_hn = (gru && p.b_hh.defined()) ? p.b_hh.data_ptr<scalar_t>() + 2 * H : nullptr;
  Tensor gh = gru ? at::empty({N, G}, s.x.options()) : Tensor();
  Tensor fresh = proj ? at::empty({N, P}, s.x.options()) : Tensor();  // the projection's h~_t, before zoneout
  Tensor h_scratch = at::empty({N, P}, s.x.options()), c_scratch = at::empty({N, H}, s.x.options());

  for (int64_t t = 0; t < L; ++t) {
    const int64_t bs = s.alive(t);
    const Tensor h_prev = read_previous<scalar_t>(s, s.h0, y, t, bs, h_scratch);  // (bs, P), rows P apart
    const Tensor h_in = s.recurrent_mask.defined() ? h_prev * s.recurrent_mask.narrow(0, 0, bs) : h_prev;
    Tensor gate_t = ws[t].narrow(0, 0, bs).narrow(1, 0, G);  // (bs, G), rows W apart
    scalar_t* ws_t = ws.data_ptr<scalar_t>() + t * N * W;
    scalar_t* out_t = y.data_ptr<scalar_t>() + t * N * P;
    const scalar_t* hp = h_prev.data_ptr<scalar_t>();
    const Zone<scalar_t> zh = zone_of<scalar_t>(s, s.zoneout_h, t);
    switch (family) {
      case Family::RnnTanh:
      case Family::RnnRelu:
        gate_t.addmm_(h_in, w_hh_t);
        rnn_forward_rows<scalar_t>(family == Family::RnnRelu, ws_t, W, hp, P, out_t, P, zh, bs, H);
        break;
      case Family::Lstm: {
        gate_t.addmm_(h_in, w_hh_t);
        const Tensor c_prev = read_previous<scalar_t>(s, s.c0, cs, t, bs, c_scratch);
        const Zone<scalar_t> zc = zone_of<scalar_t>(s, s.zoneout_c, t);
        scalar_t* cs_t = cs.data_ptr<scalar_t>() + t * N * H;
        if (!proj) {
          lstm_forward_rows<scalar_t>(ws_t, W, c_prev.data_ptr<scalar_t>(), cs_t, zc, hp, P, out_t, P, zh, bs, H);
          break;
        }
        // with a projection, m_t goes to ws (dW_hr reads it), then h~_t = m_t W_hr^T and its zoneout
        lstm_forward_rows<scalar_t>(ws_t, W, c_prev.data_ptr<scalar_t>(), cs_t, zc, nullptr, 0, ws_t + G + H, W,
                                    Zone<scalar_t>(), bs, H);
        const Tensor m_t = ws[t].narrow(0, 0, bs).narrow(1, G + H, H);
        Tensor out = y[t].narrow(0, 0, bs);
        Tensor target = zh.on ? fresh.narrow(0, 0, bs) : out;
        at::mm_out(target, m_t, w_hr_t);
        if (zh.on) zoneout_mix(s, s.zoneout_h, t, bs, target, h_prev, out);
        break;
      }
      case Family::Gru: {
        Tensor gh_t = gh.narrow(0, 0, bs);
        at::mm_out(gh_t, h_in, w_hh_t);
        gru_forward_rows<scalar_t>(ws_t, W, gh_t.data_ptr<scalar_t>(), b_hn, hp, P, out_t, P, zh, bs, H);
        break;
      }
    }
  }
  const Tensor last = last_steps(s);
  const Tensor rows = at::arange(N, last.options());
  Tensor h_n = y.index({last, rows});
  Tensor c_n = lstm ? cs.index({last, rows}) : at::empty({0}, s.x.options());
  return {y, h_n, c_n, cs, ws};
}

template <typename scalar_t>
BackwardResult classic_backward(Family family, const Sequence& s, const Tensor& y, const Tensor& cs, const Tensor& ws,
                                const Tensor& dy_in, const Tensor& dh_n, const Tensor& dc_n) {
  const ClassicParams p(s);
  const Shape sh = shape_of(family, p);
  const int64_t L = s.L(), N = s.N(), In = s.x.size(2), H = sh.H, P = sh.P, G = sh.G, W = sh.W;
  const bool lstm = family == Family::Lstm, gru = family == Family::Gru, proj = p.w_hr.defined();
  const Tensor dy = dy_in.contiguous();

  Tensor dh = dh_n.clone().contiguous();  // (N, P): dL/dh carried back to the previous step
  Tensor dc = lstm ? dc_n.clone().contiguous() : Tensor();  // (N, H)
  // written and read at the rows alive only, like ws
  Tensor d_gi = at::empty({L, N, G}, s.x.options());
  Tensor d_gh = gru ? at::empty({L, N, G}, s.x.options()) : d_gi;
  Tensor d_fresh = proj ? at::empty({L, N, P}, s.x.options()) : Tensor();  // dL/dh~_t, for dW_hr
  Tensor dh0_reset = s.resets.defined() ? at::zeros_like(s.h0) : Tensor();
  Tensor dc0_reset = (lstm && s.resets.defined()) ? at::zeros_like(s.c0) : Tensor();
  Tensor carry = at::empty({N, P}, s.x.options());  // what reaches h_{t-1} other than through W_hh
  Tensor dm_buf = proj ? at::empty({N, H}, s.x.options()) : Tensor();
  Tensor h_scratch = at::empty({N, P}, s.x.options()), c_scratch = at::empty({N, H}, s.x.options());
  const Tensor w_hh = p.w_hh.contiguous();

  for (int64_t t = L - 1; t >= 0; --t) {
    const int64_t bs = s.alive(t);
    Tensor dh_t = dh.narrow(0, 0, bs);
    dh_t.add_(dy[t].narrow(0, 0, bs));  // dL/dh_t in total
    const Zone<scalar_t> zh = zone_of<scalar_t>(s, s.zoneout_h, t);
    const scalar_t* ws_t = ws.data_ptr<scalar_t>() + t * N * W;
    scalar_t* d_gi_t = d_gi.data_ptr<scalar_t>() + t * N * G;
    Tensor carry_t = carry.narrow(0, 0, bs);
    switch (family) {
      case Family::RnnTanh:
      case Family::RnnRelu:
        rnn_backward_rows<scalar_t>(family == Family::RnnRelu, ws_t, W, dh_t.data_ptr<scalar_t>(), zh,
                                    carry_t.data_ptr<scalar_t>(), d_gi_t, bs, H);
        break;
      case Family::Lstm: {
        const scalar_t* dm = dh_t.data_ptr<scalar_t>();
        Zone<scalar_t> zm = zh;
        if (proj) {  // h_t's zoneout and the projection's backward come before the cell's: dm = dL/dh~ W_hr
          Tensor dh_fresh = dh_t;
          if (zh.on) {
            const Tensor m = s.zoneout_at(s.zoneout_h, t, bs);
            m.defined() ? at::mul_out(carry_t, dh_t, m) : at::mul_out(carry_t, dh_t, s.zoneout_p);
            dh_fresh = dh_t - carry_t;
          }
          d_fresh[t].narrow(0, 0, bs).copy_(dh_fresh);
          Tensor dm_t = dm_buf.narrow(0, 0, bs);
          at::mm_out(dm_t, dh_fresh, p.w_hr);  // (bs, H)
          dm = dm_t.data_ptr<scalar_t>();
          zm = Zone<scalar_t>();
        }
        const Tensor c_prev = read_previous<scalar_t>(s, s.c0, cs, t, bs, c_scratch);
        lstm_backward_rows<scalar_t>(ws_t, W, dm, zm, carry_t.data_ptr<scalar_t>(), dc.data_ptr<scalar_t>(),
                                     zone_of<scalar_t>(s, s.zoneout_c, t), c_prev.data_ptr<scalar_t>(), d_gi_t, bs,
                                     H);
        break;
      }
      case Family::Gru: {
        const Tensor h_prev = read_previous<scalar_t>(s, s.h0, y, t, bs, h_scratch);
        gru_backward_rows<scalar_t>(ws_t, W, dh_t.data_ptr<scalar_t>(), zh, h_prev.data_ptr<scalar_t>(), P, d_gi_t,
                                    d_gh.data_ptr<scalar_t>() + t * N * G, carry_t.data_ptr<scalar_t>(), bs, H);
        break;
      }
    }
    // dL/dh_{t-1} = (d gh_t W_hh) ⊙ r + carry, written over dh_t (consumed above)
    at::mm_out(dh_t, d_gh[t].narrow(0, 0, bs), w_hh);  // (bs, P)
    if (s.recurrent_mask.defined()) dh_t.mul_(s.recurrent_mask.narrow(0, 0, bs));
    if (gru || zh.on) dh_t.add_(carry_t);
    route_resets<scalar_t>(s, t, bs, dh, dh0_reset);
    if (lstm) route_resets<scalar_t>(s, t, bs, dc, dc0_reset);
    if (s.bptt_window > 0 && t > 0 && t % s.bptt_window == 0) {  // truncation: nothing crosses this boundary
      dh_t.zero_();
      if (lstm) dc.narrow(0, 0, bs).zero_();
    }
  }

  // the weights' gradients and dL/dx: one matrix multiply each over the rows alive (all L·N without lengths)
  const Tensor alive = alive_rows(s);
  const Tensor d_gi2 = rows_of(d_gi.view({L * N, G}), alive);
  const Tensor d_gh2 = gru ? rows_of(d_gh.view({L * N, G}), alive) : d_gi2;
  Tensor dx = at::empty({0}, s.x.options());
  if (s.input_grad && alive.defined()) {
    dx = at::zeros({L * N, In}, s.x.options()).index_copy_(0, alive, at::mm(d_gi2, p.w_ih)).view({L, N, In});
  } else if (s.input_grad) {
    dx = at::mm(d_gi2, p.w_ih).view({L, N, In});
  }
  std::vector<Tensor> grads;
  grads.push_back(at::mm(d_gi2.t(), rows_of(s.x.reshape({L * N, In}), alive)));  // dW_ih (G, In)
  Tensor h_in = previous_states(s, s.h0, y);  // (L, N, P)
  if (s.recurrent_mask.defined()) h_in = h_in * s.recurrent_mask;
  grads.push_back(at::mm(d_gh2.t(), rows_of(h_in.view({L * N, P}), alive)));  // dW_hh (G, P)
  if (s.bias) {
    grads.push_back(d_gi2.sum(0));
    grads.push_back(d_gh2.sum(0));
  }
  if (proj) {
    const Tensor m = rows_of(ws.view({L * N, W}).narrow(1, G + H, H), alive);
    grads.push_back(at::mm(rows_of(d_fresh.view({L * N, P}), alive).t(), m));  // dW_hr (P, H)
  }
  Tensor dh0 = dh0_reset.defined() ? dh + dh0_reset : dh;
  Tensor dc0 = lstm ? (dc0_reset.defined() ? dc + dc0_reset : dc) : at::empty({0}, s.x.options());
  return {dx, dh0, dc0, grads};
}

Kernel classic_kernel(Family family) {
  return dispatched_kernel(
      [family](auto tag, const Sequence& s) { return classic_forward<decltype(tag)>(family, s); },
      [family](auto tag, const auto&... args) { return classic_backward<decltype(tag)>(family, args...); },
      [family](const Sequence& s) { return shape_of(family, ClassicParams(s)).W; });
}

}  // namespace

RNNKIT_REGISTER_KERNEL(rnn_tanh, classic_kernel(Family::RnnTanh));
RNNKIT_REGISTER_KERNEL(rnn_relu, classic_kernel(Family::RnnRelu));
RNNKIT_REGISTER_KERNEL(lstm, classic_kernel(Family::Lstm));
RNNKIT_REGISTER_KERNEL(gru, classic_kernel(Family::Gru));

}  // namespace rnnkit
