//===- Sampling.cpp - a token drawn from a row of logits ----------------===//
//
// The reference definition (Sampling.h), written for clarity over speed: the CPU backend's sampler and the oracle
// of the GPU's.
//
//===----------------------------------------------------------------------===//
#include "Sampling.h"

#include "Backend.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

namespace qrt {

int64_t sampleRow(const float *row, int64_t n, const Sampling &s, double u) {
  if (s.temperature == 0.0f)
    return argmaxRow(row, n);
  float mx = -std::numeric_limits<float>::infinity();
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isnan(row[i]))
      mx = std::max(mx, row[i]), ++count;
  if (!count)
    return 0;
  // The largest values weigh 1 (also where they are infinite).
  auto weight = [&](float x) { return x == mx ? 1.0f : std::exp((x - mx) / s.temperature); };
  float lo = -std::numeric_limits<float>::infinity(); // tokens at or above it stay
  if (s.topK > 0 && s.topK < count) {
    std::vector<float> v;
    v.reserve(static_cast<size_t>(count));
    for (int64_t i = 0; i < n; ++i)
      if (!std::isnan(row[i]))
        v.push_back(row[i]);
    std::nth_element(v.begin(), v.begin() + (s.topK - 1), v.end(), std::greater<float>());
    lo = v[static_cast<size_t>(s.topK - 1)];
  }
  auto stays = [&](float x) { return !std::isnan(x) && x >= lo; };
  if (s.topP < 1.0f) {
    std::vector<std::pair<float, float>> kept; // (value, weight)
    double mass = 0.0;
    for (int64_t i = 0; i < n; ++i)
      if (stays(row[i])) {
        const float w = weight(row[i]);
        kept.emplace_back(row[i], w);
        mass += w;
      }
    std::sort(kept.begin(), kept.end(), [](const auto &a, const auto &b) { return a.first > b.first; });
    const double target = static_cast<double>(s.topP) * mass;
    double above = 0.0;
    for (size_t i = 0; i < kept.size();) {
      size_t j = i;
      while (j < kept.size() && kept[j].first == kept[i].first)
        above += kept[j++].second;
      if (above >= target || j == kept.size()) {
        lo = kept[i].first;
        break;
      }
      i = j;
    }
  }
  double mass = 0.0;
  for (int64_t i = 0; i < n; ++i)
    if (stays(row[i]))
      mass += weight(row[i]);
  const double target = u * mass;
  double acc = 0.0;
  int64_t last = 0;
  for (int64_t i = 0; i < n; ++i)
    if (stays(row[i])) {
      acc += weight(row[i]);
      last = i;
      if (acc > target)
        return i;
    }
  return last;
}

} // namespace qrt
