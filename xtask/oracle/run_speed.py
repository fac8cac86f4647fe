"""`convmat run` against onnxruntime on resnet18, mobilenet_v2 and convnext_tiny at 1x3x224x224, side by
side in one run (issue 24's speed goal).

Run:  /work/venv/bin/python xtask/oracle/run_speed.py target/release/convmat [--work /tmp/convmat_speed]

Each model is exported as `torchvision_run.py` does (random weights, BatchNorm statistics randomised).
Per model, 5 alternating rounds of: onnxruntime (CPU, float32) session created and run once, then
`session.run` (median of 3); `convmat run` as a whole process, and its own report (graph read, blocks
built and applied). Printed: the medians and the ratios. Needs torch, torchvision, onnx, onnxruntime.
"""

import argparse
import os
import re
import statistics
import subprocess
import time

import numpy as np
import onnxruntime as ort
import torch

from torchvision_run import build

MODELS = ["resnet18", "mobilenet_v2", "convnext_tiny"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("convmat")
    ap.add_argument("--work", default="/tmp/convmat_speed")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    print(f"onnxruntime {ort.__version__} CPU; {args.convmat}; 1x3x224x224 float32; median of 5 alternating rounds")
    rng = np.random.default_rng(24)
    for m in MODELS:
        path, xp = os.path.join(args.work, f"{m}_224.onnx"), os.path.join(args.work, f"{m}_x.npy")
        x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        if not os.path.exists(path):
            torch.manual_seed(24)
            torch.onnx.export(build(m), torch.from_numpy(x), path, dynamo=False, opset_version=17,
                              input_names=["x"], output_names=["y"])
        np.save(xp, x)
        ort_run, ort_all, cm_self, cm_wall = [], [], [], []
        for _ in range(5):
            t0 = time.perf_counter()
            s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            s.run(None, {"x": x})
            ort_all.append(time.perf_counter() - t0)
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                s.run(None, {"x": x})
                runs.append(time.perf_counter() - t)
            ort_run.append(statistics.median(runs))
            t = time.perf_counter()
            p = subprocess.run([args.convmat, "run", path, "--input", xp], capture_output=True, text=True, check=True)
            cm_wall.append(time.perf_counter() - t)
            cm_self.append(float(re.search(r"in ([0-9.]+) s", p.stderr).group(1)))
        med = statistics.median
        print(f"{m}: convmat run {med(cm_self):.3f} s (own report) vs session.run {med(ort_run):.3f} s -> "
              f"{med(cm_self) / med(ort_run):.1f}x; whole process {med(cm_wall):.3f} s vs session created + run "
              f"{med(ort_all):.3f} s -> {med(cm_wall) / med(ort_all):.1f}x", flush=True)


if __name__ == "__main__":
    main()
