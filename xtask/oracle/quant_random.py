"""Random QLinearConv configurations through onnxruntime and `convmat run`, mismatches counted (issue 27).

Each configuration: uint8 or int8 activations, int8 weights (per tensor or per output channel, weight
zero point 0 as onnxruntime's int8 kernels take), random scales and zero points, 1-3 spatial dimensions,
random kernel, stride, padding (asymmetric), dilation, groups (depthwise too), with or without an int32
bias. The model reads the stored integers directly (graph input of the activation type) and returns
QLinearConv's output; onnxruntime 1.32 CPU (default session options) and `convmat run` each run it on
the same random input, and every output element is compared.

Not part of CI (it needs onnxruntime and a built convmat). Run:
  /work/venv/bin/python xtask/oracle/quant_random.py --convmat target/release/convmat --n 10000
Prints the counts per class (activation type, depthwise or not); with --weights7 the int8 weights are
drawn from [-64, 63] (onnxruntime's reduce_range).
"""

import argparse
import concurrent.futures as cf
import json
import pathlib
import subprocess
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ort.set_default_logger_severity(3)
TY = {"uint8": (TensorProto.UINT8, np.uint8, 0, 255), "int8": (TensorProto.INT8, np.int8, -128, 127)}


def config(rng, weights7):
    rank = int(rng.integers(1, 4))
    xt = str(rng.choice(["uint8", "int8"]))
    depthwise = rng.random() < 0.15
    groups = 1 if rng.random() < 0.5 else int(rng.integers(1, 4))
    cin_g, cout_g = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    if depthwise:
        groups, cin_g, cout_g = int(rng.integers(1, 6)), 1, 1
    k = [int(rng.integers(1, 4)) for _ in range(rank)]
    stride = [int(rng.integers(1, 4)) for _ in range(rank)]
    dil = [int(rng.integers(1, 3)) for _ in range(rank)]
    pads = [int(rng.integers(0, 3)) for _ in range(2 * rank)]
    size = [int(rng.integers(max(1, (k[d] - 1) * dil[d] + 1 - pads[d] - pads[rank + d]), 9 - 2 * rank + 3)) for d in range(rank)]
    size = [max(s, (k[d] - 1) * dil[d] + 1 - pads[d] - pads[rank + d], 1) for d, s in enumerate(size)]
    per_channel = rng.random() < 0.5
    bias = rng.random() < 0.7
    return dict(rank=rank, xt=xt, groups=groups, cin=cin_g * groups, cout=cout_g * groups, k=k, stride=stride,
                dil=dil, pads=pads, size=size, per_channel=per_channel, bias=bias, depthwise=depthwise,
                weights7=weights7)


def build(c, rng):
    xt = c["xt"]
    lo, hi = (-64, 63) if c["weights7"] else (-128, 127)
    w = rng.integers(lo, hi + 1, size=[c["cout"], c["cin"] // c["groups"]] + c["k"]).astype(np.int8)
    n_scale = c["cout"] if c["per_channel"] else 1
    log = lambda a, b, n: np.exp(rng.uniform(np.log(a), np.log(b), n)).astype(np.float32)
    xs, ws, ys = log(1e-3, 0.1, 1)[0], log(1e-3, 0.1, n_scale), log(1e-3, 1.0, 1)[0]
    t = TY[xt]
    xzp, yzp = int(rng.integers(t[2], t[3] + 1)), int(rng.integers(t[2], t[3] + 1))
    inits = [numpy_helper.from_array(np.array(xs), "xs"), numpy_helper.from_array(np.array(xzp, t[1]), "xz"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(ws if c["per_channel"] else ws.reshape(()), "ws"),
             numpy_helper.from_array(np.zeros(n_scale, np.int8) if c["per_channel"] else np.array(0, np.int8), "wz"),
             numpy_helper.from_array(np.array(ys), "ys"), numpy_helper.from_array(np.array(yzp, t[1]), "yz")]
    ins = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if c["bias"]:
        inits.append(numpy_helper.from_array(rng.integers(-(1 << 16), 1 << 16, c["cout"]).astype(np.int32), "b"))
        ins.append("b")
    node = helper.make_node("QLinearConv", ins, ["y"], group=c["groups"], strides=c["stride"], dilations=c["dil"],
                            pads=c["pads"], kernel_shape=c["k"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", t[0], [1, c["cin"]] + c["size"])],
                              [helper.make_tensor_value_info("y", t[0], None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    x = rng.integers(t[2], t[3] + 1, size=[1, c["cin"]] + c["size"]).astype(t[1])
    return model, x


def one(args):
    k, seed, convmat, tmp, weights7 = args
    rng = np.random.default_rng(seed)
    c = config(rng, weights7)
    model, x = build(c, rng)
    try:
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    except Exception as e:  # a configuration onnxruntime refuses is not counted
        return c, None, f"onnxruntime: {e}"[:200]
    d = pathlib.Path(tmp)
    onnx.save(model, d / f"m{k}.onnx")
    np.save(d / f"x{k}.npy", x)
    p = subprocess.run([convmat, "run", str(d / f"m{k}.onnx"), "--input", str(d / f"x{k}.npy"), "-o", str(d / f"y{k}.npy")],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return c, None, "convmat: " + p.stderr.strip()[:300]
    got = np.load(d / f"y{k}.npy")
    for f in (f"m{k}.onnx", f"x{k}.npy", f"y{k}.npy"):
        (d / f).unlink()
    return c, int((got.astype(np.int64) != want.astype(np.int64)).sum()), int(want.size)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convmat", default="target/release/convmat")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--weights7", action="store_true")
    a = ap.parse_args()
    stats, errors = {}, []
    with tempfile.TemporaryDirectory() as tmp, cf.ThreadPoolExecutor(a.workers) as ex:
        jobs = [(k, a.seed * 1_000_003 + k, a.convmat, tmp, a.weights7) for k in range(a.n)]
        for c, bad, total in ex.map(one, jobs):
            key = f"{c['xt']} x int8{' depthwise' if c['depthwise'] else ''}"
            s = stats.setdefault(key, dict(configs=0, mismatching_configs=0, elements=0, mismatching_elements=0, errors=0))
            if bad is None:
                s["errors"] += 1
                errors.append(total)
                continue
            s["configs"] += 1
            s["elements"] += total
            s["mismatching_elements"] += bad
            s["mismatching_configs"] += int(bad > 0)
    print(json.dumps({"onnxruntime": ort.__version__, "n": a.n, "weights7": a.weights7, "classes": stats}, indent=1))
    for e in errors[:5]:
        print("error:", e)


if __name__ == "__main__":
    main()
