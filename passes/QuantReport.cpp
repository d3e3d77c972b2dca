//===- QuantReport.cpp - what weight quantization did, layer by layer -----===//
#include "qopt/QuantReport.h"

#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "passes/LinearLayers.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mlir;

namespace qopt {
namespace {

uint64_t tensorBytes(Type type) {
  auto t = dyn_cast<RankedTensorType>(type);
  if (!t || !t.hasStaticShape())
    return 0;
  return static_cast<uint64_t>(t.getNumElements()) * std::max<uint64_t>(1, t.getElementTypeBitWidth() / 8);
}

std::string nodeName(Operation *op) {
  if (auto nl = dyn_cast<NameLoc>(op->getLoc()))
    return nl.getName().str();
  return "";
}

std::string weightName(Value weight) {
  if (auto c = weight.getDefiningOp<nn::ConstantOp>())
    if (c.getName()) {
      StringRef n = *c.getName();
      n.consume_back(".q");
      return n.str();
    }
  return "";
}

} // namespace

// qopt-assign-precision's record on a layer, if any.
void readPrecision(Operation *op, LayerReport &r) {
  auto d = op->getAttrOfType<DictionaryAttr>("qopt.precision");
  if (!d)
    return;
  if (auto c = d.getAs<StringAttr>("choice"))
    r.choice = c.str();
  if (auto g = d.getAs<IntegerAttr>("group"))
    r.choiceGroup = g.getInt();
  if (auto b = d.getAs<FloatAttr>("budget"))
    r.budget = b.getValueAsDouble();
  if (auto cands = d.getAs<ArrayAttr>("candidates"))
    for (Attribute a : cands)
      if (auto c = dyn_cast<DictionaryAttr>(a)) {
        LayerReport::Candidate x;
        if (auto f = c.getAs<StringAttr>("format"))
          x.format = f.str();
        if (auto g = c.getAs<IntegerAttr>("group"))
          x.group = g.getInt();
        if (auto b = c.getAs<FloatAttr>("bits"))
          x.bits = b.getValueAsDouble();
        if (auto k = c.getAs<FloatAttr>("kl"))
          x.kl = k.getValueAsDouble();
        if (auto m = c.getAs<BoolAttr>("measured"))
          x.measured = m.getValue();
        r.candidates.push_back(x);
      }
}

std::vector<LayerReport> collectLayerReports(ModuleOp module) {
  std::vector<LayerReport> out;
  module.walk([&](Operation *op) {
    if (auto lin = dyn_cast<qnt::LinearOp>(op)) {
      LayerReport r;
      r.name = weightName(lin.getWeight());
      r.node = nodeName(op);
      auto st = cast<RankedTensorType>(lin.getScales().getType());
      auto yt = cast<RankedTensorType>(lin.getY().getType());
      r.outputs = yt.getShape().back();
      r.groupSize = lin.getGroupSize();
      r.inputs = cast<RankedTensorType>(lin.getX().getType()).getShape().back();
      r.granularity = st.getShape() == ArrayRef<int64_t>{1, 1} && r.outputs > 1 ? "tensor"
                      : r.groupSize == r.inputs                                  ? "channel"
                                                                                 : "group";
      r.bits = lin.getBits();
      Type we = cast<RankedTensorType>(lin.getWeight().getType()).getElementType();
      r.format = isa<Float8E4M3FNType>(we) ? "fp8e4m3"
                 : isa<Float8E5M2Type>(we)  ? "fp8e5m2"
                                            : "int" + std::to_string(r.bits);
      if (int64_t act = lin.getActFp8() ? lin.getActFp8() : lin.getActInt8()) // W8A8: the activations' scales too
        r.format += act == 1 ? " x-static" : " x-dynamic";
      r.symmetric = lin.getSymmetric() != 0 || r.bits == 8;
      r.scales = st.getElementType().isF16() ? "f16" : "f32";
      r.floatBytes = static_cast<uint64_t>(r.inputs * r.outputs) * 4;
      r.bytes = tensorBytes(lin.getWeight().getType()) + tensorBytes(lin.getScales().getType()) +
                tensorBytes(lin.getZeros().getType());
      if (auto info = op->getAttrOfType<DictionaryAttr>("qopt.quant")) {
        if (auto m = info.getAs<StringAttr>("method"))
          r.method = m.str();
        if (auto e = info.getAs<FloatAttr>("weight_error"))
          r.weightError = e.getValueAsDouble();
        if (auto e = info.getAs<FloatAttr>("output_error"))
          r.outputError = e.getValueAsDouble();
      }
      readPrecision(op, r);
      out.push_back(std::move(r));
    } else if (auto mm = dyn_cast<nn::MatmulOp>(op); mm && (linearWeight(mm) || otherFloatWeight(mm))) {
      LayerReport r;
      r.name = layerName(mm);
      r.node = nodeName(op);
      auto wt = cast<RankedTensorType>(mm.getRhs().getType());
      const Type et = wt.getElementType();
      r.inputs = wt.getDimSize(0);
      r.outputs = wt.getDimSize(1);
      r.format = et.isF32() ? "f32" : et.isF16() ? "f16" : et.isBF16() ? "bf16" : "float";
      r.floatBytes = static_cast<uint64_t>(r.inputs * r.outputs) * 4;
      r.bytes = tensorBytes(wt);
      if (auto reason = op->getAttrOfType<StringAttr>(kFloatReasonAttr))
        r.floatReason = reason.str();
      else if (!et.isF32())
        r.floatReason = r.format + " weights and activations: the quantizers take float32 layers (qopt's pipeline "
                        "widens a 16-bit model first: qopt-widen-half)";
      readPrecision(op, r);
      out.push_back(std::move(r));
    }
  });
  return out;
}

uint64_t constantBytes(ModuleOp module) {
  uint64_t total = 0;
  module.walk([&](Operation *op) {
    StringRef name = op->getName().getStringRef();
    if (name == "nn.constant" || name == "kern.weight")
      total += tensorBytes(op->getResult(0).getType());
  });
  return total;
}

void writeQuantReportJson(const QuantReport &report, llvm::raw_ostream &os) {
  llvm::json::OStream j(os, 2);
  j.object([&] {
    j.attribute("scheme", report.scheme);
    j.attribute("group_size", report.groupSize);
    j.attribute("source", report.source);
    j.attribute("weight_bytes_before", static_cast<int64_t>(report.weightBytesBefore));
    j.attribute("weight_bytes_after", static_cast<int64_t>(report.weightBytesAfter));
    j.attributeArray("passes", [&] {
      for (const PassTime &p : report.passes)
        j.object([&] {
          j.attribute("pass", p.pass);
          j.attribute("seconds", p.seconds);
        });
    });
    j.attributeArray("layers", [&] {
      for (const LayerReport &l : report.layers)
        j.object([&] {
          j.attribute("name", l.name);
          j.attribute("node", l.node);
          j.attribute("inputs", l.inputs);
          j.attribute("outputs", l.outputs);
          j.attribute("format", l.format);
          if (!l.method.empty()) {
            j.attribute("method", l.method);
            j.attribute("bits", l.bits);
            j.attribute("granularity", l.granularity);
            j.attribute("group_size", l.groupSize);
            j.attribute("symmetric", l.symmetric);
            j.attribute("scales", l.scales);
          }
          j.attribute("float_bytes", static_cast<int64_t>(l.floatBytes));
          j.attribute("bytes", static_cast<int64_t>(l.bytes));
          if (l.weightError)
            j.attribute("weight_rel_error", *l.weightError);
          if (l.outputError)
            j.attribute("output_rel_error", *l.outputError);
          if (!l.floatReason.empty())
            j.attribute("float_reason", l.floatReason);
          if (!l.choice.empty())
            j.attributeObject("precision", [&] {
              j.attribute("choice", l.choice);
              if (l.choice == "int4")
                j.attribute("group_size", l.choiceGroup);
              j.attribute("budget_bits", l.budget);
              j.attributeArray("candidates", [&] {
                for (const LayerReport::Candidate &c : l.candidates)
                  j.object([&] {
                    j.attribute("format", c.format);
                    if (c.format == "int4")
                      j.attribute("group_size", c.group);
                    j.attribute("bits", c.bits);
                    j.attribute("kl", c.kl);
                    j.attribute("kl_measured", c.measured);
                  });
              });
            });
        });
    });
  });
  os << "\n";
}

void printQuantSummary(const QuantReport &report, llvm::raw_ostream &os) {
  struct Row {
    int layers = 0;
    uint64_t floatBytes = 0, bytes = 0;
    double outErr = 0;
    int withErr = 0;
  };
  std::map<std::string, Row> rows;
  for (const LayerReport &l : report.layers) {
    std::string key = l.method.empty() ? l.format + " (kept)" : l.format + " " + l.method;
    if (!l.method.empty())
      key += l.granularity == "group" ? " g" + std::to_string(l.groupSize) : " per-" + l.granularity;
    Row &r = rows[key];
    ++r.layers;
    r.floatBytes += l.floatBytes;
    r.bytes += l.bytes;
    if (l.outputError) {
      r.outErr += *l.outputError;
      ++r.withErr;
    }
  }
  os << "qopt: " << report.scheme << ": linear layers\n";
  os << llvm::format("qopt:   %-40s %7s %12s %12s %14s\n", "format", "layers", "f32 MB", "now MB", "mean out err");
  for (auto &[key, r] : rows) {
    std::string err = r.withErr ? llvm::formatv("{0:e2}", r.outErr / r.withErr).str() : "-";
    os << llvm::format("qopt:   %-40s %7d %12.2f %12.2f %14s\n", key.c_str(), r.layers, r.floatBytes / 1e6,
                       r.bytes / 1e6, err.c_str());
  }
  // Every layer left in float, by name, with the reason (a layer without one was not quantizable by the scheme).
  for (const LayerReport &l : report.layers)
    if (l.method.empty())
      os << "qopt:   kept in " << l.format << ": " << (l.name.empty() ? l.node : l.name) << " [" << l.inputs << "x"
         << l.outputs << "]: " << (l.floatReason.empty() ? "not quantized by this scheme" : l.floatReason) << "\n";
  // Mixed precision: the achieved average against the budget (the chosen candidates' bits, weighted by size).
  double bits = 0, weights = 0, budget = 0;
  std::map<std::string, int> chosen;
  for (const LayerReport &l : report.layers)
    for (const LayerReport::Candidate &c : l.candidates)
      if (c.format == l.choice && (c.format != "int4" || c.group == l.choiceGroup)) {
        bits += c.bits * static_cast<double>(l.inputs * l.outputs);
        weights += static_cast<double>(l.inputs * l.outputs);
        budget = l.budget;
        ++chosen[c.format != "int4"      ? c.format
                 : c.group == l.inputs ? std::string("int4 per-channel")
                                       : "int4 g" + std::to_string(c.group)];
      }
  if (weights > 0) {
    os << llvm::format("qopt: mixed precision: %.3f bits per weight (budget %.3f) over the linear layers:", bits / weights,
                       budget);
    for (auto &[format, n] : chosen)
      os << " " << n << " " << format;
    os << " (`--report` lists each layer's candidates and measured KL)\n";
  }
  os << llvm::format("qopt: weights %.2f MB -> %.2f MB (%.2fx smaller)\n", report.weightBytesBefore / 1e6,
                     report.weightBytesAfter / 1e6,
                     report.weightBytesAfter ? static_cast<double>(report.weightBytesBefore) / report.weightBytesAfter
                                             : 0.0);
  if (!report.passes.empty()) {
    double total = 0;
    os << llvm::format("qopt:   %-28s %9s\n", "pass", "seconds");
    for (const PassTime &p : report.passes) {
      os << llvm::format("qopt:   %-28s %9.2f\n", p.pass.c_str(), p.seconds);
      total += p.seconds;
    }
    os << llvm::format("qopt:   %-28s %9.2f\n", "total", total);
  }
}

} // namespace qopt
