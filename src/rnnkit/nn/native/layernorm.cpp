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
#include "layernorm_rows.h"

namespace rnnkit {
namespace {

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
  return {y, final_states(s, y), final_states(s, lstm ? cs : Tensor()), cs, ws};
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
