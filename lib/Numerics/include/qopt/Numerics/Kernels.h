//===- Kernels.h - the CPU reference kernel table --------------------------===//
//
// Every kernel the `kern` dialect can launch has one entry here: its name, operand counts, a shape function and a
// CPU implementation in float32/float64/integer math. The runtime's CPU backend executes programs with this
// table; the compiler's memory planner calls the same shape functions (with `data` left null for float tensors)
// so compile-time plans and run-time shapes cannot disagree. A GPU backend keeps its own table of launchers under
// the same names and reuses the shape functions.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_NUMERICS_KERNELS_H
#define QOPT_NUMERICS_KERNELS_H

#include "qopt/Numerics/Tensor.h"

#include <string>
#include <string_view>
#include <vector>

namespace qopt::num {

class ThreadPool;

struct KernelArgs {
  std::vector<const Tensor *> inputs; // null for an absent optional operand
  std::vector<Tensor *> outputs;
  const Attrs *attrs = nullptr;
  ThreadPool *pool = nullptr;

  const Tensor *in(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
};

// Sets every output's dtype and shape from the inputs (and from the data of the inputs named in
// KernelDef::shapeDataInputs, which is always present). Returns false with `error` set on invalid operands.
using InferFn = bool (*)(const KernelArgs &, std::string &error);
// Computes outputs whose data buffers are allocated with the inferred shapes.
using RunFn = bool (*)(const KernelArgs &, std::string &error);
// Whether the kernel, on an input of this shape, produces the input's bytes unchanged (a reshape; a transpose that
// moves only unit dims), so that its result can be the input's memory with no launch.
using ViewFn = bool (*)(const Shape &input, const Attrs &attrs);

struct KernelDef {
  const char *name;
  int minInputs;
  int maxInputs;       // -1: variadic
  int numOutputs;      // -1: given by the launch's "num_outputs" attribute
  uint32_t shapeDataInputs; // bit i: the shape function reads input i's values
  InferFn infer;
  RunFn run;
  const char *summary;
  // >= 0: the kernel updates this input in place and its single result is that input after the update (the same
  // memory; a state value the session keeps between runs, such as a KV cache). The result's shape is the input's.
  int inPlace = -1;
  // Set for kernels whose result can be a view of input 0 (see ViewFn). The memory planner makes such a result an
  // alias of its input's slot where the view holds for every shape the program can see; the runtime then skips
  // the launch (and checks that the view holds for the actual shapes).
  ViewFn isView = nullptr;
};

const KernelDef *lookupKernel(std::string_view name);

// Runs k.infer, then checks what it inferred: every result shape has non-negative dims and at most kMaxElements
// elements. Every caller (runtime, planner, folder, shape inference) goes through it, so a shape computed from a
// hostile file's values never sizes an allocation unchecked.
bool inferShapes(const KernelDef &k, const KernelArgs &args, std::string &error);
const std::vector<const KernelDef *> &allKernels();

// Registration used by the kernel family files (Kernels/*.cpp).
template <size_t N> void appendKernels(std::vector<const KernelDef *> &out, const KernelDef (&defs)[N]) {
  for (const KernelDef &k : defs)
    out.push_back(&k);
}
void registerActivationKernels(std::vector<const KernelDef *> &out);
void registerAttentionKernels(std::vector<const KernelDef *> &out);
void registerCacheKernels(std::vector<const KernelDef *> &out);
void registerElementwiseKernels(std::vector<const KernelDef *> &out);
void registerShapeKernels(std::vector<const KernelDef *> &out);
void registerLinalgKernels(std::vector<const KernelDef *> &out);
void registerReduceKernels(std::vector<const KernelDef *> &out);
void registerConvKernels(std::vector<const KernelDef *> &out);
void registerIndexKernels(std::vector<const KernelDef *> &out);
void registerQuantKernels(std::vector<const KernelDef *> &out);

// Shape helpers shared by kernels and the compiler's shape inference.
bool broadcastShapes(const Shape &a, const Shape &b, Shape &out);
// ONNX axis normalization: returns false if `axis` is outside [-rank, rank).
bool normalizeAxis(int64_t &axis, int64_t rank);

} // namespace qopt::num

#endif // QOPT_NUMERICS_KERNELS_H
