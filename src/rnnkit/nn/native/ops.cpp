// The ops `torch.ops.rnnkit.forward` / `torch.ops.rnnkit.backward`: one layer in one direction, any cell that has a
// kernel (looked up by name in the registry that the kernel files fill), with a CPU kernel and a Meta (shape-only)
// kernel each, so that torch.compile and torch.export see one op. A CUDA kernel would register under the CUDA key.
#include <torch/library.h>

#include <map>
#include <sstream>

#include "recurrence.h"

namespace rnnkit {

static std::map<std::string, Kernel>& registry() {
  static std::map<std::string, Kernel> kernels;
  return kernels;
}

void register_kernel(const std::string& name, Kernel kernel) { registry()[name] = std::move(kernel); }

const Kernel& find_kernel(const std::string& name) {
  auto it = registry().find(name);
  TORCH_CHECK(it != registry().end(), "rnnkit's native engine has no kernel for cell '", name, "'");
  return it->second;
}

std::vector<std::string> kernel_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

namespace {

Sequence make_sequence(const Tensor& x, const Tensor& h0, const std::optional<Tensor>& c0, at::TensorList params,
                       bool bias, const std::optional<Tensor>& recurrent_mask, const std::optional<Tensor>& zoneout_h,
                       const std::optional<Tensor>& zoneout_c, double zoneout_p, const std::optional<Tensor>& batch_sizes,
                       const std::optional<Tensor>& resets, int64_t bptt_window) {
  Sequence s;
  s.x = x.contiguous();
  s.h0 = h0.contiguous();
  if (c0) s.c0 = c0->contiguous();
  for (const auto& p : params) s.params.push_back(p.contiguous());
  s.bias = bias;
  if (recurrent_mask) s.recurrent_mask = recurrent_mask->contiguous();
  if (zoneout_h) s.zoneout_h = zoneout_h->contiguous();
  if (zoneout_c) s.zoneout_c = zoneout_c->contiguous();
  s.zoneout_p = zoneout_p;
  if (batch_sizes && batch_sizes->defined()) {
    const Tensor sizes = batch_sizes->to(at::kLong).contiguous();
    s.batch_sizes.assign(sizes.data_ptr<int64_t>(), sizes.data_ptr<int64_t>() + sizes.numel());
  }
  if (resets) s.resets = resets->to(at::kBool).contiguous();
  s.bptt_window = bptt_window;
  TORCH_CHECK(s.x.dim() == 3 && s.x.size(0) > 0, "rnnkit.forward: x must be (L, N, In) with L > 0");
  TORCH_CHECK(s.batch_sizes.empty() || (int64_t)s.batch_sizes.size() == s.L(),
              "rnnkit.forward: batch_sizes must have one entry per step");
  return s;
}

ForwardResult forward_cpu(c10::string_view cell, const Tensor& x, const Tensor& h0, const std::optional<Tensor>& c0,
                          at::TensorList params, bool bias, const std::optional<Tensor>& recurrent_mask,
                          const std::optional<Tensor>& zoneout_h, const std::optional<Tensor>& zoneout_c,
                          double zoneout_p, const std::optional<Tensor>& batch_sizes, const std::optional<Tensor>& resets,
                          int64_t bptt_window) {
  const Sequence s = make_sequence(x, h0, c0, params, bias, recurrent_mask, zoneout_h, zoneout_c, zoneout_p,
                                   batch_sizes, resets, bptt_window);
  return find_kernel(std::string(cell)).forward(s);
}

BackwardResult backward_cpu(c10::string_view cell, const Tensor& x, const Tensor& h0, const std::optional<Tensor>& c0,
                            at::TensorList params, bool bias, const std::optional<Tensor>& recurrent_mask,
                            const std::optional<Tensor>& zoneout_h, const std::optional<Tensor>& zoneout_c,
                            double zoneout_p, const std::optional<Tensor>& batch_sizes, const std::optional<Tensor>& resets,
                            int64_t bptt_window, const Tensor& y, const Tensor& cs, const Tensor& ws, const Tensor& dy,
                            const Tensor& dh_n, const std::optional<Tensor>& dc_n, bool input_grad) {
  Sequence s = make_sequence(x, h0, c0, params, bias, recurrent_mask, zoneout_h, zoneout_c, zoneout_p, batch_sizes,
                             resets, bptt_window);
  s.input_grad = input_grad;
  const Tensor dc = (dc_n && dc_n->defined()) ? *dc_n : (s.c0.defined() ? at::zeros_like(s.c0) : Tensor());
  return find_kernel(std::string(cell)).backward(s, y.contiguous(), cs.contiguous(), ws.contiguous(), dy, dh_n, dc);
}

// Shapes only: y (L, N, P), h_n (N, P), c_n (N, H) and cs (L, N, H) with a cell state (else empty), ws (L, N, W).
ForwardResult forward_meta(c10::string_view cell, const Tensor& x, const Tensor& h0, const std::optional<Tensor>& c0,
                           at::TensorList params, bool bias, const std::optional<Tensor>& recurrent_mask,
                           const std::optional<Tensor>& zoneout_h, const std::optional<Tensor>& zoneout_c,
                           double zoneout_p, const std::optional<Tensor>& batch_sizes, const std::optional<Tensor>& resets,
                           int64_t bptt_window) {
  Sequence s;
  s.x = x;
  s.h0 = h0;
  if (c0) s.c0 = *c0;
  s.params = params.vec();
  s.bias = bias;
  const int64_t W = find_kernel(std::string(cell)).saved_width(s);
  const auto L = x.size(0), N = x.size(1);
  auto opts = x.options();
  Tensor c_n = c0 ? at::empty({N, c0->size(1)}, opts) : at::empty({0}, opts);
  Tensor cs = c0 ? at::empty({L, N, c0->size(1)}, opts) : at::empty({0}, opts);
  return {at::empty({L, N, h0.size(1)}, opts), at::empty({N, h0.size(1)}, opts), c_n, cs, at::empty({L, N, W}, opts)};
}

BackwardResult backward_meta(c10::string_view cell, const Tensor& x, const Tensor& h0, const std::optional<Tensor>& c0,
                             at::TensorList params, bool bias, const std::optional<Tensor>& recurrent_mask,
                             const std::optional<Tensor>& zoneout_h, const std::optional<Tensor>& zoneout_c,
                             double zoneout_p, const std::optional<Tensor>& batch_sizes, const std::optional<Tensor>& resets,
                             int64_t bptt_window, const Tensor& y, const Tensor& cs, const Tensor& ws,
                             const Tensor& dy, const Tensor& dh_n, const std::optional<Tensor>& dc_n,
                             bool input_grad) {
  std::vector<Tensor> grads;
  for (const auto& p : params) grads.push_back(at::empty_like(p));
  Tensor dc0 = c0 ? at::empty_like(*c0) : at::empty({0}, x.options());
  Tensor dx = input_grad ? at::empty_like(x) : at::empty({0}, x.options());
  return {dx, at::empty_like(h0), dc0, grads};
}

#ifdef CPU_CAPABILITY
#define RNNKIT_STR2(x) #x
#define RNNKIT_STR(x) RNNKIT_STR2(x)
constexpr const char* kIsa = RNNKIT_STR(CPU_CAPABILITY);
#else
constexpr const char* kIsa = "DEFAULT";
#endif

// "isa=AVX2;kernels=gru,lstm,..." : what this build of the extension offers.
std::string build_info() {
  std::ostringstream out;
  out << "isa=" << kIsa << ";kernels=";
  const auto names = kernel_names();
  for (size_t i = 0; i < names.size(); ++i) out << (i ? "," : "") << names[i];
  return out.str();
}

}  // namespace
}  // namespace rnnkit

TORCH_LIBRARY(rnnkit, m) {
  m.def("forward(str cell, Tensor x, Tensor h0, Tensor? c0, Tensor[] params, bool bias, Tensor? recurrent_mask, "
        "Tensor? zoneout_h, Tensor? zoneout_c, float zoneout_p, Tensor? batch_sizes, Tensor? resets, int bptt_window) "
        "-> (Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("backward(str cell, Tensor x, Tensor h0, Tensor? c0, Tensor[] params, bool bias, Tensor? recurrent_mask, "
        "Tensor? zoneout_h, Tensor? zoneout_c, float zoneout_p, Tensor? batch_sizes, Tensor? resets, int bptt_window, "
        "Tensor y, Tensor cs, Tensor ws, Tensor dy, Tensor dh_n, Tensor? dc_n, bool input_grad=True) "
        "-> (Tensor, Tensor, Tensor, Tensor[])");
  m.def("build_info() -> str", &rnnkit::build_info);
}

TORCH_LIBRARY_IMPL(rnnkit, CPU, m) {
  m.impl("forward", &rnnkit::forward_cpu);
  m.impl("backward", &rnnkit::backward_cpu);
}

TORCH_LIBRARY_IMPL(rnnkit, Meta, m) {
  m.impl("forward", &rnnkit::forward_meta);
  m.impl("backward", &rnnkit::backward_meta);
}
