"""Goldens for convmat-onnx: small ONNX models and what the oracles say they compute.

Run:  /work/venv/bin/python xtask/oracle/onnx_golden.py crates/onnx/tests/golden
      /work/venv/bin/python xtask/oracle/onnx_golden.py --resnet18 /tmp/resnet18.onnx   (README's timing model)

Writes MODEL.onnx files (onnx.helper-built single nodes covering every Conv / ConvTranspose / Pad / pool /
BatchNorm / Gemm attribute case of issue 17, and small CNNs exported with torch.onnx.export(dynamo=False)),
plus cases.json: per case the model file, the per-sample input shape, random inputs and the outputs.

Truth: onnxruntime runs every model; torch.nn.functional recomputes every case it can express (explicit
pads through F.pad, auto_pad through the ONNX formula, ConvTranspose padding by cropping the full output),
and onnx.reference is compared where its auto_pad branch is not involved. A case whose oracles disagree
stops the script. Bad-input models (for the error tests) are written under bad/.
"""

import json
import math
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OUT = sys.argv[1] if len(sys.argv) > 1 else "crates/onnx/tests/golden"
RNG = np.random.default_rng(17)
CASES = []


def rnd(*shape):
    # multiples of 1/64 so float32 sums are nearly exact
    return (RNG.integers(-64, 65, size=shape) / 64.0).astype(np.float32)


def init(name, arr, raw=True):
    return numpy_helper.from_array(arr, name) if raw else helper.make_tensor(
        name, helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape, arr.flatten().tolist())


def model(nodes, inits, in_shape, out_name="y", opset=17, in_dims=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_dims or [1, *in_shape])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="convmat-oracle")
    m.ir_version = 8
    # (no checker: the outputs are declared without shapes, as torch declares dynamic ones)
    return m


def run_ort(m, xs):
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return [s.run(None, {name: x[None]})[0][0] for x in xs]


def run_ref(m, xs):
    r = ReferenceEvaluator(m)
    return [r.run(None, {"x": x[None]})[0][0] for x in xs]


def add(name, m, in_shape, torch_fn=None, ref=True, node=None, n=2, save=None, ort_runs=True):
    xs = [rnd(*in_shape) for _ in range(n)]
    if ort_runs:
        ys = run_ort(m, xs)
    else:  # onnxruntime refuses the case (dilation with auto_pad): torch on the spec's pads is the truth
        ys = [torch_fn(torch.from_numpy(x[None]).double())[0].numpy().astype(np.float32) for x in xs]
    if torch_fn is not None:
        for x, y in zip(xs, ys):
            t = torch_fn(torch.from_numpy(x[None]).double())[0].numpy()
            assert t.shape == y.shape, (name, t.shape, y.shape)
            assert np.allclose(t, y, atol=1e-4), (name, np.abs(t - y).max())
    if ref:
        for y, r in zip(ys, run_ref(m, xs)):
            assert r.shape == y.shape and np.allclose(r, y, atol=1e-4), (name, "onnx.reference disagrees")
    path = os.path.join(OUT, f"{name}.onnx")
    if save:
        save(m, path)
    else:
        onnx.save(m, path)
    record(name, node, in_shape, xs, ys)


def record(name, node, in_shape, xs, ys):
    CASES.append({
        "name": name,
        "file": f"{name}.onnx",
        "node": node,
        "input_shape": list(in_shape),
        "inputs": [x.flatten().astype(float).tolist() for x in xs],
        "outputs": [y.flatten().astype(float).tolist() for y in ys],
        "output_shape": list(ys[0].shape),
    })


def t64(a):
    return torch.from_numpy(np.asarray(a)).double()


def onnx_pads_to_fpad(pads):
    """ONNX pads (begins then ends, spatial) -> F.pad's (last dim first) tuple."""
    r = len(pads) // 2
    out = []
    for d in reversed(range(r)):
        out += [pads[d], pads[r + d]]
    return tuple(out)


def same_pads(inp, k, s, d, upper):
    pads_b, pads_e = [], []
    for n, kk, ss, dd in zip(inp, k, s, d):
        o = -(-n // ss)
        total = max(0, (o - 1) * ss + dd * (kk - 1) + 1 - n)
        small = total // 2
        b, e = (small, total - small) if upper else (total - small, small)
        pads_b.append(b)
        pads_e.append(e)
    return pads_b + pads_e


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONVT = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def weights_and_attrs(w_shape, cout, k, strides, dil, group):
    """Seeded weight and bias (in that order), the dilation (1 by default) and the attributes a Conv and a
    ConvTranspose node share."""
    w = rnd(*w_shape)
    b = rnd(cout)
    dil = dil or [1] * len(k)
    return w, b, dil, dict(kernel_shape=list(k), strides=strides, dilations=dil, group=group)


def conv_case(name, cin, cout, k, inp, strides=None, pads=None, dil=None, group=1, auto_pad=None, bias=True,
              pad_mode_before=None, opset=17):
    r = len(inp)
    strides = strides or [1] * r
    w, b, dil, attrs = weights_and_attrs((cout, cin // group, *k), cout, k, strides, dil, group)
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    elif pads is not None:
        attrs["pads"] = pads
    inputs = ["x", "W"] + (["B"] if bias else [])
    inits = [init("W", w)] + ([init("B", b)] if bias else [])
    nodes = [helper.make_node("Conv", inputs, ["y"], name="conv", **attrs)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        tp = same_pads(inp, k, strides, dil, auto_pad == "SAME_UPPER")
    elif auto_pad == "VALID" or pads is None:
        tp = [0] * (2 * r)
    else:
        tp = pads

    def f(x):
        x = F.pad(x, onnx_pads_to_fpad(tp))
        return CONV[r](x, t64(w), t64(b) if bias else None, stride=strides, dilation=dil, groups=group)

    m = model(nodes, inits, [cin, *inp], opset=opset)
    ort_runs = not (auto_pad in ("SAME_UPPER", "SAME_LOWER") and any(d != 1 for d in dil))
    add(name, m, [cin, *inp], f, ref=auto_pad is None, node="conv", ort_runs=ort_runs)


def convt_case(name, cin, cout, k, inp, strides, pads=None, dil=None, group=1, output_padding=None,
               output_shape=None, auto_pad=None):
    r = len(inp)
    w, b, dil, attrs = weights_and_attrs((cin, cout // group, *k), cout, k, strides, dil, group)
    op = output_padding or [0] * r
    if output_padding:
        attrs["output_padding"] = output_padding
    if output_shape:
        attrs["output_shape"] = output_shape
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    if pads:
        attrs["pads"] = pads
    nodes = [helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], name="convT", **attrs)]
    # the ONNX spec's pads (total split; SAME_UPPER puts the odd pixel at the end)
    full = [strides[d] * (inp[d] - 1) + op[d] + dil[d] * (k[d] - 1) + 1 for d in range(r)]
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = output_shape or [inp[d] * strides[d] for d in range(r)]
        tot = [full[d] - target[d] for d in range(r)]
        if auto_pad == "SAME_UPPER":
            pb = [t // 2 for t in tot]
        else:
            pb = [t - t // 2 for t in tot]
        pe = [t - b_ for t, b_ in zip(tot, pb)]
    else:
        p = pads or [0] * (2 * r)
        pb, pe = p[:r], p[r:]

    def f(x):
        y = CONVT[r](x, t64(w), None, stride=strides, dilation=dil, groups=group)
        y = F.pad(y, onnx_pads_to_fpad([0] * r + op))  # output_padding: zeros at the end (bias below)
        sl = [slice(None), slice(None)] + [slice(pb[d], y.shape[2 + d] - pe[d]) for d in range(r)]
        return y[tuple(sl)] + t64(b).reshape(1, -1, *([1] * r))

    m = model(nodes, [init("W", w), init("B", b)], [cin, *inp])
    # onnx.reference 1.23 fails on ConvTranspose with C_in != C_out (a reshape bug): torch cross-checks
    add(name, m, [cin, *inp], f, ref=False, node="convT")


def pad_conv_case(name, mode, pads, conv_pads=None, opset=17):
    cin, cout, k, inp = 2, 3, [3, 3], [5, 6]
    w, b = rnd(cout, cin, *k), rnd(cout)
    pads_t = numpy_helper.from_array(np.array([0, 0, *pads[:2], 0, 0, *pads[2:]], dtype=np.int64), "pads")
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad", mode=mode),
        helper.make_node("Conv", ["xp", "W", "B"], ["y"], name="conv", kernel_shape=k,
                         pads=conv_pads or [0, 0, 0, 0]),
    ]
    tmode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode]

    def f(x):
        x = F.pad(x, onnx_pads_to_fpad(pads), mode=tmode)
        x = F.pad(x, onnx_pads_to_fpad(conv_pads or [0] * 4))
        return F.conv2d(x, t64(w), t64(b))

    m = model(nodes, [init("W", w), init("B", b), pads_t], [cin, *inp], opset=opset)
    add(name, m, [cin, *inp], f, ref=mode != "wrap", node="conv")


def pool_case(name, op, inp, **attrs):
    nodes = [helper.make_node(op, ["x"], ["y"], name="pool", **attrs)]
    m = model(nodes, [], inp, opset=19)
    r = len(inp) - 1
    if op == "GlobalAveragePool":
        f = lambda x: x.mean(dim=tuple(range(2, 2 + r)), keepdim=True)  # noqa: E731
    else:
        k = attrs["kernel_shape"]
        p = attrs.get("pads", [0] * (2 * r))
        assert p[:r] == p[r:], "torch pools pad symmetrically"
        f = lambda x: F.avg_pool2d(x, k, attrs.get("strides", k), p[:r], ceil_mode=bool(attrs.get("ceil_mode", 0)),  # noqa: E731
                                    count_include_pad=bool(attrs.get("count_include_pad", 0)))
    add(name, m, inp, f, ref=False, node="pool")


def main():
    os.makedirs(os.path.join(OUT, "bad"), exist_ok=True)
    # --- Conv: every attribute ---
    conv_case("conv2d_pads_asym", 2, 3, [3, 3], [6, 7], strides=[2, 1], pads=[1, 0, 2, 1])
    conv_case("conv2d_same_upper_odd", 2, 3, [3, 3], [6, 7], strides=[2, 2], auto_pad="SAME_UPPER")
    conv_case("conv2d_same_lower_odd", 2, 3, [3, 3], [6, 7], strides=[2, 2], auto_pad="SAME_LOWER")
    conv_case("conv2d_dilation_same_upper", 2, 2, [2, 3], [7, 6], dil=[3, 2], auto_pad="SAME_UPPER")
    conv_case("conv2d_dilation_same_lower", 2, 2, [2, 3], [7, 6], dil=[3, 2], auto_pad="SAME_LOWER")
    conv_case("conv2d_valid_stride", 2, 3, [3, 2], [7, 6], strides=[2, 3], auto_pad="VALID")
    conv_case("conv2d_group", 4, 6, [3, 3], [5, 5], group=2, pads=[1, 1, 1, 1])
    conv_case("conv2d_depthwise", 3, 6, [3, 3], [5, 6], group=3, pads=[0, 1, 2, 1], strides=[1, 2])
    conv_case("conv2d_nobias", 2, 3, [2, 2], [4, 5], bias=False)
    conv_case("conv1d_dilation_pads", 2, 3, [3], [9], pads=[2, 1], dil=[2], strides=[2])
    conv_case("conv3d_stride_pads", 2, 2, [2, 3, 2], [4, 5, 4], strides=[2, 1, 2], pads=[1, 0, 0, 0, 1, 1])
    # --- ConvTranspose ---
    convt_case("convT2d_pads_outpad", 2, 3, [3, 3], [3, 4], strides=[2, 2], pads=[1, 0, 0, 1],
               output_padding=[1, 1])
    convt_case("convT2d_output_shape", 2, 3, [3, 3], [3, 4], strides=[2, 2], output_shape=[6, 8])
    convt_case("convT2d_same_upper", 2, 2, [3, 3], [3, 4], strides=[2, 2], auto_pad="SAME_UPPER")
    convt_case("convT2d_same_lower", 2, 2, [3, 3], [3, 4], strides=[2, 2], auto_pad="SAME_LOWER")
    convt_case("convT2d_group_dilation", 4, 6, [2, 3], [3, 3], strides=[1, 2], dil=[2, 1], group=2, pads=[0, 1, 1, 0])
    convt_case("convT1d", 2, 2, [4], [5], strides=[3], pads=[1, 2])
    # --- Pad folded into the next Conv ---
    pad_conv_case("pad_reflect_conv", "reflect", [1, 2, 2, 1])
    pad_conv_case("pad_edge_conv", "edge", [2, 1, 0, 2])
    pad_conv_case("pad_wrap_conv", "wrap", [1, 1, 2, 0], opset=19)
    pad_conv_case("pad_constant_conv", "constant", [1, 0, 0, 2], conv_pads=[1, 1, 0, 1])
    # --- pools ---
    pool_case("avgpool_include_pad", "AveragePool", [2, 6, 7], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
              count_include_pad=1)
    pool_case("avgpool_exclude_pad_ceil", "AveragePool", [2, 7, 6], kernel_shape=[3, 2], strides=[2, 2],
              pads=[1, 1, 1, 1], ceil_mode=1)
    pool_case("globalavgpool", "GlobalAveragePool", [3, 4, 5])
    # --- BatchNorm alone, Gemm + BatchNorm, typed initializers ---
    c = 3
    bn = [rnd(c), rnd(c), rnd(c), (np.abs(rnd(c)) + 0.5).astype(np.float32)]
    bn_inits = [init(n, a) for n, a in zip(["g", "b", "m", "v"], bn)]
    m = model([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], name="bn", epsilon=1e-3)],
              bn_inits, [c, 4, 3])
    add("batchnorm_alone", m, [c, 4, 3], lambda x: F.batch_norm(x, *[t64(a) for a in (bn[2], bn[3], bn[0], bn[1])],
                                                                 eps=1e-3))
    wg, bg = rnd(5, 12), rnd(5)
    bn5 = [rnd(5), rnd(5), rnd(5), (np.abs(rnd(5)) + 0.5).astype(np.float32)]
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "Wg", "Bg"], ["g"], name="gemm", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("BatchNormalization", ["g", "g5", "b5", "m5", "v5"], ["h"], name="bn1d"),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
    ]
    inits = [init("Wg", wg), init("Bg", bg)] + [init(n, a) for n, a in zip(["g5", "b5", "m5", "v5"], bn5)]
    m = model(nodes, inits, [3, 2, 2])

    def gemm_bn(x):
        y = 0.5 * x.flatten(1) @ t64(wg).T + 2.0 * t64(bg)
        y = F.batch_norm(y, t64(bn5[2]), t64(bn5[3]), t64(bn5[0]), t64(bn5[1]), eps=1e-5)
        return torch.relu(y)
    add("gemm_batchnorm", m, [3, 2, 2], gemm_bn)
    # weights stored as float_data (typed), float16, bfloat16 and double, each Cast to float
    w = rnd(3, 2, 2, 2)
    b = rnd(3)
    nodes = [
        helper.make_node("Cast", ["W16"], ["W"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["Bd"], ["B"], to=TensorProto.FLOAT),
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 0, 0]),
        helper.make_node("Cast", ["Mbf"], ["M"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["c", "M"], ["d"], name="mul"),
        helper.make_node("Add", ["d", "A"], ["y"], name="add"),
    ]
    mul = rnd(3, 1, 1)
    addc = rnd(1, 1, 1)
    bf = helper.make_tensor("Mbf", TensorProto.BFLOAT16, mul.shape, mul.flatten().tolist())  # int32_data bit patterns
    inits = [init("W16", w.astype(np.float16), raw=False), init("Bd", b.astype(np.float64), raw=False), bf,
             init("A", addc, raw=False)]
    m = model(nodes, inits, [2, 4, 4])
    add("typed_initializers", m, [2, 4, 4],
        lambda x: F.conv2d(F.pad(x, (1, 0, 1, 0)), t64(w), t64(b)) * t64(mul) + t64(addc), ref=False)
    # external data beside the model
    we, be = rnd(4, 2, 3, 3), rnd(4)
    m = model([helper.make_node("Conv", ["x", "W", "B"], ["y"], name="conv", pads=[1, 1, 1, 1])],
              [init("W", we), init("B", be)], [2, 5, 5])

    def save_external(m, path):
        # onnx.save appends to an existing data file: start from none, so a re-run writes the same bytes
        if os.path.exists(os.path.join(OUT, "external_data.onnx.data")):
            os.remove(os.path.join(OUT, "external_data.onnx.data"))
        onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location="external_data.onnx.data", size_threshold=0)
    add("external_data", m, [2, 5, 5], lambda x: F.conv2d(x, t64(we), t64(be), padding=1), save=save_external)
    torch_models()
    bad_models()
    torch_circular()
    residual()
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"generator": "xtask/oracle/onnx_golden.py", "onnx": onnx.__version__,
                   "onnxruntime": ort.__version__, "torch": torch.__version__, "cases": CASES}, f)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
    print(f"{len(CASES)} cases, {total} bytes in {OUT}")


class SmallCnn(torch.nn.Module):
    """A VNN-COMP-style MNIST-size CNN: Conv+BN+ReLU, MaxPool, reflect-padded Conv+BN+ReLU, flatten, Linear+BN1d+ReLU, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.conv2 = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, padding_mode="reflect")
        self.bn2 = torch.nn.BatchNorm2d(6)
        self.fc1 = torch.nn.Linear(6 * 3 * 3, 16)
        self.bn3 = torch.nn.BatchNorm1d(16)
        self.fc2 = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 2)
        x = torch.relu(self.bn2(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = torch.relu(self.bn3(self.fc1(x)))
        return self.fc2(x)


class TransposeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, stride=2, padding=1, padding_mode="replicate")
        self.up = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        self.bn = torch.nn.BatchNorm2d(2)
        self.pool = torch.nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)

    def forward(self, x):
        return self.pool(self.bn(self.up(torch.tanh(self.conv(x)))))


def randomize_bn(m):
    g = torch.Generator().manual_seed(5)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.3)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.weight.data.copy_(torch.randn(mod.num_features, generator=g))
            mod.bias.data.copy_(torch.randn(mod.num_features, generator=g) * 0.1)


def torch_models():
    torch.manual_seed(17)
    for name, net, shape in [("torch_cnn", SmallCnn(), [1, 12, 12]), ("torch_transpose", TransposeNet(), [2, 7, 7])]:
        randomize_bn(net)
        net.eval()
        path = os.path.join(OUT, f"{name}.onnx")
        torch.onnx.export(net, torch.randn(1, *shape), path, dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        m = onnx.load(path)
        xs = [rnd(*shape) for _ in range(3)]
        ys = run_ort(m, xs)
        with torch.no_grad():
            for x, y in zip(xs, ys):
                t = net(torch.from_numpy(x[None]))[0].numpy()
                assert np.allclose(t, y, atol=1e-4), (name, np.abs(t - y).max())
        record(name, None, shape, xs, ys)


class CircularPads(torch.nn.Module):
    """Asymmetric circular F.pad (exported as 2-input Concats) folded into a strided Conv, then one that stays
    a block of its own (a Tanh between it and the Conv), then a circular Conv2d."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(2, 3, 3, stride=2)
        self.conv2 = torch.nn.Conv2d(3, 2, 2)
        self.conv3 = torch.nn.Conv2d(2, 2, 3, padding=(2, 1), padding_mode="circular")

    def forward(self, x):
        x = torch.relu(self.conv1(F.pad(x, (0, 2, 1, 0), mode="circular")))
        x = self.conv2(torch.tanh(F.pad(x, (1, 1, 2, 0), mode="circular")))
        return self.conv3(x)


def torch_circular():
    """torch.onnx.export writes padding_mode='circular' as Slice + Concat on the activation (one axis after
    the other; attributes before opset 10): convmat folds the pattern into the Conv. torch is the truth,
    onnxruntime agrees; the last model breaks the pattern (head and tail swapped) and must be refused."""
    torch.manual_seed(18)
    rng = np.random.default_rng(18)
    for name, net, shape, opset, node in [
        ("torch_circular1d", torch.nn.Conv1d(2, 3, 3, padding=1, padding_mode="circular"), [2, 9], 17, "/Conv"),
        ("torch_circular2d", torch.nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="circular"), [2, 6, 7], 17,
         "/Conv"),
        ("torch_circular2d_opset9", torch.nn.Conv2d(2, 3, (3, 2), stride=(1, 2), padding=(2, 1),
                                                    padding_mode="circular"), [2, 5, 6], 9, "/Conv"),
        ("torch_circular3d", torch.nn.Conv3d(1, 2, 3, padding=1, padding_mode="circular"), [1, 4, 4, 5], 17,
         "/Conv"),
        ("torch_circular_pads", CircularPads(), [2, 7, 8], 17, None),
    ]:
        net.eval()
        path = os.path.join(OUT, f"{name}.onnx")
        torch.onnx.export(net, torch.randn(1, *shape), path, dynamo=False, input_names=["x"], output_names=["y"],
                          opset_version=opset)
        m = onnx.load(path)
        assert any(n.op_type == "Slice" for n in m.graph.node) and not any(n.op_type == "Pad" for n in m.graph.node)
        xs = [(rng.integers(-64, 65, size=shape) / 64.0).astype(np.float32) for _ in range(2)]
        with torch.no_grad():
            ys = [net(torch.from_numpy(x[None]))[0].numpy() for x in xs]
        for y, o in zip(ys, run_ort(m, xs)):
            assert np.allclose(y, o, atol=1e-4), (name, np.abs(y - o).max())
        record(name, node, shape, xs, ys)
    # near misses of the pattern, each refused naming its first Slice ('head'): head and tail swapped
    # (Concat([x[..., :1], x, x[..., -1:]])), a tail that stops short of the end, a step of 2, a Concat on
    # another axis than the Slices' (whole-axis Slices: a tiling)
    c = [helper.make_node("Constant", [], [n], name=n, value=numpy_helper.from_array(np.array(v, np.int64)))
         for n, v in [("zero", [0]), ("one", [1]), ("two", [2]), ("minus1", [-1]), ("minus2", [-2]),
                      ("big", [2**62]), ("ax", [3]), ("five", [5]), ("minus5", [-5]), ("ax2", [2])]]
    for label, head, tail, axis, order in [
        ("concat_not_circular", ["zero", "one", "ax"], ["minus1", "big", "ax"], 3, ["h", "x", "t"]),
        ("concat_short_tail", ["zero", "one", "ax"], ["minus2", "minus1", "ax"], 3, ["t", "x", "h"]),
        ("concat_step2", ["zero", "two", "ax", "two"], ["minus1", "big", "ax"], 3, ["t", "x", "h"]),
        ("concat_other_axis", ["zero", "five", "ax2"], ["minus5", "big", "ax2"], 3, ["t", "x", "h"]),
    ]:
        nodes = c + [helper.make_node("Slice", ["x", *head], ["h"], name="head"),
                     helper.make_node("Slice", ["x", *tail], ["t"], name="tail"),
                     helper.make_node("Concat", order, ["p"], name="concat", axis=axis),
                     helper.make_node("Conv", ["p", "W"], ["y"], name="conv")]
        m = model(nodes, [init("W", np.ones((1, 1, 3, 3), np.float32))], [1, 5, 5])
        run_ort(m, [rnd(1, 5, 5)])  # a valid model, only not circular padding
        onnx.save(m, os.path.join(OUT, "bad", f"{label}.onnx"))


class Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(2, 2, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + x)


def residual():
    """A ResNet-style block (Add of the Conv's output and the block's input): `convmat onnx` lists the Add as a
    junction naming both operands; `export` (chains only) refuses it by name."""
    torch.manual_seed(19)
    torch.onnx.export(Residual().eval(), torch.randn(1, 2, 5, 5), os.path.join(OUT, "bad", "residual.onnx"),
                      dynamo=False, input_names=["x"], output_names=["y"])


def bad_models():
    bad = os.path.join(OUT, "bad")
    w = rnd(2, 1, 3, 3)
    conv = helper.make_node("Conv", ["x", "W"], ["y"], name="conv")
    # a node that reads an initializer the file does not hold
    g = helper.make_graph([conv], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(bad, "missing_initializer.onnx"))
    # dynamic height and width
    m = model([conv], [init("W", w)], [1, 5, 5], in_dims=["N", 1, "H", "W"])
    onnx.save(m, os.path.join(bad, "dynamic_shape.onnx"))
    # an op convmat has no affine form for
    nodes = [conv, helper.make_node("Hardmax", ["y"], ["z"], name="the_hardmax", axis=1)]
    m = model(nodes, [init("W", w)], [1, 5, 5], out_name="z")
    onnx.save(m, os.path.join(bad, "unsupported_op.onnx"))
    # external data outside the model's folder, and at an absolute path
    for label, loc in [("external_dotdot", "../outside.data"), ("external_absolute", "/etc/hostname")]:
        m = model([conv], [init("W", w)], [1, 5, 5])
        t = m.graph.initializer[0]
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", loc
        e = t.external_data.add()
        e.key, e.value = "length", str(w.nbytes)
        with open(os.path.join(bad, f"{label}.onnx"), "wb") as f:
            f.write(m.SerializeToString())


if __name__ == "__main__" and sys.argv[1:2] != ["--resnet18"]:
    main()


def resnet18(path):
    """A ResNet-18 (torchvision's layout, 11.7 M parameters, ~45 MB of float32 weights) exported to `path`,
    for the listing-speed measurement in README (not a golden: too large to commit)."""

    class Block(torch.nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = torch.nn.BatchNorm2d(cout)
            self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = torch.nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    layers = [torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
              torch.nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(512, 1000)]
    net = torch.nn.Sequential(*layers).eval()
    torch.onnx.export(net, torch.randn(1, 3, 224, 224), path, dynamo=False, do_constant_folding=False)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--resnet18":
    resnet18(sys.argv[2])
