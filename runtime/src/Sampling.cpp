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
  auto stays = [&](int64_t i) { return !std::isnan(row[i]) && row[i] >= lo; };
  // The weights of the tokens that stay (0 for the others), each computed once.
  std::vector<float> w(static_cast<size_t>(n), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    if (stays(i))
      w[i] = weight(row[i]);
  if (s.topP < 1.0f) {
    std::vector<std::pair<float, float>> kept; // (value, weight)
    double mass = 0.0;
    for (int64_t i = 0; i < n; ++i)
      if (stays(i)) {
        kept.emplace_back(row[i], w[i]);
        mass += w[i];
      }
    const double target = static_cast<double>(s.topP) * mass;
    auto larger = [](const auto &a, const auto &b) { return a.first > b.first; };
    // The threshold needs only the largest values: a sorted prefix, grown until its whole groups of equal values
    // reach the target (a 128K vocabulary is not sorted for a top_p that a few hundred tokens reach).
    for (size_t m = std::min<size_t>(kept.size(), 256);; m = std::min(kept.size(), 4 * m)) {
      std::partial_sort(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(m), kept.end(), larger);
      double above = 0.0;
      bool found = false;
      for (size_t i = 0; i < m && !found;) {
        size_t j = i;
        while (j < m && kept[j].first == kept[i].first)
          above += kept[j++].second;
        if (j == m && m < kept.size())
          break; // the group may go on past the prefix
        if (above >= target || j == kept.size())
          lo = kept[i].first, found = true;
        i = j;
      }
      if (found)
        break;
    }
  }
  double mass = 0.0;
  for (int64_t i = 0; i < n; ++i)
    if (stays(i))
      mass += w[i];
  const double target = u * mass;
  double acc = 0.0;
  int64_t last = 0;
  for (int64_t i = 0; i < n; ++i)
    if (stays(i)) {
      acc += w[i];
      last = i;
      if (acc > target)
        return i;
    }
  return last;
}

} // namespace qrt
