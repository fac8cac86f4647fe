"""Side-by-side benchmarks of convmat from Python against the routes users have today, in one run.

    python crates/python/bench/bench_python.py [--repeat 3]

Needs convmat installed (pip install ./crates/python) and numpy, scipy, torch (for the dense case).
Each measurement runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own; the peers and
convmat alternate, and the median of --repeat runs is reported, with the ratio.

1. Sparse: the CSR of Conv2d(64, 64, 3, padding=1) on 64x32x32 (36.2 M nnz), float32, in-process:
   convmat.matrix vs the vectorised NumPy -> SciPy route numpy_csr of xtask/oracle/peers/routes.py.
2. Dense: the matrix of Conv2d(3, 16, 3, padding=1) on 3x32x32 from a torch module:
   convmat.matrix(format="dense") vs torch.func.jacrev and the identity-basis batched conv.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PEERS = Path(__file__).resolve().parents[3] / "xtask" / "oracle" / "peers"

CHILD = r"""
import json, resource, sys, time
import numpy as np
import scipy.sparse  # both routes return SciPy arrays: neither pays the import inside the timed call
sys.path.insert(0, PEERS)
which = sys.argv[1]
rng = np.random.default_rng(0)
if which in ("convmat_csr", "numpy_csr"):
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    import convmat
    from routes import numpy_csr
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    def build():
        if which == "convmat_csr":
            return convmat.matrix(convmat.Conv(w, b, padding=1), (64, 32, 32))
        return numpy_csr(w, b, (64, 32, 32), (1, 1), (1, 1), (1, 1))
    t = time.perf_counter()
    A = build()
    s = time.perf_counter() - t
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    nbytes = A.data.nbytes + A.indices.nbytes + A.indptr.nbytes
    del A
    t = time.perf_counter()
    A = build()
    warm = time.perf_counter() - t
    out = dict(seconds=s, warm=warm, nnz=int(A.nnz), array_mb=nbytes / 2**20, peak_mb=peak)
else:
    import torch
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 16, 3, padding=1)
    x = torch.zeros(3, 32, 32)
    import convmat
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    def build():
        if which == "convmat_dense":
            return convmat.matrix(conv, (3, 32, 32), format="dense")
        if which == "torch_jacrev":
            J = torch.func.jacrev(lambda v: conv(v[None])[0])(x)
            return J.reshape(16 * 32 * 32, 3 * 32 * 32).detach().numpy()
        with torch.no_grad():  # identity basis: one batched conv over the 3072 unit inputs
            n = 3 * 32 * 32
            y = torch.nn.functional.conv2d(torch.eye(n).reshape(n, 3, 32, 32), conv.weight, None, 1, 1)
            return y.reshape(n, -1).T.contiguous().numpy()
    t = time.perf_counter()
    A = build()
    s = time.perf_counter() - t
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    nbytes = A.nbytes
    del A
    t = time.perf_counter()
    A = build()
    warm = time.perf_counter() - t
    out = dict(seconds=s, warm=warm, shape=list(A.shape), array_mb=nbytes / 2**20, peak_mb=peak)
print(json.dumps(out))
"""


def run(which):
    code = CHILD.replace("PEERS", repr(str(PEERS)))
    out = subprocess.run([sys.executable, "-c", code, which], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{which} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["sparse", "dense"])
    args = ap.parse_args()
    groups = {
        "sparse": ["convmat_csr", "numpy_csr"],
        "dense": ["convmat_dense", "torch_jacrev", "torch_identity"],
    }
    for name, members in groups.items():
        if args.only and name != args.only:
            continue
        runs = {m: [] for m in members}
        for _ in range(args.repeat):
            for m in members:  # alternate, so load from other processes hits both
                runs[m].append(run(m))
        ours = statistics.median(r["seconds"] for r in runs[members[0]])
        ours_warm = statistics.median(r["warm"] for r in runs[members[0]])
        print(f"\n{name}: median of {args.repeat} fresh processes (first call; then a second call in the same process)")
        print("| route | first call s | ratio | second call s | ratio | result MB | peak RSS growth MB (first call) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for m in members:
            sec = statistics.median(r["seconds"] for r in runs[m])
            warm = statistics.median(r["warm"] for r in runs[m])
            last = runs[m][-1]
            print(
                f"| {m} | {sec:.3f} | {sec / ours:.1f}x | {warm:.3f} | {warm / ours_warm:.1f}x "
                f"| {last['array_mb']:.0f} | {last['peak_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
