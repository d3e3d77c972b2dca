//===- qopt-onnx-test.cpp - run ONNX backend conformance tests -------------===//
//
//   qopt-onnx-test DIR...
//
// Finds every ONNX backend test (a folder with model.onnx and test_data_set_*/input_*.pb, output_*.pb) under the
// given folders, imports and compiles it, runs it on the CPU backend through the runtime's C API and compares
// each output with the expected one (|got - want| <= atol + rtol * |want|, rtol 1e-3, atol 1e-5; NaN matches NaN).
// Prints a line per failure or skip with its reason, then `N passed, N failed, N skipped`. A model the compiler
// rejects (unsupported op, dtype, data-dependent shape) is a skip; a wrong number or a runtime error is a failure.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Import/OnnxImporter.h"
#include "qopt/Passes.h"
#include "qopt/Serialize/ModelWriter.h"
#include "qrt.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <unistd.h>

using namespace mlir;

namespace {

struct Tensor {
  qopt::num::Tensor view;
  std::vector<uint8_t> storage;
  ElementsAttr attr; // keeps resource blobs alive
};

bool readTensor(MLIRContext &ctx, const std::string &path, Tensor &t) {
  auto attr = qopt::importOnnxTensorFile(&ctx, path);
  if (failed(attr))
    return false;
  t.attr = *attr;
  return qopt::nn::readConstant(*attr, t.view, t.storage);
}

std::vector<std::string> sortedFiles(const std::string &dir, llvm::StringRef prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (name.starts_with(prefix))
      out.push_back(it->path());
  }
  // input_10 after input_9.
  std::sort(out.begin(), out.end(), [](const std::string &a, const std::string &b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return out;
}

enum class Outcome { Pass, Fail, Skip };

Outcome runTest(const std::string &dir, std::string &reason) {
  MLIRContext ctx;
  DialectRegistry registry;
  qopt::registerAllDialects(registry);
  ctx.appendDialectRegistry(registry);
  ctx.loadAllAvailableDialects();
  ctx.disableMultithreading();
  std::string diags;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
    if (diags.empty())
      diags = d.str();
    return success();
  });
  auto sets = sortedFiles(dir, "test_data_set_");
  if (sets.empty()) {
    reason = "no test_data_set_*";
    return Outcome::Skip;
  }
  auto module = qopt::importOnnxModel(&ctx, dir + "/model.onnx");
  if (!module) {
    reason = diags;
    return Outcome::Skip;
  }
  auto func = *module->getOps<func::FuncOp>().begin();
  // Dynamic dims are bounded by the first data set's input shapes.
  std::vector<std::vector<Tensor>> inputs(sets.size()), outputs(sets.size());
  for (size_t s = 0; s < sets.size(); ++s) {
    for (const auto &f : sortedFiles(sets[s], "input_")) {
      inputs[s].emplace_back();
      if (!readTensor(ctx, f, inputs[s].back())) {
        reason = "cannot read " + f + ": " + diags;
        return Outcome::Skip;
      }
    }
    for (const auto &f : sortedFiles(sets[s], "output_")) {
      outputs[s].emplace_back();
      if (!readTensor(ctx, f, outputs[s].back())) {
        reason = "cannot read " + f + ": " + diags;
        return Outcome::Skip;
      }
    }
  }
  if (inputs[0].size() != func.getNumArguments()) {
    reason = "data set has " + std::to_string(inputs[0].size()) + " inputs, model " +
             std::to_string(func.getNumArguments());
    return Outcome::Skip;
  }
  qopt::CompileOptions opts;
  opts.widenHalf = false; // the graph as written: its float16 results are compared as float16
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    auto names = func.getArgAttrOfType<ArrayAttr>(i, "nn.dims");
    if (!names)
      continue;
    for (size_t d = 0; d < names.size() && d < inputs[0][i].view.shape.size(); ++d) {
      llvm::StringRef n = cast<StringAttr>(names[d]).getValue();
      if (!n.empty()) {
        int64_t mx = 0;
        for (auto &set : inputs)
          if (i < set.size() && d < set[i].view.shape.size())
            mx = std::max(mx, set[i].view.shape[d]);
        opts.maxDims.push_back(n.str() + "=" + std::to_string(std::max<int64_t>(mx, 1)));
      }
    }
  }
  PassManager pm(&ctx);
  qopt::buildCompilePipeline(pm, opts);
  if (failed(pm.run(*module))) {
    reason = diags;
    return Outcome::Skip;
  }
  llvm::SmallString<128> bin;
  llvm::sys::fs::createTemporaryFile("qopt-onnx-test", "bin", bin);
  struct Remove {
    std::string p;
    ~Remove() { std::remove(p.c_str()); }
  } remove{std::string(bin)};
  if (failed(qopt::writeModelBin(func, std::string(bin), {}))) {
    reason = "write: " + diags;
    return Outcome::Fail;
  }
  qrt_model *model = nullptr;
  qrt_session *session = nullptr;
  auto fail = [&](qrt_status st) {
    reason = qrt_status_message(st);
    qrt_status_free(st);
    if (session)
      qrt_session_free(session);
    if (model)
      qrt_model_free(model);
    return Outcome::Fail;
  };
  if (qrt_status st = qrt_model_load(bin.c_str(), &model))
    return fail(st);
  if (qrt_status st = qrt_session_create(model, nullptr, &session))
    return fail(st);
  for (size_t s = 0; s < sets.size(); ++s) {
    for (size_t i = 0; i < inputs[s].size(); ++i) {
      auto &t = inputs[s][i].view;
      // ONNX's test data stores bfloat16 tensors as uint16 bit patterns.
      qrt_tensor info;
      qrt_model_input_info(model, static_cast<int32_t>(i), &info);
      if (info.dtype == QRT_BFLOAT16 && t.dtype == qopt::num::DType::U16)
        t.dtype = qopt::num::DType::BF16;
      if (qrt_status st = qrt_session_set_input(session, qrt_model_input_name(model, static_cast<int32_t>(i)),
                                                static_cast<qrt_dtype>(t.dtype), t.shape.data(),
                                                static_cast<int32_t>(t.shape.size()), t.data))
        return fail(st);
    }
    if (qrt_status st = qrt_session_run(session))
      return fail(st);
    if (outputs[s].size() != static_cast<size_t>(qrt_model_num_outputs(model))) {
      reason = "expected " + std::to_string(outputs[s].size()) + " outputs";
      qrt_session_free(session);
      qrt_model_free(model);
      return Outcome::Fail;
    }
    for (size_t o = 0; o < outputs[s].size(); ++o) {
      qrt_tensor got;
      const char *name = qrt_model_output_name(model, static_cast<int32_t>(o));
      if (qrt_status st = qrt_session_get_output(session, name, &got))
        return fail(st);
      auto &want = outputs[s][o].view;
      if (got.dtype == QRT_BFLOAT16 && want.dtype == qopt::num::DType::U16)
        want.dtype = qopt::num::DType::BF16;
      std::vector<int64_t> gotShape(got.shape, got.shape + got.rank);
      std::string mismatch;
      if (static_cast<qopt::num::DType>(got.dtype) != want.dtype)
        mismatch = std::string("dtype ") + qrt_dtype_name(got.dtype) + " vs " + qopt::num::dtypeName(want.dtype);
      else if (gotShape != want.shape)
        mismatch = "shape " + qopt::num::shapeStr(gotShape) + " vs " + qopt::num::shapeStr(want.shape);
      else {
        qopt::num::Tensor g = want;
        g.data = const_cast<void *>(got.data);
        for (int64_t k = 0; k < want.numel() && mismatch.empty(); ++k) {
          double a = qopt::num::loadDouble(g, k), b = qopt::num::loadDouble(want, k);
          bool ok = (std::isnan(a) && std::isnan(b)) || a == b || std::fabs(a - b) <= 1e-5 + 1e-3 * std::fabs(b);
          if (!ok)
            mismatch = "element " + std::to_string(k) + ": " + std::to_string(a) + " vs " + std::to_string(b);
        }
      }
      if (!mismatch.empty()) {
        reason = "output '" + std::string(name) + "' (data set " + std::to_string(s) + "): " + mismatch;
        qrt_session_free(session);
        qrt_model_free(model);
        return Outcome::Fail;
      }
    }
  }
  qrt_session_free(session);
  qrt_model_free(model);
  return Outcome::Pass;
}

void collect(const std::string &dir, std::vector<std::string> &tests) {
  if (llvm::sys::fs::exists(dir + "/model.onnx")) {
    tests.push_back(dir);
    return;
  }
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec))
    if (llvm::sys::fs::is_directory(it->path()))
      collect(it->path(), tests);
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    llvm::errs() << "usage: qopt-onnx-test DIR...\n";
    return 2;
  }
  std::vector<std::string> tests;
  for (int i = 1; i < argc; ++i) {
    if (!llvm::sys::fs::is_directory(argv[i])) {
      llvm::errs() << "qopt-onnx-test: error: " << argv[i] << " is not a directory\n";
      return 2;
    }
    collect(argv[i], tests);
  }
  std::sort(tests.begin(), tests.end());
  int passed = 0, failed = 0, skipped = 0;
  for (const std::string &t : tests) {
    std::string reason;
    Outcome o = runTest(t, reason);
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    if (o == Outcome::Pass) {
      ++passed;
    } else if (o == Outcome::Fail) {
      ++failed;
      llvm::outs() << "FAIL " << t << ": " << reason << "\n";
    } else {
      ++skipped;
      llvm::outs() << "SKIP " << t << ": " << reason << "\n";
    }
    llvm::outs().flush();
  }
  llvm::outs() << passed << " passed, " << failed << " failed, " << skipped << " skipped\n";
  return failed ? 1 : 0;
}
