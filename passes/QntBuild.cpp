//===- QntBuild.cpp - replace a linear layer by qnt.linear -----------------===//
#include "passes/QntBuild.h"

#include "qopt/Dialect/NN/ConstantStorage.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/Tensor.h"
#include "qopt/Numerics/ThreadPool.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <algorithm>
#include <cmath>

using namespace mlir;

namespace qopt {
namespace {

ElementsAttr blobAttr(MLIRContext *ctx, StringRef key, RankedTensorType type, const void *data, size_t bytes) {
  auto &mgr = DenseResourceElementsHandle::getManagerInterface(ctx);
  AsmResourceBlob blob = nn::copyConstantBlob(ArrayRef<char>(static_cast<const char *>(data), bytes), 8);
  return DenseResourceElementsAttr::get(type, mgr.insert(key, std::move(blob)));
}

// The sum of squares of a [rows, cols] matrix, rows in parallel: each row's sum in double, added in row order (the
// same result on any number of threads).
double sumSquares(const float *v, int64_t rows, int64_t cols) {
  std::vector<double> partial(static_cast<size_t>(rows));
  num::defaultThreadPool().parallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      double s = 0;
      for (const float *x = v + r * cols, *e = x + cols; x != e; ++x)
        s += static_cast<double>(*x) * *x;
      partial[r] = s;
    }
  });
  double s = 0;
  for (double p : partial)
    s += p;
  return s;
}

// The qopt.quant dictionary: method, relative weight error, and relative output error on the calibration rows
// (divided by the AWQ scale the weights were multiplied by, so X W is the original layer's output).
DictionaryAttr quantInfo(nn::MatmulOp mm, const float *w, const num::quant::QuantizedWeight &q, StringRef method) {
  Builder b(mm.getContext());
  const int64_t K = q.K, N = q.N;
  std::vector<float> diff(static_cast<size_t>(K * N));
  num::quant::dequantize(q, diff.data());
  // W - Wq and both norms in one pass over the rows (each row's sums in double, added in row order).
  std::vector<double> wRow(static_cast<size_t>(K)), dRow(static_cast<size_t>(K));
  num::defaultThreadPool().parallelFor(K, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      double ws = 0, ds = 0;
      for (int64_t i = k * N; i < (k + 1) * N; ++i) {
        diff[i] = w[i] - diff[i];
        ws += static_cast<double>(w[i]) * w[i];
        ds += static_cast<double>(diff[i]) * diff[i];
      }
      wRow[k] = ws, dRow[k] = ds;
    }
  });
  double wNorm = 0, dNorm = 0;
  for (int64_t k = 0; k < K; ++k)
    wNorm += wRow[k], dNorm += dRow[k];
  SmallVector<NamedAttribute> attrs{b.getNamedAttr("method", b.getStringAttr(method))};
  attrs.push_back(b.getNamedAttr(
      "weight_error", b.getF32FloatAttr(wNorm > 0 ? static_cast<float>(std::sqrt(dNorm / wNorm)) : 0)));
  auto calib = mm->getAttrOfType<DictionaryAttr>("qopt.calib");
  // The input's range on the calibration data, for activation scales (qopt-insert-fp8).
  auto lo = calib ? calib.getAs<FloatAttr>("min") : FloatAttr();
  auto hi = calib ? calib.getAs<FloatAttr>("max") : FloatAttr();
  if (lo && hi)
    attrs.push_back(b.getNamedAttr(
        "act_absmax", b.getF32FloatAttr(static_cast<float>(std::max(std::fabs(lo.getValueAsDouble()),
                                                                    std::fabs(hi.getValueAsDouble()))))));
  auto samples = calib ? dyn_cast_or_null<ElementsAttr>(calib.get("samples")) : ElementsAttr();
  num::Tensor t;
  std::vector<uint8_t> storage;
  if (samples && nn::readConstant(samples, t, storage) && t.rank() == 2 && t.shape[1] == K && t.shape[0] > 0) {
    const int64_t S = t.shape[0];
    std::vector<float> X(static_cast<const float *>(t.data), static_cast<const float *>(t.data) + S * K);
    if (auto s = dyn_cast_or_null<DenseElementsAttr>(calib.get("awq_scale"))) {
      std::vector<float> sv(s.getValues<float>().begin(), s.getValues<float>().end());
      for (int64_t r = 0; r < S; ++r)
        for (int64_t k = 0; k < K; ++k)
          X[r * K + k] /= sv[k];
    }
    std::vector<float> y(static_cast<size_t>(S * N)), e(static_cast<size_t>(S * N));
    num::sgemm(false, false, S, N, K, 1.0f, X.data(), K, w, N, 0.0f, y.data(), N, &num::defaultThreadPool());
    num::sgemm(false, false, S, N, K, 1.0f, X.data(), K, diff.data(), N, 0.0f, e.data(), N,
               &num::defaultThreadPool());
    const double yNorm = sumSquares(y.data(), S, N);
    attrs.push_back(b.getNamedAttr(
        "output_error",
        b.getF32FloatAttr(yNorm > 0 ? static_cast<float>(std::sqrt(sumSquares(e.data(), S, N) / yNorm)) : 0)));
  }
  return b.getDictionaryAttr(attrs);
}

} // namespace

void releaseDeadConstant(nn::ConstantOp c) {
  if (!c || !c->use_empty())
    return;
  // Release its bytes now rather than when the context goes, so quantizing does not hold the float and the packed
  // model at once. Constants are CSE'd, so no other op holds this resource.
  if (auto res = dyn_cast<DenseResourceElementsAttr>(c.getValue()))
    res.getRawHandle().getResource()->setBlob(AsmResourceBlob());
  c.erase();
}

void replaceWithQntLinear(nn::MatmulOp mm, const float *w, const num::quant::QuantizedWeight &q,
                          const std::string &key, StringRef method, bool releaseWeight) {
  MLIRContext *ctx = mm.getContext();
  OpBuilder b(mm);
  Location loc = mm.getLoc();
  DictionaryAttr info = quantInfo(mm, w, q, method);
  auto u8 = IntegerType::get(ctx, 8, IntegerType::Unsigned);
  const bool nib = num::quant::isNibbleFormat(q.bits);
  Type welem = nib     ? Type(u8)
               : q.fp8 ? (q.fp8Format == num::Fp8Format::E4M3FN ? Type(Float8E4M3FNType::get(ctx))
                                                                : Type(Float8E5M2Type::get(ctx)))
                       : Type(IntegerType::get(ctx, 8));
  const int64_t N = q.N, packedK = nib ? q.K / 2 : q.K, G = q.perTensor ? 1 : q.groups(), P = q.paramRows();
  Value qw = nn::ConstantOp::create(
      b, loc, blobAttr(ctx, key + ".q", RankedTensorType::get({N, packedK}, welem), q.data.data(), q.data.size()),
      b.getStringAttr(key + ".q"));
  // Scales as float16 where the format rounded them all to float16 values (QuantFormat.h), else float32.
  std::vector<uint16_t> halves;
  if (q.halfScales)
    for (float s : q.scales)
      halves.push_back(num::floatToHalf(s));
  auto st = RankedTensorType::get({P, G}, q.halfScales ? Type(b.getF16Type()) : Type(b.getF32Type()));
  Value qs = nn::ConstantOp::create(
      b, loc,
      q.halfScales ? blobAttr(ctx, key + ".scales", st, halves.data(), halves.size() * sizeof(uint16_t))
                   : blobAttr(ctx, key + ".scales", st, q.scales.data(), q.scales.size() * sizeof(float)),
      b.getStringAttr(key + ".scales"));
  Value qz = q.zeros.empty() ? Value(nn::NoneOp::create(b, loc))
                             : Value(nn::ConstantOp::create(b, loc,
                                                            blobAttr(ctx, key + ".zeros",
                                                                     RankedTensorType::get({P, G}, u8),
                                                                     q.zeros.data(), q.zeros.size()),
                                                            b.getStringAttr(key + ".zeros")));
  auto lin = qnt::LinearOp::create(b, loc, mm.getType(), mm.getLhs(), qw, qs, qz, /*act_scale=*/Value(),
                                   b.getI64IntegerAttr(q.bits), b.getI64IntegerAttr(q.groupSize),
                                   b.getI64IntegerAttr(q.symmetric && nib ? 1 : 0), b.getI64IntegerAttr(0),
                                   b.getI64IntegerAttr(0));
  lin->setAttr("qopt.quant", info);
  if (Attribute precision = mm->getAttr("qopt.precision")) // mixed precision's measurements, for the report
    lin->setAttr("qopt.precision", precision);
  auto wc = mm.getRhs().getDefiningOp<nn::ConstantOp>();
  mm.replaceAllUsesWith(lin.getY());
  mm.erase();
  if (releaseWeight)
    releaseDeadConstant(wc);
}

void setStaticActScale(qnt::LinearOp lin, float scale) {
  OpBuilder b(lin);
  auto type = RankedTensorType::get({1}, b.getF32Type());
  auto w = lin.getWeight().getDefiningOp<nn::ConstantOp>();
  StringRef key = w && w.getName() ? *w.getName() : StringRef("linear");
  key.consume_back(".q");
  Value a = nn::ConstantOp::create(b, lin.getLoc(), type, DenseElementsAttr::get(type, ArrayRef<float>{scale}),
                                   b.getStringAttr(key + ".act_scale"));
  if (lin.getActScale())
    lin.getActScaleMutable().assign(a);
  else
    lin.getActScaleMutable().append(a);
}

} // namespace qopt
