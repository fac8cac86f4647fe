"""Top-300 singular values of a zero-padded Conv2d(16, 16, 3, padding=1) on 16x32x32 (a 16384 x 16384
matrix): torch.svd_lowrank(A, q=300) on the seed's sparse CSR next to `convmat svd --top 300`, both
against the dense SVD (scipy.linalg.svdvals, LAPACK gesdd in float64) of the same matrix.

The weights are the xorshift sequence benches/spectrum.rs uses, written to W.npy for the CLI.
Usage: python lowrank_peer.py CONVMAT_BINARY WORKDIR
Prints one line per route: name, seconds (torch: best of 3), max and median relative error of the top 300.
convmat runs at two residual tolerances, 1e-6 and 3e-2.
The dense reference takes ~1 hour on 2 cores; it is cached in WORKDIR/reference_svdvals.npy."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

C, N, Q = 16, 32, 300


def xorshift(n, s=0x2545F4914F6CDD1D):
    m = (1 << 64) - 1
    out = []
    for _ in range(n):
        s ^= (s << 13) & m
        s ^= s >> 7
        s ^= (s << 17) & m
        out.append((s >> 11) / float(1 << 53) - 0.5)
    return np.array(out)


def main():
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    w = xorshift(C * C * 9).reshape(C, C, 3, 3)
    np.save(os.path.join(work, "W.npy"), w)
    wt = torch.from_numpy(w)
    n = C * N * N
    # A's columns are the layer applied to the unit vectors
    cols = []
    for i in range(0, n, 1024):
        eye = torch.zeros(min(1024, n - i), n, dtype=torch.float64)
        eye[torch.arange(eye.shape[0]), torch.arange(i, i + eye.shape[0])] = 1.0
        cols.append(F.conv2d(eye.reshape(-1, C, N, N), wt, padding=1).reshape(eye.shape[0], -1))
    a = torch.cat(cols).T.contiguous()  # (rows, cols)
    ref_path = os.path.join(work, "reference_svdvals.npy")
    if os.path.exists(ref_path):
        ref = np.load(ref_path)
    else:
        t0 = time.perf_counter()
        ref = scipy.linalg.svdvals(a.numpy())
        print(f"dense_svd_all {time.perf_counter() - t0:.1f}", flush=True)
        np.save(ref_path, ref)
    top = ref[:Q]

    def report(name, seconds, values):
        rel = np.abs(np.asarray(values)[:Q] - top) / top
        print(f"{name} {seconds:.3f} max_rel_err {rel.max():.2e} median_rel_err {np.median(rel):.2e}", flush=True)

    # the seed's route: a torch sparse CSR, float32 as the seed builds it, and float64
    for dtype in (torch.float32, torch.float64):
        sparse = a.to(dtype).to_sparse_csr()
        best, s = float("inf"), None
        for seed in range(3):
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            _, s, _ = torch.svd_lowrank(sparse, q=Q)
            best = min(best, time.perf_counter() - t0)
        report(f"torch_svd_lowrank_csr_{str(dtype).split('.')[-1]}", best, s.double().numpy())
    # convmat, once per tolerance: to a residual of 1e-6 (minutes), and to 3e-2 (what it takes to be
    # more accurate than torch by an order of magnitude)
    for tol in ("1e-6", "3e-2"):
        out = os.path.join(work, f"S_{tol}.npy")
        t0 = time.perf_counter()
        p = subprocess.run([binary, "svd", "--weight", os.path.join(work, "W.npy"), "--input-shape", f"{C},{N},{N}",
                            "--padding", "1", "--top", str(Q), "--tol", tol, "-o", out, "--json"],
                           check=True, capture_output=True, text=True)
        rep = json.loads(p.stdout)
        report(f"convmat_svd_top{Q}_tol{tol}_{rep['method']}_{rep['iterations']}steps", time.perf_counter() - t0,
               np.load(out))


if __name__ == "__main__":
    main()
