//===- RaisedKernelsTest.cpp - rms_norm, gelu, gated_act reference kernels -===//
//
// The raised ops' CPU kernels (rms_norm, gelu, gated_act, attention, rotary) against the textbook formulas evaluated here in long double, on random non-zero
// inputs (float32 and float64), and their shape functions' refusals.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Fp8.h"
#include "qopt/Numerics/Kernels.h"
#include "KernelTestBuffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

using namespace qopt::num;

namespace {

using qopt::test::Buffer;
using qopt::test::run;

Buffer randomBuffer(DType dt, Shape shape, std::mt19937 &rng, double lo, double hi) {
  Buffer b(dt, std::move(shape));
  std::uniform_real_distribution<double> d(lo, hi);
  for (int64_t i = 0; i < b.t.numel(); ++i) {
    double v = d(rng);
    b.set(i, v == 0 ? 0.125 : v);
  }
  return b;
}

double tol(DType dt) { return dt == DType::F32 ? 2e-6 : 1e-14; }

class RaisedKernels : public ::testing::TestWithParam<DType> {};

TEST_P(RaisedKernels, RmsNormMatchesFormula) {
  std::mt19937 rng(7);
  const DType dt = GetParam();
  for (Shape shape : {Shape{1, 64}, Shape{3, 17}, Shape{2, 5, 288}}) {
    Buffer x = randomBuffer(dt, shape, rng, -3, 3);
    Buffer w = randomBuffer(dt, {shape.back()}, rng, 0.5, 1.5);
    Attrs attrs;
    attrs.setFloat("epsilon", 1e-5);
    Buffer y = run("rms_norm", {&x.t, &w.t}, attrs);
    ASSERT_EQ(y.t.shape, shape);
    const int64_t n = shape.back();
    for (int64_t row = 0; row < x.t.numel() / n; ++row) {
      long double ss = 0;
      for (int64_t k = 0; k < n; ++k)
        ss += static_cast<long double>(x.get(row * n + k)) * x.get(row * n + k);
      long double inv = 1.0L / std::sqrt(ss / n + 1e-5L);
      for (int64_t k = 0; k < n; ++k) {
        double want = static_cast<double>(x.get(row * n + k) * inv * w.get(k));
        EXPECT_NEAR(y.get(row * n + k), want, tol(dt) * (1 + std::fabs(want))) << "row " << row << " k " << k;
      }
    }
  }
}

TEST_P(RaisedKernels, GeluMatchesFormula) {
  std::mt19937 rng(11);
  const DType dt = GetParam();
  Buffer x = randomBuffer(dt, {4, 33}, rng, -6, 6);
  for (int64_t approx : {0, 1}) {
    Attrs attrs;
    attrs.setInt("approximation", approx);
    Buffer y = run("gelu", {&x.t}, attrs);
    for (int64_t i = 0; i < x.t.numel(); ++i) {
      long double v = x.get(i);
      long double cdf = approx == 0
                            ? 0.5L * (1 + std::erf(v / std::sqrt(2.0L)))
                            : 0.5L * (1 + std::tanh(std::sqrt(2.0L / 3.14159265358979323846L) *
                                                    (v + 0.044715L * v * v * v)));
      double want = static_cast<double>(v * cdf);
      EXPECT_NEAR(y.get(i), want, tol(dt) * (1 + std::fabs(want))) << "approximation " << approx << " x " << v;
    }
  }
}

TEST_P(RaisedKernels, GatedActMatchesFormula) {
  std::mt19937 rng(13);
  const DType dt = GetParam();
  Buffer g = randomBuffer(dt, {3, 40}, rng, -8, 8), u = randomBuffer(dt, {3, 40}, rng, -2, 2);
  for (int64_t act : {0, 1, 2}) {
    Attrs attrs;
    attrs.setInt("activation", act);
    Buffer y = run("gated_act", {&g.t, &u.t}, attrs);
    for (int64_t i = 0; i < g.t.numel(); ++i) {
      long double v = g.get(i), a;
      if (act == 0)
        a = v / (1 + std::exp(-v));
      else if (act == 1)
        a = 0.5L * v * (1 + std::erf(v / std::sqrt(2.0L)));
      else
        a = 0.5L * v * (1 + std::tanh(std::sqrt(2.0L / 3.14159265358979323846L) * (v + 0.044715L * v * v * v)));
      double want = static_cast<double>(a * u.get(i));
      EXPECT_NEAR(y.get(i), want, tol(dt) * (1 + std::fabs(want))) << "activation " << act << " g " << v;
    }
  }
}

// Attention against repeat_kv + softmax(q k^T * scale + mask) v in long double: grouped heads, boolean and additive
// masks, causal masking with more keys than queries (a KV cache), and fully masked rows.
TEST_P(RaisedKernels, AttentionMatchesFormula) {
  std::mt19937 rng(17);
  const DType dt = GetParam();
  const int64_t B = 2, H = 6, Hkv = 2, S = 3, T = 5, D = 4, Dv = 3;
  Buffer q = randomBuffer(dt, {B, H, S, D}, rng, -1, 1), k = randomBuffer(dt, {B, Hkv, T, D}, rng, -1, 1);
  Buffer v = randomBuffer(dt, {B, Hkv, T, Dv}, rng, -2, 2);
  Buffer add = randomBuffer(dt, {B, 1, S, T}, rng, -3, 0);
  Buffer keep(DType::Bool, {1, 1, S, T});
  for (int64_t i = 0; i < S * T; ++i)
    keep.t.as<uint8_t>()[i] = (i * 7 + 3) % 4 != 0; // some keys masked in every row
  for (int variant = 0; variant < 4; ++variant) {
    Attrs attrs;
    attrs.setFloat("scale", 0.5);
    const Tensor *mask = nullptr;
    if (variant == 1)
      mask = &add.t;
    if (variant == 2) {
      mask = &keep.t;
      attrs.setFloat("masked_value", -1e4);
    }
    if (variant == 3)
      attrs.setInt("causal", 1);
    Buffer y = run("attention", {&q.t, &k.t, &v.t, mask}, attrs);
    ASSERT_EQ(y.t.shape, (Shape{B, H, S, Dv}));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < S; ++i) {
          const int64_t hk = h / (H / Hkv);
          std::vector<long double> p(T);
          long double mx = -INFINITY, sum = 0;
          for (int64_t j = 0; j < T; ++j) {
            long double s = 0;
            for (int64_t d = 0; d < D; ++d)
              s += static_cast<long double>(q.get(((b * H + h) * S + i) * D + d)) * k.get(((b * Hkv + hk) * T + j) * D + d);
            s *= 0.5L;
            if (variant == 1)
              s += add.get((b * S + i) * T + j);
            if (variant == 2 && !keep.t.as<uint8_t>()[i * T + j])
              s = -1e4L;
            if (variant == 3 && j > i + (T - S))
              s = -INFINITY;
            p[j] = s;
            mx = std::max(mx, s);
          }
          for (auto &e : p)
            sum += e = std::exp(e - mx);
          for (int64_t d = 0; d < Dv; ++d) {
            long double o = 0;
            for (int64_t j = 0; j < T; ++j)
              o += p[j] / sum * v.get(((b * Hkv + hk) * T + j) * Dv + d);
            double want = static_cast<double>(o);
            EXPECT_NEAR(y.get(((b * H + h) * S + i) * Dv + d), want, 4 * tol(dt) * (1 + std::fabs(want)))
                << "variant " << variant << " b " << b << " h " << h << " i " << i << " d " << d;
          }
        }
  }
  // Every key masked with -inf: the row is NaN, or zeros with zero_nan_rows.
  Buffer none(DType::Bool, {1, 1, S, T});
  Attrs nanAttrs;
  Buffer y = run("attention", {&q.t, &k.t, &v.t, &none.t}, nanAttrs);
  EXPECT_TRUE(std::isnan(y.get(0)));
  nanAttrs.setInt("zero_nan_rows", 1);
  y = run("attention", {&q.t, &k.t, &v.t, &none.t}, nanAttrs);
  for (int64_t i = 0; i < y.t.numel(); ++i)
    ASSERT_EQ(y.get(i), 0.0);
}

// Rotary embeddings against the rotation written out: pairs (i, i + D/2) or (2i, 2i + 1), angle position * freq.
TEST_P(RaisedKernels, RotaryMatchesFormula) {
  std::mt19937 rng(19);
  const DType dt = GetParam();
  const int64_t B = 2, H = 3, S = 5, D = 8, half = D / 2;
  Buffer x = randomBuffer(dt, {B, H, S, D}, rng, -2, 2), f = randomBuffer(dt, {half}, rng, 0.01, 1);
  Buffer pos(DType::I64, {B, S});
  for (int64_t i = 0; i < B * S; ++i)
    pos.t.as<int64_t>()[i] = 3 * i + 1;
  for (int64_t style : {0, 1}) {
    Attrs attrs;
    attrs.setInt("style", style);
    Buffer y = run("rotary", {&x.t, &pos.t, &f.t}, attrs);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < S; ++i)
          for (int64_t j = 0; j < half; ++j) {
            const int64_t base = ((b * H + h) * S + i) * D;
            const int64_t lo = style ? 2 * j : j, hi = style ? 2 * j + 1 : j + half;
            long double th = static_cast<long double>(pos.t.as<int64_t>()[b * S + i]) * f.get(j);
            long double a = x.get(base + lo), c = x.get(base + hi);
            double wantLo = static_cast<double>(a * std::cos(th) - c * std::sin(th));
            double wantHi = static_cast<double>(c * std::cos(th) + a * std::sin(th));
            // float32: the angle itself is rounded to float (as the decomposed graph computes it).
            const double t = dt == DType::F32 ? 2e-5 : 1e-12;
            EXPECT_NEAR(y.get(base + lo), wantLo, t) << "style " << style;
            EXPECT_NEAR(y.get(base + hi), wantHi, t) << "style " << style;
          }
  }
}

// A KV cache in state: keys and values appended chunk by chunk (kv_append, in place, batch 2 in a cache of 3),
// the length advanced (kv_advance), and attention reading the cache with its length equal to attention over the
// keys and values concatenated so far (the graph before qopt-kv-state), causal and not.
TEST_P(RaisedKernels, KvCacheMatchesConcatenation) {
  std::mt19937 rng(23);
  const DType dt = GetParam();
  const int64_t B = 2, Bc = 3, H = 4, Hkv = 2, C = 9, D = 4;
  Buffer kc(dt, {Bc, Hkv, C, D}), vc(dt, {Bc, Hkv, C, D}), len(DType::I64, {1});
  Buffer kAll(dt, {B, Hkv, 0, D}), vAll(dt, {B, Hkv, 0, D});
  // Runs an in-place kernel: its result is operand 0's memory.
  auto update = [&](const char *name, std::vector<const Tensor *> ins, Tensor &state, const Attrs &attrs) {
    const KernelFamily *k = lookupFamily(name);
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->inPlace, 0);
    Tensor out;
    KernelArgs args;
    args.inputs = std::move(ins);
    args.outputs = {&out};
    args.attrs = &attrs;
    std::string err;
    ASSERT_TRUE(inferShapes(*k, args, err)) << err;
    ASSERT_EQ(out.shape, state.shape);
    out.data = state.data;
    ASSERT_TRUE(k->reference(args, err)) << err;
  };
  Attrs axis2;
  axis2.setInt("axis", 2);
  int64_t total = 0;
  for (int64_t S : {3, 1, 2, 1}) {
    Buffer q = randomBuffer(dt, {B, H, S, D}, rng, -1, 1);
    Buffer k = randomBuffer(dt, {B, Hkv, S, D}, rng, -1, 1), v = randomBuffer(dt, {B, Hkv, S, D}, rng, -2, 2);
    update("kv_append", {&kc.t, &k.t, &len.t}, kc.t, axis2);
    update("kv_append", {&vc.t, &v.t, &len.t}, vc.t, axis2);
    kAll = run("concat", {&kAll.t, &k.t}, axis2);
    vAll = run("concat", {&vAll.t, &v.t}, axis2);
    for (int64_t causal : {0, 1}) {
      Attrs attrs;
      attrs.setFloat("scale", 0.5);
      attrs.setInt("causal", causal);
      Buffer want = run("attention", {&q.t, &kAll.t, &vAll.t, nullptr}, attrs);
      Buffer got = run("attention", {&q.t, &kc.t, &vc.t, nullptr, &len.t}, attrs);
      ASSERT_EQ(got.t.shape, want.t.shape);
      for (int64_t i = 0; i < want.t.numel(); ++i)
        ASSERT_NEAR(got.get(i), want.get(i), tol(dt) * (1 + std::fabs(want.get(i)))) << "S " << S << " i " << i;
    }
    Buffer sizes(DType::I64, {4});
    for (int64_t d = 0; d < 4; ++d)
      sizes.t.as<int64_t>()[d] = k.t.shape[d];
    update("kv_advance", {&len.t, &sizes.t}, len.t, axis2);
    total += S;
    ASSERT_EQ(len.t.as<int64_t>()[0], total);
  }
  // The cache rows past the length were never written; the written ones hold the appended entries in order.
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t j = 0; j < C; ++j)
        for (int64_t d = 0; d < D; ++d) {
          double got = kc.get(((b * Hkv + h) * C + j) * D + d);
          ASSERT_EQ(got, j < total ? kAll.get(((b * Hkv + h) * total + j) * D + d) : 0.0) << b << h << j << d;
        }
  // Full: two more positions do not fit a cache of 9 with 7 filled; attention refuses a length past the capacity.
  Buffer k2 = randomBuffer(dt, {B, Hkv, 3, D}, rng, -1, 1), q2 = randomBuffer(dt, {B, H, 3, D}, rng, -1, 1);
  const KernelFamily *append = lookupFamily("kv_append");
  Tensor out = kc.t;
  KernelArgs args;
  args.inputs = {&kc.t, &k2.t, &len.t};
  args.outputs = {&out};
  args.attrs = &axis2;
  std::string err;
  ASSERT_TRUE(inferShapes(*append, args, err)) << err;
  EXPECT_FALSE(append->reference(args, err));
  EXPECT_NE(err.find("kv_append: the cache holds 9 positions; 3 new ones at position 7 do not fit"), std::string::npos)
      << err;
  err.clear();
  Attrs plain;
  run("attention", {&q2.t, &kc.t, &vc.t, nullptr, &len.t}, plain, &err);
  EXPECT_NE(err.find("do not fit a cache of"), std::string::npos) << err;
}

// add_rms_norm and add_layer_norm give the binary add's sum and the norm's rows of that sum, bit for bit,
// broadcasting as the add.
TEST_P(RaisedKernels, AddNormEqualsTheTwoKernels) {
  std::mt19937 rng(29);
  const DType dt = GetParam();
  Buffer w = randomBuffer(dt, {40}, rng, 0.5, 1.5), c = randomBuffer(dt, {40}, rng, -0.5, 0.5);
  Attrs add, eps;
  add.setString("fn", "add");
  eps.setFloat("epsilon", 1e-5);
  for (auto [fused, normName] : {std::pair<const char *, const char *>("add_rms_norm", "rms_norm"),
                                 std::pair<const char *, const char *>("add_layer_norm", "layer_norm")})
  for (Shape bShape : {Shape{3, 40}, Shape{40}}) {
    SCOPED_TRACE(fused);
    const bool layer = std::string(normName) == "layer_norm";
    Buffer a = randomBuffer(dt, {3, 40}, rng, -4, 4), b = randomBuffer(dt, bShape, rng, -4, 4);
    Buffer sum = run("binary", {&a.t, &b.t}, add);
    std::vector<const Tensor *> normIn = {&sum.t, &w.t};
    if (layer)
      normIn.push_back(&c.t);
    Buffer norm = run(normName, normIn, eps);
    const KernelFamily *k = lookupFamily(fused);
    ASSERT_NE(k, nullptr);
    Tensor o0, o1;
    KernelArgs args;
    args.inputs = {&a.t, &b.t, &w.t};
    if (layer)
      args.inputs.push_back(&c.t);
    args.outputs = {&o0, &o1};
    args.attrs = &eps;
    std::string err;
    ASSERT_TRUE(inferShapes(*k, args, err)) << err;
    ASSERT_EQ(o0.shape, sum.t.shape);
    ASSERT_EQ(o1.shape, norm.t.shape);
    Buffer s(o0.dtype, o0.shape), n(o1.dtype, o1.shape);
    args.outputs = {&s.t, &n.t};
    ASSERT_TRUE(k->reference(args, err)) << err;
    for (int64_t i = 0; i < sum.t.numel(); ++i) {
      ASSERT_EQ(s.get(i), sum.get(i)) << i;
      ASSERT_EQ(n.get(i), norm.get(i)) << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(FloatTypes, RaisedKernels, ::testing::Values(DType::F32, DType::F64),
                         [](const auto &info) { return info.param == DType::F32 ? "f32" : "f64"; });

// kv_append of x into `cache` at position `len`, in place (the runtime's KV state), by the reference kernel.
void appendInPlace(Tensor &cache, const Tensor &x, const Tensor &len, const Attrs &attrs,
                   std::vector<const Tensor *> fp8 = {}) {
  Tensor out;
  KernelArgs args;
  args.inputs = {&cache, &x, &len};
  args.inputs.insert(args.inputs.end(), fp8.begin(), fp8.end());
  args.outputs = {&out};
  args.attrs = &attrs;
  std::string err;
  ASSERT_TRUE(inferShapes(*lookupFamily("kv_append"), args, err)) << err;
  ASSERT_EQ(out.dtype, cache.dtype);
  out.data = cache.data;
  ASSERT_TRUE(lookupFamily("kv_append")->reference(args, err)) << err;
}

// Appends 3 positions of random keys and values (key 1 = 7e4, value 2 = -1e9) to the 16-bit caches kc, vc
// ([1, 2, 8, 4], length `len`), checks that each stored entry is `round` of its float32 and that causal attention
// over the caches equals, bit for bit, attention over float32 caches holding `widen` of the stored entries.
void checkHalfCache(Tensor &kc, Tensor &vc, Tensor &len, uint16_t (*round)(float), float (*widen)(uint16_t),
                    std::mt19937 &rng) {
  const int64_t B = 1, H = 4, Hkv = 2, C = 8, D = 4, S = 3;
  Buffer kw(DType::F32, {B, Hkv, C, D}), vw(DType::F32, {B, Hkv, C, D});
  Attrs axis2;
  axis2.setInt("axis", 2);
  Buffer k = randomBuffer(DType::F32, {B, Hkv, S, D}, rng, -3, 3), v = randomBuffer(DType::F32, {B, Hkv, S, D}, rng, -3, 3);
  k.t.as<float>()[1] = 7e4f;
  v.t.as<float>()[2] = -1e9f;
  appendInPlace(kc, k.t, len, axis2);
  appendInPlace(vc, v.t, len, axis2);
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t i = 0; i < S * D; ++i) {
      const int64_t at = h * C * D + i, from = h * S * D + i;
      ASSERT_EQ(kc.as<uint16_t>()[at], round(k.t.as<float>()[from]));
      ASSERT_EQ(vc.as<uint16_t>()[at], round(v.t.as<float>()[from]));
      kw.t.as<float>()[at] = widen(kc.as<uint16_t>()[at]);
      vw.t.as<float>()[at] = widen(vc.as<uint16_t>()[at]);
    }
  Buffer q = randomBuffer(DType::F32, {B, H, S, D}, rng, -1, 1);
  Attrs attrs;
  attrs.setFloat("scale", 0.5);
  attrs.setInt("causal", 1);
  Buffer got = run("attention", {&q.t, &kc, &vc, nullptr, &len}, attrs);
  Buffer want = run("attention", {&q.t, &kw.t, &vw.t, nullptr, &len}, attrs);
  ASSERT_EQ(got.t.shape, want.t.shape);
  EXPECT_EQ(std::memcmp(got.t.data, want.t.data, want.t.bytes()), 0);
}

// A float16 KV cache (qopt-kv-state dtype=f16): kv_append stores float32 entries rounded to float16 (nearest even,
// saturated to the largest finite half) and attention over it equals attention over a float32 cache holding those
// rounded values, bit for bit; a float16 cache takes no float64 entries and a float32 cache no float16 ones.
TEST(RaisedKernelShapes, Float16CacheHoldsRoundedEntries) {
  std::mt19937 rng(43);
  const int64_t B = 1, Hkv = 2, C = 8, D = 4;
  Buffer kc(DType::F16, {B, Hkv, C, D}), vc(DType::F16, {B, Hkv, C, D}), len(DType::I64, {1});
  checkHalfCache(kc.t, vc.t, len.t,
                 [](float x) { return floatToHalf(std::min(std::max(x, -65504.0f), 65504.0f)); }, halfToFloat, rng);
  EXPECT_EQ(kc.t.as<uint16_t>()[1], 0x7BFF); // 7e4, past float16's range: saturated to +-65504, not infinite
  EXPECT_EQ(vc.t.as<uint16_t>()[2], 0xFBFF);
  // Refusals.
  Attrs axis2;
  axis2.setInt("axis", 2);
  Buffer x64 = randomBuffer(DType::F64, {B, Hkv, 1, D}, rng, -1, 1);
  Buffer x16(DType::F16, {B, Hkv, 1, D}), c32(DType::F32, {B, Hkv, C, D});
  std::string err;
  run("kv_append", {&kc.t, &x64.t, &len.t}, axis2, &err);
  EXPECT_NE(err.find("the new entries' dtype differs from the cache's (a 16-bit or FP8 cache takes float32 entries)"),
            std::string::npos)
      << err;
  err.clear();
  run("kv_append", {&c32.t, &x16.t, &len.t}, axis2, &err);
  EXPECT_NE(err.find("the new entries' dtype differs from the cache's"), std::string::npos) << err;
}

// A bfloat16 KV cache (qopt-kv-state dtype=bf16, --act-dtype=bf16): kv_append stores float32 entries rounded to
// bfloat16 (nearest even; float32's range, so 7e4 and -1e9 stay finite, unsaturated) and attention over it equals
// attention over a float32 cache holding those rounded values, bit for bit.
TEST(RaisedKernelShapes, BFloat16CacheHoldsRoundedEntries) {
  std::mt19937 rng(44);
  Buffer kc(DType::BF16, {1, 2, 8, 4}), vc(DType::BF16, {1, 2, 8, 4}), len(DType::I64, {1});
  checkHalfCache(kc.t, vc.t, len.t, floatToBf16, bf16ToFloat, rng);
  EXPECT_EQ(bf16ToFloat(kc.t.as<uint16_t>()[1]), 70144.0f);      // 7e4 to 8 significant bits: 137 x 512
  EXPECT_EQ(bf16ToFloat(vc.t.as<uint16_t>()[2]), -998244352.0f); // -238 x 2^22
}

// An FP8 KV cache (qopt-kv-state dtype=fp8, fp8_e5m2): kv_append stores each float32 entry as the code whose value
// times its kv head's scale is nearest the entry (found here by searching all 256 codes; saturated past the
// format's largest value), and attention over it equals attention over a float32 cache holding code x scale, bit
// for bit; a cache without one scale per kv head is refused, by kv_append and by attention.
// Causal attention of queries q (scale 0.5) over FP8 caches kc / vc with their per-kv-head scales, and over the
// float32 caches kw / vw they are meant to equal: {over the codes, over the floats}.
// Float32 values (an FP8 cache's scales, key offsets) as a tensor of this shape.
Buffer floatBuffer(const std::vector<double> &values, Shape shape) {
  Buffer b(DType::F32, std::move(shape));
  for (size_t i = 0; i < values.size(); ++i)
    b.t.as<float>()[i] = static_cast<float>(values[i]);
  return b;
}

std::pair<Buffer, Buffer> attentionOverCaches(const Buffer &q, const Buffer &kc, const Buffer &vc, const Buffer &kw,
                                              const Buffer &vw, const Buffer &len, const std::vector<double> &kScales,
                                              const std::vector<double> &vScales) {
  Attrs attrs;
  attrs.setFloat("scale", 0.5);
  attrs.setInt("causal", 1);
  const int64_t heads = static_cast<int64_t>(kScales.size());
  const Buffer ks = floatBuffer(kScales, {heads}), vs = floatBuffer(vScales, {heads});
  return {run("attention", {&q.t, &kc.t, &vc.t, nullptr, &len.t, &ks.t, &vs.t}, attrs),
          run("attention", {&q.t, &kw.t, &vw.t, nullptr, &len.t}, attrs)};
}

TEST(RaisedKernelShapes, Fp8CacheHoldsScaledCodes) {
  std::mt19937 rng(47);
  const int64_t B = 1, H = 4, Hkv = 2, C = 8, D = 4, S = 3;
  for (DType dt : {DType::F8E4M3FN, DType::F8E5M2}) {
    const Fp8Format format = dt == DType::F8E4M3FN ? Fp8Format::E4M3FN : Fp8Format::E5M2;
    SCOPED_TRACE(dtypeName(dt));
    const std::vector<double> kScales = {0.01, 0.002}, vScales = {0.5, 0.0625};
    Buffer kc(dt, {B, Hkv, C, D}), vc(dt, {B, Hkv, C, D}), len(DType::I64, {1});
    Buffer kw(DType::F32, {B, Hkv, C, D}), vw(DType::F32, {B, Hkv, C, D});
    Buffer k = randomBuffer(DType::F32, {B, Hkv, S, D}, rng, -3, 3);
    Buffer v = randomBuffer(DType::F32, {B, Hkv, S, D}, rng, -3, 3);
    k.t.as<float>()[1] = 1e6f; // past the largest code: saturated
    auto append = [&](Tensor &cache, const Tensor &x, const std::vector<double> &scales) {
      Attrs attrs;
      attrs.setInt("axis", 2);
      const Buffer sc = floatBuffer(scales, {Hkv});
      appendInPlace(cache, x, len.t, attrs, {&sc.t});
    };
    append(kc.t, k.t, kScales);
    append(vc.t, v.t, vScales);
    auto check = [&](const Tensor &cache, const Tensor &x, const std::vector<double> &scales, Tensor &wide) {
      for (int64_t h = 0; h < Hkv; ++h)
        for (int64_t i = 0; i < S * D; ++i) {
          const int64_t at = h * C * D + i;
          const float entry = x.as<float>()[h * S * D + i], sc = static_cast<float>(scales[h]);
          const float got = fp8ToFloat(cache.as<uint8_t>()[at], format) * sc;
          float best = 0, bestErr = INFINITY; // the nearest finite code value
          for (int code = 0; code < 256; ++code) {
            const float c = fp8ToFloat(static_cast<uint8_t>(code), format);
            if (std::isfinite(c) && std::fabs(c * sc - entry) < bestErr)
              best = c * sc, bestErr = std::fabs(c * sc - entry);
          }
          ASSERT_LE(std::fabs(got - entry), bestErr * (1 + 1e-6f)) << "entry " << entry << " got " << got
                                                                     << " nearest " << best;
          wide.as<float>()[at] = got;
        }
    };
    check(kc.t, k.t, kScales, kw.t);
    check(vc.t, v.t, vScales, vw.t);
    EXPECT_EQ(kw.t.as<float>()[1], fp8Max(format) * 0.01f);
    Buffer q = randomBuffer(DType::F32, {B, H, S, D}, rng, -1, 1);
    auto [got, want] = attentionOverCaches(q, kc, vc, kw, vw, len, kScales, vScales);
    ASSERT_EQ(got.t.shape, want.t.shape);
    EXPECT_EQ(std::memcmp(got.t.data, want.t.data, want.t.bytes()), 0);
    std::string err;
    Attrs attrs; // no FP8 scales
    attrs.setFloat("scale", 0.5);
    attrs.setInt("causal", 1);
    run("attention", {&q.t, &kc.t, &vc.t, nullptr, &len.t}, attrs, &err);
    EXPECT_NE(err.find("FP8 caches need one float32 scale per kv head for keys and values (operands 5 and 6)"),
              std::string::npos)
        << err;
    err.clear();
    Attrs axis2;
    axis2.setInt("axis", 2);
    const Buffer oneScale = floatBuffer({1.0}, {1});
    run("kv_append", {&kc.t, &k.t, &len.t, &oneScale.t}, axis2, &err);
    EXPECT_NE(err.find("with one float32 scale per kv head (operand 3)"), std::string::npos) << err;
    err.clear();
    run("kv_append", {&kc.t, &k.t, &len.t}, axis2, &err);
    EXPECT_NE(err.find("with one float32 scale per kv head (operand 3)"), std::string::npos) << err;
  }
}

// Centered FP8 keys (qopt-kv-state center-keys): kv_append with `offsets` stores the code nearest (x - offsets[h,
// d]) / scale, and attention over those codes (scores shifted by q . offsets, the same for all of a query's keys)
// equals attention over float32 keys code x scale + offset up to float rounding; offsets must be one per kv head
// and channel.
TEST(RaisedKernelShapes, CenteredFp8KeysShiftEveryScoreOfAQuery) {
  std::mt19937 rng(53);
  const int64_t B = 1, H = 4, Hkv = 2, C = 8, D = 4, S = 5;
  const std::vector<double> scales = {0.01, 0.02}, vScales = {0.01, 0.01};
  std::vector<double> offsets;
  for (int64_t i = 0; i < Hkv * D; ++i)
    offsets.push_back(static_cast<float>(20.0 - 7.5 * static_cast<double>(i))); // channel biases far above the spread
  Buffer kc(DType::F8E4M3FN, {B, Hkv, C, D}), vc(DType::F8E4M3FN, {B, Hkv, C, D}), len(DType::I64, {1});
  Buffer kw(DType::F32, {B, Hkv, C, D}), vw(DType::F32, {B, Hkv, C, D});
  Buffer k = randomBuffer(DType::F32, {B, Hkv, S, D}, rng, -3, 3);
  Buffer v = randomBuffer(DType::F32, {B, Hkv, S, D}, rng, -3, 3);
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t i = 0; i < S * D; ++i)
      k.t.as<float>()[h * S * D + i] += static_cast<float>(offsets[h * D + i % D]);
  Attrs axis2;
  axis2.setInt("axis", 2);
  const Buffer ks = floatBuffer(scales, {Hkv}), vs = floatBuffer(vScales, {Hkv}),
               ko = floatBuffer(offsets, {Hkv, D});
  appendInPlace(kc.t, k.t, len.t, axis2, {&ks.t, &ko.t});
  appendInPlace(vc.t, v.t, len.t, axis2, {&vs.t});
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t i = 0; i < S * D; ++i) {
      const int64_t at = h * C * D + i;
      const float sc = static_cast<float>(scales[h]), off = static_cast<float>(offsets[h * D + i % D]);
      const float centered = k.t.as<float>()[h * S * D + i] - off;
      const float got = fp8ToFloat(kc.t.as<uint8_t>()[at], Fp8Format::E4M3FN) * sc;
      float bestErr = INFINITY;
      for (int code = 0; code < 256; ++code) {
        const float c = fp8ToFloat(static_cast<uint8_t>(code), Fp8Format::E4M3FN);
        if (std::isfinite(c))
          bestErr = std::min(bestErr, std::fabs(c * sc - centered));
      }
      ASSERT_LE(std::fabs(got - centered), bestErr * (1 + 1e-6f)) << "entry " << centered << " got " << got;
      kw.t.as<float>()[at] = got + off;
      vw.t.as<float>()[at] = fp8ToFloat(vc.t.as<uint8_t>()[at], Fp8Format::E4M3FN) * static_cast<float>(vScales[h]);
    }
  Buffer q = randomBuffer(DType::F32, {B, H, S, D}, rng, -1, 1);
  auto [got, want] = attentionOverCaches(q, kc, vc, kw, vw, len, scales, vScales);
  ASSERT_EQ(got.t.shape, want.t.shape);
  for (int64_t i = 0; i < want.t.numel(); ++i)
    EXPECT_NEAR(got.t.as<float>()[i], want.t.as<float>()[i], 1e-5f) << i;
  std::string err;
  const Buffer twoOffsets = floatBuffer({1.0, 2.0}, {2});
  run("kv_append", {&kc.t, &k.t, &len.t, &ks.t, &twoOffsets.t}, axis2, &err);
  EXPECT_NE(err.find("offsets float32 [kv heads, head dim]"), std::string::npos) << err;
  err.clear();
  Buffer c32(DType::F32, {B, Hkv, C, D});
  run("kv_append", {&c32.t, &k.t, &len.t, &ks.t}, axis2, &err);
  EXPECT_NE(err.find("scales and offsets go with an FP8 cache"), std::string::npos) << err;
}

// linear_split gives each layer's product (and with a bias, the binary add of its bias) bit for bit.
TEST(RaisedKernelShapes, LinearSplitEqualsTheLayers) {
  std::mt19937 rng(41);
  Buffer x = randomBuffer(DType::F32, {3, 16}, rng, -2, 2);
  Buffer wq = randomBuffer(DType::F32, {16, 8}, rng, -1, 1), wk = randomBuffer(DType::F32, {16, 4}, rng, -1, 1);
  Buffer bias = randomBuffer(DType::F32, {12}, rng, -1, 1);
  Buffer w(DType::F32, {16, 12}), bq(DType::F32, {8}), bk(DType::F32, {4});
  for (int64_t k = 0; k < 16; ++k)
    for (int64_t n = 0; n < 12; ++n)
      w.t.as<float>()[k * 12 + n] = n < 8 ? wq.t.as<float>()[k * 8 + n] : wk.t.as<float>()[k * 4 + n - 8];
  for (int64_t n = 0; n < 12; ++n)
    (n < 8 ? bq.t.as<float>()[n] : bk.t.as<float>()[n - 8]) = bias.t.as<float>()[n];
  Attrs none, add, splits;
  add.setString("fn", "add");
  splits.setInts("splits", {8, 4});
  Buffer q = run("matmul", {&x.t, &wq.t}, none), k = run("matmul", {&x.t, &wk.t}, none);
  Buffer qb = run("binary", {&q.t, &bq.t}, add), kb = run("binary", {&k.t, &bk.t}, add);
  for (bool withBias : {false, true}) {
    const KernelFamily *f = lookupFamily("linear_split");
    ASSERT_NE(f, nullptr);
    Buffer o0(DType::F32, {3, 8}), o1(DType::F32, {3, 4});
    KernelArgs args;
    args.inputs = {&x.t, &w.t};
    if (withBias)
      args.inputs.push_back(&bias.t);
    args.outputs = {&o0.t, &o1.t};
    args.attrs = &splits;
    std::string err;
    ASSERT_TRUE(inferShapes(*f, args, err)) << err;
    ASSERT_TRUE(f->reference(args, err)) << err;
    const Buffer &want0 = withBias ? qb : q, &want1 = withBias ? kb : k;
    for (int64_t i = 0; i < 24; ++i)
      ASSERT_EQ(o0.get(i), want0.get(i)) << i;
    for (int64_t i = 0; i < 12; ++i)
      ASSERT_EQ(o1.get(i), want1.get(i)) << i;
  }
}

TEST(RaisedKernelShapes, Refusals) {
  std::mt19937 rng(3);
  Buffer x = randomBuffer(DType::F32, {2, 8}, rng, -1, 1);
  Buffer w7 = randomBuffer(DType::F32, {7}, rng, -1, 1);
  Buffer u = randomBuffer(DType::F32, {2, 4}, rng, -1, 1);
  std::string err;
  Attrs none;
  run("rms_norm", {&x.t, &w7.t}, none, &err);
  EXPECT_NE(err.find("rms_norm: scale float32[7] must be 1-D with the last dim's size (8)"), std::string::npos)
      << err;
  Attrs bad;
  bad.setInt("activation", 3);
  err.clear();
  run("gated_act", {&x.t, &x.t}, bad, &err);
  EXPECT_NE(err.find("activation must be 0 (silu), 1 (gelu) or 2 (gelu_tanh), got 3"), std::string::npos) << err;
  Attrs silu;
  silu.setInt("activation", 0);
  err.clear();
  run("gated_act", {&x.t, &u.t}, silu, &err);
  EXPECT_NE(err.find("must have one dtype and shape"), std::string::npos) << err;
  Attrs approx;
  approx.setInt("approximation", 2);
  err.clear();
  run("gelu", {&x.t}, approx, &err);
  EXPECT_NE(err.find("gelu: approximation must be 0 (erf) or 1 (tanh), got 2"), std::string::npos) << err;
}

} // namespace
