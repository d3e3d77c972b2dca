//===- Sampling.h - a token drawn from a row of logits ------------------===//
//
// The definition every backend computes (the CPU reference for qrt_session_sample_rows and the CUDA helper kernel
// qopt_sample_rows), in the order the usual samplers apply it:
//  1. NaN values are never chosen (a row of NaN gives 0); temperature 0 is the argmax (argmaxRow).
//  2. p_i = exp((x_i - max x) / temperature), in float32.
//  3. top_k (0 < k < the row's non-NaN count): tokens whose value is at least the k-th largest value (counted with
//     repeats) stay; ties at the boundary all stay.
//  4. top_p (< 1): of those, walking the distinct values from the largest down, the first value at which the mass
//     of the tokens at or above it reaches top_p times the mass of step 3's tokens is the threshold; tokens at or
//     above it stay (so ties at the boundary all stay; the largest value always does).
//  5. The draw: target = u * W, W the mass of the tokens that stayed; the token is the first, in index order, at
//     which the running mass of the tokens that stayed exceeds target (the last that stayed, should rounding leave
//     none). u in [0, 1) is the caller's uniform random number, so the same numbers choose the same tokens on every
//     backend up to the rounding of the sums (float64 here; the GPU adds in another order).
//
//===----------------------------------------------------------------------===//
#ifndef QRT_SAMPLING_H
#define QRT_SAMPLING_H

#include <cstdint>

namespace qrt {

struct Sampling {
  float temperature = 1.0f;
  int64_t topK = 0;  // 0: every token
  float topP = 1.0f; // 1: every token
};

// The token drawn from row[0, n) by uniform number u (above); n > 0.
int64_t sampleRow(const float *row, int64_t n, const Sampling &s, double u);

} // namespace qrt

#endif // QRT_SAMPLING_H
