//===- Conv.cpp - convolution and pooling kernels --------------------------===//
//
// N-d convolution (NCHW..., grouped, strided, dilated, explicitly padded) as im2col + GEMM per group and batch,
// and max / average pooling. Padding is explicit: the importer resolves ONNX's auto_pad into `pads`
// ([begin..., end...]) so the kernels and their shape functions see one convention.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/Kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qopt::num {
namespace {

struct Window {
  int64_t spatial = 0;
  int64_t inSize = 1, outSize = 1, kSize = 1; // element counts of one input plane, output plane and window
  std::vector<int64_t> kernel, strides, dilations, padBegin, padEnd, out;
};

bool planWindow(const Shape &x, const std::vector<int64_t> &kernel, const Attrs &attrs, bool ceilMode, Window &w,
                std::string &err) {
  w.spatial = static_cast<int64_t>(x.size()) - 2;
  if (w.spatial < 1 || static_cast<int64_t>(kernel.size()) != w.spatial) {
    err = "window rank does not match the input's spatial rank";
    return false;
  }
  w.kernel = kernel;
  std::vector<int64_t> pads;
  if (!attrs.getInts("strides", w.strides))
    w.strides.assign(w.spatial, 1);
  if (!attrs.getInts("dilations", w.dilations))
    w.dilations.assign(w.spatial, 1);
  if (!attrs.getInts("pads", pads))
    pads.assign(2 * w.spatial, 0);
  if (static_cast<int64_t>(w.strides.size()) != w.spatial || static_cast<int64_t>(w.dilations.size()) != w.spatial ||
      static_cast<int64_t>(pads.size()) != 2 * w.spatial) {
    err = "strides, dilations or pads have the wrong length";
    return false;
  }
  w.padBegin.assign(pads.begin(), pads.begin() + w.spatial);
  w.padEnd.assign(pads.begin() + w.spatial, pads.end());
  for (int64_t i = 0; i < w.spatial; ++i) {
    if (w.strides[i] <= 0 || w.dilations[i] <= 0 || w.kernel[i] <= 0 || w.padBegin[i] < 0 || w.padEnd[i] < 0) {
      err = "non-positive kernel, stride or dilation, or negative pad";
      return false;
    }
    int64_t span, padded, len, startLimit, lastStart;
    if (!checkedMul(w.dilations[i], w.kernel[i] - 1, span) || !checkedAdd(span, 1, span) ||
        !checkedAdd(x[2 + i], w.padBegin[i], startLimit) || !checkedAdd(startLimit, w.padEnd[i], padded) ||
        !checkedSub(padded, span, len)) {
      err = "window or pads for spatial dim " + std::to_string(i) + " overflow";
      return false;
    }
    if (len < 0) {
      err = "window larger than the padded input";
      return false;
    }
    // ceil(len / stride) written so that a huge stride cannot overflow.
    int64_t o = ceilMode ? (len == 0 ? 0 : (len - 1) / w.strides[i] + 1) + 1 : len / w.strides[i] + 1;
    // With ceil_mode the last window must start inside the input or its begin padding (a start past int64 is not).
    if (ceilMode && (!checkedMul(o - 1, w.strides[i], lastStart) || lastStart >= startLimit))
      --o;
    w.out.push_back(o);
  }
  for (int64_t i = 0; i < w.spatial; ++i)
    if (!checkedMul(w.inSize, x[2 + i], w.inSize) || !checkedMul(w.outSize, w.out[i], w.outSize) ||
        !checkedMul(w.kSize, w.kernel[i], w.kSize)) {
      err = "window or spatial dims have too many elements";
      return false;
    }
  return true;
}

//===-- conv ---------------------------------------------------------------===//

bool convInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &wt = *a.in(1);
  if (x.rank() < 3 || wt.rank() != x.rank()) {
    err = "conv: input and weight must have the same rank >= 3";
    return false;
  }
  if (x.dtype != DType::F32 || wt.dtype != DType::F32) {
    err = "conv: float32 only";
    return false;
  }
  int64_t group = a.attrs->getInt("group", 1), groupChannels;
  if (group <= 0 || x.shape[1] % group || wt.shape[0] % group || !checkedMul(wt.shape[1], group, groupChannels) ||
      groupChannels != x.shape[1]) {
    err = "conv: channels " + std::to_string(x.shape[1]) + " and weight " + shapeStr(wt.shape) +
          " do not match group " + std::to_string(group);
    return false;
  }
  Window w;
  if (!planWindow(x.shape, Shape(wt.shape.begin() + 2, wt.shape.end()), *a.attrs, false, w, err))
    return false;
  if (a.in(2) && (a.in(2)->numel() != wt.shape[0] || a.in(2)->dtype != DType::F32)) {
    err = "conv: bias has " + std::to_string(a.in(2)->numel()) + " elements for " + std::to_string(wt.shape[0]) +
          " output channels, or is not float32";
    return false;
  }
  Shape out{x.shape[0], wt.shape[0]};
  out.insert(out.end(), w.out.begin(), w.out.end());
  a.outputs[0]->dtype = DType::F32;
  a.outputs[0]->shape = out;
  return true;
}

bool convRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0), &wt = *a.in(1);
  Tensor &y = *a.outputs[0];
  Window w;
  if (!planWindow(x.shape, Shape(wt.shape.begin() + 2, wt.shape.end()), *a.attrs, false, w, err))
    return false;
  if (y.numel() == 0)
    return true;
  const int64_t group = a.attrs->getInt("group", 1), N = x.shape[0], C = x.shape[1], M = wt.shape[0];
  const int64_t cg = C / group, mg = M / group;
  const int64_t inSize = w.inSize, outSize = w.outSize, kSize = w.kSize;
  int64_t K, colsSize;
  if (!checkedMul(cg, kSize, K) || !checkedMul(K, outSize, colsSize) || colsSize > kMaxElements) {
    err = "conv: im2col buffer of " + std::to_string(cg) + " x " + std::to_string(kSize) + " x " +
          std::to_string(outSize) + " elements is too large";
    return false;
  }
  std::vector<float> cols(static_cast<size_t>(colsSize));
  std::vector<int64_t> kidx(w.spatial), oidx(w.spatial);
  const float *px = x.as<float>(), *pw = wt.as<float>();
  float *py = y.as<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < group; ++g) {
      // im2col: row (c, k...) x column (o...)
      for (int64_t c = 0; c < cg; ++c) {
        const float *src = px + (n * C + g * cg + c) * inSize;
        for (int64_t k = 0; k < kSize; ++k) {
          int64_t rem = k;
          for (int64_t i = w.spatial - 1; i >= 0; --i) {
            kidx[i] = rem % w.kernel[i];
            rem /= w.kernel[i];
          }
          float *dst = cols.data() + (c * kSize + k) * outSize;
          for (int64_t o = 0; o < outSize; ++o) {
            int64_t r = o, off = 0;
            bool inside = true;
            for (int64_t i = w.spatial - 1; i >= 0; --i) {
              oidx[i] = r % w.out[i];
              r /= w.out[i];
            }
            for (int64_t i = 0; i < w.spatial; ++i) {
              int64_t pos = oidx[i] * w.strides[i] - w.padBegin[i] + kidx[i] * w.dilations[i];
              if (pos < 0 || pos >= x.shape[2 + i]) {
                inside = false;
                break;
              }
              off = off * x.shape[2 + i] + pos;
            }
            dst[o] = inside ? src[off] : 0.0f;
          }
        }
      }
      float *out = py + (n * M + g * mg) * outSize;
      sgemm(false, false, mg, outSize, K, 1.0f, pw + g * mg * K, K, cols.data(), outSize, 0.0f, out, outSize,
            a.pool);
    }
  if (const Tensor *b = a.in(2))
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t o = 0; o < outSize; ++o)
          py[(n * M + m) * outSize + o] += b->as<float>()[m];
  return true;
}

//===-- pooling ------------------------------------------------------------===//

bool poolInfer(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  if (x.rank() < 3 || !isFloat(x.dtype)) {
    err = "pool: expects a float input of rank >= 3";
    return false;
  }
  std::vector<int64_t> kernel;
  if (a.attrs->getInt("global", 0)) {
    kernel.assign(x.shape.begin() + 2, x.shape.end());
  } else if (!a.attrs->getInts("kernel_shape", kernel)) {
    err = "pool: missing kernel_shape";
    return false;
  }
  Window w;
  if (!planWindow(x.shape, kernel, *a.attrs, a.attrs->getInt("ceil_mode", 0) != 0, w, err))
    return false;
  Shape out{x.shape[0], x.shape[1]};
  out.insert(out.end(), w.out.begin(), w.out.end());
  a.outputs[0]->dtype = x.dtype;
  a.outputs[0]->shape = out;
  return true;
}

template <typename T> bool poolLoop(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  std::vector<int64_t> kernel;
  if (a.attrs->getInt("global", 0))
    kernel.assign(x.shape.begin() + 2, x.shape.end());
  else
    a.attrs->getInts("kernel_shape", kernel);
  Window w;
  if (!planWindow(x.shape, kernel, *a.attrs, a.attrs->getInt("ceil_mode", 0) != 0, w, err))
    return false;
  const bool isMax = a.attrs->getString("kind", "max") == "max";
  const bool countPad = a.attrs->getInt("count_include_pad", 0) != 0;
  if (y.numel() == 0)
    return true;
  const int64_t inSize = w.inSize, outSize = w.outSize, kSize = w.kSize;
  const int64_t planes = x.shape[0] * x.shape[1];
  std::vector<int64_t> oidx(w.spatial), kidx(w.spatial);
  for (int64_t p = 0; p < planes; ++p) {
    const T *src = x.as<T>() + p * inSize;
    T *dst = y.as<T>() + p * outSize;
    for (int64_t o = 0; o < outSize; ++o) {
      int64_t r = o;
      for (int64_t i = w.spatial - 1; i >= 0; --i) {
        oidx[i] = r % w.out[i];
        r /= w.out[i];
      }
      double acc = isMax ? -std::numeric_limits<double>::infinity() : 0.0;
      int64_t count = 0, padCount = 0;
      for (int64_t k = 0; k < kSize; ++k) {
        int64_t rem = k, off = 0;
        bool inside = true, inPadded = true;
        for (int64_t i = w.spatial - 1; i >= 0; --i) {
          kidx[i] = rem % w.kernel[i];
          rem /= w.kernel[i];
        }
        for (int64_t i = 0; i < w.spatial; ++i) {
          int64_t pos = oidx[i] * w.strides[i] - w.padBegin[i] + kidx[i] * w.dilations[i];
          if (pos < 0 || pos >= x.shape[2 + i])
            inside = false;
          if (pos < -w.padBegin[i] || pos >= x.shape[2 + i] + w.padEnd[i])
            inPadded = false;
          off = off * x.shape[2 + i] + std::clamp<int64_t>(pos, 0, x.shape[2 + i] - 1);
        }
        padCount += inPadded;
        if (!inside)
          continue;
        double v = static_cast<double>(src[off]);
        if (isMax)
          acc = std::max(acc, v);
        else
          acc += v;
        ++count;
      }
      if (isMax)
        dst[o] = static_cast<T>(acc);
      else
        dst[o] = static_cast<T>(acc / static_cast<double>(countPad ? padCount : std::max<int64_t>(count, 1)));
    }
  }
  return true;
}

bool poolRun(const KernelArgs &a, std::string &err) {
  if (a.in(0)->dtype == DType::F32)
    return poolLoop<float>(a, err);
  if (a.in(0)->dtype == DType::F64)
    return poolLoop<double>(a, err);
  err = "pool: unsupported dtype";
  return false;
}

const KernelFamily kKernels[] = {
    {"conv", 2, 3, 1, 0, convInfer, convRun, "N-d grouped convolution with explicit pads"},
    {"pool", 1, 1, 1, 0, poolInfer, poolRun, "N-d max or average pooling ('kind'), or global with global=1"},
};

} // namespace

void registerConvKernels(std::vector<const KernelFamily *> &out) {
  appendKernels(out, kKernels);
}

} // namespace qopt::num
