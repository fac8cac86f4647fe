"""NumPy peer of benches/spectrum.rs: all singular values of a circular 3x3 layer by the FFT method
(Sedghi et al.'s reference recipe: np.fft.fft2 of the kernel over the grid, then a batched SVD).
Prints 'numpy_fft NAME seconds'."""
import time

import numpy as np

for name, c, n in [("circular_16to16_3x3_16x16", 16, 16), ("circular_64to64_3x3_32x32", 64, 32)]:
    w = np.random.default_rng(0).uniform(-0.5, 0.5, (c, c, 3, 3))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        transforms = np.fft.fft2(w, (n, n), axes=[2, 3])          # (cout, cin, n, n)
        s = np.linalg.svd(transforms.transpose(2, 3, 0, 1), compute_uv=False)
        best = min(best, time.perf_counter() - t0)
    print(f"numpy_fft {name} {best:.4f}")
