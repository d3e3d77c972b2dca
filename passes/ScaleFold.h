//===- ScaleFold.h - per-input-channel scales folded into a layer's producer --===//
//
// AWQ and SmoothQuant both rescale the input channels of a group of linear layers that read one input x: the
// layers' weights are multiplied by diag(s) and x is divided by s where x is produced, so the float model computes
// the same function. ScaleSink finds where 1/s can go (the RMSNorm or LayerNorm weight that multiplies x, the output
// columns of the previous linear layer when x = act(g) * (h W_up) or x is the attention output of v_proj's values,
// or, after an activation with no parameter, a new multiplication) and applies it.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_PASSES_SCALEFOLD_H
#define QOPT_PASSES_SCALEFOLD_H

#include "qopt/Dialect/NN/NNDialect.h"

#include <string>
#include <vector>

namespace qopt {

// A constant's float32 values, copied out; false if `v` is not a float32 nn.constant.
bool readFloats(mlir::Value v, std::vector<float> &out, llvm::SmallVectorImpl<int64_t> &shape);
// Replaces the value of constant `c` (only used by `user`, or cloned for it otherwise) with new data; `suffix`
// names a new resource (c's name + suffix).
void setFloats(nn::ConstantOp c, mlir::Operation *user, llvm::ArrayRef<float> data, llvm::StringRef suffix);

// qopt-calibrate's record of a layer's input (`qopt.calib`): its kept rows X [S, K] and mean |x| per channel [K];
// false if the layer has none.
bool calibSamples(nn::MatmulOp mm, std::vector<float> &X, int64_t &S, std::vector<float> &meanAbs);

struct ScaleSink {
  int64_t K = 0;
  mlir::Value src; // x, or the value a chain of last-dim-preserving reshapes makes x from
  nn::ConstantOp gamma, gammaBias; // the norm's weight (and bias) that multiplies x
  mlir::Operation *gammaUser = nullptr;
  nn::MatmulOp prev;       // or the previous linear layer, whose output columns are x's channels
  nn::ConstantOp prevBias; // and its bias
  mlir::Operation *activation = nullptr; // or the activation whose output x is
  std::string layer;       // the group's first layer, to name a new constant

  // Finds where 1/s can go for the layers `mms` that read x (all of them: x must have no other reader but ops that
  // read its shape). False with `why` when there is no such place.
  bool find(mlir::Value x, llvm::ArrayRef<nn::MatmulOp> mms, std::string &why);
  // x <- x / s (s: K positive values), in the producer found; `suffix` names the rewritten constants.
  void divideInput(llvm::ArrayRef<float> s, llvm::StringRef suffix);
};

} // namespace qopt

#endif // QOPT_PASSES_SCALEFOLD_H
