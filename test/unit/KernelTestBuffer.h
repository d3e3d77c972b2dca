//===- KernelTestBuffer.h - tensors that own their bytes, and a family's run ===//
//
// The kernel unit tests' operands: a Tensor over storage it owns (8-byte aligned, copies own their bytes), and
// one run of a kernel family's reference code with its shape function first.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_TEST_UNIT_KERNELTESTBUFFER_H
#define QOPT_TEST_UNIT_KERNELTESTBUFFER_H

#include "qopt/Numerics/Kernels.h"
#include "qopt/Numerics/Tensor.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace qopt::test {

struct Buffer {
  num::Tensor t;
  std::vector<double> store; // 8-byte slots, one spare: any dtype's data, aligned for float64

  Buffer(num::DType dt, num::Shape shape) {
    t.dtype = dt;
    t.shape = std::move(shape);
    store.assign(static_cast<size_t>(t.bytes() + 7) / 8 + 1, 0.0);
    t.data = store.data();
  }
  Buffer(const Buffer &o) : t(o.t), store(o.store) { t.data = store.data(); }
  Buffer &operator=(const Buffer &o) {
    t = o.t;
    store = o.store;
    t.data = store.data();
    return *this;
  }
  bool operator==(const Buffer &o) const {
    return t.dtype == o.t.dtype && t.shape == o.t.shape && std::memcmp(t.data, o.t.data, t.bytes()) == 0;
  }
  // Element i of a float32 or float64 buffer.
  double get(int64_t i) const { return t.dtype == num::DType::F32 ? t.as<float>()[i] : t.as<double>()[i]; }
  void set(int64_t i, double v) {
    if (t.dtype == num::DType::F32)
      t.as<float>()[i] = static_cast<float>(v);
    else
      t.as<double>()[i] = v;
  }
};

// Runs family `name` on `ins` with `attrs`: its output as its shape function infers it, or an empty buffer and the
// error in `error` (failing the test when `error` is null).
inline Buffer run(const char *name, std::vector<const num::Tensor *> ins, const num::Attrs &attrs,
                  std::string *error = nullptr) {
  const num::KernelFamily *k = num::lookupFamily(name);
  EXPECT_NE(k, nullptr) << name;
  num::Tensor out;
  num::KernelArgs args;
  args.inputs = std::move(ins);
  args.outputs = {&out};
  args.attrs = &attrs;
  std::string err;
  if (!num::inferShapes(*k, args, err)) {
    if (error)
      *error = err;
    else
      ADD_FAILURE() << err;
    return Buffer(num::DType::F32, {0});
  }
  Buffer b(out.dtype, out.shape);
  args.outputs = {&b.t};
  if (!k->reference(args, err)) {
    if (error)
      *error = err;
    else
      ADD_FAILURE() << err;
  }
  return b;
}

} // namespace qopt::test

#endif // QOPT_TEST_UNIT_KERNELTESTBUFFER_H
