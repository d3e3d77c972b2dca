//===- QntBuild.h - replace a linear layer by qnt.linear -------------------===//
//
// Shared by the quantizers (rtn, gptq): the packed weight, scales and zero points become dense_resource
// constants named after the layer's weight, and the nn.matmul a qnt.linear with the format's attributes. The
// qnt.linear records how it was made and what it costs in accuracy, for reports:
//   qopt.quant = {method = "rtn" | "awq" | "gptq", weight_error = ||W - Wq|| / ||W||,
//                 output_error = ||X (W - Wq)|| / ||X W||  (on the calibration rows, when the layer has them)}
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_PASSES_QNTBUILD_H
#define QOPT_PASSES_QNTBUILD_H

#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Numerics/QuantFormat.h"

#include <string>

namespace qopt {

// `w` is the float weight [K, N] that `q` quantizes (after any AWQ scaling); `method` names the quantizer. With
// `releaseWeight` the float weight's constant goes too when nothing else reads it (releaseDeadConstant); without,
// the caller releases it, e.g. once a clone of the float model that shares its bytes is gone.
void replaceWithQntLinear(nn::MatmulOp mm, const float *w, const num::quant::QuantizedWeight &q,
                          const std::string &key, llvm::StringRef method, bool releaseWeight = true);

// W8A8's static activation scale (qopt-insert-fp8, qopt-insert-int8): `lin`'s act_scale operand becomes a float32
// [1] constant of `scale`, named after the layer's weight (`<layer>.act_scale`); the caller sets act_fp8 or act_int8.
void setStaticActScale(qnt::LinearOp lin, float scale);

// Erases `c` if nothing reads it, freeing its dense_resource bytes (which a clone of the module would share).
void releaseDeadConstant(nn::ConstantOp c);

} // namespace qopt

#endif // QOPT_PASSES_QNTBUILD_H
