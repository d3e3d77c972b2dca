//===- FuseNormProduct.cpp - a decode step's residual adds and norms into its products -===//
//
// Between two linear layers of a decoder, the residual stream is added to and normalized in one launch of its own
// (qopt-fuse-add-norm), a one-row kernel in a decode step:
//   %o = kern.launch "matmul_q"(%a, %W, %S, %Z)
//   %h, %n = kern.launch "add_rms_norm"(%r, %o, %g) {epsilon}
//   %y = kern.launch "matmul_q_gated"(%n, %V, %T, %U)
// For products of a few static rows (the matrix-vector kernels) this pass moves both into the products:
//   %h = kern.launch "matmul_q"(%a, %W, %S, %Z, %none, %r)                    (residual + product, the sum)
//   %y = kern.launch "matmul_q_gated"(%h, %V, %T, %U, %g) {norm_epsilon}       (x normalized as it is loaded)
// The first step makes the producing product add the residual (operand 5) in its epilogue, leaving an rms_norm of
// its result (only where the second step will take that norm into its readers); the second gives every rms_norm whose readers are all such products (the q/k/v and gate/up products) to those readers as operand 4, where their kernel makes that cheap (one row of quantized codes, see
// takesNorm): each block of the reader reads the whole row of x anyway, so the norm costs a sum of squares taken
// on the way instead of a launch and a round trip of the normalized row. The reference kernels run the rms_norm
// kernel's code and the binary add's formula: results are unchanged bit for bit.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

namespace qopt {
#define GEN_PASS_DEF_FUSENORMPRODUCTPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

constexpr int64_t kMaxRows = 16; // the matrix-vector kernels' rows
constexpr unsigned kNormOperand = 4, kResidualOperand = 5;

bool isAbsent(Value v) { return v.getDefiningOp<kern::AbsentOp>() != nullptr; }

// A quantized (or float16) product of at most kMaxRows static rows, not yet specialized.
bool isRowProduct(kern::LaunchOp l) {
  StringRef k = l.getKernel();
  if ((k != "matmul_q" && k != "matmul_q_split" && k != "matmul_q_gated") || l.getVariant() ||
      l.getNumOperands() < 2)
    return false;
  auto x = dyn_cast<RankedTensorType>(l.getOperand(0).getType());
  if (!x || x.getRank() == 0 || !x.hasStaticShape() || !x.getElementType().isF32() || x.getShape().back() <= 0)
    return false;
  const int64_t rows = x.getNumElements() / x.getShape().back();
  return rows >= 1 && rows <= kMaxRows;
}

// A product whose kernel pays for a norm prologue no more than the norm's own launch costs (~5.6 us in a Llama-3-8B
// decode graph on the H200): one row of quantized codes (the float32-accurate row kernel, which stages x once per
// block and takes its sum of squares on the way; +6% on a Llama-3-8B gate/up product), or one row of float16
// weights in at most kMaxHalfNormRows rows (qGemvHalf re-reads x and the norm scale in each block of 4 rows:
// measured +2.2 us on the 28672-row gate/up product, +4.8 us on the 6144-row q/k/v one; a 128256-row lm_head has
// 4.5 times the gate/up's blocks). Products of 2-16 rows are not measured yet: their norms stay launches.
constexpr int64_t kMaxHalfNormRows = 32768;
bool takesNorm(kern::LaunchOp l) {
  if (!isRowProduct(l))
    return false;
  auto x = cast<RankedTensorType>(l.getOperand(0).getType());
  auto w = dyn_cast<RankedTensorType>(l.getOperand(1).getType());
  if (x.getNumElements() != x.getShape().back() || !w || w.getRank() != 2)
    return false;
  const Type e = w.getElementType();
  return !(e.isF16() || e.isBF16()) || (w.hasStaticShape() && w.getShape()[0] <= kMaxHalfNormRows);
}

// `l`'s operands with operand `i` set to `v` (absent values, one created at b, where it has fewer); its other
// operands (a static activation scale, 6) stay.
SmallVector<Value> withOperand(OpBuilder &b, kern::LaunchOp l, unsigned i, Value v) {
  SmallVector<Value> out(l.getOperands());
  if (out.size() <= i)
    out.resize(i + 1, kern::AbsentOp::create(b, l.getLoc()).getResult());
  out[i] = v;
  return out;
}

bool hasOperand(kern::LaunchOp l, unsigned i) { return l.getNumOperands() > i && !isAbsent(l.getOperand(i)); }

// `l` rebuilt with `operands` and `extra` attributes added to its own.
kern::LaunchOp rebuild(OpBuilder &b, kern::LaunchOp l, ArrayRef<Value> operands, ArrayRef<NamedAttribute> extra) {
  SmallVector<NamedAttribute> attrs(l.getAttrs().getValue());
  attrs.append(extra.begin(), extra.end());
  auto fused = kern::LaunchOp::create(b, l.getLoc(), l.getResultTypes(), b.getStringAttr(l.getKernel()), operands,
                                      b.getDictionaryAttr(attrs), StringAttr(), DenseI64ArrayAttr(), ArrayAttr());
  l.replaceAllUsesWith(fused.getResults());
  l.erase();
  return fused;
}

Attribute epsilonOf(kern::LaunchOp norm, OpBuilder &b) {
  Attribute eps = norm.getAttrs().get("epsilon");
  return eps ? eps : b.getF64FloatAttr(1e-5);
}

// The launches that read `normed`, the rms_norm of x (type of x) with `scale`, when every one is a product that
// can take the norm (operand 0, takesNorm, no norm yet) and the scale is one per channel (a scale of one value
// stays a launch of its own); else empty.
SmallVector<kern::LaunchOp> normReaders(Value x, Value normed, Value scale) {
  auto scaleType = dyn_cast<RankedTensorType>(scale.getType());
  auto xType = dyn_cast<RankedTensorType>(x.getType());
  if (normed.use_empty() || !scaleType || !xType || xType.getRank() == 0 || scaleType.getRank() != 1 ||
      !scaleType.getElementType().isF32() || ShapedType::isDynamic(scaleType.getDimSize(0)) ||
      scaleType.getDimSize(0) != xType.getShape().back() || x.getType() != normed.getType())
    return {};
  SmallVector<kern::LaunchOp> readers;
  for (OpOperand &use : normed.getUses()) {
    auto l = dyn_cast<kern::LaunchOp>(use.getOwner());
    if (!l || use.getOperandNumber() != 0 || !takesNorm(l) || hasOperand(l, kNormOperand))
      return {};
    if (!llvm::is_contained(readers, l))
      readers.push_back(l);
  }
  return readers;
}

// The unspecialized launches of `kernel` in `f` with these operand and result counts.
SmallVector<kern::LaunchOp> launchesOf(func::FuncOp f, StringRef kernel, unsigned operands, unsigned results) {
  SmallVector<kern::LaunchOp> out;
  f.walk([&](kern::LaunchOp l) {
    if (l.getKernel() == kernel && l.getNumOperands() == operands && l.getNumResults() == results && !l.getVariant())
      out.push_back(l);
  });
  return out;
}

// add_rms_norm(r, o, g) with o a plain product's only use, and a norm its readers can take -> the product adds r;
// an rms_norm of its result remains, for fuseNorms. (Where the norm stays a launch, add_rms_norm reads the two
// rows once, as the product's epilogue would: nothing to gain.)
void fuseResiduals(func::FuncOp f) {
  for (kern::LaunchOp add : launchesOf(f, "add_rms_norm", 3, 2)) {
    if (normReaders(add.getOperand(0), add.getResult(1), add.getOperand(2)).empty())
      continue;
    for (unsigned p : {1u, 0u}) {
      auto product = add.getOperand(p).getDefiningOp<kern::LaunchOp>();
      Value residual = add.getOperand(1 - p);
      if (!product || product.getKernel() != "matmul_q" || !isRowProduct(product) ||
          product.getNumResults() != 1 || !product.getResult(0).hasOneUse() ||
          hasOperand(product, kResidualOperand) || residual.getType() != product.getResult(0).getType() ||
          residual == product.getResult(0))
        continue;
      OpBuilder b(add);
      kern::LaunchOp sum = rebuild(b, product, withOperand(b, product, kResidualOperand, residual), {});
      auto norm = kern::LaunchOp::create(
          b, add.getLoc(), add.getResult(1).getType(), b.getStringAttr("rms_norm"),
          ValueRange{sum.getResult(0), add.getOperand(2)},
          b.getDictionaryAttr({b.getNamedAttr("epsilon", epsilonOf(add, b))}), StringAttr(), DenseI64ArrayAttr(),
          ArrayAttr());
      add.getResult(0).replaceAllUsesWith(sum.getResult(0));
      add.getResult(1).replaceAllUsesWith(norm.getResult(0));
      add.erase();
      break;
    }
  }
}

// rms_norm(x, g) read only as x by row products -> each takes x and g (operand 4, norm_epsilon).
void fuseNorms(func::FuncOp f) {
  for (kern::LaunchOp norm : launchesOf(f, "rms_norm", 2, 1)) {
    SmallVector<kern::LaunchOp> readers = normReaders(norm.getOperand(0), norm.getResult(0), norm.getOperand(1));
    if (readers.empty())
      continue;
    for (kern::LaunchOp reader : readers) {
      OpBuilder b(reader);
      SmallVector<Value> operands = withOperand(b, reader, kNormOperand, norm.getOperand(1));
      operands[0] = norm.getOperand(0);
      rebuild(b, reader, operands, {b.getNamedAttr("norm_epsilon", epsilonOf(norm, b))});
    }
    norm.erase();
  }
}

struct FuseNormProductPass : qopt::impl::FuseNormProductPassBase<FuseNormProductPass> {
  void runOnOperation() override {
    fuseResiduals(getOperation());
    fuseNorms(getOperation());
  }
};

} // namespace
