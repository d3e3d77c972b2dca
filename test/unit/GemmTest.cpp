//===- GemmTest.cpp - sgemm and ThreadPool against a double reference ------===//
//
// Checks qopt::num::sgemm / sgemmStridedBatched over many shapes (1, odd sizes, sizes crossing the kc/mc/nb
// blocking, transposes, alpha/beta, padded leading dimensions filled with NaN so any out-of-bounds read shows)
// against a double-precision reference, on every kernel family this CPU can run. Also checks the determinism
// contract: bitwise identical results for 1, 2 and 3 threads. Links with gtest_main.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace qopt::num;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// A row-major rows x cols matrix stored with leading dimension ld >= cols; the padding holds NaN.
struct Mat {
  int64_t rows = 0, cols = 0, ld = 0;
  std::vector<float> v;
  Mat(int64_t r, int64_t c, int64_t pad, std::mt19937 &rng) : rows(r), cols(c), ld(c + pad) {
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    v.assign(static_cast<size_t>(std::max<int64_t>(1, r * ld)), kNaN);
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j)
        v[i * ld + j] = d(rng);
  }
  float at(int64_t i, int64_t j) const { return v[i * ld + j]; }
};

struct Case {
  bool tA, tB;
  int64_t M, N, K;
  float alpha, beta;
  int64_t padA, padB, padC;
};

std::string describe(const Case &c) {
  return "tA=" + std::to_string(c.tA) + " tB=" + std::to_string(c.tB) + " M=" + std::to_string(c.M) +
         " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + " pads=" + std::to_string(c.padA) + "," + std::to_string(c.padB) + "," +
         std::to_string(c.padC) + " kernel=" + sgemmKernelName();
}

// Runs one case with the given pool and checks it against the double reference. Returns C for bitwise checks.
std::vector<float> runCase(const Case &c, ThreadPool *pool, bool check) {
  std::mt19937 rng(static_cast<uint32_t>(c.M * 131 + c.N * 17 + c.K * 7 + c.tA * 3 + c.tB));
  Mat A(c.tA ? c.K : c.M, c.tA ? c.M : c.K, c.padA, rng);
  Mat B(c.tB ? c.N : c.K, c.tB ? c.K : c.N, c.padB, rng);
  Mat C(c.M, c.N, c.padC, rng);
  if (c.beta == 0.0f) // beta == 0 must not read C: poison it
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j)
        C.v[i * C.ld + j] = kNaN;
  Mat C0 = C;
  bool ok =
      sgemm(c.tA, c.tB, c.M, c.N, c.K, c.alpha, A.v.data(), A.ld, B.v.data(), B.ld, c.beta, C.v.data(), C.ld, pool);
  EXPECT_TRUE(ok) << describe(c);
  if (check) {
    int failures = 0;
    for (int64_t i = 0; i < c.M && failures < 5; ++i)
      for (int64_t j = 0; j < c.N && failures < 5; ++j) {
        double s = 0, mag = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          double a = c.tA ? A.at(k, i) : A.at(i, k);
          double b = c.tB ? B.at(j, k) : B.at(k, j);
          s += a * b;
          mag += std::fabs(a * b);
        }
        double ref = double(c.alpha) * s;
        double refMag = std::fabs(double(c.alpha)) * mag;
        if (c.beta != 0.0f) {
          ref += double(c.beta) * C0.at(i, j);
          refMag += std::fabs(double(c.beta) * C0.at(i, j));
        }
        double got = C.at(i, j);
        double tol = 4.0 * (double(c.K) + 3.0) * FLT_EPSILON * refMag + 1e-30;
        if (!(std::fabs(got - ref) <= tol)) {
          ADD_FAILURE() << describe(c) << " at (" << i << "," << j << "): got " << got << " want " << ref << " tol "
                        << tol;
          ++failures;
        }
      }
    // The padding of C must be untouched.
    bool paddingIntact = true;
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = c.N; j < C.ld; ++j)
        paddingIntact = paddingIntact && std::isnan(C.v[i * C.ld + j]);
    EXPECT_TRUE(paddingIntact) << describe(c) << " wrote C padding";
  }
  return C.v;
}

std::vector<std::string> availableKernels() {
  std::vector<std::string> out;
  for (const char *k : {"generic", "avx2", "avx512"})
    if (sgemmSelectKernel(k))
      out.push_back(k);
  sgemmSelectKernel("auto");
  return out;
}

// Restores runtime dispatch when a test exits, even on ASSERT failure.
struct KernelScope {
  explicit KernelScope(const std::string &name) { ok = sgemmSelectKernel(name.c_str()); }
  ~KernelScope() { sgemmSelectKernel("auto"); }
  bool ok;
};

std::vector<Case> shapeCases() {
  std::vector<Case> cases;
  const int64_t dims[] = {1, 2, 3, 5, 7, 16, 17, 33};
  const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.5f, 0.25f}};
  int variant = 0;
  for (int64_t M : dims)
    for (int64_t N : dims)
      for (int64_t K : {int64_t(1), int64_t(4), int64_t(9), int64_t(40)})
        for (int t = 0; t < 4; ++t) {
          const float *p = ab[variant % 3];
          int64_t pad = (variant % 4 == 1) ? 3 : 0;
          cases.push_back({bool(t & 1), bool(t & 2), M, N, K, p[0], p[1], pad, pad ? 5 : 0, pad ? 2 : 0});
          ++variant;
        }
  // Sizes that cross the blocking: K > kc (256), M > mc (144), N > nb (256), and partial tiles everywhere.
  for (int t = 0; t < 4; ++t) {
    cases.push_back({bool(t & 1), bool(t & 2), 150, 270, 300, 1.0f, 0.0f, 1, 2, 3});
    cases.push_back({bool(t & 1), bool(t & 2), 61, 45, 513, 0.75f, -1.0f, 0, 0, 0});
    cases.push_back({bool(t & 1), bool(t & 2), 1, 300, 600, 1.0f, 0.0f, 0, 1, 0}); // GEMV, dot/axpy forms
    cases.push_back({bool(t & 1), bool(t & 2), 600, 1, 300, 2.0f, 0.5f, 7, 3, 4}); // N == 1 column GEMV
    cases.push_back({bool(t & 1), bool(t & 2), 1, 1, 1000, 1.0f, 1.0f, 0, 0, 0});
    cases.push_back({bool(t & 1), bool(t & 2), 200, 300, 1, 1.0f, 0.0f, 0, 0, 0}); // K == 1: outer product
  }
  return cases;
}

TEST(Gemm, ShapesMatchDoubleReferenceOnEveryKernel) {
  std::vector<std::string> kernels = availableKernels();
  ASSERT_FALSE(kernels.empty());
  for (const std::string &k : kernels) {
    KernelScope scope(k);
    ASSERT_TRUE(scope.ok) << k;
    for (const Case &c : shapeCases())
      runCase(c, nullptr, true);
  }
}

TEST(Gemm, BitwiseIndependentOfThreadCount) {
  ThreadPool p2(2), p3(3);
  std::vector<Case> cases = {
      {false, false, 512, 512, 512, 1.0f, 0.0f, 0, 0, 0}, {false, true, 300, 200, 700, 0.5f, 1.0f, 1, 0, 2},
      {true, false, 77, 1000, 129, 1.0f, 0.0f, 0, 0, 0},  {true, true, 1000, 20, 65, -1.0f, 0.5f, 0, 0, 0},
      {false, true, 1, 4096, 512, 1.0f, 0.0f, 0, 0, 0},   {false, false, 1, 2000, 300, 1.0f, 2.0f, 0, 0, 0},
      {false, false, 3000, 1, 100, 1.0f, 0.0f, 0, 0, 0},  {true, true, 7, 4096, 300, 1.0f, 0.0f, 0, 0, 0},
  };
  for (const std::string &k : availableKernels()) {
    KernelScope scope(k);
    ASSERT_TRUE(scope.ok);
    for (const Case &c : cases) {
      std::vector<float> r1 = runCase(c, nullptr, false);
      std::vector<float> r2 = runCase(c, &p2, false);
      std::vector<float> r3 = runCase(c, &p3, false);
      ASSERT_EQ(r1.size(), r2.size());
      EXPECT_EQ(0, std::memcmp(r1.data(), r2.data(), r1.size() * sizeof(float))) << describe(c) << " 1 vs 2 threads";
      EXPECT_EQ(0, std::memcmp(r1.data(), r3.data(), r1.size() * sizeof(float))) << describe(c) << " 1 vs 3 threads";
    }
  }
}

TEST(Gemm, ThreadedResultsAreCorrect) {
  ThreadPool p2(2);
  runCase({false, true, 150, 270, 300, 1.0f, 0.0f, 1, 2, 3}, &p2, true);
  runCase({true, false, 300, 40, 100, 1.0f, 1.0f, 0, 0, 0}, &p2, true);
  runCase({false, true, 1, 1000, 300, 1.0f, 0.0f, 0, 0, 0}, &p2, true);
}

TEST(Gemm, BetaZeroIgnoresNaNInC) {
  std::vector<float> A(6, 1.0f), B(6, 2.0f), C(4, kNaN);
  ASSERT_TRUE(sgemm(false, false, 2, 2, 3, 1.0f, A.data(), 3, B.data(), 2, 0.0f, C.data(), 2));
  for (float v : C)
    EXPECT_EQ(v, 6.0f);
  std::vector<float> C1(4, kNaN); // M == 1 path
  ASSERT_TRUE(sgemm(false, false, 1, 2, 3, 1.0f, A.data(), 3, B.data(), 2, 0.0f, C1.data(), 2));
  EXPECT_EQ(C1[0], 6.0f);
  EXPECT_EQ(C1[1], 6.0f);
  EXPECT_TRUE(std::isnan(C1[2])); // beyond N: untouched
}

TEST(Gemm, AlphaZeroOrKZeroScalesC) {
  std::vector<float> A(4, kNaN), B(4, kNaN), C = {1, 2, 3, 4};
  ASSERT_TRUE(sgemm(false, false, 2, 2, 2, 0.0f, A.data(), 2, B.data(), 2, 2.0f, C.data(), 2));
  EXPECT_EQ(C, (std::vector<float>{2, 4, 6, 8}));
  ASSERT_TRUE(sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 0, nullptr, 2, 0.5f, C.data(), 2));
  EXPECT_EQ(C, (std::vector<float>{1, 2, 3, 4}));
  std::vector<float> Cn(4, kNaN);
  ASSERT_TRUE(sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 0, nullptr, 2, 0.0f, Cn.data(), 2));
  EXPECT_EQ(Cn, (std::vector<float>{0, 0, 0, 0}));
}

TEST(Gemm, RejectsInvalidArguments) {
  std::vector<float> A(16, 1.0f), B(16, 1.0f), C(16, 0.0f);
  EXPECT_FALSE(sgemm(false, false, -1, 2, 2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2));
  EXPECT_FALSE(sgemm(false, false, 2, 2, -2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2));
  EXPECT_FALSE(sgemm(false, false, 2, 2, 3, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2)); // lda < K
  EXPECT_FALSE(sgemm(true, false, 3, 2, 2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2));  // lda < M
  EXPECT_FALSE(sgemm(false, true, 2, 2, 3, 1.0f, A.data(), 3, B.data(), 2, 0.0f, C.data(), 2));  // ldb < K
  EXPECT_FALSE(sgemm(false, false, 2, 3, 2, 1.0f, A.data(), 2, B.data(), 3, 0.0f, C.data(), 2)); // ldc < N
  EXPECT_FALSE(sgemm(false, false, 2, 2, 2, 1.0f, nullptr, 2, B.data(), 2, 0.0f, C.data(), 2));
  EXPECT_FALSE(sgemm(false, false, 2, 2, 2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, nullptr, 2));
  EXPECT_TRUE(sgemm(false, false, 0, 2, 2, 1.0f, nullptr, 2, nullptr, 2, 0.0f, nullptr, 2)); // empty: no-op
  EXPECT_FALSE(
      sgemmStridedBatched(false, false, 2, 2, 2, 1.0f, A.data(), 2, 4, B.data(), 2, 4, 0.0f, C.data(), 2, 4, -1));
}

TEST(Gemm, StridedBatchedMatchesLoopAndIsThreadIndependent) {
  ThreadPool p2(2);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-1, 1);
  for (const std::string &k : availableKernels()) {
    KernelScope scope(k);
    for (int variant = 0; variant < 4; ++variant) {
      // Attention-like: batch = heads, scores = Q K^T (tB) then P V. Variant 3 broadcasts B (stride 0).
      const int64_t batch = 6, M = variant == 1 ? 1 : 19, N = 23, K = 64;
      bool tB = variant != 2;
      int64_t lda = K + 1, ldb = tB ? K + 2 : N + 2, ldc = N + 3;
      int64_t sA = M * lda + 5, sB = variant == 3 ? 0 : (tB ? N : K) * ldb + 3, sC = M * ldc + 1;
      std::vector<float> A(batch * sA), B(batch * std::max<int64_t>(sB, (tB ? N : K) * ldb)), C0(batch * sC);
      for (float &v : A)
        v = d(rng);
      for (float &v : B)
        v = d(rng);
      for (float &v : C0)
        v = d(rng);
      std::vector<float> loop = C0, b1 = C0, b2 = C0;
      for (int64_t b = 0; b < batch; ++b)
        ASSERT_TRUE(sgemm(false, tB, M, N, K, 0.5f, A.data() + b * sA, lda, B.data() + b * sB, ldb, 0.25f,
                          loop.data() + b * sC, ldc));
      ASSERT_TRUE(sgemmStridedBatched(false, tB, M, N, K, 0.5f, A.data(), lda, sA, B.data(), ldb, sB, 0.25f, b1.data(),
                                      ldc, sC, batch, nullptr));
      ASSERT_TRUE(sgemmStridedBatched(false, tB, M, N, K, 0.5f, A.data(), lda, sA, B.data(), ldb, sB, 0.25f, b2.data(),
                                      ldc, sC, batch, &p2));
      EXPECT_EQ(0, std::memcmp(loop.data(), b1.data(), loop.size() * sizeof(float))) << k << " variant " << variant;
      EXPECT_EQ(0, std::memcmp(loop.data(), b2.data(), loop.size() * sizeof(float))) << k << " variant " << variant;
    }
  }
}

TEST(ThreadPool, ChunksCoverRangeOnceAndAreDeterministic) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(2), int64_t(7), int64_t(1000)}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::vector<std::pair<int64_t, int64_t>> chunks(static_cast<size_t>(std::max<int64_t>(n, 1)));
      std::atomic<int> calls{0};
      pool.parallelFor(n, [&](int64_t b, int64_t e) {
        EXPECT_LT(b, e);
        calls.fetch_add(1);
        for (int64_t i = b; i < e; ++i)
          hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i)
        EXPECT_EQ(hits[i].load(), 1) << "n=" << n << " threads=" << threads;
      EXPECT_EQ(calls.load(), std::min<int64_t>(n, threads));
      // The split is the documented pure function of (n, chunks).
      int64_t chunksN = std::min<int64_t>(n, threads), prevEnd = 0;
      for (int64_t c = 0; c < chunksN; ++c) {
        int64_t b, e;
        ThreadPool::chunkBounds(n, chunksN, c, b, e);
        EXPECT_EQ(b, prevEnd);
        EXPECT_GE(e - b, n / chunksN);
        EXPECT_LE(e - b, n / chunksN + 1);
        prevEnd = e;
      }
      if (chunksN > 0)
        EXPECT_EQ(prevEnd, n);
    }
  }
}

TEST(ThreadPool, NestedAndConcurrentCallsComplete) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  pool.parallelFor(6, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool.parallelFor(10, [&](int64_t b2, int64_t e2) { sum.fetch_add(e2 - b2); });
  });
  EXPECT_EQ(sum.load(), 60);
  // Two outside threads using one pool at once: one gets the workers, the other runs inline.
  std::atomic<int64_t> total{0};
  auto work = [&] {
    for (int r = 0; r < 200; ++r)
      pool.parallelFor(16, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
  };
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  EXPECT_EQ(total.load(), 2 * 200 * 16);
}

TEST(ThreadPool, UsesWorkerThreads) {
  ThreadPool pool(2);
  std::atomic<int> otherThread{0};
  std::thread::id self = std::this_thread::get_id();
  // Chunks spin until both have started, which only happens if a worker runs one of them.
  std::atomic<int> started{0};
  pool.parallelFor(2, [&](int64_t, int64_t) {
    started.fetch_add(1);
    for (int spin = 0; spin < 200000000 && started.load() < 2; ++spin)
      std::this_thread::yield();
    if (std::this_thread::get_id() != self)
      otherThread.fetch_add(1);
  });
  EXPECT_EQ(started.load(), 2);
  EXPECT_EQ(otherThread.load(), 1);
}

TEST(ThreadPool, ExceptionOnAWorkerReachesTheCaller) {
  ThreadPool pool(2);
  std::thread::id self = std::this_thread::get_id();
  for (int round = 0; round < 20; ++round) {
    // Both chunks wait until both have started, so one of them surely runs on the worker; that one throws (as a
    // kernel's scratch allocation would), and the other finishes.
    std::atomic<int> started{0}, finished{0};
    bool threw = false;
    try {
      pool.parallelFor(2, [&](int64_t, int64_t) {
        started.fetch_add(1);
        for (int spin = 0; spin < 200000000 && started.load() < 2; ++spin)
          std::this_thread::yield();
        if (std::this_thread::get_id() != self)
          throw std::bad_alloc();
        finished.fetch_add(1);
      });
    } catch (const std::bad_alloc &) {
      threw = true;
    }
    EXPECT_TRUE(threw) << "round " << round;
    EXPECT_EQ(started.load(), 2);
    EXPECT_EQ(finished.load(), 1);
  }
  // A throw on the calling thread skips the chunks not started yet; the pool stays usable afterwards.
  std::atomic<int64_t> ran{0};
  EXPECT_THROW(pool.parallelFor(1000, [&](int64_t b, int64_t) {
                 if (b == 0)
                   throw std::runtime_error("chunk 0");
                 ran.fetch_add(1);
               }),
               std::runtime_error);
  EXPECT_LE(ran.load(), 1);
  std::atomic<int64_t> sum{0};
  pool.parallelFor(1000, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  EXPECT_EQ(sum.load(), 1000);
}

TEST(ThreadPool, PollingAndSleepingWaitsBothComplete) {
  // spinUs 0: every wait sleeps on its condition variable; 1: workers poll, then sleep between the spaced calls
  // (each waits 2 ms, far past the poll); 20000: back-to-back calls never sleep. Every call's chunks run once.
  for (int spin : {0, 1, 20000}) {
    ThreadPool pool(3, spin);
    EXPECT_EQ(pool.spinMicroseconds(), spin);
    int64_t expected = 0;
    std::atomic<int64_t> sum{0};
    for (int r = 0; r < 2000; ++r) {
      const int64_t n = 1 + r % 7;
      pool.parallelFor(n, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
      expected += n;
      if (r % 500 == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_EQ(sum.load(), expected) << "spin " << spin;
    // Two outside threads at once (one gets the workers, the other runs inline), with nested calls.
    std::atomic<int64_t> total{0};
    auto work = [&] {
      for (int r = 0; r < 200; ++r)
        pool.parallelFor(4, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i)
            pool.parallelFor(3, [&](int64_t b2, int64_t e2) { total.fetch_add(e2 - b2); });
        });
    };
    std::thread t1(work), t2(work);
    t1.join();
    t2.join();
    EXPECT_EQ(total.load(), 2 * 200 * 4 * 3) << "spin " << spin;
  }
  // Without an argument the poll is QOPT_POOL_SPIN_US's (run as `QOPT_POOL_SPIN_US=0 GemmTest` to check it), else
  // the default.
  const char *env = std::getenv("QOPT_POOL_SPIN_US");
  const int want = env && *env ? std::atoi(env) : ThreadPool::kDefaultSpinUs;
  EXPECT_EQ(ThreadPool(2).spinMicroseconds(), want);
}

TEST(ThreadPool, DefaultPoolFollowsEnvironment) {
  // Run as `QOPT_NUM_THREADS=3 GemmTest` to check the override; without it the size is the hardware's.
  const char *env = std::getenv("QOPT_NUM_THREADS");
  int want = env ? std::atoi(env) : 0;
  if (want <= 0)
    want = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_EQ(defaultThreadPool().size(), want);
  EXPECT_EQ(&defaultThreadPool(), &defaultThreadPool());
}

} // namespace
