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
#include <cstring>

namespace qrt {

using qopt::format::kNoValue;
using qopt::format::Storage;
namespace num = qopt::num;

Session::Session(const Model &model, std::unique_ptr<Backend> backend)
    : model(model), backend(std::move(backend)) {
  const char *p = std::getenv("QRT_PROFILE");
  profile = p && *p && std::string(p) != "0";
  profileShapes = profile && std::string(p) == "shapes";
  if (const char *w = std::getenv("QRT_PROFILE_WARMUP"); profile && w && *w)
    profileWarmup = std::max(0L, std::strtol(w, nullptr, 10));
  if (const char *s = std::getenv("QRT_SKIP"); s && *s) {
    std::string list(s);
    for (size_t b = 0, e; b <= list.size(); b = e + 1) {
      e = std::min(list.find(',', b), list.size());
      if (e > b)
        skip.push_back(list.substr(b, e - b));
    }
    std::fprintf(stderr, "qrt: QRT_SKIP leaves out every launch of %s: results are not the model's\n", s);
  }
}

Session::~Session() {
  if (!profile || entryCounts.empty())
    return;
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(kernelTime.begin(), kernelTime.end());
  std::sort(rows.begin(), rows.end(), [](auto &a, auto &b) { return a.second.first > b.second.first; });
  double total = 0;
  for (auto &r : rows)
    total += r.second.first;
  int64_t runs = 0, launches = 0;
  for (auto &[name, c] : entryCounts) {
    runs += c.runs;
    launches += c.launches;
  }
  std::fprintf(stderr, "qrt profile (%s backend): %.3f s in kernels, %lld runs, %lld launches (%.1f per run)%s\n",
               backend->name(), total, static_cast<long long>(runs), static_cast<long long>(launches),
               runs ? static_cast<double>(launches) / runs : 0.0,
               profileWarmup ? (", kernel times without each entry's first " + std::to_string(profileWarmup) +
                                " runs (QRT_PROFILE_WARMUP)")
                                   .c_str()
                             : "");
  for (auto &[name, c] : entryCounts)
    std::fprintf(stderr,
                 "  entry '%s': %lld runs, %lld launches (%.1f per run), %lld host instructions, %lld run on the "
                 "host for want of a device kernel, %lld uploads, %lld downloads\n",
                 name.c_str(), static_cast<long long>(c.runs), static_cast<long long>(c.launches),
                 c.runs ? static_cast<double>(c.launches) / c.runs : 0.0, static_cast<long long>(c.host),
                 static_cast<long long>(c.fallbacks), static_cast<long long>(c.uploads),
                 static_cast<long long>(c.downloads));
  for (auto &[name, t] : rows)
    std::fprintf(stderr, profileShapes ? "  %-64s %9.3f s %5.1f%% %9lld launches\n"
                                       : "  %-28s %9.3f s %5.1f%% %9lld launches\n",
                 name.c_str(), t.first,
                 total > 0 ? 100.0 * t.first / total : 0.0, static_cast<long long>(t.second));
}

uint8_t *Session::HostBuffer::reserve(size_t bytes) {
  if (data && bytes <= capacity)
    return data.get();
  // calloc: zeroed like the arena, without touching the pages of a large request; the old buffer goes first.
  data.reset();
  data.reset(static_cast<uint8_t *>(std::calloc(std::max<size_t>(bytes, 1), 1)));
  capacity = data ? bytes : 0;
  return data.get();
}

bool Session::prepare(std::string &error) {
  if (!backend->prepare(model, error))
    return false;
  bound.resize(model.entries.size());
  fallback.resize(model.entries.size());
  for (size_t e = 0; e < model.entries.size(); ++e) {
    const Entry &entry = model.entries[e];
    bound[e].assign(entry.program.size(), nullptr);
    fallback[e].assign(entry.program.size(), false);
    for (size_t pc = 0; pc < entry.program.size(); ++pc) {
      const Instr &in = entry.program[pc];
      if (in.view || in.host) // nothing launched, or the reference kernel on the host
        continue;
      std::string err;
      bound[e][pc] = backend->bind(*in.family, in.variant, err);
      if (!bound[e][pc] && backend->hostFallback()) {
        fallback[e][pc] = true; // the reference kernel on host copies of the operands (execute)
        ++fallbackCount;
        continue;
      }
      if (!bound[e][pc]) {
        error = (model.entries.size() > 1 ? "entry '" + entry.name + "', " : std::string()) + "instruction " +
                std::to_string(pc) + " (" + in.family->name + "): " + err;
        return false;
      }
    }
  }
  // Entries whose runs are all alike (static input shapes, nothing computed or run on the host, no buffer sized at
  // run time) are recorded once and replayed where the backend can (CUDA graphs); QRT_CUDA_GRAPHS=0 or profiling
  // (which times each launch) turns that off.
  const char *graphsEnv = std::getenv("QRT_CUDA_GRAPHS");
  const bool useGraphs = backend->canCapture() && !profile && !(graphsEnv && std::string(graphsEnv) == "0");
  graphable.assign(model.entries.size(), false);
  graphs.assign(model.entries.size(), nullptr);
  for (size_t e = 0; useGraphs && e < model.entries.size(); ++e) {
    const Entry &entry = model.entries[e];
    bool ok = true;
    for (uint32_t id : entry.inputs)
      for (int64_t d : model.values[id].dims)
        ok = ok && d >= 0;
    for (size_t pc = 0; ok && pc < entry.program.size(); ++pc) {
      const Instr &in = entry.program[pc];
      ok = !in.host && !fallback[e][pc];
      for (uint32_t id : in.outputs)
        ok = ok && model.values[id].storage != Storage::Dynamic;
    }
    graphable[e] = ok;
  }
  if (!hostArena.reserve(static_cast<size_t>(model.hostBytes))) {
    error = "cannot allocate the " + std::to_string(model.hostBytes) + "-byte host arena";
    return false;
  }
  const size_t n = model.values.size();
  tensors.resize(n);
  hostData.assign(n, nullptr);
  hostCopy.resize(n);
  deviceCopy.resize(n);
  downloaded.resize(n);
  downloadedIn.assign(n, 0);
  uploadedIn.assign(n, 0);
  inputData.resize(model.general().inputs.size());
  inputShape.resize(model.general().inputs.size());
  inputSet.assign(model.general().inputs.size(), false);
  for (size_t i = 0; i < n; ++i) {
    const Value &v = model.values[i];
    tensors[i].dtype = v.dtype;
    if (v.isWeight()) {
      tensors[i].shape = v.dims;
      tensors[i].data = const_cast<void *>(backend->weightAddress(model, v));
      hostData[i] = v.data; // the mapped file's (or the host's external) bytes
    } else if (v.storage == Storage::State) {
      tensors[i].shape = v.dims;
      tensors[i].data = backend->stateAddress(v.offset);
    } else if (v.storage == Storage::Host) {
      hostData[i] = hostArena.data.get() + v.offset;
    }
  }
  return true;
}

// Whether input value `v` takes `shape`: its rank, its static dims, its dynamic ones within their bounds.
static bool takesShape(const Value &v, const num::Shape &shape) {
  bool ok = shape.size() == v.dims.size();
  for (size_t d = 0; ok && d < shape.size(); ++d)
    ok = shape[d] >= 0 && (v.dims[d] < 0 ? shape[d] <= v.maxDims[d] : shape[d] == v.dims[d]);
  return ok;
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
    // Within some entry's bounds (entries may be planned for different bounds: qopt's --max-dim ENTRY:NAME=N);
    // the run checks the entry it takes (fits).
    bool ok = false;
    for (const Entry &e : model.entries)
      ok = ok || takesShape(model.values[e.inputs[j]], shape);
    if (!ok) {
      std::string expect;
      for (const Entry &e : model.entries) {
        const Value &u = model.values[e.inputs[j]];
        expect += expect.empty() ? "[" : " or [";
        for (size_t d = 0; d < u.dims.size(); ++d)
          expect += (d ? ", " : "") +
                    (u.dims[d] < 0 ? "<=" + std::to_string(u.maxDims[d]) : std::to_string(u.dims[d]));
        expect += "]";
        if (model.entries.size() > 1)
          expect += " (" + e.name + ")";
      }
      error = "input '" + name + "' has shape " + num::shapeStr(shape) + " but the model expects " + expect;
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

bool Session::isStatic(const Entry &entry) const {
  for (uint32_t id : entry.inputs)
    for (int64_t d : model.values[id].dims)
      if (d < 0)
        return false;
  return true;
}

bool Session::fits(const Entry &entry, std::string *why) const {
  for (size_t j = 0; j < entry.inputs.size(); ++j) {
    const Value &v = model.values[entry.inputs[j]];
    const num::Shape &shape = inputShape[j];
    if (!takesShape(v, shape)) {
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
  // A static entry (decode) is the general one specialized for the shapes it takes; other entries compute
  // something else (prefill_last: one row of logits) and run by name only.
  for (size_t e = 1; e < model.entries.size(); ++e)
    if (isStatic(model.entries[e]) && fits(model.entries[e], nullptr))
      return execute(model.entries[e], e, error);
  if (!fits(model.general(), &error))
    return QRT_ERROR_INVALID_ARGUMENT;
  return execute(model.general(), 0, error);
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
    return execute(e, static_cast<size_t>(&e - model.entries.data()), error);
  }
  std::string names;
  for (const Entry &e : model.entries)
    names += (names.empty() ? "" : ", ") + e.name;
  error = "the model has no entry named '" + name + "' (entries: " + names + ")";
  return QRT_ERROR_INVALID_ARGUMENT;
}

const num::Tensor *Session::hostView(uint32_t id, std::string &error) {
  num::Tensor &h = hostCopy[id];
  const num::Tensor &t = tensors[id];
  h.dtype = t.dtype;
  h.shape = t.shape;
  if (hostData[id]) {
    h.data = const_cast<void *>(hostData[id]);
    return &h;
  }
  if (downloadedIn[id] != runs) { // a device value a shape function reads: bring its bytes over (rare)
    size_t bytes = static_cast<size_t>(t.numel()) * num::dtypeSize(t.dtype);
    uint8_t *dst = downloaded[id].reserve(bytes);
    if (!dst) {
      error = "out of memory: cannot allocate " + std::to_string(bytes) + " host bytes for '" +
              model.values[id].name + "'";
      return nullptr;
    }
    if (!backend->download(dst, t.data, bytes, error))
      return nullptr;
    downloadedIn[id] = runs;
    if (counting)
      ++counting->downloads;
  }
  h.data = downloaded[id].data.get();
  return &h;
}

const num::Tensor *Session::deviceView(uint32_t id, std::string &error) {
  const Value &v = model.values[id];
  if (v.storage != Storage::Host)
    return &tensors[id];
  num::Tensor &d = deviceCopy[id];
  d.dtype = tensors[id].dtype;
  d.shape = tensors[id].shape;
  if (uploadedIn[id] != runs) { // computed on the host this run: a device kernel reads its bytes
    size_t bytes = static_cast<size_t>(num::numElements(d.shape)) * num::dtypeSize(d.dtype);
    d.data = backend->dynamicBuffer(id, bytes);
    if (!d.data) {
      error = "out of device memory: cannot allocate " + std::to_string(bytes) + " bytes for '" + v.name + "'";
      return nullptr;
    }
    if (!backend->upload(d.data, hostData[id], bytes, error))
      return nullptr;
    uploadedIn[id] = runs;
    if (counting)
      ++counting->uploads;
  }
  return &d;
}

// An instruction the backend has no kernel for: the reference kernel on host copies of its operands, then its
// results uploaded to their device places. The host copies stay valid for the rest of the run (hostView).
bool Session::runOnHost(const Instr &in, num::KernelArgs &args, std::string &error) {
  const num::KernelFamily &family = *in.family;
  for (size_t j = 0; j < in.inputs.size(); ++j)
    if (in.inputs[j] != kNoValue && !(args.inputs[j] = hostView(in.inputs[j], error)))
      return false;
  std::vector<num::Tensor *> device(args.outputs.begin(), args.outputs.end());
  for (size_t k = 0; k < in.outputs.size(); ++k) {
    uint32_t id = in.outputs[k];
    num::Tensor &h = hostCopy[id];
    h.dtype = tensors[id].dtype;
    h.shape = tensors[id].shape;
    size_t bytes = static_cast<size_t>(h.numel()) * num::dtypeSize(h.dtype);
    h.data = downloaded[id].reserve(bytes);
    if (!h.data) {
      error = "out of memory: cannot allocate " + std::to_string(bytes) + " host bytes for '" +
              model.values[id].name + "'";
      return false;
    }
    if (family.inPlace >= 0 && k == 0 && bytes) // the operand's current bytes, updated in place
      std::memcpy(h.data, args.inputs[static_cast<size_t>(family.inPlace)]->data, bytes);
    args.outputs[k] = &h;
  }
  if (!family.reference(args, error))
    return false;
  for (size_t k = 0; k < in.outputs.size(); ++k) {
    uint32_t id = in.outputs[k];
    const num::Tensor &h = hostCopy[id];
    if (!backend->upload(device[k]->data, h.data, static_cast<size_t>(h.numel()) * num::dtypeSize(h.dtype), error))
      return false;
    downloadedIn[id] = runs;
    if (counting)
      ++counting->uploads;
  }
  args.outputs.assign(device.begin(), device.end());
  return true;
}

int Session::execute(const Entry &entry, size_t entryIndex, std::string &error) {
  last = nullptr; // outputs are valid only after a complete run
  ++runs;
  counting = profile ? &entryCounts[entry.name] : nullptr;
  for (size_t j = 0; j < entry.inputs.size(); ++j) {
    uint32_t id = entry.inputs[j];
    num::Tensor &t = tensors[id];
    t.shape = inputShape[j];
    t.data = backend->arenaAddress(model.values[id].offset);
    hostData[id] = inputData[j].data();
    if (!backend->upload(t.data, inputData[j].data(), inputData[j].size(), error)) {
      error = "uploading input '" + model.values[id].name + "': " + error;
      return QRT_ERROR_EXECUTION;
    }
  }
  // A static entry on a backend that records launches: the program runs once under capture, and every later run
  // replays the recording (the same kernels on the same addresses and shapes), skipping the host's walk.
  if (graphable[entryIndex]) {
    if (!graphs[entryIndex]) {
      int code = QRT_OK;
      graphs[entryIndex] = backend->capture(
          [&](std::string &err) { return (code = runProgram(entry, entryIndex, err)) == QRT_OK; }, error);
      if (!graphs[entryIndex])
        return code != QRT_OK ? code : QRT_ERROR_EXECUTION;
    }
    if (!backend->replay(graphs[entryIndex], error))
      return QRT_ERROR_EXECUTION;
  } else if (int code = runProgram(entry, entryIndex, error)) {
    return code;
  }
  last = &entry;
  if (counting) {
    ++counting->runs;
    counting->launches += static_cast<int64_t>(entry.launches);
    counting = nullptr; // the outputs' downloads are the caller's, not the run's
  }
  return QRT_OK;
}

int Session::runProgram(const Entry &entry, size_t entryIndex, std::string &error) {
  num::KernelArgs args;
  for (size_t pc = 0; pc < entry.program.size(); ++pc) {
    const Instr &in = entry.program[pc];
    const num::KernelFamily &family = *in.family;
    auto where = [&]() {
      return (model.entries.size() > 1 ? "entry '" + entry.name + "', " : std::string()) + "instruction " +
             std::to_string(pc) + " (" + family.name + " -> " + model.values[in.outputs[0]].name + "): ";
    };
    // The operands as the shape function reads them: host bytes where it reads data (every operand of a host
    // instruction, unless its kernel reads only shapes), the device value elsewhere (only its shape is read).
    std::string err;
    args.inputs.clear();
    args.outputs.clear();
    args.attrs = &in.attrs;
    args.pool = nullptr;
    for (size_t j = 0; j < in.inputs.size(); ++j) {
      uint32_t id = in.inputs[j];
      bool readsData = in.host ? !family.readsShapesOnly : (family.shapeDataInputs >> j & 1u) != 0;
      const num::Tensor *t = id == kNoValue ? nullptr : readsData ? hostView(id, err) : &tensors[id];
      if (id != kNoValue && !t) {
        error = where() + err;
        return QRT_ERROR_EXECUTION;
      }
      args.inputs.push_back(t);
    }
    for (uint32_t id : in.outputs)
      args.outputs.push_back(&tensors[id]);
    if (!num::inferShapes(family, args, err)) {
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
        t.data = backend->stateAddress(v.offset);
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
        if (!family.isView(tensors[in.inputs[0]].shape, in.attrs) || t.dtype != v.dtype ||
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
      t.data = in.host ? const_cast<void *>(hostData[id]) : backend->arenaAddress(v.offset);
    }
    if (in.view)
      continue;
    auto t0 = profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    bool skipped = false; // QRT_SKIP
    if (in.host) { // shape arithmetic: the reference kernel on the host arena
      if (!family.reference(args, err)) {
        error = where() + err;
        return QRT_ERROR_EXECUTION;
      }
      if (counting)
        ++counting->host;
    } else if (fallback[entryIndex][pc]) {
      if (!runOnHost(in, args, err)) {
        error = where() + err;
        return QRT_ERROR_EXECUTION;
      }
      if (counting)
        ++counting->fallbacks;
    } else {
      // The kernel reads device memory: host values it takes as data are uploaded.
      for (size_t j = 0; j < in.inputs.size(); ++j) {
        uint32_t id = in.inputs[j];
        if (id == kNoValue)
          continue;
        args.inputs[j] = deviceView(id, err);
        if (!args.inputs[j]) {
          error = where() + err;
          return QRT_ERROR_EXECUTION;
        }
      }
      skipped = !skip.empty() && std::find(skip.begin(), skip.end(), family.name) != skip.end();
      if (!skipped && !backend->launch(bound[entryIndex][pc], args, err)) {
        error = where() + err;
        return QRT_ERROR_EXECUTION;
      }
    }
    if (profile && counting->runs >= profileWarmup) {
      if (!in.host && !backend->synchronize(err)) { // an asynchronous device: charge the kernel its own time
        error = where() + err;
        return QRT_ERROR_EXECUTION;
      }
      std::string key = std::string(family.name) + (in.host || fallback[entryIndex][pc] ? " (host)" : "") +
                        (skipped ? " (skipped)" : "");
      if (const qopt::num::Attr *fn = in.attrs.find("fn"))
        key += "." + fn->s;
      if (profileShapes && !in.inputs.empty() && !in.outputs.empty()) // QRT_PROFILE=shapes: a row per shape
        key += " " + (in.inputs[0] == kNoValue ? std::string("-") : num::shapeStr(tensors[in.inputs[0]].shape)) +
               " -> " + num::shapeStr(tensors[in.outputs[0]].shape);
      auto &slot = kernelTime[key];
      slot.first += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++slot.second;
    }
  }
  return QRT_OK;
}

int Session::reset(std::string &error) {
  if (!backend->resetState(error))
    return QRT_ERROR_EXECUTION;
  return QRT_OK;
}

// The value id of the last run's output `name`, or kNoValue with `error` set.
uint32_t Session::outputId(const std::string &name, std::string &error) const {
  if (!last) {
    error = "the session has not run (or its last run failed)";
    return kNoValue;
  }
  for (size_t i = 0; i < last->outputs.size(); ++i)
    if (last->outputNames[i] == name)
      return last->outputs[i];
  error = "no output named '" + name + "'";
  return kNoValue;
}

const num::Tensor *Session::output(const std::string &name, int &code, std::string &error) {
  code = QRT_ERROR_INVALID_ARGUMENT;
  const uint32_t id = outputId(name, error);
  if (id == kNoValue)
    return nullptr;
  downloadedIn[id] = 0; // state may have changed since a shape function read it this run
  const num::Tensor *t = hostView(id, error);
  if (!t)
    code = QRT_ERROR_EXECUTION;
  return t;
}

// Output `name` of the last run viewed as [rows, its last dim] with rows [first, first + count) in range: its value
// id, else kNoValue with `error` set.
uint32_t Session::outputRowsId(const std::string &name, int64_t first, int64_t count, std::string &error) const {
  const uint32_t id = outputId(name, error);
  if (id == kNoValue)
    return kNoValue;
  const num::Tensor &t = tensors[id];
  const int64_t cols = t.shape.empty() ? 1 : t.shape.back(), rows = cols ? t.numel() / cols : 0;
  if (first < 0 || count < 0 || first > rows || count > rows - first) {
    error = "rows [" + std::to_string(first) + ", " + std::to_string(first + count) + ") of output '" + name +
            "', which has " + std::to_string(rows);
    return kNoValue;
  }
  return id;
}

const num::Tensor *Session::outputRows(const std::string &name, int64_t first, int64_t count, int &code,
                                       std::string &error) {
  code = QRT_ERROR_INVALID_ARGUMENT;
  const uint32_t id = outputRowsId(name, first, count, error);
  if (id == kNoValue)
    return nullptr;
  const num::Tensor &t = tensors[id];
  const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
  const size_t rowBytes = static_cast<size_t>(cols) * num::dtypeSize(t.dtype);
  rowsView.dtype = t.dtype;
  rowsView.shape = {count, cols};
  if (hostData[id]) {
    rowsView.data = const_cast<uint8_t *>(static_cast<const uint8_t *>(hostData[id]) + first * rowBytes);
    return &rowsView;
  }
  const size_t bytes = static_cast<size_t>(count) * rowBytes;
  if (!(rowsView.data = rowsBuffer.reserve(bytes))) {
    error = "out of memory: cannot allocate " + std::to_string(bytes) + " host bytes for '" + name + "'";
    code = QRT_ERROR_OUT_OF_MEMORY;
    return nullptr;
  }
  if (!backend->download(rowsView.data, static_cast<const uint8_t *>(t.data) + first * rowBytes, bytes, error)) {
    code = QRT_ERROR_EXECUTION;
    return nullptr;
  }
  return &rowsView;
}

bool Session::argmaxRows(const std::string &name, int64_t first, int64_t count, int64_t *ids, int &code,
                         std::string &error) {
  const std::vector<double> unused(static_cast<size_t>(std::max<int64_t>(count, 0)));
  return sampleRows(name, first, count, Sampling{0.0f, 0, 1.0f}, unused.data(), ids, code, error); // the argmax
}

bool Session::sampleRows(const std::string &name, int64_t first, int64_t count, const Sampling &s,
                         const double *uniforms, int64_t *ids, int &code, std::string &error) {
  code = QRT_ERROR_INVALID_ARGUMENT;
  const uint32_t id = outputRowsId(name, first, count, error);
  if (id == kNoValue)
    return false;
  const num::Tensor &t = tensors[id];
  if (t.dtype != num::DType::F32) {
    error = "output '" + name + "' is not float32";
    return false;
  }
  const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
  if (hostData[id]) {
    const float *rows = static_cast<const float *>(hostData[id]) + first * cols;
    for (int64_t i = 0; i < count; ++i)
      ids[i] = sampleRow(rows + i * cols, cols, s, uniforms[i]);
    return true;
  }
  if (!backend->sampleRows(static_cast<const float *>(t.data) + first * cols, count, cols, s, uniforms, ids, error)) {
    code = QRT_ERROR_EXECUTION;
    return false;
  }
  return true;
}

} // namespace qrt
