"""`convmat export` against a plain write(2) of as many bytes, side by side in one run (issue 17).

usage: python xtask/oracle/export_ratio.py CONVMAT [--rounds 5]

Exports a CIFAR-size CNN from torch (Conv 3->32 + BN + ReLU, Conv 32->64 stride 2 + BN + ReLU, two
Conv 64->64 + ReLU on 16x16, Flatten, Linear to 10; eval mode, seed 0) to a temporary folder, then times
`CONVMAT export cifar.onnx -o out` (whole process) and one write(2) of the files' total size.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import torch
import torch.nn as nn

from whole_process import plain_write, rm  # the same floor as the build benchmark's

ap = argparse.ArgumentParser()
ap.add_argument("convmat")
ap.add_argument("--rounds", type=int, default=5)
a = ap.parse_args()
d = tempfile.mkdtemp(prefix="convmat-export-", dir=os.getcwd())
try:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * 16 * 16, 10)).eval()
    model = os.path.join(d, "cifar.onnx")
    torch.onnx.export(net, torch.randn(1, 3, 32, 32), model, dynamo=False)
    out, plain = os.path.join(d, "out"), os.path.join(d, "plain.bin")
    ex, wr = [], []
    for _ in range(a.rounds):
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([a.convmat, "export", model, "-o", out], check=True, capture_output=True)
        ex.append(time.perf_counter() - t)
        total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
        rm(plain)
        wr.append(plain_write(plain, b"\1" * total))
    e, w = statistics.median(ex), statistics.median(wr)
    print(f"{total / 1e6:.0f} MB in {len(os.listdir(out)) - 1} blocks: export {e:.3f} s (min {min(ex):.3f}), "
          f"plain write {w:.3f} s, ratio {e / w:.2f} (medians of {a.rounds})")
finally:
    shutil.rmtree(d, ignore_errors=True)
