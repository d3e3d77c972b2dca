//===- Index.cpp - indexing, padding, sorting and scan kernels -------------===//
//
// gather_elements, gather_nd, scatter_nd, tile, pad, topk and cumsum with ONNX semantics. Every index read from
// a tensor is range-checked (negative indices wrap once) and rejected with a message when out of range.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>

namespace qopt::num {
namespace {

// Row-major strides. They are only meaningful (and cannot overflow) for a non-empty tensor; for an empty one with
// huge dims the product wraps instead of being UB, and nothing reads it.
std::vector<int64_t> strides(const Shape &s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t i = static_cast<int64_t>(s.size()) - 2; i >= 0; --i)
    checkedMul(st[i + 1], s[i + 1], st[i]);
  return st;
}

// Product of dims [begin, end); false if it overflows.
bool dimProduct(const Shape &s, int64_t begin, int64_t end, int64_t &out) {
  out = 1;
  for (int64_t d = begin; d < end; ++d)
    if (!checkedMul(out, s[d], out))
      return false;
  return true;
}

// Two's-complement addition for integer data (signed overflow is UB, and int16/int8 promote to int).
template <typename T> T wrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) + static_cast<std::make_unsigned_t<T>>(b));
  else
    return a + b;
}

bool wrapIndex(int64_t &k, int64_t dim, std::string &err) {
  if (k < -dim || k >= dim) {
    err = "index " + std::to_string(k) + " out of range for dim " + std::to_string(dim);
    return false;
  }
  if (k < 0)
    k += dim;
  return true;
}

//===-- gather_elements ----------------------------------------------------===//

bool gatherElementsInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &ind = *a.in(1);
  int64_t axis = a.attrs->getInt("axis", 0);
  if (ind.rank() != x.rank() || !normalizeAxis(axis, x.rank())) {
    err = "gather_elements: indices must have the data's rank and axis must be in range";
    return false;
  }
  for (int64_t d = 0; d < x.rank(); ++d)
    if (d != axis && ind.shape[d] > x.shape[d]) {
      err = "gather_elements: indices " + shapeStr(ind.shape) + " exceed data " + shapeStr(x.shape) + " off axis";
      return false;
    }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = ind.shape;
  return true;
}

bool gatherElementsRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &ind = *a.in(1);
  Tensor &y = *a.outputs[0];
  int64_t axis = a.attrs->getInt("axis", 0);
  normalizeAxis(axis, x.rank());
  const size_t es = dtypeSize(x.dtype);
  auto xs = strides(x.shape);
  std::vector<int64_t> idx(ind.rank(), 0);
  for (int64_t i = 0; i < ind.numel(); ++i) {
    int64_t k = loadInt(ind, i);
    if (!wrapIndex(k, x.shape[axis], err))
      return false;
    int64_t off = 0;
    for (int64_t d = 0; d < ind.rank(); ++d)
      off += (d == axis ? k : idx[d]) * xs[d];
    copyBytes(static_cast<char *>(y.data) + i * es, static_cast<const char *>(x.data) + off * es, es);
    for (int64_t d = ind.rank() - 1; d >= 0; --d) {
      if (++idx[d] < ind.shape[d])
        break;
      idx[d] = 0;
    }
  }
  return true;
}

//===-- gather_nd / scatter_nd ---------------------------------------------===//

bool gatherNdInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &ind = *a.in(1);
  int64_t b = a.attrs->getInt("batch_dims", 0);
  if (ind.rank() < 1 || b < 0 || b >= std::min(x.rank(), ind.rank())) {
    err = "gather_nd: invalid batch_dims or index rank";
    return false;
  }
  int64_t last = ind.shape.back();
  if (last < 1 || last > x.rank() - b) {
    err = "gather_nd: index depth " + std::to_string(last) + " too large for data rank " + std::to_string(x.rank());
    return false;
  }
  if (!std::equal(x.shape.begin(), x.shape.begin() + b, ind.shape.begin())) {
    err = "gather_nd: batch dims of " + shapeStr(x.shape) + " and indices " + shapeStr(ind.shape) + " differ";
    return false;
  }
  Shape out(ind.shape.begin(), ind.shape.end() - 1);
  out.insert(out.end(), x.shape.begin() + b + last, x.shape.end());
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

bool gatherNdRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &ind = *a.in(1);
  Tensor &y = *a.outputs[0];
  const int64_t b = a.attrs->getInt("batch_dims", 0), last = ind.shape.back();
  if (y.numel() == 0)
    return true;
  const size_t es = dtypeSize(x.dtype);
  auto xs = strides(x.shape);
  int64_t slice = 1, batch = 1;
  for (int64_t d = b + last; d < x.rank(); ++d)
    slice *= x.shape[d];
  for (int64_t d = 0; d < b; ++d)
    batch *= x.shape[d];
  const int64_t tuples = ind.numel() / last, perBatch = tuples / std::max<int64_t>(batch, 1);
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = (t / std::max<int64_t>(perBatch, 1)) * (b ? xs[b - 1] : 0);
    for (int64_t j = 0; j < last; ++j) {
      int64_t k = loadInt(ind, t * last + j);
      if (!wrapIndex(k, x.shape[b + j], err))
        return false;
      off += k * xs[b + j];
    }
    copyBytes(static_cast<char *>(y.data) + t * slice * es, static_cast<const char *>(x.data) + off * es,
                slice * es);
  }
  return true;
}

bool scatterNdInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &ind = *a.in(1), &upd = *a.in(2);
  if (ind.rank() < 1 || ind.shape.back() < 0 || ind.shape.back() > x.rank() || upd.dtype != x.dtype) {
    err = "scatter_nd: invalid indices or update dtype";
    return false;
  }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = x.shape;
  return true;
}

template <typename T>
void combine(T *dst, const T *src, int64_t n, std::string_view red) {
  for (int64_t i = 0; i < n; ++i) {
    if (red == "add") dst[i] = static_cast<T>(dst[i] + src[i]);
    else if (red == "mul") dst[i] = static_cast<T>(dst[i] * src[i]);
    else if (red == "max") dst[i] = std::max(dst[i], src[i]);
    else if (red == "min") dst[i] = std::min(dst[i], src[i]);
    else dst[i] = src[i];
  }
}

bool scatterNdRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &ind = *a.in(1), &upd = *a.in(2);
  Tensor &y = *a.outputs[0];
  copyBytes(y.data, x.data, x.bytes());
  const int64_t last = ind.shape.back();
  const size_t es = dtypeSize(x.dtype);
  auto xs = strides(x.shape);
  std::string_view red = a.attrs->getString("reduction", "none");
  // Counted from the dims, not numel / last: an index depth of 0 (whole-tensor updates) has no elements.
  int64_t slice, tuples, want;
  if (!dimProduct(x.shape, last, x.rank(), slice) || !dimProduct(ind.shape, 0, ind.rank() - 1, tuples) ||
      !checkedMul(tuples, slice, want)) {
    err = "scatter_nd: update count overflows";
    return false;
  }
  if (upd.numel() != want) {
    err = "scatter_nd: updates have " + std::to_string(upd.numel()) + " elements, expected " +
          std::to_string(want);
    return false;
  }
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (int64_t j = 0; j < last; ++j) {
      int64_t k = loadInt(ind, t * last + j);
      if (!wrapIndex(k, x.shape[j], err))
        return false;
      off += k * xs[j];
    }
    char *dst = static_cast<char *>(y.data) + off * es;
    const char *src = static_cast<const char *>(upd.data) + t * slice * es;
    if (red == "none") {
      copyBytes(dst, src, slice * es);
    } else if (x.dtype == DType::F32) {
      combine(reinterpret_cast<float *>(dst), reinterpret_cast<const float *>(src), slice, red);
    } else if (x.dtype == DType::I64) {
      combine(reinterpret_cast<int64_t *>(dst), reinterpret_cast<const int64_t *>(src), slice, red);
    } else {
      err = "scatter_nd: reduction needs float32 or int64";
      return false;
    }
  }
  return true;
}

//===-- tile / pad ---------------------------------------------------------===//


bool tileInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  auto reps = readInts(*a.in(1));
  if (static_cast<int64_t>(reps.size()) != x.rank()) {
    err = "tile: repeats has " + std::to_string(reps.size()) + " entries for rank " + std::to_string(x.rank());
    return false;
  }
  Shape out;
  for (int64_t d = 0; d < x.rank(); ++d) {
    if (reps[d] < 0) {
      err = "tile: negative repeat";
      return false;
    }
    int64_t o;
    if (!checkedMul(x.shape[d], reps[d], o)) {
      err = "tile: repeats for dim " + std::to_string(d) + " overflow";
      return false;
    }
    out.push_back(o);
  }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

bool tileRun(const KernelArgs &a, std::string &) {
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  const size_t es = dtypeSize(x.dtype);
  auto xs = strides(x.shape);
  std::vector<int64_t> idx(y.rank(), 0);
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t off = 0;
    for (int64_t d = 0; d < y.rank(); ++d)
      off += (idx[d] % x.shape[d]) * xs[d];
    copyBytes(static_cast<char *>(y.data) + i * es, static_cast<const char *>(x.data) + off * es, es);
    for (int64_t d = y.rank() - 1; d >= 0; --d) {
      if (++idx[d] < y.shape[d])
        break;
      idx[d] = 0;
    }
  }
  return true;
}

// pads: [begin_0..begin_{r-1}, end_0..end_{r-1}] over all dims (the importer expands ONNX's axes input).
bool padInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  auto pads = readInts(*a.in(1));
  if (static_cast<int64_t>(pads.size()) != 2 * x.rank()) {
    err = "pad: pads has " + std::to_string(pads.size()) + " entries for rank " + std::to_string(x.rank());
    return false;
  }
  std::string_view mode = a.attrs->getString("mode", "constant");
  Shape out;
  for (int64_t d = 0; d < x.rank(); ++d) {
    // The run maps output index i to input index i - pads[d], for i in [0, o): that must not overflow either.
    int64_t o, first, lastIdx;
    if (!checkedAdd(x.shape[d], pads[d], o) || !checkedAdd(o, pads[d + x.rank()], o) ||
        (o > 0 && (!checkedSub(0, pads[d], first) || !checkedSub(o - 1, pads[d], lastIdx)))) {
      err = "pad: pads for dim " + std::to_string(d) + " overflow";
      return false;
    }
    if (o < 0 || ((mode == "reflect" || mode == "edge") && x.shape[d] == 0 && o > 0) ||
        (mode == "reflect" && (pads[d] >= x.shape[d] || pads[d + x.rank()] >= x.shape[d]) &&
         (pads[d] > 0 || pads[d + x.rank()] > 0) && x.shape[d] < 2)) {
      err = "pad: invalid pads for dim " + std::to_string(d);
      return false;
    }
    out.push_back(o);
  }
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap") {
    err = "pad: unknown mode '" + std::string(mode) + "'";
    return false;
  }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

bool padRun(const KernelArgs &a, std::string &) {
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  auto pads = readInts(*a.in(1));
  std::string_view mode = a.attrs->getString("mode", "constant");
  const size_t es = dtypeSize(x.dtype);
  std::vector<uint8_t> fill(es, 0);
  if (const Tensor *v = a.in(2); v && v->numel() > 0)
    copyBytes(fill.data(), v->data, es);
  auto xs = strides(x.shape);
  std::vector<int64_t> idx(y.rank(), 0);
  const int64_t r = x.rank();
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t off = 0;
    bool inside = true;
    for (int64_t d = 0; d < r; ++d) {
      int64_t p = idx[d] - pads[d], n = x.shape[d];
      if (p < 0 || p >= n) {
        if (mode == "constant" || n == 0) {
          inside = false;
          break;
        }
        if (mode == "edge")
          p = p < 0 ? 0 : n - 1;
        else if (mode == "wrap")
          p = ((p % n) + n) % n;
        else { // reflect without repeating the edge
          int64_t period = 2 * (n - 1);
          if (period == 0)
            p = 0;
          else {
            p = ((p % period) + period) % period;
            if (p >= n)
              p = period - p;
          }
        }
      }
      off += p * xs[d];
    }
    copyBytes(static_cast<char *>(y.data) + i * es,
                inside ? static_cast<const char *>(x.data) + off * es : reinterpret_cast<const char *>(fill.data()),
                es);
    for (int64_t d = r - 1; d >= 0; --d) {
      if (++idx[d] < y.shape[d])
        break;
      idx[d] = 0;
    }
  }
  return true;
}

//===-- topk / cumsum ------------------------------------------------------===//

bool topkInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  int64_t axis = a.attrs->getInt("axis", -1);
  if (!normalizeAxis(axis, x.rank()) || a.in(1)->numel() != 1) {
    err = "topk: invalid axis or k";
    return false;
  }
  int64_t k = loadInt(*a.in(1), 0);
  if (k < 0 || k > x.shape[axis]) {
    err = "topk: k = " + std::to_string(k) + " is outside [0, " + std::to_string(x.shape[axis]) + "]";
    return false;
  }
  Shape out = x.shape;
  out[axis] = k;
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  a.outputs[1]->dtype = DType::I64;
  a.outputs[1]->shape = out;
  return true;
}

bool topkRun(const KernelArgs &a, std::string &) {
  const Tensor &x = *a.in(0);
  int64_t axis = a.attrs->getInt("axis", -1);
  normalizeAxis(axis, x.rank());
  const int64_t k = loadInt(*a.in(1), 0);
  const bool largest = a.attrs->getInt("largest", 1) != 0;
  if (x.numel() == 0) // empty: nothing to sort, and the dims may be huge
    return true;
  int64_t outer = 1, inner = 1, dim = x.shape[axis];
  for (int64_t d = 0; d < axis; ++d)
    outer *= x.shape[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d)
    inner *= x.shape[d];
  const size_t es = dtypeSize(x.dtype);
  std::vector<int64_t> order(dim);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return loadDouble(x, (o * dim + j) * inner + i); };
      std::iota(order.begin(), order.end(), 0);
      // Ties keep the lower index first, as ONNX specifies.
      std::stable_sort(order.begin(), order.end(), [&](int64_t p, int64_t q) {
        double vp = at(p), vq = at(q);
        return largest ? vp > vq : vp < vq;
      });
      for (int64_t j = 0; j < k; ++j) {
        int64_t src = (o * dim + order[j]) * inner + i, dst = (o * k + j) * inner + i;
        copyBytes(static_cast<char *>(a.outputs[0]->data) + dst * es,
                    static_cast<const char *>(x.data) + src * es, es);
        a.outputs[1]->as<int64_t>()[dst] = order[j];
      }
    }
  return true;
}

bool cumsumInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  if (a.in(1)->numel() != 1) {
    err = "cumsum: axis must be a scalar";
    return false;
  }
  int64_t axis = loadInt(*a.in(1), 0);
  if (!normalizeAxis(axis, x.rank())) {
    err = "cumsum: axis out of range";
    return false;
  }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = x.shape;
  return true;
}

template <typename T> void cumsumLoop(const Tensor &x, Tensor &y, int64_t axis, bool exclusive, bool reverse) {
  if (x.numel() == 0)
    return;
  int64_t outer = 1, inner = 1, dim = x.shape[axis];
  for (int64_t d = 0; d < axis; ++d)
    outer *= x.shape[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d)
    inner *= x.shape[d];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      T acc = 0;
      for (int64_t s = 0; s < dim; ++s) {
        int64_t j = reverse ? dim - 1 - s : s, at = (o * dim + j) * inner + i;
        T v = x.as<T>()[at];
        if (exclusive) {
          y.as<T>()[at] = acc;
          acc = wrapAdd(acc, v);
        } else {
          acc = wrapAdd(acc, v);
          y.as<T>()[at] = acc;
        }
      }
    }
}

bool cumsumRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  int64_t axis = loadInt(*a.in(1), 0);
  normalizeAxis(axis, x.rank());
  bool ex = a.attrs->getInt("exclusive", 0) != 0, rev = a.attrs->getInt("reverse", 0) != 0;
  switch (x.dtype) {
  case DType::F32: cumsumLoop<float>(x, *a.outputs[0], axis, ex, rev); return true;
  case DType::F64: cumsumLoop<double>(x, *a.outputs[0], axis, ex, rev); return true;
  case DType::I64: cumsumLoop<int64_t>(x, *a.outputs[0], axis, ex, rev); return true;
  case DType::I32: cumsumLoop<int32_t>(x, *a.outputs[0], axis, ex, rev); return true;
  default:
    err = "cumsum: unsupported dtype";
    return false;
  }
}

const KernelFamily kKernels[] = {
    {"gather_elements", 2, 2, 1, 0, gatherElementsInfer, gatherElementsRun, "ONNX GatherElements"},
    {"gather_nd", 2, 2, 1, 0, gatherNdInfer, gatherNdRun, "ONNX GatherND with batch_dims"},
    {"scatter_nd", 3, 3, 1, 0, scatterNdInfer, scatterNdRun, "ONNX ScatterND with reduction"},
    {"tile", 2, 2, 1, 0b10, tileInfer, tileRun, "repeat along each dim"},
    {"pad", 2, 3, 1, 0b10, padInfer, padRun, "constant, reflect, edge or wrap padding"},
    {"topk", 2, 2, 2, 0b10, topkInfer, topkRun, "k largest or smallest along 'axis': values, indices"},
    {"cumsum", 2, 2, 1, 0b10, cumsumInfer, cumsumRun, "inclusive or exclusive, forward or reverse scan"},
};

} // namespace

void registerIndexKernels(std::vector<const KernelFamily *> &out) {
  appendKernels(out, kKernels);
}

} // namespace qopt::num
