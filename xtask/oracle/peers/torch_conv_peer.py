"""What the framework itself takes for the convolution: torch.nn.functional.conv2d (oneDNN on CPU),
float32, in-process, median of REPEATS runs after one warm-up.

usage: python xtask/oracle/peers/torch_conv_peer.py N,C,H,W C_OUT K PADDING [REPEATS]
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F

n, c, h, w = (int(v) for v in sys.argv[1].split(","))
cout, k, p = (int(v) for v in sys.argv[2:5])
repeats = int(sys.argv[5]) if len(sys.argv) > 5 else 7
g = torch.Generator().manual_seed(0)
x = torch.randn(n, c, h, w, generator=g)
weight = torch.randn(cout, c, k, k, generator=g)
F.conv2d(x, weight, padding=p)
times = []
for _ in range(repeats):
    start = time.perf_counter()
    y = F.conv2d(x, weight, padding=p)
    times.append(time.perf_counter() - start)
median = statistics.median(times)
macs = n * cout * c * k * k * y.shape[-2] * y.shape[-1]
print(f"torch F.conv2d {tuple(x.shape)} -> {tuple(y.shape)}: {median * 1e3:.2f} ms, {macs / median / 1e9:.1f} GMAC/s "
      f"(threads {torch.get_num_threads()})")
