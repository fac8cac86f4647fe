"""The published certified upper bound for zero-padded layers next to convmat's certified interval.

Delattre, Barthelemy & Allauzen 2024 ("Spectral norm of convolutional layers with circular and zero
paddings", arXiv 2402.00240) bound the norm of a zero-padded Conv2d from its kernel alone: Gram
iteration on the kernel (K <- K * K as a convolution, rescaled to stay finite), then the largest row
sum of |K| raised to 2^-n. Their code (lip4conv, `compute_spectral_rescaling_conv`, 4 iterations
by default) is re-derived here from the paper in a few lines of torch; no code of theirs is used.
The bound ignores the input size, so it can be no tighter than the kernel symbol's maximum.

For each layer this prints the Delattre-2024 bound at 4 iterations (the published default; the kernel
grows to 33x33 and a fifth iteration would cost 1.2e12 multiply-adds on the goal layer), its time, convmat's certified [lower, upper] from `convmat svd --norm --json` (with its time), and
how far each upper bound lies above convmat's lower bound (a lower bound of the true norm).

Layers: the issue-18 goal layer (64->64 3x3 padding 1 on 56x56, benches/data/w64_rng0.npy, NumPy
default_rng(0) standard normal / 24) and lowrank_peer.py's 16->16 3x3 padding 1 on 32x32.
Usage: python delattre_peer.py CONVMAT_BINARY WORKDIR [TOL]   (TOL defaults to 1e-6)"""
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from lowrank_peer import xorshift

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def delattre2024(w, n_iter):
    """Gram iteration on the kernel: an upper bound of every zero-padded layer's norm with kernel w."""
    k = torch.as_tensor(w, dtype=torch.float64)
    if k.shape[1] > k.shape[0]:
        k = k.transpose(0, 1)
    log_scale = 0.0
    for _ in range(n_iter):
        norm = k.norm()
        k = k / norm
        log_scale = 2.0 * (log_scale + math.log(norm.item()))
        k = F.conv2d(k, k, padding=k.shape[-1] - 1)
    power = 2.0 ** -n_iter
    rows = k.abs().sum(dim=(1, 2, 3)).pow(power) * math.exp(log_scale * power)
    return rows.max().item()


def convmat_interval(binary, wpath, shape, tol):
    start = time.perf_counter()
    out = subprocess.run([binary, "svd", "--weight", wpath, "--input-shape", shape, "--padding", "1",
                          "--norm", "--tol", str(tol), "--json"], check=True, capture_output=True,
                         text=True).stdout
    seconds = time.perf_counter() - start
    result = json.loads(out)
    return result["lower"], result["upper"], seconds


def main():
    binary, work = sys.argv[1], sys.argv[2]
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-6
    os.makedirs(work, exist_ok=True)
    small = os.path.join(work, "W16.npy")
    np.save(small, xorshift(16 * 16 * 9).reshape(16, 16, 3, 3))
    layers = [
        ("64->64 3x3 p1 on 56x56 (goal layer)", os.path.join(ROOT, "benches", "data", "w64_rng0.npy"),
         "64,56,56"),
        ("16->16 3x3 p1 on 32x32", small, "16,32,32"),
    ]
    torch.set_num_threads(2)
    for name, wpath, shape in layers:
        w = np.load(wpath)
        lower, upper, seconds = convmat_interval(binary, wpath, shape, tol)
        print(f"{name}")
        print(f"  convmat certified   [{lower:.9f}, {upper:.9f}]  {seconds:7.3f} s (whole process)")
        start = time.perf_counter()
        bound = delattre2024(w, 4)
        took = time.perf_counter() - start
        print(f"  Delattre-2024 n=4   {bound:.9f}  {took:7.3f} s  "
              f"{(bound - lower) / lower:.1e} above convmat's lower bound")


if __name__ == "__main__":
    main()
