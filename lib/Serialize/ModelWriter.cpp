//===- ModelWriter.cpp - serialize a planned kern function to model.bin ----===//
//
// Values are numbered in order: arguments, weights, launch results. Weights are streamed to the file one by one
// from their blobs (no second copy of the model in memory) at kWeightAlign-aligned offsets; checksums are computed
// as the bytes are written. The layout is defined in lib/Format/include/qopt/Format/ModelBin.h.
//
//===----------------------------------------------------------------------===//
#include "qopt/Serialize/ModelWriter.h"
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Format/ByteStream.h"
#include "qopt/Format/ModelBin.h"
#include "qopt/Numerics/Kernels.h"

#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdio>
#include <set>

using namespace mlir;
using namespace qopt;
namespace fmt = qopt::format;

namespace {

std::string valueName(Value v, const std::string &fallback) {
  if (auto nl = dyn_cast<NameLoc>(v.getLoc()))
    return nl.getName().str();
  if (Operation *op = v.getDefiningOp())
    if (auto nl = dyn_cast<NameLoc>(op->getLoc())) {
      auto r = cast<OpResult>(v);
      return nl.getName().str() + (op->getNumResults() > 1 ? ":" + std::to_string(r.getResultNumber()) : "");
    }
  return fallback;
}

void encodeValue(fmt::ByteWriter &w, const std::string &name, num::DType dt, fmt::Storage storage,
                 ArrayRef<int64_t> dims, ArrayRef<int64_t> maxDims, uint64_t offset, uint64_t bytes) {
  std::string clean = name; // the runtime names values by C string: a NUL in a (diagnostic) name becomes '?'
  std::replace(clean.begin(), clean.end(), '\0', '?');
  w.str(clean);
  w.u8(static_cast<uint8_t>(dt));
  w.u8(static_cast<uint8_t>(storage));
  w.u8(static_cast<uint8_t>(dims.size()));
  w.u8(0);
  for (size_t d = 0; d < dims.size(); ++d) {
    w.i64(ShapedType::isDynamic(dims[d]) ? -1 : dims[d]);
    w.i64(maxDims[d]);
  }
  w.u64(offset);
  w.u64(bytes);
}

void encodeAttrs(fmt::ByteWriter &w, const num::Attrs &attrs) {
  w.u32(static_cast<uint32_t>(attrs.all().size()));
  for (const num::Attr &a : attrs.all()) {
    w.str(a.key);
    switch (a.kind) {
    case num::AttrKind::Int: w.u8(uint8_t(fmt::AttrKind::Int)); w.i64(a.i); break;
    case num::AttrKind::Float: w.u8(uint8_t(fmt::AttrKind::Float)); w.f64(a.f); break;
    case num::AttrKind::String: w.u8(uint8_t(fmt::AttrKind::String)); w.str(a.s); break;
    case num::AttrKind::Ints:
      w.u8(uint8_t(fmt::AttrKind::Ints));
      w.u32(static_cast<uint32_t>(a.ints.size()));
      for (int64_t v : a.ints) w.i64(v);
      break;
    case num::AttrKind::Floats:
      w.u8(uint8_t(fmt::AttrKind::Floats));
      w.u32(static_cast<uint32_t>(a.floats.size()));
      for (double v : a.floats) w.f64(v);
      break;
    }
  }
}

} // namespace

namespace qopt {

LogicalResult writeModelBin(func::FuncOp func, const std::string &path, const ModelWriteOptions &options) {
  return writeModelBin(ArrayRef<func::FuncOp>{func}, path, options);
}

LogicalResult writeModelBin(ModuleOp module, const std::string &path, const ModelWriteOptions &options) {
  SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
  if (funcs.empty())
    return module.emitError() << "has no function to write";
  return writeModelBin(funcs, path, options);
}

LogicalResult writeModelBin(ArrayRef<func::FuncOp> entries, const std::string &path,
                            const ModelWriteOptions &options) {
  func::FuncOp func = entries.front(); // where file-level errors are reported
  uint64_t stateBytes = 0;
  for (func::FuncOp f : entries) {
    if (!f->getAttrOfType<IntegerAttr>("kern.arena_bytes"))
      return f.emitError() << "is not memory-planned (run qopt-plan-memory before writing model.bin)";
    if (auto st = f->getAttrOfType<IntegerAttr>("kern.state_bytes")) // absent: no state
      stateBytes = std::max<uint64_t>(stateBytes, static_cast<uint64_t>(st.getInt()));
  }

  // The runtime's tensors have at most kMaxRank dims: refuse here what it would refuse at load.
  Operation *tooDeep = nullptr;
  int64_t rank = 0;
  auto rankOk = [&](Type t, Operation *where) {
    auto st = dyn_cast<ShapedType>(t);
    if (st && st.hasRank() && st.getRank() > static_cast<int64_t>(fmt::kMaxRank) && !tooDeep) {
      tooDeep = where;
      rank = st.getRank();
    }
  };
  for (func::FuncOp f : entries) {
    for (BlockArgument arg : f.getArguments())
      rankOk(arg.getType(), f);
    f.walk([&](Operation *op) {
      for (Type t : op->getResultTypes())
        rankOk(t, op);
    });
  }
  if (tooDeep)
    return tooDeep->emitError() << "a tensor of rank " << rank << ": model.bin and the runtime support up to "
                                << fmt::kMaxRank << " dims";

  llvm::DenseMap<Value, uint32_t> ids;
  fmt::ByteWriter values, program;
  uint32_t numValues = 0;
  struct WeightRef {
    const void *data;
    uint64_t bytes, offset;
    mlir::DenseResourceElementsAttr owner; // (releaseWeights) whose blob holds the bytes
  };
  llvm::DenseMap<mlir::Attribute, int64_t> ownerRefs; // weights left to write per blob
  std::vector<WeightRef> weights;
  std::vector<std::vector<uint8_t>> weightStorage; // splat/dense constants expanded
  uint64_t weightsSize = 0;

  // Entries share weights (one value per constant) and state (one value per name, at one offset); each has its
  // own inputs and arena values.
  llvm::DenseMap<std::pair<Attribute, Attribute>, uint32_t> weightIds;
  llvm::StringMap<std::pair<uint32_t, int64_t>> stateIds; // name -> value id, offset
  llvm::DenseSet<Value> stateValues;                       // values whose bytes are session state
  std::vector<std::vector<kern::LaunchOp>> entryLaunches;
  bool tiled = false; // a launch reads a weight in a tile layout: the file is format 4.0 at least (ModelBin.h)
  for (func::FuncOp func : entries) {
    for (BlockArgument arg : func.getArguments()) {
      auto type = cast<RankedTensorType>(arg.getType());
      auto maxShape = func.getArgAttrOfType<DenseI64ArrayAttr>(arg.getArgNumber(), "kern.max_shape");
      auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "nn.name");
      auto offset = func.getArgAttrOfType<IntegerAttr>(arg.getArgNumber(), "kern.offset");
      if (!maxShape || !offset)
        return func.emitError() << "argument " << arg.getArgNumber() << " has no memory plan";
      num::Shape bound(maxShape.asArrayRef().begin(), maxShape.asArrayRef().end());
      if (!num::withinElementLimit(bound))
        return func.emitError() << "input " << arg.getArgNumber() << " is bounded at over 2^59 elements";
      num::DType dt = nn::toDType(type.getElementType());
      encodeValue(values, name ? name.str() : "input" + std::to_string(arg.getArgNumber()), dt, fmt::Storage::Input,
                  type.getShape(), maxShape.asArrayRef(), static_cast<uint64_t>(offset.getInt()),
                  static_cast<uint64_t>(num::numElements(bound)) * num::dtypeSize(dt));
      ids[arg] = numValues++;
    }
    std::vector<kern::LaunchOp> &launches = entryLaunches.emplace_back();
    for (Operation &op : func.getBody().front()) {
      if (auto w = dyn_cast<kern::WeightOp>(op)) {
        auto key = std::make_pair(Attribute(w.getValue()), Attribute(w.getNameAttr()));
        if (auto it = weightIds.find(key); it != weightIds.end()) {
          ids[w.getResult()] = it->second;
          continue;
        }
        weightIds[key] = numValues;
        num::Tensor t;
        std::vector<uint8_t> storage;
        if (!nn::readConstant(w.getValue(), t, storage))
          return w.emitError() << "cannot read this weight: " << nn::unreadableConstantReason(w.getValue());
        uint64_t bytes = t.bytes();
        std::string name = w.getName() ? w.getName()->str() : valueName(w.getResult(), "const");
        if (options.external) {
          ExternalWeights &ext = *options.external;
          if (!storage.empty()) {
            ext.owned.push_back(std::move(storage));
            t.data = ext.owned.back().data();
          }
          encodeValue(values, name, t.dtype, fmt::Storage::External, t.shape, t.shape, ext.entries.size(), bytes);
          ext.entries.push_back({name, t.data, bytes});
          ids[w.getResult()] = numValues++;
          continue;
        }
        uint64_t off = (weightsSize + fmt::kWeightAlign - 1) / fmt::kWeightAlign * fmt::kWeightAlign;
        if (!storage.empty()) {
          weightStorage.push_back(std::move(storage));
          t.data = weightStorage.back().data();
        }
        auto owner = options.releaseWeights ? dyn_cast<DenseResourceElementsAttr>(w.getValue())
                                            : DenseResourceElementsAttr();
        if (owner)
          ++ownerRefs[owner];
        weights.push_back({t.data, bytes, off, owner});
        weightsSize = off + bytes;
        encodeValue(values, name, t.dtype, fmt::Storage::Weight, t.shape, t.shape, off, bytes);
        ids[w.getResult()] = numValues++;
      } else if (auto st = dyn_cast<kern::StateOp>(op)) {
        if (!st.getOffset())
          return st.emitError() << "has no memory plan";
        stateValues.insert(st.getResult());
        if (auto it = stateIds.find(st.getName()); it != stateIds.end()) {
          if (it->second.second != static_cast<int64_t>(*st.getOffset()))
            return st.emitError() << "is at another offset than the state of the same name in another entry";
          ids[st.getResult()] = it->second.first;
          continue;
        }
        stateIds[st.getName()] = {numValues, *st.getOffset()};
        auto type = st.getType();
        num::DType dt = nn::toDType(type.getElementType());
        uint64_t bytes = static_cast<uint64_t>(type.getNumElements()) * num::dtypeSize(dt);
        encodeValue(values, st.getName().str(), dt, fmt::Storage::State, type.getShape(), type.getShape(),
                    static_cast<uint64_t>(*st.getOffset()), bytes);
        ids[st.getResult()] = numValues++;
      } else if (auto l = dyn_cast<kern::LaunchOp>(op)) {
        // An in-place update's result, and a view of state (planned as the state's memory), are state too.
        const bool stateView = l->hasAttr("view") && l.getNumOperands() > 0 && stateValues.contains(l.getOperand(0));
        if (!l.getOffsets() || !l.getMaxShapes())
          return l.emitError() << "has no memory plan";
        const num::KernelFamily *kernel = num::lookupFamily(l.getKernel().str());
        for (auto [r, res] : llvm::enumerate(l.getResults())) {
          auto type = cast<RankedTensorType>(res.getType());
          int64_t offset = (*l.getOffsets())[r];
          if ((kernel && kernel->inPlace >= 0) || stateView) { // the updated or viewed state: its operand's memory
            stateValues.insert(res);
            encodeValue(values, valueName(res, "v" + std::to_string(numValues)), nn::toDType(type.getElementType()),
                        fmt::Storage::State, type.getShape(), type.getShape(), static_cast<uint64_t>(offset),
                        static_cast<uint64_t>(type.getNumElements()) *
                            num::dtypeSize(nn::toDType(type.getElementType())));
            ids[res] = numValues++;
            continue;
          }
          if (offset < 0) { // sized at run time
            SmallVector<int64_t> dims(type.getShape()), bounds;
            for (int64_t d : dims)
              bounds.push_back(ShapedType::isDynamic(d) ? 0 : d);
            encodeValue(values, valueName(res, "v" + std::to_string(numValues)), nn::toDType(type.getElementType()),
                        fmt::Storage::Dynamic, dims, bounds, 0, 0);
            ids[res] = numValues++;
            continue;
          }
          auto maxShape = cast<DenseI64ArrayAttr>((*l.getMaxShapes())[r]).asArrayRef();
          if (static_cast<int64_t>(maxShape.size()) != type.getRank())
            return l.emitError() << "max shape rank differs from result rank";
          num::Shape bound(maxShape.begin(), maxShape.end());
          if (!num::withinElementLimit(bound))
            return l.emitError() << "result " << r << " has a planned shape over 2^59 elements";
          int64_t n = num::numElements(bound);
          uint64_t bytes = static_cast<uint64_t>(n) * num::dtypeSize(nn::toDType(type.getElementType()));
          encodeValue(values, valueName(res, "v" + std::to_string(numValues)), nn::toDType(type.getElementType()),
                      l->hasAttr("host") ? fmt::Storage::Host : fmt::Storage::Arena, type.getShape(), maxShape,
                      static_cast<uint64_t>(offset), bytes);
          ids[res] = numValues++;
        }
        launches.push_back(l);
      } else if (!isa<kern::AbsentOp, func::ReturnOp>(op)) {
        return op.emitError() << "cannot be serialized (expected kern ops only)";
      }
    }
  }

  uint64_t arenaBytes = 0, hostBytes = 0; // the session's arenas serve every entry
  auto planned = [](func::FuncOp f, StringRef attr) {
    auto a = f->getAttrOfType<IntegerAttr>(attr);
    return a ? static_cast<uint64_t>(a.getInt()) : 0;
  };
  for (func::FuncOp f : entries) {
    arenaBytes = std::max(arenaBytes, planned(f, "kern.arena_bytes"));
    hostBytes = std::max(hostBytes, planned(f, "kern.host_bytes"));
  }
  program.u64(arenaBytes);
  program.u64(stateBytes);
  program.u64(hostBytes);
  program.u32(static_cast<uint32_t>(entries.size()));
  for (size_t en = 0; en < entries.size(); ++en) {
    func::FuncOp func = entries[en];
    const std::vector<kern::LaunchOp> &launches = entryLaunches[en];
    program.str(func.getSymName().str());
    program.u64(planned(func, "kern.arena_bytes"));
    program.u64(planned(func, "kern.host_bytes"));
    program.u32(func.getNumArguments());
    for (BlockArgument arg : func.getArguments())
      program.u32(ids[arg]);
    auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
    program.u32(ret.getNumOperands());
    std::set<std::string> outputNames;
    for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
      if (!ids.count(v))
        return func.emitError() << "returns a value that is not a tensor of the plan";
      auto name = func.getResultAttrOfType<StringAttr>(i, "nn.name");
      std::string outName = name ? name.str() : "output" + std::to_string(i);
      if (outName.find('\0') != std::string::npos || !outputNames.insert(outName).second)
        return func.emitError() << "output " << i << " has a name with a NUL byte or the name of another output";
      program.str(outName);
      program.u32(ids[v]);
    }
    program.u32(static_cast<uint32_t>(launches.size()));
    for (kern::LaunchOp l : launches) {
      if (auto layout = l.getAttrs().getAs<IntegerAttr>("weight_layout"); layout && layout.getInt() != 0)
        tiled = true;
      program.str(l.getKernel().str());
      program.str(l.getVariant() ? l.getVariant()->str() : std::string());
      program.u32(l.getNumOperands());
      for (Value v : l.getOperands())
        program.u32(isa<NoneType>(v.getType()) ? fmt::kNoValue : ids.lookup(v));
      program.u32(l.getNumResults());
      for (Value v : l.getResults())
        program.u32(ids[v]);
      encodeAttrs(program, nn::toKernelAttrs(l.getAttrs()));
    }
  }
  fmt::ByteWriter meta;
  meta.u32(static_cast<uint32_t>(options.metadata.size()));
  for (auto &[k, v] : options.metadata) {
    meta.str(k);
    meta.str(v);
  }
  fmt::ByteWriter valuesSection;
  valuesSection.u32(numValues);
  valuesSection.raw(values.bytes.data(), values.bytes.size());

  // Layout: header, section table, then sections at page-aligned offsets.
  struct Sec {
    fmt::SectionKind kind;
    const uint8_t *data; // null for weights (streamed)
    uint64_t size;
  };
  std::vector<Sec> secs = {{fmt::SectionKind::Meta, meta.bytes.data(), meta.bytes.size()},
                           {fmt::SectionKind::Values, valuesSection.bytes.data(), valuesSection.bytes.size()},
                           {fmt::SectionKind::Program, program.bytes.data(), program.bytes.size()},
                           {fmt::SectionKind::Weights, nullptr, weightsSize}};
  if (!options.tokenizer.empty())
    secs.push_back({fmt::SectionKind::Tokenizer, options.tokenizer.data(), options.tokenizer.size()});
  fmt::ByteWriter kernels;
  if (!options.kernels.images.empty()) {
    kernels.u32(static_cast<uint32_t>(options.kernels.images.size()));
    for (const DeviceKernels::Image &img : options.kernels.images) {
      kernels.str(img.arch);
      kernels.u8(img.format);
      kernels.u64(img.bytes.size());
      kernels.raw(img.bytes.data(), img.bytes.size());
    }
    kernels.u32(static_cast<uint32_t>(options.kernels.symbols.size()));
    for (const DeviceKernels::Symbol &k : options.kernels.symbols) {
      kernels.str(k.name);
      kernels.u32(k.launch.block);
      kernels.u32(k.launch.gridY);
      kernels.u32(k.launch.rowsPerBlock);
      kernels.u32(k.launch.colsPerBlock);
      kernels.u64(k.launch.cols);
      kernels.u32(k.launch.sharedBytes);
      kernels.u32(k.launch.operand);
      kernels.u8(k.launch.flat ? 1 : k.launch.planes ? 2 : 0);
    }
    secs.push_back({fmt::SectionKind::Kernels, kernels.bytes.data(), kernels.bytes.size()});
  }
  std::vector<fmt::SectionEntry> table(secs.size());
  uint64_t at = sizeof(fmt::FileHeader) + table.size() * sizeof(fmt::SectionEntry);
  for (size_t i = 0; i < secs.size(); ++i) {
    at = (at + fmt::kSectionAlign - 1) / fmt::kSectionAlign * fmt::kSectionAlign;
    table[i] = {};
    table[i].kind = static_cast<uint32_t>(secs[i].kind);
    table[i].offset = at;
    table[i].size = secs[i].size;
    if (secs[i].data) {
      table[i].crc = fmt::crc32(secs[i].data, secs[i].size);
    } else {
      uint32_t crc = 0;
      uint64_t pos = 0;
      static const uint8_t zeros[fmt::kWeightAlign] = {};
      for (const WeightRef &w : weights) {
        crc = fmt::crc32(zeros, w.offset - pos, crc);
        crc = fmt::crc32(w.data, w.bytes, crc);
        pos = w.offset + w.bytes;
      }
      table[i].crc = crc;
    }
    at += secs[i].size;
  }
  fmt::FileHeader h{};
  std::memcpy(h.magic, fmt::kMagic, sizeof h.magic);
  // ModelBin.h: 5.0 only for kernels of bfloat16 operands, 4.0 only for tiles.
  h.versionMajor = options.kernels.bf16 ? fmt::kVersionMajor : tiled ? fmt::kTilesVersionMajor : fmt::kRowsVersionMajor;
  h.versionMinor = options.kernels.bf16 ? fmt::kVersionMinor : tiled ? fmt::kTilesVersionMinor : fmt::kRowsVersionMinor;
  h.fileSize = at;
  h.sectionTableOffset = sizeof(fmt::FileHeader);
  h.numSections = static_cast<uint32_t>(table.size());
  h.sectionTableCrc = fmt::crc32(table.data(), table.size() * sizeof(fmt::SectionEntry));
  h.headerCrc = 0;
  h.headerCrc = fmt::crc32(&h, sizeof h);

  std::string tmp = path + ".tmp";
  std::FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    return func.emitError() << "cannot write '" << tmp << "'";
  uint64_t pos = 0;
  bool ok = true;
  auto put = [&](const void *p, uint64_t n) {
    ok &= std::fwrite(p, 1, n, f) == n;
    pos += n;
  };
  auto padTo = [&](uint64_t target) {
    static const uint8_t zeros[4096] = {};
    while (pos < target)
      put(zeros, std::min<uint64_t>(sizeof zeros, target - pos));
  };
  put(&h, sizeof h);
  put(table.data(), table.size() * sizeof(fmt::SectionEntry));
  for (size_t i = 0; i < secs.size(); ++i) {
    padTo(table[i].offset);
    if (secs[i].data) {
      put(secs[i].data, secs[i].size);
    } else {
      uint64_t base = pos;
      for (const WeightRef &w : weights) {
        padTo(base + w.offset);
        put(w.data, w.bytes);
        if (w.owner && --ownerRefs[w.owner] == 0)
          w.owner.getRawHandle().getResource()->setBlob(AsmResourceBlob());
      }
    }
  }
  ok &= std::fclose(f) == 0;
  if (!ok || pos != at) {
    std::remove(tmp.c_str());
    return func.emitError() << "writing '" << path << "' failed (disk full?)";
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return func.emitError() << "cannot rename '" << tmp << "' to '" << path << "'";
  }
  return success();
}

} // namespace qopt
