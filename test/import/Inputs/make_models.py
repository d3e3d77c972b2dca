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
