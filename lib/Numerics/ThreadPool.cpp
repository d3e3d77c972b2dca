//===- ThreadPool.cpp - persistent fork-join pool for the numerics kernels -===//
//
// Workers wait for a generation bump: polling it for spinUs microseconds, then asleep on a condition variable
// (counted in sleepingWorkers, so that a job published while every worker polls costs no notify). The current
// job lives on the submitting thread's stack; a worker may only touch it between registering itself in
// activeWorkers (under the mutex, while the job pointer is still set) and unregistering, and the submitter does
// not return until no worker is registered (polled, then waited for under the mutex, where it also unpublishes
// the job). Chunks are claimed from an atomic counter, so which thread runs which chunk varies, but the chunk
// bounds themselves never do.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace qopt::num {

namespace {
// Set while this thread is executing chunks of some pool's job: a nested parallelFor then runs inline, because
// waiting for workers that may all be busy in the outer job could deadlock.
thread_local int insideParallelFor = 0;

struct InsideGuard {
  InsideGuard() { ++insideParallelFor; }
  ~InsideGuard() { --insideParallelFor; }
};

// A polling loop's pause: it yields the core's pipeline to its sibling hyperthread and slows the loop's reads.
inline void cpuRelax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// QOPT_POOL_SPIN_US when it is an integer from 0 to 100000, else -1.
int spinFromEnvironment() {
  const char *env = std::getenv("QOPT_POOL_SPIN_US");
  if (!env)
    return -1;
  char *endp = nullptr;
  long v = std::strtol(env, &endp, 10);
  return endp != env && *endp == '\0' && v >= 0 && v <= 100000 ? static_cast<int>(v) : -1;
}
} // namespace

struct ThreadPool::Job {
  const std::function<void(int64_t, int64_t)> *fn = nullptr;
  int64_t n = 0;
  int64_t chunks = 0;
  std::atomic<int64_t> next{0};
  // The first exception a chunk threw (std::bad_alloc from a kernel's scratch buffer, say). Once one is set the
  // remaining chunks are skipped, and parallelFor rethrows it on the submitting thread after the workers are done.
  std::mutex errorMutex;
  std::exception_ptr error;
};

ThreadPool::ThreadPool(int n, int spin) {
  if (spin < 0) {
    static const int fromEnvironment = spinFromEnvironment();
    spin = fromEnvironment >= 0 ? fromEnvironment : kDefaultSpinUs;
  }
  spinUs = spin;
  if (n <= 0) {
    unsigned hw = std::thread::hardware_concurrency();
    n = hw == 0 ? 1 : static_cast<int>(std::min<unsigned>(hw, 1024));
  }
  numThreads = n;
  workers.reserve(static_cast<size_t>(n - 1));
  for (int i = 1; i < n; ++i)
    workers.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping.store(true);
  }
  workCv.notify_all();
  for (std::thread &t : workers)
    t.join();
}

void ThreadPool::chunkBounds(int64_t n, int64_t chunks, int64_t c, int64_t &begin, int64_t &end) {
  // q/r form instead of c*n/chunks: no int64 overflow for any n.
  int64_t q = n / chunks, r = n % chunks;
  begin = c * q + std::min(c, r);
  end = begin + q + (c < r ? 1 : 0);
}

void ThreadPool::runChunks(Job &job) {
  InsideGuard guard;
  for (;;) {
    int64_t c = job.next.fetch_add(1, std::memory_order_relaxed);
    if (c >= job.chunks)
      return;
    int64_t begin, end;
    chunkBounds(job.n, job.chunks, c, begin, end);
    try {
      (*job.fn)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.errorMutex);
      if (!job.error)
        job.error = std::current_exception();
      job.next.store(job.chunks, std::memory_order_relaxed);
      return;
    }
  }
}

template <typename Ready> bool ThreadPool::spinUntil(Ready ready) const {
  if (spinUs <= 0)
    return ready();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spinUs);
  for (int i = 0;; ++i) {
    if (ready())
      return true;
    if (i % 64 == 63 && std::chrono::steady_clock::now() >= deadline) // the clock read costs ~20 ns: not every turn
      return ready();
    cpuRelax();
  }
}

void ThreadPool::workerLoop() {
  uint64_t seen = 0;
  for (;;) {
    Job *current = nullptr;
    const auto ready = [&] {
      return stopping.load(std::memory_order_acquire) || generation.load(std::memory_order_acquire) != seen;
    };
    const bool polled = spinUntil(ready);
    {
      std::unique_lock<std::mutex> lock(mutex);
      if (!polled) {
        ++sleepingWorkers;
        workCv.wait(lock, ready);
        --sleepingWorkers;
      }
      if (stopping.load())
        return;
      seen = generation.load();
      current = job;
      if (!current)
        continue; // the job had already been finished by others
      activeWorkers.fetch_add(1);
    }
    runChunks(*current);
    bool notify;
    {
      std::lock_guard<std::mutex> lock(mutex);
      notify = activeWorkers.fetch_sub(1) == 1 && callerSleeping;
    }
    if (notify)
      doneCv.notify_all();
  }
}

void ThreadPool::parallelFor(int64_t n, const std::function<void(int64_t, int64_t)> &fn) {
  if (n <= 0)
    return;
  int64_t chunks = std::min<int64_t>(n, numThreads);
  auto runInline = [&] {
    InsideGuard guard;
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t begin, end;
      chunkBounds(n, chunks, c, begin, end);
      fn(begin, end);
    }
  };
  if (chunks == 1 || workers.empty() || insideParallelFor > 0) {
    runInline();
    return;
  }
  std::unique_lock<std::mutex> submitLock(submitMutex, std::try_to_lock);
  if (!submitLock.owns_lock()) {
    runInline();
    return;
  }

  Job j;
  j.fn = &fn;
  j.n = n;
  j.chunks = chunks;
  bool notify;
  {
    std::lock_guard<std::mutex> lock(mutex);
    job = &j;
    generation.fetch_add(1);
    notify = sleepingWorkers > 0;
  }
  if (notify)
    workCv.notify_all();
  runChunks(j);
  // Every chunk is now claimed; those not run here belong to registered workers. Unpublish the job once they
  // are done (polled first, then under the mutex, which decides) so a late worker finds nothing to touch.
  spinUntil([&] { return activeWorkers.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lock(mutex);
  if (activeWorkers.load() != 0) {
    callerSleeping = true;
    doneCv.wait(lock, [&] { return activeWorkers.load() == 0; });
    callerSleeping = false;
  }
  job = nullptr;
  lock.unlock();
  if (j.error)
    std::rethrow_exception(j.error);
}

ThreadPool &defaultThreadPool() {
  static ThreadPool *pool = [] {
    int n = 0;
    if (const char *env = std::getenv("QOPT_NUM_THREADS")) {
      char *endp = nullptr;
      long v = std::strtol(env, &endp, 10);
      // Ignore garbage ("", "abc", "4x") and absurd values rather than failing: the default is always usable.
      if (endp != env && *endp == '\0' && v > 0 && v <= 1024)
        n = static_cast<int>(v);
    }
    return new ThreadPool(n);
  }();
  return *pool;
}

} // namespace qopt::num
