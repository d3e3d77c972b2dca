//===- Fp8.h - 8-bit floating point formats (E4M3FN, E5M2) -----------------===//
//
// The two FP8 formats of the OCP 8-bit floating point specification, as NVIDIA's Hopper tensor cores read them:
//
//   E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa bits. No infinities: S.1111.111 is NaN, so the largest
//           finite value is S.1111.110 = 448. Subnormals S.0000.mmm = mmm/8 * 2^-6 (smallest 2^-9).
//   E5M2:   sign, 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like: S.11111.00 is infinity, S.11111.mm (mm != 0)
//           NaN; the largest finite value is S.11110.11 = 57344. Subnormals mm/4 * 2^-14 (smallest 2^-16).
//
// Conversion from float rounds to nearest, ties to even (the conversion instructions' .rn), in the subnormal range
// too. Out of range: saturating (what the GPU kernels use, `.satfinite`) gives the largest finite value of that sign
// for finite values and infinities; otherwise E4M3FN overflows to NaN and E5M2 to infinity. A value overflows when
// it rounds past the largest finite value (E4M3FN: |x| > 464, the midpoint to 480, with 464 itself rounding to the
// even 448; E5M2: |x| >= 61440, whose tie rounds to the even 2^16). NaN converts to the NaN code 0x7F (with sign).
// These are the CPU's exact emulation: GPU kernels must produce the same codes.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_NUMERICS_FP8_H
#define QOPT_NUMERICS_FP8_H

#include <cstdint>

namespace qopt::num {

enum class Fp8Format : uint8_t { E4M3FN, E5M2 };

// The largest finite value of the format (448 or 57344).
float fp8Max(Fp8Format format);
// The value of a code (exact in float).
float fp8ToFloat(uint8_t code, Fp8Format format);
// The code of a float: round to nearest even; out of range as above.
uint8_t floatToFp8(float value, Fp8Format format, bool saturate = true);

} // namespace qopt::num

#endif // QOPT_NUMERICS_FP8_H
