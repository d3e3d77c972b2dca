//===- QntDialect.h - the qnt dialect --------------------------------------===//
#ifndef QOPT_DIALECT_QNT_QNTDIALECT_H
#define QOPT_DIALECT_QNT_QNTDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/qnt/QntOpsDialect.h.inc"

#define GET_OP_CLASSES
#include "dialects/qnt/QntOps.h.inc"

#endif // QOPT_DIALECT_QNT_QNTDIALECT_H
