"""Goldens for the nonlinearities convmat's graph reader evaluates by ONNX semantics (issue 24): one
single-node model per op (Selu, Celu, Mish, ThresholdedRelu, Sign, Log, Round, Floor, Ceil, LpPool,
GlobalLpPool, LRN; non-default attributes where the op has them), run by onnxruntime (CPU, float32).

Run:  /work/venv/bin/python xtask/oracle/nonlinear_ops_golden.py crates/onnx/tests/golden/ops

Writes NAME.onnx per case, ops.npz (per case NAME_x and NAME_y) and ops.json (cases, shapes, versions).
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

OUT = sys.argv[1] if len(sys.argv) > 1 else "crates/onnx/tests/golden/ops"
SHAPE = [2, 4, 5, 5]


def cases():
    # (name, op, attributes, opset)
    return [
        ("selu", "Selu", {}, 17),
        ("selu_attrs", "Selu", {"alpha": 1.2, "gamma": 0.7}, 17),
        ("celu", "Celu", {"alpha": 0.6}, 17),
        ("mish", "Mish", {}, 18),
        ("thresholded_relu", "ThresholdedRelu", {"alpha": 0.3}, 17),
        ("sign", "Sign", {}, 17),
        ("log", "Log", {}, 17),
        ("round", "Round", {}, 17),
        ("floor", "Floor", {}, 17),
        ("ceil", "Ceil", {}, 17),
        ("lppool", "LpPool", {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1], "p": 3}, 18),
        ("lppool_p1_dilated", "LpPool", {"kernel_shape": [2, 2], "dilations": [2, 1], "p": 1}, 18),
        ("global_lppool", "GlobalLpPool", {"p": 2}, 17),
        ("lrn", "LRN", {"size": 3, "alpha": 0.02, "beta": 0.6, "bias": 1.5}, 17),
        ("lrn_defaults", "LRN", {"size": 5}, 17),  # onnxruntime refuses even sizes
    ]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(24)
    arrays, listing = {}, {}
    for name, op, attrs, opset in cases():
        x = (rng.standard_normal(SHAPE) * 2).astype(np.float32)
        if op == "Log":
            x = np.abs(x) + 0.05
        if op == "Round":
            x[0, 0, 0, :] = [0.5, 1.5, 2.5, -0.5, -1.5]
        if op == "Sign":
            x[0, 0, 0, 0] = 0.0
        node = helper.make_node(op, ["x"], ["y"], name=name, **attrs)
        g = helper.make_graph([node], name, [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, SHAPE)],
                              [helper.make_empty_tensor_value_info("y")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        onnx.save(m, os.path.join(OUT, f"{name}.onnx"))
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        (y,) = sess.run(["y"], {"x": x})
        arrays[f"{name}_x"], arrays[f"{name}_y"] = x, y
        listing[name] = {"op": op, "attributes": attrs, "opset": opset, "x": list(x.shape), "y": list(y.shape)}
        print(name, op, y.shape)
    np.savez_compressed(os.path.join(OUT, "ops.npz"), **arrays)
    with open(os.path.join(OUT, "ops.json"), "w") as f:
        json.dump({"generator": "xtask/oracle/nonlinear_ops_golden.py", "onnx": onnx.__version__,
                   "onnxruntime": ort.__version__, "numpy": np.__version__, "cases": listing}, f, indent=1)


if __name__ == "__main__":
    main()
