// rnnkit's native engine: what every cell kernel shares.
//
// One layer in one direction is one call of the op `rnnkit::forward` and, for its gradient, one of `rnnkit::backward`
// (registered in ops.cpp). The op looks the cell's kernel up by name in the registry below; a kernel is one C++ file
// that registers itself with RNNKIT_REGISTER_KERNEL.
//
// Shape letters as in rnnkit.nn: L steps, N rows (sorted by decreasing length when lengths differ, so that the rows
// alive at step t are [0, bs)), In input size, H hidden size, P the size of h (proj_size or H), G the gate width.
//
// The recurrence and its regularisers, as the explicit engine runs them:
//   h_in   = h_{t-1} ⊙ r                                  recurrent dropout: r (N, P) fixed for the sequence
//   h~_t, c~_t = the cell's step equations
//   h_t    = m_t ⊙ h_{t-1} + (1 − m_t) ⊙ h~_t             zoneout: masks (L, N, P) in training, or a probability
//   (h_{t-1}, c_{t-1}) = (h_0, c_0) on the rows that reset before step t (resets (L, N))
// Backward (BPTT) carries dL/dh and dL/dc back through time; the carry is cut at every bptt_window-th step boundary,
// and at a reset it flows into dL/dh_0 instead of into the previous step.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <functional>
#include <type_traits>
#include <string>
#include <tuple>
#include <vector>

namespace rnnkit {

using at::Tensor;

// Everything one layer-direction's forward or backward call is given besides the cell's equations.
struct Sequence {
  Tensor x;                    // (L, N, In)
  Tensor h0;                   // (N, P)
  Tensor c0;                   // (N, H) or undefined
  std::vector<Tensor> params;  // the cell's parameters, in the order of its Python declaration
  bool bias = true;
  Tensor recurrent_mask;       // (N, P) scaled by 1/(1-p), or undefined
  Tensor zoneout_h;            // (L, N, P) keep masks (training), or undefined
  Tensor zoneout_c;            // (L, N, H) or undefined
  double zoneout_p = 0.0;      // evaluation: the keep probability, when the masks are undefined
  std::vector<int64_t> batch_sizes;  // rows alive per step, or empty: all N rows for all L steps
  Tensor resets;               // (L, N) bool, or undefined
  int64_t bptt_window = 0;     // 0: full BPTT
  bool input_grad = true;      // backward: whether dL/dx is wanted (not for a first layer whose input needs none)

  int64_t L() const { return x.size(0); }
  int64_t N() const { return x.size(1); }
  int64_t alive(int64_t t) const { return batch_sizes.empty() ? N() : batch_sizes[t]; }
  bool zoneout() const { return zoneout_h.defined() || zoneout_p > 0.0; }
  // zoneout's keep factor for step t: the mask row block, or undefined with a probability in evaluation
  Tensor zoneout_at(const Tensor& masks, int64_t t, int64_t bs) const {
    return masks.defined() ? masks[t].narrow(0, 0, bs) : Tensor();
  }
};

// The state step t reads, (bs, S): h_0 at t = 0, else the state after step t-1; h_0's rows where a reset comes
// before step t. A view when nothing resets, else a fresh tensor.
inline Tensor previous_state(const Sequence& s, const Tensor& first, const Tensor& seq, int64_t t, int64_t bs) {
  Tensor prev = t == 0 ? first.narrow(0, 0, bs) : seq[t - 1].narrow(0, 0, bs);
  if (t > 0 && s.resets.defined()) {
    Tensor r = s.resets[t].narrow(0, 0, bs).unsqueeze(1);  // (bs, 1)
    prev = at::where(r, first.narrow(0, 0, bs), prev);
  }
  return prev;
}

// Every step's previous state at once, (L, N, S): what the weight gradients multiply (zeros where a row is padding).
inline Tensor previous_states(const Sequence& s, const Tensor& first, const Tensor& seq) {
  Tensor prev = at::cat({first.unsqueeze(0), seq.narrow(0, 0, s.L() - 1)});
  if (s.resets.defined()) prev = at::where(s.resets.unsqueeze(2), first.unsqueeze(0), prev);
  return prev;
}

// h_t = m ⊙ h_prev + (1 − m) ⊙ h~ (zoneout, masks or probability), written into out; a copy without zoneout.
inline void zoneout_mix(const Sequence& s, const Tensor& masks, int64_t t, int64_t bs, const Tensor& fresh,
                        const Tensor& prev, Tensor out) {
  if (!s.zoneout()) {
    if (!out.is_same(fresh)) out.copy_(fresh);
    return;
  }
  Tensor m = s.zoneout_at(masks, t, bs);
  if (m.defined()) {
    at::lerp_out(out, fresh, prev, m);
  } else {
    at::add_out(out, fresh * (1.0 - s.zoneout_p), prev, s.zoneout_p);
  }
}

// The last step of each row (N,), from batch_sizes; L-1 for every row without lengths.
inline Tensor last_steps(const Sequence& s) {
  auto idx = at::empty({s.N()}, at::kLong);
  auto* p = idx.data_ptr<int64_t>();
  for (int64_t n = 0; n < s.N(); ++n) p[n] = s.L() - 1;
  if (!s.batch_sizes.empty()) {
    for (int64_t n = 0; n < s.N(); ++n) {
      int64_t len = 0;
      while (len < s.L() && s.batch_sizes[len] > n) ++len;
      p[n] = len - 1;
    }
  }
  return idx.to(s.x.device());
}

// With variable lengths, the rows of (L·N, ·) views that are alive, index t·N + n for n < batch_sizes[t], (T,):
// the large matrix multiplies (input projection, dL/dx, the weights' gradients) run on these rows only, so a ragged
// batch costs its real steps, not L·N. Undefined without lengths.
inline Tensor alive_rows(const Sequence& s) {
  if (s.batch_sizes.empty()) return Tensor();
  std::vector<int64_t> rows;
  for (int64_t t = 0; t < s.L(); ++t) {
    for (int64_t n = 0; n < s.batch_sizes[t]; ++n) rows.push_back(t * s.N() + n);
  }
  return at::tensor(rows, at::kLong).to(s.x.device());
}

// Rows of a (L·N, ·) tensor: all of them, or those alive (alive_rows).
inline Tensor rows_of(const Tensor& t2, const Tensor& alive) { return alive.defined() ? t2.index_select(0, alive) : t2; }

// Each row's state at its own last step, (N, S), from every step's states seq (L, N, S); an empty tensor for an
// undefined seq (a cell without a cell state).
inline Tensor final_states(const Sequence& s, const Tensor& seq) {
  if (!seq.defined() || seq.numel() == 0) return at::empty({0}, s.x.options());
  const Tensor last = last_steps(s);
  return seq.index({last, at::arange(s.N(), last.options())});
}

// A tensor whose padded rows must read as finite zeros (variable lengths), else uninitialised.
inline Tensor buffer(const Sequence& s, at::IntArrayRef shape) {
  return s.batch_sizes.empty() ? at::empty(shape, s.x.options()) : at::zeros(shape, s.x.options());
}

// x w^T (+ bias) for the rows of x2 (M, In) and w (Out, In): one matrix multiply.
inline Tensor linear_rows(const Tensor& x2, const Tensor& w, const Tensor& bias = Tensor()) {
  return bias.defined() ? at::addmm(bias, x2, w.t()) : at::mm(x2, w.t());
}

// Rows [0, rows) in parallel over ATen's threads, a row at a time.
template <typename F>
inline void for_rows(int64_t rows, int64_t work_per_row, const F& f) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(work_per_row, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) f(n);
  });
}

// Vectorised activations over at::vec (AVX2 or AVX-512 where the extension was built for it, scalar otherwise).
template <typename scalar_t>
using Vec = at::vec::Vectorized<scalar_t>;

// σ and tanh from one exponential each. In float32 it is ATen's fast exp_u20 (a few ulp; Sleef's exp and tanh, at
// 1 ulp, cost 3× the whole pointwise pass of an LSTM step); in float64 the accurate ones, so that the float64 checks
// against the reference equations hold to 1e-10.
template <typename scalar_t>
inline Vec<scalar_t> sigmoid(const Vec<scalar_t>& v) {
  const Vec<scalar_t> one(1);
  return one / (one + v.neg().exp_u20());
}

template <typename scalar_t>
inline Vec<scalar_t> tanh(const Vec<scalar_t>& v) {
  if constexpr (std::is_same_v<scalar_t, double>) {
    return v.tanh();
  } else {
    const Vec<scalar_t> one(1), two(2);
    return one - two / (one + (v * two).exp_u20());  // tanh(v) = 1 − 2 / (1 + e^{2v}): ±1 at the overflows
  }
}

// The outputs of a forward call: y (L, N, P) every h_t, h_n, c_n (N, ·) each row's final state, cs (L, N, H) every
// c_t (empty without a cell state), ws (L, N, W) what the cell's backward reads.
using ForwardResult = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor>;
// The gradients: dx, dh0, dc0 (empty without a cell state), and one per parameter.
using BackwardResult = std::tuple<Tensor, Tensor, Tensor, std::vector<Tensor>>;

struct Kernel {
  std::function<ForwardResult(const Sequence&)> forward;
  // (sequence, y, cs, ws, dy, dh_n, dc_n)
  std::function<BackwardResult(const Sequence&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const Tensor&, const Tensor&)>
      backward;
  // W, the width per row and step of the saved workspace ws (L, N, W): what the shape-only (meta) kernel needs
  std::function<int64_t(const Sequence&)> saved_width;
};

// A Kernel from a family's templated functions, dispatched over float and double: forward(tag, sequence) and
// backward(tag, sequence, y, cs, ws, dy, dh_n, dc_n) take a value of the scalar type as their first argument.
template <typename Forward, typename Backward, typename Width>
Kernel dispatched_kernel(Forward forward, Backward backward, Width saved_width) {
  Kernel k;
  k.forward = [forward](const Sequence& s) {
    return AT_DISPATCH_FLOATING_TYPES(s.x.scalar_type(), "rnnkit_forward", [&] { return forward(scalar_t{}, s); });
  };
  k.backward = [backward](const Sequence& s, const Tensor& y, const Tensor& cs, const Tensor& ws, const Tensor& dy,
                          const Tensor& dh_n, const Tensor& dc_n) {
    return AT_DISPATCH_FLOATING_TYPES(s.x.scalar_type(), "rnnkit_backward",
                                      [&] { return backward(scalar_t{}, s, y, cs, ws, dy, dh_n, dc_n); });
  };
  k.saved_width = saved_width;
  return k;
}

void register_kernel(const std::string& name, Kernel kernel);
const Kernel& find_kernel(const std::string& name);
std::vector<std::string> kernel_names();

struct KernelRegistration {
  KernelRegistration(const std::string& name, Kernel kernel) { register_kernel(name, std::move(kernel)); }
};

#define RNNKIT_REGISTER_KERNEL(NAME, KERNEL) \
  static ::rnnkit::KernelRegistration rnnkit_kernel_##NAME(#NAME, KERNEL)

}  // namespace rnnkit
