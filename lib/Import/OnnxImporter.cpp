//===- OnnxImporter.cpp - protobuf to generic nn.onnx_node ops -------------===//
//
// Reads a ModelProto and builds `func.func @main` whose arguments are the graph inputs (named by `nn.name`, with
// ONNX dim names in `nn.dims`) and whose results are the graph outputs. Weights become dense_resource blobs:
// external data is mmapped and referenced in place (never copied); inline raw_data is moved into one aligned
// blob and the protobuf's copy released, so peak memory stays near one copy of the weights.
//
//===----------------------------------------------------------------------===//
#include "qopt/Import/OnnxImporter.h"
#include "qopt/Dialect/NN/NNDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InterleavedRange.h"
#include "llvm/Support/Path.h"

#include <onnx/onnx_pb.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <unordered_map>

using namespace mlir;

namespace qopt {
namespace {

struct Mapping {
  void *base = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (base && base != MAP_FAILED)
      munmap(base, size);
  }
};

std::shared_ptr<Mapping> mapFile(const std::string &path, std::string &err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = "cannot open: " + std::string(std::strerror(errno));
    return nullptr;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    err = "not a regular file";
    return nullptr;
  }
  auto m = std::make_shared<Mapping>();
  m->size = static_cast<size_t>(st.st_size);
  if (m->size) {
    m->base = mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->base == MAP_FAILED) {
      ::close(fd);
      err = "mmap failed";
      return nullptr;
    }
  }
  ::close(fd);
  return m;
}

class Importer {
public:
  Importer(MLIRContext *ctx, std::string path, const OnnxImportOptions &opts)
      : ctx(ctx), path(std::move(path)), opts(opts), b(ctx) {}

  OwningOpRef<ModuleOp> runFile();
  OwningOpRef<ModuleOp> runBuffer(ArrayRef<char> bytes);
  FailureOr<ElementsAttr> tensorFile();

private:
  InFlightDiagnostic error(const Twine &msg) { return emitError(FileLineColLoc::get(ctx, path, 0, 0)) << msg; }
  OwningOpRef<ModuleOp> build(onnx::ModelProto &model);
  OwningOpRef<ModuleOp> parseFailed();
  FailureOr<Type> elementType(int code, const Twine &what);
  FailureOr<ElementsAttr> tensorAttr(onnx::TensorProto &t, Location loc);
  FailureOr<Attribute> attribute(onnx::AttributeProto &a, Location loc);
  FailureOr<Type> valueType(const onnx::ValueInfoProto &v, SmallVectorImpl<Attribute> &dimNames);

  MLIRContext *ctx;
  std::string path;
  OnnxImportOptions opts;
  OpBuilder b;
  std::unordered_map<std::string, std::shared_ptr<Mapping>> externalFiles;
};

FailureOr<Type> Importer::elementType(int code, const Twine &what) {
  num::DType dt = num::isValidDType(code) ? static_cast<num::DType>(code) : num::DType::Undefined;
  Type t = dt == num::DType::Undefined ? Type() : nn::fromDType(ctx, dt);
  if (!t) {
    static const char *names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
                                  "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
                                  "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
                                  "FLOAT8E5M2FNUZ", "UINT4", "INT4"};
    std::string name = code >= 0 && code < 23 ? names[code] : "code " + std::to_string(code);
    error(what + ": unsupported element type " + name);
    return failure();
  }
  return t;
}

FailureOr<ElementsAttr> Importer::tensorAttr(onnx::TensorProto &t, Location loc) {
  auto et = elementType(t.data_type(), "tensor '" + t.name() + "'");
  if (failed(et))
    return failure();
  SmallVector<int64_t> dims(t.dims().begin(), t.dims().end());
  if (!num::withinElementLimit(num::Shape(dims.begin(), dims.end()))) {
    emitError(loc) << "tensor '" << t.name() << "' has invalid dims [" << llvm::interleaved(t.dims())
                   << "] (a negative dim, or over 2^59 elements)";
    return failure();
  }
  uint64_t n = static_cast<uint64_t>(num::numElements(num::Shape(dims.begin(), dims.end())));
  auto type = RankedTensorType::get(dims, *et);
  const size_t es = num::dtypeSize(nn::toDType(*et));
  const uint64_t bytes = n * es;
  if (bytes > opts.maxTensorBytes) {
    emitError(loc) << "tensor '" << t.name() << "' is " << bytes << " bytes, over the " << opts.maxTensorBytes
                   << "-byte limit for one tensor";
    return failure();
  }
  auto &mgr = DenseResourceElementsHandle::getManagerInterface(ctx);
  std::string key = t.name().empty() ? "tensor" : t.name();
  auto makeOwned = [&](const void *src) -> ElementsAttr {
    if (bytes == 0) // an empty tensor: no bytes to copy (and `src` may be null)
      return DenseElementsAttr::get(type, ArrayRef<Attribute>());
    AsmResourceBlob blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(
        ArrayRef<char>(static_cast<const char *>(src), bytes), std::max<size_t>(es, 8));
    return DenseResourceElementsAttr::get(type, mgr.insert(key, std::move(blob)));
  };

  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    uint64_t offset = 0, length = bytes;
    bool hasLength = false;
    for (const auto &kv : t.external_data()) {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset" || kv.key() == "length") {
        char *end = nullptr;
        errno = 0;
        long long v = std::strtoll(kv.value().c_str(), &end, 10);
        if (errno || !end || *end || v < 0) {
          emitError(loc) << "tensor '" << t.name() << "' has invalid external " << kv.key() << " '" << kv.value()
                         << "'";
          return failure();
        }
        (kv.key() == "offset" ? offset : length) = static_cast<uint64_t>(v);
        hasLength |= kv.key() == "length";
      }
    }
    // External files must stay inside the model's directory: no absolute paths, no "..".
    llvm::SmallString<256> rel(location);
    bool escapes = location.empty() || llvm::sys::path::is_absolute(rel);
    for (auto it = llvm::sys::path::begin(rel), e = llvm::sys::path::end(rel); it != e && !escapes; ++it)
      escapes = *it == "..";
    if (escapes) {
      emitError(loc) << "tensor '" << t.name() << "': external data location '" << location
                     << "' is outside the model's directory";
      return failure();
    }
    llvm::SmallString<256> dir(llvm::sys::path::parent_path(path));
    if (dir.empty())
      dir = ".";
    llvm::SmallString<256> full(dir);
    llvm::sys::path::append(full, location);
    // ... also through symbolic links: the resolved file must lie under the resolved directory.
    llvm::SmallString<256> realDir, realFile;
    if (!llvm::sys::fs::real_path(dir, realDir) && !llvm::sys::fs::real_path(full, realFile) &&
        !llvm::StringRef(realFile).starts_with((realDir + "/").str())) {
      emitError(loc) << "tensor '" << t.name() << "': external data location '" << location << "' resolves to '"
                     << realFile << "', outside the model's directory";
      return failure();
    }
    auto &m = externalFiles[std::string(full)];
    if (!m) {
      std::string err;
      m = mapFile(std::string(full), err);
      if (!m) {
        emitError(loc) << "tensor '" << t.name() << "': external data file '" << std::string(full) << "': " << err;
        return failure();
      }
    }
    if ((hasLength && length != bytes) || offset > m->size || bytes > m->size - offset) {
      emitError(loc) << "tensor '" << t.name() << "': external data [" << offset << ", +" << bytes
                     << ") lies outside '" << location << "' (" << m->size << " bytes)";
      return failure();
    }
    const char *src = static_cast<const char *>(m->base) + offset;
    if (reinterpret_cast<uintptr_t>(src) % es != 0)
      return makeOwned(src); // misaligned in the file: one copy
    std::shared_ptr<Mapping> keep = m;
    AsmResourceBlob blob(ArrayRef<char>(src, bytes), es,
                         [keep](void *, size_t, size_t) mutable { keep.reset(); }, /*dataIsMutable=*/false);
    return ElementsAttr(DenseResourceElementsAttr::get(type, mgr.insert(key, std::move(blob))));
  }

  if (t.has_raw_data()) {
    if (t.raw_data().size() != bytes) {
      emitError(loc) << "tensor '" << t.name() << "' has " << t.raw_data().size() << " bytes of raw data, expected "
                     << bytes;
      return failure();
    }
    // Take the parsed bytes over instead of copying them: the blob owns the protobuf's string from here on.
    std::string *owned = t.release_raw_data();
    if (reinterpret_cast<uintptr_t>(owned->data()) % es != 0) {
      ElementsAttr a = makeOwned(owned->data());
      delete owned;
      return a;
    }
    AsmResourceBlob blob(ArrayRef<char>(owned->data(), owned->size()), es,
                         [owned](void *, size_t, size_t) { delete owned; }, /*dataIsMutable=*/false);
    return ElementsAttr(DenseResourceElementsAttr::get(type, mgr.insert(key, std::move(blob))));
  }
  // Typed fields: ONNX packs every narrow integer (and bool, float16) into int32_data.
  std::vector<uint8_t> buf(bytes);
  auto check = [&](int64_t have) {
    if (static_cast<uint64_t>(have) != n) {
      emitError(loc) << "tensor '" << t.name() << "' has " << have << " values, expected " << n;
      return false;
    }
    return true;
  };
  num::DType dt = nn::toDType(*et);
  switch (dt) {
  case num::DType::F32:
    if (!check(t.float_data_size())) return failure();
    num::copyBytes(buf.data(), t.float_data().data(), bytes);
    break;
  case num::DType::F64:
    if (!check(t.double_data_size())) return failure();
    num::copyBytes(buf.data(), t.double_data().data(), bytes);
    break;
  case num::DType::I64:
    if (!check(t.int64_data_size())) return failure();
    num::copyBytes(buf.data(), t.int64_data().data(), bytes);
    break;
  case num::DType::U32: case num::DType::U64:
    if (!check(t.uint64_data_size())) return failure();
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t v = t.uint64_data(static_cast<int>(i));
      std::memcpy(buf.data() + i * es, &v, es);
    }
    break;
  default:
    if (!check(t.int32_data_size())) return failure();
    for (uint64_t i = 0; i < n; ++i) {
      int32_t v = t.int32_data(static_cast<int>(i));
      std::memcpy(buf.data() + i * es, &v, es); // little-endian: the low bytes
    }
    break;
  }
  return makeOwned(buf.data());
}

FailureOr<Attribute> Importer::attribute(onnx::AttributeProto &a, Location loc) {
  switch (a.type()) {
  case onnx::AttributeProto::INT: return Attribute(b.getI64IntegerAttr(a.i()));
  case onnx::AttributeProto::FLOAT: return Attribute(b.getF32FloatAttr(a.f()));
  case onnx::AttributeProto::STRING: return Attribute(b.getStringAttr(a.s()));
  case onnx::AttributeProto::INTS:
    return Attribute(b.getDenseI64ArrayAttr(SmallVector<int64_t>(a.ints().begin(), a.ints().end())));
  case onnx::AttributeProto::FLOATS:
    return Attribute(b.getDenseF32ArrayAttr(SmallVector<float>(a.floats().begin(), a.floats().end())));
  case onnx::AttributeProto::STRINGS: {
    SmallVector<Attribute> s;
    for (const auto &x : a.strings())
      s.push_back(b.getStringAttr(x));
    return Attribute(b.getArrayAttr(s));
  }
  case onnx::AttributeProto::TENSOR: {
    auto t = tensorAttr(*a.mutable_t(), loc);
    if (failed(t))
      return failure();
    return Attribute(*t);
  }
  default:
    emitError(loc) << "attribute '" << a.name() << "' has unsupported type "
                   << onnx::AttributeProto::AttributeType_Name(a.type());
    return failure();
  }
}

FailureOr<Type> Importer::valueType(const onnx::ValueInfoProto &v, SmallVectorImpl<Attribute> &dimNames) {
  if (!v.type().has_tensor_type()) {
    error("value '" + v.name() + "' is not a tensor (sequences, maps and optionals are unsupported)");
    return failure();
  }
  const auto &tt = v.type().tensor_type();
  auto et = elementType(tt.elem_type(), "value '" + v.name() + "'");
  if (failed(et))
    return failure();
  if (!tt.has_shape())
    return Type(UnrankedTensorType::get(*et));
  SmallVector<int64_t> dims;
  int i = 0;
  for (const auto &d : tt.shape().dim()) {
    if (d.has_dim_value() && d.dim_value() >= 0) {
      dims.push_back(d.dim_value());
      dimNames.push_back(b.getStringAttr(""));
    } else {
      dims.push_back(ShapedType::kDynamic);
      std::string name = d.has_dim_param() && !d.dim_param().empty() ? d.dim_param()
                                                                      : v.name() + "." + std::to_string(i);
      dimNames.push_back(b.getStringAttr(name));
    }
    ++i;
  }
  return Type(RankedTensorType::get(dims, *et));
}

OwningOpRef<ModuleOp> Importer::runFile() {
  // Stream the file into the protobuf rather than mmapping it: the parsed message then holds the only copy of
  // inline weights, and each is moved into its blob (and released) below, so peak memory stays near one copy.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error("cannot read model: cannot open: " + std::string(std::strerror(errno)));
    return nullptr;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    error("cannot read model: not a regular file");
    return nullptr;
  }
  if (static_cast<uint64_t>(st.st_size) > INT32_MAX) {
    ::close(fd);
    error("model protobuf is over 2 GB; store the weights as external data");
    return nullptr;
  }
  onnx::ModelProto model;
  google::protobuf::io::FileInputStream raw(fd);
  google::protobuf::io::CodedInputStream in(&raw);
  in.SetTotalBytesLimit(INT32_MAX);
  bool ok = model.ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
  ::close(fd);
  return ok ? build(model) : parseFailed();
}

OwningOpRef<ModuleOp> Importer::runBuffer(ArrayRef<char> bytes) {
  if (bytes.size() > INT32_MAX) {
    error("model protobuf is over 2 GB; store the weights as external data");
    return nullptr;
  }
  onnx::ModelProto model;
  bool ok = model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  return ok ? build(model) : parseFailed();
}

OwningOpRef<ModuleOp> Importer::parseFailed() {
  error("not a valid ONNX model (protobuf parse failed; truncated or corrupt file?)");
  return nullptr;
}

OwningOpRef<ModuleOp> Importer::build(onnx::ModelProto &model) {
  if (!model.has_graph()) {
    error("model has no graph");
    return nullptr;
  }
  int64_t opset = -1;
  for (const auto &o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx")
      opset = o.version();
  if (opset < 1 || opset > kMaxOnnxOpset) {
    error("unsupported opset " + Twine(opset) + " for domain ai.onnx (qopt imports opsets up to " +
          Twine(kMaxOnnxOpset) + "; " + Twine(kMinOnnxOpset) + " to " + Twine(kMaxOnnxOpset) +
          " fully, older versions op by op)");
    return nullptr;
  }

  auto loc = FileLineColLoc::get(ctx, path, 0, 0);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  SmallVector<NamedAttribute> meta;
  for (const auto &p : model.metadata_props())
    meta.push_back(b.getNamedAttr(p.key(), b.getStringAttr(p.value())));
  (*module)->setAttr("nn.metadata", b.getDictionaryAttr(meta));
  (*module)->setAttr("nn.opset", b.getI64IntegerAttr(opset));

  onnx::GraphProto &g = *model.mutable_graph();
  std::unordered_map<std::string, Value> values;
  std::unordered_map<std::string, int> initIndex;
  for (int i = 0; i < g.initializer_size(); ++i)
    initIndex[g.initializer(i).name()] = i;

  SmallVector<Type> argTypes;
  SmallVector<DictionaryAttr> argAttrs;
  SmallVector<std::string> argNames;
  for (const auto &in : g.input()) {
    if (initIndex.count(in.name()))
      continue; // an input with an initializer is a constant (IR version < 4 style)
    SmallVector<Attribute> dimNames;
    auto t = valueType(in, dimNames);
    if (failed(t))
      return nullptr;
    argTypes.push_back(*t);
    argAttrs.push_back(b.getDictionaryAttr({b.getNamedAttr("nn.name", b.getStringAttr(in.name())),
                                            b.getNamedAttr("nn.dims", b.getArrayAttr(dimNames))}));
    argNames.push_back(in.name());
  }
  SmallVector<Type> resultTypes;
  SmallVector<DictionaryAttr> resultAttrs;
  // Hosts bind inputs and fetch outputs by these names, as C strings.
  std::set<std::string> outputNames;
  for (const auto &v : g.input())
    if (v.name().find('\0') != std::string::npos) {
      error("a graph input's name holds a NUL byte");
      return nullptr;
    }
  for (const auto &out : g.output()) {
    if (out.name().find('\0') != std::string::npos) {
      error("a graph output's name holds a NUL byte");
      return nullptr;
    }
    if (!outputNames.insert(out.name()).second) {
      error("graph output '" + out.name() + "' is listed twice");
      return nullptr;
    }
    SmallVector<Attribute> dimNames;
    auto t = valueType(out, dimNames);
    if (failed(t))
      return nullptr;
    resultTypes.push_back(*t);
    resultAttrs.push_back(b.getDictionaryAttr({b.getNamedAttr("nn.name", b.getStringAttr(out.name()))}));
  }
  b.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(b, loc, "main", b.getFunctionType(argTypes, resultTypes));
  func.setAllArgAttrs(argAttrs);
  func.setAllResultAttrs(resultAttrs);
  Block *entry = func.addEntryBlock();
  for (size_t i = 0; i < argNames.size(); ++i) {
    if (!values.emplace(argNames[i], entry->getArgument(i)).second) {
      error("graph input '" + argNames[i] + "' is listed twice");
      return nullptr;
    }
    entry->getArgument(i).setLoc(NameLoc::get(b.getStringAttr(argNames[i])));
  }
  b.setInsertionPointToEnd(entry);

  // ONNX graphs are in SSA form: a name defined twice is a damaged or hostile file, not a redefinition.
  auto defineOnce = [&](const std::string &name, Value v, Location where) {
    if (!values.emplace(name, v).second) {
      emitError(where) << "value '" << name << "' is defined twice (the graph is not in SSA form)";
      return false;
    }
    return true;
  };
  for (auto &init : *g.mutable_initializer()) {
    auto iloc = NameLoc::get(b.getStringAttr(init.name()));
    auto attr = tensorAttr(init, iloc);
    if (failed(attr))
      return nullptr;
    if (!defineOnce(init.name(), nn::ConstantOp::create(b, iloc, *attr, b.getStringAttr(init.name())), iloc))
      return nullptr;
  }
  Value none;
  auto unknown = nn::UnknownType::get(ctx);
  for (int ni = 0; ni < g.node_size(); ++ni) {
    onnx::NodeProto &node = *g.mutable_node(ni);
    std::string nodeName = node.name().empty() ? node.op_type() + "_" + std::to_string(ni) : node.name();
    Location nloc = NameLoc::get(b.getStringAttr(nodeName));
    SmallVector<Value> operands;
    for (const auto &in : node.input()) {
      if (in.empty()) {
        if (!none)
          none = nn::NoneOp::create(b, loc);
        operands.push_back(none);
        continue;
      }
      auto it = values.find(in);
      if (it == values.end()) {
        emitError(nloc) << "node '" << nodeName << "' (" << node.op_type() << ") reads '" << in
                        << "', which no earlier node, input or initializer defines (graph not topologically "
                           "sorted, cyclic, or missing a value)";
        return nullptr;
      }
      operands.push_back(it->second);
    }
    SmallVector<NamedAttribute> attrs;
    for (auto &a : *node.mutable_attribute()) {
      auto attr = attribute(a, nloc);
      if (failed(attr))
        return nullptr;
      attrs.push_back(b.getNamedAttr(a.name(), *attr));
    }
    int64_t version = opset;
    if (!node.domain().empty() && node.domain() != "ai.onnx") {
      version = -1;
      for (const auto &o : model.opset_import())
        if (o.domain() == node.domain())
          version = o.version();
    }
    SmallVector<Type> types(node.output_size(), unknown);
    auto op = nn::OnnxNodeOp::create(b, nloc, types, b.getStringAttr(node.op_type()),
                                     b.getStringAttr(node.domain()), b.getI64IntegerAttr(version),
                                     b.getDictionaryAttr(attrs), operands);
    for (int k = 0; k < node.output_size(); ++k)
      if (!node.output(k).empty() && !defineOnce(node.output(k), op->getResult(k), nloc))
        return nullptr;
  }
  SmallVector<Value> results;
  for (const auto &out : g.output()) {
    auto it = values.find(out.name());
    if (it == values.end()) {
      error("graph output '" + out.name() + "' is never computed");
      return nullptr;
    }
    results.push_back(it->second);
  }
  func::ReturnOp::create(b, loc, results);
  return module;
}

FailureOr<ElementsAttr> Importer::tensorFile() {
  std::string err;
  auto file = mapFile(path, err);
  if (!file) {
    error("cannot read tensor: " + err);
    return failure();
  }
  onnx::TensorProto t;
  if (file->size > INT32_MAX || !t.ParseFromArray(file->base, static_cast<int>(file->size))) {
    error("not a valid TensorProto");
    return failure();
  }
  return tensorAttr(t, FileLineColLoc::get(ctx, path, 0, 0));
}

} // namespace

FailureOr<ElementsAttr> importOnnxTensorFile(MLIRContext *ctx, const std::string &path) {
  return Importer(ctx, path, OnnxImportOptions{}).tensorFile();
}

OwningOpRef<ModuleOp> importOnnxModel(MLIRContext *ctx, const std::string &path, const OnnxImportOptions &opts) {
  ctx->loadDialect<nn::NNDialect, func::FuncDialect>();
  return Importer(ctx, path, opts).runFile();
}

OwningOpRef<ModuleOp> importOnnxModelFromMemory(MLIRContext *ctx, ArrayRef<char> bytes, const std::string &path,
                                                const OnnxImportOptions &opts) {
  ctx->loadDialect<nn::NNDialect, func::FuncDialect>();
  return Importer(ctx, path, opts).runBuffer(bytes);
}

} // namespace qopt
