"""The routes a Python user has today from a Conv2d to its matrix, convmat's peers in benchmarks.

Every route takes ``(weight (C_out, C_in, kh, kw) float32, bias or None, (C, H, W), stride, padding,
dilation)`` (pairs of ints; zero padding, groups 1) and returns the matrix ``A`` with
``flatten(conv2d(x)) = A @ flatten(x)``:

- ``numpy_csr``: vectorised NumPy index arithmetic into a SciPy CSR (the fastest sparse route);
- ``seed_c2s``: a Python loop per output pixel filling a torch sparse CSR over the *padded* input plus a
  constant 1 (the bias column), as the first convmat seed did;
- ``seed_affine``: a Python loop per (pixel, tap, channel) filling a dense torch matrix, as the affine
  builders of verification tools do;
- ``seed_toeplitz``: doubly-block-Toeplitz blocks from ``scipy.linalg.toeplitz`` (dense; stride 1, no
  padding, no dilation only);
- ``torch_identity``: one batched ``conv2d`` over the identity basis, the columns of ``A`` (dense).

``check_peers.py`` checks each against ``torch.nn.functional.conv2d``. Only ``numpy_csr`` needs no torch.
"""

import math

import numpy as np
import scipy.sparse as sp


def output_size(n, k, stride, padding, dilation):
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def numpy_csr(weight, bias, in_shape, stride, padding, dilation, index_dtype=np.int32):
    """All (output pixel, tap) pairs at once: rows ordered (c_out, y, x), within a row taps (c_in, a, b)."""
    cout, cin, kh, kw = weight.shape
    c, h, w = in_shape
    ho = output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = output_size(w, kw, stride[1], padding[1], dilation[1])
    # input row / column read by output row y (or column x) at tap a (or b)
    rows_in = np.arange(ho)[:, None] * stride[0] - padding[0] + np.arange(kh)[None, :] * dilation[0]
    cols_in = np.arange(wo)[:, None] * stride[1] - padding[1] + np.arange(kw)[None, :] * dilation[1]
    inside = ((rows_in >= 0) & (rows_in < h))[:, None, None, :, None] & ((cols_in >= 0) & (cols_in < w))[None, :, None, None, :]
    flat = (np.arange(cin)[None, None, :, None, None] * (h * w)
            + rows_in[:, None, None, :, None] * w + cols_in[None, :, None, None, :])     # (ho, wo, cin, kh, kw)
    inside = np.broadcast_to(inside, flat.shape)
    taps = np.broadcast_to(np.arange(cin * kh * kw).reshape(1, 1, cin, kh, kw), flat.shape)
    col_per_pixel = flat[inside].astype(index_dtype)          # one output pixel's columns after another
    tap_per_pixel = taps[inside]
    count = inside.reshape(ho * wo, -1).sum(axis=1)
    data = weight.reshape(cout, -1)[:, tap_per_pixel].ravel()  # every output channel reads the same taps
    indices = np.tile(col_per_pixel, cout)
    indptr = np.concatenate(([0], np.cumsum(np.tile(count, cout)))).astype(index_dtype)
    return sp.csr_matrix((data, indices, indptr), shape=(cout * ho * wo, c * h * w))


def seed_c2s(weight, bias, in_shape, stride, padding, dilation):
    """A loop over output pixels; the matrix acts on the padded input with a trailing 1 (bias column)."""
    import torch

    cout, cin, kh, kw = weight.shape
    _, h, w = in_shape
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    ho, wo = (hp - kh) // stride[0] + 1, (wp - kw) // stride[1] + 1
    taps = cin * kh * kw
    # columns of one output pixel at the origin, in the padded input
    base = (np.arange(cin)[:, None, None] * hp * wp + np.arange(kh)[None, :, None] * wp
            + np.arange(kw)[None, None, :]).ravel()
    b = np.zeros(cout, np.float32) if bias is None else np.asarray(bias, np.float32)
    rows = cout * ho * wo
    cols = np.empty((rows, taps + 1), np.int64)
    vals = np.empty((rows, taps + 1), np.float32)
    r = 0
    for o in range(cout):
        row_vals = np.append(weight[o].ravel(), b[o])
        for y in range(ho):
            for x in range(wo):
                cols[r, :taps] = base + y * stride[0] * wp + x * stride[1]
                cols[r, taps] = cin * hp * wp
                vals[r] = row_vals
                r += 1
    crow = torch.arange(rows + 1, dtype=torch.int64) * (taps + 1)
    return torch.sparse_csr_tensor(crow, torch.from_numpy(cols.ravel()), torch.from_numpy(vals.ravel()),
                                   size=(rows, cin * hp * wp + 1))


def seed_affine(weight, bias, in_shape, stride, padding, dilation):
    """A loop over (output pixel, tap, output channel, input channel) writing a dense torch matrix."""
    import torch

    cout, cin, kh, kw = weight.shape
    _, h, w = in_shape
    ho = output_size(h, kh, stride[0], padding[0], 1)
    wo = output_size(w, kw, stride[1], padding[1], 1)
    a = torch.zeros(cout * ho * wo, cin * h * w)
    wt = torch.as_tensor(weight)
    for y in range(ho):
        for x in range(wo):
            for i in range(kh):
                for j in range(kw):
                    yi, xi = y * stride[0] - padding[0] + i, x * stride[1] - padding[1] + j
                    if not (0 <= yi < h and 0 <= xi < w):
                        continue
                    for o in range(cout):
                        for c in range(cin):
                            a[(o * ho + y) * wo + x, (c * h + yi) * w + xi] = wt[o, c, i, j]
    return a


def seed_toeplitz(weight, bias, in_shape, stride, padding, dilation):
    """Stride 1, no padding: each kernel row a Toeplitz block, stacked into doubly-block-Toeplitz blocks."""
    from scipy.linalg import toeplitz

    cout, cin, kh, kw = weight.shape
    _, h, w = in_shape
    ho, wo = h - kh + 1, w - kw + 1
    a = np.zeros((cout, ho, wo, cin, h, w))
    for o in range(cout):
        for c in range(cin):
            for i in range(kh):
                k = weight[o, c, i]
                block = toeplitz(np.r_[k[0], np.zeros(wo - 1)], np.r_[k, np.zeros(w - kw)])  # (wo, w)
                for y in range(ho):
                    a[o, y, :, c, y + i, :] = block
    return a.reshape(cout * ho * wo, cin * h * w)


def torch_identity(weight, bias, in_shape, stride, padding, dilation):
    """Column j of A is conv2d(e_j): one batched convolution of the identity basis."""
    import torch
    import torch.nn.functional as F

    n = math.prod(in_shape)
    basis = torch.eye(n, dtype=torch.float32).reshape(n, *in_shape)
    with torch.no_grad():
        out = F.conv2d(basis, torch.as_tensor(weight), None, stride, padding, dilation)
    return out.reshape(n, -1).T.contiguous()


ROUTES = {f.__name__: f for f in (numpy_csr, seed_c2s, seed_affine, seed_toeplitz, torch_identity)}
