"""Golden quantized ONNX models for convmat-onnx's quantized layers (issue 27), independent of convmat.

Builds small quantized graphs with onnx.helper (fixed seeds) and writes, under
crates/onnx/tests/golden/quant/:
- the models: ``qlinearconv_u8.onnx`` (QuantizeLinear -> QLinearConv with per-channel int8 weights,
  uint8 activations, int32 bias, pads and stride -> DequantizeLinear), ``qlinearconv_s8.onnx`` (int8
  activations, per-tensor weights with groups and dilation), ``convinteger.onnx`` (uint8 graph input,
  weight zero point 3, input zero point 100, groups 2, stride 2), ``qdq_conv.onnx`` (the QDQ pattern
  DequantizeLinear(w) -> Conv <- DequantizeLinear(QuantizeLinear(x)) -> QuantizeLinear, int8 per-channel
  weights, an int32 bias) and ``qlinearmatmul.onnx`` (per-column weight scales);
- ``quant_range.json``: for every quantized node, the exact accumulator extrema per output channel over
  the input type's whole range, by NumPy brute force (the layer's matrix built column by column from
  the direct convolution of ``range_golden.py``; the extremum of each row is the sum of the products its
  coefficients prefer), each channel's maximum cross-checked by onnx.reference: the box vertex that
  reaches it run through a ConvInteger / MatMulInteger twin of the node, plus the bias, gives it.
  (Not by onnxruntime: on a CPU without AVX-512 VNNI its uint8 x int8 kernels sum pairs of products in
  saturating int16 (vpmaddubsw), so at such vertices it differs from the exact sum; measured here on the
  matmul case: 53272 for 57480.)

Run: /work/venv/bin/python xtask/oracle/quant_golden.py   (numpy, onnx, onnxruntime)
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from range_golden import conv  # noqa: E402  the direct convolution, explicitly padded

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "onnx" / "tests" / "golden" / "quant"
TYPES = {"uint8": (TensorProto.UINT8, np.uint8, 0, 255), "int8": (TensorProto.INT8, np.int8, -128, 127),
         "int32": (TensorProto.INT32, np.int32, -2**31, 2**31 - 1)}


def init(name, array, dtype):
    return numpy_helper.from_array(np.asarray(array).astype(TYPES[dtype][1] if dtype in TYPES else dtype), name)


def scalar(name, v, dtype=np.float32):
    return numpy_helper.from_array(np.array(v, dtype=dtype), name)


def save(model, name):
    onnx.checker.check_model(model)
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(model, OUT / name)
    return model


def model_of(nodes, inits, inp, out, opset=13, extra_opsets=()):
    graph = helper.make_graph(nodes, "g", [inp], [out], inits)
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    return helper.make_model(graph, opset_imports=ops, ir_version=8)


def qlinearconv(name, x_type, x_zp, w_type, w_shape, w_scales, w_zp, attrs, in_shape, seed, bias=True):
    """QuantizeLinear -> QLinearConv -> DequantizeLinear on a float input."""
    rng = np.random.default_rng(seed)
    lo, hi = TYPES[w_type][2], TYPES[w_type][3]
    if (x_type, w_type) == ("uint8", "int8"):
        # 7-bit weights (onnxruntime's reduce_range): its uint8 x int8 kernel on CPUs without VNNI sums
        # pairs of products in saturating int16, which full-range weights can overflow
        lo, hi = -64, 63
    w = rng.integers(lo, hi + 1, size=w_shape)
    c_out = w_shape[0]
    b = rng.integers(-5000, 5000, size=c_out) if bias else None
    x_scale, y_scale, y_zp = 0.02, 0.05 + 0.01 * seed, (128 if x_type == "uint8" else 5)
    inits = [scalar("x_scale", x_scale), init("x_zp", x_zp, x_type), init("w", w, w_type),
             numpy_helper.from_array(np.array(w_scales, dtype=np.float32), "w_scale"),
             init("w_zp", np.array(w_zp), w_type), scalar("y_scale", y_scale), init("y_zp", y_zp, x_type)]
    ins = ["xq", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"]
    if bias:
        inits.append(init("B", b, "int32"))
        ins.append("B")
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="quant"),
             helper.make_node("QLinearConv", ins, ["yq"], name="qconv", **attrs),
             helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zp"], ["y"], name="dequant")]
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"] + in_shape)
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])
    return save(model_of(nodes, inits, inp, out), name)


def convinteger():
    rng = np.random.default_rng(7)
    w = rng.integers(0, 256, size=(4, 2, 3, 3))
    inits = [init("w", w, "uint8"), init("x_zp", 100, "uint8"), init("w_zp", 3, "uint8")]
    nodes = [helper.make_node("ConvInteger", ["x", "w", "x_zp", "w_zp"], ["acc"], name="convint", group=2,
                              strides=[2, 2], pads=[1, 0, 1, 0])]
    inp = helper.make_tensor_value_info("x", TensorProto.UINT8, ["n", 4, 7, 6])
    out = helper.make_tensor_value_info("acc", TensorProto.INT32, ["n", "c", "h", "w"])
    return save(model_of(nodes, inits, inp, out, opset=13), "convinteger.onnx")


def qdq_conv():
    rng = np.random.default_rng(8)
    # 7-bit weights: onnxruntime turns int8 QDQ activations into uint8 (+128) for its x86 kernels, whose
    # uint8 x int8 products are summed in pairs in saturating int16 on CPUs without VNNI
    w = rng.integers(-64, 64, size=(3, 2, 3, 3))
    w_scale = np.array([0.01, 0.02, 0.015], dtype=np.float32)
    x_scale = np.float32(0.03)
    b = rng.integers(-3000, 3000, size=3)
    inits = [scalar("x_scale", x_scale), init("x_zp", -3, "int8"), init("w", w, "int8"),
             numpy_helper.from_array(w_scale, "w_scale"), init("w_zp", np.zeros(3), "int8"),
             init("B", b, "int32"), numpy_helper.from_array(x_scale * w_scale, "b_scale"),
             scalar("y_scale", 0.07), init("y_zp", 10, "uint8")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q_x"),
             helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xd"], name="dq_x"),
             helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["wd"], name="dq_w", axis=0),
             helper.make_node("DequantizeLinear", ["B", "b_scale"], ["bd"], name="dq_b", axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["yf"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["yf", "y_scale", "y_zp"], ["yq"], name="q_y"),
             helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zp"], ["y"], name="dq_y")]
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 5, 5])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])
    return save(model_of(nodes, inits, inp, out), "qdq_conv.onnx")


def qlinearmatmul():
    rng = np.random.default_rng(9)
    b = rng.integers(-64, 64, size=(6, 4))  # 7-bit, as qlinearconv(): no int16 pair saturation
    inits = [scalar("a_scale", 0.04), init("a_zp", 120, "uint8"), init("b", b, "int8"),
             numpy_helper.from_array(np.array([0.01, 0.03, 0.02, 0.05], dtype=np.float32), "b_scale"),
             init("b_zp", np.zeros(4), "int8"), scalar("y_scale", 0.2), init("y_zp", 128, "uint8")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "a_scale", "a_zp"], ["xq"], name="quant"),
             helper.make_node("QLinearMatMul", ["xq", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"],
                              ["yq"], name="qmatmul"),
             helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zp"], ["y"], name="dequant")]
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 6])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "m", "k"])
    return save(model_of(nodes, inits, inp, out), "qlinearmatmul.onnx")


def bad_models():
    """Models with one bad quantization parameter each (not checked by onnx.checker: several are invalid
    by the spec), and the fragment convmat's one-line error must name."""
    base = onnx.load(OUT / "qlinearconv_u8.onnx")
    cases = {
        "bad_scale_zero.onnx": ("w_scale", np.array([0.01, 0.0, 0.02, 0.01], dtype=np.float32), "is 0 (value 1)"),
        "bad_scale_negative.onnx": ("y_scale", np.array(-0.5, dtype=np.float32), "is -0.5"),
        "bad_scale_nan.onnx": ("x_scale", np.array(np.nan, dtype=np.float32), "is NaN"),
        "bad_zero_point.onnx": ("w_zp", np.array(300, dtype=np.int16), "zero point 300 (value 0) is outside int8"),
        "bad_bias_int64.onnx": ("B", np.arange(4, dtype=np.int64), "bias 'B' is int64"),
        "bad_axis_length.onnx": ("w_scale", np.array([0.01, 0.02, 0.03], dtype=np.float32), "has 3 values"),
    }
    expected = {}
    (OUT / "bad").mkdir(exist_ok=True)
    for name, (tensor, value, fragment) in cases.items():
        m = onnx.ModelProto()
        m.CopyFrom(base)
        for k, t in enumerate(m.graph.initializer):
            if t.name == tensor:
                m.graph.initializer[k].CopyFrom(numpy_helper.from_array(value, tensor))
        onnx.save(m, OUT / "bad" / name)
        expected[name] = ["qconv", fragment]
    return expected


def weights_of(model, names):
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [inits.get(n) for n in names]


def brute_range(w, w_zp, x_lo, x_hi, x_zp, bias, in_shape, stride, pad, dil, groups):
    """Per channel exact extrema of sum((x - x_zp)(w - w_zp[c])) + bias over x in [x_lo, x_hi], with the
    vertex reaching each channel's maximum."""
    w = w.astype(np.int64) - np.asarray(w_zp, dtype=np.int64).reshape(-1, *[1] * (w.ndim - 1))
    n = int(np.prod(in_shape))
    cols = [conv(np.eye(n, dtype=np.int64)[j].reshape(in_shape), w, stride, pad, dil, groups, "zeros")
            for j in range(n)]
    a = np.stack([c.reshape(-1) for c in cols], axis=1)
    c_out = w.shape[0]
    per = a.shape[0] // c_out
    b = np.repeat(np.asarray(bias if bias is not None else np.zeros(c_out), dtype=np.int64), per)
    lo, hi = x_lo - x_zp, x_hi - x_zp
    row_max = np.maximum(a * lo, a * hi).sum(axis=1) + b
    row_min = np.minimum(a * lo, a * hi).sum(axis=1) + b
    out = []
    for c in range(c_out):
        r = c * per + int(np.argmax(row_max[c * per:(c + 1) * per]))
        vertex = np.where(a[r] * hi >= a[r] * lo, x_hi, x_lo).reshape(in_shape)
        out.append(dict(min=int(row_min[c * per:(c + 1) * per].min()), max=int(row_max[r]), max_row=r,
                        vertex=vertex))
    return out, a.shape[0] // c_out


def ort_twin_max(w, w_type, w_zp, x_type, x_zp, attrs, in_shape, vertex, row, bias):
    """The accumulator at `row` for input `vertex`, by onnx.reference's ConvInteger (per-tensor weight zero
    point: it is 0 wherever these models quantize per channel)."""
    zp = int(np.asarray(w_zp).reshape(-1)[0])
    inits = [init("w", w, w_type), init("x_zp", x_zp, x_type), init("w_zp", zp, w_type)]
    node = helper.make_node("ConvInteger", ["x", "w", "x_zp", "w_zp"], ["acc"], **attrs)
    inp = helper.make_tensor_value_info("x", TYPES[x_type][0], [1] + list(in_shape))
    out = helper.make_tensor_value_info("acc", TensorProto.INT32, ["n", "c", "h", "w"])
    m = model_of([node], inits, inp, out)
    acc = ReferenceEvaluator(m).run(None, {"x": vertex[None].astype(TYPES[x_type][1])})[0].reshape(-1)
    per = acc.size // w.shape[0]
    return int(acc[row]) + (int(bias[row // per]) if bias is not None else 0)


def conv_case(model_name, node, x_type, x_zp, w_names, w_type, attrs, in_shape, bias_name):
    model = onnx.load(OUT / model_name)
    w, w_zp, b = weights_of(model, [w_names[0], w_names[1], bias_name])
    rank = len(in_shape) - 1
    stride = attrs.get("strides", [1] * rank)
    pads = attrs.get("pads", [0] * 2 * rank)
    assert pads[:rank] == pads[rank:], "symmetric pads only in this oracle"
    dil = attrs.get("dilations", [1] * rank)
    lo, hi = TYPES[x_type][2], TYPES[x_type][3]
    chans, _ = brute_range(w, w_zp, lo, hi, x_zp, b, in_shape, stride, pads[:rank], dil, attrs.get("group", 1))
    for c in chans:
        got = ort_twin_max(w, w_type, w_zp, x_type, x_zp, attrs, in_shape, c["vertex"], c["max_row"], b)
        assert got == c["max"], (model_name, got, c["max"])
    return dict(model=model_name, node=node, input_min=lo, input_max=hi, input_zero_point=int(x_zp),
                expected_min=[c["min"] for c in chans], expected_max=[c["max"] for c in chans])


def matmul_case():
    model = onnx.load(OUT / "qlinearmatmul.onnx")
    b, = weights_of(model, ["b"])
    k, n = b.shape
    # x @ B of one row: Conv1d(K, N, 1) on (K, 1)
    w = b.T.reshape(n, k, 1)
    chans, _ = brute_range(w, np.zeros(n), 0, 255, 120, None, [k, 1], [1], [0], [1], 1)
    for c in chans:
        s = ReferenceEvaluator(model_of(
            [helper.make_node("MatMulInteger", ["x", "b", "a_zp"], ["acc"])],
            [init("b", b, "int8"), init("a_zp", 120, "uint8")],
            helper.make_tensor_value_info("x", TensorProto.UINT8, [1, k]),
            helper.make_tensor_value_info("acc", TensorProto.INT32, ["m", "k"])))
        acc = s.run(None, {"x": c["vertex"].reshape(1, k).astype(np.uint8)})[0].reshape(-1)
        assert int(acc[c["max_row"]]) == c["max"], (acc, c)
    return dict(model="qlinearmatmul.onnx", node="qmatmul", input_min=0, input_max=255, input_zero_point=120,
                expected_min=[c["min"] for c in chans], expected_max=[c["max"] for c in chans])


class Net(torch_module := __import__("torch").nn.Module):
    """A tiny CNN with a residual block, ending in a 1x1 convolution classifier (no Gemm)."""

    def __init__(self):
        super().__init__()
        nn = __import__("torch").nn
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv4 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Conv2d(16, 10, 1)

    def forward(self, x):
        torch = __import__("torch")
        x = torch.relu(self.conv1(x))
        x = torch.relu(x + self.conv3(torch.relu(self.conv2(x))))
        x = torch.relu(self.conv4(self.pool(x)))
        return torch.flatten(self.head(self.gap(x)), 1)


def torch_quantized():
    """The CNN exported by torch.onnx.export and quantized by onnxruntime.quantization.quantize_static:
    QDQ with per-channel weights and int8 activations, and QOperator with uint8 activations, both with
    reduce_range (7-bit weights: onnxruntime's uint8 x int8 kernels on CPUs without VNNI sum pairs of
    products in saturating int16, and it runs int8 QDQ activations as uint8)."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    torch.manual_seed(0)
    net = Net().eval()
    rng = np.random.default_rng(10)
    calib = [rng.normal(0, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(8)]
    tmp = OUT / "tiny_cnn_float.onnx"
    torch.onnx.export(net, torch.from_numpy(calib[0]), str(tmp), dynamo=False, input_names=["x"],
                      output_names=["y"], opset_version=13,
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": c} for c in calib])

        def get_next(self):
            return next(self.it, None)

    made = []
    for name, fmt, act, per_channel, reduce in [("tiny_cnn_qdq.onnx", QuantFormat.QDQ, QuantType.QInt8, True, True),
                                                ("tiny_cnn_qop.onnx", QuantFormat.QOperator, QuantType.QUInt8, False, True)]:
        quantize_static(str(tmp), str(OUT / name), Reader(), quant_format=fmt, activation_type=act,
                        weight_type=QuantType.QInt8, per_channel=per_channel, reduce_range=reduce)
        made.append(name)
    tmp.unlink()
    return made


def with_integer_outputs(model):
    """The model with every integer tensor a node writes added to the graph outputs (for a trace)."""
    m = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in list(m.graph.value_info) + list(m.graph.output)}
    outs = {o.name for o in m.graph.output}
    names = []
    for node in m.graph.node:
        for o in node.output:
            if types.get(o) in (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32) and o not in outs:
                m.graph.output.append(helper.make_tensor_value_info(o, types[o], None))
                names.append(o)
    return m, names


def run_golden(name, x):
    """onnxruntime's output of `name` on `x` (default session options: QDQ fused) and every integer tensor
    as a trace, in one npz beside the model."""
    model = onnx.load(OUT / name)
    session = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {model.graph.input[0].name: x}
    plain = session(model).run(None, feed)[0]
    arrays = {"x": x, "y": plain}
    typed, names = with_integer_outputs(model)
    types = {o.name: o.type.tensor_type.elem_type for o in typed.graph.output}
    skipped = []
    for n in names:
        # a tensor made a graph output can stop onnxruntime's QDQ fusion (and change the result): such
        # tensors are left out of the trace
        m = onnx.ModelProto()
        m.CopyFrom(model)
        m.graph.output.append(helper.make_tensor_value_info(n, types[n], None))
        got = session(m).run(None, feed)
        if np.array_equal(got[0], plain):
            arrays["trace/" + n] = got[1]
        else:
            skipped.append(n)
    np.savez(OUT / name.replace(".onnx", ".npz"), **arrays)
    traced = [n for n in names if n not in skipped]
    return dict(model=name, traced=traced, not_traced=skipped)


def run_goldens(torch_models):
    rng = np.random.default_rng(11)
    out = []
    out.append(run_golden("qlinearconv_u8.onnx", rng.normal(0, 1.5, (2, 3, 6, 5)).astype(np.float32)))
    out.append(run_golden("qlinearconv_s8.onnx", rng.normal(0, 1.5, (2, 2, 5, 4)).astype(np.float32)))
    out.append(run_golden("convinteger.onnx", rng.integers(0, 256, (2, 4, 7, 6)).astype(np.uint8)))
    out.append(run_golden("qdq_conv.onnx", rng.normal(0, 2, (2, 2, 5, 5)).astype(np.float32)))
    out.append(run_golden("qlinearmatmul.onnx", rng.normal(0, 3, (2, 3, 6)).astype(np.float32)))
    for name in torch_models:
        out.append(run_golden(name, rng.normal(0, 1, (2, 3, 16, 16)).astype(np.float32)))
    return out


def main():
    rng = np.random.default_rng(0)
    qlinearconv("qlinearconv_u8.onnx", "uint8", 128, "int8", (4, 3, 3, 3), rng.uniform(0.005, 0.02, 4), np.zeros(4),
                dict(pads=[1, 1, 1, 1], strides=[2, 1]), [3, 6, 5], seed=1)
    qlinearconv("qlinearconv_s8.onnx", "int8", -7, "int8", (4, 1, 2, 2), [0.013], 0,
                dict(group=2, dilations=[2, 1], pads=[0, 1, 0, 1]), [2, 5, 4], seed=2)
    convinteger()
    qdq_conv()
    qlinearmatmul()
    cases = [
        conv_case("qlinearconv_u8.onnx", "qconv", "uint8", 128, ["w", "w_zp"], "int8",
                  dict(pads=[1, 1, 1, 1], strides=[2, 1]), [3, 6, 5], "B"),
        conv_case("qlinearconv_s8.onnx", "qconv", "int8", -7, ["w", "w_zp"], "int8",
                  dict(group=2, dilations=[2, 1], pads=[0, 1, 0, 1]), [2, 5, 4], "B"),
        conv_case("convinteger.onnx", "convint", "uint8", 100, ["w", "w_zp"], "uint8",
                  dict(group=2, strides=[2, 2], pads=[1, 0, 1, 0]), [4, 7, 6], None),
        conv_case("qdq_conv.onnx", "conv", "int8", -3, ["w", "w_zp"], "int8", dict(pads=[1, 1, 1, 1]), [2, 5, 5], "B"),
        matmul_case(),
    ]
    bad = bad_models()
    runs = run_goldens(torch_quantized())
    doc = {"bad": bad, "runs": runs, "oracle": f"xtask/oracle/quant_golden.py: NumPy {np.__version__} brute force, each maximum checked "
                     f"by onnx.reference (ConvInteger / MatMulInteger twins), onnx {onnx.__version__}; runs: onnxruntime "
                     f"{ort.__version__} CPU, default session options; torch {__import__('torch').__version__}",
           "cases": cases}
    (OUT / "quant_range.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({len(cases)} range cases)")


if __name__ == "__main__":
    main()
