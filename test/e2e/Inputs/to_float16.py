"""Writes a float32 ONNX model as a float16 model (every float tensor, value type, Constant and Cast in float16:
what exporters write for `--dtype fp16`) and, for comparison, as float32 with its values rounded through float16.

    to_float16.py IN.onnx HALF.onnx ROUNDED.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper


def convert(src, dst, half):
    m = onnx.load(src)
    g = m.graph

    def tensor(t):
        a = numpy_helper.to_array(t).astype(np.float16)
        return numpy_helper.from_array(a if half else a.astype(np.float32), t.name)

    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(tensor(t))
    for n in g.node:
        for a in n.attribute:
            if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(tensor(a.t))
            if half and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    if half:
        for v in list(g.input) + list(g.output) + list(g.value_info):
            if v.type.tensor_type.elem_type == TensorProto.FLOAT:
                v.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.save(m, dst)


convert(sys.argv[1], sys.argv[2], True)
convert(sys.argv[1], sys.argv[3], False)
