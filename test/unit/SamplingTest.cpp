//===- SamplingTest.cpp - qrt::sampleRow against a sort-based reference -===//
//
// The runtime's sampler (temperature, top_k, top_p, the draw by a caller's uniform number; runtime/src/Sampling.h)
// is the CPU backend's and the oracle of the GPU's qopt_sample_rows, so it is checked here against a second,
// independent reading of the same definition: sort the tokens by value, keep a prefix, extend it over ties, draw.
//
//===----------------------------------------------------------------------===//
#include "Backend.h"
#include "Sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace {

using qrt::Sampling;

int64_t sortedReference(const std::vector<float> &row, const Sampling &s, double u) {
  std::vector<int64_t> order;
  for (int64_t i = 0; i < static_cast<int64_t>(row.size()); ++i)
    if (!std::isnan(row[i]))
      order.push_back(i);
  if (order.empty())
    return 0;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
  const float mx = row[order[0]];
  std::vector<float> w(row.size(), 0.0f);
  for (int64_t i : order)
    w[i] = row[i] == mx ? 1.0f : std::exp((row[i] - mx) / s.temperature);
  // A prefix of the sorted tokens, grown to the end of the run of equal values it stops in.
  auto throughTies = [&](size_t n) {
    while (n < order.size() && row[order[n]] == row[order[n - 1]])
      ++n;
    return n;
  };
  size_t keep = order.size();
  if (s.topK > 0 && s.topK < static_cast<int64_t>(order.size()))
    keep = throughTies(static_cast<size_t>(s.topK));
  if (s.topP < 1.0f) {
    double mass = 0.0;
    for (size_t j = 0; j < keep; ++j)
      mass += w[order[j]];
    double above = 0.0;
    size_t n = 0;
    while (n < keep) {
      const size_t end = throughTies(n + 1);
      for (size_t j = n; j < end; ++j)
        above += w[order[j]];
      n = end;
      if (above >= s.topP * mass)
        break;
    }
    keep = n;
  }
  std::vector<bool> kept(row.size(), false);
  for (size_t j = 0; j < keep; ++j)
    kept[order[j]] = true;
  double total = 0.0;
  for (size_t i = 0; i < row.size(); ++i)
    if (kept[i])
      total += w[i];
  double acc = 0.0;
  int64_t last = 0;
  for (size_t i = 0; i < row.size(); ++i)
    if (kept[i]) {
      last = static_cast<int64_t>(i);
      if ((acc += w[i]) > u * total)
        return last;
    }
  return last;
}

std::vector<float> randomRow(size_t n, std::mt19937 &rng, float step) {
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> row(n);
  for (float &v : row)
    v = step > 0 ? std::round(d(rng) / step) * step : d(rng); // step > 0: many equal values
  return row;
}

TEST(Sampling, MatchesTheSortedReference) {
  std::mt19937 rng(7);
  int checked = 0;
  for (float step : {0.0f, 0.25f})
    for (size_t n : {size_t(1), size_t(7), size_t(1000)}) {
      const std::vector<float> row = randomRow(n, rng, step);
      for (float t : {0.5f, 1.0f, 2.0f})
        for (int64_t k : {0, 1, 5, 50, 999, 1000, 5000})
          for (float p : {1.0f, 0.999f, 0.9f, 0.5f, 0.01f})
            for (double u : {0.0, 0.3, 0.7, 0.999999}) {
              const Sampling s{t, k, p};
              ASSERT_EQ(qrt::sampleRow(row.data(), static_cast<int64_t>(n), s, u), sortedReference(row, s, u))
                  << "n " << n << " step " << step << " T " << t << " k " << k << " p " << p << " u " << u;
              ++checked;
            }
    }
  EXPECT_EQ(checked, 2 * 3 * 3 * 7 * 5 * 4);
}

TEST(Sampling, DrawsBySoftmaxProbability) {
  // Evenly spaced numbers draw each token in proportion to its probability.
  const std::vector<float> row = {1.0f, 3.0f, 0.0f, 2.0f, -1.0f};
  const float t = 1.5f;
  std::vector<double> p(row.size());
  for (size_t i = 0; i < row.size(); ++i)
    p[i] = std::exp((row[i] - 3.0) / t);
  const double z = std::accumulate(p.begin(), p.end(), 0.0);
  std::vector<int> counts(row.size(), 0);
  const int draws = 100000;
  for (int i = 0; i < draws; ++i)
    ++counts[qrt::sampleRow(row.data(), 5, Sampling{t, 0, 1.0f}, (i + 0.5) / draws)];
  for (size_t i = 0; i < row.size(); ++i)
    EXPECT_NEAR(counts[i] / static_cast<double>(draws), p[i] / z, 2e-5) << "token " << i;
}

TEST(Sampling, TopKAndTopPAsDefined) {
  const std::vector<float> row = {0.0f, 5.0f, 4.0f, 4.0f, 1.0f, -0.0f};
  // top_k 1 is the argmax whatever the number; top_k 2 keeps both 4s (a tie with the 2nd value).
  for (double u : {0.0, 0.5, 0.999})
    EXPECT_EQ(qrt::sampleRow(row.data(), 6, Sampling{1.0f, 1, 1.0f}, u), 1);
  EXPECT_EQ(qrt::sampleRow(row.data(), 6, Sampling{1.0f, 2, 1.0f}, 0.999), 3);
  // A tiny top_p keeps the largest value only; top_k 5 keeps -0 with 0 (one value): the last kept is index 5.
  EXPECT_EQ(qrt::sampleRow(row.data(), 6, Sampling{1.0f, 0, 1e-6f}, 0.999), 1);
  EXPECT_EQ(qrt::sampleRow(row.data(), 6, Sampling{100.0f, 5, 1.0f}, 0.9999999), 5);
  // top_p 0.75 at temperature 1: 5 alone has 1 / (1 + 2 e^-1 + ...) < 0.75, 5 and both 4s reach it.
  for (double u : {0.0, 0.6, 0.99}) {
    const int64_t id = qrt::sampleRow(row.data(), 6, Sampling{1.0f, 0, 0.75f}, u);
    EXPECT_TRUE(id == 1 || id == 2 || id == 3) << id;
  }
  // u = 0 draws the first kept token in index order.
  EXPECT_EQ(qrt::sampleRow(row.data(), 6, Sampling{1.0f, 0, 0.75f}, 0.0), 1);
}

TEST(Sampling, NaNInfinityAndTemperatureZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<float> row = {nan, 2.0f, nan, 1.0f};
  for (double u : {0.0, 0.5, 0.999999})
    EXPECT_NE(qrt::sampleRow(row.data(), 4, Sampling{1.0f, 0, 1.0f}, u) % 2, 0);
  const std::vector<float> allNan = {nan, nan};
  EXPECT_EQ(qrt::sampleRow(allNan.data(), 2, Sampling{1.0f, 0, 1.0f}, 0.5), 0);
  const std::vector<float> infs = {1.0f, inf, -inf, inf};
  for (double u : {0.0, 0.49, 0.51, 0.999}) // the two infinities weigh 1 each, the rest 0
    EXPECT_EQ(qrt::sampleRow(infs.data(), 4, Sampling{1.0f, 0, 1.0f}, u), u < 0.5 ? 1 : 3);
  const std::vector<float> minusInf = {-inf, -inf};
  EXPECT_EQ(qrt::sampleRow(minusInf.data(), 2, Sampling{1.0f, 0, 1.0f}, 0.7), 1);
  // Temperature 0 is the argmax, top_k and top_p aside.
  EXPECT_EQ(qrt::sampleRow(row.data(), 4, Sampling{0.0f, 2, 0.5f}, 0.999), qrt::argmaxRow(row.data(), 4));
}

} // namespace
