//===- Session.h - running a model's program -------------------------------===//
#ifndef QRT_SESSION_H
#define QRT_SESSION_H

#include "Backend.h"

#include <cstdlib>
#include <map>

namespace qrt {

class Session {
public:
  Session(const Model &model, std::unique_ptr<Backend> backend);
  ~Session();
  bool prepare(std::string &error);
  // Returns 0 on success or a qrt_status_code.
  int setInput(const std::string &name, qopt::num::DType dtype, const std::vector<int64_t> &shape,
               const void *data, std::string &error);
  // Runs the first specialized entry whose inputs take the shapes set (the one-token decode step), else the
  // general entry.
  int run(std::string &error);
  // Runs the named entry; an error if the inputs set do not fit it.
  int runEntry(const std::string &name, std::string &error);
  // The entry the last run ran (null before the first run).
  const Entry *lastEntry() const { return last; }
  // Instructions (over all entries) that run on the host because the backend has no kernel for them.
  size_t hostFallbacks() const { return fallbackCount; }
  const char *backendName() const { return backend->name(); }
  uint64_t memoryBytes() const { return backend->deviceBytes(); }
  std::string deviceInfo() const { return backend->deviceInfo(); }
  // Zeroes the session state (the KV cache and its length): the next run starts a new sequence.
  int reset(std::string &error);
  // The named output of the last run, in host memory (downloaded on first request); valid until the next run.
  // Null with `error` set if there is no such output or it cannot be fetched.
  const qopt::num::Tensor *output(const std::string &name, int &code, std::string &error);
  // Rows [first, first + count) of the named output viewed as [rows, last dim], [count, last dim] in host memory:
  // only those bytes come from the device (the last position's logits, not a prompt's). Valid until the next run.
  const qopt::num::Tensor *outputRows(const std::string &name, int64_t first, int64_t count, int &code,
                                      std::string &error);

  // ids[i] = the index of the largest value of row first + i of the named float32 output viewed as [rows, last
  // dim] (argmaxRow), for i < count, computed where the output lives: a generator's next token without the logits
  // crossing to the host.
  bool argmaxRows(const std::string &name, int64_t first, int64_t count, int64_t *ids, int &code,
                  std::string &error);
  // ids[i] = the token drawn from row first + i by uniforms[i] (sampleRow), likewise where the output lives.
  bool sampleRows(const std::string &name, int64_t first, int64_t count, const Sampling &s, const double *uniforms,
                  int64_t *ids, int &code, std::string &error);

private:
  // Host memory that grows on demand and reports failure instead of throwing (sizes can come from run-time data).
  struct HostBuffer {
    struct Free {
      void operator()(uint8_t *p) const { std::free(p); }
    };
    std::unique_ptr<uint8_t, Free> data;
    size_t capacity = 0;
    uint8_t *reserve(size_t bytes);
  };

  const Model &model;
  std::unique_ptr<Backend> backend;
  int execute(const Entry &entry, size_t entryIndex, std::string &error);
  int runProgram(const Entry &entry, size_t entryIndex, std::string &error);
  bool isStatic(const Entry &entry) const; // every input dim fixed
  bool fits(const Entry &entry, std::string *why) const;
  // Value `id` with host data: its own (weights, inputs, host values) or a download of its device bytes.
  const qopt::num::Tensor *hostView(uint32_t id, std::string &error);
  uint32_t outputId(const std::string &name, std::string &error) const;
  uint32_t outputRowsId(const std::string &name, int64_t first, int64_t count, std::string &error) const;
  // Value `id` with device data: a host value is uploaded once per run.
  const qopt::num::Tensor *deviceView(uint32_t id, std::string &error);

  std::vector<std::vector<Backend::Kernel>> bound; // per entry, per instruction: the backend's implementation
  std::vector<std::vector<bool>> fallback; // per entry, per instruction: no device kernel, runs on the host
  size_t fallbackCount = 0;
  std::vector<bool> graphable;          // per entry: recorded once and replayed (Backend::capture)
  std::vector<Backend::Graph> graphs;   // per entry: its recording, once made
  bool runOnHost(const Instr &in, qopt::num::KernelArgs &args, std::string &error);
  std::vector<qopt::num::Tensor> tensors; // every value's current dtype and shape, and its device address
  std::vector<const void *> hostData;     // the host bytes of weights, inputs and host values
  HostBuffer hostArena;                   // Storage::Host values
  // Per value: host copies of device bytes (downloads), device copies of host values (uploads), and the run in
  // which each was made (a value changes from one run to the next).
  std::vector<qopt::num::Tensor> hostCopy, deviceCopy;
  std::vector<HostBuffer> downloaded;
  HostBuffer rowsBuffer;
  qopt::num::Tensor rowsView;
  std::vector<uint64_t> downloadedIn, uploadedIn;
  uint64_t runs = 0;
  // The inputs set, by their index in the general entry (every entry's inputs match them by name).
  std::vector<std::vector<uint8_t>> inputData;
  std::vector<qopt::num::Shape> inputShape;
  std::vector<bool> inputSet;
  const Entry *last = nullptr;
  // QRT_PROFILE=1: seconds and launches per kernel name; runs, launches, host instructions and transfers per entry,
  // printed to stderr when the session ends.
  bool profile = false, profileShapes = false; // QRT_PROFILE set; =shapes: kernel times by operand shapes too
  long profileWarmup = 0; // QRT_PROFILE_WARMUP: each entry's first runs counted but not timed
  std::map<std::string, std::pair<double, int64_t>> kernelTime;
  // QRT_SKIP=family[,family...]: device launches of these kernel families are left out, for timing what a step
  // would cost without them (a what-if for fusion work; the results are wrong).
  std::vector<std::string> skip;
  struct EntryCounts {
    int64_t runs = 0, launches = 0, host = 0, fallbacks = 0, uploads = 0, downloads = 0;
  };
  std::map<std::string, EntryCounts> entryCounts;
  EntryCounts *counting = nullptr; // the running entry's, when profiling
};

} // namespace qrt

#endif // QRT_SESSION_H
