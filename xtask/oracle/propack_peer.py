"""Top-k singular values side by side in one run: `scipy.sparse.linalg.svds(A, k, solver="propack")`
(and ARPACK) on convmat's own CSR of a zero-padded Conv2d, next to `convmat svd --top k` on the same
layer, both against each other and, if WORKDIR/reference_svdvals.npy exists (lowrank_peer.py caches the
dense SVD there), against the dense SVD.

The layer is lowrank_peer.py's: Conv2d(16, 16, 3, padding=1) on 16x32x32 with the xorshift weights of
benches/spectrum.rs. The CSR is written by `convmat build --dtype f64` and read with scipy.sparse.
Usage: python propack_peer.py CONVMAT_BINARY WORKDIR [K] [TOL] [SOLVERS] [ROUNDS]
  K defaults to 300, TOL to 1e-6, SOLVERS to propack,arpack (comma-separated; convmat always runs;
  `lowrank` adds torch.svd_lowrank(A, q=K) on a float64 torch CSR, which needs torch). ROUNDS (default
  1) repeats every route that many times, interleaved, and ends with each route's median and its ratio
  to convmat's (this VM's timings swing between runs; interleaved rounds see the same swings).
Prints one line per route: name, seconds, products where known, sigma_1, sigma_k, and the largest
relative difference to PROPACK (and to the dense reference when cached)."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import scipy.sparse
from scipy.sparse.linalg import svds

from lowrank_peer import C, N, xorshift


def main():
    binary, work = sys.argv[1], sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-6
    solvers = sys.argv[5].split(",") if len(sys.argv) > 5 else ["propack", "arpack"]
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    os.makedirs(work, exist_ok=True)
    w = xorshift(C * C * 9).reshape(C, C, 3, 3)
    wpath = os.path.join(work, "W.npy")
    np.save(wpath, w)
    shape = f"{C},{N},{N}"
    apath = os.path.join(work, "A64.npz")
    subprocess.run([binary, "build", "--weight", wpath, "--input-shape", shape, "--padding", "1",
                    "--dtype", "f64", "-o", apath], check=True, stdout=subprocess.DEVNULL)
    a = scipy.sparse.load_npz(apath).tocsr()
    ref_path = os.path.join(work, "reference_svdvals.npy")
    ref = np.load(ref_path)[:k] if os.path.exists(ref_path) else None
    results, times = {}, {}

    def report(name, seconds, values, extra=""):
        values = np.sort(np.asarray(values))[::-1][:k]
        results[name] = values
        times.setdefault(name, []).append(seconds)
        line = f"{name:10s} {seconds:8.2f} s  s1={values[0]:.12f} s{k}={values[-1]:.12f}{extra}"
        if "propack" in results and name != "propack":
            d = np.max(np.abs(values - results["propack"]) / results["propack"])
            line += f"  max rel diff to propack {d:.1e}"
        if ref is not None:
            line += f"  max rel err {np.max(np.abs(values - ref) / ref):.1e}"
        print(line, flush=True)

    for _ in range(rounds):
        for solver in solvers:
            if solver == "lowrank":
                # the seed's route: torch.svd_lowrank on a torch CSR of the same matrix (float64, its
                # default two power iterations; one call, after a warm-up call)
                import warnings

                import torch
                warnings.filterwarnings("ignore", message="Sparse", category=UserWarning)
                sparse = torch.sparse_csr_tensor(a.indptr, a.indices, a.data, size=a.shape, dtype=torch.float64)
                torch.manual_seed(0)
                torch.svd_lowrank(sparse, q=k)
                t = time.perf_counter()
                _, s, _ = torch.svd_lowrank(sparse, q=k)
                report("lowrank", time.perf_counter() - t, s.numpy())
                continue
            count = [0]
            op = scipy.sparse.linalg.aslinearoperator(a)
            mv, rmv = op.matvec, op.rmatvec

            def counted(f):
                def g(x):
                    count[0] += 1
                    return f(x)
                return g

            lin = scipy.sparse.linalg.LinearOperator(a.shape, matvec=counted(mv), rmatvec=counted(rmv),
                                                     dtype=np.float64)
            t = time.perf_counter()
            try:
                s = svds(lin, k=k, tol=tol, solver=solver, return_singular_vectors=False, random_state=0)
            except np.linalg.LinAlgError:  # PROPACK's default Krylov cap is too small for a clustered top
                s = svds(lin, k=k, tol=tol, solver=solver, return_singular_vectors=False, random_state=0,
                         maxiter=40 * k)
            report(solver, time.perf_counter() - t, s, f"  {count[0]} products")

        out = os.path.join(work, "convmat_top.npy")
        t = time.perf_counter()
        r = subprocess.run([binary, "svd", "--weight", wpath, "--input-shape", shape, "--padding", "1",
                            "--top", str(k), "--tol", str(tol), "-o", out, "--json"],
                           check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        j = json.loads(r.stdout)
        report("convmat", seconds, np.load(out), f"  {j['iterations']} products, residual {j['residual']:.1e}")

    if rounds > 1:
        mine = float(np.median(times["convmat"]))
        for name, ts in times.items():
            med = float(np.median(ts))
            print(f"median of {rounds}: {name:10s} {med:8.2f} s (min {min(ts):.2f}, max {max(ts):.2f})"
                  f"  {med / mine:.1f}x convmat's", flush=True)

if __name__ == "__main__":
    main()
