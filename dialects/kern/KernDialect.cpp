//===- KernDialect.cpp - kern dialect registration and verifiers -----------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/ResourceCheck.h"
#include "qopt/Numerics/Kernels.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace qopt::kern;

#include "dialects/kern/KernOpsDialect.cpp.inc"

void KernDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/kern/KernOps.cpp.inc"
      >();
}

LogicalResult LaunchOp::verify() {
  const qopt::num::KernelFamily *k = qopt::num::lookupFamily(getKernel().str());
  if (!k)
    return emitOpError() << "names unknown kernel family '" << getKernel() << "'";
  if (getVariant() && getVariant()->empty())
    return emitOpError() << "has an empty variant name (leave `variant` out for the default implementation)";
  int nin = static_cast<int>(getOperands().size()), nout = static_cast<int>(getResults().size());
  if (nin < k->minInputs || (k->maxInputs >= 0 && nin > k->maxInputs))
    return emitOpError() << "kernel '" << getKernel() << "' takes " << k->minInputs << " to "
                         << (k->maxInputs < 0 ? std::string("any") : std::to_string(k->maxInputs))
                         << " operands, got " << nin;
  if (k->numOutputs >= 0 && nout != k->numOutputs)
    return emitOpError() << "kernel '" << getKernel() << "' has " << k->numOutputs << " results, got " << nout;
  for (int i = 0; i < k->minInputs && i < nin; ++i)
    if (isa<NoneType>(getOperands()[i].getType()))
      return emitOpError() << "operand " << i << " of kernel '" << getKernel() << "' is required";
  if (k->inPlace >= 0 && (k->inPlace >= nin || nout != 1 || getResult(0).getType() != getOperand(k->inPlace).getType()))
    return emitOpError() << "kernel '" << getKernel() << "' updates operand " << k->inPlace
                         << " in place: its one result must have that operand's type";
  if (auto off = getOffsets())
    if (static_cast<int>(off->size()) != nout)
      return emitOpError() << "expects one offset per result";
  if (auto m = getMaxShapes())
    if (static_cast<int>(m->size()) != nout)
      return emitOpError() << "expects one max shape per result";
  return success();
}

void LaunchOp::getEffects(SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>> &effects) {
  const qopt::num::KernelFamily *k = qopt::num::lookupFamily(getKernel().str());
  if (!k || k->inPlace < 0 || k->inPlace >= static_cast<int>(getNumOperands()))
    return;
  OpOperand &state = getOperation()->getOpOperand(static_cast<unsigned>(k->inPlace));
  effects.emplace_back(MemoryEffects::Read::get(), &state);
  effects.emplace_back(MemoryEffects::Write::get(), &state);
}

OpFoldResult WeightOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult WeightOp::verify() { return qopt::verifyResourceSize(getOperation(), getValue()); }

#define GET_OP_CLASSES
#include "dialects/kern/KernOps.cpp.inc"
