"""Times one route of routes.py on one named layer, in this process.

usage: python xtask/oracle/peers/bench_peers.py ROUTE CASE
prints: ``route case seconds nnz nnz_per_second peak_rss_mb`` (what ``cargo xtask bench-peers`` reads).
The weights are seeded (NumPy default_rng(0)); ``benches/peers.rs`` builds the same layers with convmat.
"""

import resource
import sys
import time

import numpy as np

from routes import ROUTES

# name: (C_in, H, W, C_out, kernel, stride, padding), as benches/peers.rs lists them
CASES = {
    "cifar_in": (3, 32, 32, 16, 3, 1, 1),
    "lenet2": (6, 15, 15, 16, 3, 1, 0),
    "cifar_mid": (64, 32, 32, 64, 3, 1, 1),
    "resnet_s2": (64, 56, 56, 128, 3, 2, 1),
    "resnet_56": (64, 56, 56, 64, 3, 1, 1),
    "resnet_big": (128, 56, 56, 128, 3, 1, 1),
}


def stored(a) -> int:
    if hasattr(a, "nnz"):
        return int(a.nnz)
    if getattr(a, "is_sparse_csr", False):
        return int(a.values().numel())
    return int(np.count_nonzero(np.asarray(a)))


def main() -> None:
    route, case = sys.argv[1], sys.argv[2]
    cin, h, w, cout, k, s, p = CASES[case]
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    start = time.perf_counter()
    a = ROUTES[route](weight, bias, (cin, h, w), (s, s), (p, p), (1, 1))
    seconds = time.perf_counter() - start
    nnz = stored(a)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{route} {case} {seconds:.3f} {nnz} {nnz / seconds:.3e} {rss_mb:.0f}")


if __name__ == "__main__":
    main()
