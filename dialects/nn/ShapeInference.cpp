//===- ShapeInference.cpp - result types of nn kernel ops ------------------===//
//
// ONNX shape rules over dims that may be unknown (`?`). Where a rule needs the values of a shape operand (Reshape,
// Expand, Slice, ConstantOfShape), getPartialInts() recovers what is known even inside dynamic shape sub-graphs,
// so `Reshape(x, Concat(Gather(Shape(x), 0), [8, 16]))` infers `?x8x16` rather than `?x?x?`.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"

#include "mlir/IR/Matchers.h"
#include "qopt/Numerics/Kernels.h"

#include "llvm/ADT/TypeSwitch.h"

#include <cstring>

using namespace mlir;
using namespace qopt;
using namespace qopt::nn;

namespace {

constexpr int64_t kDyn = ShapedType::kDynamic;
// The most dims a tensor whose rank is run-time data (Reshape, Expand, ConstantOfShape) may get: model.bin's and
// the runtime's limit, also checked for every tensor by the model writer.
constexpr int64_t kMaxShapeRank = 16;
using Dims = SmallVector<int64_t>;

struct Inferer {
  Operation *op;
  bool diag;

  LogicalResult fail(const Twine &msg) {
    if (diag)
      op->emitOpError() << msg;
    return failure();
  }

  // The static length of a 1-D shape operand, which becomes the result's rank: at most kMaxShapeRank, so a
  // length taken from the file (a 2^41-element int64 input fed to Reshape) cannot size an allocation.
  FailureOr<int64_t> shapeLength(RankedTensorType s) {
    if (s.getRank() != 1 || s.isDynamicDim(0)) {
      (void)fail("expects a 1-D shape operand of static length");
      return failure();
    }
    if (s.getDimSize(0) > kMaxShapeRank) {
      (void)fail("shape operand has " + Twine(s.getDimSize(0)) + " entries: tensors have at most " +
                 Twine(kMaxShapeRank) + " dims");
      return failure();
    }
    return s.getDimSize(0);
  }

  FailureOr<RankedTensorType> ranked(Value v, StringRef what) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    if (!t) {
      if (diag)
        op->emitOpError() << "expects a ranked tensor " << what << ", got " << v.getType();
      return failure();
    }
    return t;
  }

  LogicalResult normAxis(int64_t &axis, int64_t rank) {
    if (axis < -rank || axis >= rank)
      return fail("axis " + Twine(axis) + " is out of range for rank " + Twine(rank));
    if (axis < 0)
      axis += rank;
    return success();
  }

  LogicalResult broadcast(ArrayRef<int64_t> a, ArrayRef<int64_t> b, Dims &out) {
    size_t r = std::max(a.size(), b.size());
    out.assign(r, 1);
    for (size_t i = 0; i < r; ++i) {
      int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
      int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
      if (da == db)
        out[i] = da;
      else if (da == 1)
        out[i] = db;
      else if (db == 1)
        out[i] = da;
      else if (da == kDyn)
        out[i] = db; // ? must be 1 or db
      else if (db == kDyn)
        out[i] = da;
      else
        return fail("operand shapes do not broadcast: dim " + Twine(da) + " vs " + Twine(db));
    }
    return success();
  }

  // a * b, dynamic if either is; false if the product overflows (sizes come from model files).
  static bool mul(int64_t a, int64_t b, int64_t &out) {
    if (a == kDyn || b == kDyn) {
      out = kDyn;
      return true;
    }
    return num::checkedMul(a, b, out) && out != kDyn;
  }
};

// Whether `v` is an integer constant, so that every value getPartialInts gives for it is exact (INT64_MIN too).
bool isConstantInts(Value v) {
  auto c = v.getDefiningOp<ConstantOp>();
  return c && isa<IntegerType>(cast<ShapedType>(c.getType()).getElementType());
}

// Ops without a rule above use their kernel's shape function. Dynamic dims are evaluated twice with different
// stand-in sizes: a result dim that differs between the two runs depends on them and is dynamic; one that agrees
// is static. Operands whose values the shape function reads must be known at compile time.
LogicalResult inferWithKernel(Inferer &I, Operation *op, SmallVectorImpl<Type> &types) {
  const num::KernelFamily *k = num::lookupFamily(kernelName(op).str());
  if (!k)
    return I.fail("has no shape inference");
  num::Attrs attrs = kernelAttrs(op);
  SmallVector<Dims> runs[2];
  SmallVector<num::DType> dtypes;
  for (int run = 0; run < 2; ++run) {
    // Far apart, so that a dim that depends on them through a floor division (a strided window: (in + c) / s)
    // still differs for any stride below 9970; small enough that four dynamic dims stay under 2^59 elements.
    const int64_t standIn = run ? 19937 : 9967;
    std::vector<num::Tensor> ins(op->getNumOperands());
    std::vector<std::vector<uint8_t>> storage(op->getNumOperands());
    num::KernelArgs args;
    args.attrs = &attrs;
    for (unsigned i = 0; i < op->getNumOperands(); ++i) {
      Value v = op->getOperand(i);
      if (isa<NoneType>(v.getType())) {
        args.inputs.push_back(nullptr);
        continue;
      }
      auto t = dyn_cast<RankedTensorType>(v.getType());
      if (!t)
        return I.fail("expects ranked tensor operands");
      ins[i].dtype = toDType(t.getElementType());
      for (int64_t d : t.getShape())
        ins[i].shape.push_back(ShapedType::isDynamic(d) ? standIn : d);
      if (k->shapeDataInputs >> i & 1u) {
        auto known = getPartialInts(v);
        if (!known || llvm::any_of(*known, [](int64_t x) { return x == kDyn; }))
          return I.fail("operand " + Twine(i) + " must be a compile-time constant");
        storage[i].resize(known->size() * 8);
        num::copyBytes(storage[i].data(), known->data(), storage[i].size());
        ins[i].dtype = num::DType::I64;
        ins[i].shape = {static_cast<int64_t>(known->size())};
        ins[i].data = storage[i].data();
      }
      args.inputs.push_back(&ins[i]);
    }
    std::vector<num::Tensor> outs(op->getNumResults());
    for (auto &o : outs)
      args.outputs.push_back(&o);
    std::string err;
    if (!num::inferShapes(*k, args, err))
      return I.fail(err);
    dtypes.clear();
    for (auto &o : outs) {
      runs[run].push_back(Dims(o.shape.begin(), o.shape.end()));
      dtypes.push_back(o.dtype);
    }
  }
  for (unsigned r = 0; r < op->getNumResults(); ++r) {
    Dims d = runs[0][r];
    for (size_t j = 0; j < d.size(); ++j)
      if (d[j] != runs[1][r][j])
        d[j] = kDyn;
    types.push_back(RankedTensorType::get(d, fromDType(op->getContext(), dtypes[r])));
  }
  return success();
}

// Checks the function/kind name and operand element types of unary, binary and reduce ops by asking their kernel
// about a scalar of the same element types: one source of truth for which names exist.
LogicalResult checkWithKernel(Inferer &I, Operation *op) {
  const num::KernelFamily *k = num::lookupFamily(kernelName(op).str());
  num::Attrs attrs = kernelAttrs(op);
  std::vector<num::Tensor> ins(op->getNumOperands());
  num::KernelArgs args;
  args.attrs = &attrs;
  for (unsigned i = 0; i < op->getNumOperands(); ++i) {
    ins[i].dtype = toDType(cast<TensorType>(op->getOperand(i).getType()).getElementType());
    args.inputs.push_back(&ins[i]);
  }
  num::Tensor out;
  args.outputs = {&out};
  std::string err;
  if (!num::inferShapes(*k, args, err))
    return I.fail(err);
  return success();
}

LogicalResult infer(Operation *op, SmallVectorImpl<Type> &types, bool diag) {
  Inferer I{op, diag};
  MLIRContext *ctx = op->getContext();
  auto i64 = IntegerType::get(ctx, 64);
  auto i1 = IntegerType::get(ctx, 1);
  auto make = [&](ArrayRef<int64_t> dims, Type elem) {
    types.push_back(RankedTensorType::get(dims, elem));
    return success();
  };
  for (Value v : op->getOperands())
    if (!isa<TensorType, NoneType>(v.getType()))
      return I.fail("expects tensor operands, got " + Twine("a non-tensor"));

  return TypeSwitch<Operation *, LogicalResult>(op)
      .Case<UnaryOp>([&](UnaryOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x) || failed(checkWithKernel(I, o)))
          return failure();
        StringRef fn = o.getFn();
        Type elem = (fn == "isnan" || fn == "isinf") ? Type(i1) : x->getElementType();
        return make(x->getShape(), elem);
      })
      .Case<BinaryOp>([&](BinaryOp o) -> LogicalResult {
        auto a = I.ranked(o.getLhs(), "lhs"), b = I.ranked(o.getRhs(), "rhs");
        if (failed(a) || failed(b))
          return failure();
        if (a->getElementType() != b->getElementType())
          return I.fail("operand element types differ");
        if (failed(checkWithKernel(I, o)))
          return failure();
        Dims out;
        if (failed(I.broadcast(a->getShape(), b->getShape(), out)))
          return failure();
        StringRef fn = o.getFn();
        bool toBool = fn == "equal" || fn == "less" || fn == "less_equal" || fn == "greater" ||
                      fn == "greater_equal" || fn == "and" || fn == "or" || fn == "xor";
        return make(out, toBool ? Type(i1) : a->getElementType());
      })
      .Case<WhereOp>([&](WhereOp o) -> LogicalResult {
        auto c = I.ranked(o.getCondition(), "condition"), x = I.ranked(o.getX(), "x"), y = I.ranked(o.getY(), "y");
        if (failed(c) || failed(x) || failed(y))
          return failure();
        if (!c->getElementType().isInteger(1))
          return I.fail("expects an i1 condition");
        if (x->getElementType() != y->getElementType())
          return I.fail("value element types differ");
        Dims s, out;
        if (failed(I.broadcast(c->getShape(), x->getShape(), s)) || failed(I.broadcast(s, y->getShape(), out)))
          return failure();
        return make(out, x->getElementType());
      })
      .Case<CastOp>([&](CastOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        return make(x->getShape(), cast<TensorType>(o.getY().getType()).getElementType());
      })
      .Case<MatmulOp>([&](MatmulOp o) -> LogicalResult {
        auto a = I.ranked(o.getLhs(), "lhs"), b = I.ranked(o.getRhs(), "rhs");
        if (failed(a) || failed(b))
          return failure();
        if (a->getRank() == 0 || b->getRank() == 0)
          return I.fail("expects operands of rank >= 1");
        if (a->getElementType() != b->getElementType())
          return I.fail("operand element types differ");
        Dims as(a->getShape()), bs(b->getShape());
        bool av = as.size() == 1, bv = bs.size() == 1;
        if (av)
          as.insert(as.begin(), 1);
        if (bv)
          bs.push_back(1);
        int64_t ka = as.back(), kb = bs[bs.size() - 2];
        if (ka != kDyn && kb != kDyn && ka != kb)
          return I.fail("contracting dims differ: " + Twine(ka) + " vs " + Twine(kb));
        Dims batch;
        if (failed(I.broadcast(ArrayRef<int64_t>(as).drop_back(2), ArrayRef<int64_t>(bs).drop_back(2), batch)))
          return failure();
        if (!av)
          batch.push_back(as[as.size() - 2]);
        if (!bv)
          batch.push_back(bs.back());
        return make(batch, a->getElementType());
      })
      .Case<SoftmaxOp, LayerNormOp>([&](Operation *o) -> LogicalResult {
        auto x = I.ranked(o->getOperand(0), "operand");
        if (failed(x))
          return failure();
        if (!isa<FloatType>(x->getElementType()))
          return I.fail("expects a float operand");
        int64_t axis = cast<IntegerAttr>(o->getAttr("axis")).getInt();
        if (x->getRank() > 0 && failed(I.normAxis(axis, x->getRank())))
          return failure();
        return make(x->getShape(), x->getElementType());
      })
      .Case<ReduceOp>([&](ReduceOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        if (o.getKind() != "sum" && o.getKind() != "mean" && o.getKind() != "max" && o.getKind() != "min" &&
            o.getKind() != "prod" && o.getKind() != "sum_square" && o.getKind() != "l1" && o.getKind() != "l2" &&
            o.getKind() != "log_sum" && o.getKind() != "log_sum_exp")
          return I.fail("unknown reduction kind '" + o.getKind() + "'");
        SmallVector<bool> red(x->getRank(), o.getAxes().empty());
        for (int64_t ax : o.getAxes()) {
          if (failed(I.normAxis(ax, x->getRank())))
            return failure();
          red[ax] = true;
        }
        Dims out;
        for (int64_t i = 0; i < x->getRank(); ++i) {
          if (!red[i])
            out.push_back(x->getDimSize(i));
          else if (o.getKeepdims())
            out.push_back(1);
        }
        return make(out, x->getElementType());
      })
      .Case<ArgReduceOp>([&](ArgReduceOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        int64_t axis = o.getAxis();
        if (failed(I.normAxis(axis, x->getRank())))
          return failure();
        Dims out;
        for (int64_t i = 0; i < x->getRank(); ++i) {
          if (i != axis)
            out.push_back(x->getDimSize(i));
          else if (o.getKeepdims())
            out.push_back(1);
        }
        return make(out, i64);
      })
      .Case<ReshapeOp>([&](ReshapeOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        auto s = I.ranked(o.getShape(), "shape");
        if (failed(x) || failed(s))
          return failure();
        auto len = I.shapeLength(*s);
        if (failed(len))
          return failure();
        auto target = getPartialInts(o.getShape());
        Dims out(*len, kDyn);
        if (!target)
          return make(out, x->getElementType());
        int64_t inferAt = -1, known = 1;
        for (size_t i = 0; i < target->size(); ++i) {
          int64_t d = (*target)[i];
          if (d == 0 && !o.getAllowzero()) {
            if (static_cast<int64_t>(i) >= x->getRank())
              return I.fail("shape has 0 at position " + Twine(i) + " beyond the input rank");
            d = x->getDimSize(i);
          }
          if (d == -1) {
            if (inferAt >= 0)
              return I.fail("shape has more than one -1");
            inferAt = static_cast<int64_t>(i);
            continue;
          }
          if (d < -1 && d != kDyn)
            return I.fail("shape has invalid dim " + Twine(d));
          out[i] = d;
          if (!Inferer::mul(known, d, known))
            return I.fail("shape's dims multiply past 2^63");
        }
        int64_t total = x->hasStaticShape() ? x->getNumElements() : kDyn;
        if (inferAt >= 0) {
          if (total != kDyn && known != kDyn) {
            if (known == 0 || total % known)
              return I.fail("cannot reshape " + Twine(total) + " elements with -1 and known product " +
                            Twine(known));
            out[inferAt] = total / known;
          }
        } else if (total != kDyn && known != kDyn && total != known) {
          return I.fail("cannot reshape " + Twine(total) + " elements into " + Twine(known));
        }
        return make(out, x->getElementType());
      })
      .Case<UnsqueezeOp>([&](UnsqueezeOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        int64_t r = x->getRank() + static_cast<int64_t>(o.getAxes().size());
        SmallVector<bool> isNew(r, false);
        for (int64_t ax : o.getAxes()) {
          if (failed(I.normAxis(ax, r)))
            return failure();
          if (isNew[ax])
            return I.fail("repeated axis " + Twine(ax));
          isNew[ax] = true;
        }
        Dims out;
        int64_t j = 0;
        for (int64_t i = 0; i < r; ++i)
          out.push_back(isNew[i] ? 1 : x->getDimSize(j++));
        return make(out, x->getElementType());
      })
      .Case<SqueezeOp>([&](SqueezeOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        SmallVector<bool> drop(x->getRank(), false);
        if (!o.getAxes()) {
          for (int64_t i = 0; i < x->getRank(); ++i) {
            if (x->isDynamicDim(i))
              return I.fail("without axes needs static dims (dim " + Twine(i) + " is dynamic)");
            drop[i] = x->getDimSize(i) == 1;
          }
        } else {
          ArrayRef<int64_t> axes = *o.getAxes(); // not `: *o.getAxes()`: that binds into a dead optional
          for (int64_t ax : axes) {
            if (failed(I.normAxis(ax, x->getRank())))
              return failure();
            if (!x->isDynamicDim(ax) && x->getDimSize(ax) != 1)
              return I.fail("dim " + Twine(ax) + " is " + Twine(x->getDimSize(ax)) + ", not 1");
            drop[ax] = true;
          }
        }
        Dims out;
        for (int64_t i = 0; i < x->getRank(); ++i)
          if (!drop[i])
            out.push_back(x->getDimSize(i));
        return make(out, x->getElementType());
      })
      .Case<FlattenOp>([&](FlattenOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        int64_t axis = o.getAxis();
        if (axis < 0)
          axis += x->getRank();
        if (axis < 0 || axis > x->getRank())
          return I.fail("axis out of range");
        int64_t a = 1, b = 1;
        for (int64_t i = 0; i < x->getRank(); ++i) {
          int64_t &side = i < axis ? a : b;
          if (!Inferer::mul(side, x->getDimSize(i), side))
            return I.fail("dims multiply past 2^63");
        }
        return make({a, b}, x->getElementType());
      })
      .Case<TransposeOp>([&](TransposeOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        ArrayRef<int64_t> perm = o.getPerm();
        if (static_cast<int64_t>(perm.size()) != x->getRank())
          return I.fail("perm has " + Twine(perm.size()) + " entries for rank " + Twine(x->getRank()));
        SmallVector<bool> seen(perm.size(), false);
        Dims out;
        for (int64_t p : perm) {
          if (p < 0 || p >= x->getRank() || seen[p])
            return I.fail("perm is not a permutation");
          seen[p] = true;
          out.push_back(x->getDimSize(p));
        }
        return make(out, x->getElementType());
      })
      .Case<ConcatOp>([&](ConcatOp o) -> LogicalResult {
        if (o.getInputs().empty())
          return I.fail("expects at least one operand");
        auto x0 = I.ranked(o.getInputs()[0], "operand");
        if (failed(x0))
          return failure();
        int64_t axis = o.getAxis();
        if (failed(I.normAxis(axis, x0->getRank())))
          return failure();
        Dims out(x0->getShape());
        out[axis] = 0;
        for (Value v : o.getInputs()) {
          auto t = I.ranked(v, "operand");
          if (failed(t))
            return failure();
          if (t->getRank() != x0->getRank() || t->getElementType() != x0->getElementType())
            return I.fail("operands differ in rank or element type");
          for (int64_t i = 0; i < t->getRank(); ++i) {
            if (i == axis)
              continue;
            if (out[i] == kDyn)
              out[i] = t->getDimSize(i);
            else if (!t->isDynamicDim(i) && t->getDimSize(i) != out[i])
              return I.fail("operand dims differ off the concat axis");
          }
          if (t->isDynamicDim(axis) || out[axis] == kDyn)
            out[axis] = kDyn;
          else if (!num::checkedAdd(out[axis], t->getDimSize(axis), out[axis]))
            return I.fail("concatenated size overflows");
        }
        return make(out, x0->getElementType());
      })
      .Case<SliceOp>([&](SliceOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        auto starts = getPartialInts(o.getStarts()), ends = getPartialInts(o.getEnds());
        std::optional<Dims> axes, steps;
        if (!isa<NoneType>(o.getAxes().getType()))
          axes = getPartialInts(o.getAxes());
        if (!isa<NoneType>(o.getSteps().getType()))
          steps = getPartialInts(o.getSteps());
        bool axesKnown = isa<NoneType>(o.getAxes().getType()) ||
                         (axes && llvm::none_of(*axes, [](int64_t a) { return a == kDyn; }));
        if (!starts || !ends || !axesKnown)
          return make(Dims(x->getRank(), kDyn), x->getElementType());
        // getPartialInts marks unknown entries with kDyn, which is INT64_MIN: a constant start, end or step of
        // INT64_MIN (torch's exporter writes Slice(Shape(x), INT64_MIN, -2) for "all dims but the last two") is
        // known all the same.
        const bool startsConst = isConstantInts(o.getStarts()), endsConst = isConstantInts(o.getEnds());
        const bool stepsConst = steps && isConstantInts(o.getSteps());
        Dims out(x->getShape());
        for (size_t i = 0; i < starts->size(); ++i) {
          int64_t ax = axes ? (*axes)[i] : static_cast<int64_t>(i);
          if (failed(I.normAxis(ax, x->getRank())))
            return failure();
          const bool haveEnd = i < ends->size();
          int64_t s = (*starts)[i], e = haveEnd ? (*ends)[i] : kDyn;
          int64_t st = steps && i < steps->size() ? (*steps)[i] : 1;
          int64_t dim = x->getDimSize(ax);
          if (st == 0)
            return I.fail("step is 0");
          if ((s == kDyn && !startsConst) || (e == kDyn && !(endsConst && haveEnd)) || (st == kDyn && !stepsConst) ||
              dim == kDyn) {
            out[ax] = kDyn;
            continue;
          }
          auto clampIdx = [&](int64_t v, int64_t lo, int64_t hi) {
            if (v < 0)
              v = v < -dim ? -1 : v + dim;
            return std::min(std::max(v, lo), hi);
          };
          if (st > 0) {
            s = clampIdx(s, 0, dim);
            e = clampIdx(e, 0, dim);
            out[ax] = e > s ? (e - s - 1) / st + 1 : 0; // no overflow for any step
          } else {
            s = clampIdx(s, -1, dim - 1);
            e = clampIdx(e, -1, dim - 1);
            // (s - e - 1) / -st + 1, without negating st (INT64_MIN)
            out[ax] = s > e ? (st == INT64_MIN ? 1 : (s - e - 1) / -st + 1) : 0;
          }
        }
        return make(out, x->getElementType());
      })
      .Case<GatherOp>([&](GatherOp o) -> LogicalResult {
        auto x = I.ranked(o.getData(), "data"), ind = I.ranked(o.getIndices(), "indices");
        if (failed(x) || failed(ind))
          return failure();
        if (!isa<IntegerType>(ind->getElementType()))
          return I.fail("expects integer indices");
        int64_t axis = o.getAxis();
        if (failed(I.normAxis(axis, x->getRank())))
          return failure();
        Dims out(x->getShape().take_front(axis));
        out.append(ind->getShape().begin(), ind->getShape().end());
        out.append(x->getShape().begin() + axis + 1, x->getShape().end());
        return make(out, x->getElementType());
      })
      .Case<ExpandOp>([&](ExpandOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand"), s = I.ranked(o.getShape(), "shape");
        if (failed(x) || failed(s))
          return failure();
        auto len = I.shapeLength(*s);
        if (failed(len))
          return failure();
        auto target = getPartialInts(o.getShape());
        Dims t = target ? *target : Dims(*len, kDyn);
        // An unknown target dim broadcast against a known input dim d != 1 is d; against 1 it stays unknown.
        size_t r = std::max<size_t>(t.size(), x->getRank());
        Dims out(r);
        for (size_t i = 0; i < r; ++i) {
          int64_t dx = i < r - x->getRank() ? 1 : x->getDimSize(i - (r - x->getRank()));
          int64_t dt = i < r - t.size() ? 1 : t[i - (r - t.size())];
          if (dt == kDyn)
            out[i] = dx == 1 ? kDyn : dx;
          else if (dx == kDyn)
            out[i] = dt == 1 ? kDyn : dt;
          else if (dx == dt || dt == 1)
            out[i] = dx;
          else if (dx == 1)
            out[i] = dt;
          else
            return I.fail("input dim " + Twine(dx) + " does not broadcast to " + Twine(dt));
        }
        return make(out, x->getElementType());
      })
      .Case<TriluOp>([&](TriluOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        if (x->getRank() < 2)
          return I.fail("expects rank >= 2");
        return make(x->getShape(), x->getElementType());
      })
      .Case<ShapeOp>([&](ShapeOp o) -> LogicalResult {
        auto x = I.ranked(o.getX(), "operand");
        if (failed(x))
          return failure();
        int64_t r = x->getRank();
        int64_t s = o.getStart().value_or(0), e = o.getEnd().value_or(r);
        s = std::clamp<int64_t>(s < 0 ? s + r : s, 0, r);
        e = std::clamp<int64_t>(e < 0 ? e + r : e, 0, r);
        return make({std::max<int64_t>(e - s, 0)}, i64);
      })
      .Case<SizeOp>([&](SizeOp) -> LogicalResult { return make({}, i64); })
      .Case<RangeOp>([&](RangeOp o) -> LogicalResult {
        auto s = I.ranked(o.getStart(), "start");
        if (failed(s))
          return failure();
        return make({kDyn}, s->getElementType());
      })
      .Case<ConstantOfShapeOp>([&](ConstantOfShapeOp o) -> LogicalResult {
        auto s = I.ranked(o.getShape(), "shape");
        if (failed(s))
          return failure();
        auto len = I.shapeLength(*s);
        if (failed(len))
          return failure();
        auto target = getPartialInts(o.getShape());
        Dims out = target ? *target : Dims(*len, kDyn);
        return make(out, cast<TensorType>(o.getY().getType()).getElementType());
      })
      .Default([&](Operation *o) { return inferWithKernel(I, o, types); });
}

} // namespace

namespace qopt::nn {

LogicalResult inferResultTypes(Operation *op, SmallVectorImpl<Type> &types, bool diag) {
  types.clear();
  return infer(op, types, diag);
}

std::optional<SmallVector<int64_t>> getPartialInts(Value v) {
  // Shape, axes, pads and repeats vectors have at most 2 x 16 entries (model.bin's tensors have rank <= 16); a
  // longer vector is data, not shape arithmetic, and tracking it element by element would cost memory in
  // proportion to a length the file chooses (a 2^41-element int64 input used to abort SmallVector).
  constexpr int64_t kMaxTracked = 64;
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || t.getRank() > 1 || !t.hasStaticShape() || !isa<IntegerType>(t.getElementType()) ||
      t.getNumElements() > kMaxTracked)
    return std::nullopt;
  int64_t n = t.getNumElements();
  Operation *def = v.getDefiningOp();
  if (!def)
    return SmallVector<int64_t>(n, kDyn);
  Attribute cst;
  if (matchPattern(v, m_Constant(&cst))) {
    num::Tensor tensor;
    std::vector<uint8_t> storage;
    if (readConstant(cst, tensor, storage)) {
      SmallVector<int64_t> out;
      for (int64_t i = 0; i < n; ++i)
        out.push_back(num::loadInt(tensor, i));
      return out;
    }
  }
  if (auto s = dyn_cast<ShapeOp>(def)) {
    auto xt = dyn_cast<RankedTensorType>(s.getX().getType());
    if (!xt)
      return SmallVector<int64_t>(n, kDyn);
    int64_t r = xt.getRank(), st = s.getStart().value_or(0);
    st = std::clamp<int64_t>(st < 0 ? st + r : st, 0, r);
    SmallVector<int64_t> out;
    for (int64_t i = 0; i < n; ++i)
      out.push_back(xt.getDimSize(st + i));
    return out;
  }
  if (auto g = dyn_cast<GatherOp>(def)) {
    auto src = getPartialInts(g.getData());
    auto idx = getPartialInts(g.getIndices());
    if (src && idx && idx->size() == static_cast<size_t>(n)) {
      SmallVector<int64_t> out;
      for (int64_t k : *idx) {
        if (k != kDyn && k < 0)
          k += static_cast<int64_t>(src->size());
        out.push_back(k == kDyn || k < 0 || k >= static_cast<int64_t>(src->size()) ? kDyn : (*src)[k]);
      }
      return out;
    }
  }
  if (auto c = dyn_cast<ConcatOp>(def)) {
    SmallVector<int64_t> out;
    for (Value in : c.getInputs()) {
      auto p = getPartialInts(in);
      if (!p)
        return SmallVector<int64_t>(n, kDyn);
      out.append(*p);
    }
    if (static_cast<int64_t>(out.size()) == n)
      return out;
  }
  if (isa<UnsqueezeOp, SqueezeOp, ReshapeOp, CastOp>(def)) {
    auto inner = getPartialInts(def->getOperand(0));
    if (inner && static_cast<int64_t>(inner->size()) == n &&
        isa<IntegerType>(cast<TensorType>(def->getOperand(0).getType()).getElementType()))
      return inner;
  }
  return SmallVector<int64_t>(n, kDyn);
}

} // namespace qopt::nn
