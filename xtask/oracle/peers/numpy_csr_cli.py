"""The whole-process peer of ``convmat build``: load a weight, build its CSR with routes.numpy_csr, save it
with ``scipy.sparse.save_npz`` (uncompressed, as convmat writes).

usage: python xtask/oracle/peers/numpy_csr_cli.py W.npy C,H,W STRIDE PADDING OUT.npz
"""

import sys

import numpy as np
import scipy.sparse as sp

from routes import numpy_csr

weight = np.load(sys.argv[1])
shape = tuple(int(v) for v in sys.argv[2].split(","))
stride, padding = int(sys.argv[3]), int(sys.argv[4])
sp.save_npz(sys.argv[5], numpy_csr(weight, None, shape, (stride,) * 2, (padding,) * 2, (1, 1)), compressed=False)
