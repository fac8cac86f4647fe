"""Issue 24's twelve torchvision CNNs through `convmat svd --weights MODEL.onnx --json` (the network view):
per model, how many blocks are certified to a relative width (upper - lower) / lower <= --tol, by which
method, the graph bound (graph_upper) and what it is conditional on, and the time.

Run:  /work/venv/bin/python xtask/oracle/torchvision_norms.py --convmat target/release/convmat [--size 64]
          [--tol 1e-4] [--models resnet18,googlenet] [--work /tmp/tv]

The models are those of xtask/oracle/torchvision_run.py (random weights, BatchNorm statistics randomised,
exported by torch.onnx.export, opset 17, at 1x3xSIZExSIZE).
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from torchvision_run import MODELS, build  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convmat", default="target/release/convmat")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--work", default="/tmp/convmat_torchvision")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rng = np.random.default_rng(24)
    total, met = 0, 0
    for name in args.models.split(","):
        torch.manual_seed(24)
        x = rng.standard_normal((1, 3, args.size, args.size)).astype(np.float32)
        path = os.path.join(args.work, f"{name}_{args.size}.onnx")
        if not os.path.exists(path):
            try:
                torch.onnx.export(build(name), torch.from_numpy(x), path, dynamo=False, opset_version=17,
                                  input_names=["x"], output_names=["y"])
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"{name}: torch.onnx.export failed: {str(e).splitlines()[0]}")
                continue
        t = time.perf_counter()
        p = subprocess.run([args.convmat, "svd", "--weights", path, "--json", "--tol", str(args.tol)],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t
        if p.returncode != 0:
            print(f"{name}: {p.stderr.strip()}")
            continue
        r = json.loads(p.stdout)
        layers = r["layers"]
        widths = [(b["upper"] - b["lower"]) / b["lower"] if b["upper"] is not None and b["lower"] > 0 else float("inf")
                  for b in layers]
        ok = sum(w <= args.tol for w in widths)
        total += len(layers)
        met += ok
        methods = collections.Counter(b["method"] for b in layers)
        worst = max(range(len(layers)), key=lambda i: widths[i])
        print(f"{name}: {ok}/{len(layers)} blocks within {args.tol:g} ({dict(methods)}); widest "
              f"{layers[worst]['name']} ({layers[worst]['method']}, {widths[worst]:.1e}); graph_upper "
              f"{r['graph_upper']:.4g}{' conditional on ' + str(len(r['graph_conditional_on'])) + ' ops' if r['graph_conditional_on'] else ''}; "
              f"{wall:.1f} s")
        sys.stdout.flush()
    print(f"all: {met}/{total} blocks within {args.tol:g}")


if __name__ == "__main__":
    main()
