//===- CudaKernels.cpp - one CUDA kernel specialization per launch ----------===//
//
// For a CUDA target: describes each kern.launch to lib/Codegen (family, attributes, operand dtypes and shapes),
// which picks and specializes a kernel template; the launch names the specialization as its variant, and the
// module collects the distinct specializations (source and launch geometry) for qopt to compile into model.bin.
// Launches without a template keep the family's default and run on the host at run time; a remark per family
// says how many and why, so a user sees what is not on the GPU yet.
//
//===----------------------------------------------------------------------===//
#include "qopt/Codegen/Cuda.h"
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Passes.h"
#include "qopt/Serialize/ModelWriter.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"

namespace qopt {
#define GEN_PASS_DEF_CUDAKERNELSPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

// Whether a one-result launch's result is a function result, directly or through casts (an output head).
bool reachesResult(kern::LaunchOp l) {
  if (l.getNumResults() != 1)
    return false;
  Value v = l.getResult(0);
  for (int depth = 0; depth < 4 && v.hasOneUse(); ++depth) {
    Operation *user = *v.getUsers().begin();
    if (isa<func::ReturnOp>(user))
      return true;
    auto cast = dyn_cast<kern::LaunchOp>(user);
    if (!cast || cast.getKernel() != "cast")
      return false;
    v = cast.getResult(0);
  }
  return false;
}

codegen::OperandDesc describe(Type t) {
  codegen::OperandDesc d;
  auto rt = dyn_cast<RankedTensorType>(t);
  if (!rt) {
    d.absent = true;
    return d;
  }
  d.dtype = nn::toDType(rt.getElementType());
  for (int64_t dim : rt.getShape())
    d.shape.push_back(ShapedType::isDynamic(dim) ? -1 : dim);
  return d;
}

struct CudaKernelsPass : qopt::impl::CudaKernelsPassBase<CudaKernelsPass> {
  using CudaKernelsPassBase::CudaKernelsPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (archs.empty()) {
      module.emitError() << "qopt-cuda-kernels: no CUDA architecture (archs=sm_90a,...)";
      return signalPassFailure();
    }
    if (actDtype != "f16" && actDtype != "bf16") {
      module.emitError() << "qopt-cuda-kernels: act-dtype must be f16 or bf16, got '" << actDtype << "'";
      return signalPassFailure();
    }
    const bool bf16 = actDtype == "bf16";
    for (const std::string &a : archs) {
      std::vector<std::string> parsed;
      std::string err;
      if (!codegen::parseCudaTarget("cuda:" + a, parsed, err)) {
        module.emitError() << "qopt-cuda-kernels: " << err;
        return signalPassFailure();
      }
    }
    Builder b(&getContext());
    llvm::MapVector<StringRef, codegen::CudaKernel> kernels;
    std::vector<std::string> symbols; // owns the keys above
    symbols.reserve(1024);
    struct Fallback {
      int64_t count = 0;
      std::string why;
      Operation *first = nullptr;
    };
    llvm::MapVector<StringRef, Fallback> fallbacks;
    module.walk([&](kern::LaunchOp l) {
      if (l->hasAttr("view") || l->hasAttr("host"))
        return;
      codegen::LaunchDesc desc;
      desc.family = l.getKernel().str();
      num::Attrs attrs = nn::toKernelAttrs(l.getAttrs());
      desc.attrs = &attrs;
      for (Value v : l.getOperands())
        desc.inputs.push_back(describe(v.getType()));
      for (Value v : l.getResults())
        desc.results.push_back(describe(v.getType()));
      desc.outputHead = reachesResult(l);
      desc.bf16 = bf16;
      codegen::CudaKernel k;
      std::string why;
      if (!codegen::instantiateCudaKernel(desc, k, why)) {
        Fallback &f = fallbacks[l.getKernel()];
        if (!f.count++) {
          f.why = why;
          f.first = l;
        }
        l.removeVariantAttr();
        return;
      }
      l.setVariantAttr(b.getStringAttr(k.symbol));
      if (!kernels.count(k.symbol)) {
        symbols.push_back(k.symbol);
        kernels.insert({symbols.back(), std::move(k)});
      }
    });
    for (auto &[family, f] : fallbacks)
      f.first->emitRemark() << "qopt-cuda-kernels: " << f.count << " launch" << (f.count == 1 ? "" : "es")
                            << " of '" << family << "' run on the host (" << f.why << ")";
    SmallVector<Attribute> records;
    for (auto &[symbol, k] : kernels) {
      const codegen::KernelGeometry &g = k.geometry;
      NamedAttribute fields[] = {
          b.getNamedAttr("symbol", b.getStringAttr(k.symbol)),
          b.getNamedAttr("source", b.getStringAttr(k.source)),
          b.getNamedAttr("block", b.getI64IntegerAttr(g.block)),
          b.getNamedAttr("grid_y", b.getI64IntegerAttr(g.gridY)),
          b.getNamedAttr("rows_per_block", b.getI64IntegerAttr(g.rowsPerBlock)),
          b.getNamedAttr("cols_per_block", b.getI64IntegerAttr(g.colsPerBlock)),
          b.getNamedAttr("cols", b.getI64IntegerAttr(static_cast<int64_t>(g.cols))),
          b.getNamedAttr("shared_bytes", b.getI64IntegerAttr(g.sharedBytes)),
          b.getNamedAttr("operand", b.getI64IntegerAttr(g.geometryOperand)),
          b.getNamedAttr("flat", b.getBoolAttr(g.flat)),
      };
      SmallVector<NamedAttribute> record(std::begin(fields), std::end(fields));
      if (g.planes)
        record.push_back(b.getNamedAttr("planes", b.getBoolAttr(true)));
      records.push_back(b.getDictionaryAttr(record));
    }
    module->setAttr("kern.cuda_kernels", b.getArrayAttr(records));
    SmallVector<Attribute> archAttrs;
    for (const std::string &a : archs)
      archAttrs.push_back(b.getStringAttr(a));
    module->setAttr("kern.cuda_archs", b.getArrayAttr(archAttrs));
    if (bf16)
      module->setAttr("kern.cuda_act_dtype", b.getStringAttr(actDtype));
  }
};

} // namespace

namespace {
// The module's kernel records (kern.cuda_kernels): their symbols and launch geometry into `out`, their wrappers'
// sources concatenated into `wrappers`, the architectures and the 16-bit float.
LogicalResult readKernelRecords(ModuleOp module, DeviceKernels &out, std::string &wrappers,
                                std::vector<std::string> &archs, bool &bf16) {
  auto records = module->getAttrOfType<ArrayAttr>("kern.cuda_kernels");
  auto archAttrs = module->getAttrOfType<ArrayAttr>("kern.cuda_archs");
  if (!records)
    return module.emitError() << "kern.cuda_kernels must be an array of kernel records";
  if (!archAttrs || archAttrs.empty())
    return module.emitError() << "kern.cuda_kernels without kern.cuda_archs";
  for (Attribute a : records) {
    auto d = dyn_cast<DictionaryAttr>(a);
    auto text = [&](StringRef key) {
      auto s = d ? d.getAs<StringAttr>(key) : StringAttr();
      return s ? s.str() : std::string();
    };
    auto number = [&](StringRef key) {
      auto i = d ? d.getAs<IntegerAttr>(key) : IntegerAttr();
      return i ? i.getInt() : int64_t(-1);
    };
    DeviceKernels::Symbol k;
    k.name = text("symbol");
    int64_t fields[] = {number("block"), number("grid_y"), number("rows_per_block"), number("cols_per_block"),
                        number("cols"), number("shared_bytes"), number("operand")};
    auto flat = d ? d.getAs<BoolAttr>("flat") : BoolAttr();
    if (k.name.empty() || text("source").empty() || !flat || llvm::any_of(fields, [](int64_t v) { return v < 0; }))
      return module.emitError() << "kern.cuda_kernels: a malformed record " << a;
    k.launch.block = static_cast<uint32_t>(fields[0]);
    k.launch.gridY = static_cast<uint32_t>(fields[1]);
    k.launch.rowsPerBlock = static_cast<uint32_t>(fields[2]);
    k.launch.colsPerBlock = static_cast<uint32_t>(fields[3]);
    k.launch.cols = static_cast<uint64_t>(fields[4]);
    k.launch.sharedBytes = static_cast<uint32_t>(fields[5]);
    k.launch.operand = static_cast<uint32_t>(fields[6]);
    k.launch.flat = flat.getValue();
    auto planes = d.getAs<BoolAttr>("planes");
    k.launch.planes = planes && planes.getValue();
    wrappers += text("source");
    out.symbols.push_back(std::move(k));
  }
  for (Attribute a : archAttrs)
    archs.push_back(cast<StringAttr>(a).str());
  auto actDtype = module->getAttrOfType<StringAttr>("kern.cuda_act_dtype");
  if (actDtype && actDtype.getValue() != "bf16" && actDtype.getValue() != "f16")
    return module.emitError() << "kern.cuda_act_dtype must be \"f16\" or \"bf16\", got " << actDtype;
  bf16 = actDtype && actDtype.getValue() == "bf16";
  return success();
}
} // namespace

LogicalResult qopt::compileCudaKernels(ModuleOp module, const std::string &cacheDir, DeviceKernels &out) {
  out = DeviceKernels();
  if (!module->hasAttr("kern.cuda_kernels"))
    return success();
  std::string wrappers;
  std::vector<std::string> archs;
  bool bf16 = false;
  if (failed(readKernelRecords(module, out, wrappers, archs, bf16)))
    return failure();
  std::vector<codegen::CudaImage> images;
  std::string error;
  if (!codegen::compileCuda(wrappers, archs, cacheDir, images, error, /*ptx=*/true, bf16))
    return module.emitError() << error;
  for (codegen::CudaImage &img : images)
    out.images.push_back({img.arch, img.format, std::move(img.bytes)});
  out.bf16 = bf16;
  return success();
}

LogicalResult qopt::cudaKernelSource(ModuleOp module, std::string &source) {
  if (!module->hasAttr("kern.cuda_kernels"))
    return module.emitError() << "no CUDA kernels: the module was not compiled for a CUDA target (--target=cuda:...)";
  DeviceKernels kernels;
  std::string wrappers;
  std::vector<std::string> archs;
  bool bf16 = false;
  if (failed(readKernelRecords(module, kernels, wrappers, archs, bf16)))
    return failure();
  source = codegen::cudaModuleSource(wrappers, bf16);
  return success();
}
