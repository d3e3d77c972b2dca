//===- Kernels.h - kernel families and their reference implementations -----===//
//
// A kernel family is what a `kern.launch` names: a signature (operand and result counts, which operands its shape
// function reads, whether it updates an operand in place or can be a view) and a shape function. Each family
// carries its reference implementation, in float32/float64/integer math on host memory: the compiler evaluates
// with it (folding, calibration, shape sampling) and the runtime's CPU backend runs it, so CPU results are the
// reference every other implementation is checked against.
//
// Implementations are per backend: a launch may name a variant of its family (a layout or an algorithm a target
// chose), and each runtime backend binds (family, variant) to its own code when a session starts, failing
// cleanly for a pair it lacks. The shape functions are target-neutral and shared by every backend, the memory
// planner and the loader, so compile-time plans and run-time shapes cannot disagree.
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
// KernelFamily::shapeDataInputs, which is always present). Returns false with `error` set on invalid operands.
using InferFn = bool (*)(const KernelArgs &, std::string &error);
// Computes outputs whose data buffers are allocated with the inferred shapes (all in host memory).
using RunFn = bool (*)(const KernelArgs &, std::string &error);
// Whether the kernel, on an input of this shape, produces the input's bytes unchanged (a reshape; a transpose that
// moves only unit dims), so that its result can be the input's memory with no launch.
using ViewFn = bool (*)(const Shape &input, const Attrs &attrs);

struct KernelFamily {
  const char *name;
  int minInputs;
  int maxInputs;       // -1: variadic
  int numOutputs;      // -1: given by the launch's "num_outputs" attribute
  uint32_t shapeDataInputs; // bit i: the shape function reads input i's values
  InferFn infer;
  RunFn reference; // the reference implementation (host memory)
  const char *summary;
  // >= 0: the kernel updates this input in place and its single result is that input after the update (the same
  // memory; a state value the session keeps between runs, such as a KV cache). The result's shape is the input's.
  int inPlace = -1;
  // Set for kernels whose result can be a view of input 0 (see ViewFn). The memory planner makes such a result an
  // alias of its input's slot where the view holds for every shape the program can see; the runtime then skips
  // the launch (and checks that the view holds for the actual shapes).
  ViewFn isView = nullptr;
  // The kernel reads only its operands' shapes, never their data (shape, size): it can run where its operand's
  // bytes are not (on the host, for a value in device memory).
  bool readsShapesOnly = false;
  // Bit i: the result may be written over input i (the same slot) where input i is not read after this kernel:
  // element j of the result reads element j of input i and no other of its elements (an elementwise kernel over
  // operands of the result's shape), so writing in place loses nothing. The planner shares such a slot (a
  // prompt's gated activation over its gate, the largest buffer of a Llama layer) and the loader allows it.
  uint32_t overwrites = 0;
};

const KernelFamily *lookupFamily(std::string_view name);

// Runs k.infer, then checks what it inferred: every result shape has non-negative dims and at most kMaxElements
// elements. Every caller (runtime, planner, folder, shape inference) goes through it, so a shape computed from a
// hostile file's values never sizes an allocation unchecked.
bool inferShapes(const KernelFamily &k, const KernelArgs &args, std::string &error);
// Shape arithmetic at compile time: after inferShapes, when the kernel updates no operand in place, every present
// input has data (or the kernel reads only shapes) and every output has at most maxElements and is not float
// (unless `floats`), runs the reference kernel with output i in storage[i] (resized; its data points there) and
// sets `evaluated`. Returns false, with `error` set, only if the kernel fails.
bool evaluateSmall(const KernelFamily &k, const KernelArgs &args, int64_t maxElements, bool floats,
                   const std::vector<std::vector<uint8_t> *> &storage, bool &evaluated, std::string &error);
const std::vector<const KernelFamily *> &allFamilies();

// Registration used by the kernel family files (Kernels/*.cpp).
template <size_t N> void appendKernels(std::vector<const KernelFamily *> &out, const KernelFamily (&defs)[N]) {
  for (const KernelFamily &k : defs)
    out.push_back(&k);
}
void registerActivationKernels(std::vector<const KernelFamily *> &out);
void registerAttentionKernels(std::vector<const KernelFamily *> &out);
void registerCacheKernels(std::vector<const KernelFamily *> &out);
void registerElementwiseKernels(std::vector<const KernelFamily *> &out);
void registerShapeKernels(std::vector<const KernelFamily *> &out);
void registerLinalgKernels(std::vector<const KernelFamily *> &out);
void registerReduceKernels(std::vector<const KernelFamily *> &out);
void registerConvKernels(std::vector<const KernelFamily *> &out);
void registerIndexKernels(std::vector<const KernelFamily *> &out);
void registerQuantKernels(std::vector<const KernelFamily *> &out);

// Shape helpers shared by kernels and the compiler's shape inference.
bool broadcastShapes(const Shape &a, const Shape &b, Shape &out);
// ONNX axis normalization: returns false if `axis` is outside [-rank, rank).
bool normalizeAxis(int64_t &axis, int64_t rank);

} // namespace qopt::num

#endif // QOPT_NUMERICS_KERNELS_H
