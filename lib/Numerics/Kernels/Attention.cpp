//===- Attention.cpp - scaled dot-product attention ------------------------===//
//
// The reference kernel of nn.attention: per (batch, query head, query row) the scores against every key, the
// mask, a softmax computed as the softmax kernel does (max-subtracted, fully masked rows NaN unless
// zero_nan_rows), and the weighted sum of values. Query head h reads kv head h / (Hq / Hkv). float32 runs the two
// products through the blocked GEMM; float64 through plain loops.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Fp8.h"
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/Kernels.h"
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace qopt::num {
namespace {

// Strides of a mask of rank <= 4 broadcast to [B, H, S, T] (0 along broadcast dims).
bool maskStrides(const Tensor &m, const int64_t full[4], int64_t strides[4]) {
  if (m.rank() > 4)
    return false;
  int64_t stride = 1;
  for (int d = 3; d >= 0; --d) {
    int64_t md = d - (4 - m.rank());
    int64_t size = md >= 0 ? m.shape[md] : 1;
    if (size != 1 && size != full[d])
      return false;
    strides[d] = size == 1 ? 0 : stride;
    stride *= size;
  }
  return true;
}

// An FP8 cache's keys and values (dtype fp8, fp8_e5m2 of operands 1 and 2 with a cache length): then operands 5
// and 6 are the kv heads' key and value scales.
bool fp8Cache(const KernelArgs &a) {
  const DType t = a.in(1)->dtype;
  return a.in(4) && (t == DType::F8E4M3FN || t == DType::F8E5M2);
}
// The first operand of the rotary queries (qopt-fuse-rotary's positions and inv_freq, after the cache's scales).
size_t rotaryOperand(const KernelArgs &a) { return fp8Cache(a) ? 7 : 5; }

// Rotated queries: rotary(q, positions, inv_freq) {style = rotary_style}, through the rotary family's own shape
// function and reference code.
bool rotaryQueries(const KernelArgs &a, Tensor &rotated, bool run, std::string &err) {
  Attrs attrs;
  attrs.setInt("style", a.attrs->getInt("rotary_style", -1));
  const size_t r0 = rotaryOperand(a);
  const KernelArgs r{{a.in(0), a.in(r0), a.in(r0 + 1)}, {&rotated}, &attrs, a.pool};
  const KernelFamily *rotary = lookupFamily("rotary");
  if (!a.in(r0) || !a.in(r0 + 1) || a.inputs.size() != r0 + 2) {
    err = "rotary queries need both positions (operand " + std::to_string(r0) + ") and inv_freq (operand " +
          std::to_string(r0 + 1) + "), the last operands";
    return false;
  }
  return run ? rotary->reference(r, err) : rotary->infer(r, err);
}

bool attentionInfer(const KernelArgs &a, std::string &err) {
  const Tensor &q = *a.in(0), &k = *a.in(1), &v = *a.in(2);
  if (a.inputs.size() > rotaryOperand(a)) {
    Tensor rotated;
    if (!rotaryQueries(a, rotated, /*run=*/false, err)) {
      err = "attention: " + err;
      return false;
    }
  }
  auto fail = [&](const std::string &why) {
    err = "attention: " + why + " (q " + shapeStr(q.shape) + ", k " + shapeStr(k.shape) + ", v " +
          shapeStr(v.shape) + ")";
    return false;
  };
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
    return fail("expects rank-4 q, k, v ([batch, heads, sequence, head dim])");
  // float16 and bfloat16 caches (qopt-kv-state dtype=f16, bf16) are read as float32.
  // FP8 caches (dtype=fp8, fp8_e5m2) as code x the head's scale (operands 5 and 6: float32, one per kv head).
  const bool halfCache = k.dtype == DType::F16 || k.dtype == DType::BF16;
  const bool narrowCache = a.in(4) && q.dtype == DType::F32 && k.dtype == v.dtype &&
                           (halfCache || k.dtype == DType::F8E4M3FN || k.dtype == DType::F8E5M2);
  if ((q.dtype != DType::F32 && q.dtype != DType::F64) || ((k.dtype != q.dtype || v.dtype != q.dtype) && !narrowCache))
    return fail("expects float32 or float64 q, k, v of one dtype (or float32 q over 16-bit or FP8 caches)");
  auto scalesOf = [&](const Tensor *s, const Tensor &c) {
    return s && s->dtype == DType::F32 && s->rank() == 1 && s->shape[0] == c.shape[1];
  };
  if (narrowCache && !halfCache && (!scalesOf(a.in(5), k) || !scalesOf(a.in(6), v)))
    return fail("FP8 caches need one float32 scale per kv head for keys and values (operands 5 and 6)");
  // With a cache (operand 4, the length before this run's keys were appended) k and v are the cache buffers: their
  // batch may exceed q's and the valid keys are its first length + S rows, which run() checks.
  const Tensor *cacheLen = a.in(4);
  if ((!cacheLen && (k.shape[0] != q.shape[0] || v.shape[0] != q.shape[0])) || k.shape[3] != q.shape[3] ||
      v.shape[1] != k.shape[1] || v.shape[2] != k.shape[2] || v.shape[0] != k.shape[0])
    return fail("q, k, v do not agree in batch, kv heads, keys or head dim");
  if (cacheLen && (cacheLen->dtype != DType::I64 || cacheLen->numel() != 1 || a.in(3)))
    return fail("a cache length must be a one-element int64 tensor, and a cache takes no mask");
  if (k.shape[1] == 0 || q.shape[1] % k.shape[1] != 0)
    return fail("query heads must be a multiple of kv heads");
  if (const Tensor *m = a.in(3)) {
    const int64_t full[4] = {q.shape[0], q.shape[1], q.shape[2], k.shape[2]};
    int64_t strides[4];
    if (!maskStrides(*m, full, strides))
      return fail("mask " + shapeStr(m->shape) + " does not broadcast to [batch, heads, queries, keys]");
    if (m->dtype != DType::Bool && m->dtype != q.dtype)
      return fail("mask must be bool or the scores' dtype");
  }
  a.outputs[0]->dtype = q.dtype;
  a.outputs[0]->shape = {q.shape[0], q.shape[1], q.shape[2], v.shape[3]};
  return true;
}

template <typename T> void attentionLoop(const KernelArgs &a) {
  const Tensor &q = *a.in(0), &k = *a.in(1), &v = *a.in(2), *m = a.in(3);
  Tensor &out = *a.outputs[0];
  const int64_t B = q.shape[0], H = q.shape[1], S = q.shape[2], D = q.shape[3];
  const int64_t Hkv = k.shape[1], Dv = v.shape[3], group = H / Hkv, C = k.shape[2];
  const int64_t T_ = a.in(4) ? a.in(4)->as<int64_t>()[0] + S : C; // keys visible to the last query
  const T scale = static_cast<T>(a.attrs->getFloat("scale", 1.0));
  const T maskedValue = static_cast<T>(a.attrs->getFloat("masked_value", -std::numeric_limits<double>::infinity()));
  const bool causal = a.attrs->getInt("causal", 0) != 0, zeroNan = a.attrs->getInt("zero_nan_rows", 0) != 0;
  const int64_t full[4] = {B, H, S, T_};
  int64_t ms[4] = {0, 0, 0, 0};
  if (m)
    maskStrides(*m, full, ms);
  const T *qp = q.as<T>(), *kp = k.as<T>(), *vp = v.as<T>();
  T *op = out.as<T>();
  auto rows = [&](int64_t begin, int64_t end) {
    std::vector<T> p(static_cast<size_t>(T_));
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / (H * S), h = r / S % H, i = r % S, hk = h / group;
      const T *qi = qp + ((b * H + h) * S + i) * D;
      const T *kb = kp + (b * Hkv + hk) * C * D;
      const T *vb = vp + (b * Hkv + hk) * C * Dv;
      T mx = -std::numeric_limits<T>::infinity();
      // Keys past the causal limit get weight exactly 0 (exp(-inf)): skip them.
      const int64_t jEnd = causal ? std::clamp<int64_t>(i + (T_ - S) + 1, 0, T_) : T_;
      for (int64_t j = 0; j < jEnd; ++j) {
        T s = 0;
        for (int64_t d = 0; d < D; ++d)
          s += qi[d] * kb[j * D + d];
        s *= scale;
        if (m) {
          int64_t mi = b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3];
          if (m->dtype == DType::Bool)
            s = m->as<uint8_t>()[mi] ? s : maskedValue;
          else
            s += m->as<T>()[mi];
        }
        p[j] = s;
        mx = std::max(mx, s);
      }
      if (std::isinf(mx) && mx < 0)
        mx = 0; // every score -inf: exp gives 0 everywhere and the row is NaN, as the softmax kernel's
      T sum = 0;
      for (int64_t j = 0; j < jEnd; ++j)
        sum += p[j] = std::exp(p[j] - mx);
      const T inv = T(1) / sum;
      T *o = op + ((b * H + h) * S + i) * Dv;
      std::fill(o, o + Dv, T(0));
      bool nan = jEnd == 0 && T_ > 0; // every key masked: 0 / 0, as the softmax kernel gives
      for (int64_t j = 0; j < jEnd; ++j) {
        const T w = p[j] * inv;
        nan |= std::isnan(w);
        for (int64_t d = 0; d < Dv; ++d)
          o[d] += w * vb[j * Dv + d];
      }
      if (nan)
        std::fill(o, o + Dv, zeroNan ? T(0) : std::numeric_limits<T>::quiet_NaN());
    }
  };
  ThreadPool *pool = a.pool;
  if (pool && B * H * S * T_ * (D + Dv) >= (1 << 15))
    pool->parallelFor(B * H * S, rows);
  else
    rows(0, B * H * S);
}

// float32: per (batch, head) the scores Q K^T and the product P V go through the blocked GEMM (as the decomposed
// graph's matmuls do), the masked softmax between them row by row. Work is split over (batch, head) pairs.
void attentionGemm(const KernelArgs &a) {
  const Tensor &q = *a.in(0), &k = *a.in(1), &v = *a.in(2), *m = a.in(3);
  const int64_t B = q.shape[0], H = q.shape[1], S = q.shape[2], D = q.shape[3];
  const int64_t Hkv = k.shape[1], Dv = v.shape[3], group = H / Hkv, C = k.shape[2];
  const int64_t T_ = a.in(4) ? a.in(4)->as<int64_t>()[0] + S : C;
  const float scale = static_cast<float>(a.attrs->getFloat("scale", 1.0));
  const float maskedValue =
      static_cast<float>(a.attrs->getFloat("masked_value", -std::numeric_limits<double>::infinity()));
  const bool causal = a.attrs->getInt("causal", 0) != 0, zeroNan = a.attrs->getInt("zero_nan_rows", 0) != 0;
  const int64_t full[4] = {B, H, S, T_};
  int64_t ms[4] = {0, 0, 0, 0};
  if (m)
    maskStrides(*m, full, ms);
  const float *qp = q.as<float>(), *kp = k.as<float>(), *vp = v.as<float>();
  float *op = a.outputs[0]->as<float>();
  auto heads = [&](int64_t begin, int64_t end) {
    std::vector<float> p(static_cast<size_t>(S * T_));
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H, hk = h / group;
      const float *kb = kp + (b * Hkv + hk) * C * D, *vb = vp + (b * Hkv + hk) * C * Dv;
      sgemm(false, true, S, T_, D, 1.0f, qp + bh * S * D, D, kb, D, 0.0f, p.data(), T_, nullptr);
      for (int64_t i = 0; i < S; ++i) {
        float *row = p.data() + i * T_;
        const int64_t jEnd = causal ? std::clamp<int64_t>(i + (T_ - S) + 1, 0, T_) : T_;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < jEnd; ++j) {
          float s = row[j] * scale;
          if (m) {
            int64_t mi = b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3];
            if (m->dtype == DType::Bool)
              s = m->as<uint8_t>()[mi] ? s : maskedValue;
            else
              s += m->as<float>()[mi];
          }
          row[j] = s;
          mx = std::max(mx, s);
        }
        if (std::isinf(mx) && mx < 0)
          mx = 0; // every score -inf: the row is NaN below, as the softmax kernel's
        float sum = 0;
        for (int64_t j = 0; j < jEnd; ++j)
          sum += row[j] = std::exp(row[j] - mx);
        const float inv = 1.0f / sum;
        bool nan = jEnd == 0 && T_ > 0;
        for (int64_t j = 0; j < jEnd; ++j) {
          row[j] *= inv;
          nan |= std::isnan(row[j]);
        }
        std::fill(row + jEnd, row + T_, 0.0f);
        if (nan)
          std::fill(row, row + T_, zeroNan ? 0.0f : std::numeric_limits<float>::quiet_NaN());
      }
      sgemm(false, false, S, Dv, T_, 1.0f, p.data(), T_, vb, Dv, 0.0f, op + bh * S * Dv, Dv, nullptr);
    }
  };
  if (a.pool && B * H > 1 && B * H * S * T_ * (D + Dv) >= (1 << 15))
    a.pool->parallelFor(B * H, heads);
  else
    heads(0, B * H);
}

bool attentionRun(const KernelArgs &a, std::string &err) {
  if (const Tensor *len = a.in(4)) {
    const Tensor &q = *a.in(0), &k = *a.in(1);
    const int64_t n = len->as<int64_t>()[0];
    if (n < 0 || n > k.shape[2] - q.shape[2] || q.shape[0] > k.shape[0]) {
      err = "attention: " + std::to_string(q.shape[2]) + " queries after " + std::to_string(n) +
            " cached positions (batch " + std::to_string(q.shape[0]) + ") do not fit a cache of " +
            shapeStr(k.shape);
      return false;
    }
  }
  if (a.in(0)->rank() == 4 && a.in(0)->numel() == 0)
    return true;
  Tensor rotated;
  std::vector<uint8_t> storage;
  KernelArgs args = a;
  if (a.inputs.size() > rotaryOperand(a)) {
    rotated = *a.in(0);
    storage.resize(rotated.bytes());
    rotated.data = storage.data();
    if (!rotaryQueries(a, rotated, /*run=*/true, err))
      return false;
    args.inputs[0] = &rotated;
  }
  // 16-bit and FP8 caches: the keys this run reads (the first cache_length + S rows of each plane, which the check
  // above keeps within the capacity) widened to float32, as caches of exactly those rows (no copy of the unread
  // rest); FP8 codes times their head's scale.
  Tensor kWide, vWide;
  std::vector<float> kStore, vStore;
  const DType cacheType = a.in(1)->dtype;
  if (cacheType == DType::F16 || cacheType == DType::BF16 || cacheType == DType::F8E4M3FN ||
      cacheType == DType::F8E5M2) {
    const int64_t T_ = a.in(4)->as<int64_t>()[0] + a.in(0)->shape[2];
    const Fp8Format format = cacheType == DType::F8E5M2 ? Fp8Format::E5M2 : Fp8Format::E4M3FN;
    auto widen = [&](const Tensor &c, const Tensor *scales, Tensor &wide, std::vector<float> &store) {
      const int64_t planes = c.shape[0] * c.shape[1], C = c.shape[2], D = c.shape[3];
      wide = c;
      wide.dtype = DType::F32;
      wide.shape[2] = T_;
      store.resize(static_cast<size_t>(planes * T_ * D));
      wide.data = store.data();
      if (cacheType == DType::F16 || cacheType == DType::BF16) {
        const uint16_t *src = c.as<uint16_t>();
        for (int64_t p = 0; p < planes; ++p)
          (cacheType == DType::BF16 ? bf16ToFloatRow : halfToFloatRow)(src + p * C * D, T_ * D,
                                                                       store.data() + p * T_ * D);
        return;
      }
      float table[256];
      const uint8_t *src = c.as<uint8_t>();
      for (int64_t p = 0; p < planes; ++p) {
        const float sc = scales->as<float>()[p % c.shape[1]];
        for (int code = 0; code < 256; ++code)
          table[code] = fp8ToFloat(static_cast<uint8_t>(code), format) * sc;
        for (int64_t i = 0; i < T_ * D; ++i)
          store[p * T_ * D + i] = table[src[p * C * D + i]];
      }
    };
    widen(*a.in(1), a.in(5), kWide, kStore);
    widen(*a.in(2), a.in(6), vWide, vStore);
    args.inputs[1] = &kWide;
    args.inputs[2] = &vWide;
  }
  if (a.in(0)->dtype == DType::F32)
    attentionGemm(args);
  else
    attentionLoop<double>(args);
  return true;
}

const KernelFamily kKernels[] = {
    {"attention", 3, 9, 1, 0, attentionInfer, attentionRun,
     "softmax(scale * q k^T, masked) v with grouped kv heads; optional bool or additive mask, or a KV cache length; "
     "float16 or FP8 caches (an FP8 one's key and value scales per kv head: operands 5 and 6); optional rotary "
     "queries (positions, inv_freq, the last two operands; `rotary_style`)"},
};

} // namespace

void registerAttentionKernels(std::vector<const KernelFamily *> &out) { appendKernels(out, kKernels); }

} // namespace qopt::num
