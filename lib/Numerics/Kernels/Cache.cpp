//===- Cache.cpp - kernels that update session state in place ---------------===//
//
// A decoder's KV cache lives in state the session keeps between runs: a buffer of the cache's full capacity
// (`[batch, kv heads, max context, head dim]`) and a one-element int64 length, the positions filled so far. Each
// run appends its new keys and values at that length (kv_append) and, once every layer has read the cache,
// advances the length by the tokens it fed (kv_advance, reading the new entries' shape). Both write their first operand in place
// (KernelFamily::inPlace); their result is that operand after the write.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Fp8.h"
#include "qopt/Numerics/Kernels.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace qopt::num {
namespace {

// The length's dtype and shape (what the shape functions check: they see device values, whose data they must not
// read).
bool checkLength(const Tensor &len, std::string &err, const char *kernel) {
  if (len.dtype != DType::I64 || len.numel() != 1) {
    err = std::string(kernel) + ": the cache length must be a one-element int64 tensor, got " +
          dtypeName(len.dtype) + shapeStr(len.shape);
    return false;
  }
  return true;
}

bool readLength(const Tensor &len, int64_t &out, std::string &err, const char *kernel) {
  if (!checkLength(len, err, kernel))
    return false;
  out = len.data ? len.as<int64_t>()[0] : 0;
  return true;
}

// The FP8 format of a cache's dtype, or none.
bool cacheFp8(DType t, Fp8Format &f) {
  if (t != DType::F8E4M3FN && t != DType::F8E5M2)
    return false;
  f = t == DType::F8E4M3FN ? Fp8Format::E4M3FN : Fp8Format::E5M2;
  return true;
}

// kv_append(cache, new, length[, scales[, offsets]]) {axis}: cache[..., length : length + S, ...] = new along
// `axis`. Dims before the axis other than the first (batch) and all dims after it must match; the batch may be
// smaller than the cache's. An FP8 cache (qopt-kv-state dtype=fp8, fp8_e5m2: [batch, kv heads, capacity, head
// dim], axis 2) stores float32 entries as codes of x * (1 / scales[h]), one float32 scale per kv head (operand 3),
// rounded to nearest even and saturated; with offsets (operand 4: float32 [kv heads, head dim], qopt-kv-state's
// centered keys) codes of (x - offsets[h, d]) * (1 / scales[h]).
bool isF32Shaped(const Tensor *t, std::initializer_list<int64_t> shape) {
  return t && t->dtype == DType::F32 && t->shape == std::vector<int64_t>(shape);
}
bool kvAppendInfer(const KernelArgs &a, std::string &err) {
  const Tensor &cache = *a.in(0), &x = *a.in(1);
  int64_t axis = a.attrs->getInt("axis", 2);
  auto fail = [&](const std::string &why) {
    err = "kv_append: " + why + " (cache " + dtypeName(cache.dtype) + shapeStr(cache.shape) + ", new " +
          dtypeName(x.dtype) + shapeStr(x.shape) + ")";
    return false;
  };
  if (x.rank() != cache.rank() || !normalizeAxis(axis, cache.rank()) || axis == 0)
    return fail("expects new entries of the cache's rank and a sequence axis after the batch dim");
  // A float16 cache (qopt-kv-state dtype=f16) stores float32 entries rounded to nearest even, saturated to the
  // largest finite half (as the GPU's conversions do); a bfloat16 one (dtype=bf16) rounded to nearest even.
  Fp8Format format;
  const bool fp8 = cacheFp8(cache.dtype, format);
  if (x.dtype != cache.dtype &&
      !(x.dtype == DType::F32 && (cache.dtype == DType::F16 || cache.dtype == DType::BF16 || fp8)))
    return fail("the new entries' dtype differs from the cache's (a 16-bit or FP8 cache takes float32 entries)");
  if (fp8 && (cache.rank() != 4 || axis != 2 || !isF32Shaped(a.in(3), {cache.shape[1]})))
    return fail("an FP8 cache is [batch, kv heads, capacity, head dim], appended along axis 2, with one float32 "
                "scale per kv head (operand 3)");
  if ((!fp8 && a.in(3)) || (a.in(4) && !isF32Shaped(a.in(4), {cache.shape[1], cache.shape[3]})))
    return fail("scales and offsets go with an FP8 cache, offsets float32 [kv heads, head dim]");
  for (int64_t d = 1; d < cache.rank(); ++d)
    if (d != axis && x.shape[d] != cache.shape[d])
      return fail("dim " + std::to_string(d) + " differs");
  if (!checkLength(*a.in(2), err, "kv_append"))
    return false;
  a.outputs[0]->dtype = cache.dtype;
  a.outputs[0]->shape = cache.shape;
  return true;
}

bool kvAppendRun(const KernelArgs &a, std::string &err) {
  const Tensor &x = *a.in(1);
  Tensor &cache = *a.outputs[0]; // the same memory as input 0
  int64_t axis = a.attrs->getInt("axis", 2);
  normalizeAxis(axis, cache.rank());
  int64_t len;
  readLength(*a.in(2), len, err, "kv_append");
  const int64_t capacity = cache.shape[axis], S = x.shape[axis];
  if (len < 0 || len > capacity || S > capacity - len) {
    err = "kv_append: the cache holds " + std::to_string(capacity) + " positions; " + std::to_string(S) +
          " new ones at position " + std::to_string(len) + " do not fit (the sequence reached the compiled "
          "context bound)";
    return false;
  }
  if (x.shape[0] > cache.shape[0]) {
    err = "kv_append: batch " + std::to_string(x.shape[0]) + " exceeds the cache's " + std::to_string(cache.shape[0]);
    return false;
  }
  int64_t outer = x.shape[0], elems = 1;
  for (int64_t d = 1; d < axis; ++d)
    outer *= x.shape[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d)
    elems *= x.shape[d];
  Fp8Format format;
  if (cacheFp8(cache.dtype, format)) { // [batch, heads, capacity, head dim]: outer runs over batch x heads
    const float *scales = a.in(3)->as<float>(), *offsets = a.in(4) ? a.in(4)->as<float>() : nullptr;
    uint8_t *dst = cache.as<uint8_t>();
    const float *src = x.as<float>();
    const int64_t heads = cache.shape[1];
    for (int64_t o = 0; o < outer; ++o) {
      const float inv = 1.0f / scales[o % heads];
      const float *off = offsets ? offsets + (o % heads) * elems : nullptr;
      for (int64_t i = 0; i < S * elems; ++i) {
        const float v = src[o * S * elems + i];
        dst[(o * capacity + len) * elems + i] = floatToFp8((off ? v - off[i % elems] : v) * inv, format);
      }
    }
    return true;
  }
  if (cache.dtype != x.dtype) { // float32 entries into a float16 cache, saturated (a key stays finite), NaN kept;
                                 // into a bfloat16 one, rounded
    uint16_t *dst = cache.as<uint16_t>();
    const float *src = x.as<float>();
    const bool bf16 = cache.dtype == DType::BF16;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < S * elems; ++i) {
        const float v = src[o * S * elems + i];
        dst[(o * capacity + len) * elems + i] =
            bf16 ? floatToBf16(v) : floatToHalf(std::clamp(v, -65504.0f, 65504.0f));
      }
    return true;
  }
  const int64_t inner = elems * static_cast<int64_t>(dtypeSize(x.dtype));
  auto *dst = static_cast<uint8_t *>(cache.data);
  const auto *src = static_cast<const uint8_t *>(x.data);
  for (int64_t o = 0; o < outer && S > 0; ++o)
    std::memcpy(dst + (o * capacity + len) * inner, src + o * S * inner, static_cast<size_t>(S * inner));
  return true;
}

// kv_append_rotary(cache, new, length[, scales[, offsets]], positions, inv_freq) {axis, style}: kv_append of
// rotary(new, positions, inv_freq) {style}, a decoder's keys rotated as they are stored (qopt-fuse-rotary: the
// rotary operands follow the append's). Both families' reference code runs, so the entries equal the two launches'
// bit for bit; the new entries are rotary's [batch, heads, sequence, head dim], the sequence axis 2.
KernelArgs appendOfRotary(const KernelArgs &a, const Tensor *entries) {
  KernelArgs append = a;
  append.inputs.assign(a.inputs.begin(), a.inputs.end() - 2);
  append.inputs[1] = entries;
  return append;
}
KernelArgs rotaryOfAppend(const KernelArgs &a, Tensor &rotated, ThreadPool *pool) {
  const size_t n = a.inputs.size();
  return KernelArgs{{a.in(1), a.in(n - 2), a.in(n - 1)}, {&rotated}, a.attrs, pool};
}

bool kvAppendRotaryInfer(const KernelArgs &a, std::string &err) {
  const KernelFamily *rotary = lookupFamily("rotary");
  Tensor rotated;
  const KernelArgs r = rotaryOfAppend(a, rotated, nullptr);
  if (!rotary->infer(r, err)) {
    err = "kv_append_rotary: " + err;
    return false;
  }
  int64_t axis = a.attrs->getInt("axis", 2);
  if (!normalizeAxis(axis, 4) || axis != 2) {
    err = "kv_append_rotary: appends along axis 2, the sequence of [batch, heads, sequence, head dim], got axis " +
          std::to_string(a.attrs->getInt("axis", 2));
    return false;
  }
  return kvAppendInfer(appendOfRotary(a, a.in(1)), err);
}

bool kvAppendRotaryRun(const KernelArgs &a, std::string &err) {
  Tensor rotated = *a.in(1);
  std::vector<uint8_t> storage(rotated.bytes());
  rotated.data = storage.data();
  if (!lookupFamily("rotary")->reference(rotaryOfAppend(a, rotated, a.pool), err))
    return false;
  return kvAppendRun(appendOfRotary(a, &rotated), err);
}

// kv_advance(length, sizes) {axis}: length += sizes[axis], `sizes` the new entries' shape (a small int64 vector,
// so that the entries themselves need not stay alive until the end of the run).
bool kvAdvanceInfer(const KernelArgs &a, std::string &err) {
  int64_t axis = a.attrs->getInt("axis", 2);
  if (!checkLength(*a.in(0), err, "kv_advance"))
    return false;
  const Tensor &sizes = *a.in(1);
  if (sizes.dtype != DType::I64 || sizes.rank() != 1 || axis < 0 || axis >= sizes.shape[0]) {
    err = "kv_advance: expects the new entries' sizes as a 1-D int64 tensor with an entry at axis " +
          std::to_string(axis) + ", got " + dtypeName(sizes.dtype) + shapeStr(sizes.shape);
    return false;
  }
  a.outputs[0]->dtype = DType::I64;
  a.outputs[0]->shape = a.in(0)->shape;
  return true;
}

bool kvAdvanceRun(const KernelArgs &a, std::string &err) {
  const int64_t n = a.in(1)->as<int64_t>()[a.attrs->getInt("axis", 2)];
  int64_t &len = a.outputs[0]->as<int64_t>()[0];
  if (n < 0 || len < 0 || n > INT64_MAX - len) {
    err = "kv_advance: cannot advance a length of " + std::to_string(len) + " by " + std::to_string(n);
    return false;
  }
  len += n; // kv_append has bounded it by the capacity
  return true;
}

const KernelFamily kKernels[] = {
    {"kv_advance", 2, 2, 1, 0, kvAdvanceInfer, kvAdvanceRun,
     "in place: a cache length += sizes[axis], the new entries' size along the cache's sequence axis", /*inPlace=*/0},
    {"kv_append", 3, 5, 1, 0, kvAppendInfer, kvAppendRun,
     "in place: writes new entries into a cache at its current length along `axis` (float32 entries into a float16 "
     "cache rounded; into an FP8 one as codes of x / scales[kv head], or (x - offsets[kv head, channel]) / "
     "scales[kv head]: operands 3 and 4)",
     /*inPlace=*/0},
    {"kv_append_rotary", 5, 7, 1, 0, kvAppendRotaryInfer, kvAppendRotaryRun,
     "in place: kv_append of the new entries after a rotary embedding (the last two operands: positions, inv_freq; "
     "`style` as rotary's)",
     /*inPlace=*/0},
};

} // namespace

void registerCacheKernels(std::vector<const KernelFamily *> &out) { appendKernels(out, kKernels); }

} // namespace qopt::num
