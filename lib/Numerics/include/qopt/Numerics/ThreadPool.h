//===- ThreadPool.h - a small persistent fork-join thread pool -------------===//
//
// The numerics kernels (GEMM, elementwise loops) split their work with parallelFor. Workers are created once and
// wait between calls, so a decode step that launches hundreds of small kernels does not pay thread start-up each
// time. A waiting worker first polls for the next call for a short while (QOPT_POOL_SPIN_US, 100 us unless set)
// and only then sleeps, and the caller likewise polls for its workers to finish before it sleeps: back-to-back
// calls, a decode step's, then cost no system call and no wake-up latency. Chunking is a pure function of (n,
// size()), never of timing: a kernel whose chunks write disjoint outputs gets the same bits however the chunks
// land on threads.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_NUMERICS_THREADPOOL_H
#define QOPT_NUMERICS_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qopt::num {

class ThreadPool {
public:
  // numThreads counts the calling thread too: ThreadPool(1) starts no worker and runs everything inline.
  // 0 (or a negative value) means std::thread::hardware_concurrency().
  // spinUs: how long a waiting thread polls before it sleeps (0: it sleeps at once); negative: QOPT_POOL_SPIN_US
  // where set to an integer from 0 to 100000, else kDefaultSpinUs.
  explicit ThreadPool(int numThreads, int spinUs = -1);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return numThreads; }
  int spinMicroseconds() const { return spinUs; }
  static constexpr int kDefaultSpinUs = 100;

  // Splits [0, n) into min(n, size()) contiguous chunks of near-equal length (chunk c is
  // [c*q + min(c, r), ...) with q = n / chunks, r = n % chunks), runs them on the workers and the calling thread,
  // and returns when all have finished. n <= 0 calls nothing. A call made from inside a running chunk (nested
  // parallelism), or while another thread's call holds the workers, runs the same chunks inline on the calling
  // thread instead of waiting, so it can neither deadlock nor change the split. If a chunk throws, the chunks not
  // yet started are skipped and the first exception is rethrown here once every worker has left the job: an
  // exception never escapes a worker thread (which would terminate the process).
  void parallelFor(int64_t n, const std::function<void(int64_t begin, int64_t end)> &fn);

  // The bounds of chunk `c` of `chunks` over [0, n); exposed so callers can reason about the split.
  static void chunkBounds(int64_t n, int64_t chunks, int64_t c, int64_t &begin, int64_t &end);

private:
  struct Job;
  void workerLoop();
  static void runChunks(Job &job);
  // Polls `ready` for up to spinUs microseconds; whether it became true.
  template <typename Ready> bool spinUntil(Ready ready) const;

  int numThreads = 1;
  int spinUs = 0;
  std::vector<std::thread> workers;

  std::mutex submitMutex; // held by the one parallelFor that owns the workers
  std::mutex mutex;       // guards everything below (the atomics are written under it and polled without it)
  std::condition_variable workCv;
  std::condition_variable doneCv;
  std::atomic<uint64_t> generation{0};
  Job *job = nullptr;
  std::atomic<int> activeWorkers{0};
  int sleepingWorkers = 0;     // workers waiting on workCv: a new job notifies them only when there are any
  bool callerSleeping = false; // parallelFor waiting on doneCv: the last worker out notifies only then
  std::atomic<bool> stopping{false};
};

// The process-wide pool used when a kernel is given none. Its size is QOPT_NUM_THREADS when that is set to a
// positive integer, else the hardware concurrency. Created on first use and never destroyed (so it cannot be torn
// down under a kernel still running in a static destructor).
ThreadPool &defaultThreadPool();

} // namespace qopt::num

#endif // QOPT_NUMERICS_THREADPOOL_H
