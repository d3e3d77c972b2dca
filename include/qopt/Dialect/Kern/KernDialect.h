//===- KernDialect.h - the kern dialect ------------------------------------===//
#ifndef QOPT_DIALECT_KERN_KERNDIALECT_H
#define QOPT_DIALECT_KERN_KERNDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/kern/KernOpsDialect.h.inc"

#define GET_OP_CLASSES
#include "dialects/kern/KernOps.h.inc"

#endif // QOPT_DIALECT_KERN_KERNDIALECT_H
