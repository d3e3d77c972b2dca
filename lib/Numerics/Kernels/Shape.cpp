//===- Shape.cpp - data movement and shape kernels -------------------------===//
//
// Kernels that move or index data without arithmetic (reshape, transpose, concat, slice, gather, expand, ...)
// and the small integer kernels that compute shapes at run time (shape, range, constant_of_shape). Their shape
// functions are ONNX's, checked strictly: every index read from a tensor is bounds-checked before use.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Broadcast.h"
#include "qopt/Numerics/Kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace qopt::num {
namespace {


bool copyRun(const KernelArgs &a, std::string &) {
  if (a.outputs[0]->data != a.in(0)->data)
    copyBytes(a.outputs[0]->data, a.in(0)->data, a.in(0)->bytes());
  return true;
}

//===-- reshape ------------------------------------------------------------===//

bool reshapeInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  std::vector<int64_t> target = readInts(*a.in(1));
  bool allowZero = a.attrs->getInt("allowzero", 0) != 0;
  Shape out(target.size());
  int64_t inferAt = -1, known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == 0 && !allowZero) {
      if (i >= x.shape.size()) {
        err = "reshape: 0 at position " + std::to_string(i) + " copies a dim the input " + shapeStr(x.shape) +
              " does not have";
        return false;
      }
      d = x.shape[i];
    }
    if (d == -1) {
      if (inferAt >= 0) {
        err = "reshape: more than one -1 in target shape";
        return false;
      }
      inferAt = static_cast<int64_t>(i);
      continue;
    }
    if (d < 0) {
      err = "reshape: invalid target dim " + std::to_string(d);
      return false;
    }
    out[i] = d;
    known = numElements({known, d});
    if (known < 0) {
      err = "reshape: target shape overflows";
      return false;
    }
  }
  int64_t total = x.numel();
  if (inferAt >= 0) {
    if (known == 0 || total % known != 0) {
      err = "reshape: cannot infer -1 reshaping " + shapeStr(x.shape) + " to " + shapeStr(target);
      return false;
    }
    out[inferAt] = total / known;
  } else if (known != total) {
    err = "reshape: " + shapeStr(x.shape) + " (" + std::to_string(total) + " elements) cannot become " +
          shapeStr(out);
    return false;
  }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

//===-- squeeze / unsqueeze / flatten --------------------------------------===//

bool unsqueezeInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  std::vector<int64_t> axes;
  a.attrs->getInts("axes", axes);
  int64_t r = x.rank() + static_cast<int64_t>(axes.size());
  std::vector<bool> isNew(static_cast<size_t>(r), false);
  for (int64_t ax : axes) {
    if (!normalizeAxis(ax, r) || isNew[ax]) {
      err = "unsqueeze: invalid or repeated axis " + std::to_string(ax) + " for output rank " + std::to_string(r);
      return false;
    }
    isNew[ax] = true;
  }
  Shape out;
  size_t j = 0;
  for (int64_t i = 0; i < r; ++i)
    out.push_back(isNew[i] ? 1 : x.shape[j++]);
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

bool squeezeInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  std::vector<int64_t> axes;
  bool explicitAxes = a.attrs->getInts("axes", axes);
  std::vector<bool> drop(x.shape.size(), false);
  if (!explicitAxes) {
    for (size_t i = 0; i < x.shape.size(); ++i)
      drop[i] = x.shape[i] == 1;
  }
  for (int64_t ax : axes) {
    if (!normalizeAxis(ax, x.rank())) {
      err = "squeeze: axis " + std::to_string(ax) + " out of range for rank " + std::to_string(x.rank());
      return false;
    }
    if (x.shape[ax] != 1) {
      err = "squeeze: dim " + std::to_string(ax) + " of " + shapeStr(x.shape) + " is not 1";
      return false;
    }
    drop[ax] = true;
  }
  Shape out;
  for (size_t i = 0; i < x.shape.size(); ++i)
    if (!drop[i])
      out.push_back(x.shape[i]);
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

bool flattenInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  int64_t axis = a.attrs->getInt("axis", 1);
  if (axis < 0)
    axis += x.rank();
  if (axis < 0 || axis > x.rank()) {
    err = "flatten: axis out of range";
    return false;
  }
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < x.rank(); ++i) {
    int64_t &p = i < axis ? outer : inner;
    if (!checkedMul(p, x.shape[i], p)) {
      err = "flatten: " + shapeStr(x.shape) + " has too many elements";
      return false;
    }
  }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = {outer, inner};
  return true;
}

//===-- transpose ----------------------------------------------------------===//

bool transposeInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  std::vector<int64_t> perm;
  if (!a.attrs->getInts("perm", perm)) {
    for (int64_t i = x.rank() - 1; i >= 0; --i)
      perm.push_back(i);
  }
  if (static_cast<int64_t>(perm.size()) != x.rank()) {
    err = "transpose: perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(x.rank());
    return false;
  }
  std::vector<bool> seen(perm.size(), false);
  Shape out;
  for (int64_t p : perm) {
    if (p < 0 || p >= x.rank() || seen[p]) {
      err = "transpose: perm is not a permutation";
      return false;
    }
    seen[p] = true;
    out.push_back(x.shape[p]);
  }
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

bool transposeRun(const KernelArgs &a, std::string &) {
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  std::vector<int64_t> perm;
  if (!a.attrs->getInts("perm", perm))
    for (int64_t i = x.rank() - 1; i >= 0; --i)
      perm.push_back(i);
  const int64_t r = x.rank(), es = static_cast<int64_t>(dtypeSize(x.dtype));
  int64_t total = y.numel();
  if (total == 0) // before the strides: an empty input's other dims may be huge
    return true;
  std::vector<int64_t> inStride(r, 1);
  for (int64_t i = r - 2; i >= 0; --i)
    inStride[i] = inStride[i + 1] * x.shape[i + 1];
  // Strides of the input along each output dim; walk the output contiguously.
  std::vector<int64_t> st(r);
  for (int64_t i = 0; i < r; ++i)
    st[i] = inStride[perm[i]];
  const char *src = static_cast<const char *>(x.data);
  char *dst = static_cast<char *>(y.data);
  if (r == 0) {
    copyBytes(dst, src, es);
    return true;
  }
  std::vector<int64_t> idx(r, 0);
  int64_t off = 0, rowLen = y.shape[r - 1], rowSt = st[r - 1];
  for (int64_t o = 0; o < total; o += rowLen) {
    if (es == 4) {
      auto *d = reinterpret_cast<uint32_t *>(dst) + o;
      auto *s = reinterpret_cast<const uint32_t *>(src) + off;
      for (int64_t i = 0; i < rowLen; ++i)
        d[i] = s[i * rowSt];
    } else {
      for (int64_t i = 0; i < rowLen; ++i)
        copyBytes(dst + (o + i) * es, src + (off + i * rowSt) * es, es);
    }
    for (int64_t d = r - 2; d >= 0; --d) {
      if (++idx[d] < y.shape[d]) {
        off += st[d];
        break;
      }
      off -= st[d] * (y.shape[d] - 1);
      idx[d] = 0;
    }
  }
  return true;
}

//===-- concat -------------------------------------------------------------===//

bool concatInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x0 = *a.in(0);
  int64_t axis = a.attrs->getInt("axis", 0);
  if (!normalizeAxis(axis, x0.rank())) {
    err = "concat: axis out of range for rank " + std::to_string(x0.rank());
    return false;
  }
  Shape out = x0.shape;
  out[axis] = 0;
  for (const Tensor *t : a.inputs) {
    if (t->rank() != x0.rank() || t->dtype != x0.dtype) {
      err = "concat: operands differ in rank or dtype";
      return false;
    }
    for (int64_t i = 0; i < x0.rank(); ++i)
      if (i != axis && t->shape[i] != x0.shape[i]) {
        err = "concat: shapes " + shapeStr(x0.shape) + " and " + shapeStr(t->shape) + " differ off axis " +
              std::to_string(axis);
        return false;
      }
    if (!checkedAdd(out[axis], t->shape[axis], out[axis])) {
      err = "concat: sizes along axis " + std::to_string(axis) + " overflow";
      return false;
    }
  }
  a.outputs[0]->dtype = x0.dtype;
  a.outputs[0]->shape = out;
  return true;
}

bool concatRun(const KernelArgs &a, std::string &) {
  Tensor &y = *a.outputs[0];
  int64_t axis = a.attrs->getInt("axis", 0);
  normalizeAxis(axis, y.rank());
  if (y.numel() == 0) // the dims of an empty result may be huge
    return true;
  const int64_t es = static_cast<int64_t>(dtypeSize(y.dtype));
  int64_t outer = 1, inner = es;
  for (int64_t i = 0; i < axis; ++i)
    outer *= y.shape[i];
  for (int64_t i = axis + 1; i < y.rank(); ++i)
    inner *= y.shape[i];
  const int64_t outRow = y.shape[axis] * inner;
  int64_t at = 0;
  for (const Tensor *t : a.inputs) {
    const int64_t row = t->shape[axis] * inner;
    for (int64_t o = 0; o < outer && row > 0; ++o) // an empty input may have no buffer at all
      copyBytes(static_cast<char *>(y.data) + o * outRow + at, static_cast<const char *>(t->data) + o * row,
                  static_cast<size_t>(row));
    at += row;
  }
  return true;
}

//===-- slice --------------------------------------------------------------===//

struct SlicePlan {
  std::vector<int64_t> start, step;
  Shape out;
};

bool planSlice(const KernelArgs &a, SlicePlan &p, std::string &err) {
  const Tensor &x = *a.in(0);
  std::vector<int64_t> starts = readInts(*a.in(1)), ends = readInts(*a.in(2)), axes, steps;
  if (a.in(3))
    axes = readInts(*a.in(3));
  else
    for (size_t i = 0; i < starts.size(); ++i)
      axes.push_back(static_cast<int64_t>(i));
  if (a.in(4))
    steps = readInts(*a.in(4));
  else
    steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    err = "slice: starts, ends, axes and steps differ in length";
    return false;
  }
  p.start.assign(x.shape.size(), 0);
  p.step.assign(x.shape.size(), 1);
  p.out = x.shape;
  std::vector<bool> seen(x.shape.size(), false);
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t ax = axes[i];
    if (!normalizeAxis(ax, x.rank()) || seen[ax]) {
      err = "slice: invalid or repeated axis " + std::to_string(axes[i]);
      return false;
    }
    seen[ax] = true;
    int64_t dim = x.shape[ax], st = steps[i];
    if (st == 0) {
      err = "slice: step 0";
      return false;
    }
    auto clampIdx = [&](int64_t v, int64_t lo, int64_t hi) {
      if (v < 0)
        v = v < -dim ? -1 : v + dim; // -1 marks "before the start" for negative clamping below
      return std::min(std::max(v, lo), hi);
    };
    int64_t s, e;
    if (st > 0) {
      s = clampIdx(starts[i], 0, dim);
      e = clampIdx(ends[i], 0, dim);
      p.out[ax] = e > s ? (e - s - 1) / st + 1 : 0; // ceil((e - s) / st) without overflowing for huge steps
    } else {
      s = clampIdx(starts[i], -1, dim - 1);
      e = clampIdx(ends[i], -1, dim - 1);
      // -st overflows for INT64_MIN; any step that large takes one element, as INT64_MAX does.
      p.out[ax] = s > e ? (s - e - 1) / (st == INT64_MIN ? INT64_MAX : -st) + 1 : 0;
    }
    p.start[ax] = s < 0 ? 0 : s;
    p.step[ax] = st;
  }
  return true;
}

bool sliceInfer(const KernelArgs &a, std::string &err) {
  SlicePlan p;
  if (!planSlice(a, p, err))
    return false;
  a.outputs[0]->dtype = a.in(0)->dtype;
  a.outputs[0]->shape = p.out;
  return true;
}

bool sliceRun(const KernelArgs &a, std::string &err) {
  SlicePlan p;
  if (!planSlice(a, p, err))
    return false;
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  const int64_t r = x.rank(), es = static_cast<int64_t>(dtypeSize(x.dtype));
  int64_t total = y.numel();
  if (total == 0)
    return true;
  if (r == 0) {
    copyBytes(y.data, x.data, es);
    return true;
  }
  std::vector<int64_t> inStride(r, 1);
  for (int64_t i = r - 2; i >= 0; --i)
    inStride[i] = inStride[i + 1] * x.shape[i + 1];
  int64_t base = 0;
  for (int64_t i = 0; i < r; ++i)
    base += p.start[i] * inStride[i];
  std::vector<int64_t> idx(r, 0);
  int64_t off = base, rowLen = y.shape[r - 1], rowSt = p.step[r - 1];
  const char *src = static_cast<const char *>(x.data);
  char *dst = static_cast<char *>(y.data);
  for (int64_t o = 0; o < total; o += rowLen) {
    if (rowSt == 1)
      copyBytes(dst + o * es, src + off * es, static_cast<size_t>(rowLen * es));
    else
      for (int64_t i = 0; i < rowLen; ++i)
        copyBytes(dst + (o + i) * es, src + (off + i * rowSt) * es, es);
    for (int64_t d = r - 2; d >= 0; --d) {
      if (++idx[d] < y.shape[d]) {
        off += p.step[d] * inStride[d];
        break;
      }
      off -= p.step[d] * ((y.shape[d] - 1) * inStride[d]); // 0 for a unit dim, whose step may be huge
      idx[d] = 0;
    }
  }
  return true;
}

//===-- gather -------------------------------------------------------------===//

bool gatherInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &ind = *a.in(1);
  int64_t axis = a.attrs->getInt("axis", 0);
  if (!normalizeAxis(axis, x.rank())) {
    err = "gather: axis out of range for rank " + std::to_string(x.rank());
    return false;
  }
  if (ind.dtype != DType::I64 && ind.dtype != DType::I32) {
    err = "gather: indices must be int32 or int64";
    return false;
  }
  Shape out(x.shape.begin(), x.shape.begin() + axis);
  out.insert(out.end(), ind.shape.begin(), ind.shape.end());
  out.insert(out.end(), x.shape.begin() + axis + 1, x.shape.end());
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

bool gatherRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &ind = *a.in(1);
  Tensor &y = *a.outputs[0];
  int64_t axis = a.attrs->getInt("axis", 0);
  normalizeAxis(axis, x.rank());
  if (y.numel() == 0) // the dims of an empty result may be huge
    return true;
  const int64_t es = static_cast<int64_t>(dtypeSize(x.dtype));
  int64_t outer = 1, inner = es;
  for (int64_t i = 0; i < axis; ++i)
    outer *= x.shape[i];
  for (int64_t i = axis + 1; i < x.rank(); ++i)
    inner *= x.shape[i];
  const int64_t dim = x.shape[axis], n = ind.numel();
  for (int64_t j = 0; j < n; ++j) {
    int64_t k = loadInt(ind, j);
    if (k < -dim || k >= dim) {
      err = "gather: index " + std::to_string(k) + " out of range for dim " + std::to_string(dim);
      return false;
    }
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n; ++j) {
      int64_t k = loadInt(ind, j);
      if (k < 0)
        k += dim;
      copyBytes(static_cast<char *>(y.data) + (o * n + j) * inner,
                  static_cast<const char *>(x.data) + (o * dim + k) * inner, static_cast<size_t>(inner));
    }
  return true;
}

//===-- expand -------------------------------------------------------------===//

bool expandInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  Shape target = readInts(*a.in(1));
  if (!broadcastShapes(x.shape, target, a.outputs[0]->shape)) {
    err = "expand: " + shapeStr(x.shape) + " does not broadcast to " + shapeStr(target);
    return false;
  }
  a.outputs[0]->dtype = x.dtype;
  return true;
}

bool expandRun(const KernelArgs &a, std::string &) {
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  if (y.numel() == 0) // broadcastRows computes input strides first, which an empty input's huge dims overflow
    return true;
  const size_t es = dtypeSize(x.dtype);
  const char *src = static_cast<const char *>(x.data);
  char *dst = static_cast<char *>(y.data);
  broadcastRows<1>(y.shape, {&x.shape},
                   [&](int64_t o, const std::array<int64_t, 1> &off, const std::array<int64_t, 1> &st, int64_t n) {
                     if (st[0] == 1) {
                       copyBytes(dst + o * es, src + off[0] * es, static_cast<size_t>(n) * es);
                     } else {
                       for (int64_t i = 0; i < n; ++i)
                         copyBytes(dst + (o + i) * es, src + off[0] * es, es);
                     }
                   });
  return true;
}

//===-- shape, size, range, constant_of_shape ------------------------------===//

bool shapeInfer(const KernelArgs &a, std::string &) {
  int64_t r = a.in(0)->rank();
  int64_t s = a.attrs->getInt("start", 0), e = a.attrs->getInt("end", r);
  s = std::clamp(s < 0 ? s + r : s, int64_t(0), r);
  e = std::clamp(e < 0 ? e + r : e, int64_t(0), r);
  a.outputs[0]->dtype = DType::I64;
  a.outputs[0]->shape = {std::max<int64_t>(e - s, 0)};
  return true;
}

bool shapeRun(const KernelArgs &a, std::string &) {
  int64_t r = a.in(0)->rank();
  int64_t s = a.attrs->getInt("start", 0);
  s = std::clamp(s < 0 ? s + r : s, int64_t(0), r);
  for (int64_t i = 0; i < a.outputs[0]->shape[0]; ++i)
    a.outputs[0]->as<int64_t>()[i] = a.in(0)->shape[s + i];
  return true;
}

bool sizeInfer(const KernelArgs &a, std::string &) {
  a.outputs[0]->dtype = DType::I64;
  a.outputs[0]->shape = {};
  return true;
}

bool sizeRun(const KernelArgs &a, std::string &) {
  *a.outputs[0]->as<int64_t>() = a.in(0)->numel();
  return true;
}

bool rangeInfer(const KernelArgs &a, std::string &err) {
  const Tensor &s = *a.in(0), &l = *a.in(1), &d = *a.in(2);
  if (s.numel() != 1 || l.numel() != 1 || d.numel() != 1 || s.dtype != l.dtype || s.dtype != d.dtype) {
    err = "range: start, limit and delta must be scalars of one dtype";
    return false;
  }
  int64_t count;
  if (!isFloat(s.dtype)) {
    // Exact in integers: through double, int64 bounds near 2^63 round and could count one element too many.
    int64_t start = loadInt(s, 0), limit = loadInt(l, 0), delta = loadInt(d, 0);
    if (delta == 0) {
      err = "range: delta must be nonzero and all bounds finite";
      return false;
    }
    __int128 span = static_cast<__int128>(limit) - start, step = delta;
    __int128 n = delta > 0 ? (span > 0 ? (span - 1) / step + 1 : 0) : (span < 0 ? (span + 1) / step + 1 : 0);
    if (n > static_cast<__int128>(1e12)) {
      err = "range: too many elements";
      return false;
    }
    count = static_cast<int64_t>(n);
  } else {
    double start = loadDouble(s, 0), limit = loadDouble(l, 0), delta = loadDouble(d, 0);
    if (delta == 0 || !std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta)) {
      err = "range: delta must be nonzero and all bounds finite";
      return false;
    }
    // limit - start can overflow to +-inf: +inf (and NaN) fail the test, -inf clamps to 0 before the cast.
    double n = std::ceil((limit - start) / delta);
    if (!(n <= 1e12)) {
      err = "range: too many elements";
      return false;
    }
    count = static_cast<int64_t>(std::max(n, 0.0));
  }
  a.outputs[0]->dtype = s.dtype;
  a.outputs[0]->shape = {count};
  return true;
}

bool rangeRun(const KernelArgs &a, std::string &err) {
  Tensor &y = *a.outputs[0];
  const Tensor &s = *a.in(0), &d = *a.in(2);
  int64_t n = y.numel();
  switch (y.dtype) {
  case DType::F32: {
    float st = static_cast<float>(loadDouble(s, 0)), de = static_cast<float>(loadDouble(d, 0));
    for (int64_t i = 0; i < n; ++i)
      y.as<float>()[i] = st + static_cast<float>(i) * de;
    return true;
  }
  case DType::F64:
    for (int64_t i = 0; i < n; ++i)
      y.as<double>()[i] = loadDouble(s, 0) + static_cast<double>(i) * loadDouble(d, 0);
    return true;
  // start + i * delta lies in [start, limit), but i * delta alone may not fit: compute it modulo 2^64.
  case DType::I64:
    for (int64_t i = 0; i < n; ++i)
      y.as<int64_t>()[i] = static_cast<int64_t>(static_cast<uint64_t>(loadInt(s, 0)) +
                                                static_cast<uint64_t>(i) * static_cast<uint64_t>(loadInt(d, 0)));
    return true;
  case DType::I32:
    for (int64_t i = 0; i < n; ++i)
      y.as<int32_t>()[i] = static_cast<int32_t>(static_cast<uint64_t>(loadInt(s, 0)) +
                                                static_cast<uint64_t>(i) * static_cast<uint64_t>(loadInt(d, 0)));
    return true;
  default:
    err = std::string("range: unsupported dtype ") + dtypeName(y.dtype);
    return false;
  }
}

bool constantOfShapeInfer(const KernelArgs &a, std::string &err) {
  Shape s = readInts(*a.in(0));
  if (numElements(s) < 0) {
    err = "constant_of_shape: invalid shape " + shapeStr(s);
    return false;
  }
  int64_t dt = a.attrs->getInt("dtype", static_cast<int64_t>(DType::F32));
  if (dt < 0 || dt > 255 || !isValidDType(static_cast<int>(dt))) {
    err = "constant_of_shape: invalid dtype";
    return false;
  }
  a.outputs[0]->dtype = static_cast<DType>(dt);
  a.outputs[0]->shape = s;
  return true;
}

bool constantOfShapeRun(const KernelArgs &a, std::string &err) {
  Tensor &y = *a.outputs[0];
  double v = a.attrs->getFloat("value", 0.0);
  Tensor one;
  one.dtype = DType::F64;
  one.shape = {};
  one.data = &v;
  // Reuse cast to produce one element of the target dtype, then replicate it.
  Tensor first = y;
  first.shape = {};
  Attrs at;
  at.setInt("to", static_cast<int64_t>(y.dtype));
  std::vector<uint8_t> elem(dtypeSize(y.dtype));
  first.data = elem.data();
  KernelArgs ca;
  ca.inputs = {&one};
  ca.outputs = {&first};
  ca.attrs = &at;
  const KernelFamily *cast = lookupFamily("cast");
  if (!cast->reference(ca, err))
    return false;
  for (int64_t i = 0; i < y.numel(); ++i)
    copyBytes(static_cast<char *>(y.data) + i * elem.size(), elem.data(), elem.size());
  return true;
}

//===-- trilu --------------------------------------------------------------===//

bool triluInfer(const KernelArgs &a, std::string &err) {
  if (a.in(0)->rank() < 2) {
    err = "trilu: input rank must be at least 2";
    return false;
  }
  a.outputs[0]->dtype = a.in(0)->dtype;
  a.outputs[0]->shape = a.in(0)->shape;
  return true;
}

bool triluRun(const KernelArgs &a, std::string &) {
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  int64_t k = a.in(1) ? loadInt(*a.in(1), 0) : 0;
  bool upper = a.attrs->getInt("upper", 1) != 0;
  const int64_t r = x.rank(), rows = x.shape[r - 2], cols = x.shape[r - 1];
  const size_t es = dtypeSize(x.dtype);
  copyBytes(y.data, x.data, x.bytes());
  if (x.numel() == 0) // rows * cols may overflow when another dim is 0
    return true;
  const int64_t mats = x.numel() / (rows * cols);
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        bool keep = upper ? (j - i >= k) : (j - i <= k);
        if (!keep)
          std::memset(static_cast<char *>(y.data) + ((m * rows + i) * cols + j) * es, 0, es);
      }
  return true;
}

//===-- views ----------------------------------------------------------------===//

// Reshapes keep the row-major order of the elements: always a view.
bool alwaysView(const Shape &, const Attrs &) { return true; }

// A transpose is a view when the dims it moves past each other are unit dims: the non-unit dims keep their order.
bool transposeIsView(const Shape &in, const Attrs &attrs) {
  std::vector<int64_t> perm;
  if (!attrs.getInts("perm", perm))
    for (int64_t i = static_cast<int64_t>(in.size()) - 1; i >= 0; --i)
      perm.push_back(i);
  int64_t last = -1;
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(in.size()))
      return false;
    if (in[p] == 1)
      continue;
    if (p < last)
      return false;
    last = p;
  }
  return true;
}

const KernelFamily kKernels[] = {
    {"reshape", 2, 2, 1, 0b10, reshapeInfer, copyRun, "ONNX Reshape (0 copies, -1 infers)", -1, alwaysView},
    {"unsqueeze", 1, 1, 1, 0, unsqueezeInfer, copyRun, "insert unit dims at 'axes'", -1, alwaysView},
    {"squeeze", 1, 1, 1, 0, squeezeInfer, copyRun, "remove unit dims at 'axes' (all if absent)", -1, alwaysView},
    {"flatten", 1, 1, 1, 0, flattenInfer, copyRun, "collapse to 2-D around 'axis'", -1, alwaysView},
    {"copy", 1, 1, 1, 0,
     [](const KernelArgs &a, std::string &) {
       a.outputs[0]->dtype = a.in(0)->dtype;
       a.outputs[0]->shape = a.in(0)->shape;
       return true;
     },
     copyRun, "identity copy"},
    {"transpose", 1, 1, 1, 0, transposeInfer, transposeRun, "permute dims by 'perm'", -1, transposeIsView},
    {"concat", 1, -1, 1, 0, concatInfer, concatRun, "join along 'axis'"},
    {"slice", 3, 5, 1, 0b11110, sliceInfer, sliceRun, "ONNX Slice (starts, ends, axes, steps)"},
    {"gather", 2, 2, 1, 0, gatherInfer, gatherRun, "ONNX Gather along 'axis'"},
    {"expand", 2, 2, 1, 0b10, expandInfer, expandRun, "broadcast to a shape"},
    {"shape", 1, 1, 1, 0, shapeInfer, shapeRun, "the input's dims [start, end) as int64", -1, nullptr, true},
    {"size", 1, 1, 1, 0, sizeInfer, sizeRun, "the input's element count as an int64 scalar", -1, nullptr, true},
    {"range", 3, 3, 1, 0b111, rangeInfer, rangeRun, "start, start+delta, ... below limit"},
    {"constant_of_shape", 1, 1, 1, 0b1, constantOfShapeInfer, constantOfShapeRun,
     "a tensor of 'value' with the given shape"},
    {"trilu", 1, 2, 1, 0, triluInfer, triluRun, "keep the upper or lower triangle"},
};

} // namespace

void registerShapeKernels(std::vector<const KernelFamily *> &out) {
  appendKernels(out, kKernels);
}

} // namespace qopt::num
