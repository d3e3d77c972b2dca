//===- ModelRunner.h - running the model being compiled through the runtime ===//
//
// Passes that measure the float model (qopt-calibrate's statistics, qopt-assign-precision's sensitivities) run a
// copy of it through the runtime (qrt, CPU backend), so they see exactly the numbers the compiled model computes.
// The copy's model.bin holds only the program: its weights stay in this process's constants, handed to the
// runtime as external weights, so running adds no copy of the model (unless the caller redirects weights).
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_PASSES_MODELRUNNER_H
#define QOPT_PASSES_MODELRUNNER_H

#include "qopt/Serialize/ModelWriter.h"

#include "LmDriver.h"
#include "qrt.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <functional>
#include <string>
#include <vector>

namespace qopt {

class ModelRunner {
public:
  ModelRunner() = default;
  ModelRunner(const ModelRunner &) = delete;
  ModelRunner &operator=(const ModelRunner &) = delete;
  ~ModelRunner() { close(); }

  // Compiles `copy` (a clone of the module, its function's outputs as the caller wants them) for the CPU runtime,
  // every named dim bounded for windows of `L` tokens (batch dims 1) and a raised graph's KV cache in session
  // state, and opens a session with an LmDriver. `copy` must outlive the runner. Before the session starts,
  // `redirect` (if set) may change the address of an external weight (by its name; `bytes` to keep).
  bool open(mlir::ModuleOp copy, int64_t L, std::string &error,
            const std::function<const void *(const std::string &name, const void *data, uint64_t bytes)> &redirect = {});
  void close();

  qrt_model *model = nullptr;
  qrt_session *session = nullptr;
  qrt::LmDriver lm;

private:
  ExternalWeights external;
};

// The token windows of `calib` (text tokenized with `tokenizer` with BOS once, or a .npy of int32 ids: 1-D a
// stream, 2-D a window per row with negative ids as padding), cut into windows of at most L tokens (at least 2).
// `vocab` is the model's vocabulary size for the tokenizer.
bool loadTokenWindows(const std::string &calib, const std::string &tokenizer, int32_t vocab, int64_t L,
                      std::vector<std::vector<int32_t>> &windows, std::string &error);

// Shuffles `windows` with a seeded Fisher-Yates (a standardized generator: the same order everywhere) and keeps at
// most `count` of them.
void pickWindows(std::vector<std::vector<int32_t>> &windows, uint64_t seed, int64_t count);

// The vocabulary size of `func`'s `logits` output (its static last dim), 0 if it has none.
int32_t logitsVocab(mlir::func::FuncOp func);

// The window length of a measuring pass: `seqLen` tokens, or with 0 min(512, the model's context bound); more than
// the bound is an error (a whole sentence in `error`).
bool calibrationLength(mlir::ModuleOp module, int64_t seqLen, int64_t &L, std::string &error);

// The calibration windows of a measuring pass: `calib` (see loadTokenWindows) cut into windows of `L` tokens,
// `samples` of them picked with `seed`. Errors (no data, no window of 2 tokens) are whole sentences in `error`.
bool calibrationWindows(mlir::ModuleOp module, const std::string &calib, const std::string &tokenizer,
                        int64_t samples, int64_t L, uint64_t seed, std::vector<std::vector<int32_t>> &windows,
                        std::string &error);

// A clone of `module` for measuring values of its first function: that function returns its outputs except the
// logits (the largest activation, which no measurement needs), then `values` (values of `module`'s first
// function) as outputs named `prefix` + their index, and ops that nothing reads any more are erased. Cloning
// shares the weights' storage.
mlir::OwningOpRef<mlir::ModuleOp> cloneWithOutputs(mlir::ModuleOp module, llvm::ArrayRef<mlir::Value> values,
                                                   llvm::StringRef prefix);

} // namespace qopt

#endif // QOPT_PASSES_MODELRUNNER_H
