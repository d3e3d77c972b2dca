//===- Fp8Test.cpp - FP8 E4M3FN / E5M2 conversions against the definitions -===//
//
// The decoder against values written out from the formats' definitions (and strict monotonicity over all finite
// codes); the encoder against a brute-force reference that picks the nearest finite value of the decoded table
// (ties to the even code, overflow where the nearest would be the next value past the largest): every code
// round-trips, every midpoint between neighbours and its float neighbours, and a million random floats of every
// magnitude; saturation, infinities and NaN as Fp8.h defines them. Also float16's decoder (every code against
// the format's definition) and its row form (bit for bit the scalar one, NaN payloads included).
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Fp8.h"
#include "qopt/Numerics/Tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using qopt::num::floatToFp8;
using qopt::num::Fp8Format;
using qopt::num::fp8Max;
using qopt::num::fp8ToFloat;

namespace {

constexpr Fp8Format kFormats[] = {Fp8Format::E4M3FN, Fp8Format::E5M2};
uint8_t maxCode(Fp8Format f) { return f == Fp8Format::E4M3FN ? 0x7E : 0x7B; }
const char *name(Fp8Format f) { return f == Fp8Format::E4M3FN ? "e4m3fn" : "e5m2"; }

// The reference encoder: the nearest of the finite non-negative codes 0..maxCode, or of the value one step past the
// largest (the next power-of-two-spaced value, which means overflow); ties go to the even code.
uint8_t referenceEncode(float x, Fp8Format f, bool saturate) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x))
    return sign | 0x7F;
  const uint8_t top = maxCode(f), over = saturate ? top : f == Fp8Format::E4M3FN ? 0x7F : 0x7C;
  const double a = std::fabs(static_cast<double>(x));
  if (std::isinf(a))
    return sign | over;
  // The step past the largest value: the largest's last-place step (both formats' largest codes end a binade
  // whose step continues to the overflow value: 480 for E4M3FN, 65536 for E5M2).
  const double largest = fp8ToFloat(top, f), past = largest + (largest - fp8ToFloat(top - 1, f));
  int best = -1;
  double bestDiff = 0;
  for (int c = 0; c <= top + 1; ++c) {
    const double v = c <= top ? fp8ToFloat(static_cast<uint8_t>(c), f) : past;
    const double diff = std::fabs(v - a);
    if (best < 0 || diff < bestDiff || (diff == bestDiff && (c & 1) == 0)) {
      best = c;
      bestDiff = diff;
    }
  }
  return best > top ? sign | over : static_cast<uint8_t>(sign | best);
}

TEST(Fp8, DecodesTheDefinitions) {
  struct Known {
    Fp8Format f;
    uint8_t code;
    float value;
  };
  for (Known k : {Known{Fp8Format::E4M3FN, 0x38, 1.0f}, Known{Fp8Format::E4M3FN, 0x7E, 448.0f},
                  Known{Fp8Format::E4M3FN, 0x01, 0x1p-9f}, Known{Fp8Format::E4M3FN, 0x07, 7 * 0x1p-9f},
                  Known{Fp8Format::E4M3FN, 0x08, 0x1p-6f}, Known{Fp8Format::E4M3FN, 0xBC, -1.5f},
                  Known{Fp8Format::E4M3FN, 0x78, 256.0f}, Known{Fp8Format::E4M3FN, 0x80, -0.0f},
                  Known{Fp8Format::E5M2, 0x3C, 1.0f}, Known{Fp8Format::E5M2, 0x7B, 57344.0f},
                  Known{Fp8Format::E5M2, 0x01, 0x1p-16f}, Known{Fp8Format::E5M2, 0x04, 0x1p-14f},
                  Known{Fp8Format::E5M2, 0xC2, -3.0f}, Known{Fp8Format::E5M2, 0x7C,
                                                             std::numeric_limits<float>::infinity()},
                  Known{Fp8Format::E5M2, 0xFC, -std::numeric_limits<float>::infinity()}}) {
    const float v = fp8ToFloat(k.code, k.f);
    EXPECT_EQ(v, k.value) << name(k.f) << " code " << int(k.code);
    EXPECT_EQ(std::signbit(v), std::signbit(k.value)) << name(k.f) << " code " << int(k.code);
  }
  for (uint8_t nan : {0x7F, 0xFF})
    EXPECT_TRUE(std::isnan(fp8ToFloat(nan, Fp8Format::E4M3FN)));
  for (uint8_t nan : {0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF})
    EXPECT_TRUE(std::isnan(fp8ToFloat(nan, Fp8Format::E5M2)));
  for (Fp8Format f : kFormats) {
    EXPECT_EQ(fp8ToFloat(maxCode(f), f), fp8Max(f));
    for (int c = 1; c <= maxCode(f); ++c) // finite codes increase strictly, negatives mirror them
      EXPECT_LT(fp8ToFloat(static_cast<uint8_t>(c - 1), f), fp8ToFloat(static_cast<uint8_t>(c), f));
    for (int c = 0; c <= maxCode(f); ++c)
      EXPECT_EQ(fp8ToFloat(static_cast<uint8_t>(c | 0x80), f), -fp8ToFloat(static_cast<uint8_t>(c), f));
  }
}

TEST(Fp8, EveryCodeRoundTrips) {
  for (Fp8Format f : kFormats)
    for (int c = 0; c < 256; ++c) {
      const float v = fp8ToFloat(static_cast<uint8_t>(c), f);
      if (std::isnan(v)) {
        EXPECT_EQ(floatToFp8(v, f), (c & 0x80) | 0x7F) << name(f);
        continue;
      }
      for (bool saturate : {true, false})
        if (!std::isinf(v) || !saturate)
          EXPECT_EQ(floatToFp8(v, f, saturate), c) << name(f) << " code " << c;
    }
}

TEST(Fp8, MidpointsRoundToEven) {
  for (Fp8Format f : kFormats)
    for (int c = 0; c < maxCode(f); ++c) {
      const float lo = fp8ToFloat(static_cast<uint8_t>(c), f), hi = fp8ToFloat(static_cast<uint8_t>(c + 1), f);
      const float mid = lo + (hi - lo) / 2; // exact: the neighbours differ in the last of few mantissa bits
      ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2);
      for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f), -mid})
        for (bool saturate : {true, false})
          EXPECT_EQ(floatToFp8(x, f, saturate), referenceEncode(x, f, saturate)) << name(f) << " x " << x;
      EXPECT_EQ(floatToFp8(mid, f) & 1, 0) << name(f) << " tie at " << mid;
    }
}

TEST(Fp8, RandomFloatsMatchTheReference) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (Fp8Format f : kFormats) {
    int checked = 0;
    for (int i = 0; i < 200000; ++i) {
      // Magnitudes from far below the smallest subnormal to far above the largest: exponents 2^-30 .. 2^20.
      uint32_t b = bits(rng);
      b = (b & 0x807FFFFFu) | ((97u + (b >> 23) % 51u) << 23);
      float x;
      std::memcpy(&x, &b, 4);
      for (bool saturate : {true, false})
        ASSERT_EQ(floatToFp8(x, f, saturate), referenceEncode(x, f, saturate)) << name(f) << " x " << x;
      ++checked;
    }
    EXPECT_EQ(checked, 200000);
  }
}

TEST(Fp8, OutOfRange) {
  const float inf = std::numeric_limits<float>::infinity();
  // E4M3FN: 464 is the tie between 448 and the first overflow (480) and goes to the even 448; above it saturates
  // to 448 or becomes NaN.
  EXPECT_EQ(floatToFp8(464.0f, Fp8Format::E4M3FN, false), 0x7E);
  EXPECT_EQ(floatToFp8(464.5f, Fp8Format::E4M3FN, true), 0x7E);
  EXPECT_EQ(floatToFp8(464.5f, Fp8Format::E4M3FN, false), 0x7F);
  EXPECT_EQ(floatToFp8(-1e30f, Fp8Format::E4M3FN, true), 0xFE);
  EXPECT_EQ(floatToFp8(inf, Fp8Format::E4M3FN, true), 0x7E);
  EXPECT_EQ(floatToFp8(-inf, Fp8Format::E4M3FN, false), 0xFF);
  // E5M2: 61440 ties between 57344 (odd mantissa) and 65536 (even): it overflows.
  EXPECT_EQ(floatToFp8(61439.0f, Fp8Format::E5M2, false), 0x7B);
  EXPECT_EQ(floatToFp8(61440.0f, Fp8Format::E5M2, false), 0x7C);
  EXPECT_EQ(floatToFp8(61440.0f, Fp8Format::E5M2, true), 0x7B);
  EXPECT_EQ(floatToFp8(-inf, Fp8Format::E5M2, false), 0xFC);
  EXPECT_EQ(floatToFp8(-inf, Fp8Format::E5M2, true), 0xFB);
  // Below half the smallest subnormal: signed zero; the tie at exactly half goes to the even zero.
  EXPECT_EQ(floatToFp8(0x1p-10f, Fp8Format::E4M3FN), 0x00);
  EXPECT_EQ(floatToFp8(-0x1p-10f, Fp8Format::E4M3FN), 0x80);
  EXPECT_EQ(floatToFp8(0x1.8p-10f, Fp8Format::E4M3FN), 0x01);
  EXPECT_EQ(floatToFp8(0x1p-17f, Fp8Format::E5M2), 0x00);
  EXPECT_EQ(floatToFp8(std::nanf(""), Fp8Format::E5M2), 0x7F);
}

// Every float16 code decodes to (-1)^s 2^(e - 15) (1 + m / 1024), subnormals 2^-14 m / 1024, infinities and NaN
// with their payload in the float's top mantissa bits; the row form gives the same bits for every code, from any
// start and length (its vector blocks and its tail).
TEST(Float16, EveryCodeDecodesAsDefinedAndTheRowFormAgrees) {
  std::vector<uint16_t> codes(65536);
  for (uint32_t c = 0; c < 65536; ++c)
    codes[c] = static_cast<uint16_t>(c);
  for (uint32_t c = 0; c < 65536; ++c) {
    const uint32_t sign = c >> 15, e = (c >> 10) & 31, m = c & 1023;
    const float v = qopt::num::halfToFloat(static_cast<uint16_t>(c));
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    if (e == 31) {
      ASSERT_EQ(bits, (sign << 31) | 0x7f800000u | (m << 13)) << c;
      continue;
    }
    const double mag =
        e == 0 ? std::ldexp(static_cast<double>(m), -24) : std::ldexp(1024.0 + m, static_cast<int>(e) - 25);
    ASSERT_EQ(static_cast<double>(v), sign ? -mag : mag) << c;
    ASSERT_EQ(std::signbit(v), sign == 1) << c;
  }
  for (int64_t start : {0, 3, 17}) {
    const int64_t n = 65536 - start - 5;
    std::vector<float> row(static_cast<size_t>(n));
    qopt::num::halfToFloatRow(codes.data() + start, n, row.data());
    for (int64_t i = 0; i < n; ++i) {
      const float v = qopt::num::halfToFloat(codes[start + i]);
      ASSERT_EQ(std::memcmp(&row[i], &v, 4), 0) << "code " << start + i;
    }
  }
}

// bfloat16 (--act-dtype=bf16's weights and caches): every code decodes to the float whose top 16 bits it is and
// converts back to itself (NaN stays NaN); a float rounds to nearest even against an independent reference (the
// two neighbouring bfloat16 values of the truncation, compared in double), overflow gives infinity, the row form
// is the scalar one.
TEST(BFloat16, EveryCodeRoundTripsAndFloatsRoundToNearestEven) {
  for (uint32_t c = 0; c < 65536; ++c) {
    const float v = qopt::num::bf16ToFloat(static_cast<uint16_t>(c));
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    ASSERT_EQ(bits, c << 16) << c;
    if (std::isnan(v))
      ASSERT_TRUE(std::isnan(qopt::num::bf16ToFloat(qopt::num::floatToBf16(v)))) << c;
    else
      ASSERT_EQ(qopt::num::floatToBf16(v), c) << c;
  }
  auto reference = [](float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    const uint32_t lo = bits & 0xffff0000u, hi = lo + 0x10000u; // |f| between the two codes (hi may be infinite)
    float a, b;
    std::memcpy(&a, &lo, 4);
    std::memcpy(&b, &hi, 4);
    // Past the largest finite value the next code is infinity, which IEEE rounding places at 2^128.
    const double next = (hi & 0x7f800000u) == 0x7f800000u ? std::copysign(std::ldexp(1.0, 128), f) : b;
    const double da = std::fabs(static_cast<double>(f) - a), db = std::fabs(next - f);
    const bool up = db < da || (db == da && ((lo >> 16) & 1));
    return static_cast<uint16_t>((up ? hi : lo) >> 16);
  };
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any(0, 0x7f7fffffu);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = any(rng) | (i & 1 ? 0x80000000u : 0u);
    if (i % 4 == 2)
      bits = (bits & 0xffff0000u) | 0x8000u; // exactly halfway
    float f;
    std::memcpy(&f, &bits, 4);
    ASSERT_EQ(qopt::num::floatToBf16(f), reference(f)) << bits;
  }
  EXPECT_EQ(qopt::num::floatToBf16(std::numeric_limits<float>::max()), 0x7f80u);
  EXPECT_EQ(qopt::num::floatToBf16(-std::numeric_limits<float>::infinity()), 0xff80u);
  std::vector<uint16_t> codes = {0x3f80u, 0xc000u, 0x0001u, 0x7f7fu, 0xff80u};
  std::vector<float> row(codes.size());
  qopt::num::bf16ToFloatRow(codes.data(), static_cast<int64_t>(codes.size()), row.data());
  for (size_t i = 0; i < codes.size(); ++i) {
    const float v = qopt::num::bf16ToFloat(codes[i]);
    EXPECT_EQ(std::memcmp(&row[i], &v, 4), 0) << i;
  }
}

} // namespace
