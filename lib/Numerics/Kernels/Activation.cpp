//===- Activation.cpp - gelu and the gated MLP activation ------------------===//
//
// The raised activation ops' reference kernels. They compute in the operand's float type with the same formulas
// as the unary kernels they replace (Elementwise.cpp's gelu, gelu_tanh, sigmoid), so a raised graph and the
// decomposed one agree to the last bits of float32 rounding.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Kernels.h"

#include <cmath>

namespace qopt::num {
namespace {

// Values of the enums in dialects/nn/NNOps.td (GeluApproximation, GatedActivation).
enum class Act : int64_t { Silu = 0, Gelu = 1, GeluTanh = 2 };

template <typename T> T gelu(T x) { return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440))); }
template <typename T> T geluTanh(T x) {
  return T(0.5) * x * (T(1) + std::tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)));
}
template <typename T> T silu(T x) { return x * (T(1) / (T(1) + std::exp(-x))); }

template <typename T> T apply(Act act, T x) {
  switch (act) {
  case Act::Silu: return silu(x);
  case Act::Gelu: return gelu(x);
  case Act::GeluTanh: return geluTanh(x);
  }
  return x;
}

bool floatOperand(const Tensor &t, const char *kernel, std::string &err) {
  if (t.dtype == DType::F32 || t.dtype == DType::F64)
    return true;
  err = std::string(kernel) + ": expects a float32 or float64 operand, got " + dtypeName(t.dtype);
  return false;
}

//===-- gelu ---------------------------------------------------------------===//

bool geluInfer(const KernelArgs &a, std::string &err) {
  int64_t approx = a.attrs->getInt("approximation", 0);
  if (approx != 0 && approx != 1) {
    err = "gelu: approximation must be 0 (erf) or 1 (tanh), got " + std::to_string(approx);
    return false;
  }
  if (!floatOperand(*a.in(0), "gelu", err))
    return false;
  a.outputs[0]->dtype = a.in(0)->dtype;
  a.outputs[0]->shape = a.in(0)->shape;
  return true;
}

template <typename T> void geluLoop(const Tensor &x, Tensor &y, Act act) {
  const T *in = x.as<T>();
  T *out = y.as<T>();
  for (int64_t i = 0, n = x.numel(); i < n; ++i)
    out[i] = apply(act, in[i]);
}

bool geluRun(const KernelArgs &a, std::string &) {
  Act act = a.attrs->getInt("approximation", 0) == 1 ? Act::GeluTanh : Act::Gelu;
  if (a.in(0)->dtype == DType::F32)
    geluLoop<float>(*a.in(0), *a.outputs[0], act);
  else
    geluLoop<double>(*a.in(0), *a.outputs[0], act);
  return true;
}

//===-- gated_act ----------------------------------------------------------===//

bool gatedInfer(const KernelArgs &a, std::string &err) {
  int64_t act = a.attrs->getInt("activation", -1);
  if (act < 0 || act > 2) {
    err = "gated_act: activation must be 0 (silu), 1 (gelu) or 2 (gelu_tanh), got " + std::to_string(act);
    return false;
  }
  const Tensor &g = *a.in(0), &u = *a.in(1);
  if (!floatOperand(g, "gated_act", err))
    return false;
  if (g.dtype != u.dtype || g.shape != u.shape) {
    err = "gated_act: gate " + std::string(dtypeName(g.dtype)) + shapeStr(g.shape) + " and up " +
          dtypeName(u.dtype) + shapeStr(u.shape) + " must have one dtype and shape";
    return false;
  }
  a.outputs[0]->dtype = g.dtype;
  a.outputs[0]->shape = g.shape;
  return true;
}

template <typename T> void gatedLoop(const Tensor &g, const Tensor &u, Tensor &y, Act act) {
  const T *gp = g.as<T>(), *up = u.as<T>();
  T *out = y.as<T>();
  for (int64_t i = 0, n = g.numel(); i < n; ++i)
    out[i] = apply(act, gp[i]) * up[i];
}

bool gatedRun(const KernelArgs &a, std::string &) {
  auto act = static_cast<Act>(a.attrs->getInt("activation", 0));
  if (a.in(0)->dtype == DType::F32)
    gatedLoop<float>(*a.in(0), *a.in(1), *a.outputs[0], act);
  else
    gatedLoop<double>(*a.in(0), *a.in(1), *a.outputs[0], act);
  return true;
}

const KernelDef kKernels[] = {
    {"gelu", 1, 1, 1, 0, geluInfer, geluRun, "GELU: erf (approximation 0) or tanh (1)"},
    {"gated_act", 2, 2, 1, 0, gatedInfer, gatedRun, "act(gate) * up; activation 0 silu, 1 gelu, 2 gelu_tanh"},
};

} // namespace

void registerActivationKernels(std::vector<const KernelDef *> &out) { appendKernels(out, kKernels); }

} // namespace qopt::num
