//===- Activation.cpp - gelu, the gated MLP activation, rotary embeddings --===//
//
// The raised elementwise ops' reference kernels. They compute in the operand's float type with the same formulas
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

//===-- rotary -------------------------------------------------------------===//

bool rotaryInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &pos = *a.in(1), &f = *a.in(2);
  const int64_t style = a.attrs->getInt("style", -1);
  auto fail = [&](const std::string &why) {
    err = "rotary: " + why + " (x " + shapeStr(x.shape) + ", positions " + shapeStr(pos.shape) + ", inv_freq " +
          shapeStr(f.shape) + ")";
    return false;
  };
  if (style != 0 && style != 1)
    return fail("style must be 0 (rotate_half) or 1 (interleaved), got " + std::to_string(style));
  if (x.rank() != 4 || (x.dtype != DType::F32 && x.dtype != DType::F64))
    return fail("expects a float32 or float64 x of rank 4 [batch, heads, sequence, head dim]");
  if (x.shape[3] % 2 != 0 || f.numel() != x.shape[3] / 2 || f.dtype != x.dtype)
    return fail("inv_freq must hold head dim / 2 values of x's dtype");
  if (pos.rank() != 2 || (pos.shape[0] != x.shape[0] && pos.shape[0] != 1) || pos.shape[1] != x.shape[2] ||
      (pos.dtype != DType::I64 && pos.dtype != DType::I32 && pos.dtype != x.dtype))
    return fail("positions must be [batch or 1, sequence], integer or x's dtype");
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = x.shape;
  return true;
}

template <typename T> void rotaryLoop(const KernelArgs &a) {
  const Tensor &x = *a.in(0), &pos = *a.in(1), &f = *a.in(2);
  const int64_t B = x.shape[0], H = x.shape[1], S = x.shape[2], D = x.shape[3], half = D / 2;
  const bool interleaved = a.attrs->getInt("style", 0) == 1;
  const T *in = x.as<T>(), *freq = f.as<T>();
  T *out = a.outputs[0]->as<T>();
  std::vector<T> c(half), s(half);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < S; ++i) {
      // The angle as the decomposed graph computes it: the position cast to x's type, times the frequency.
      const T p = static_cast<T>(loadDouble(pos, (pos.shape[0] == 1 ? 0 : b) * S + i));
      for (int64_t j = 0; j < half; ++j) {
        const T theta = p * freq[j];
        c[j] = std::cos(theta);
        s[j] = std::sin(theta);
      }
      for (int64_t h = 0; h < H; ++h) {
        const T *xi = in + ((b * H + h) * S + i) * D;
        T *yi = out + ((b * H + h) * S + i) * D;
        for (int64_t j = 0; j < half; ++j) {
          const int64_t lo = interleaved ? 2 * j : j, hi = interleaved ? 2 * j + 1 : j + half;
          yi[lo] = xi[lo] * c[j] + -xi[hi] * s[j];
          yi[hi] = xi[hi] * c[j] + xi[lo] * s[j];
        }
      }
    }
}

bool rotaryRun(const KernelArgs &a, std::string &) {
  if (a.in(0)->dtype == DType::F32)
    rotaryLoop<float>(a);
  else
    rotaryLoop<double>(a);
  return true;
}

const KernelFamily kKernels[] = {
    {"rotary", 3, 3, 1, 0, rotaryInfer, rotaryRun, "rotary embedding, angles positions * inv_freq; style 0 rotate_half, 1 interleaved"},
    {"gelu", 1, 1, 1, 0, geluInfer, geluRun, "GELU: erf (approximation 0) or tanh (1)", -1, nullptr, false,
     /*overwrites=*/0b1},
    {"gated_act", 2, 2, 1, 0, gatedInfer, gatedRun, "act(gate) * up; activation 0 silu, 1 gelu, 2 gelu_tanh", -1,
     nullptr, false, /*overwrites=*/0b11},
};

} // namespace

void registerActivationKernels(std::vector<const KernelFamily *> &out) { appendKernels(out, kKernels); }

} // namespace qopt::num
