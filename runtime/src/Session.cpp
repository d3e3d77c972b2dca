//===- Session.cpp - the program interpreter shared by all backends --------===//
//
// Shapes are computed at run time by the kernels' shape functions, so one model.bin serves every batch size and
// sequence length up to the compiled bounds; each computed size is checked against the slot the plan reserved
// before the kernel may write it.
//
//===----------------------------------------------------------------------===//
#include "Session.h"

#include "qrt.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace qrt {

using qopt::format::kNoValue;
using qopt::format::Storage;
namespace num = qopt::num;

Session::Session(const Model &model, std::unique_ptr<Backend> backend)
    : model(model), backend(std::move(backend)) {
  const char *p = std::getenv("QRT_PROFILE");
  profile = p && *p && std::string(p) != "0";
}

Session::~Session() {
  if (!profile || kernelTime.empty())
    return;
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(kernelTime.begin(), kernelTime.end());
  std::sort(rows.begin(), rows.end(), [](auto &a, auto &b) { return a.second.first > b.second.first; });
  double total = 0;
  for (auto &r : rows)
    total += r.second.first;
  int64_t runs = 0, launches = 0;
  for (auto &[name, rl] : entryRuns) {
    runs += rl.first;
    launches += rl.second;
  }
  std::fprintf(stderr, "qrt profile (%s backend): %.3f s in kernels, %lld runs, %lld launches (%.1f per run)\n",
               backend->name(), total, static_cast<long long>(runs), static_cast<long long>(launches),
               runs ? static_cast<double>(launches) / runs : 0.0);
  for (auto &[name, rl] : entryRuns)
    std::fprintf(stderr, "  entry '%s': %lld runs, %lld launches (%.1f per run)\n", name.c_str(),
                 static_cast<long long>(rl.first), static_cast<long long>(rl.second),
                 rl.first ? static_cast<double>(rl.second) / rl.first : 0.0);
  for (auto &[name, t] : rows)
    std::fprintf(stderr, "  %-28s %9.3f s %5.1f%% %9lld launches\n", name.c_str(), t.first,
                 total > 0 ? 100.0 * t.first / total : 0.0, static_cast<long long>(t.second));
}

bool Session::prepare(std::string &error) {
  if (!backend->prepare(model, error))
    return false;
  tensors.resize(model.values.size());
  inputData.resize(model.general().inputs.size());
  inputShape.resize(model.general().inputs.size());
  inputSet.assign(model.general().inputs.size(), false);
  for (size_t i = 0; i < model.values.size(); ++i) {
    const Value &v = model.values[i];
    tensors[i].dtype = v.dtype;
    if (v.isWeight()) {
      tensors[i].shape = v.dims;
      tensors[i].data = const_cast<void *>(backend->weightData(model, v));
    } else if (v.storage == Storage::State) {
      tensors[i].shape = v.dims;
      tensors[i].data = backend->state() + v.offset;
    }
  }
  return true;
}

int Session::setInput(const std::string &name, num::DType dtype, const std::vector<int64_t> &shape,
                      const void *data, std::string &error) {
  const std::vector<uint32_t> &inputs = model.general().inputs;
  for (size_t j = 0; j < inputs.size(); ++j) {
    const Value &v = model.values[inputs[j]];
    if (v.name != name)
      continue;
    if (dtype != v.dtype) {
      error = "input '" + name + "' expects " + num::dtypeName(v.dtype) + ", got " + num::dtypeName(dtype);
      return QRT_ERROR_INVALID_ARGUMENT;
    }
    bool ok = shape.size() == v.dims.size();
    for (size_t d = 0; ok && d < shape.size(); ++d)
      ok = shape[d] >= 0 && (v.dims[d] < 0 ? shape[d] <= v.maxDims[d] : shape[d] == v.dims[d]);
    if (!ok) {
      std::string expect = "[";
      for (size_t d = 0; d < v.dims.size(); ++d)
        expect += (d ? ", " : "") +
                  (v.dims[d] < 0 ? "<=" + std::to_string(v.maxDims[d]) : std::to_string(v.dims[d]));
      error = "input '" + name + "' has shape " + num::shapeStr(shape) + " but the model expects " + expect + "]";
      return QRT_ERROR_INVALID_ARGUMENT;
    }
    inputShape[j] = shape;
    const size_t bytes = static_cast<size_t>(num::numElements(shape)) * num::dtypeSize(dtype);
    inputData[j].assign(static_cast<const uint8_t *>(data), static_cast<const uint8_t *>(data) + bytes);
    inputSet[j] = true;
    return QRT_OK;
  }
  std::string names;
  for (uint32_t id : inputs)
    names += (names.empty() ? "" : ", ") + model.values[id].name;
  error = "the model has no input named '" + name + "' (inputs: " + names + ")";
  return QRT_ERROR_INVALID_ARGUMENT;
}

bool Session::fits(const Entry &entry, std::string *why) const {
  for (size_t j = 0; j < entry.inputs.size(); ++j) {
    const Value &v = model.values[entry.inputs[j]];
    const num::Shape &shape = inputShape[j];
    bool ok = shape.size() == v.dims.size();
    for (size_t d = 0; ok && d < shape.size(); ++d)
      ok = v.dims[d] < 0 ? shape[d] <= v.maxDims[d] : shape[d] == v.dims[d];
    if (!ok) {
      if (why)
        *why = "input '" + v.name + "' has shape " + num::shapeStr(shape) + ", which entry '" + entry.name +
               "' does not take";
      return false;
    }
  }
  return true;
}

int Session::run(std::string &error) {
  for (size_t j = 0; j < inputSet.size(); ++j)
    if (!inputSet[j]) {
      error = "input '" + model.values[model.general().inputs[j]].name + "' was not set";
      return QRT_ERROR_INVALID_ARGUMENT;
    }
  for (size_t e = 1; e < model.entries.size(); ++e)
    if (fits(model.entries[e], nullptr))
      return execute(model.entries[e], error);
  return execute(model.general(), error);
}

int Session::runEntry(const std::string &name, std::string &error) {
  for (const Entry &e : model.entries) {
    if (e.name != name)
      continue;
    for (size_t j = 0; j < inputSet.size(); ++j)
      if (!inputSet[j]) {
        error = "input '" + model.values[model.general().inputs[j]].name + "' was not set";
        return QRT_ERROR_INVALID_ARGUMENT;
      }
    if (!fits(e, &error))
      return QRT_ERROR_INVALID_ARGUMENT;
    return execute(e, error);
  }
  std::string names;
  for (const Entry &e : model.entries)
    names += (names.empty() ? "" : ", ") + e.name;
  error = "the model has no entry named '" + name + "' (entries: " + names + ")";
  return QRT_ERROR_INVALID_ARGUMENT;
}

int Session::execute(const Entry &entry, std::string &error) {
  last = nullptr; // outputs are valid only after a complete run
  for (size_t j = 0; j < entry.inputs.size(); ++j) {
    num::Tensor &t = tensors[entry.inputs[j]];
    t.shape = inputShape[j];
    t.data = inputData[j].data();
  }
  uint8_t *arena = backend->arena();
  num::KernelArgs args;
  for (size_t pc = 0; pc < entry.program.size(); ++pc) {
    const Instr &in = entry.program[pc];
    args.inputs.clear();
    args.outputs.clear();
    args.attrs = &in.attrs;
    for (uint32_t id : in.inputs)
      args.inputs.push_back(id == kNoValue ? nullptr : &tensors[id]);
    for (uint32_t id : in.outputs)
      args.outputs.push_back(&tensors[id]);
    auto where = [&]() {
      return (model.entries.size() > 1 ? "entry '" + entry.name + "', " : std::string()) + "instruction " +
             std::to_string(pc) + " (" + in.kernel->name + " -> " + model.values[in.outputs[0]].name + "): ";
    };
    std::string err;
    if (!num::inferShapes(*in.kernel, args, err)) {
      error = where() + err;
      return QRT_ERROR_EXECUTION;
    }
    for (uint32_t id : in.outputs) {
      num::Tensor &t = tensors[id];
      const Value &v = model.values[id];
      if (v.storage == Storage::State) { // an in-place update: the state's own memory (the loader checked)
        if (t.shape != v.dims || t.dtype != v.dtype) {
          error = where() + "result " + num::dtypeName(t.dtype) + num::shapeStr(t.shape) +
                  " is not the shape of state '" + v.name + "'";
          return QRT_ERROR_EXECUTION;
        }
        t.data = backend->state() + v.offset;
        continue;
      }
      int64_t n = t.numel();
      if (v.storage == Storage::Dynamic && n >= 0 && t.dtype == v.dtype) {
        uint64_t bytes = static_cast<uint64_t>(n) * num::dtypeSize(t.dtype); // n <= 2^59: no overflow
        t.data = backend->dynamicBuffer(id, static_cast<size_t>(bytes));
        if (!t.data) {
          error = where() + "out of memory: cannot allocate " + std::to_string(bytes) + " bytes for '" + v.name +
                  "' (" + num::dtypeName(t.dtype) + num::shapeStr(t.shape) + ", a size computed at run time)";
          return QRT_ERROR_OUT_OF_MEMORY;
        }
        continue;
      }
      if (in.view) { // the input's bytes, unchanged: check that this shape makes the kernel a view indeed
        if (!in.kernel->isView(tensors[in.inputs[0]].shape, in.attrs) || t.dtype != v.dtype ||
            num::numElements(t.shape) != tensors[in.inputs[0]].numel()) {
          error = where() + "planned as a view of its input, but " + num::shapeStr(tensors[in.inputs[0]].shape) +
                  " -> " + num::shapeStr(t.shape) + " moves data";
          return QRT_ERROR_EXECUTION;
        }
        t.data = tensors[in.inputs[0]].data;
        continue;
      }
      if (n < 0 || static_cast<uint64_t>(n) * num::dtypeSize(t.dtype) > v.maxBytes || t.dtype != v.dtype) {
        error = where() + "result " + num::dtypeName(t.dtype) + num::shapeStr(t.shape) +
                " exceeds the compiled bound for '" + v.name + "' (" + std::to_string(v.maxBytes) +
                " bytes); recompile with larger --max-dim values";
        return QRT_ERROR_EXECUTION;
      }
      t.data = arena + v.offset;
    }
    if (in.view)
      continue;
    auto t0 = profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    if (!backend->launch(in, args, err)) {
      error = where() + err;
      return QRT_ERROR_EXECUTION;
    }
    if (profile) {
      std::string key = in.kernel->name;
      if (const qopt::num::Attr *fn = in.attrs.find("fn"))
        key += "." + fn->s;
      auto &slot = kernelTime[key];
      slot.first += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++slot.second;
    }
  }
  last = &entry;
  if (profile) {
    auto &rl = entryRuns[entry.name];
    ++rl.first;
    rl.second += static_cast<int64_t>(entry.launches);
  }
  return QRT_OK;
}

void Session::reset() { backend->resetState(); }

const num::Tensor *Session::output(const std::string &name) const {
  if (!last)
    return nullptr;
  for (size_t i = 0; i < last->outputs.size(); ++i)
    if (last->outputNames[i] == name)
      return &tensors[last->outputs[i]];
  return nullptr;
}

} // namespace qrt
