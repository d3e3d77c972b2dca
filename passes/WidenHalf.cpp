//===- WidenHalf.cpp - a float16 / bfloat16 model read as float32 ----------===//
//
// The compiler's reference computes in float32 and chooses each target's precision itself (16-bit weights and
// activations on a GPU), so a model exported in float16 or bfloat16 is read as the float32 model whose values it
// holds: right after conversion to nn ops, every 16-bit float tensor of the function becomes float32.
//   - the function's inputs and outputs, and every typed value (block arguments, op results: a cast to float16
//     becomes a cast to float32, as nn ops take their target types from their results);
//   - constants (initializers, Constant nodes): widened exactly into new float32 values, the 16-bit blobs released.
// Widening is exact (every float16 and bfloat16 value is a float32 value); the arithmetic then rounds to float32
// instead of to 16 bits. Memory: the float32 constants take twice the 16-bit bytes (which, mmapped from the model
// file, are released). Those of 1 MiB or more live in unlinked temporary files ($TMPDIR, else /tmp) mapped shared
// (ConstantStorage.h), as a float32 export's mmapped external data: pages the system writes back and drops under
// memory pressure, so that a float16 model compiles within the memory its float32 export would (an 8B model's 32 GB
// of float32 weights on a 24 GB machine); where no file can be made (no space), in memory.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/ConstantStorage.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/ThreadPool.h"
#include "qopt/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/Support/Format.h"

#include <cstring>

namespace qopt {
#define GEN_PASS_DEF_WIDENHALFPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

bool isHalf(Type t) { return t.isF16() || t.isBF16(); }

Type widened(Type t) {
  auto st = dyn_cast<TensorType>(t);
  if (!st || !isHalf(st.getElementType()))
    return t;
  return st.clone(Float32Type::get(t.getContext()));
}

float toFloat(uint16_t bits, bool bf16) {
  if (!bf16)
    return num::halfToFloat(bits);
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

struct WidenHalfPass : qopt::impl::WidenHalfPassBase<WidenHalfPass> {
  int64_t constants = 0;
  uint64_t halfBytes = 0, fileBytes = 0;
  bool noFile = false; // a constant that should have been file-backed is in memory

  // The float32 version of a 16-bit constant, or null if it cannot be read.
  ElementsAttr widenConstant(ElementsAttr value, StringRef key) {
    num::Tensor t;
    std::vector<uint8_t> storage;
    if (!nn::readConstant(value, t, storage))
      return {};
    auto type = cast<RankedTensorType>(widened(value.getType()));
    const bool bf16 = cast<ShapedType>(value.getType()).getElementType().isBF16();
    const int64_t count = t.numel();
    const auto *src = static_cast<const uint16_t *>(t.data);
    ++constants;
    halfBytes += static_cast<uint64_t>(count) * sizeof(uint16_t);
    if (count <= 64) { // small (a Constant node's scalar): inline
      SmallVector<float> v(count);
      for (int64_t i = 0; i < count; ++i)
        v[i] = toFloat(src[i], bf16);
      return DenseElementsAttr::get(type, ArrayRef<float>(v));
    }
    const size_t bytes = static_cast<size_t>(count) * sizeof(float);
    bool inFile = false;
    AsmResourceBlob blob = nn::allocateConstantBlob(bytes, 8, &inFile);
    if (inFile)
      fileBytes += bytes;
    else if (bytes >= nn::kFileBackedBytes)
      noFile = true;
    auto *dst = reinterpret_cast<float *>(blob.getMutableData().data());
    num::defaultThreadPool().parallelFor(count, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        dst[i] = toFloat(src[i], bf16);
    });
    auto &mgr = DenseResourceElementsHandle::getManagerInterface(&getContext());
    return DenseResourceElementsAttr::get(type, mgr.insert(key, std::move(blob)));
  }

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    constants = 0; // counts for this function's remark
    halfBytes = fileBytes = 0;
    noFile = false;
    // Typed values: arguments and results of the function, its blocks and ops.
    func.walk([](Block *block) {
      for (BlockArgument arg : block->getArguments())
        arg.setType(widened(arg.getType()));
    });
    SmallVector<Type> ins, outs;
    for (Type t : func.getArgumentTypes())
      ins.push_back(widened(t));
    for (Type t : func.getResultTypes())
      outs.push_back(widened(t));
    func.setFunctionType(FunctionType::get(&getContext(), ins, outs));

    bool failedRead = false;
    func.walk([&](Operation *op) {
      if (auto c = dyn_cast<nn::ConstantOp>(op)) {
        ElementsAttr value = c.getValue();
        if (!isHalf(cast<ShapedType>(value.getType()).getElementType()))
          return;
        const std::string key = (c.getName() ? c.getName()->str() : std::string("constant")) + ".f32";
        ElementsAttr wide = widenConstant(value, key);
        if (!wide) {
          c.emitError() << "qopt-widen-half: cannot read this constant: " << nn::unreadableConstantReason(value);
          failedRead = true;
          return;
        }
        c.setValueAttr(wide);
        c.getResult().setType(cast<RankedTensorType>(wide.getType()));
        // The 16-bit bytes (most often the model file's mapping) are not needed any more; no other op holds an
        // initializer's resource.
        if (auto res = dyn_cast<DenseResourceElementsAttr>(value))
          res.getRawHandle().getResource()->setBlob(AsmResourceBlob());
        return;
      }
      for (Value r : op->getResults())
        r.setType(widened(r.getType()));
    });
    if (failedRead)
      return signalPassFailure();
    if (constants > 0) {
      std::string msg;
      llvm::raw_string_ostream os(msg);
      os << "qopt-widen-half: a 16-bit float model, read as float32: " << constants << " constants ("
         << llvm::format("%.1f", static_cast<double>(halfBytes) / 1048576.0) << " MB) widened to float32";
      if (fileBytes > 0)
        os << ", " << llvm::format("%.1f", static_cast<double>(fileBytes) / 1048576.0) << " MB of them in temporary "
           << "files under " << nn::constantFileDirectory();
      if (noFile)
        os << " (no temporary file could be made under " << nn::constantFileDirectory() << ": the rest in memory)";
      mlir::emitRemark(func.getLoc()) << msg;
    }
  }
};

} // namespace
