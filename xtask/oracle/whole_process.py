"""Whole-process speed of `convmat build` and `convmat apply` next to their peers and floors, side by side
in one run (issue 15). Runs are interleaved round by round (the convmat binaries' order
rotating), so a noisy neighbour slows every contender alike; medians are printed.

usage: whole_process.py PEERS_DIR CONVMAT [CONVMAT_BEFORE] [--rounds N] [--only build|apply]
(PEERS_DIR: the repository's xtask/oracle/peers)

Tasks (64->64 3x3 padding 1, seeded uniform weights in [-1, 1]):
- build: `convmat build ... -o A.npz` (32x32 input, CSR f32, 36.2 M nnz, 290 MB) against
  PEERS_DIR/numpy_csr_cli.py (vectorised NumPy -> scipy.sparse.save_npz), and the floor: convmat's own
  in-process build time (its --json build_seconds) plus a plain write(2) of as many bytes from memory to
  a new file in the same directory. Outputs are removed before each run (not timed), so no run pays for
  deleting the previous file.
- apply: `convmat apply --dtype q1.7` on a batch 8x64x32x32 (302 M MAC), f64 .npy in and out, whole
  process, against apytypes' full-precision `@` on the im2col matrix (GEMM only, in-process, best of 3,
  xtask/oracle/apytypes_bench.py); and f32 in-process (convmat's --json seconds) against
  torch.nn.functional.conv2d (PEERS_DIR/torch_conv_peer.py, median).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MACS = 8 * 64 * 64 * 9 * 32 * 32


def timed(cmd, **kw):
    t = time.perf_counter()
    p = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    return time.perf_counter() - t, p.stdout


def plain_write(path, buf):
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    view, off = memoryview(buf), 0
    while off < len(view):
        off += os.write(fd, view[off:off + (1 << 30)])
    os.close(fd)
    return time.perf_counter() - t


def rm(*paths):
    for p in paths:
        if os.path.exists(p):
            os.remove(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("peers")
    ap.add_argument("convmat", nargs="+", help="convmat binaries (e.g. after, before)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", choices=["build", "apply"])
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="convmat-wp-", dir=os.getcwd())
    rng = np.random.default_rng(0)
    np.save(f"{d}/w.npy", rng.uniform(-1, 1, (64, 64, 3, 3)).astype(np.float32))
    np.save(f"{d}/x.npy", rng.uniform(-1, 1, (8, 64, 32, 32)))
    names = [f"convmat{'' if i == 0 else f'#{i}'} ({os.path.basename(c)})" for i, c in enumerate(a.convmat)]
    res = {}

    def add(key, v):
        res.setdefault(key, []).append(v)

    env = dict(os.environ, PYTHONPATH=a.peers)
    size = None
    for r in range(a.rounds):
        if a.only in (None, "build"):
            # rotate who goes first: the first large allocation after others' work can pay for memory
            # compaction (transparent huge pages), which would otherwise always hit the same contender
            order = list(zip(names, a.convmat))
            order = order[r % len(order):] + order[:r % len(order)]
            for name, exe in order:
                out = f"{d}/A.npz"
                rm(out)
                t, js = timed([exe, "build", "--weight", f"{d}/w.npy", "--input-shape", "64,32,32", "--padding",
                               "1", "--quiet", "--json", "-o", out])
                rep = json.loads(js)
                size = rep["bytes"]
                add(f"build: {name}, whole process", t)
                add(f"build: {name}, in-process build (its --json)", rep["build_seconds"])
            if size:
                buf = np.ones(size, dtype=np.uint8).tobytes()
                rm(f"{d}/plain.bin")
                add("build: plain write(2) of the same bytes", plain_write(f"{d}/plain.bin", buf))
                del buf
                rm(f"{d}/plain.bin")
            rm(f"{d}/P.npz")
            t, _ = timed([sys.executable, f"{a.peers}/numpy_csr_cli.py", f"{d}/w.npy", "64,32,32", "1", "1",
                          f"{d}/P.npz"], env=env)
            add("build: numpy_csr_cli.py (NumPy -> save_npz), whole process", t)
            rm(f"{d}/P.npz", f"{d}/A.npz")
        if a.only in (None, "apply"):
            for name, exe in zip(names, a.convmat):
                rm(f"{d}/y.npy")
                t, js = timed([exe, "apply", "--weight", f"{d}/w.npy", "--input", f"{d}/x.npy", "--padding", "1",
                               "--dtype", "q1.7", "--quiet", "--json", "-o", f"{d}/y.npy"])
                add(f"apply q1.7: {name}, whole process", t)
                add(f"apply q1.7: {name}, in-process (its --json)", json.loads(js)["seconds"])
                rm(f"{d}/y.npy")
                t, js = timed([exe, "apply", "--weight", f"{d}/w.npy", "--input", f"{d}/x.npy", "--padding", "1",
                               "--quiet", "--json", "-o", f"{d}/y.npy"])
                add(f"apply f32: {name}, whole process", t)
                add(f"apply f32: {name}, in-process (its --json)", json.loads(js)["seconds"])
            _, out = timed([sys.executable, f"{HERE}/apytypes_bench.py"])
            add("apply q1.7: apytypes W @ X (GEMM only, in-process, best of 3)", float(out.split()[1]))
            _, out = timed([sys.executable, f"{a.peers}/torch_conv_peer.py", "8,64,32,32", "64", "3", "1", "7"])
            add("apply f32: torch F.conv2d (in-process, median of 7)", float(out.split(": ")[1].split(" ms")[0]) / 1e3)
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    rm(f"{d}/w.npy", f"{d}/x.npy", f"{d}/y.npy")
    os.rmdir(d)
    print(f"{a.rounds} interleaved rounds, medians (load average at the end: {os.getloadavg()[0]:.1f})")
    for k, v in res.items():
        med = statistics.median(v)
        extra = f"  {MACS / med / 1e9:6.1f} GMAC/s" if k.startswith("apply") else ""
        print(f"{med * 1e3:9.1f} ms  (min {min(v) * 1e3:7.1f})  {k}{extra}")


if __name__ == "__main__":
    main()
