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

// ---- pointwise forward, rows [0, bs) of one step -----------------------------------------------------------------
// a: the gate block of row n (pre-activations with h_in W_hh^T added), W apart; out: h~ rows (stride ldo).

template <typename scalar_t>
void rnn_forward_rows(bool relu, scalar_t* ws, int64_t W, int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, H, [&](int64_t n) {
    scalar_t* a = ws + n * W;
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      V v = V::loadu(a + j, k);
      v = relu ? at::vec::clamp_min(v, V(0)) : tanh(v);
      v.store(a + j, k);
    }
  });
}

template <typename scalar_t>
void lstm_forward_rows(scalar_t* ws, int64_t W, const scalar_t* c_prev, int64_t ldc, scalar_t* m_out, int64_t ldm,
                       int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, 4 * H, [&](int64_t n) {
    scalar_t* a = ws + n * W;
    scalar_t* c_new = a + 4 * H;
    const scalar_t* cp = c_prev + n * ldc;
    scalar_t* m = m_out + n * ldm;
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
      (o * tanh(c)).store(m + j, k);
    }
  });
}

template <typename scalar_t>
void gru_forward_rows(scalar_t* ws, int64_t W, const scalar_t* gh, const scalar_t* b_hn, const scalar_t* h_prev,
                      int64_t ldh, scalar_t* h_out, int64_t ldo, int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, 3 * H, [&](int64_t n) {
    scalar_t* a = ws + n * W;
    scalar_t* ghn_saved = a + 3 * H;
    const scalar_t* g = gh + n * 3 * H;
    const scalar_t* hp = h_prev + n * ldh;
    scalar_t* h = h_out + n * ldo;
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
      (nn + z * (V::loadu(hp + j, k) - nn)).store(h + j, k);
    }
  });
}

// ---- pointwise backward, rows [0, bs) of one step ----------------------------------------------------------------
// dm: dL/dh~ (lstm: dL/dm) rows; writes the gate gradients d_gi (and d_gh for the gru), and for the lstm turns dc
// (dL/dc~ in) into dL/dc_{t-1} (out); the gru adds its direct path z ⊙ dh~ into direct.

template <typename scalar_t>
void rnn_backward_rows(bool relu, const scalar_t* ws, int64_t W, const scalar_t* dh, scalar_t* d_gi, int64_t bs,
                       int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, H, [&](int64_t n) {
    const scalar_t* h = ws + n * W;
    const scalar_t* d = dh + n * H;
    scalar_t* out = d_gi + n * H;
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      const V hv = V::loadu(h + j, k);
      const V slope = relu ? V::blendv(V(0), V(1), hv > V(0)) : V(1) - hv * hv;
      (V::loadu(d + j, k) * slope).store(out + j, k);
    }
  });
}

template <typename scalar_t>
void lstm_backward_rows(const scalar_t* ws, int64_t W, const scalar_t* dm, scalar_t* dc, const scalar_t* c_prev,
                        int64_t ldc, scalar_t* d_gi, int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, 4 * H, [&](int64_t n) {
    const scalar_t* a = ws + n * W;
    const scalar_t* c_new = a + 4 * H;
    const scalar_t* cp = c_prev + n * ldc;
    const scalar_t* d = dm + n * H;
    scalar_t* dcr = dc + n * H;
    scalar_t* dg = d_gi + n * 4 * H;
    const V one(1);
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      const V i = V::loadu(a + j, k), f = V::loadu(a + H + j, k), g = V::loadu(a + 2 * H + j, k),
              o = V::loadu(a + 3 * H + j, k);
      const V tc = tanh(V::loadu(c_new + j, k));
      const V dmv = V::loadu(d + j, k);
      const V dcv = V::loadu(dcr + j, k) + dmv * o * (one - tc * tc);  // dL/dc~_t
      (dcv * g * i * (one - i)).store(dg + j, k);
      (dcv * V::loadu(cp + j, k) * f * (one - f)).store(dg + H + j, k);
      (dcv * i * (one - g * g)).store(dg + 2 * H + j, k);
      (dmv * tc * o * (one - o)).store(dg + 3 * H + j, k);
      (dcv * f).store(dcr + j, k);  // dL/dc_{t-1} through c~_t
    }
  });
}

template <typename scalar_t>
void gru_backward_rows(const scalar_t* ws, int64_t W, const scalar_t* dh, const scalar_t* h_prev, int64_t ldh,
                       scalar_t* d_gi, scalar_t* d_gh, scalar_t* direct, int64_t bs, int64_t H) {
  using V = Vec<scalar_t>;
  for_rows(bs, 3 * H, [&](int64_t n) {
    const scalar_t* a = ws + n * W;
    const scalar_t* d = dh + n * H;
    const scalar_t* hp = h_prev + n * ldh;
    scalar_t* gi = d_gi + n * 3 * H;
    scalar_t* gh = d_gh + n * 3 * H;
    scalar_t* dir = direct + n * H;
    const V one(1);
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t k = std::min<int64_t>(V::size(), H - j);
      const V r = V::loadu(a + j, k), z = V::loadu(a + H + j, k), nn = V::loadu(a + 2 * H + j, k),
              ghn = V::loadu(a + 3 * H + j, k);
      const V dv = V::loadu(d + j, k);
      const V dn = dv * (one - z) * (one - nn * nn);  // dL/d(pre-activation of n)
      const V dz = dv * (V::loadu(hp + j, k) - nn) * z * (one - z);
      const V dr = dn * ghn * r * (one - r);
      dr.store(gi + j, k);
      dz.store(gi + H + j, k);
      dn.store(gi + 2 * H + j, k);
      dr.store(gh + j, k);
      dz.store(gh + H + j, k);
      (dn * r).store(gh + 2 * H + j, k);
      (dv * z).store(dir + j, k);
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

  Tensor ws = buffer(s, {L, N, W});
  Tensor gates = ws.view({L * N, W}).narrow(1, 0, G);  // (L*N, G), rows W apart
  Tensor bias = folded_bias(family, p, H);
  if (bias.defined()) {
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
  Tensor fresh = at::empty({N, H}, s.x.options());  // h~_t (or m_t) before projection and zoneout
  Tensor h_scratch = at::empty({N, P}, s.x.options()), c_scratch = at::empty({N, H}, s.x.options());

  for (int64_t t = 0; t < L; ++t) {
    const int64_t bs = s.alive(t);
    const Tensor h_prev = read_previous<scalar_t>(s, s.h0, y, t, bs, h_scratch);  // (bs, P)
    const Tensor h_in = s.recurrent_mask.defined() ? h_prev * s.recurrent_mask.narrow(0, 0, bs) : h_prev;
    Tensor gate_t = ws[t].narrow(0, 0, bs).narrow(1, 0, G);  // (bs, G), rows W apart
    scalar_t* ws_t = ws[t].data_ptr<scalar_t>();
    Tensor out_t = y[t].narrow(0, 0, bs);
    // h~ straight into the output when nothing comes between them (no projection, no zoneout)
    Tensor fresh_t = (s.zoneout() || proj || family == Family::RnnTanh || family == Family::RnnRelu)
                         ? fresh.narrow(0, 0, bs)
                         : out_t;
    switch (family) {
      case Family::RnnTanh:
      case Family::RnnRelu:
        gate_t.addmm_(h_in, w_hh_t);
        rnn_forward_rows<scalar_t>(family == Family::RnnRelu, ws_t, W, bs, H);
        fresh_t = gate_t;  // h~ lives in ws
        break;
      case Family::Lstm: {
        gate_t.addmm_(h_in, w_hh_t);
        const Tensor c_prev = read_previous<scalar_t>(s, s.c0, cs, t, bs, c_scratch);
        Tensor m_t = proj ? ws[t].narrow(0, 0, bs).narrow(1, G + H, H) : fresh_t;
        lstm_forward_rows<scalar_t>(ws_t, W, c_prev.data_ptr<scalar_t>(), H, m_t.data_ptr<scalar_t>(), m_t.stride(0),
                                    bs, H);
        const Tensor c_new = ws[t].narrow(0, 0, bs).narrow(1, G, H);
        zoneout_mix(s, s.zoneout_c, t, bs, c_new, c_prev, cs[t].narrow(0, 0, bs));
        if (proj) {
          Tensor target = s.zoneout() ? fresh.narrow(1, 0, P).narrow(0, 0, bs) : out_t;
          at::mm_out(target, m_t, w_hr_t);
          fresh_t = target;
        }
        break;
      }
      case Family::Gru: {
        Tensor gh_t = gh.narrow(0, 0, bs);
        at::mm_out(gh_t, h_in, w_hh_t);
        const Tensor hp = h_prev.contiguous();
        gru_forward_rows<scalar_t>(ws_t, W, gh_t.data_ptr<scalar_t>(), b_hn, hp.data_ptr<scalar_t>(), P,
                                   fresh_t.data_ptr<scalar_t>(), fresh_t.stride(0), bs, H);
        break;
      }
    }
    zoneout_mix(s, s.zoneout_h, t, bs, fresh_t, h_prev, out_t);
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
  Tensor d_gi = buffer(s, {L, N, G});
  Tensor d_gh = gru ? buffer(s, {L, N, G}) : d_gi;
  Tensor d_fresh = proj ? buffer(s, {L, N, P}) : Tensor();  // dL/dh~_t, for dW_hr
  Tensor dh0_reset = s.resets.defined() ? at::zeros_like(s.h0) : Tensor();
  Tensor dc0_reset = (lstm && s.resets.defined()) ? at::zeros_like(s.c0) : Tensor();
  Tensor direct = gru ? at::empty({N, H}, s.x.options()) : Tensor();
  Tensor dm_buf = at::empty({N, H}, s.x.options());
  Tensor h_scratch = at::empty({N, P}, s.x.options()), c_scratch = at::empty({N, H}, s.x.options());
  const Tensor w_hh = p.w_hh.contiguous();

  for (int64_t t = L - 1; t >= 0; --t) {
    const int64_t bs = s.alive(t);
    Tensor dh_t = dh.narrow(0, 0, bs);
    dh_t.add_(dy[t].narrow(0, 0, bs));
    // zoneout: dL/dh~ = (1 − m) dh; m dh goes straight to h_{t-1}
    Tensor keep_h, keep_c, dh_fresh = dh_t, dc_t = lstm ? dc.narrow(0, 0, bs) : Tensor();
    if (s.zoneout()) {
      const Tensor m = s.zoneout_at(s.zoneout_h, t, bs);
      keep_h = m.defined() ? dh_t * m : dh_t * s.zoneout_p;
      dh_fresh = dh_t - keep_h;
      if (lstm) {
        const Tensor mc = s.zoneout_at(s.zoneout_c, t, bs);
        keep_c = mc.defined() ? dc_t * mc : dc_t * s.zoneout_p;
        dc_t.sub_(keep_c);
      }
    }
    const Tensor h_prev = read_previous<scalar_t>(s, s.h0, y, t, bs, h_scratch);
    const scalar_t* ws_t = ws[t].data_ptr<scalar_t>();
    Tensor d_gi_t = d_gi[t].narrow(0, 0, bs);
    switch (family) {
      case Family::RnnTanh:
      case Family::RnnRelu: {
        const Tensor d = dh_fresh.contiguous();
        rnn_backward_rows<scalar_t>(family == Family::RnnRelu, ws_t, W, d.data_ptr<scalar_t>(),
                                    d_gi_t.data_ptr<scalar_t>(), bs, H);
        break;
      }
      case Family::Lstm: {
        Tensor dm = dh_fresh.contiguous();
        if (proj) {
          d_fresh[t].narrow(0, 0, bs).copy_(dh_fresh);
          dm = dm_buf.narrow(0, 0, bs);
          at::mm_out(dm, dh_fresh, p.w_hr);  // (bs, H)
        }
        const Tensor c_prev = read_previous<scalar_t>(s, s.c0, cs, t, bs, c_scratch);
        lstm_backward_rows<scalar_t>(ws_t, W, dm.data_ptr<scalar_t>(), dc_t.data_ptr<scalar_t>(),
                                     c_prev.data_ptr<scalar_t>(), H, d_gi_t.data_ptr<scalar_t>(), bs, H);
        if (keep_c.defined()) dc_t.add_(keep_c);
        break;
      }
      case Family::Gru: {
        const Tensor d = dh_fresh.contiguous();
        const Tensor hp = h_prev.contiguous();
        gru_backward_rows<scalar_t>(ws_t, W, d.data_ptr<scalar_t>(), hp.data_ptr<scalar_t>(), P,
                                    d_gi_t.data_ptr<scalar_t>(), d_gh[t].data_ptr<scalar_t>(),
                                    direct.data_ptr<scalar_t>(), bs, H);
        break;
      }
    }
    // dL/dh_{t-1} = (d gh_t W_hh) ⊙ r + direct path + zoneout's keep path, written over dh_t (consumed above)
    at::mm_out(dh_t, d_gh[t].narrow(0, 0, bs), w_hh);  // (bs, P)
    if (s.recurrent_mask.defined()) dh_t.mul_(s.recurrent_mask.narrow(0, 0, bs));
    if (gru) dh_t.add_(direct.narrow(0, 0, bs));
    if (keep_h.defined()) dh_t.add_(keep_h);
    route_resets<scalar_t>(s, t, bs, dh, dh0_reset);
    if (lstm) route_resets<scalar_t>(s, t, bs, dc, dc0_reset);
    if (s.bptt_window > 0 && t > 0 && t % s.bptt_window == 0) {  // truncation: nothing crosses this boundary
      dh_t.zero_();
      if (lstm) dc_t.zero_();
    }
  }

  const Tensor d_gi2 = d_gi.view({L * N, G});
  const Tensor d_gh2 = d_gh.view({L * N, G});
  Tensor dx = s.input_grad ? at::mm(d_gi2, p.w_ih).view({L, N, In}) : at::empty({0}, s.x.options());
  std::vector<Tensor> grads;
  grads.push_back(at::mm(d_gi2.t(), s.x.reshape({L * N, In})));  // dW_ih (G, In)
  Tensor h_in = previous_states(s, s.h0, y);  // (L, N, P)
  if (s.recurrent_mask.defined()) h_in = h_in * s.recurrent_mask;
  grads.push_back(at::mm(d_gh2.t(), h_in.view({L * N, P})));  // dW_hh (G, P)
  if (s.bias) {
    grads.push_back(d_gi2.sum(0));
    grads.push_back(d_gh2.sum(0));
  }
  if (proj) {
    const Tensor m = ws.view({L * N, W}).narrow(1, G + H, H);
    grads.push_back(at::mm(d_fresh.view({L * N, P}).t(), m));  // dW_hr (P, H)
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
