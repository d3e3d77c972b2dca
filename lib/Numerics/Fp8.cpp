//===- Fp8.cpp - FP8 conversions (Fp8.h) -----------------------------------===//
#include "qopt/Numerics/Fp8.h"

#include <cmath>
#include <limits>

namespace qopt::num {
namespace {

struct Layout {
  int expBits, manBits, bias;
  bool ieee; // E5M2: an all-ones exponent is infinity / NaN; E4M3FN: only S.1111.111 is NaN
};

Layout layoutOf(Fp8Format f) { return f == Fp8Format::E4M3FN ? Layout{4, 3, 7, false} : Layout{5, 2, 15, true}; }

} // namespace

float fp8Max(Fp8Format format) { return format == Fp8Format::E4M3FN ? 448.0f : 57344.0f; }

float fp8ToFloat(uint8_t code, Fp8Format format) {
  const Layout l = layoutOf(format);
  const bool negative = code & 0x80;
  const int exp = (code >> l.manBits) & ((1 << l.expBits) - 1), man = code & ((1 << l.manBits) - 1);
  const int expMax = (1 << l.expBits) - 1;
  float v;
  if (l.ieee && exp == expMax)
    v = man ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else if (!l.ieee && exp == expMax && man == (1 << l.manBits) - 1)
    v = std::numeric_limits<float>::quiet_NaN();
  else if (exp == 0) // subnormal: man * 2^(1 - bias - manBits)
    v = std::ldexp(static_cast<float>(man), 1 - l.bias - l.manBits);
  else
    v = std::ldexp(static_cast<float>((1 << l.manBits) | man), exp - l.bias - l.manBits);
  return negative ? -v : v;
}

uint8_t floatToFp8(float value, Fp8Format format, bool saturate) {
  const Layout l = layoutOf(format);
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  if (std::isnan(value))
    return static_cast<uint8_t>(sign | 0x7F);
  const uint8_t maxCode = format == Fp8Format::E4M3FN ? 0x7E : 0x7B;
  const uint8_t overflow = saturate ? maxCode : format == Fp8Format::E4M3FN ? 0x7F : 0x7C;
  const float a = std::fabs(value);
  if (std::isinf(a))
    return static_cast<uint8_t>(sign | overflow);
  if (a == 0.0f)
    return sign;
  // The exponent of a's leading bit, no lower than the smallest normal one; the value in units of that exponent's
  // last mantissa place is exact in float (a power-of-two scaling), and rounding it to an integer is the format's
  // round to nearest even.
  const int emin = 1 - l.bias;
  int e = 0;
  std::frexp(a, &e); // a = f * 2^e, f in [0.5, 1): the leading bit is 2^(e - 1)
  e = e - 1 < emin ? emin : e - 1;
  long units = std::lrint(std::ldexp(a, l.manBits - e)); // ties to even (the default rounding mode)
  if (units == 2l << l.manBits) { // rounded up to the next binade
    units = 1l << l.manBits;
    ++e;
  }
  if (units < (1l << l.manBits)) // subnormal (e == emin), or zero after rounding
    return static_cast<uint8_t>(sign | units);
  const long expField = e + l.bias;
  const uint8_t code = static_cast<uint8_t>((expField << l.manBits) | (units - (1l << l.manBits)));
  if (expField > (1 << l.expBits) - 1 || code > maxCode)
    return static_cast<uint8_t>(sign | overflow);
  return static_cast<uint8_t>(sign | code);
}

} // namespace qopt::num
