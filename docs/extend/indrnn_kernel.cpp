// The IndRNN's kernel for rnnkit's native engine (docs/extend/native-kernel.md):
//   h_t = relu(a_t),  a_t = x_t W_ih^T + b_ih + u ⊙ h_{t-1}      u (H,): one recurrent weight per unit
// Parameters in the cell's declaration order: weight_ih (H, In), weight_hh = u (H,), [bias_ih (H,)].
#include "recurrence.h"

namespace {

using rnnkit::Sequence;
using rnnkit::Tensor;
using rnnkit::Vec;

// Forward: the input projection of all steps in one matrix multiply, then per step one vectorised pass over the
// rows; ws (L, N, H) keeps h~_t = relu(a_t), which is all the backward needs (relu' = [h~ > 0]).
template <typename scalar_t>
rnnkit::ForwardResult forward(const Sequence& s) {
  const int64_t L = s.L(), N = s.N(), In = s.x.size(2), H = s.h0.size(1);
  const Tensor& w_ih = s.params[0];
  const Tensor& u = s.params[1];
  Tensor x2 = s.x.reshape({L * N, In});
  Tensor ws = s.bias ? at::addmm(s.params[2], x2, w_ih.t()) : at::mm(x2, w_ih.t());  // (L*N, H): a_t without u
  ws = ws.view({L, N, H});
  if (!s.batch_sizes.empty()) ws.mul_((at::arange(N).unsqueeze(0) < at::tensor(s.batch_sizes).unsqueeze(1))
                                          .unsqueeze(2).to(ws.scalar_type()));  // padding reads as zeros
  Tensor y = rnnkit::buffer(s, {L, N, H});
  for (int64_t t = 0; t < L; ++t) {
    const int64_t bs = s.alive(t);
    const Tensor h_prev = rnnkit::previous_state(s, s.h0, y, t, bs).contiguous();  // (bs, H)
    scalar_t* a = ws[t].data_ptr<scalar_t>();
    const scalar_t* hp = h_prev.data_ptr<scalar_t>();
    const scalar_t* up = u.data_ptr<scalar_t>();
    rnnkit::for_rows(bs, H, [&](int64_t n) {
      for (int64_t j = 0; j < H; j += Vec<scalar_t>::size()) {
        const int64_t k = std::min<int64_t>(Vec<scalar_t>::size(), H - j);
        const auto v = Vec<scalar_t>::loadu(a + n * H + j, k) + Vec<scalar_t>::loadu(up + j, k) *
                                                                    Vec<scalar_t>::loadu(hp + n * H + j, k);
        at::vec::clamp_min(v, Vec<scalar_t>(0)).store(a + n * H + j, k);
      }
    });
    rnnkit::zoneout_mix(s, s.zoneout_h, t, bs, ws[t].narrow(0, 0, bs), h_prev, y[t].narrow(0, 0, bs));
  }
  Tensor none = at::empty({0}, s.x.options());
  return {y, rnnkit::final_states(s, y), none, none, ws};  // h_n: each row at its own last step
}

// Backward: dL/da_t = dh~_t ⊙ relu'; dL/dh_{t-1} = u ⊙ dL/da_t (+ zoneout's keep path); the shared weights'
// gradients are sums over all steps: dW_ih and dx one matrix multiply each, du = Σ dL/da_t ⊙ h_{t-1}.
template <typename scalar_t>
rnnkit::BackwardResult backward(const Sequence& s, const Tensor& y, const Tensor&, const Tensor& ws,
                                const Tensor& dy, const Tensor& dh_n, const Tensor&) {
  const int64_t L = s.L(), N = s.N(), In = s.x.size(2), H = s.h0.size(1);
  const Tensor& u = s.params[1];
  Tensor dh = dh_n.clone();                    // (N, H): carried back through time
  Tensor d_a = rnnkit::buffer(s, {L, N, H});   // dL/da_t
  Tensor dh0_reset = at::zeros_like(s.h0);     // what rows that reset send to h_0
  for (int64_t t = L - 1; t >= 0; --t) {
    const int64_t bs = s.alive(t);
    Tensor dh_t = dh.narrow(0, 0, bs);
    dh_t.add_(dy[t].narrow(0, 0, bs));
    Tensor keep;
    if (s.zoneout()) {
      const Tensor m = s.zoneout_at(s.zoneout_h, t, bs);
      keep = m.defined() ? dh_t * m : dh_t * s.zoneout_p;
      dh_t.sub_(keep);                         // dL/dh~_t
    }
    Tensor d_a_t = d_a[t].narrow(0, 0, bs);
    at::mul_out(d_a_t, dh_t, ws[t].narrow(0, 0, bs).gt(0));
    at::mul_out(dh_t, d_a_t, u);               // dL/dh_{t-1} through u
    if (keep.defined()) dh_t.add_(keep);
    if (t > 0 && s.resets.defined()) {         // a row that reset read h_0: its gradient goes there
      const Tensor r = s.resets[t].narrow(0, 0, bs).unsqueeze(1);
      dh0_reset.narrow(0, 0, bs).add_(dh_t * r);
      dh_t.masked_fill_(r, 0);
    }
    if (s.bptt_window > 0 && t > 0 && t % s.bptt_window == 0) dh_t.zero_();
  }
  const Tensor d_a2 = d_a.view({L * N, H});
  std::vector<Tensor> grads{at::mm(d_a2.t(), s.x.reshape({L * N, In})),
                            (d_a * rnnkit::previous_states(s, s.h0, y)).sum({0, 1})};
  if (s.bias) grads.push_back(d_a2.sum(0));
  return {at::mm(d_a2, s.params[0]).view({L, N, In}), dh + dh0_reset, at::empty({0}, s.x.options()), grads};
}

rnnkit::Kernel indrnn() {
  return rnnkit::dispatched_kernel(
      [](auto tag, const Sequence& s) { return forward<decltype(tag)>(s); },
      [](auto tag, const auto&... args) { return backward<decltype(tag)>(args...); },
      [](const Sequence& s) { return s.h0.size(1); });
}

}  // namespace

RNNKIT_REGISTER_KERNEL(indrnn, indrnn());
