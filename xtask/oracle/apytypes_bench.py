"""The apytypes peer of benches/fixed.rs: q1.7 x q1.7 full-precision im2col GEMM of a 64->64, 3x3,
padding 1, 32x32 layer on a batch of 8 (302 M MACs). Prints 'apytypes seconds gmacs'."""
import time

import numpy as np
import torch
import torch.nn.functional as F
from apytypes import APyFixedArray, OverflowMode, QuantizationMode

rng = np.random.default_rng(0)
w = rng.uniform(-1, 1, (64, 64 * 9))
x = rng.uniform(-1, 1, (8, 64, 32, 32))
cols = F.unfold(torch.from_numpy(x), 3, padding=1).numpy()  # (8, 576, 1024)
cols = np.concatenate(list(cols), axis=1)                     # (576, 8192): one GEMM for the batch


def q17(a):
    return APyFixedArray.from_float(a, int_bits=8, frac_bits=52).cast(
        int_bits=1, frac_bits=7, quantization=QuantizationMode.RND, overflow=OverflowMode.SAT)


W, X = q17(w), q17(cols)
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    Y = W @ X
    best = min(best, time.perf_counter() - t0)
macs = 64 * 576 * 8192
print(f"apytypes {best:.4f} {macs / best / 1e9:.2f}")
