//===- ModelRunner.cpp - running the model being compiled through the runtime ===//
#include "passes/ModelRunner.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Passes.h"

#include "Npy.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

using namespace mlir;

namespace qopt {
namespace {

// Hands the runtime the weights the model.bin lists as external.
const void *resolveExternal(void *user, uint64_t index, const char *, qrt_dtype, uint64_t bytes) {
  const auto *ext = static_cast<const ExternalWeights *>(user);
  if (index >= ext->entries.size() || ext->entries[index].bytes != bytes)
    return nullptr;
  return ext->entries[index].data;
}

bool failed(qrt_status st, std::string &error) {
  if (!st)
    return false;
  error = qrt_status_message(st);
  qrt_status_free(st);
  return true;
}

} // namespace

bool ModelRunner::open(ModuleOp copy, int64_t L, std::string &error,
                       const std::function<const void *(const std::string &, const void *, uint64_t)> &redirect) {
  close();
  func::FuncOp cf = *copy.getOps<func::FuncOp>().begin();
  CompileOptions copts;
  llvm::StringSet<> named;
  for (unsigned i = 0; i < cf.getNumArguments(); ++i)
    if (auto names = cf.getArgAttrOfType<ArrayAttr>(i, "nn.dims"))
      for (Attribute a : names) {
        StringRef n = cast<StringAttr>(a).getValue();
        if (n.empty() || !named.insert(n).second)
          continue;
        copts.maxDims.push_back(n.str() + "=" + std::to_string(n.starts_with("batch") ? 1 : L));
      }
  PassManager pm(copy.getContext());
  // Raised graphs keep their KV cache in session state, as the compiled model will: nothing is copied per window.
  bool raised = false;
  cf.walk([&](nn::AttentionOp) { raised = true; });
  if (raised) {
    KvStatePassOptions kv;
    kv.maxDims.assign(copts.maxDims.begin(), copts.maxDims.end());
    pm.addNestedPass<func::FuncOp>(createKvStatePass(kv));
  }
  pm.addNestedPass<func::FuncOp>(createLowerToKernPass());
  PlanMemoryPassOptions plan;
  plan.maxDims.assign(copts.maxDims.begin(), copts.maxDims.end());
  pm.addNestedPass<func::FuncOp>(createPlanMemoryPass(plan));
  if (mlir::failed(pm.run(copy))) {
    error = "cannot compile the model for the runtime";
    return false;
  }
  llvm::SmallString<128> bin;
  if (llvm::sys::fs::createTemporaryFile("qopt-run", "bin", bin)) {
    error = "cannot create a temporary file";
    return false;
  }
  struct Remove {
    std::string p;
    ~Remove() { std::remove(p.c_str()); }
  } remove{std::string(bin)};
  external = ExternalWeights();
  ModelWriteOptions wopts;
  wopts.external = &external;
  if (mlir::failed(writeModelBin(cf, std::string(bin), wopts))) {
    error = "cannot write the model for the runtime";
    return false;
  }
  if (redirect)
    for (ExternalWeights::Entry &e : external.entries)
      if (const void *p = redirect(e.name, e.data, e.bytes))
        e.data = p;
  qrt_model_options mopts{resolveExternal, &external};
  if (failed(qrt_model_load_with_options(bin.c_str(), &mopts, &model), error) ||
      failed(qrt_session_create(model, nullptr, &session), error))
    return false;
  return lm.init(model, session, error);
}

void ModelRunner::close() {
  if (session)
    qrt_session_free(session);
  if (model)
    qrt_model_free(model);
  session = nullptr;
  model = nullptr;
}

void pickWindows(std::vector<std::vector<int32_t>> &windows, uint64_t seed, int64_t count) {
  std::mt19937_64 rng(seed);
  for (size_t i = windows.size(); i > 1; --i)
    std::swap(windows[i - 1], windows[rng() % i]);
  if (static_cast<int64_t>(windows.size()) > count)
    windows.resize(static_cast<size_t>(count));
}

int32_t logitsVocab(func::FuncOp func) {
  auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
  for (unsigned i = 0; i < func.getNumResults(); ++i) {
    auto name = func.getResultAttrOfType<StringAttr>(i, "nn.name");
    auto t = dyn_cast<RankedTensorType>(ret.getOperand(i).getType());
    if (name && name.getValue() == "logits" && t && t.getRank() > 0 && !t.isDynamicDim(t.getRank() - 1))
      return static_cast<int32_t>(t.getShape().back());
  }
  return 0;
}

bool loadTokenWindows(const std::string &calib, const std::string &tokenizer, int32_t vocab, int64_t L,
                      std::vector<std::vector<int32_t>> &windows, std::string &error) {
  auto cut = [&](const std::vector<int32_t> &stream) {
    for (size_t at = 0; at < stream.size(); at += L) {
      size_t end = std::min(stream.size(), at + static_cast<size_t>(L));
      if (end - at >= 2)
        windows.emplace_back(stream.begin() + at, stream.begin() + end);
    }
  };
  if (StringRef(calib).ends_with(".npy")) {
    qrt::NpyArray arr;
    if (!qrt::readNpy(calib, arr, error))
      return false;
    if (arr.dtype != "int32" || arr.shape.empty() || arr.shape.size() > 2) {
      error = "'" + calib + "': expected a 1-D or 2-D int32 array of token ids";
      return false;
    }
    const auto *ids = reinterpret_cast<const int32_t *>(arr.data.data());
    if (arr.shape.size() == 1) {
      cut(std::vector<int32_t>(ids, ids + arr.shape[0]));
      return true;
    }
    for (int64_t r = 0; r < arr.shape[0]; ++r) {
      std::vector<int32_t> row;
      for (int64_t c = 0; c < arr.shape[1] && ids[r * arr.shape[1] + c] >= 0; ++c)
        row.push_back(ids[r * arr.shape[1] + c]);
      if (static_cast<int64_t>(row.size()) > L)
        row.resize(static_cast<size_t>(L));
      if (row.size() >= 2)
        windows.push_back(row);
    }
    return true;
  }
  if (tokenizer.empty()) {
    error = "text calibration data needs a tokenizer (--tokenizer)";
    return false;
  }
  std::ifstream in(calib, std::ios::binary);
  if (!in) {
    error = "cannot open '" + calib + "'";
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  qrt_tokenizer *tok = nullptr;
  if (failed(qrt_tokenizer_load(tokenizer.c_str(), vocab, &tok), error))
    return false;
  size_t count = 0;
  qrt_status_free(qrt_tokenizer_encode(tok, text.c_str(), 1, 0, nullptr, 0, &count));
  std::vector<int32_t> ids(count);
  qrt_status_free(qrt_tokenizer_encode(tok, text.c_str(), 1, 0, ids.data(), count, &count));
  qrt_tokenizer_free(tok);
  cut(ids);
  return true;
}

bool calibrationLength(ModuleOp module, int64_t seqLen, int64_t &L, std::string &error) {
  ContextBound bound = inferContextBound(module);
  if (seqLen > bound.value) {
    error = "calib-seq-len " + std::to_string(seqLen) + " exceeds the model's context bound of " +
            std::to_string(bound.value) + " tokens (" + bound.source + ")";
    return false;
  }
  L = seqLen > 0 ? seqLen : std::min<int64_t>(512, bound.value);
  return true;
}

bool calibrationWindows(ModuleOp module, const std::string &calib, const std::string &tokenizer, int64_t samples,
                        int64_t L, uint64_t seed, std::vector<std::vector<int32_t>> &windows, std::string &error) {
  if (calib.empty()) {
    error = "no calibration data (pass --calib FILE)";
    return false;
  }
  windows.clear();
  if (!loadTokenWindows(calib, tokenizer, logitsVocab(*module.getOps<func::FuncOp>().begin()), L, windows, error))
    return false;
  if (windows.empty()) {
    error = "'" + calib + "' has no window of at least 2 tokens";
    return false;
  }
  pickWindows(windows, seed, samples);
  return true;
}

OwningOpRef<ModuleOp> cloneWithOutputs(ModuleOp module, ArrayRef<Value> values, StringRef prefix) {
  MLIRContext *ctx = module.getContext();
  IRMapping map;
  OwningOpRef<ModuleOp> copy = cast<ModuleOp>(module->clone(map));
  func::FuncOp cf = *copy->getOps<func::FuncOp>().begin();
  auto ret = cast<func::ReturnOp>(cf.getBody().back().getTerminator());
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned i = 0; i < cf.getNumResults(); ++i) {
    auto name = cf.getResultAttrOfType<StringAttr>(i, "nn.name");
    if (name && name.getValue() == "logits")
      continue;
    results.push_back(ret.getOperand(i));
    resultAttrs.push_back(cf.getResultAttrDict(i) ? cf.getResultAttrDict(i) : DictionaryAttr::get(ctx));
  }
  Builder b(ctx);
  for (auto [i, v] : llvm::enumerate(values)) {
    results.push_back(map.lookup(v));
    resultAttrs.push_back(b.getDictionaryAttr(
        {b.getNamedAttr("nn.name", b.getStringAttr(prefix.str() + std::to_string(i)))}));
  }
  ret->setOperands(results);
  cf.setFunctionType(FunctionType::get(ctx, cf.getArgumentTypes(), ValueRange(results).getTypes()));
  cf.setAllResultAttrs(resultAttrs);
  // Ops whose results nobody reads now (the logits' projection), last first.
  SmallVector<Operation *> ops;
  for (Operation &op : cf.getBody().front())
    ops.push_back(&op);
  for (Operation *op : llvm::reverse(ops))
    if (isOpTriviallyDead(op))
      op->erase();
  return copy;
}

} // namespace qopt
