//===- ThreadPool.cpp - persistent fork-join pool for the numerics kernels -===//
//
// Workers sleep on a condition variable and wake on a generation bump. The current job lives on the submitting
// thread's stack; a worker may only touch it between registering itself in activeWorkers (under the mutex, while
// the job pointer is still set) and unregistering, and the submitter does not return until no worker is
// registered. Chunks are claimed from an atomic counter, so which thread runs which chunk varies, but the chunk
// bounds themselves never do.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace qopt::num {

namespace {
// Set while this thread is executing chunks of some pool's job: a nested parallelFor then runs inline, because
// waiting for workers that may all be busy in the outer job could deadlock.
thread_local int insideParallelFor = 0;

struct InsideGuard {
  InsideGuard() { ++insideParallelFor; }
  ~InsideGuard() { --insideParallelFor; }
};
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

ThreadPool::ThreadPool(int n) {
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
    stopping = true;
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

void ThreadPool::workerLoop() {
  uint64_t seen = 0;
  for (;;) {
    Job *current = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex);
      workCv.wait(lock, [&] { return stopping || generation != seen; });
      if (stopping)
        return;
      seen = generation;
      current = job;
      if (!current)
        continue; // woke after that job had already been finished by others
      ++activeWorkers;
    }
    runChunks(*current);
    {
      std::lock_guard<std::mutex> lock(mutex);
      --activeWorkers;
    }
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
  {
    std::lock_guard<std::mutex> lock(mutex);
    job = &j;
    ++generation;
  }
  workCv.notify_all();
  runChunks(j);
  // Every chunk is now claimed; those not run here belong to registered workers. Unpublish the job once they
  // are done so a late-waking worker finds nothing to touch.
  std::unique_lock<std::mutex> lock(mutex);
  doneCv.wait(lock, [&] { return activeWorkers == 0; });
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
