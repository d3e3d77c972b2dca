//===- Backend.h - the runtime's device interface --------------------------===//
//
// A backend owns device memory (the arena, the session state and the weights' device copies) and runs kernel
// families with its own implementations, bound per instruction when a session starts. The session, shared by all
// backends, walks the program: it computes every value's shape with the kernels' shape functions on the host,
// checks it against the plan, runs host instructions (shape arithmetic) itself, and asks the backend to launch
// the rest.
//
// Device memory is reached only through this interface. The addresses it returns are in the backend's address
// space: the session stores them and hands them back to the backend's kernels, and never reads or writes through
// them; bytes cross between host and device only by upload and download. The CPU backend is the first
// implementation and the numeric reference (its addresses happen to be host addresses); a CUDA backend
// implements the same interface.
//
//===----------------------------------------------------------------------===//
#ifndef QRT_BACKEND_H
#define QRT_BACKEND_H

#include "Model.h"
#include "Sampling.h"

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace qrt {

// The index of the largest of n floats: the lowest such index, NaN never chosen (0 when every value is NaN). The
// reference for Backend::argmaxRows and the CUDA helper kernel qopt_argmax_rows.
inline int64_t argmaxRow(const float *row, int64_t n) {
  int64_t at = -1;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isnan(row[i]) && (at < 0 || row[i] > row[at]))
      at = i;
  return at < 0 ? 0 : at;
}

class Backend {
public:
  virtual ~Backend() = default;
  virtual const char *name() const = 0;
  // Allocates the arena (model.arenaBytes) and the session state (model.stateBytes, zeroed) and makes the weights
  // addressable; called once per session.
  virtual bool prepare(const Model &model, std::string &error) = 0;

  // Device addresses.
  virtual void *arenaAddress(uint64_t offset) = 0;
  virtual void *stateAddress(uint64_t offset) = 0;
  virtual const void *weightAddress(const Model &model, const Value &value) = 0;
  // Memory for value `id` whose size is only known at run time (Storage::Dynamic), or the device copy of a host
  // value; valid until the next call for the same id. Null if it cannot be allocated.
  virtual void *dynamicBuffer(uint32_t id, size_t bytes) = 0;

  // Copies host bytes to a device address, ordered after the kernels launched before it.
  virtual bool upload(void *device, const void *host, size_t bytes, std::string &error) = 0;
  // Copies device bytes to the host once the kernels launched before it have finished; returns when they are there.
  virtual bool download(void *host, const void *device, size_t bytes, std::string &error) = 0;
  // ids[r] = argmaxRow of row r of the float32 matrix [rows, cols] at device address `x`: a generator's next token
  // without its logits crossing to the host. This default downloads the rows.
  virtual bool argmaxRows(const void *x, int64_t rows, int64_t cols, int64_t *ids, std::string &error) {
    std::vector<float> host(static_cast<size_t>(rows * cols));
    if (!download(host.data(), x, host.size() * sizeof(float), error))
      return false;
    for (int64_t r = 0; r < rows; ++r)
      ids[r] = argmaxRow(host.data() + r * cols, cols);
    return true;
  }
  // ids[r] = sampleRow of row r of the float32 matrix [rows, cols] at device address `x` with uniforms[r] (a
  // sampling generator's next token without its logits crossing to the host). This default downloads the rows.
  virtual bool sampleRows(const void *x, int64_t rows, int64_t cols, const Sampling &s, const double *uniforms,
                          int64_t *ids, std::string &error) {
    std::vector<float> host(static_cast<size_t>(rows * cols));
    if (!download(host.data(), x, host.size() * sizeof(float), error))
      return false;
    for (int64_t r = 0; r < rows; ++r)
      ids[r] = sampleRow(host.data() + r * cols, cols, s, uniforms[r]);
    return true;
  }
  // Waits for every launch and copy issued so far.
  virtual bool synchronize(std::string &error) = 0;
  // Zeroes the state (qrt_session_reset).
  virtual bool resetState(std::string &error) = 0;

  // Recording a run (CUDA graphs): capture runs `body` (which only launches kernels on fixed addresses) and returns
  // its recording, or null with `error` set; replay runs the recording again. Backends that cannot record say so.
  using Graph = void *;
  virtual bool canCapture() const { return false; }
  virtual Graph capture(const std::function<bool(std::string &)> &body, std::string &error) {
    error = "this backend cannot record launches";
    return nullptr;
  }
  virtual bool replay(Graph graph, std::string &error) {
    error = "this backend cannot replay launches";
    return false;
  }
  // Device memory this backend holds (weights, arena, state, buffers), for reports.
  virtual uint64_t deviceBytes() const { return 0; }
  // The device and the libraries it runs products with, for reports ("" when there is nothing to say).
  virtual std::string deviceInfo() const { return {}; }

  // Whether the session may run an instruction this backend cannot bind on the host instead (the reference
  // kernel on downloaded operands, the results uploaded): true for accelerators, whose kernels cover the hot
  // families first; the CPU binds everything.
  virtual bool hostFallback() const { return false; }

  // This backend's implementation of a kernel family (of the named variant; empty: the default), bound once per
  // instruction when a session starts. Null, with `error` set, for a pair the backend lacks.
  using Kernel = const void *;
  virtual Kernel bind(const qopt::num::KernelFamily &family, const std::string &variant, std::string &error) = 0;
  // Runs a bound kernel on operands whose shapes are already inferred; every data pointer in `args` is a device
  // address of this backend.
  virtual bool launch(Kernel kernel, qopt::num::KernelArgs &args, std::string &error) = 0;
};

std::unique_ptr<Backend> createCpuBackend(int numThreads);
// The first CUDA GPU through the driver API (opened at run time); null with `error` set when there is none.
std::unique_ptr<Backend> createCudaBackend(std::string &error);

} // namespace qrt

#endif // QRT_BACKEND_H
