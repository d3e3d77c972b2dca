//===- KernOps.td - the kern dialect -----------------------------------------===//
//
// kern is the execution level: one `kern.launch` per kernel invocation, naming a kernel family (lib/Numerics
// defines each: signature, shape function, reference implementation) and optionally a variant, with the kernel's
// attributes as a dictionary; each runtime backend binds its own implementations. Fusion passes turn several nn ops into one launch of a fused kernel. After planning, every launch
// carries the arena offset and the byte bound of each result.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_KERN_OPS
#define QOPT_KERN_OPS

include "mlir/IR/OpBase.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Kern_Dialect : Dialect {
  let name = "kern";
  let cppNamespace = "::qopt::kern";
  let summary = "Kernel launches over a static memory plan";
}

def Kern_NoneValue : Type<CPred<"::llvm::isa<::mlir::NoneType>($_self)">, "none">,
    BuildableType<"$_builder.getNoneType()">;

class Kern_Op<string mnemonic, list<Trait> traits = []> : Op<Kern_Dialect, mnemonic, traits>;

def Kern_LaunchOp : Kern_Op<"launch", [DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "one invocation of a kernel family, optionally of one of its variants";
  let description = [{
    ```mlir
    %y = kern.launch "matmul"(%x, %w) : (tensor<?x64xf32>, tensor<64x172xf32>) -> tensor<?x172xf32>
    %z = kern.launch "binary"(%a, %b) {attrs = {fn = "add"}} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    ```
    The string names the kernel family (its signature and shape function, target-neutral); `variant`, when set,
    names one implementation of it that target selection chose (a layout, an algorithm). The runtime binds each
    (family, variant) to its backend's code when a session starts and refuses a model naming a pair the backend
    lacks; without `variant`, every backend runs its default implementation (on the CPU, the reference).
    Absent optional operands are `kern.absent` values. `offsets` and `max_shapes` are set by the memory planner:
    the arena offset and the largest shape of each result at the compiled dim bounds. A launch of a kernel that
    updates an operand in place (a `kern.state`: kv_append, kv_advance) writes memory and is never removed or
    merged; its result is that state after the update (its offset is the state's). Every other launch is pure.
  }];
  let arguments = (ins StrAttr:$kernel, Variadic<AnyType>:$operands,
                       DefaultValuedAttr<DictionaryAttr, "{}">:$attrs, OptionalAttr<StrAttr>:$variant,
                       OptionalAttr<DenseI64ArrayAttr>:$offsets, OptionalAttr<ArrayAttr>:$max_shapes);
  let results = (outs Variadic<AnyTensor>:$results);
  let assemblyFormat = "$kernel `(` $operands `)` attr-dict `:` functional-type($operands, $results)";
  let hasVerifier = 1;
}

def Kern_WeightOp : Kern_Op<"weight", [ConstantLike, Pure, AllTypesMatch<["value", "result"]>]> {
  let summary = "a constant stored in model.bin's weights section";
  let arguments = (ins ElementsAttr:$value, OptionalAttr<StrAttr>:$name);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$value attr-dict";
  let hasFolder = 1;
  let builders = [OpBuilder<(ins "::mlir::ElementsAttr":$value, CArg<"::mlir::StringAttr", "{}">:$name), [{
    build($_builder, $_state, ::llvm::cast<::mlir::TypedAttr>(value).getType(), value, name);
  }]>];
  let hasVerifier = 1;
}

def Kern_StateOp : Kern_Op<"state"> {
  let summary = "a buffer the runtime session keeps between runs (model.bin storage State)";
  let description = [{
    ```mlir
    %k = kern.state "kv.0.key" : tensor<1x4x512x8xf32>
    ```
    `offset` (set by the memory planner) is its place in the session's state memory, which is zero when a session
    starts and after `qrt_session_reset`. Not pure: every state is its own buffer.
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<I64Attr>:$offset);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

def Kern_AbsentOp : Kern_Op<"absent", [Pure]> {
  let summary = "an absent optional kernel operand";
  let results = (outs Kern_NoneValue:$result);
  let assemblyFormat = "attr-dict";
  let builders = [OpBuilder<(ins), [{ build($_builder, $_state, $_builder.getNoneType()); }]>];
}

#endif // QOPT_KERN_OPS
