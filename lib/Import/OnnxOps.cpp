//===- OnnxOps.cpp - the ONNX op/opset handler table -----------------------===//
//
// One handler per (op type, since-version); a node uses the handler with the highest since-version not above its
// opset. A node whose op has no handler at its version is an error naming the node, op and version. Handlers
// build nn ops through Ctx::make, which infers result types and folds constant operands on the spot, so static
// shape sub-graphs (Shape -> Gather -> Concat -> Reshape) disappear during import.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Import/OnnxImporter.h"
#include "OnnxSchema.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/StringMap.h"

#include <functional>

using namespace mlir;
using namespace qopt;
using namespace qopt::nn;

namespace {

struct Ctx {
  OnnxNodeOp node;
  OpBuilder &b;
  Location loc;
  SmallVector<Value> results;

  int64_t version() { return node.getVersion(); }
  unsigned numIn() { return node.getOperands().size(); }
  bool has(unsigned i) { return i < numIn() && !isa<NoneType>(node.getOperands()[i].getType()); }
  Value in(unsigned i) { return node.getOperands()[i]; }
  Value opt(unsigned i) { return has(i) ? in(i) : none(); }
  Value none() { return NoneOp::create(b, loc); }

  Attribute attr(StringRef name) { return node.getAttrs().get(name); }
  int64_t i(StringRef name, int64_t d) {
    auto a = dyn_cast_or_null<IntegerAttr>(attr(name));
    return a ? a.getInt() : d;
  }
  double f(StringRef name, double d) {
    auto a = dyn_cast_or_null<FloatAttr>(attr(name));
    return a ? a.getValueAsDouble() : d;
  }
  StringRef s(StringRef name, StringRef d) {
    auto a = dyn_cast_or_null<StringAttr>(attr(name));
    return a ? a.getValue() : d;
  }
  std::optional<SmallVector<int64_t>> ints(StringRef name) {
    auto a = dyn_cast_or_null<DenseI64ArrayAttr>(attr(name));
    if (!a)
      return std::nullopt;
    return SmallVector<int64_t>(a.asArrayRef());
  }

  LogicalResult fail(const Twine &msg) {
    return node.emitError() << "ONNX " << node.getOpType() << " (opset " << version() << "): " << msg;
  }

  // Creates nn op `name` with inferred result types, folding it to a constant when its operands are constants.
  FailureOr<Value> make(StringRef name, ValueRange operands, ArrayRef<NamedAttribute> attrs = {},
                        Type elem = Type()) {
    OperationState st(loc, "nn." + name.str());
    st.addOperands(operands);
    st.addAttributes(attrs);
    st.addTypes(UnrankedTensorType::get(elem ? elem : b.getF32Type()));
    Operation *op = b.create(st);
    SmallVector<Type> types;
    if (failed(inferResultTypes(op, types, /*diag=*/true))) {
      op->erase();
      return failure();
    }
    op->getResult(0).setType(types[0]);
    SmallVector<OpFoldResult> folded;
    if (succeeded(op->fold(folded)) && folded.size() == 1) {
      if (auto a = dyn_cast<Attribute>(folded[0])) {
        auto c = ConstantOp::create(b, loc, cast<ElementsAttr>(a), StringAttr());
        op->erase();
        return Value(c);
      }
      if (auto v = dyn_cast<Value>(folded[0])) {
        op->erase();
        return v;
      }
    }
    return op->getResult(0);
  }

  // As make(), for ops with several results (no folding).
  FailureOr<SmallVector<Value>> makeMulti(StringRef name, ValueRange operands, ArrayRef<NamedAttribute> attrs,
                                          unsigned numResults) {
    OperationState st(loc, "nn." + name.str());
    st.addOperands(operands);
    st.addAttributes(attrs);
    for (unsigned i = 0; i < numResults; ++i)
      st.addTypes(UnrankedTensorType::get(b.getF32Type()));
    Operation *op = b.create(st);
    SmallVector<Type> types;
    if (failed(inferResultTypes(op, types, /*diag=*/true))) {
      op->erase();
      return failure();
    }
    for (unsigned i = 0; i < numResults; ++i)
      op->getResult(i).setType(types[i]);
    return SmallVector<Value>(op->getResults());
  }

  NamedAttribute na(StringRef k, Attribute v) { return b.getNamedAttr(k, v); }
  Value i64Const(ArrayRef<int64_t> vals) {
    auto t = RankedTensorType::get({static_cast<int64_t>(vals.size())}, b.getI64Type());
    return ConstantOp::create(b, loc, DenseElementsAttr::get(t, vals), StringAttr());
  }
  Value scalarLike(Value like, double v) {
    auto et = cast<TensorType>(like.getType()).getElementType();
    auto t = RankedTensorType::get({}, et);
    Attribute a = isa<FloatType>(et) ? Attribute(DenseElementsAttr::get(t, b.getFloatAttr(et, v)))
                                     : Attribute(DenseElementsAttr::get(t, b.getIntegerAttr(et, (int64_t)v)));
    return ConstantOp::create(b, loc, cast<ElementsAttr>(a), StringAttr());
  }

  // The values of a constant integer operand (axes, pads, k ...), or failure naming it.
  FailureOr<SmallVector<int64_t>> constInts(unsigned idx, StringRef what) {
    auto p = getPartialInts(in(idx));
    if (!p || llvm::any_of(*p, [](int64_t v) { return v == ShapedType::kDynamic; })) {
      (void)fail(Twine(what) + " must be a compile-time constant");
      return failure();
    }
    return *p;
  }
};

using Handler = std::function<LogicalResult(Ctx &)>;

struct Table {
  llvm::StringMap<std::vector<std::pair<int64_t, Handler>>> map;
  void on(StringRef op, int64_t since, Handler h) { map[op].push_back({since, std::move(h)}); }
};

#define TRY(var, expr)                                                                                            \
  auto var##OrErr = (expr);                                                                                       \
  if (failed(var##OrErr))                                                                                         \
    return failure();                                                                                             \
  Value var = *var##OrErr;

LogicalResult unaryFn(Ctx &c, StringRef fn, ArrayRef<NamedAttribute> extra = {}) {
  SmallVector<NamedAttribute> attrs{c.na("fn", c.b.getStringAttr(fn))};
  attrs.append(extra.begin(), extra.end());
  TRY(y, c.make("unary", {c.in(0)}, attrs));
  c.results.push_back(y);
  return success();
}

FailureOr<Value> binary(Ctx &c, StringRef fn, Value x, Value y) {
  return c.make("binary", {x, y}, {c.na("fn", c.b.getStringAttr(fn))});
}

LogicalResult binaryFn(Ctx &c, StringRef fn) {
  if (c.numIn() != 2)
    return c.fail("expects 2 inputs");
  TRY(z, binary(c, fn, c.in(0), c.in(1)));
  c.results.push_back(z);
  return success();
}

// Max, Min, Sum, Mean: variadic, folded pairwise.
LogicalResult variadicFn(Ctx &c, StringRef fn, bool mean) {
  if (c.numIn() == 0)
    return c.fail("expects at least one input");
  Value acc = c.in(0);
  for (unsigned k = 1; k < c.numIn(); ++k) {
    TRY(next, binary(c, fn, acc, c.in(k)));
    acc = next;
  }
  if (mean && c.numIn() > 1) {
    TRY(m, binary(c, "div", acc, c.scalarLike(acc, c.numIn())));
    acc = m;
  }
  c.results.push_back(acc);
  return success();
}

LogicalResult reduceFn(Ctx &c, StringRef kind, bool axesInput) {
  SmallVector<int64_t> axes;
  if (axesInput) {
    if (c.has(1)) {
      auto a = c.constInts(1, "axes");
      if (failed(a))
        return failure();
      axes = *a;
    }
  } else if (auto a = c.ints("axes")) {
    axes = *a;
  }
  if (axes.empty() && c.i("noop_with_empty_axes", 0)) {
    c.results.push_back(c.in(0));
    return success();
  }
  TRY(y, c.make("reduce", {c.in(0)},
                {c.na("kind", c.b.getStringAttr(kind)), c.na("axes", c.b.getDenseI64ArrayAttr(axes)),
                 c.na("keepdims", c.b.getI64IntegerAttr(c.i("keepdims", 1)))}));
  c.results.push_back(y);
  return success();
}

const Table &table() {
  static const Table t = [] {
    Table t;
    // Elementwise unary.
    static const std::pair<const char *, const char *> unaries[] = {
        {"Neg", "neg"}, {"Abs", "abs"}, {"Exp", "exp"}, {"Log", "log"}, {"Sqrt", "sqrt"},
        {"Reciprocal", "reciprocal"}, {"Erf", "erf"}, {"Tanh", "tanh"}, {"Sigmoid", "sigmoid"}, {"Relu", "relu"},
        {"Sin", "sin"}, {"Cos", "cos"}, {"Tan", "tan"}, {"Asin", "asin"}, {"Acos", "acos"}, {"Atan", "atan"},
        {"Sinh", "sinh"}, {"Cosh", "cosh"}, {"Asinh", "asinh"}, {"Acosh", "acosh"}, {"Atanh", "atanh"},
        {"Floor", "floor"}, {"Ceil", "ceil"}, {"Round", "round"}, {"Sign", "sign"}, {"Not", "not"},
        {"IsNaN", "isnan"}, {"Softplus", "softplus"}, {"Softsign", "softsign"}, {"HardSwish", "hard_swish"}};
    for (auto [op, fn] : unaries) {
      std::string f = fn;
      t.on(op, 1, [f](Ctx &c) { return unaryFn(c, f); });
    }
    t.on("LeakyRelu", 1, [](Ctx &c) {
      return unaryFn(c, "leaky_relu", {c.na("alpha", c.b.getF64FloatAttr(c.f("alpha", 0.01)))});
    });
    t.on("Elu", 1, [](Ctx &c) { return unaryFn(c, "elu", {c.na("alpha", c.b.getF64FloatAttr(c.f("alpha", 1.0)))}); });
    t.on("Selu", 1, [](Ctx &c) {
      return unaryFn(c, "selu", {c.na("alpha", c.b.getF64FloatAttr(c.f("alpha", 1.67326319217681884765625))),
                                 c.na("gamma", c.b.getF64FloatAttr(c.f("gamma", 1.05070102214813232421875)))});
    });
    t.on("HardSigmoid", 1, [](Ctx &c) {
      return unaryFn(c, "hard_sigmoid", {c.na("alpha", c.b.getF64FloatAttr(c.f("alpha", 0.2))),
                                         c.na("beta", c.b.getF64FloatAttr(c.f("beta", 0.5)))});
    });
    t.on("Gelu", 20, [](Ctx &c) {
      StringRef approx = c.s("approximate", "none");
      if (approx != "none" && approx != "tanh")
        return c.fail("unknown approximate='" + approx + "'");
      return unaryFn(c, approx == "tanh" ? "gelu_tanh" : "gelu");
    });
    t.on("IsInf", 10, [](Ctx &c) {
      if (c.i("detect_negative", 1) != 1 || c.i("detect_positive", 1) != 1)
        return c.fail("detect_negative/detect_positive other than 1 are not supported");
      return unaryFn(c, "isinf");
    });
    t.on("Identity", 1, [](Ctx &c) {
      c.results.push_back(c.in(0));
      return success();
    });
    t.on("Dropout", 1, [](Ctx &c) {
      if (c.has(2)) {
        auto training = getPartialInts(c.in(2));
        if (!training || training->empty() || (*training)[0] != 0)
          return c.fail("training_mode must be a constant false (inference only)");
      }
      if (c.node.getNumResults() > 1 && !c.node.getResult(1).use_empty())
        return c.fail("the mask output is not supported (inference only)");
      c.results.push_back(c.in(0));
      if (c.node.getNumResults() > 1)
        c.results.push_back(c.in(0));
      return success();
    });

    // Elementwise binary.
    static const std::pair<const char *, const char *> binaries[] = {
        {"Add", "add"}, {"Sub", "sub"}, {"Mul", "mul"}, {"Div", "div"}, {"Equal", "equal"}, {"Less", "less"},
        {"LessOrEqual", "less_equal"}, {"Greater", "greater"}, {"GreaterOrEqual", "greater_equal"},
        {"And", "and"}, {"Or", "or"}, {"Xor", "xor"}};
    for (auto [op, fn] : binaries) {
      std::string f = fn;
      t.on(op, 1, [f](Ctx &c) { return binaryFn(c, f); });
    }
    t.on("Pow", 7, [](Ctx &c) {
      Value x = c.in(0), y = c.in(1);
      Type xe = cast<TensorType>(x.getType()).getElementType();
      if (cast<TensorType>(y.getType()).getElementType() != xe) {
        TRY(yc, c.make("cast", {y}, {}, xe));
        y = yc;
      }
      TRY(z, binary(c, "pow", x, y));
      c.results.push_back(z);
      return success();
    });
    t.on("Mod", 10, [](Ctx &c) { return binaryFn(c, c.i("fmod", 0) ? "fmod" : "mod"); });
    t.on("BitShift", 11, [](Ctx &c) {
      StringRef d = c.s("direction", "");
      if (d != "LEFT" && d != "RIGHT")
        return c.fail("direction must be LEFT or RIGHT");
      return binaryFn(c, d == "LEFT" ? "shift_left" : "shift_right");
    });
    t.on("Max", 8, [](Ctx &c) { return variadicFn(c, "max", false); });
    t.on("Min", 8, [](Ctx &c) { return variadicFn(c, "min", false); });
    t.on("Sum", 8, [](Ctx &c) { return variadicFn(c, "add", false); });
    t.on("Mean", 8, [](Ctx &c) { return variadicFn(c, "add", true); });
    t.on("Where", 9, [](Ctx &c) {
      TRY(y, c.make("where", {c.in(0), c.in(1), c.in(2)}));
      c.results.push_back(y);
      return success();
    });
    t.on("Clip", 11, [](Ctx &c) {
      Value x = c.in(0);
      if (c.has(1)) {
        TRY(lo, binary(c, "max", x, c.in(1)));
        x = lo;
      }
      if (c.has(2)) {
        TRY(hi, binary(c, "min", x, c.in(2)));
        x = hi;
      }
      c.results.push_back(x);
      return success();
    });
    t.on("Cast", 6, [&](Ctx &c) -> LogicalResult {
      int64_t to = c.i("to", 0);
      Type et = num::isValidDType(static_cast<int>(to)) ? fromDType(c.b.getContext(), static_cast<num::DType>(to))
                                                        : Type();
      if (!et)
        return c.fail("unsupported target type code " + Twine(to));
      TRY(y, c.make("cast", {c.in(0)}, {}, et));
      c.results.push_back(y);
      return success();
    });
    t.on("CastLike", 15, [](Ctx &c) {
      TRY(y, c.make("cast", {c.in(0)}, {}, cast<TensorType>(c.in(1).getType()).getElementType()));
      c.results.push_back(y);
      return success();
    });

    // Linear algebra and normalization.
    t.on("MatMul", 1, [](Ctx &c) {
      TRY(y, c.make("matmul", {c.in(0), c.in(1)}));
      c.results.push_back(y);
      return success();
    });
    t.on("Gemm", 7, [](Ctx &c) {
      Value a = c.in(0), bm = c.in(1);
      auto perm = c.b.getDenseI64ArrayAttr({1, 0});
      if (c.i("transA", 0)) {
        TRY(at, c.make("transpose", {a}, {c.na("perm", perm)}));
        a = at;
      }
      if (c.i("transB", 0)) {
        TRY(bt, c.make("transpose", {bm}, {c.na("perm", perm)}));
        bm = bt;
      }
      TRY(y, c.make("matmul", {a, bm}));
      double alpha = c.f("alpha", 1.0), beta = c.f("beta", 1.0);
      if (alpha != 1.0) {
        TRY(ys, binary(c, "mul", y, c.scalarLike(y, alpha)));
        y = ys;
      }
      if (c.has(2)) {
        Value cc = c.in(2);
        if (beta != 1.0) {
          TRY(cs, binary(c, "mul", cc, c.scalarLike(cc, beta)));
          cc = cs;
        }
        TRY(yc, binary(c, "add", y, cc));
        y = yc;
      }
      c.results.push_back(y);
      return success();
    });
    for (auto [op, isLog] : {std::pair<const char *, int>{"Softmax", 0}, {"LogSoftmax", 1}}) {
      int lg = isLog;
      t.on(op, 13, [lg](Ctx &c) {
        TRY(y, c.make("softmax", {c.in(0)},
                      {c.na("axis", c.b.getI64IntegerAttr(c.i("axis", -1))), c.na("log", c.b.getI64IntegerAttr(lg))}));
        c.results.push_back(y);
        return success();
      });
    }
    t.on("LayerNormalization", 17, [](Ctx &c) -> LogicalResult {
      bool stats = false;
      for (unsigned k = 1; k < c.node.getNumResults(); ++k)
        stats |= !c.node.getResult(k).use_empty();
      if (stats) {
        // Mean and InvStdDev are wanted: decompose (they keep the normalized dims as 1s).
        auto xt = dyn_cast<RankedTensorType>(c.in(0).getType());
        if (!xt)
          return c.fail("expects a ranked input");
        int64_t axis = c.i("axis", -1), r = xt.getRank();
        if (axis < 0)
          axis += r;
        if (axis < 0 || axis >= r)
          return c.fail("axis out of range");
        SmallVector<int64_t> axes;
        for (int64_t k = axis; k < r; ++k)
          axes.push_back(k);
        auto red = [&](Value v) {
          return c.make("reduce", {v}, {c.na("kind", c.b.getStringAttr("mean")),
                                        c.na("axes", c.b.getDenseI64ArrayAttr(axes))});
        };
        Value x = c.in(0);
        TRY(mean, red(x));
        TRY(d, binary(c, "sub", x, mean));
        TRY(d2, binary(c, "mul", d, d));
        TRY(var, red(d2));
        TRY(ve, binary(c, "add", var, c.scalarLike(var, c.f("epsilon", 1e-5))));
        TRY(sd, c.make("unary", {ve}, {c.na("fn", c.b.getStringAttr("sqrt"))}));
        TRY(inv, c.make("unary", {sd}, {c.na("fn", c.b.getStringAttr("reciprocal"))}));
        TRY(n, binary(c, "mul", d, inv));
        TRY(y, binary(c, "mul", n, c.in(1)));
        if (c.has(2)) {
          TRY(yb, binary(c, "add", y, c.in(2)));
          y = yb;
        }
        c.results.push_back(y);
        if (c.node.getNumResults() > 1)
          c.results.push_back(mean);
        if (c.node.getNumResults() > 2)
          c.results.push_back(inv);
        return success();
      }
      TRY(y, c.make("layer_norm", {c.in(0), c.in(1), c.opt(2)},
                    {c.na("axis", c.b.getI64IntegerAttr(c.i("axis", -1))),
                     c.na("epsilon", c.b.getF64FloatAttr(c.f("epsilon", 1e-5)))}));
      c.results.push_back(y);
      for (unsigned k = 1; k < c.node.getNumResults(); ++k)
        c.results.push_back(y);
      return success();
    });
    t.on("BatchNormalization", 9, [](Ctx &c) -> LogicalResult {
      if (c.i("training_mode", 0))
        return c.fail("training_mode=1 is not supported (inference only)");
      // y = (x - mean) / sqrt(var + eps) * scale + bias, parameters broadcast over dim 1.
      auto xt = dyn_cast<RankedTensorType>(c.in(0).getType());
      if (!xt || xt.getRank() < 2)
        return c.fail("expects a ranked input of rank >= 2");
      SmallVector<int64_t> ax;
      for (int64_t k = 1; k < xt.getRank() - 1; ++k)
        ax.push_back(k);
      auto bc = [&](Value v) -> FailureOr<Value> {
        if (ax.empty())
          return v;
        return c.make("unsqueeze", {v}, {c.na("axes", c.b.getDenseI64ArrayAttr(ax))});
      };
      TRY(scale, bc(c.in(1)));
      TRY(bias, bc(c.in(2)));
      TRY(mean, bc(c.in(3)));
      TRY(var, bc(c.in(4)));
      TRY(ve, binary(c, "add", var, c.scalarLike(var, c.f("epsilon", 1e-5))));
      TRY(sd, c.make("unary", {ve}, {c.na("fn", c.b.getStringAttr("sqrt"))}));
      TRY(xc, binary(c, "sub", c.in(0), mean));
      TRY(xn, binary(c, "div", xc, sd));
      TRY(xs, binary(c, "mul", xn, scale));
      TRY(y, binary(c, "add", xs, bias));
      c.results.push_back(y);
      return success();
    });

    // Reductions.
    static const std::pair<const char *, const char *> reductions[] = {
        {"ReduceMean", "mean"}, {"ReduceMax", "max"}, {"ReduceMin", "min"}, {"ReduceProd", "prod"},
        {"ReduceSumSquare", "sum_square"}, {"ReduceL1", "l1"}, {"ReduceL2", "l2"}, {"ReduceLogSum", "log_sum"},
        {"ReduceLogSumExp", "log_sum_exp"}};
    for (auto [op, kind] : reductions) {
      std::string k = kind;
      t.on(op, 1, [k](Ctx &c) { return reduceFn(c, k, false); });
      t.on(op, 18, [k](Ctx &c) { return reduceFn(c, k, true); });
    }
    t.on("ReduceSum", 1, [](Ctx &c) { return reduceFn(c, "sum", false); });
    t.on("ReduceSum", 13, [](Ctx &c) { return reduceFn(c, "sum", true); });
    for (auto [op, kind] : {std::pair<const char *, const char *>{"ArgMax", "max"}, {"ArgMin", "min"}}) {
      std::string k = kind;
      t.on(op, 1, [k](Ctx &c) {
        TRY(y, c.make("arg_reduce", {c.in(0)},
                      {c.na("kind", c.b.getStringAttr(k)), c.na("axis", c.b.getI64IntegerAttr(c.i("axis", 0))),
                       c.na("keepdims", c.b.getI64IntegerAttr(c.i("keepdims", 1))),
                       c.na("select_last_index", c.b.getI64IntegerAttr(c.i("select_last_index", 0)))}));
        c.results.push_back(y);
        return success();
      });
    }

    // Shape and data movement.
    t.on("Reshape", 5, [](Ctx &c) {
      TRY(y, c.make("reshape", {c.in(0), c.in(1)}, {c.na("allowzero", c.b.getI64IntegerAttr(c.i("allowzero", 0)))}));
      c.results.push_back(y);
      return success();
    });
    t.on("Transpose", 1, [](Ctx &c) -> LogicalResult {
      auto xt = dyn_cast<RankedTensorType>(c.in(0).getType());
      if (!xt)
        return c.fail("expects a ranked input");
      SmallVector<int64_t> perm;
      if (auto p = c.ints("perm"))
        perm = *p;
      else
        for (int64_t k = xt.getRank() - 1; k >= 0; --k)
          perm.push_back(k);
      TRY(y, c.make("transpose", {c.in(0)}, {c.na("perm", c.b.getDenseI64ArrayAttr(perm))}));
      c.results.push_back(y);
      return success();
    });
    t.on("Unsqueeze", 1, [](Ctx &c) -> LogicalResult {
      auto axes = c.ints("axes");
      if (!axes)
        return c.fail("missing required attribute 'axes'");
      TRY(y, c.make("unsqueeze", {c.in(0)}, {c.na("axes", c.b.getDenseI64ArrayAttr(*axes))}));
      c.results.push_back(y);
      return success();
    });
    t.on("Squeeze", 1, [](Ctx &c) -> LogicalResult {
      SmallVector<NamedAttribute> attrs;
      if (auto axes = c.ints("axes"))
        attrs.push_back(c.na("axes", c.b.getDenseI64ArrayAttr(*axes)));
      TRY(y, c.make("squeeze", {c.in(0)}, attrs));
      c.results.push_back(y);
      return success();
    });
    t.on("Unsqueeze", 13, [](Ctx &c) -> LogicalResult {
      auto axes = c.constInts(1, "axes");
      if (failed(axes))
        return failure();
      TRY(y, c.make("unsqueeze", {c.in(0)}, {c.na("axes", c.b.getDenseI64ArrayAttr(*axes))}));
      c.results.push_back(y);
      return success();
    });
    t.on("Squeeze", 13, [](Ctx &c) -> LogicalResult {
      SmallVector<NamedAttribute> attrs;
      if (c.has(1)) {
        auto axes = c.constInts(1, "axes");
        if (failed(axes))
          return failure();
        attrs.push_back(c.na("axes", c.b.getDenseI64ArrayAttr(*axes)));
      }
      TRY(y, c.make("squeeze", {c.in(0)}, attrs));
      c.results.push_back(y);
      return success();
    });
    t.on("Flatten", 1, [](Ctx &c) {
      TRY(y, c.make("flatten", {c.in(0)}, {c.na("axis", c.b.getI64IntegerAttr(c.i("axis", 1)))}));
      c.results.push_back(y);
      return success();
    });
    t.on("Concat", 4, [](Ctx &c) -> LogicalResult {
      if (!c.attr("axis"))
        return c.fail("missing required attribute 'axis'");
      TRY(y, c.make("concat", c.node.getOperands(), {c.na("axis", c.b.getI64IntegerAttr(c.i("axis", 0)))}));
      c.results.push_back(y);
      return success();
    });
    t.on("Slice", 10, [](Ctx &c) {
      TRY(y, c.make("slice", {c.in(0), c.in(1), c.in(2), c.opt(3), c.opt(4)}));
      c.results.push_back(y);
      return success();
    });
    // Split becomes one slice per output, with constant bounds.
    auto split = [](Ctx &c, bool sizesInput) -> LogicalResult {
      auto xt = dyn_cast<RankedTensorType>(c.in(0).getType());
      if (!xt)
        return c.fail("expects a ranked input");
      int64_t axis = c.i("axis", 0);
      if (axis < -xt.getRank() || axis >= xt.getRank())
        return c.fail("axis out of range");
      if (axis < 0)
        axis += xt.getRank();
      int64_t n = c.node.getNumResults();
      SmallVector<int64_t> sizes;
      if (sizesInput && c.has(1)) {
        auto s = c.constInts(1, "split");
        if (failed(s))
          return failure();
        sizes = *s;
      } else if (!sizesInput && c.ints("split")) {
        sizes = *c.ints("split");
      } else {
        int64_t dim = xt.getDimSize(axis);
        if (ShapedType::isDynamic(dim))
          return c.fail("equal split of a dynamic dim is not supported");
        int64_t parts = c.i("num_outputs", n), chunk = (dim + parts - 1) / parts;
        for (int64_t k = 0; k < n; ++k)
          sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - k * chunk)));
      }
      if (static_cast<int64_t>(sizes.size()) != n)
        return c.fail("split sizes do not match the number of outputs");
      int64_t at = 0;
      for (int64_t k = 0; k < n; ++k) {
        TRY(y, c.make("slice", {c.in(0), c.i64Const({at}), c.i64Const({at + sizes[k]}), c.i64Const({axis}),
                                c.none()}));
        c.results.push_back(y);
        at += sizes[k];
      }
      return success();
    };
    t.on("Split", 2, [split](Ctx &c) { return split(c, false); });
    t.on("Split", 13, [split](Ctx &c) { return split(c, true); });
    t.on("Gather", 1, [](Ctx &c) {
      TRY(y, c.make("gather", {c.in(0), c.in(1)}, {c.na("axis", c.b.getI64IntegerAttr(c.i("axis", 0)))}));
      c.results.push_back(y);
      return success();
    });
    t.on("Expand", 8, [](Ctx &c) {
      TRY(y, c.make("expand", {c.in(0), c.in(1)}));
      c.results.push_back(y);
      return success();
    });
    t.on("Trilu", 14, [](Ctx &c) {
      TRY(y, c.make("trilu", {c.in(0), c.opt(1)}, {c.na("upper", c.b.getI64IntegerAttr(c.i("upper", 1)))}));
      c.results.push_back(y);
      return success();
    });
    t.on("Shape", 1, [](Ctx &c) {
      SmallVector<NamedAttribute> attrs;
      if (c.attr("start"))
        attrs.push_back(c.na("start", c.b.getI64IntegerAttr(c.i("start", 0))));
      if (c.attr("end"))
        attrs.push_back(c.na("end", c.b.getI64IntegerAttr(c.i("end", 0))));
      TRY(y, c.make("shape", {c.in(0)}, attrs));
      c.results.push_back(y);
      return success();
    });
    t.on("Size", 1, [](Ctx &c) {
      TRY(y, c.make("size", {c.in(0)}));
      c.results.push_back(y);
      return success();
    });
    t.on("Range", 11, [](Ctx &c) {
      TRY(y, c.make("range", {c.in(0), c.in(1), c.in(2)}));
      c.results.push_back(y);
      return success();
    });
    t.on("Constant", 1, [](Ctx &c) -> LogicalResult {
      Attribute v;
      auto t0 = [&](Type et, ArrayRef<int64_t> shape) { return RankedTensorType::get(shape, et); };
      if (auto a = c.attr("value")) {
        v = a;
      } else if (auto a = dyn_cast_or_null<FloatAttr>(c.attr("value_float"))) {
        v = DenseElementsAttr::get(t0(c.b.getF32Type(), {}), a);
      } else if (auto a = dyn_cast_or_null<IntegerAttr>(c.attr("value_int"))) {
        v = DenseElementsAttr::get(t0(c.b.getI64Type(), {}), a.getInt());
      } else if (auto a = dyn_cast_or_null<DenseF32ArrayAttr>(c.attr("value_floats"))) {
        v = DenseElementsAttr::get(t0(c.b.getF32Type(), {(int64_t)a.size()}), a.asArrayRef());
      } else if (auto a = dyn_cast_or_null<DenseI64ArrayAttr>(c.attr("value_ints"))) {
        v = DenseElementsAttr::get(t0(c.b.getI64Type(), {(int64_t)a.size()}), a.asArrayRef());
      } else {
        return c.fail("has no supported value attribute (sparse and string constants are unsupported)");
      }
      auto e = dyn_cast<ElementsAttr>(v);
      if (!e)
        return c.fail("value is not a tensor");
      c.results.push_back(ConstantOp::create(c.b, c.loc, e, StringAttr()));
      return success();
    });
    t.on("ConstantOfShape", 9, [](Ctx &c) -> LogicalResult {
      Type et = c.b.getF32Type();
      double value = 0;
      if (auto a = dyn_cast_or_null<ElementsAttr>(c.attr("value"))) {
        num::Tensor t;
        std::vector<uint8_t> storage;
        if (a.getNumElements() != 1 || !readConstant(a, t, storage))
          return c.fail("value must be a one-element tensor");
        et = cast<ShapedType>(a.getType()).getElementType();
        value = num::loadDouble(t, 0);
      }
      TRY(y, c.make("constant_of_shape", {c.in(0)}, {c.na("value", c.b.getF64FloatAttr(value))}, et));
      c.results.push_back(y);
      return success();
    });

    // Convolution and pooling: auto_pad is resolved here into explicit pads.
    auto windowAttrs = [](Ctx &c, ArrayRef<int64_t> kernel, bool ceil,
                          SmallVectorImpl<NamedAttribute> &attrs) -> LogicalResult {
      auto xt = dyn_cast<RankedTensorType>(c.in(0).getType());
      if (!xt || xt.getRank() < 3)
        return c.fail("expects a ranked input of rank >= 3");
      int64_t n = xt.getRank() - 2;
      SmallVector<int64_t> strides = c.ints("strides").value_or(SmallVector<int64_t>(n, 1));
      SmallVector<int64_t> dil = c.ints("dilations").value_or(SmallVector<int64_t>(n, 1));
      SmallVector<int64_t> pads = c.ints("pads").value_or(SmallVector<int64_t>(2 * n, 0));
      if ((int64_t)strides.size() != n || (int64_t)dil.size() != n || (int64_t)pads.size() != 2 * n ||
          (int64_t)kernel.size() != n)
        return c.fail("strides, dilations, pads or kernel_shape do not match the input's spatial rank");
      for (int64_t i = 0; i < n; ++i)
        if (strides[i] < 1 || dil[i] < 1 || kernel[i] < 1 || strides[i] > (1 << 30) || dil[i] > (1 << 30) ||
            kernel[i] > (1 << 30) || pads[i] < 0 || pads[i + n] < 0 || pads[i] > (1 << 30) || pads[i + n] > (1 << 30))
          return c.fail("strides, dilations and kernel_shape must be in [1, 2^30] and pads in [0, 2^30]");
      StringRef autoPad = c.s("auto_pad", "NOTSET");
      if (autoPad == "VALID") {
        pads.assign(2 * n, 0);
      } else if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
        for (int64_t i = 0; i < n; ++i) {
          int64_t in = xt.getDimSize(2 + i);
          if (ShapedType::isDynamic(in))
            return c.fail("auto_pad " + autoPad + " needs static spatial dims");
          int64_t out = (in + strides[i] - 1) / strides[i];
          int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1 - in);
          int64_t small = total / 2, large = total - small;
          pads[i] = autoPad == "SAME_UPPER" ? small : large;
          pads[i + n] = autoPad == "SAME_UPPER" ? large : small;
        }
      } else if (autoPad != "NOTSET") {
        return c.fail("unknown auto_pad '" + autoPad + "'");
      }
      (void)ceil;
      attrs.push_back(c.na("strides", c.b.getDenseI64ArrayAttr(strides)));
      attrs.push_back(c.na("dilations", c.b.getDenseI64ArrayAttr(dil)));
      attrs.push_back(c.na("pads", c.b.getDenseI64ArrayAttr(pads)));
      return success();
    };
    t.on("Conv", 1, [windowAttrs](Ctx &c) -> LogicalResult {
      auto wt = dyn_cast<RankedTensorType>(c.in(1).getType());
      if (!wt || !wt.hasStaticShape() || wt.getRank() < 3)
        return c.fail("expects a weight of static shape and rank >= 3");
      SmallVector<int64_t> kernel =
          c.ints("kernel_shape").value_or(SmallVector<int64_t>(wt.getShape().drop_front(2)));
      SmallVector<NamedAttribute> attrs{c.na("group", c.b.getI64IntegerAttr(c.i("group", 1)))};
      if (failed(windowAttrs(c, kernel, false, attrs)))
        return failure();
      TRY(y, c.make("conv", {c.in(0), c.in(1), c.opt(2)}, attrs));
      c.results.push_back(y);
      return success();
    });
    auto pool = [windowAttrs](Ctx &c, StringRef kind, bool global) -> LogicalResult {
      SmallVector<NamedAttribute> attrs{c.na("kind", c.b.getStringAttr(kind))};
      if (global) {
        attrs.push_back(c.na("global", c.b.getI64IntegerAttr(1)));
      } else {
        auto kernel = c.ints("kernel_shape");
        if (!kernel)
          return c.fail("missing required attribute 'kernel_shape'");
        if (failed(windowAttrs(c, *kernel, c.i("ceil_mode", 0), attrs)))
          return failure();
        attrs.push_back(c.na("kernel_shape", c.b.getDenseI64ArrayAttr(*kernel)));
        attrs.push_back(c.na("ceil_mode", c.b.getI64IntegerAttr(c.i("ceil_mode", 0))));
        attrs.push_back(c.na("count_include_pad", c.b.getI64IntegerAttr(c.i("count_include_pad", 0))));
      }
      if (c.node.getNumResults() > 1 && !c.node.getResult(1).use_empty())
        return c.fail("the Indices output is not supported");
      if (c.i("storage_order", 0) != 0)
        return c.fail("storage_order=1 is not supported");
      TRY(y, c.make("pool", {c.in(0)}, attrs));
      c.results.push_back(y);
      for (unsigned k = 1; k < c.node.getNumResults(); ++k)
        c.results.push_back(y);
      return success();
    };
    t.on("MaxPool", 1, [pool](Ctx &c) { return pool(c, "max", false); });
    t.on("AveragePool", 1, [pool](Ctx &c) { return pool(c, "avg", false); });
    t.on("GlobalMaxPool", 1, [pool](Ctx &c) { return pool(c, "max", true); });
    t.on("GlobalAveragePool", 1, [pool](Ctx &c) { return pool(c, "avg", true); });

    // Indexing, padding, sorting, scans.
    t.on("GatherElements", 11, [](Ctx &c) {
      TRY(y, c.make("gather_elements", {c.in(0), c.in(1)}, {c.na("axis", c.b.getI64IntegerAttr(c.i("axis", 0)))}));
      c.results.push_back(y);
      return success();
    });
    t.on("GatherND", 11, [](Ctx &c) {
      TRY(y, c.make("gather_nd", {c.in(0), c.in(1)},
                    {c.na("batch_dims", c.b.getI64IntegerAttr(c.i("batch_dims", 0)))}));
      c.results.push_back(y);
      return success();
    });
    t.on("ScatterND", 11, [](Ctx &c) {
      TRY(y, c.make("scatter_nd", {c.in(0), c.in(1), c.in(2)},
                    {c.na("reduction", c.b.getStringAttr(c.s("reduction", "none")))}));
      c.results.push_back(y);
      return success();
    });
    t.on("Tile", 6, [](Ctx &c) {
      TRY(y, c.make("tile", {c.in(0), c.in(1)}));
      c.results.push_back(y);
      return success();
    });
    auto pad = [](Ctx &c, bool fromInputs) -> LogicalResult {
      auto xt = dyn_cast<RankedTensorType>(c.in(0).getType());
      if (!xt)
        return c.fail("expects a ranked input");
      int64_t r = xt.getRank();
      Value pads, value = c.none();
      if (fromInputs) {
        auto p = c.constInts(1, "pads");
        if (failed(p))
          return failure();
        SmallVector<int64_t> full(2 * r, 0);
        if (c.has(3)) { // axes (opset 18): pads name only those dims
          auto axes = c.constInts(3, "axes");
          if (failed(axes))
            return failure();
          if (p->size() != 2 * axes->size())
            return c.fail("pads and axes differ in length");
          for (size_t k = 0; k < axes->size(); ++k) {
            int64_t ax = (*axes)[k] < 0 ? (*axes)[k] + r : (*axes)[k];
            if (ax < 0 || ax >= r)
              return c.fail("axis out of range");
            full[ax] = (*p)[k];
            full[ax + r] = (*p)[k + axes->size()];
          }
        } else {
          full = *p;
        }
        pads = c.i64Const(full);
        if (c.has(2))
          value = c.in(2);
      } else {
        auto p = c.ints("pads");
        if (!p)
          return c.fail("missing required attribute 'pads'");
        pads = c.i64Const(*p);
        value = c.scalarLike(c.in(0), c.f("value", 0.0));
      }
      TRY(y, c.make("pad", {c.in(0), pads, value}, {c.na("mode", c.b.getStringAttr(c.s("mode", "constant")))}));
      c.results.push_back(y);
      return success();
    };
    t.on("Pad", 2, [pad](Ctx &c) { return pad(c, false); });
    t.on("Pad", 11, [pad](Ctx &c) { return pad(c, true); });
    t.on("TopK", 10, [](Ctx &c) -> LogicalResult {
      auto r = c.makeMulti("topk", {c.in(0), c.in(1)},
                           {c.na("axis", c.b.getI64IntegerAttr(c.i("axis", -1))),
                            c.na("largest", c.b.getI64IntegerAttr(c.i("largest", 1))),
                            c.na("sorted", c.b.getI64IntegerAttr(c.i("sorted", 1)))},
                           2);
      if (failed(r))
        return failure();
      c.results.append(r->begin(), r->end());
      return success();
    });
    t.on("CumSum", 11, [](Ctx &c) {
      TRY(y, c.make("cumsum", {c.in(0), c.in(1)},
                    {c.na("exclusive", c.b.getI64IntegerAttr(c.i("exclusive", 0))),
                     c.na("reverse", c.b.getI64IntegerAttr(c.i("reverse", 0)))}));
      c.results.push_back(y);
      return success();
    });
    t.on("PRelu", 9, [](Ctx &c) -> LogicalResult {
      Value x = c.in(0), slope = c.in(1);
      Value zero = c.scalarLike(x, 0.0);
      TRY(neg, binary(c, "less", x, zero));
      TRY(scaled, binary(c, "mul", x, slope));
      TRY(y, c.make("where", {neg, scaled, x}));
      c.results.push_back(y);
      return success();
    });
    // Softmax before opset 13 normalizes over all dims from `axis` on (the input coerced to 2-D).
    for (auto [op, isLog] : {std::pair<const char *, int>{"Softmax", 0}, {"LogSoftmax", 1}}) {
      int lg = isLog;
      t.on(op, 1, [lg](Ctx &c) -> LogicalResult {
        TRY(flat, c.make("flatten", {c.in(0)}, {c.na("axis", c.b.getI64IntegerAttr(c.i("axis", 1)))}));
        TRY(sm, c.make("softmax", {flat}, {c.na("log", c.b.getI64IntegerAttr(lg))}));
        TRY(shape, c.make("shape", {c.in(0)}));
        TRY(y, c.make("reshape", {sm, shape}));
        c.results.push_back(y);
        return success();
      });
    }

    // Einsum, the matmul-shaped cases: one or two operands, each letter once per operand, no ellipsis. Letters
    // only one operand has and the output lacks are summed first; then shared letters kept in the output are
    // batch dims, shared letters dropped are contracted, and one batched matmul does the rest.
    t.on("Einsum", 12, [](Ctx &c) -> LogicalResult {
      std::string eq;
      for (char ch : c.s("equation", ""))
        if (ch != ' ')
          eq += ch;
      size_t arrow = eq.find("->");
      std::string lhs = eq.substr(0, arrow), out;
      SmallVector<std::string> terms;
      for (size_t at = 0;;) {
        size_t comma = lhs.find(',', at);
        terms.push_back(lhs.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
        if (comma == std::string::npos)
          break;
        at = comma + 1;
      }
      if (arrow != std::string::npos) {
        out = eq.substr(arrow + 2);
      } else { // implicit output: letters that appear once, in alphabetical order
        for (char ch = 'A'; ch <= 'z'; ++ch)
          if (llvm::count(lhs, ch) == 1)
            out += ch;
      }
      if (eq.find('.') != std::string::npos)
        return c.fail("equation '" + eq + "': ellipsis is not supported");
      if (terms.size() != c.numIn() || terms.size() > 2)
        return c.fail("equation '" + eq + "': only one or two operands are supported");
      for (const std::string &tm : terms) {
        std::string sorted = tm;
        llvm::sort(sorted);
        if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
          return c.fail("equation '" + eq + "': a repeated letter in one operand (diagonal) is not supported");
      }
      SmallVector<Value> vals;
      SmallVector<std::string> labels;
      for (unsigned k = 0; k < c.numIn(); ++k) {
        auto ty = dyn_cast<RankedTensorType>(c.in(k).getType());
        if (!ty || !ty.hasStaticShape() || ty.getRank() != (int64_t)terms[k].size())
          return c.fail("equation '" + eq + "': operands must have static shapes matching the equation");
        // Sum letters no other operand and not the output has.
        SmallVector<int64_t> axes;
        std::string kept;
        for (size_t d = 0; d < terms[k].size(); ++d) {
          char ch = terms[k][d];
          bool elsewhere = out.find(ch) != std::string::npos ||
                           (terms.size() == 2 && terms[1 - k].find(ch) != std::string::npos);
          if (elsewhere)
            kept += ch;
          else
            axes.push_back((int64_t)d);
        }
        Value v = c.in(k);
        if (!axes.empty()) {
          TRY(r, c.make("reduce", {v}, {c.na("kind", c.b.getStringAttr("sum")),
                                        c.na("axes", c.b.getDenseI64ArrayAttr(axes)),
                                        c.na("keepdims", c.b.getI64IntegerAttr(0))}));
          v = r;
        }
        vals.push_back(v);
        labels.push_back(kept);
      }
      auto dimOf = [&](unsigned k, char ch) {
        return cast<RankedTensorType>(vals[k].getType()).getDimSize(labels[k].find(ch));
      };
      auto transpose = [&](Value v, const std::string &from, const std::string &to) -> FailureOr<Value> {
        if (from == to)
          return v;
        SmallVector<int64_t> perm;
        for (char ch : to)
          perm.push_back((int64_t)from.find(ch));
        return c.make("transpose", {v}, {c.na("perm", c.b.getDenseI64ArrayAttr(perm))});
      };
      auto reshape = [&](Value v, ArrayRef<int64_t> shape) { return c.make("reshape", {v, c.i64Const(shape)}); };
      if (vals.size() == 1) {
        TRY(y, transpose(vals[0], labels[0], out));
        c.results.push_back(y);
        return success();
      }
      std::string batch, contract, aFree, bFree;
      for (char ch : labels[0]) {
        bool inB = labels[1].find(ch) != std::string::npos, inOut = out.find(ch) != std::string::npos;
        (inB ? (inOut ? batch : contract) : aFree) += ch;
      }
      for (char ch : labels[1])
        if (labels[0].find(ch) == std::string::npos)
          bFree += ch;
      int64_t B = 1, M = 1, K = 1, N = 1;
      SmallVector<int64_t> outShape;
      for (char ch : batch) {
        if (dimOf(0, ch) != dimOf(1, ch))
          return c.fail("equation '" + eq + "': dim '" + Twine(ch) + "' differs between the operands");
        B *= dimOf(0, ch);
        outShape.push_back(dimOf(0, ch));
      }
      for (char ch : contract) {
        if (dimOf(0, ch) != dimOf(1, ch))
          return c.fail("equation '" + eq + "': dim '" + Twine(ch) + "' differs between the operands");
        K *= dimOf(0, ch);
      }
      for (char ch : aFree) {
        M *= dimOf(0, ch);
        outShape.push_back(dimOf(0, ch));
      }
      for (char ch : bFree) {
        N *= dimOf(1, ch);
        outShape.push_back(dimOf(1, ch));
      }
      TRY(at, transpose(vals[0], labels[0], batch + aFree + contract));
      TRY(bt, transpose(vals[1], labels[1], batch + contract + bFree));
      TRY(a3, reshape(at, {B, M, K}));
      TRY(b3, reshape(bt, {B, K, N}));
      TRY(mm, c.make("matmul", {a3, b3}));
      TRY(full, reshape(mm, outShape));
      TRY(y, transpose(full, batch + aFree + bFree, out));
      c.results.push_back(y);
      return success();
    });
    for (auto &kv : t.map)
      llvm::sort(kv.second, [](auto &a, auto &b) { return a.first < b.first; });
    return t;
  }();
  return t;
}

} // namespace

namespace qopt {

LogicalResult convertOnnxNode(OnnxNodeOp node) {
  if (!node.getDomain().empty() && node.getDomain() != "ai.onnx")
    return node.emitError() << "ONNX " << node.getOpType() << ": custom domain '" << node.getDomain()
                            << "' is not supported";
  const auto &t = table();
  auto it = t.map.find(node.getOpType());
  if (it == t.map.end())
    return node.emitError() << "ONNX " << node.getOpType() << " (opset " << node.getVersion()
                            << "): unsupported op";
  const Handler *h = nullptr;
  for (const auto &[since, handler] : it->second)
    if (since <= static_cast<int64_t>(node.getVersion()))
      h = &handler;
  if (!h)
    return node.emitError() << "ONNX " << node.getOpType() << " (opset " << node.getVersion()
                            << "): no handler for this opset version (earliest supported: "
                            << it->second.front().first << ")";
  for (Value v : node.getOperands())
    if (isa<UnknownType>(v.getType()))
      return node.emitError() << "ONNX " << node.getOpType() << ": operand not yet converted";
  if (failed(verifyOnnxSchema(node)))
    return failure();
  OpBuilder b(node);
  Ctx c{node, b, node.getLoc(), {}};
  if (failed((*h)(c)))
    return failure();
  if (c.results.size() != node.getNumResults())
    return node.emitError() << "ONNX " << node.getOpType() << ": handler produced " << c.results.size()
                            << " results for " << node.getNumResults() << " outputs";
  node->replaceAllUsesWith(c.results);
  node->erase();
  return success();
}

} // namespace qopt
