//===- QuantReport.h - what weight quantization did, layer by layer -------===//
//
// Read from a module after the quantization passes (before lowering): every qnt.linear with its format, size and
// the errors its quantizer recorded (qopt.quant), and every linear layer left in float. Used by `qopt --report`
// and its summary; available to embedding compilers.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_QUANTREPORT_H
#define QOPT_QUANTREPORT_H

#include "mlir/IR/BuiltinOps.h"

#include <optional>
#include <string>
#include <vector>

namespace llvm {
class raw_ostream;
}

namespace qopt {

struct LayerReport {
  std::string name, node;   // the weight's name and the node's
  int64_t inputs = 0, outputs = 0; // K, N
  std::string format;       // "f32", "int4", "int3", "int8"
  std::string method;       // "rtn", "awq", "gptq"; empty for float layers
  int64_t bits = 32, groupSize = 0;
  std::string granularity;  // "group", "channel" or "tensor"; empty for float layers
  bool symmetric = false;
  std::string scales;       // the scales' element type: "f16" (int3/int4 in float16's range) or "f32"
  uint64_t floatBytes = 0, bytes = 0; // the f32 weight's size, and what the layer stores now (incl. scales, zeros)
  std::optional<double> weightError, outputError;
  std::string floatReason;  // why a float layer stays float (qopt-select-layers), if it was decided
  // Mixed precision (qopt-assign-precision), if it ran: the candidates' bits per weight and measured KL, the
  // choice and the budget.
  struct Candidate {
    std::string format;
    int64_t group = 0; // int4's group size
    double bits = 0, kl = 0;
    bool measured = true; // kl through the model, or scaled by the output error (--mixed-sensitivity=scaled)
  };
  std::vector<Candidate> candidates;
  std::string choice;
  int64_t choiceGroup = 0;
  double budget = 0;
};

struct PassTime {
  std::string pass;
  double seconds = 0;
};

struct QuantReport {
  std::string scheme;          // e.g. "awq4"
  int64_t groupSize = 0;       // as asked (0 = per channel, -1 = per tensor)
  std::string source;          // the input file
  uint64_t weightBytesBefore = 0, weightBytesAfter = 0; // all constants, before and after
  std::vector<LayerReport> layers;
  std::vector<PassTime> passes;
};

// Every linear layer of `module` (qnt.linear, or nn.matmul with a linear weight), in program order.
std::vector<LayerReport> collectLayerReports(mlir::ModuleOp module);
// Bytes of every constant (nn.constant / kern.weight) with a static shape.
uint64_t constantBytes(mlir::ModuleOp module);
// The report as JSON (docs/report.md describes the fields).
void writeQuantReportJson(const QuantReport &report, llvm::raw_ostream &os);
// The summary table qopt prints: layers by format, sizes, time per pass.
void printQuantSummary(const QuantReport &report, llvm::raw_ostream &os);

} // namespace qopt

#endif // QOPT_QUANTREPORT_H
