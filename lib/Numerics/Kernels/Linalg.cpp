//===- Linalg.cpp - matmul, softmax and normalization kernels --------------===//
//
// matmul follows numpy: 1-D operands are promoted and the promoted dim dropped again, leading dims broadcast.
// float32 goes through the blocked GEMM (Gemm.h); other float types use a plain double-accumulating loop.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/Kernels.h"
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace qopt::num {
namespace {

struct MatmulPlan {
  Shape batch;              // broadcast batch dims
  Shape aBatch, bBatch;     // each operand's batch dims (rank-aligned to batch)
  int64_t M = 0, N = 0, K = 0;
  bool aVec = false, bVec = false;
};

bool planMatmul(const Tensor &a, const Tensor &b, MatmulPlan &p, Shape &out, std::string &err) {
  if (a.rank() == 0 || b.rank() == 0) {
    err = "matmul: operands must have rank >= 1";
    return false;
  }
  Shape as = a.shape, bs = b.shape;
  p.aVec = as.size() == 1;
  p.bVec = bs.size() == 1;
  if (p.aVec)
    as.insert(as.begin(), 1);
  if (p.bVec)
    bs.push_back(1);
  p.M = as[as.size() - 2];
  p.K = as[as.size() - 1];
  p.N = bs[bs.size() - 1];
  if (bs[bs.size() - 2] != p.K) {
    err = "matmul: contracting dims differ: " + shapeStr(a.shape) + " x " + shapeStr(b.shape);
    return false;
  }
  p.aBatch.assign(as.begin(), as.end() - 2);
  p.bBatch.assign(bs.begin(), bs.end() - 2);
  if (!broadcastShapes(p.aBatch, p.bBatch, p.batch)) {
    err = "matmul: batch dims of " + shapeStr(a.shape) + " and " + shapeStr(b.shape) + " do not broadcast";
    return false;
  }
  size_t r = p.batch.size();
  p.aBatch.insert(p.aBatch.begin(), r - p.aBatch.size(), 1);
  p.bBatch.insert(p.bBatch.begin(), r - p.bBatch.size(), 1);
  out = p.batch;
  if (!p.aVec)
    out.push_back(p.M);
  if (!p.bVec)
    out.push_back(p.N);
  return true;
}

bool matmulInfer(const KernelArgs &args, std::string &err) {
  const Tensor &a = *args.in(0), &b = *args.in(1);
  if (a.dtype != b.dtype) {
    err = "matmul: operand dtypes differ";
    return false;
  }
  MatmulPlan p;
  if (!planMatmul(a, b, p, args.outputs[0]->shape, err))
    return false;
  args.outputs[0]->dtype = a.dtype;
  return true;
}

// double -> T rounding toward zero; out-of-range values saturate and NaN gives 0 for integer T (a plain cast of
// those is UB).
template <typename T> T fromDouble(double v) {
  if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v))
      return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    if (v >= std::ldexp(1.0, std::numeric_limits<T>::digits)) // max + 1, exact (max itself may round up to it)
      return std::numeric_limits<T>::max();
  }
  return static_cast<T>(v);
}

template <typename T> void naiveGemm(int64_t M, int64_t N, int64_t K, const T *A, const T *B, T *C) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += static_cast<double>(A[i * K + k]) * static_cast<double>(B[k * N + j]);
      C[i * N + j] = fromDouble<T>(acc);
    }
}

bool matmulRun(const KernelArgs &args, std::string &err) {
  const Tensor &a = *args.in(0), &b = *args.in(1);
  Tensor &c = *args.outputs[0];
  MatmulPlan p;
  Shape out;
  if (!planMatmul(a, b, p, out, err))
    return false;
  if (c.numel() == 0) // an empty result's other dims (and so M * K, K * N) may be huge
    return true;
  const int64_t nb = numElements(p.batch), r = static_cast<int64_t>(p.batch.size());
  std::vector<int64_t> idx(r, 0);
  const int64_t aMat = p.M * p.K, bMat = p.K * p.N, cMat = p.M * p.N;
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t ao = 0, bo = 0;
    for (int64_t d = 0; d < r; ++d) {
      ao = ao * p.aBatch[d] + (p.aBatch[d] == 1 ? 0 : idx[d]);
      bo = bo * p.bBatch[d] + (p.bBatch[d] == 1 ? 0 : idx[d]);
    }
    switch (a.dtype) {
    case DType::F32:
      sgemm(false, false, p.M, p.N, p.K, 1.0f, a.as<float>() + ao * aMat, p.K, b.as<float>() + bo * bMat, p.N,
            0.0f, c.as<float>() + bi * cMat, p.N, args.pool);
      break;
    case DType::F64:
      naiveGemm(p.M, p.N, p.K, a.as<double>() + ao * aMat, b.as<double>() + bo * bMat, c.as<double>() + bi * cMat);
      break;
    case DType::I64:
      naiveGemm(p.M, p.N, p.K, a.as<int64_t>() + ao * aMat, b.as<int64_t>() + bo * bMat,
                c.as<int64_t>() + bi * cMat);
      break;
    case DType::I32:
      naiveGemm(p.M, p.N, p.K, a.as<int32_t>() + ao * aMat, b.as<int32_t>() + bo * bMat,
                c.as<int32_t>() + bi * cMat);
      break;
    default:
      err = std::string("matmul: unsupported dtype ") + dtypeName(a.dtype);
      return false;
    }
    for (int64_t d = r - 1; d >= 0; --d) {
      if (++idx[d] < p.batch[d])
        break;
      idx[d] = 0;
    }
  }
  return true;
}

//===-- softmax ------------------------------------------------------------===//

// Softmax over one axis, viewed as [outer, dim, inner].
void axisView(const Shape &s, int64_t axis, int64_t &outer, int64_t &dim, int64_t &inner) {
  outer = 1;
  inner = 1;
  for (int64_t i = 0; i < axis; ++i)
    outer *= s[i];
  dim = s[axis];
  for (size_t i = axis + 1; i < s.size(); ++i)
    inner *= s[i];
}

bool sameInfer(const KernelArgs &a, std::string &err) {
  int64_t axis = a.attrs->getInt("axis", -1);
  if (a.in(0)->rank() > 0 && !normalizeAxis(axis, a.in(0)->rank())) {
    err = "axis out of range for rank " + std::to_string(a.in(0)->rank());
    return false;
  }
  if (!isFloat(a.in(0)->dtype)) {
    err = "expects a float operand";
    return false;
  }
  a.outputs[0]->dtype = a.in(0)->dtype;
  a.outputs[0]->shape = a.in(0)->shape;
  return true;
}

template <typename T>
void softmaxLoop(const Tensor &x, Tensor &y, int64_t axis, bool logOut, ThreadPool *pool) {
  if (x.numel() == 0) // axisView's products may overflow on an empty tensor's dims
    return;
  int64_t outer, dim, inner;
  axisView(x.shape, axis, outer, dim, inner);
  const T *in = x.as<T>();
  T *out = y.as<T>();
  // Rows are independent and each is reduced in a fixed order, so threading does not change the result.
  auto rows = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r / inner, i = r % inner;
      const T *src = in + o * dim * inner + i;
      T *dst = out + o * dim * inner + i;
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t k = 0; k < dim; ++k)
        mx = std::max(mx, src[k * inner]);
      if (std::isinf(mx) && mx < 0)
        mx = 0; // a fully masked row: exp(-inf - 0) = 0, sum 0 -> NaN as in the reference frameworks
      T sum = 0;
      for (int64_t k = 0; k < dim; ++k) {
        T e = std::exp(src[k * inner] - mx);
        dst[k * inner] = e;
        sum += e;
      }
      if (logOut) {
        T ls = std::log(sum);
        for (int64_t k = 0; k < dim; ++k)
          dst[k * inner] = src[k * inner] - mx - ls;
      } else {
        T inv = T(1) / sum;
        for (int64_t k = 0; k < dim; ++k)
          dst[k * inner] *= inv;
      }
    }
  };
  if (pool && outer * inner * dim >= (1 << 15))
    pool->parallelFor(outer * inner, rows);
  else
    rows(0, outer * inner);
}

bool softmaxRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  int64_t axis = a.attrs->getInt("axis", -1);
  if (x.rank() == 0) {
    err = "softmax of a scalar";
    return false;
  }
  normalizeAxis(axis, x.rank());
  bool logOut = a.attrs->getInt("log", 0) != 0;
  if (x.dtype == DType::F32)
    softmaxLoop<float>(x, *a.outputs[0], axis, logOut, a.pool);
  else if (x.dtype == DType::F64)
    softmaxLoop<double>(x, *a.outputs[0], axis, logOut, a.pool);
  else {
    err = "softmax: unsupported dtype";
    return false;
  }
  return true;
}

//===-- linear_split -------------------------------------------------------===//

// Layers that share their input, as one launch: x [.., K] times W [K, N1 + N2 + ...] (the layers' weights side by
// side), output i the columns of layer i. Each output is computed as its layer alone would be.
bool linearSplitInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &w = *a.in(1);
  std::vector<int64_t> splits;
  if (x.rank() < 1 || x.dtype != DType::F32 || w.dtype != DType::F32 || w.rank() != 2 ||
      x.shape.back() != w.shape[0] || !a.attrs->getInts("splits", splits) || splits.size() != a.outputs.size()) {
    err = "linear_split: expects float32 x [.., K], a 2-D weight [K, N] and one 'splits' entry per output (x " +
          shapeStr(x.shape) + ", weight " + shapeStr(w.shape) + ")";
    return false;
  }
  int64_t sum = 0;
  for (int64_t n : splits)
    if (n <= 0 || !checkedAdd(sum, n, sum))
      sum = -1;
  if (sum != w.shape[1]) {
    err = "linear_split: splits must be positive and sum to the weight's " + std::to_string(w.shape[1]) + " columns";
    return false;
  }
  if (const Tensor *bias = a.in(2); bias && (bias->dtype != DType::F32 || bias->shape != Shape{sum})) {
    err = "linear_split: the bias must be float32 [" + std::to_string(sum) + "], got " + shapeStr(bias->shape);
    return false;
  }
  for (size_t i = 0; i < splits.size(); ++i) {
    a.outputs[i]->dtype = DType::F32;
    a.outputs[i]->shape = x.shape;
    a.outputs[i]->shape.back() = splits[i];
  }
  return true;
}

// With a bias, each output's rows get their piece of it added after the product: the float sums a separate add
// of the bias would compute.
bool linearSplitRun(const KernelArgs &a, std::string &) {
  const Tensor &x = *a.in(0), &w = *a.in(1);
  const Tensor *bias = a.in(2);
  const int64_t K = w.shape[0], N = w.shape[1], M = K ? x.numel() / K : 0;
  int64_t off = 0;
  for (Tensor *y : a.outputs) {
    const int64_t n = y->shape.back();
    if (y->numel() != 0) {
      sgemm(false, false, M, n, K, 1.0f, x.as<float>(), K, w.as<float>() + off, N, 0.0f, y->as<float>(), n, a.pool);
      if (bias) {
        float *out = y->as<float>();
        const float *b = bias->as<float>() + off;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < n; ++j)
            out[i * n + j] += b[j];
      }
    }
    off += n;
  }
  return true;
}

//===-- layer_norm ---------------------------------------------------------===//

// Normalizes over dims [axis, rank); scale and bias broadcast over those dims.
template <typename T>
void layerNormLoop(const Tensor &x, const Tensor &scale, const Tensor *bias, Tensor &y, int64_t axis, double eps) {
  if (x.numel() == 0)
    return;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i)
    outer *= x.shape[i];
  for (int64_t i = axis; i < x.rank(); ++i)
    inner *= x.shape[i];
  const T *in = x.as<T>(), *g = scale.as<T>(), *b = bias ? bias->as<T>() : nullptr;
  const int64_t gn = scale.numel(), bn = bias ? bias->numel() : 0;
  T *out = y.as<T>();
  for (int64_t o = 0; o < outer; ++o) {
    const T *src = in + o * inner;
    T mean = 0;
    for (int64_t k = 0; k < inner; ++k)
      mean += src[k];
    mean /= static_cast<T>(inner);
    T var = 0;
    for (int64_t k = 0; k < inner; ++k)
      var += (src[k] - mean) * (src[k] - mean);
    var /= static_cast<T>(inner);
    T inv = T(1) / std::sqrt(var + static_cast<T>(eps));
    for (int64_t k = 0; k < inner; ++k) {
      T v = (src[k] - mean) * inv * g[k % gn];
      out[o * inner + k] = b ? v + b[k % bn] : v;
    }
  }
}

bool layerNormInfer(const KernelArgs &a, std::string &err) {
  if (!sameInfer(a, err))
    return false;
  const Tensor &x = *a.in(0);
  int64_t axis = a.attrs->getInt("axis", -1);
  normalizeAxis(axis, x.rank());
  int64_t inner = 1;
  for (int64_t i = axis; i < x.rank(); ++i)
    if (!checkedMul(inner, x.shape[i], inner)) {
      err = "layer_norm: normalized size of " + shapeStr(x.shape) + " overflows";
      return false;
    }
  for (size_t i = 1; i < 3; ++i)
    if (a.in(i) && ((a.in(i)->numel() != inner && a.in(i)->numel() != 1) || a.in(i)->dtype != x.dtype)) {
      err = "layer_norm: scale/bias of shape " + shapeStr(a.in(i)->shape) + " does not match normalized size " +
            std::to_string(inner) + " or the input's dtype";
      return false;
    }
  return true;
}

bool layerNormRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  int64_t axis = a.attrs->getInt("axis", -1);
  normalizeAxis(axis, x.rank());
  double eps = a.attrs->getFloat("epsilon", 1e-5);
  if (x.dtype == DType::F32)
    layerNormLoop<float>(x, *a.in(1), a.in(2), *a.outputs[0], axis, eps);
  else if (x.dtype == DType::F64)
    layerNormLoop<double>(x, *a.in(1), a.in(2), *a.outputs[0], axis, eps);
  else {
    err = "layer_norm: unsupported dtype";
    return false;
  }
  return true;
}

//===-- rms_norm -----------------------------------------------------------===//

// y = x / sqrt(mean(x^2) + eps) * scale over the last dim; the mean of squares accumulates in double.
template <typename T> void rmsNormLoop(const Tensor &x, const Tensor &scale, Tensor &y, double eps) {
  if (x.numel() == 0)
    return;
  const int64_t inner = x.shape.back(), outer = x.numel() / inner, gn = scale.numel();
  const T *in = x.as<T>(), *g = scale.as<T>();
  T *out = y.as<T>();
  for (int64_t o = 0; o < outer; ++o) {
    const T *src = in + o * inner;
    double ss = 0;
    for (int64_t k = 0; k < inner; ++k)
      ss += static_cast<double>(src[k]) * src[k];
    const T inv = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(inner) + eps));
    for (int64_t k = 0; k < inner; ++k)
      out[o * inner + k] = g[k % gn] * (src[k] * inv);
  }
}

bool rmsNormInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &scale = *a.in(1);
  if (x.rank() == 0 || !isFloat(x.dtype)) {
    err = "rms_norm: expects a float operand of rank >= 1, got " + std::string(dtypeName(x.dtype)) + shapeStr(x.shape);
    return false;
  }
  if ((scale.numel() != x.shape.back() && scale.numel() != 1) || scale.rank() > 1 || scale.dtype != x.dtype) {
    err = "rms_norm: scale " + std::string(dtypeName(scale.dtype)) + shapeStr(scale.shape) +
          " must be 1-D with the last dim's size (" + std::to_string(x.shape.back()) + ") or 1, of the input's dtype";
    return false;
  }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = x.shape;
  return true;
}

bool rmsNormRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  double eps = a.attrs->getFloat("epsilon", 1e-5);
  if (x.dtype == DType::F32)
    rmsNormLoop<float>(x, *a.in(1), *a.outputs[0], eps);
  else if (x.dtype == DType::F64)
    rmsNormLoop<double>(x, *a.in(1), *a.outputs[0], eps);
  else {
    err = "rms_norm: unsupported dtype";
    return false;
  }
  return true;
}

//===-- add_rms_norm, add_layer_norm --------------------------------------===//
// The residual stream's add and the next norm in one pass: (a + b, norm(a + b, scale[, bias])). The sum is the
// binary kernel's add (broadcasting as it does) and the norm the rms_norm or layer_norm kernel's, so the results
// are those of the two kernels run apart, bit for bit.

// The two kernels' arguments: the sum (binary add of inputs 0 and 1 into result 0), and the norm (of result 0
// with the norm's own operands, inputs 2 on, into result 1).
struct AddNormArgs {
  KernelArgs sum, norm;
  explicit AddNormArgs(const KernelArgs &a) : sum(a), norm(a) {
    static const Attrs add = [] {
      Attrs at;
      at.setString("fn", "add");
      return at;
    }();
    sum.inputs = {a.in(0), a.in(1)};
    sum.outputs = {a.outputs[0]};
    sum.attrs = &add;
    norm.inputs = {a.outputs[0]};
    for (size_t i = 2; i < a.inputs.size(); ++i)
      norm.inputs.push_back(a.inputs[i]);
    norm.outputs = {a.outputs[1]};
  }
  static const KernelFamily &binary() {
    static const KernelFamily *k = lookupFamily("binary");
    return *k;
  }
};

bool addRmsNormInfer(const KernelArgs &a, std::string &err) {
  AddNormArgs parts(a);
  return AddNormArgs::binary().infer(parts.sum, err) && rmsNormInfer(parts.norm, err);
}

bool addRmsNormRun(const KernelArgs &a, std::string &err) {
  AddNormArgs parts(a);
  return AddNormArgs::binary().reference(parts.sum, err) && rmsNormRun(parts.norm, err);
}

bool addLayerNormInfer(const KernelArgs &a, std::string &err) {
  AddNormArgs parts(a);
  return AddNormArgs::binary().infer(parts.sum, err) && layerNormInfer(parts.norm, err);
}

bool addLayerNormRun(const KernelArgs &a, std::string &err) {
  AddNormArgs parts(a);
  return AddNormArgs::binary().reference(parts.sum, err) && layerNormRun(parts.norm, err);
}

const KernelFamily kKernels[] = {
    {"add_layer_norm", 3, 4, 2, 0, addLayerNormInfer, addLayerNormRun,
     "(a + b, layer_norm(a + b, scale, bias)): a residual add and the norm that reads it"},
    {"add_rms_norm", 3, 3, 2, 0, addRmsNormInfer, addRmsNormRun,
     "(a + b, rms_norm(a + b, scale)): a residual add and the norm that reads it"},
    {"matmul", 2, 2, 1, 0, matmulInfer, matmulRun, "numpy-style batched matrix product"},
    {"linear_split", 2, 3, -1, 0, linearSplitInfer, linearSplitRun,
     "layers sharing their input: x times side-by-side weights (plus their biases), one output per 'splits' entry"},
    {"softmax", 1, 1, 1, 0, sameInfer, softmaxRun, "softmax (or log-softmax with log=1) along 'axis'"},
    {"layer_norm", 2, 3, 1, 0, layerNormInfer, layerNormRun, "normalize over dims from 'axis' on, scale, shift"},
    {"rms_norm", 2, 2, 1, 0, rmsNormInfer, rmsNormRun, "x / sqrt(mean(x^2, last dim) + epsilon) * scale"},
};

} // namespace

void registerLinalgKernels(std::vector<const KernelFamily *> &out) {
  appendKernels(out, kKernels);
}

} // namespace qopt::num
