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
#include "classic_rows.h"

namespace rnnkit {
namespace {

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
  return {y, final_states(s, y), final_states(s, lstm ? cs : Tensor()), cs, ws};
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
