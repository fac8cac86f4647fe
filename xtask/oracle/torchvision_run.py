"""Issue 24's twelve torchvision CNNs run by `convmat run` against onnxruntime, tensor by tensor.

Run:  /work/venv/bin/python xtask/oracle/torchvision_run.py --convmat target/release/convmat [--size 64]
          [--models resnet18,googlenet] [--work /tmp/tv]

Each model (random weights, BatchNorm statistics randomised, eval mode) is exported by
`torch.onnx.export(dynamo=False, opset 17)` at 1x3xSIZExSIZE, run by onnxruntime (CPU, float32) with every
tensor a node writes as an extra output, and by `convmat run --trace` (float32). Printed per model: the
maximum relative error (max |convmat - ort| / max |ort|) at the output and over every traced tensor both
have (with the worst one), the time of `convmat run` without trace (its own report: the graph read, blocks
built and applied) and onnxruntime's run (session made beforehand; median of 3), or the error convmat
gives (an unsupported op, named with its node). Needs torch, torchvision, onnx, onnxruntime.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from onnx import helper

MODELS = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1", "vgg11_bn",
          "densenet121", "shufflenet_v2_x0_5", "regnet_y_400mf", "convnext_tiny", "googlenet", "mnasnet0_5"]


def build(name):
    kw = {"weights": None}
    if name == "googlenet":
        kw.update(aux_logits=False, init_weights=True)
    m = getattr(torchvision.models, name)(**kw)
    g = torch.Generator().manual_seed(24)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.2)
    return m.eval()


def rel(a, b):
    return float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convmat", default="target/release/convmat")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--work", default="/tmp/convmat_torchvision")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnxruntime {ort.__version__}, "
          f"input 1x3x{args.size}x{args.size}, float32")
    rng = np.random.default_rng(24)
    for name in args.models.split(","):
        torch.manual_seed(24)
        x = rng.standard_normal((1, 3, args.size, args.size)).astype(np.float32)
        path = os.path.join(args.work, f"{name}_{args.size}.onnx")
        try:
            torch.onnx.export(build(name), torch.from_numpy(x), path, dynamo=False, opset_version=17,
                              input_names=["x"], output_names=["y"])
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"{name}: torch.onnx.export failed: {str(e).splitlines()[0]}")
            continue
        model = onnx.load(path)
        names = []
        for node in model.graph.node:
            for o in node.output:
                if o and o not in names and node.op_type != "Constant":
                    names.append(o)
        have = {o.name for o in model.graph.output}
        for n in names:
            if n not in have:
                model.graph.output.append(helper.make_empty_tensor_value_info(n))
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        outs = dict(zip(names, sess.run(names, {"x": x})))
        plain = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        times = []
        for _ in range(3):
            t = time.perf_counter()
            plain.run(None, {"x": x})
            times.append(time.perf_counter() - t)
        t_ort = sorted(times)[1]
        xin = os.path.join(args.work, f"{name}_x.npy")
        np.save(xin, x)
        trace = os.path.join(args.work, f"{name}_trace")
        subprocess.run(["rm", "-rf", trace])
        p = subprocess.run([args.convmat, "run", path, "--input", xin, "--trace", trace], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{name}: convmat run: {p.stderr.strip()}")
            continue
        listing = json.load(open(os.path.join(trace, "trace.json")))
        worst, worst_name, n = 0.0, "", 0
        for r in listing:
            ref = outs.get(r["tensor"])
            if ref is None or ref.dtype != np.float32:
                continue
            got = np.load(os.path.join(trace, r["file"]))
            if got.shape != ref.shape:
                print(f"  {name}: tensor {r['tensor']} has shape {got.shape}, onnxruntime {ref.shape}")
                continue
            e = rel(got, ref)
            n += 1
            if e > worst:
                worst, worst_name = e, r["tensor"]
        yout = os.path.join(args.work, f"{name}_y.npy")
        p = subprocess.run([args.convmat, "run", path, "--input", xin, "-o", yout], capture_output=True, text=True)
        m = re.search(r"in ([0-9.]+) s", p.stderr)
        t_cm = float(m.group(1)) if m else float("nan")
        e_out = rel(np.load(yout), outs["y"])
        print(f"{name}: output rel err {e_out:.2e}; {n} traced tensors, max rel err {worst:.2e} ({worst_name}); "
              f"convmat run {t_cm:.3f} s, onnxruntime {t_ort:.3f} s (ratio {t_cm / t_ort:.1f})")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
