//===- OnnxSchema.cpp - check an nn.onnx_node against ONNX's operator schemas --===//
//
// Uses the schema registry of the ONNX library qopt links (onnx/defs), the same definitions onnx.checker and
// ONNX Runtime check nodes against. Compiled with exceptions, as ONNX's headers require; nothing here throws.
//
//===----------------------------------------------------------------------===//
#include "OnnxSchema.h"

#include "qopt/Dialect/NN/NNDialect.h"

#include <onnx/defs/schema.h>

#include <algorithm>

using namespace mlir;

namespace qopt {

namespace {

const char *typeName(onnx::AttributeProto::AttributeType t) {
  switch (t) {
  case onnx::AttributeProto::FLOAT: return "a float";
  case onnx::AttributeProto::INT: return "an int";
  case onnx::AttributeProto::STRING: return "a string";
  case onnx::AttributeProto::TENSOR: return "a tensor";
  case onnx::AttributeProto::INTS: return "a list of ints";
  case onnx::AttributeProto::FLOATS: return "a list of floats";
  case onnx::AttributeProto::STRINGS: return "a list of strings";
  default: return "of an unsupported kind";
  }
}

// Whether an attribute as the importer stored it (nn.onnx_node's documented encoding) has the schema's type.
bool hasType(Attribute a, onnx::AttributeProto::AttributeType t) {
  switch (t) {
  case onnx::AttributeProto::FLOAT: return isa<FloatAttr>(a);
  case onnx::AttributeProto::INT: return isa<IntegerAttr>(a);
  case onnx::AttributeProto::STRING: return isa<StringAttr>(a);
  case onnx::AttributeProto::TENSOR: return isa<ElementsAttr>(a);
  case onnx::AttributeProto::INTS: return isa<DenseI64ArrayAttr>(a);
  case onnx::AttributeProto::FLOATS: return isa<DenseF32ArrayAttr>(a);
  case onnx::AttributeProto::STRINGS: return isa<ArrayAttr>(a);
  default: return false;
  }
}

int latestKnownOpset() {
  const auto &m = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto it = m.find(onnx::ONNX_DOMAIN);
  return it == m.end() ? 0 : it->second.second;
}

} // namespace

LogicalResult verifyOnnxSchema(nn::OnnxNodeOp node) {
  if (!node.getDomain().empty() && node.getDomain() != "ai.onnx")
    return success();
  const std::string op = node.getOpType().str();
  const int version = static_cast<int>(node.getVersion());
  const onnx::OpSchema *s = onnx::OpSchemaRegistry::Schema(op, version, onnx::ONNX_DOMAIN);
  auto fail = [&](const Twine &what) {
    return node.emitError() << "ONNX " << op << " (opset " << version << "): " << what;
  };
  if (!s) {
    // An op that ONNX only defines from a later opset on is not this model's op, whatever the handler table
    // (which may map the name for every version) would do with it; an op ONNX never defined is left to the
    // table's unknown-op error.
    for (int64_t later = std::max<int64_t>(int64_t(version) + 1, 1); later <= latestKnownOpset(); ++later)
      if (onnx::OpSchemaRegistry::Schema(op, static_cast<int>(later), onnx::ONNX_DOMAIN))
        return fail("the op does not exist in this opset (ONNX added it in opset " + Twine(later) + ")");
    return success();
  }
  const bool exact = version <= latestKnownOpset();
  const int nin = static_cast<int>(node.getNumOperands()), nout = static_cast<int>(node.getNumResults());
  if (nin < s->min_input() || (exact && nin > s->max_input()))
    return fail("has " + Twine(nin) + " inputs; the op takes " + Twine(s->min_input()) +
                (s->max_input() == s->min_input() ? Twine("") : " to " + Twine(s->max_input())));
  if (nout < s->min_output() || (exact && nout > s->max_output()))
    return fail("has " + Twine(nout) + " outputs; the op has " + Twine(s->min_output()) +
                (s->max_output() == s->min_output() ? Twine("") : " to " + Twine(s->max_output())));
  if (!exact)
    return success();
  const auto &formal = s->inputs();
  for (int i = 0; i < nin && !formal.empty(); ++i) {
    const auto &p = formal[std::min<size_t>(i, formal.size() - 1)];
    if (p.GetOption() == onnx::OpSchema::Single && isa<NoneType>(node.getOperand(i).getType()))
      return fail("required input " + Twine(i) + " ('" + p.GetName() + "') is empty");
  }
  const auto &defs = s->attributes();
  for (NamedAttribute a : node.getAttrs()) {
    auto it = defs.find(a.getName().str());
    if (it == defs.end())
      return fail("unknown attribute '" + a.getName().getValue() + "'");
    if (!hasType(a.getValue(), it->second.type))
      return fail("attribute '" + a.getName().getValue() + "' must be " + typeName(it->second.type));
  }
  for (const auto &[name, def] : defs)
    if (def.required && !node.getAttrs().get(name))
      return fail("missing required attribute '" + name + "'");
  return success();
}

} // namespace qopt
