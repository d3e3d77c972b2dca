//===- QuantTest.cpp - quantization formats and the matmul_q kernel --------===//
//
// Checks the packer against a direct float reference of the format (QuantFormat.h), and that the matmul_q CPU
// kernel equals x * dequantize(W) computed in double, for int4 asymmetric/symmetric and int8, group-wise and
// per-channel, with one and several rows.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Fp8.h"
#include "qopt/Numerics/Kernels.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/ThreadPool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace qopt::num;

namespace {

std::vector<float> randomWeights(int64_t K, int64_t N, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(K * N));
  for (float &v : w)
    v = d(rng);
  w[3] = 0.4f; // an outlier
  return w;
}

TEST(Quant, Int4AsymGroupRoundTripWithinHalfStep) {
  const int64_t K = 64, N = 24, G = 16;
  auto w = randomWeights(K, N, 1);
  quant::QuantizedWeight q;
  std::string err;
  ASSERT_TRUE(quant::quantizeRtn(w.data(), K, N, 4, G, false, q, err)) << err;
  std::vector<float> back(w.size());
  quant::dequantize(q, back.data());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      float scale = q.scales[n * (K / G) + k / G];
      EXPECT_LE(std::fabs(back[k * N + n] - w[k * N + n]), 0.5f * scale + 1e-7f) << k << "," << n;
    }
}

// Groups whose values all lie on one side of 0, or are one repeated value: the asymmetric grid spans
// [min(min, 0), max(max, 0)], so every value is within half a step (a repeated value v = code * scale up to the
// scale's float16 rounding, |error| <= 2^-11 |v|).
TEST(Quant, Int4AsymGroupsAwayFromZero) {
  const int64_t K = 32, N = 3, G = 16;
  std::vector<float> w(static_cast<size_t>(K * N));
  for (int64_t k = 0; k < K; ++k) {
    w[k * N + 0] = 0.2f + 0.1f * static_cast<float>(k % G) / G; // in [0.2, 0.3)
    w[k * N + 1] = -0.7f;                                         // one negative value
    w[k * N + 2] = 0.25f;                                         // one positive value
  }
  quant::QuantizedWeight q;
  std::string err;
  ASSERT_TRUE(quant::quantizeRtn(w.data(), K, N, 4, G, false, q, err)) << err;
  std::vector<float> back(w.size());
  quant::dequantize(q, back.data());
  for (int64_t k = 0; k < K; ++k) {
    EXPECT_LE(std::fabs(back[k * N] - w[k * N]), 0.5f * q.scales[k / G] + 1e-7f) << k;
    EXPECT_NEAR(back[k * N + 1], -0.7f, 0.7f * 0x1p-11f) << k;
    EXPECT_NEAR(back[k * N + 2], 0.25f, 0.25f * 0x1p-11f) << k;
    EXPECT_NE(back[k * N + 1], -0.7f) << k; // -0.7 / 15 is not a float16 value: the rounding is visible
  }
}

// NaN or Inf weights cannot be quantized: every quantizer refuses them with the position of the first one.
TEST(Quant, RejectsNonFiniteWeights) {
  const int64_t K = 32, N = 4;
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    std::vector<float> w(static_cast<size_t>(K * N), 0.1f), h(static_cast<size_t>(K * K), 0.0f);
    for (int64_t k = 0; k < K; ++k)
      h[k * K + k] = 1.0f;
    w[5 * N + 2] = bad;
    quant::QuantizedWeight q;
    std::string err;
    EXPECT_FALSE(quant::quantizeRtn(w.data(), K, N, 4, 16, false, q, err));
    EXPECT_NE(err.find("non-finite value"), std::string::npos) << err;
    EXPECT_NE(err.find("input 5, output 2"), std::string::npos) << err;
    err.clear();
    EXPECT_FALSE(quant::quantizeRtnPerTensor(w.data(), K, N, 8, true, q, err));
    EXPECT_NE(err.find("non-finite value"), std::string::npos) << err;
    err.clear();
    EXPECT_FALSE(quant::quantizeGptq(w.data(), h.data(), K, N, 4, 16, false, {}, q, err));
    EXPECT_NE(err.find("non-finite value"), std::string::npos) << err;
  }
}

// A calibration Hessian with dead input channels (all-zero rows and columns: inputs that were always 0) still
// gives finite weights within the format's range.
TEST(Quant, GptqWithDeadChannelsIsFinite) {
  const int64_t K = 32, N = 8;
  auto w = randomWeights(K, N, 11);
  std::vector<float> h(static_cast<size_t>(K * K), 0.0f);
  for (int64_t k = 0; k < K; ++k)
    if (k % 3 != 0) // every third channel never fired
      h[k * K + k] = 1.0f + 0.1f * static_cast<float>(k);
  quant::QuantizedWeight q;
  std::string err;
  ASSERT_TRUE(quant::quantizeGptq(w.data(), h.data(), K, N, 4, 16, false, {}, q, err)) << err;
  std::vector<float> back(w.size());
  quant::dequantize(q, back.data());
  for (float v : back)
    EXPECT_TRUE(std::isfinite(v));
  for (float s : q.scales)
    EXPECT_TRUE(std::isfinite(s) && s > 0);
}

// int3/int4 scales are float16 values, the codes chosen against them: every quantizer's scales round-trip through
// float16, and each code is the nearest to w / scale with that rounded scale (within half a step of it). A group
// whose scale is below float16's normal range (2^-14) keeps its float32 scale, and the weight stores float32
// scales (halfScales false); int8's per-channel scales are not rounded.
TEST(Quant, NibbleScalesAreFloat16Values) {
  const int64_t K = 64, N = 6, G = 16;
  auto w = randomWeights(K, N, 5);
  std::vector<float> h(static_cast<size_t>(K * K), 0.0f);
  for (int64_t k = 0; k < K; ++k)
    h[k * K + k] = 1.0f + 0.01f * static_cast<float>(k);
  auto isHalf = [](float v) { return halfToFloat(floatToHalf(v)) == v; };
  for (int bits : {3, 4})
    for (bool sym : {false, true})
      for (int method = 0; method < 3; ++method) { // rtn, per tensor, gptq
        quant::QuantizedWeight q;
        std::string err;
        const bool ok = method == 0   ? quant::quantizeRtn(w.data(), K, N, bits, G, sym, q, err)
                        : method == 1 ? quant::quantizeRtnPerTensor(w.data(), K, N, bits, sym, q, err)
                                      : quant::quantizeGptq(w.data(), h.data(), K, N, bits, G, sym, {}, q, err);
        ASSERT_TRUE(ok) << err;
        EXPECT_TRUE(q.halfScales) << bits << sym << method;
        for (float sc : q.scales)
          EXPECT_TRUE(isHalf(sc)) << sc;
        if (method == 0) {
          std::vector<float> back(w.size());
          quant::dequantize(q, back.data());
          for (int64_t k = 0; k < K; ++k)
            for (int64_t n = 0; n < N; ++n)
              EXPECT_LE(std::fabs(back[k * N + n] - w[k * N + n]), 0.5f * q.scales[n * (K / G) + k / G] * 1.0001f);
        }
      }
  // Channel 2's second group: values near 1e-5, a scale of about 1e-6, below float16's normal range.
  for (int64_t k = G; k < 2 * G; ++k)
    w[k * N + 2] = 1e-5f * static_cast<float>(k % 5) - 2e-5f;
  quant::QuantizedWeight q;
  std::string err;
  ASSERT_TRUE(quant::quantizeRtn(w.data(), K, N, 4, G, false, q, err)) << err;
  EXPECT_FALSE(q.halfScales);
  const float tiny = q.scales[2 * (K / G) + 1];
  EXPECT_EQ(tiny, 4e-5f / 15.0f);
  EXPECT_FALSE(isHalf(tiny));
  for (size_t i = 0; i < q.scales.size(); ++i)
    if (static_cast<int64_t>(i) != 2 * (K / G) + 1)
      EXPECT_TRUE(isHalf(q.scales[i])) << i;
  // int8 per channel: float32 scales as computed (max |w| / 127), not rounded.
  w = randomWeights(K, N, 5);
  ASSERT_TRUE(quant::quantizeRtn(w.data(), K, N, 8, K, true, q, err)) << err;
  EXPECT_FALSE(q.halfScales);
  int unrounded = 0;
  for (float sc : q.scales)
    unrounded += isHalf(sc) ? 0 : 1;
  EXPECT_GT(unrounded, 0);
}

TEST(Quant, PackingOrderLowNibbleFirst) {
  // One channel, K = 4, values chosen so that q = [0, 15, 5, 10] with scale 1 / 15 and zero 0.
  float w[4] = {0.0f, 1.0f, 5.0f / 15, 10.0f / 15};
  quant::QuantizedWeight q;
  std::string err;
  ASSERT_TRUE(quant::quantizeRtn(w, 4, 1, 4, 4, false, q, err)) << err;
  ASSERT_EQ(q.data.size(), 2u);
  EXPECT_EQ(q.data[0], 0xF0);
  EXPECT_EQ(q.data[1], 0xA5);
  EXPECT_EQ(q.zeros[0], 0);
}

TEST(Quant, RejectsGroupThatDoesNotDivide) {
  std::vector<float> w(30 * 4, 0.1f);
  quant::QuantizedWeight q;
  std::string err;
  EXPECT_FALSE(quant::quantizeRtn(w.data(), 30, 4, 4, 16, false, q, err));
  EXPECT_NE(err.find("does not divide"), std::string::npos);
}

// FP8 weights: each within half a step of its format (3 mantissa bits for E4M3FN, 2 for E5M2: a relative error of
// at most 2^-4 or 2^-3) above the subnormal range, and each group's largest magnitude maps to the format's largest
// value exactly.
TEST(Quant, Fp8WeightsWithinHalfAStep) {
  const int64_t K = 96, N = 24;
  auto w = randomWeights(K, N, 11);
  for (Fp8Format f : {Fp8Format::E4M3FN, Fp8Format::E5M2}) {
    for (int64_t group : {int64_t{32}, K}) {
      quant::QuantizedWeight q;
      std::string err;
      ASSERT_TRUE(quant::quantizeFp8(w.data(), K, N, f, group, q, err)) << err;
      ASSERT_TRUE(q.fp8);
      ASSERT_EQ(q.data.size(), static_cast<size_t>(K * N));
      ASSERT_EQ(q.scales.size(), static_cast<size_t>(N * (K / group)));
      std::vector<float> wd(w.size());
      quant::dequantize(q, wd.data());
      const double rel = f == Fp8Format::E4M3FN ? 1.0 / 16 : 1.0 / 8;
      const double tiny = f == Fp8Format::E4M3FN ? std::ldexp(1.0, -6) : std::ldexp(1.0, -14); // smallest normal
      for (int64_t n = 0; n < N; ++n)
        for (int64_t g = 0; g < K / group; ++g) {
          const float scale = q.scales[n * (K / group) + g];
          float amax = 0;
          for (int64_t k = g * group; k < (g + 1) * group; ++k) {
            amax = std::max(amax, std::fabs(w[k * N + n]));
            EXPECT_LE(std::fabs(wd[k * N + n] - w[k * N + n]), rel * std::fabs(w[k * N + n]) + tiny * scale)
                << k << "," << n;
          }
          EXPECT_FLOAT_EQ(scale * fp8Max(f), amax);
        }
    }
  }
}

// GPTQ with FP8 codes: with a diagonal Hessian no error moves between inputs, so it equals round-to-nearest FP8
// (quantizeFp8) code for code; with correlated inputs its layer output error ||X (W - Wq)|| is below
// round-to-nearest's; FP8 codes need 8 bits.
TEST(Quant, GptqFp8CodesEqualNearestWithoutCorrelationAndBeatItWith) {
  const int64_t K = 64, N = 16, rows = 256;
  auto w = randomWeights(K, N, 5);
  for (Fp8Format f : {Fp8Format::E4M3FN, Fp8Format::E5M2}) {
    quant::GptqOptions opt;
    opt.fp8 = true;
    opt.fp8Format = f;
    std::vector<float> diag(static_cast<size_t>(K * K), 0.0f);
    for (int64_t k = 0; k < K; ++k)
      diag[k * K + k] = 0.5f + 0.01f * static_cast<float>(k);
    quant::QuantizedWeight g, r;
    std::string err;
    ASSERT_TRUE(quant::quantizeGptq(w.data(), diag.data(), K, N, 8, K, true, opt, g, err)) << err;
    ASSERT_TRUE(quant::quantizeFp8(w.data(), K, N, f, K, r, err)) << err;
    EXPECT_TRUE(g.fp8 && g.fp8Format == f && g.bits == 8);
    EXPECT_EQ(g.data, r.data);
    EXPECT_EQ(g.scales, r.scales);
    // Correlated inputs: x_k = z_0 + 0.3 z_k.
    std::mt19937 rng(9);
    std::normal_distribution<float> nd;
    std::vector<float> X(static_cast<size_t>(rows * K)), h(static_cast<size_t>(K * K), 0.0f);
    for (int64_t i = 0; i < rows; ++i) {
      const float common = nd(rng);
      for (int64_t k = 0; k < K; ++k)
        X[i * K + k] = common + 0.3f * nd(rng);
    }
    for (int64_t a = 0; a < K; ++a)
      for (int64_t b = 0; b < K; ++b) {
        double acc = 0;
        for (int64_t i = 0; i < rows; ++i)
          acc += static_cast<double>(X[i * K + a]) * X[i * K + b];
        h[a * K + b] = static_cast<float>(acc / rows);
      }
    ASSERT_TRUE(quant::quantizeGptq(w.data(), h.data(), K, N, 8, K, true, opt, g, err)) << err;
    auto outputError = [&](const quant::QuantizedWeight &q) {
      std::vector<float> wq(w.size());
      quant::dequantize(q, wq.data());
      double e = 0;
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t n = 0; n < N; ++n) {
          double d = 0;
          for (int64_t k = 0; k < K; ++k)
            d += static_cast<double>(X[i * K + k]) * (w[k * N + n] - wq[k * N + n]);
          e += d * d;
        }
      return e;
    };
    EXPECT_LT(outputError(g), 0.7 * outputError(r)) << (f == Fp8Format::E4M3FN ? "e4m3" : "e5m2");
  }
  quant::GptqOptions opt;
  opt.fp8 = true;
  std::vector<float> h(static_cast<size_t>(K * K), 0.0f);
  for (int64_t k = 0; k < K; ++k)
    h[k * K + k] = 1.0f;
  quant::QuantizedWeight q;
  std::string err;
  EXPECT_FALSE(quant::quantizeGptq(w.data(), h.data(), K, N, 4, K, true, opt, q, err));
  EXPECT_EQ(err, "FP8 codes are 8-bit");
}

struct Case {
  int bits;
  bool symmetric;
  int64_t group, M; // group 0: per channel, -1: per tensor
  int fp8 = 0;      // 8-bit FP8 codes: 1 E4M3FN, 2 E5M2
  int actFp8 = 0;   // FP8 activations too: 1 one static scale, 2 a scale per row
  int actInt8 = 0;  // INT8 activations (int8 weights): the same
  int64_t K = 128;
};

// The int8 activation code of v: the nearest integer in [-127, 127], a tie going to the even one (by comparing
// the two neighbours, independent of the library's rounding call).
float nearestInt8(float v) {
  if (v >= 127.0f)
    return 127.0f;
  if (v <= -127.0f)
    return -127.0f;
  const double lo = std::floor(static_cast<double>(v)), hi = lo + 1;
  const double dl = v - lo, dh = hi - v;
  if (dl != dh)
    return static_cast<float>(dl < dh ? lo : hi);
  return static_cast<float>(std::fmod(lo, 2.0) == 0.0 ? lo : hi);
}

// The FP8 value nearest to v (finite codes only, saturating), by search over all 256 codes: independent of
// floatToFp8's bit manipulation.
float nearestFp8(float v, Fp8Format f) {
  float best = 0.0f;
  for (int c = 0; c < 256; ++c) {
    const float q = fp8ToFloat(static_cast<uint8_t>(c), f);
    if (std::isfinite(q) && std::fabs(q - v) < std::fabs(best - v))
      best = q;
  }
  return best;
}

class QuantMatmul : public ::testing::TestWithParam<Case> {};

TEST_P(QuantMatmul, EqualsDequantizedProduct) {
  const Case c = GetParam();
  const int64_t K = c.K, N = 80, group = c.group > 0 ? c.group : K;
  auto w = randomWeights(K, N, 7);
  quant::QuantizedWeight q;
  std::string err;
  const Fp8Format f8 = c.fp8 == 2 ? Fp8Format::E5M2 : Fp8Format::E4M3FN;
  if (c.fp8)
    ASSERT_TRUE(quant::quantizeFp8(w.data(), K, N, f8, group, q, err)) << err;
  else if (c.group < 0)
    ASSERT_TRUE(quant::quantizeRtnPerTensor(w.data(), K, N, c.bits, c.symmetric, q, err)) << err;
  else
    ASSERT_TRUE(quant::quantizeRtn(w.data(), K, N, c.bits, group, c.symmetric, q, err)) << err;
  std::vector<float> wd(w.size());
  quant::dequantize(q, wd.data());
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> x(static_cast<size_t>(c.M * K));
  for (float &v : x)
    v = d(rng);
  // W8A8: the reference multiplies x rounded to FP8 under its scale (static: 1/64; dynamic: max |row| / max).
  std::vector<float> xr = x;
  const float staticScale = 1.0f / 64;
  if (c.actFp8)
    for (int64_t m = 0; m < c.M; ++m) {
      float amax = 0;
      for (int64_t k = 0; k < K; ++k)
        amax = std::max(amax, std::fabs(x[m * K + k]));
      const float sc = c.actFp8 == 1 ? staticScale : amax / fp8Max(f8);
      for (int64_t k = 0; k < K; ++k)
        xr[m * K + k] = nearestFp8(x[m * K + k] / sc, f8) * sc;
    }
  // INT8: static scale 1/200 (so that |x| > 127/200 saturates), dynamic max |row| / 127.
  const float staticInt8 = 1.0f / 200;
  if (c.actInt8)
    for (int64_t m = 0; m < c.M; ++m) {
      float amax = 0;
      for (int64_t k = 0; k < K; ++k)
        amax = std::max(amax, std::fabs(x[m * K + k]));
      const float sc = c.actInt8 == 1 ? staticInt8 : amax / 127.0f;
      for (int64_t k = 0; k < K; ++k)
        xr[m * K + k] = nearestInt8(x[m * K + k] / sc) * sc;
    }

  Tensor tx{DType::F32, {c.M, K}, x.data()};
  const bool nib = quant::isNibbleFormat(c.bits);
  const DType codes = nib ? DType::U8 : !c.fp8 ? DType::I8 : c.fp8 == 1 ? DType::F8E4M3FN : DType::F8E5M2;
  Tensor tw{codes, {N, nib ? K / 2 : K}, q.data.data()};
  const Shape params = c.group < 0 ? Shape{1, 1} : Shape{N, K / group};
  ASSERT_EQ(q.scales.size(), static_cast<size_t>(params[0] * params[1]));
  // The nibble formats' scales are float16 values, stored as float16 (QuantFormat.h): the kernel reads that
  // layout; float32 storage of the same values must give the same products.
  ASSERT_EQ(q.halfScales, nib);
  std::vector<uint16_t> halves;
  for (float v : q.scales) {
    halves.push_back(floatToHalf(v));
    if (nib)
      ASSERT_EQ(halfToFloat(halves.back()), v);
  }
  Tensor ts{DType::F32, params, q.scales.data()}, tsHalf{DType::F16, params, halves.data()};
  Tensor tz{DType::U8, params, q.zeros.data()};
  Attrs attrs;
  attrs.setInt("bits", c.bits);
  attrs.setInt("group_size", group);
  attrs.setInt("symmetric", c.symmetric);
  if (c.actFp8)
    attrs.setInt("act_fp8", c.actFp8);
  if (c.actInt8)
    attrs.setInt("act_int8", c.actInt8);
  // A static activation scale is operand 6 (float32 [1]), after the absent norm and residual.
  float staticAct = c.actFp8 == 1 ? staticScale : staticInt8;
  Tensor ta{DType::F32, {1}, &staticAct};
  Tensor ty;
  KernelArgs args;
  args.inputs = {&tx, &tw, &ts, q.zeros.empty() ? nullptr : &tz};
  if (c.actFp8 == 1 || c.actInt8 == 1)
    args.inputs.insert(args.inputs.end(), {nullptr, nullptr, &ta});
  args.outputs = {&ty};
  args.attrs = &attrs;
  ThreadPool pool(2);
  args.pool = &pool;
  const KernelFamily *k = lookupFamily("matmul_q");
  ASSERT_NE(k, nullptr);
  ASSERT_TRUE(k->infer(args, err)) << err;
  ASSERT_EQ(ty.shape, (Shape{c.M, N}));
  std::vector<float> y(static_cast<size_t>(c.M * N));
  ty.data = y.data();
  ASSERT_TRUE(k->reference(args, err)) << err;
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double ref = 0;
      for (int64_t kk = 0; kk < K; ++kk)
        ref += static_cast<double>(xr[m * K + kk]) * wd[kk * N + n];
      EXPECT_NEAR(y[m * N + n], ref, 1e-4 + 1e-4 * std::fabs(ref)) << m << "," << n;
    }
  if (nib) { // the same scales as float16: the same floats in, bit-identical products out
    std::vector<float> yHalf(y.size());
    args.inputs[2] = &tsHalf;
    ty.data = yHalf.data();
    ASSERT_TRUE(k->infer(args, err)) << err;
    ty.data = yHalf.data();
    ASSERT_TRUE(k->reference(args, err)) << err;
    EXPECT_EQ(yHalf, y);
  } else { // 8-bit weights keep float32 scales
    args.inputs[2] = &tsHalf;
    EXPECT_FALSE(k->infer(args, err));
    EXPECT_NE(err.find("float16 for int3/int4"), std::string::npos) << err;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantMatmul,
                         ::testing::Values(Case{4, false, 32, 1}, Case{4, false, 32, 7}, Case{4, true, 64, 5},
                                           Case{4, false, 0, 3}, Case{8, true, 0, 1}, Case{8, true, 32, 9},
                                           Case{3, false, 32, 3}, Case{3, true, 32, 1}, Case{4, false, -1, 4},
                                           Case{8, true, -1, 2}, Case{8, true, 0, 3, 1}, Case{8, true, 32, 6, 1},
                                           Case{8, true, 0, 2, 2}, Case{8, true, 0, 3, 1, 1},
                                           Case{8, true, 0, 5, 1, 2}, Case{8, true, 32, 2, 2, 2},
                                           Case{8, true, 0, 3, 0, 0, 1}, Case{8, true, 0, 5, 0, 0, 2},
                                           Case{8, true, 32, 1, 0, 0, 2},
                                           // odd groups (every other one starts on a high nibble); one row of a
                                           // deep matrix (panels of one output channel)
                                           Case{4, false, 7, 1, 0, 0, 0, 126}, Case{4, true, 9, 3, 0, 0, 0, 126},
                                           Case{4, false, 32, 1, 0, 0, 0, 2048},
                                           // even groups of fewer than 16 codes, or with a tail past 16 (the
                                           // vector path's last codes through its table)
                                           Case{4, false, 12, 3, 0, 0, 0, 120}, Case{4, true, 40, 2, 0, 0, 0, 120},
                                           Case{3, false, 40, 1, 0, 0, 0, 120}));

// Every FP8 code of both formats through matmul_q: one-hot rows of x pick single weights, so each result is the
// code's value times its channel's scale exactly (the vector decoding against the format's definition); a row
// holding a NaN code gives NaN results wherever it is read (the decoding must not turn it into a number).
TEST(QuantMatmulFp8, EveryCodeDecodesExactly) {
  for (DType fmt : {DType::F8E4M3FN, DType::F8E5M2}) {
    const Fp8Format f = fmt == DType::F8E4M3FN ? Fp8Format::E4M3FN : Fp8Format::E5M2;
    std::vector<uint8_t> finite;
    for (int c = 0; c < 256; ++c)
      if (std::isfinite(fp8ToFloat(static_cast<uint8_t>(c), f)))
        finite.push_back(static_cast<uint8_t>(c));
    const int64_t K = static_cast<int64_t>(finite.size()) / 16 * 16, N = 3;
    std::vector<uint8_t> codes(static_cast<size_t>(N * K));
    for (int64_t k = 0; k < K; ++k) {
      codes[k] = finite[k];
      codes[K + k] = finite[finite.size() - 1 - k];
      codes[2 * K + k] = finite[(k * 7) % finite.size()];
    }
    codes[2 * K + 20] = fmt == DType::F8E4M3FN ? 0x7F : 0xFE; // a NaN code in the last channel
    std::vector<float> scales = {0.37f, 3.1f, 1.0f}, x(static_cast<size_t>(K * K), 0.0f), y(static_cast<size_t>(K * N));
    for (int64_t m = 0; m < K; ++m)
      x[m * K + m] = 1.0f;
    Tensor tx{DType::F32, {K, K}, x.data()}, tw{fmt, {N, K}, codes.data()}, ts{DType::F32, {N, 1}, scales.data()};
    Tensor ty;
    Attrs attrs;
    attrs.setInt("bits", 8);
    attrs.setInt("group_size", K);
    KernelArgs args;
    args.inputs = {&tx, &tw, &ts, nullptr};
    args.outputs = {&ty};
    args.attrs = &attrs;
    std::string err;
    const KernelFamily *kf = lookupFamily("matmul_q");
    ASSERT_NE(kf, nullptr);
    ASSERT_TRUE(kf->infer(args, err)) << err;
    ty.data = y.data();
    ASSERT_TRUE(kf->reference(args, err)) << err;
    for (int64_t m = 0; m < K; ++m)
      for (int64_t n = 0; n < 2; ++n) {
        const float want = fp8ToFloat(codes[n * K + m], f) * scales[n];
        ASSERT_EQ(y[m * N + n], want) << "code " << int(codes[n * K + m]) << " channel " << n;
      }
    for (int64_t m = 0; m < K; ++m)
      EXPECT_TRUE(std::isnan(y[m * N + 2])) << m;
  }
}

// W8A8's static activation scale is operand 6, float32 [1], exactly when act_fp8 or act_int8 is 1, and positive
// (checked when the kernel runs: the operand is data).
TEST(QuantMatmulActScale, OperandSixOnlyForStaticActivations) {
  const int64_t K = 16, N = 4;
  std::vector<int8_t> codes(static_cast<size_t>(N * K), 3);
  std::vector<float> x(static_cast<size_t>(K), 0.5f), scales(static_cast<size_t>(N), 0.25f), y(N);
  float act = 1.0f / 64, act2[2] = {1.0f, 1.0f};
  Tensor tx{DType::F32, {1, K}, x.data()}, tw{DType::I8, {N, K}, codes.data()}, ts{DType::F32, {N, 1}, scales.data()};
  Tensor ta{DType::F32, {1}, &act}, ta2{DType::F32, {2}, act2}, ty;
  const KernelFamily *k = lookupFamily("matmul_q");
  ASSERT_NE(k, nullptr);
  auto attempt = [&](int64_t actInt8, std::vector<const Tensor *> extra, bool run = false) {
    Attrs attrs;
    attrs.setInt("bits", 8);
    attrs.setInt("group_size", K);
    attrs.setInt("symmetric", 1);
    if (actInt8)
      attrs.setInt("act_int8", actInt8);
    KernelArgs args;
    args.inputs = {&tx, &tw, &ts, nullptr};
    args.inputs.insert(args.inputs.end(), extra.begin(), extra.end());
    args.outputs = {&ty};
    args.attrs = &attrs;
    std::string err;
    if (!k->infer(args, err))
      return err;
    ty.data = y.data();
    if (run && !k->reference(args, err))
      return err;
    return std::string("ok");
  };
  const std::string wrong = "matmul_q: a static activation scale (act_fp8 or act_int8 1) is operand 6, float32 [1], "
                            "and only then";
  EXPECT_EQ(attempt(1, {}), wrong);
  EXPECT_EQ(attempt(1, {nullptr, nullptr, &ta2}), wrong);
  EXPECT_EQ(attempt(2, {nullptr, nullptr, &ta}), wrong);
  EXPECT_EQ(attempt(0, {nullptr, nullptr, &ta}), wrong);
  EXPECT_EQ(attempt(1, {nullptr, nullptr, &ta}, true), "ok");
  // x / (1/64) = 32 rounds to 32 exactly: y = 16 * 0.5 * 3 * 0.25
  EXPECT_EQ(y[0], 6.0f);
  act = 0.0f;
  EXPECT_EQ(attempt(1, {nullptr, nullptr, &ta}, true),
            "matmul_q: the static activation scale (operand 6) must be positive, got 0.000000");
}

// Kernel attributes: a setter replaces the key's value (a case derived from another changes its mode in place).
TEST(KernelAttrs, SettersReplaceAKey) {
  Attrs attrs;
  attrs.setInt("act_int8", 2);
  attrs.setInt("bits", 8);
  attrs.setInt("act_int8", 1);
  attrs.setInts("splits", {1, 2});
  attrs.setInts("splits", {3});
  EXPECT_EQ(attrs.getInt("act_int8", 0), 1);
  std::vector<int64_t> splits;
  ASSERT_TRUE(attrs.getInts("splits", splits));
  EXPECT_EQ(splits, (std::vector<int64_t>{3}));
  EXPECT_EQ(attrs.all().size(), 3u);
}

// int8 activation codes: nearest even on ties, saturation at +-127, NaN to 0.
TEST(QuantFormat, RoundToInt8) {
  EXPECT_EQ(quant::roundToInt8(2.5f), 2.0f);
  EXPECT_EQ(quant::roundToInt8(3.5f), 4.0f);
  EXPECT_EQ(quant::roundToInt8(-2.5f), -2.0f);
  EXPECT_EQ(quant::roundToInt8(126.6f), 127.0f);
  EXPECT_EQ(quant::roundToInt8(1e9f), 127.0f);
  EXPECT_EQ(quant::roundToInt8(-128.0f), -127.0f);
  EXPECT_EQ(quant::roundToInt8(std::nanf("")), 0.0f);
  for (float v = -130.0f; v <= 130.0f; v += 0.125f)
    EXPECT_EQ(quant::roundToInt8(v), nearestInt8(v)) << v;
}

// AWQ's searches against a direct double-precision reference: || X (Q(w') - w) ||^2 of every candidate computed
// column by column with scalar loops, and the searches' picks at the reference's minimum.
std::vector<float> awqInputs(int64_t S, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> X(static_cast<size_t>(S * K));
  for (float &v : X)
    v = d(rng);
  for (int64_t r = 0; r < S; ++r) // activation outliers: what AWQ's scales protect
    X[r * K + 5] *= 25.0f, X[r * K + 17] *= 8.0f;
  return X;
}

// sum over rows and the given columns of (X (B - A))^2, B the round-to-nearest of `w` (K x N), A `ref`.
double awqReferenceError(const std::vector<float> &X, int64_t S, int64_t K, const std::vector<float> &w,
                         const std::vector<float> &ref, const std::vector<float> &inScale, int64_t N, int64_t group) {
  quant::QuantizedWeight q;
  std::string err;
  EXPECT_TRUE(quant::quantizeRtn(w.data(), K, N, 4, group, false, q, err)) << err;
  std::vector<float> back(w.size());
  quant::dequantize(q, back.data());
  double e = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t r = 0; r < S; ++r) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += static_cast<double>(X[r * K + k]) * (back[k * N + n] / inScale[k] - ref[k * N + n]);
      e += acc * acc;
    }
  return e;
}

TEST(Awq, ClipPicksEachChannelsBestRatio) {
  const int64_t S = 24, K = 64, N = 1100, G = 16; // N over two of the search's column tiles
  const auto X = awqInputs(S, K, 3);
  const auto w = randomWeights(K, N, 4);
  std::vector<float> got(w);
  std::string err;
  ASSERT_TRUE(quant::awqClip(X.data(), S, K, got.data(), N, 4, G, false, err)) << err;
  const std::vector<float> ones(K, 1.0f);
  int clipped = 0;
  for (int64_t n = 0; n < N; n += 7) {
    std::vector<float> col(K), pick(K);
    for (int64_t k = 0; k < K; ++k)
      col[k] = w[k * N + n], pick[k] = got[k * N + n];
    double best = -1;
    bool found = false;
    for (int step = 0; step <= 10; ++step) {
      const float ratio = 1.0f - 0.05f * static_cast<float>(step);
      std::vector<float> c(col);
      for (int64_t g = 0; g < K / G; ++g) {
        float amax = 0;
        for (int64_t k = g * G; k < (g + 1) * G; ++k)
          amax = std::max(amax, std::fabs(c[k]));
        for (int64_t k = g * G; k < (g + 1) * G; ++k)
          c[k] = std::clamp(c[k], -amax * ratio, amax * ratio);
      }
      const double e = awqReferenceError(X, S, K, c, col, ones, 1, G);
      best = best < 0 ? e : std::min(best, e);
      found = found || c == pick;
      clipped += step > 0 && c == pick && c != col;
    }
    EXPECT_TRUE(found) << "channel " << n << ": the result is not one of the clipped candidates";
    EXPECT_LE(awqReferenceError(X, S, K, pick, col, ones, 1, G), best * (1 + 1e-4) + 1e-12) << "channel " << n;
  }
  EXPECT_GT(clipped, 0); // the search does clip some channels
}

TEST(Awq, ScalesMinimizeTheGroupsOutputError) {
  const int64_t S = 32, K = 64, G = 16, grid = 10;
  const auto X = awqInputs(S, K, 5);
  const auto w1 = randomWeights(K, 40, 6), w2 = randomWeights(K, 24, 7);
  std::vector<float> meanAbs(K, 0.0f);
  for (int64_t r = 0; r < S; ++r)
    for (int64_t k = 0; k < K; ++k)
      meanAbs[k] += std::fabs(X[r * K + k]) / static_cast<float>(S);
  std::vector<float> s;
  std::string err;
  ASSERT_TRUE(quant::awqSearchScales(X.data(), S, K, meanAbs.data(), {{w1.data(), 40, G}, {w2.data(), 24, G}}, 4,
                                     false, grid, s, err))
      << err;
  ASSERT_EQ(static_cast<int64_t>(s.size()), K);
  auto groupError = [&](const std::vector<float> &sc) {
    double e = 0;
    for (const auto *w : {&w1, &w2}) {
      const int64_t N = static_cast<int64_t>(w->size()) / K;
      std::vector<float> scaled(*w);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n)
          scaled[k * N + n] *= sc[k];
      e += awqReferenceError(X, S, K, scaled, *w, sc, N, G);
    }
    return e;
  };
  double best = -1, none = groupError(std::vector<float>(K, 1.0f));
  for (int i = 0; i < grid; ++i) { // the reference grid: mean|x|^alpha, normalized
    std::vector<float> sc(K);
    float mx = 0, mn = INFINITY;
    for (int64_t k = 0; k < K; ++k) {
      sc[k] = std::pow(std::max(meanAbs[k], 1e-4f), static_cast<float>(i) / grid);
      mx = std::max(mx, sc[k]), mn = std::min(mn, sc[k]);
    }
    for (float &v : sc)
      v /= std::sqrt(mx * mn);
    best = best < 0 ? groupError(sc) : std::min(best, groupError(sc));
  }
  const double got = groupError(s);
  EXPECT_LE(got, best * (1 + 1e-3));
  EXPECT_LT(got, 0.9 * none); // the outlier channels make scaling pay
  const auto [mn, mx] = std::minmax_element(s.begin(), s.end());
  EXPECT_NEAR(std::sqrt(static_cast<double>(*mn) * *mx), 1.0, 1e-5);
}

TEST(Awq, RejectsAGroupThatDoesNotDivide) {
  const auto X = awqInputs(4, 64, 1);
  auto w = randomWeights(64, 8, 1);
  std::string err;
  EXPECT_FALSE(quant::awqClip(X.data(), 4, 64, w.data(), 8, 4, 24, false, err));
  EXPECT_NE(err.find("group size"), std::string::npos) << err;
}

} // namespace
