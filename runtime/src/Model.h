//===- Model.h - a loaded, validated model.bin -----------------------------===//
//
// The loader maps the file, checks the header, section table and every checksum, then decodes the value table
// and the program into these structures, validating each index and size against the file and the kernel table.
// After load() succeeds, execution may trust the structures: indices are in range, weights lie inside the file,
// arena slots inside the arena, kernel operand counts within their kernels' limits.
//
//===----------------------------------------------------------------------===//
#ifndef QRT_MODEL_H
#define QRT_MODEL_H

#include "qopt/Format/ModelBin.h"
#include "qopt/Numerics/Kernels.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qrt {

struct Value {
  std::string name;
  qopt::num::DType dtype = qopt::num::DType::Undefined;
  qopt::format::Storage storage = qopt::format::Storage::Arena;
  std::vector<int64_t> dims;    // -1 where dynamic
  std::vector<int64_t> maxDims; // the plan's bound for each dim
  uint64_t offset = 0;          // into the weights section, the arena, the state or the host arena; an external
                                // weight's index
  uint64_t maxBytes = 0;        // bytes reserved (arena) or held (weight)
  const uint8_t *data = nullptr; // a weight's bytes (in the file, or the host's for an external one)

  bool isWeight() const {
    return storage == qopt::format::Storage::Weight || storage == qopt::format::Storage::External;
  }
};

// Supplies the bytes of external weights (Storage::External): called once per such weight at load with its
// index, name, dtype and size; returns null if it has none. The bytes must outlive the model.
using WeightResolver =
    std::function<const void *(uint64_t index, const std::string &name, qopt::num::DType dtype, uint64_t bytes)>;

struct Instr {
  const qopt::num::KernelFamily *family = nullptr;
  std::string variant; // empty: the backend's default implementation of the family
  std::vector<uint32_t> inputs; // qopt::format::kNoValue for an absent optional operand
  std::vector<uint32_t> outputs;
  qopt::num::Attrs attrs;
  bool view = false; // the result is input 0's memory (KernelFamily::isView, planned as an alias): nothing to launch
  bool host = false; // the results are in the host arena: the session runs the reference kernel on the host
};

// One function of the model.bin: its own inputs (matching the first entry's by name, dtype and rank), outputs and
// program over the shared values. The first entry is the general one (dynamic dims up to their bounds); others
// are specializations (the one-token `decode` step) that the session runs when the inputs have their shapes.
struct Entry {
  std::string name;
  uint64_t arenaBytes = 0; // the part of the session's arena this entry uses
  uint64_t hostBytes = 0;  // the part of the session's host arena this entry uses
  std::vector<uint32_t> inputs, outputs;
  std::vector<std::string> outputNames; // parallel to `outputs`
  std::vector<Instr> program;
  size_t launches = 0; // instructions that launch a kernel (all but views)
};

// Device code from the kernels section (a model compiled for a CUDA target).
struct DeviceImage {
  std::string arch; // "sm_90a" (cubin) or "compute_80" (PTX)
  qopt::format::ImageFormat format = qopt::format::ImageFormat::Cubin;
  const uint8_t *data = nullptr; // in the mapped file
  uint64_t size = 0;
};
// A kernel instructions name as their variant, and how to launch it.
struct DeviceKernel {
  std::string symbol;
  qopt::format::KernelLaunch launch;
};
constexpr uint32_t kMaxKernelOperands = 12; // QParams in lib/Codegen/cuda/prelude.cuh

class MappedFile;

class Model {
public:
  Model(); // empty; load() and loadImage() fill it (tests build device-code models by hand)
  ~Model();
  // Maps and loads a file. Returns null and sets `error` (and `code`, a qrt_status_code) on failure.
  static std::unique_ptr<Model> load(const std::string &path, const WeightResolver &resolver, std::string &error,
                                     int &code);
  // Loads a model.bin image in memory (the same checks); `name` prefixes the errors. The bytes must stay valid
  // and unchanged until the model is freed, and start on a kImageAlignment boundary (weights are aligned within
  // the file, and kernels read them in place).
  static std::unique_ptr<Model> loadImage(const uint8_t *bytes, uint64_t size, const std::string &name,
                                          const WeightResolver &resolver, std::string &error, int &code);
  static constexpr uint64_t kImageAlignment = 64;

  std::vector<Value> values;
  std::vector<Entry> entries; // at least one; entries[0] is the general entry
  const Entry &general() const { return entries[0]; }
  uint64_t arenaBytes = 0; // the session's arena: the largest entry's
  uint64_t stateBytes = 0; // the session's state (Storage::State values), kept between runs
  uint64_t hostBytes = 0;  // the session's host arena (Storage::Host values: shape arithmetic), the largest entry's
  std::map<std::string, std::string> meta;
  const uint8_t *weights = nullptr;
  uint64_t weightsSize = 0;
  const uint8_t *tokenizer = nullptr;
  uint64_t tokenizerSize = 0;
  std::vector<DeviceImage> deviceImages;
  std::vector<DeviceKernel> deviceKernels;

private:
  std::unique_ptr<MappedFile> file;
};

} // namespace qrt

#endif // QRT_MODEL_H
