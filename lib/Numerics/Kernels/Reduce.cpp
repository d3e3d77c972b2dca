//===- Reduce.cpp - reductions and arg-reductions --------------------------===//
//
// Reductions accumulate in double and round once, so the reference does not depend on the summation order a
// faster backend picks. ONNX's noop_with_empty_axes is resolved by the importer: an empty 'axes' here means all.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Kernels.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace qopt::num {
namespace {

enum class RKind { Sum, Mean, Max, Min, Prod, SumSquare, L1, L2, LogSum, LogSumExp, Invalid };

RKind parseKind(std::string_view s) {
  static const std::pair<const char *, RKind> names[] = {
      {"sum", RKind::Sum},   {"mean", RKind::Mean},      {"max", RKind::Max}, {"min", RKind::Min},
      {"prod", RKind::Prod}, {"sum_square", RKind::SumSquare}, {"l1", RKind::L1}, {"l2", RKind::L2},
      {"log_sum", RKind::LogSum}, {"log_sum_exp", RKind::LogSumExp}};
  for (auto &[n, k] : names)
    if (s == n)
      return k;
  return RKind::Invalid;
}

bool reducedDims(const KernelArgs &a, std::vector<bool> &red, std::string &err) {
  const Tensor &x = *a.in(0);
  std::vector<int64_t> axes;
  a.attrs->getInts("axes", axes);
  red.assign(x.shape.size(), axes.empty());
  for (int64_t ax : axes) {
    if (!normalizeAxis(ax, x.rank())) {
      err = "reduce: axis " + std::to_string(ax) + " out of range for rank " + std::to_string(x.rank());
      return false;
    }
    red[ax] = true;
  }
  return true;
}

bool reduceInfer(const KernelArgs &a, std::string &err) {
  if (parseKind(a.attrs->getString("kind", "")) == RKind::Invalid) {
    err = "reduce: unknown kind '" + std::string(a.attrs->getString("kind", "")) + "'";
    return false;
  }
  std::vector<bool> red;
  if (!reducedDims(a, red, err))
    return false;
  bool keep = a.attrs->getInt("keepdims", 1) != 0;
  const Tensor &x = *a.in(0);
  Shape out;
  for (size_t i = 0; i < x.shape.size(); ++i) {
    if (!red[i])
      out.push_back(x.shape[i]);
    else if (keep)
      out.push_back(1);
  }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

// double -> T rounding toward zero; for integer T, infinities and other out-of-range values saturate and NaN (the
// mean of nothing) gives 0: a plain cast of those (an int8 sum past 127) is UB.
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

// Iterates the input once, mapping each element to its output slot.
template <typename Fn> void forEachReduced(const Tensor &x, const std::vector<bool> &red, Fn &&fn) {
  const int64_t r = x.rank(), n = x.numel();
  if (n == 0) // the strides below may overflow on an empty tensor's other dims
    return;
  std::vector<int64_t> outStride(r, 0);
  int64_t st = 1;
  for (int64_t i = r - 1; i >= 0; --i)
    if (!red[i]) {
      outStride[i] = st;
      st *= x.shape[i];
    }
  std::vector<int64_t> idx(r, 0);
  int64_t o = 0;
  for (int64_t i = 0; i < n; ++i) {
    fn(i, o);
    for (int64_t d = r - 1; d >= 0; --d) {
      if (++idx[d] < x.shape[d]) {
        o += outStride[d];
        break;
      }
      o -= outStride[d] * (x.shape[d] - 1);
      idx[d] = 0;
    }
  }
}

template <typename T> void reduceLoop(RKind k, const Tensor &x, Tensor &y, const std::vector<bool> &red) {
  const int64_t m = y.numel();
  std::vector<double> acc(m, 0.0);
  if (k == RKind::Max)
    acc.assign(m, -std::numeric_limits<double>::infinity());
  if (k == RKind::Min)
    acc.assign(m, std::numeric_limits<double>::infinity());
  if (k == RKind::Prod)
    acc.assign(m, 1.0);
  const T *in = x.as<T>();
  // log_sum_exp needs the max first for stability.
  std::vector<double> mx;
  if (k == RKind::LogSumExp) {
    mx.assign(m, -std::numeric_limits<double>::infinity());
    forEachReduced(x, red, [&](int64_t i, int64_t o) { mx[o] = std::max(mx[o], static_cast<double>(in[i])); });
  }
  forEachReduced(x, red, [&](int64_t i, int64_t o) {
    double v = static_cast<double>(in[i]);
    switch (k) {
    case RKind::Sum: case RKind::Mean: case RKind::LogSum: acc[o] += v; break;
    case RKind::Max: acc[o] = (std::isnan(v) || v > acc[o]) ? v : acc[o]; break;
    case RKind::Min: acc[o] = (std::isnan(v) || v < acc[o]) ? v : acc[o]; break;
    case RKind::Prod: acc[o] *= v; break;
    case RKind::SumSquare: case RKind::L2: acc[o] += v * v; break;
    case RKind::L1: acc[o] += std::fabs(v); break;
    case RKind::LogSumExp: acc[o] += std::exp(v - (std::isinf(mx[o]) ? 0.0 : mx[o])); break;
    default: break;
    }
  });
  const int64_t n = x.numel();
  const double count = m ? static_cast<double>(n) / static_cast<double>(m) : 0.0;
  T *out = y.as<T>();
  for (int64_t o = 0; o < m; ++o) {
    double v = acc[o];
    if (k == RKind::Mean) v = count > 0 ? v / count : std::numeric_limits<double>::quiet_NaN();
    if (k == RKind::L2) v = std::sqrt(v);
    if (k == RKind::LogSum) v = std::log(v);
    if (k == RKind::LogSumExp) v = std::log(v) + (std::isinf(mx[o]) ? 0.0 : mx[o]);
    out[o] = fromDouble<T>(v);
  }
}

bool reduceRun(const KernelArgs &a, std::string &err) {
  RKind k = parseKind(a.attrs->getString("kind", ""));
  std::vector<bool> red;
  if (!reducedDims(a, red, err))
    return false;
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  switch (x.dtype) {
  case DType::F32: reduceLoop<float>(k, x, y, red); return true;
  case DType::F64: reduceLoop<double>(k, x, y, red); return true;
  case DType::I64: reduceLoop<int64_t>(k, x, y, red); return true;
  case DType::I32: reduceLoop<int32_t>(k, x, y, red); return true;
  case DType::U8: reduceLoop<uint8_t>(k, x, y, red); return true;
  case DType::I8: reduceLoop<int8_t>(k, x, y, red); return true;
  default:
    err = std::string("reduce: unsupported dtype ") + dtypeName(x.dtype);
    return false;
  }
}

//===-- arg_reduce ---------------------------------------------------------===//

bool argInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  int64_t axis = a.attrs->getInt("axis", 0);
  if (!normalizeAxis(axis, x.rank())) {
    err = "arg_reduce: axis out of range";
    return false;
  }
  bool keep = a.attrs->getInt("keepdims", 1) != 0;
  Shape out;
  for (int64_t i = 0; i < x.rank(); ++i) {
    if (i != axis)
      out.push_back(x.shape[i]);
    else if (keep)
      out.push_back(1);
  }
  if (x.shape[axis] == 0) {
    err = "arg_reduce over an empty axis";
    return false;
  }
  a.outputs[0]->dtype = DType::I64;
  a.outputs[0]->shape = out;
  return true;
}

bool argRun(const KernelArgs &a, std::string &) {
  const Tensor &x = *a.in(0);
  int64_t axis = a.attrs->getInt("axis", 0);
  normalizeAxis(axis, x.rank());
  bool isMax = a.attrs->getString("kind", "max") == "max";
  bool last = a.attrs->getInt("select_last_index", 0) != 0;
  if (a.outputs[0]->numel() == 0) // the dims of an empty result may be huge
    return true;
  int64_t outer = 1, inner = 1, dim = x.shape[axis];
  for (int64_t i = 0; i < axis; ++i)
    outer *= x.shape[i];
  for (int64_t i = axis + 1; i < x.rank(); ++i)
    inner *= x.shape[i];
  int64_t *out = a.outputs[0]->as<int64_t>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      double bv = loadDouble(x, o * dim * inner + i);
      for (int64_t k = 1; k < dim; ++k) {
        double v = loadDouble(x, (o * dim + k) * inner + i);
        bool better = isMax ? (v > bv || (last && v == bv)) : (v < bv || (last && v == bv));
        if (better) {
          bv = v;
          best = k;
        }
      }
      out[o * inner + i] = best;
    }
  return true;
}

const KernelFamily kKernels[] = {
    {"reduce", 1, 1, 1, 0, reduceInfer, reduceRun, "reduce 'axes' (all if empty) by 'kind'"},
    {"arg_reduce", 1, 1, 1, 0, argInfer, argRun, "index of the max/min along 'axis'"},
};

} // namespace

void registerReduceKernels(std::vector<const KernelFamily *> &out) {
  appendKernels(out, kKernels);
}

} // namespace qopt::num
