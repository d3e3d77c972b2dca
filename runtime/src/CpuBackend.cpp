//===- CpuBackend.cpp - the CPU backend: the reference kernels -------------===//
//
// Weights are used in place from the mmapped file; the arena is one 64-byte aligned allocation. Kernels come
// from lib/Numerics, the same code the compiler uses when it evaluates the model, so CPU results are the exact
// reference for every other backend.
//
//===----------------------------------------------------------------------===//
#include "Backend.h"

#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace qrt {
namespace {

class CpuBackend final : public Backend {
public:
  explicit CpuBackend(int numThreads) : pool(numThreads) {}
  ~CpuBackend() override {
    std::free(arenaBase);
    std::free(stateBase);
  }

  const char *name() const override { return "cpu"; }

  bool prepare(const Model &model, std::string &error) override {
    size_t bytes = static_cast<size_t>((model.arenaBytes + 63) / 64 * 64);
    arenaBytes = model.arenaBytes;
    arenaBase = static_cast<uint8_t *>(std::aligned_alloc(64, bytes ? bytes : 64));
    if (!arenaBase) {
      error = "cannot allocate the " + std::to_string(model.arenaBytes) + "-byte activation arena";
      return false;
    }
    // Zeroed once so that a kernel bug reading unwritten memory is at least deterministic.
    std::memset(arenaBase, 0, bytes ? bytes : 64);
    stateSize = static_cast<size_t>((model.stateBytes + 63) / 64 * 64);
    stateBase = static_cast<uint8_t *>(std::aligned_alloc(64, stateSize ? stateSize : 64));
    if (!stateBase) {
      error = "cannot allocate the " + std::to_string(model.stateBytes) + "-byte session state (KV cache)";
      return false;
    }
    return resetState(error);
  }

  uint64_t deviceBytes() const override {
    uint64_t total = (arenaBytes + 63) / 64 * 64 + stateSize;
    for (const Buffer &b : dynamic)
      total += b.capacity;
    return total;
  }

  void *arenaAddress(uint64_t offset) override { return arenaBase + offset; }
  void *stateAddress(uint64_t offset) override { return stateBase + offset; }
  const void *weightAddress(const Model &, const Value &value) override { return value.data; }

  // Kernels run synchronously on the calling thread (and the pool it waits for): copies need no ordering.
  bool upload(void *device, const void *host, size_t bytes, std::string &) override {
    if (bytes)
      std::memcpy(device, host, bytes);
    return true;
  }
  bool download(void *host, const void *device, size_t bytes, std::string &) override {
    if (bytes)
      std::memcpy(host, device, bytes);
    return true;
  }
  bool argmaxRows(const void *x, int64_t rows, int64_t cols, int64_t *ids, std::string &) override {
    for (int64_t r = 0; r < rows; ++r) // host addresses: no copy
      ids[r] = argmaxRow(static_cast<const float *>(x) + r * cols, cols);
    return true;
  }
  bool sampleRows(const void *x, int64_t rows, int64_t cols, const Sampling &s, const double *uniforms, int64_t *ids,
                  std::string &) override {
    for (int64_t r = 0; r < rows; ++r)
      ids[r] = sampleRow(static_cast<const float *>(x) + r * cols, cols, s, uniforms[r]);
    return true;
  }
  bool synchronize(std::string &) override { return true; }
  bool resetState(std::string &) override {
    std::memset(stateBase, 0, stateSize ? stateSize : 64);
    return true;
  }

  void *dynamicBuffer(uint32_t id, size_t bytes) override {
    if (id >= dynamic.size())
      dynamic.resize(id + 1);
    Buffer &b = dynamic[id];
    if (bytes <= b.capacity && b.data)
      return b.data.get();
    // A size read from run-time data can be anything: allocate without throwing and let the session report a
    // failure. calloc zeroes (as the arena is zeroed) without touching the pages of a large request.
    b.data.reset(); // the old buffer goes first, so growing never holds both
    b.data.reset(static_cast<uint8_t *>(std::calloc(std::max<size_t>(bytes, 1), 1)));
    b.capacity = b.data ? bytes : 0;
    return b.data.get();
  }

  // The CPU runs each family's reference implementation, whatever variant another target chose: a variant is
  // another implementation of the family's computation, so any model.bin runs here as the reference.
  Kernel bind(const qopt::num::KernelFamily &family, const std::string &, std::string &) override {
    return &family;
  }

  bool launch(Kernel kernel, qopt::num::KernelArgs &args, std::string &error) override {
    args.pool = &pool;
    return static_cast<const qopt::num::KernelFamily *>(kernel)->reference(args, error);
  }

private:
  qopt::num::ThreadPool pool;
  uint8_t *arenaBase = nullptr;
  uint8_t *stateBase = nullptr;
  size_t stateSize = 0;
  uint64_t arenaBytes = 0;
  struct Free {
    void operator()(uint8_t *p) const { std::free(p); }
  };
  struct Buffer {
    std::unique_ptr<uint8_t, Free> data;
    size_t capacity = 0;
  };
  std::vector<Buffer> dynamic;
};

} // namespace

std::unique_ptr<Backend> createCpuBackend(int numThreads) { return std::make_unique<CpuBackend>(numThreads); }

} // namespace qrt
