//===- Kernels.cpp - the kernel table and shared shape helpers -------------===//
#include "qopt/Numerics/Kernels.h"

#include <algorithm>

namespace qopt::num {

const std::vector<const KernelFamily *> &allFamilies() {
  static const std::vector<const KernelFamily *> table = [] {
    std::vector<const KernelFamily *> t;
    registerActivationKernels(t);
    registerAttentionKernels(t);
    registerCacheKernels(t);
    registerElementwiseKernels(t);
    registerShapeKernels(t);
    registerLinalgKernels(t);
    registerReduceKernels(t);
    registerConvKernels(t);
    registerIndexKernels(t);
    registerQuantKernels(t);
    std::sort(t.begin(), t.end(), [](const KernelFamily *a, const KernelFamily *b) {
      return std::string_view(a->name) < std::string_view(b->name);
    });
    return t;
  }();
  return table;
}

const KernelFamily *lookupFamily(std::string_view name) {
  const auto &t = allFamilies();
  auto it = std::lower_bound(t.begin(), t.end(), name,
                             [](const KernelFamily *k, std::string_view n) { return std::string_view(k->name) < n; });
  return it != t.end() && (*it)->name == name ? *it : nullptr;
}

bool inferShapes(const KernelFamily &k, const KernelArgs &a, std::string &error) {
  if (!k.infer(a, error))
    return false;
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    if (!withinElementLimit(a.outputs[i]->shape)) {
      error = std::string(k.name) + ": result " + std::to_string(i) + " has shape " +
              shapeStr(a.outputs[i]->shape) + ", negative or over 2^59 elements";
      return false;
    }
  }
  return true;
}

bool evaluateSmall(const KernelFamily &k, const KernelArgs &a, int64_t maxElements, bool floats,
                   const std::vector<std::vector<uint8_t> *> &storage, bool &evaluated, std::string &error) {
  evaluated = false;
  if (k.inPlace >= 0)
    return true;
  for (const Tensor *in : a.inputs)
    if (in && !in->data && !k.readsShapesOnly)
      return true;
  for (const Tensor *out : a.outputs)
    if ((!floats && isFloat(out->dtype)) || out->numel() > maxElements)
      return true;
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    storage[i]->resize(std::max<size_t>(a.outputs[i]->bytes(), 1));
    a.outputs[i]->data = storage[i]->data();
  }
  evaluated = true;
  return k.reference(a, error);
}

bool broadcastShapes(const Shape &a, const Shape &b, Shape &out) {
  size_t r = std::max(a.size(), b.size());
  out.assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da == db || db == 1)
      out[i] = da;
    else if (da == 1)
      out[i] = db;
    else
      return false;
  }
  return true;
}

bool normalizeAxis(int64_t &axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return false;
  if (axis < 0)
    axis += rank;
  return true;
}

} // namespace qopt::num
