"""convmat.dask.build_shards on a LocalCluster(2 worker processes x 1 thread) beside one process building
the whole matrix and writing it in the same layout; alternating, 3 rounds."""
import os, shutil, sys, time
import numpy as np, scipy.sparse as sp, convmat, convmat.dask
from dask.distributed import Client, LocalCluster

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/convmat-dask-bench"
    layer = convmat.Conv(np.random.default_rng(0).standard_normal((64, 64, 3, 3)), padding=1)
    shape = (64, 32, 32)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, Client(cl) as c:
        for r in range(3):
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            m = convmat.dask.build_shards(c, layer, shape, out, rows_per_shard=16384)
            td = time.perf_counter() - t
            shutil.rmtree(out, ignore_errors=True); os.makedirs(out)
            t = time.perf_counter()
            a = convmat.matrix(layer, shape)
            sp.save_npz(os.path.join(out, "A.npz"), a, compressed=False)
            t1 = time.perf_counter() - t
            print(f"round {r}: build_shards {len(m['shards'])} shards {td:.2f} s; one process matrix+save_npz {t1:.2f} s; nnz {m['nnz']}")
    shutil.rmtree(out, ignore_errors=True)
