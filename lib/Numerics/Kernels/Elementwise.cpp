//===- Elementwise.cpp - unary, binary, where and cast kernels -------------===//
//
// Float math is done in the tensor's own precision (float32 for float32), which is what makes the CPU backend the
// exact reference the GPU kernels are checked against. Integer division by zero yields 0 rather than trapping:
// a model file must never be able to crash the runtime.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Broadcast.h"
#include "qopt/Numerics/Kernels.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

namespace qopt::num {
namespace {

// float16 and bfloat16 are computed in float32 and rounded once (to nearest even) on the way out.
struct WidenedF32 {
  std::vector<float> data;
  Tensor view;
  WidenedF32(const Tensor &t) : data(static_cast<size_t>(t.numel())) {
    for (int64_t i = 0; i < t.numel(); ++i)
      data[i] = static_cast<float>(loadDouble(t, i));
    view = t;
    view.dtype = DType::F32;
    view.data = data.data();
  }
};

void narrowFrom(const Tensor &f32, Tensor &out) {
  for (int64_t i = 0; i < out.numel(); ++i) {
    float v = f32.as<float>()[i];
    out.as<uint16_t>()[i] = out.dtype == DType::F16 ? floatToHalf(v) : floatToBf16(v);
  }
}

bool isHalf(DType t) { return t == DType::F16 || t == DType::BF16; }

// Integer arithmetic on tensor data wraps (two's complement) instead of being UB: signed overflow is UB, and types
// narrower than int are promoted to signed int first, so even uint16 * uint16 can overflow. Computed in an
// unsigned type at least as wide as unsigned int, then narrowed (modular).
template <typename T>
using WrapT = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
template <typename T> T addW(T x, T y) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<WrapT<T>>(x) + static_cast<WrapT<T>>(y));
  else
    return x + y;
}
template <typename T> T subW(T x, T y) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<WrapT<T>>(x) - static_cast<WrapT<T>>(y));
  else
    return x - y;
}
template <typename T> T mulW(T x, T y) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<WrapT<T>>(x) * static_cast<WrapT<T>>(y));
  else
    return x * y;
}

// double -> integer T rounding toward zero; NaN gives 0 and out-of-range values saturate (a plain cast is UB).
template <typename T> T intFromDouble(double v) {
  if (std::isnan(v))
    return T(0);
  if (v <= static_cast<double>(std::numeric_limits<T>::lowest()))
    return std::numeric_limits<T>::lowest();
  if (v >= std::ldexp(1.0, std::numeric_limits<T>::digits)) // max + 1, exact (max itself may round up to it)
    return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

//===-- unary --------------------------------------------------------------===//

enum class UFn {
  Neg, Abs, Exp, Log, Sqrt, Reciprocal, Erf, Tanh, Sigmoid, Relu, Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh,
  Asinh, Acosh, Atanh, Floor, Ceil, Round, Sign, Not, IsNaN, IsInf, Softplus, Softsign, LeakyRelu, Elu, Selu,
  Gelu, GeluTanh, HardSigmoid, HardSwish, Identity, Invalid
};

UFn parseUnary(std::string_view s) {
  static const std::pair<const char *, UFn> names[] = {
      {"neg", UFn::Neg}, {"abs", UFn::Abs}, {"exp", UFn::Exp}, {"log", UFn::Log}, {"sqrt", UFn::Sqrt},
      {"reciprocal", UFn::Reciprocal}, {"erf", UFn::Erf}, {"tanh", UFn::Tanh}, {"sigmoid", UFn::Sigmoid},
      {"relu", UFn::Relu}, {"sin", UFn::Sin}, {"cos", UFn::Cos}, {"tan", UFn::Tan}, {"asin", UFn::Asin},
      {"acos", UFn::Acos}, {"atan", UFn::Atan}, {"sinh", UFn::Sinh}, {"cosh", UFn::Cosh}, {"asinh", UFn::Asinh},
      {"acosh", UFn::Acosh}, {"atanh", UFn::Atanh}, {"floor", UFn::Floor}, {"ceil", UFn::Ceil},
      {"round", UFn::Round}, {"sign", UFn::Sign}, {"not", UFn::Not}, {"isnan", UFn::IsNaN}, {"isinf", UFn::IsInf},
      {"softplus", UFn::Softplus}, {"softsign", UFn::Softsign}, {"leaky_relu", UFn::LeakyRelu}, {"elu", UFn::Elu},
      {"selu", UFn::Selu}, {"gelu", UFn::Gelu}, {"gelu_tanh", UFn::GeluTanh}, {"hard_sigmoid", UFn::HardSigmoid},
      {"hard_swish", UFn::HardSwish}, {"identity", UFn::Identity}};
  for (auto &[n, f] : names)
    if (s == n)
      return f;
  return UFn::Invalid;
}

bool unaryIsPredicate(UFn f) { return f == UFn::IsNaN || f == UFn::IsInf; }
bool unaryIsFloatOnly(UFn f) {
  switch (f) {
  case UFn::Neg: case UFn::Abs: case UFn::Sign: case UFn::Relu: case UFn::Identity: case UFn::Not:
    return false;
  default:
    return true;
  }
}

template <typename T> T applyUnary(UFn f, T x, double alpha, double beta) {
  if constexpr (std::is_floating_point_v<T>) {
    const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
    switch (f) {
    case UFn::Neg: return -x;
    case UFn::Abs: return std::fabs(x);
    case UFn::Exp: return std::exp(x);
    case UFn::Log: return std::log(x);
    case UFn::Sqrt: return std::sqrt(x);
    case UFn::Reciprocal: return T(1) / x;
    case UFn::Erf: return std::erf(x);
    case UFn::Tanh: return std::tanh(x);
    case UFn::Sigmoid: return T(1) / (T(1) + std::exp(-x));
    case UFn::Relu: return x > T(0) ? x : T(0);
    case UFn::Sin: return std::sin(x);
    case UFn::Cos: return std::cos(x);
    case UFn::Tan: return std::tan(x);
    case UFn::Asin: return std::asin(x);
    case UFn::Acos: return std::acos(x);
    case UFn::Atan: return std::atan(x);
    case UFn::Sinh: return std::sinh(x);
    case UFn::Cosh: return std::cosh(x);
    case UFn::Asinh: return std::asinh(x);
    case UFn::Acosh: return std::acosh(x);
    case UFn::Atanh: return std::atanh(x);
    case UFn::Floor: return std::floor(x);
    case UFn::Ceil: return std::ceil(x);
    case UFn::Round: return std::nearbyint(x); // ties to even under the default rounding mode
    case UFn::Sign: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UFn::Softplus: return x > T(20) ? x : std::log1p(std::exp(x));
    case UFn::Softsign: return x / (T(1) + std::fabs(x));
    case UFn::LeakyRelu: return x >= T(0) ? x : a * x;
    case UFn::Elu: return x >= T(0) ? x : a * (std::exp(x) - T(1));
    case UFn::Selu: return x > T(0) ? b * x : b * (a * std::exp(x) - a);
    case UFn::Gelu: return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    case UFn::GeluTanh:
      return T(0.5) * x * (T(1) + std::tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)));
    case UFn::HardSigmoid: return std::fmax(T(0), std::fmin(T(1), a * x + b));
    case UFn::HardSwish: return x * std::fmax(T(0), std::fmin(T(1), x / T(6) + T(0.5)));
    case UFn::Identity: return x;
    default: return x;
    }
  } else {
    switch (f) {
    case UFn::Neg: return subW<T>(T(0), x); // -INT64_MIN wraps to itself
    case UFn::Abs: return x < 0 ? subW<T>(T(0), x) : x;
    case UFn::Sign: return static_cast<T>(x > 0 ? 1 : (x < 0 ? -1 : 0));
    case UFn::Relu: return x > 0 ? x : T(0);
    case UFn::Not: return static_cast<T>(!x);
    default: return x;
    }
  }
}

bool unaryInfer(const KernelArgs &a, std::string &err) {
  UFn f = parseUnary(a.attrs->getString("fn", ""));
  if (f == UFn::Invalid) {
    err = "unknown unary function '" + std::string(a.attrs->getString("fn", "")) + "'";
    return false;
  }
  const Tensor &x = *a.in(0);
  if (unaryIsFloatOnly(f) && !isFloat(x.dtype)) {
    err = "unary '" + std::string(a.attrs->getString("fn", "")) + "' needs a float operand, got " +
          dtypeName(x.dtype);
    return false;
  }
  if (f == UFn::Not && x.dtype != DType::Bool) {
    err = "unary 'not' needs a bool operand";
    return false;
  }
  a.outputs[0]->dtype = unaryIsPredicate(f) ? DType::Bool : x.dtype;
  a.outputs[0]->shape = x.shape;
  return true;
}

template <typename T> void unaryLoop(UFn f, const Tensor &x, Tensor &y, double alpha, double beta) {
  const T *in = x.as<T>();
  int64_t n = x.numel();
  if (unaryIsPredicate(f)) {
    auto *out = y.as<uint8_t>();
    for (int64_t i = 0; i < n; ++i) {
      if constexpr (std::is_floating_point_v<T>)
        out[i] = f == UFn::IsNaN ? std::isnan(in[i]) : std::isinf(in[i]);
      else
        out[i] = 0;
    }
    return;
  }
  T *out = y.as<T>();
  for (int64_t i = 0; i < n; ++i)
    out[i] = applyUnary<T>(f, in[i], alpha, beta);
}

bool unaryRun(const KernelArgs &a, std::string &err);

bool unaryRunHalf(const KernelArgs &a, std::string &err) {
  WidenedF32 x(*a.in(0));
  Tensor &y = *a.outputs[0];
  Tensor yf = y;
  std::vector<float> buf(static_cast<size_t>(y.numel()));
  yf.dtype = y.dtype == DType::Bool ? DType::Bool : DType::F32;
  yf.data = y.dtype == DType::Bool ? y.data : buf.data();
  KernelArgs inner = a;
  inner.inputs = {&x.view};
  inner.outputs = {&yf};
  if (!unaryRun(inner, err))
    return false;
  if (y.dtype != DType::Bool)
    narrowFrom(yf, y);
  return true;
}

bool unaryRun(const KernelArgs &a, std::string &err) {
  UFn f = parseUnary(a.attrs->getString("fn", ""));
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  if (isHalf(x.dtype))
    return unaryRunHalf(a, err);
  double alpha = a.attrs->getFloat("alpha", 0.01), beta = a.attrs->getFloat("beta", 0.0);
  if (f == UFn::Selu) {
    alpha = a.attrs->getFloat("alpha", 1.67326319217681884765625);
    beta = a.attrs->getFloat("gamma", 1.05070102214813232421875);
  } else if (f == UFn::Elu) {
    alpha = a.attrs->getFloat("alpha", 1.0);
  } else if (f == UFn::HardSigmoid) {
    alpha = a.attrs->getFloat("alpha", 0.2);
    beta = a.attrs->getFloat("beta", 0.5);
  }
  switch (x.dtype) {
  case DType::F32: unaryLoop<float>(f, x, y, alpha, beta); return true;
  case DType::F64: unaryLoop<double>(f, x, y, alpha, beta); return true;
  case DType::I64: unaryLoop<int64_t>(f, x, y, alpha, beta); return true;
  case DType::I32: unaryLoop<int32_t>(f, x, y, alpha, beta); return true;
  case DType::I16: unaryLoop<int16_t>(f, x, y, alpha, beta); return true;
  case DType::I8: unaryLoop<int8_t>(f, x, y, alpha, beta); return true;
  case DType::U8: case DType::Bool: unaryLoop<uint8_t>(f, x, y, alpha, beta); return true;
  default:
    err = std::string("unary: unsupported dtype ") + dtypeName(x.dtype);
    return false;
  }
}

//===-- binary -------------------------------------------------------------===//

enum class BFn {
  Add, Sub, Mul, Div, Pow, Max, Min, Mod, FMod, And, Or, Xor, Equal, Less, LessEqual, Greater, GreaterEqual,
  BitShiftLeft, BitShiftRight, Invalid
};

BFn parseBinary(std::string_view s) {
  static const std::pair<const char *, BFn> names[] = {
      {"add", BFn::Add}, {"sub", BFn::Sub}, {"mul", BFn::Mul}, {"div", BFn::Div}, {"pow", BFn::Pow},
      {"max", BFn::Max}, {"min", BFn::Min}, {"mod", BFn::Mod}, {"fmod", BFn::FMod}, {"and", BFn::And},
      {"or", BFn::Or}, {"xor", BFn::Xor}, {"equal", BFn::Equal}, {"less", BFn::Less},
      {"less_equal", BFn::LessEqual}, {"greater", BFn::Greater}, {"greater_equal", BFn::GreaterEqual},
      {"shift_left", BFn::BitShiftLeft}, {"shift_right", BFn::BitShiftRight}};
  for (auto &[n, f] : names)
    if (s == n)
      return f;
  return BFn::Invalid;
}

bool binaryIsCompare(BFn f) { return f >= BFn::Equal && f <= BFn::GreaterEqual; }
bool binaryIsLogic(BFn f) { return f == BFn::And || f == BFn::Or || f == BFn::Xor; }

template <typename T> T applyBinary(BFn f, T x, T y) {
  switch (f) {
  case BFn::Add: return addW(x, y);
  case BFn::Sub: return subW(x, y);
  case BFn::Mul: return mulW(x, y);
  case BFn::Div:
    if constexpr (std::is_signed_v<T> && std::is_integral_v<T>)
      return y == 0 ? T(0) : (y == T(-1) ? subW<T>(T(0), x) : static_cast<T>(x / y)); // INT_MIN / -1 traps
    else if constexpr (std::is_integral_v<T>)
      return y == 0 ? T(0) : static_cast<T>(x / y);
    else
      return x / y;
  case BFn::Pow:
    if constexpr (std::is_floating_point_v<T>) {
      if (y == T(2)) return x * x; // exact, and what exporters emit for RMSNorm
      return std::pow(x, y);
    } else {
      return intFromDouble<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
    }
  case BFn::Max:
    if constexpr (std::is_floating_point_v<T>)
      return (std::isnan(x) || std::isnan(y)) ? x + y : (x > y ? x : y);
    else
      return x > y ? x : y;
  case BFn::Min:
    if constexpr (std::is_floating_point_v<T>)
      return (std::isnan(x) || std::isnan(y)) ? x + y : (x < y ? x : y);
    else
      return x < y ? x : y;
  case BFn::FMod:
    if constexpr (std::is_floating_point_v<T>)
      return std::fmod(x, y);
    else // x % -1 is 0, but INT_MIN % -1 traps
      return y == 0 || (std::is_signed_v<T> && y == T(-1)) ? T(0) : static_cast<T>(x % y);
  case BFn::Mod: // result takes the divisor's sign (Python semantics)
    if constexpr (std::is_floating_point_v<T>) {
      T r = std::fmod(x, y);
      return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
    } else {
      if (y == 0 || (std::is_signed_v<T> && y == T(-1))) return T(0);
      T r = static_cast<T>(x % y);
      return (r != 0 && ((r < 0) != (y < 0))) ? static_cast<T>(r + y) : r;
    }
  case BFn::BitShiftLeft:
    if constexpr (std::is_integral_v<T>)
      return y < 0 || y >= T(sizeof(T) * 8) ? T(0) : static_cast<T>(static_cast<WrapT<T>>(x) << y); // x may be < 0
    else
      return x;
  case BFn::BitShiftRight:
    if constexpr (std::is_integral_v<T>)
      return y < 0 || y >= T(sizeof(T) * 8) ? T(0) : static_cast<T>(x >> y);
    else
      return x;
  default: return x;
  }
}

template <typename T> bool applyCompare(BFn f, T x, T y) {
  switch (f) {
  case BFn::Equal: return x == y;
  case BFn::Less: return x < y;
  case BFn::LessEqual: return x <= y;
  case BFn::Greater: return x > y;
  case BFn::GreaterEqual: return x >= y;
  case BFn::And: return x && y;
  case BFn::Or: return x || y;
  case BFn::Xor: return bool(x) != bool(y);
  default: return false;
  }
}

bool binaryInfer(const KernelArgs &a, std::string &err) {
  BFn f = parseBinary(a.attrs->getString("fn", ""));
  if (f == BFn::Invalid) {
    err = "unknown binary function '" + std::string(a.attrs->getString("fn", "")) + "'";
    return false;
  }
  const Tensor &x = *a.in(0), &y = *a.in(1);
  if (x.dtype != y.dtype) {
    err = std::string("binary operands differ in dtype: ") + dtypeName(x.dtype) + " vs " + dtypeName(y.dtype);
    return false;
  }
  if (binaryIsLogic(f) && x.dtype != DType::Bool) {
    err = "logical binary op needs bool operands";
    return false;
  }
  if (!broadcastShapes(x.shape, y.shape, a.outputs[0]->shape)) {
    err = "shapes " + shapeStr(x.shape) + " and " + shapeStr(y.shape) + " do not broadcast";
    return false;
  }
  a.outputs[0]->dtype = (binaryIsCompare(f) || binaryIsLogic(f)) ? DType::Bool : x.dtype;
  return true;
}

template <typename T> void binaryLoop(BFn f, const Tensor &x, const Tensor &y, Tensor &z) {
  if (z.numel() == 0) // broadcastRows computes input strides first, which an empty input's huge dims overflow
    return;
  const T *px = x.as<T>(), *py = y.as<T>();
  const bool toBool = binaryIsCompare(f) || binaryIsLogic(f);
  broadcastRows<2>(z.shape, {&x.shape, &y.shape},
                   [&](int64_t o, const std::array<int64_t, 2> &off, const std::array<int64_t, 2> &st, int64_t n) {
                     const T *a = px + off[0], *b = py + off[1];
                     if (toBool) {
                       uint8_t *out = z.as<uint8_t>() + o;
                       for (int64_t i = 0; i < n; ++i)
                         out[i] = applyCompare<T>(f, a[i * st[0]], b[i * st[1]]);
                       return;
                     }
                     T *out = z.as<T>() + o;
                     // The hot cases get loops the compiler vectorizes: both operands contiguous, or one
                     // of them broadcast along the row (a scalar, a bias, a scale).
                     if (st[0] == 1 && st[1] == 1) {
                       switch (f) {
                       case BFn::Add: for (int64_t i = 0; i < n; ++i) out[i] = addW(a[i], b[i]); return;
                       case BFn::Mul: for (int64_t i = 0; i < n; ++i) out[i] = mulW(a[i], b[i]); return;
                       case BFn::Sub: for (int64_t i = 0; i < n; ++i) out[i] = subW(a[i], b[i]); return;
                       default: break;
                       }
                     } else if (st[0] == 1 && st[1] == 0) {
                       const T y = b[0];
                       switch (f) {
                       case BFn::Add: for (int64_t i = 0; i < n; ++i) out[i] = addW(a[i], y); return;
                       case BFn::Mul: for (int64_t i = 0; i < n; ++i) out[i] = mulW(a[i], y); return;
                       case BFn::Sub: for (int64_t i = 0; i < n; ++i) out[i] = subW(a[i], y); return;
                       case BFn::Div: for (int64_t i = 0; i < n; ++i) out[i] = applyBinary<T>(f, a[i], y); return;
                       default: break;
                       }
                     } else if (st[0] == 0 && st[1] == 1) {
                       const T x = a[0];
                       switch (f) {
                       case BFn::Add: for (int64_t i = 0; i < n; ++i) out[i] = addW(x, b[i]); return;
                       case BFn::Mul: for (int64_t i = 0; i < n; ++i) out[i] = mulW(x, b[i]); return;
                       default: break;
                       }
                     }
                     for (int64_t i = 0; i < n; ++i)
                       out[i] = applyBinary<T>(f, a[i * st[0]], b[i * st[1]]);
                   });
}

bool binaryRun(const KernelArgs &a, std::string &err) {
  BFn f = parseBinary(a.attrs->getString("fn", ""));
  const Tensor &x = *a.in(0), &y = *a.in(1);
  Tensor &z = *a.outputs[0];
  if (isHalf(x.dtype)) {
    WidenedF32 xf(x), yf(y);
    Tensor zf = z;
    std::vector<float> buf(static_cast<size_t>(z.numel()));
    if (z.dtype != DType::Bool) {
      zf.dtype = DType::F32;
      zf.data = buf.data();
    }
    binaryLoop<float>(f, xf.view, yf.view, zf);
    if (z.dtype != DType::Bool)
      narrowFrom(zf, z);
    return true;
  }
  switch (x.dtype) {
  case DType::F32: binaryLoop<float>(f, x, y, z); return true;
  case DType::F64: binaryLoop<double>(f, x, y, z); return true;
  case DType::I64: binaryLoop<int64_t>(f, x, y, z); return true;
  case DType::I32: binaryLoop<int32_t>(f, x, y, z); return true;
  case DType::I16: binaryLoop<int16_t>(f, x, y, z); return true;
  case DType::I8: binaryLoop<int8_t>(f, x, y, z); return true;
  case DType::U8: case DType::Bool: binaryLoop<uint8_t>(f, x, y, z); return true;
  case DType::U16: binaryLoop<uint16_t>(f, x, y, z); return true;
  case DType::U32: binaryLoop<uint32_t>(f, x, y, z); return true;
  case DType::U64: binaryLoop<uint64_t>(f, x, y, z); return true;
  default:
    err = std::string("binary: unsupported dtype ") + dtypeName(x.dtype);
    return false;
  }
}

//===-- where --------------------------------------------------------------===//

bool whereInfer(const KernelArgs &a, std::string &err) {
  const Tensor &c = *a.in(0), &x = *a.in(1), &y = *a.in(2);
  if (c.dtype != DType::Bool || x.dtype != y.dtype) {
    err = "where expects a bool condition and equal value dtypes";
    return false;
  }
  Shape s;
  if (!broadcastShapes(c.shape, x.shape, s) || !broadcastShapes(s, y.shape, a.outputs[0]->shape)) {
    err = "where: shapes " + shapeStr(c.shape) + ", " + shapeStr(x.shape) + ", " + shapeStr(y.shape) +
          " do not broadcast";
    return false;
  }
  a.outputs[0]->dtype = x.dtype;
  return true;
}

bool whereRun(const KernelArgs &a, std::string &) {
  const Tensor &c = *a.in(0), &x = *a.in(1), &y = *a.in(2);
  Tensor &z = *a.outputs[0];
  if (z.numel() == 0) // see binaryLoop
    return true;
  const size_t es = dtypeSize(x.dtype);
  const auto *pc = c.as<uint8_t>();
  const auto *px = static_cast<const char *>(x.data), *py = static_cast<const char *>(y.data);
  auto *pz = static_cast<char *>(z.data);
  broadcastRows<3>(z.shape, {&c.shape, &x.shape, &y.shape},
                   [&](int64_t o, const std::array<int64_t, 3> &off, const std::array<int64_t, 3> &st, int64_t n) {
                     if (es == 4) { // float32 / int32: a typed select instead of a memcpy per element
                       const auto *x4 = reinterpret_cast<const uint32_t *>(px) + off[1];
                       const auto *y4 = reinterpret_cast<const uint32_t *>(py) + off[2];
                       const uint8_t *c = pc + off[0];
                       auto *z4 = reinterpret_cast<uint32_t *>(pz) + o;
                       for (int64_t i = 0; i < n; ++i)
                         z4[i] = c[i * st[0]] ? x4[i * st[1]] : y4[i * st[2]];
                       return;
                     }
                     for (int64_t i = 0; i < n; ++i) {
                       const char *src = pc[off[0] + i * st[0]] ? px + (off[1] + i * st[1]) * es
                                                                 : py + (off[2] + i * st[2]) * es;
                       copyBytes(pz + (o + i) * es, src, es);
                     }
                   });
  return true;
}

//===-- cast ---------------------------------------------------------------===//

bool castInfer(const KernelArgs &a, std::string &err) {
  int64_t to = a.attrs->getInt("to", 0);
  if (to < 0 || to > 255 || !isValidDType(static_cast<int>(to))) {
    err = "cast: unsupported target dtype code " + std::to_string(to);
    return false;
  }
  a.outputs[0]->dtype = static_cast<DType>(to);
  a.outputs[0]->shape = a.in(0)->shape;
  return true;
}

bool castRun(const KernelArgs &a, std::string &) {
  const Tensor &x = *a.in(0);
  Tensor &y = *a.outputs[0];
  const int64_t n = x.numel();
  if (x.dtype == y.dtype) {
    copyBytes(y.data, x.data, x.bytes());
    return true;
  }
  const bool srcFloat = isFloat(x.dtype);
  for (int64_t i = 0; i < n; ++i) {
    double d = srcFloat ? loadDouble(x, i) : 0.0;
    int64_t v = srcFloat ? 0 : loadInt(x, i);
    // float -> int truncates toward zero; out-of-range values saturate instead of being UB.
    auto toInt = [&](double lo, double hi) -> int64_t {
      if (!srcFloat) return v;
      if (std::isnan(d)) return 0;
      return static_cast<int64_t>(d < lo ? lo : (d > hi ? hi : d));
    };
    switch (y.dtype) {
    case DType::F32: y.as<float>()[i] = srcFloat ? static_cast<float>(d) : static_cast<float>(v); break;
    case DType::F64: y.as<double>()[i] = srcFloat ? d : static_cast<double>(v); break;
    case DType::F16: y.as<uint16_t>()[i] = floatToHalf(srcFloat ? static_cast<float>(d) : static_cast<float>(v)); break;
    case DType::BF16: y.as<uint16_t>()[i] = floatToBf16(srcFloat ? static_cast<float>(d) : static_cast<float>(v)); break;
    case DType::Bool: y.as<uint8_t>()[i] = srcFloat ? (d != 0.0) : (v != 0); break;
    case DType::I64: y.as<int64_t>()[i] = toInt(-9.2233720368547758e18, 9.2233720368547748e18); break;
    case DType::I32: y.as<int32_t>()[i] = static_cast<int32_t>(toInt(-2147483648.0, 2147483647.0)); break;
    case DType::I16: y.as<int16_t>()[i] = static_cast<int16_t>(toInt(-32768.0, 32767.0)); break;
    case DType::I8: y.as<int8_t>()[i] = static_cast<int8_t>(toInt(-128.0, 127.0)); break;
    case DType::U8: y.as<uint8_t>()[i] = static_cast<uint8_t>(toInt(0.0, 255.0)); break;
    case DType::U16: y.as<uint16_t>()[i] = static_cast<uint16_t>(toInt(0.0, 65535.0)); break;
    case DType::U32: y.as<uint32_t>()[i] = static_cast<uint32_t>(toInt(0.0, 4294967295.0)); break;
    case DType::U64: y.as<uint64_t>()[i] = static_cast<uint64_t>(toInt(0.0, 9.2233720368547748e18)); break;
    default: break;
    }
  }
  return true;
}

const KernelFamily kUnary{"unary", 1, 1, 1, 0, unaryInfer, unaryRun, "elementwise function named by 'fn'"};
const KernelFamily kBinary{"binary", 2, 2, 1, 0, binaryInfer, binaryRun,
                        "broadcasting arithmetic, comparison or logic named by 'fn'"};
const KernelFamily kWhere{"where", 3, 3, 1, 0, whereInfer, whereRun, "select by a bool condition, broadcasting"};
const KernelFamily kCast{"cast", 1, 1, 1, 0, castInfer, castRun, "element type conversion to 'to'"};

} // namespace

void registerElementwiseKernels(std::vector<const KernelFamily *> &out) {
  out.insert(out.end(), {&kUnary, &kBinary, &kWhere, &kCast});
}

} // namespace qopt::num
