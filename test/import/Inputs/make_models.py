"""Writes the small .onnx files the importer tests read: valid models and one of each kind of bad input.

Usage: make_models.py OUTDIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def save(model, name, check=True):
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, name))


def mlp(opset=17, op="Relu", domain=""):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    b = numpy_helper.from_array(np.array([1, -2, 0.5], dtype=np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc/MatMul"),
        helper.make_node("Add", ["h", "b"], ["a"], name="fc/Add"),
        helper.make_node(op, ["a"], ["y"], name="act", domain=domain),
    ]
    g = helper.make_graph(nodes, "mlp", [x], [y], [w, b])
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(g, opset_imports=opsets, ir_version=8)


save(mlp(), "mlp.onnx")
np.save(os.path.join(out, "mlp_x.npy"), np.array([[1, 2, 3, 4], [-1, 0, 1, 0.5]], dtype=np.float32))
xv = np.array([[1, 2, 3, 4], [-1, 0, 1, 0.5]], dtype=np.float32)
wv = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
np.save(os.path.join(out, "mlp_y_ref.npy"), np.maximum(xv @ wv + np.array([1, -2, 0.5], np.float32), 0))

save(mlp(opset=99), "opset99.onnx", check=False)
save(mlp(op="FancyOp", domain="com.example"), "custom_domain.onnx", check=False)
save(mlp(op="NoSuchOp"), "unknown_op.onnx", check=False)

data = open(os.path.join(out, "mlp.onnx"), "rb").read()
open(os.path.join(out, "truncated.onnx"), "wb").write(data[: len(data) // 2])
open(os.path.join(out, "garbage.onnx"), "wb").write(b"\xff\xfe this is not a protobuf \x00\x01" * 4)

# A string-typed input: unsupported element type.
s = helper.make_tensor_value_info("s", TensorProto.STRING, [2])
t = helper.make_tensor_value_info("t", TensorProto.STRING, [2])
save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["s"], ["t"])], "str", [s], [t]),
                       opset_imports=[helper.make_opsetid("", 17)], ir_version=8), "string_input.onnx")


def external(location, name):
    m = mlp()
    w = m.graph.initializer[0]
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for k, v in (("location", location), ("offset", "0"), ("length", "48")):
        e = w.external_data.add()
        e.key, e.value = k, v
    save(m, name, check=False)


external("missing_weights.bin", "missing_external.onnx")
external("../../etc/passwd", "traversal.onnx")

# External data that exists: the weights of mlp.onnx stored beside it.
m = mlp()
w = m.graph.initializer[0]
raw = w.raw_data
w.ClearField("raw_data")
w.data_location = TensorProto.EXTERNAL
for k, v in (("location", "ext_weights.bin"), ("offset", "0"), ("length", str(len(raw)))):
    e = w.external_data.add()
    e.key, e.value = k, v
open(os.path.join(out, "ext_weights.bin"), "wb").write(raw)
save(m, "external_ok.onnx", check=False)


# Hostile sizes and structure (docs/reliability.md).
def with_weight_dims(dims, name):
    m = mlp()
    w = m.graph.initializer[0]
    del w.dims[:]
    w.dims.extend(dims)
    save(m, name, check=False)


with_weight_dims([2 ** 40, 2 ** 40], "dims_overflow.onnx")  # 2^80 elements
with_weight_dims([-3, 4], "dims_negative.onnx")
with_weight_dims([2 ** 24, 2 ** 12], "dims_over_cap.onnx")  # 256 GiB of float32: over the 64 GiB cap


def external_kv(name, **kv):
    m = mlp()
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in [("location", "ext_weights.bin")] + list(kv.items()):
        e = w.external_data.add()
        e.key, e.value = k, v
    save(m, name, check=False)


external_kv("ext_negative_offset.onnx", offset="-8")
external_kv("ext_negative_length.onnx", length="-48")
external_kv("ext_past_end.onnx", offset="4096")
external_kv("ext_huge_offset.onnx", offset=str(2 ** 63 - 1))

# A link inside the model's directory that points outside it.
link = os.path.join(out, "escape_link.bin")
if os.path.lexists(link):
    os.remove(link)
os.symlink("/etc/passwd", link)
m = mlp()
w = m.graph.initializer[0]
w.ClearField("raw_data")
w.data_location = TensorProto.EXTERNAL
e = w.external_data.add()
e.key, e.value = "location", "escape_link.bin"
save(m, "ext_symlink.onnx", check=False)

# Two nodes that read each other's output.
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["b"], name="second"),
         helper.make_node("Identity", ["b"], ["y"], name="out")]
save(helper.make_model(helper.make_graph(nodes, "cycle", [x], [y]), opset_imports=[helper.make_opsetid("", 17)],
                       ir_version=8), "cyclic.onnx", check=False)

# 100,000 attributes on one node, and a Transpose permutation with a million entries.
m = mlp()
act = m.graph.node[2]
act.attribute.extend([helper.make_attribute("a%d" % i, i) for i in range(100000)])
save(m, "many_attributes.onnx", check=False)
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])
save(helper.make_model(helper.make_graph([helper.make_node("Transpose", ["x"], ["y"], name="t", perm=list(range(10 ** 6)))],
                                         "perm", [x], [y]), opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
     "huge_perm.onnx", check=False)

# An input of rank 40 (the runtime's limit is 16).
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1] * 40)
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1] * 40)
save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "rank", [x], [y]),
                       opset_imports=[helper.make_opsetid("", 17)], ir_version=8), "rank40.onnx", check=False)

# Two initializers with one name (ONNX graphs are SSA).
m = mlp()
m.graph.initializer.extend([numpy_helper.from_array(np.zeros(3, np.float32), "b")])
save(m, "duplicate_name.onnx", check=False)

# Nodes that break their op's schema: no input, an attribute of the wrong type, a required attribute missing.
def single(node, name, opset=17):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    save(helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", opset)],
                           ir_version=8), name, check=False)


single(helper.make_node("Flatten", [], ["y"], name="f"), "no_inputs.onnx")
single(helper.make_node("Transpose", ["x"], ["y"], name="t", perm=1), "attr_type.onnx")
single(helper.make_node("Cast", ["x"], ["y"], name="c"), "missing_attr.onnx")
single(helper.make_node("Relu", [""], ["y"], name="r"), "empty_input.onnx")
# HardSwish exists from opset 14 on.
single(helper.make_node("HardSwish", ["x"], ["y"], name="hs"), "before_its_opset.onnx", opset=12)

# A result whose shape is run-time data (ConstantOfShape of a graph input): the runtime sizes it from the input.
shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", "cols"])
fill = helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill",
                        value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.5]))
save(helper.make_model(helper.make_graph([fill], "g", [shape], [y]), opset_imports=[helper.make_opsetid("", 17)]),
     "runtime_sized.onnx")
