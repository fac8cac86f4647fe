"""Beyond one machine: a layer's matrix built as row shards by the workers of a Dask cluster.

Needs the extra ``pip install "convmat[dask]"`` (``dask[distributed]``). Each shard is
``convmat.matrix(layer, input_shape, rows=(r0, r1))``: rows ``r0 <= i < r1`` of the full matrix,
built in Rust on a worker with the GIL released; the shards stacked in order are the matrix.

- :func:`build_shards`: the shards built as tasks on an existing ``dask.distributed`` cluster, each
  worker writing its shard file in SciPy's layout (``scipy.sparse.load_npz`` reads it; the file layout
  of ``convmat build --rows R0..R1 -o shard.npz``), plus ``manifest.json``: for a matrix larger than
  any one machine's memory, kept on shared storage.
- :func:`matrix`: the shards as a list of ``dask.delayed`` objects, one SciPy sparse array each, for
  computations that consume the shards where they are built (``A @ x`` row block by row block,
  per-shard statistics) without ever gathering the matrix.
- :func:`row_ranges`: how the rows are cut; :func:`load_shards`: a written folder stacked back into
  one matrix (when it fits).

Why delayed shards and not a ``dask.array``: a ``dask.array`` with ``scipy.sparse`` chunks is only
partly supported by Dask (many operations densify a chunk or fail on it, and ``scipy.sparse`` arrays
are always 2-d), while a list of delayed SciPy arrays keeps every shard exactly what
``convmat.matrix`` returns and composes with any Dask workflow (``client.compute``,
``dask.delayed`` functions over the shards, ``dask.bag.from_delayed``).

Examples
--------
>>> import numpy as np, convmat, convmat.dask
>>> from dask.distributed import Client, LocalCluster
>>> layer = convmat.Conv(np.ones((4, 2, 3, 3)), padding=1)
>>> with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \\
...         Client(cluster) as client:
...     manifest = convmat.dask.build_shards(client, layer, (2, 8, 8), "shards", rows_per_shard=100)
...     A = convmat.dask.load_shards("shards")
>>> [s["rows"] for s in manifest["shards"]]
[[0, 100], [100, 200], [200, 256]]
>>> (A != convmat.matrix(layer, (2, 8, 8))).nnz
0
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import Conv, ConvmatError, _int, _shape, bias_vector, estimate
from . import matrix as _matrix

try:
    import dask
    import distributed
except ImportError as e:  # pragma: no cover - the extra is missing
    raise ImportError(
        'convmat.dask needs Dask: pip install "convmat[dask]" (or pip install "dask[distributed]")'
    ) from e

__all__ = ["build_shards", "load_shards", "matrix", "row_ranges"]

#: The default bound of one shard's bytes (what one task holds in memory while building it).
MAX_SHARD_BYTES = 256 * 2**20


def _conv(layer: Any) -> Conv:
    # torch modules become a convmat.Conv on the client: workers never need torch
    return layer if isinstance(layer, Conv) else Conv.from_torch(layer)


def _sparse(format: Any) -> str:
    if format not in ("csr", "csc"):
        raise ConvmatError(f"invalid format {format!r}: shards are sparse, 'csr' or 'csc'")
    return format


def _dtype(layer: Conv, shape: List[int], dtype: Any) -> str:
    estimate(layer, shape, dtype=dtype)  # the library checks the name
    if dtype not in ("float32", "float64"):
        raise ConvmatError(
            f"invalid dtype {dtype!r} for shards: convmat.dask builds 'float32' or 'float64' shards; "
            "fixed-point shards: convmat build --dtype qI.F --rows R0..R1"
        )
    return dtype


def row_ranges(
    layer: Any,
    input_shape: Sequence[int],
    rows_per_shard: Optional[int] = None,
    *,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    format: str = "csr",
    dtype: str = "float32",
) -> List[Tuple[int, int]]:
    """The row ranges ``(r0, r1)`` the shards cover, in order: ``rows_per_shard`` rows each, or as
    many as keep one shard under ``max_shard_bytes`` (by :func:`convmat.estimate`'s bound).

    Examples
    --------
    >>> import numpy as np, convmat, convmat.dask
    >>> layer = convmat.Conv(np.ones((64, 64, 3, 3)), padding=1)
    >>> convmat.dask.row_ranges(layer, (64, 32, 32), 30000)
    [(0, 30000), (30000, 60000), (60000, 65536)]
    >>> len(convmat.dask.row_ranges(layer, (64, 32, 32), max_shard_bytes=2**26))  # 295 MB in 64 MiB shards
    5
    """
    layer = _conv(layer)
    shape = _shape(input_shape)
    est = estimate(layer, shape, format=_sparse(format), dtype=dtype)
    if rows_per_shard is None:
        limit = _int("max_shard_bytes", max_shard_bytes, 1)
        rows_per_shard = max(1, est.rows * limit // max(est.bytes, 1))
    step = _int("rows_per_shard", rows_per_shard, 1)
    return [(r0, min(r0 + step, est.rows)) for r0 in range(0, est.rows, step)]


def _shard(layer: Conv, shape: List[int], r0: int, r1: int, format: str, dtype: str, drop_zeros: bool) -> Any:
    return _matrix(layer, shape, format=format, dtype=dtype, rows=(r0, r1), drop_zeros=drop_zeros)


def matrix(
    layer: Any,
    input_shape: Sequence[int],
    *,
    rows_per_shard: Optional[int] = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    format: str = "csr",
    dtype: str = "float32",
    drop_zeros: bool = False,
) -> List[Any]:
    """The matrix as ``dask.delayed`` row shards, in order (see :func:`row_ranges` for the cut).

    Nothing is built until computed; each computed shard is ``convmat.matrix(layer, input_shape,
    rows=(r0, r1), format=format, dtype=dtype)``. The layer is put into the graph once.

    Returns
    -------
    list of dask.delayed.Delayed
        One per row range, each computing a ``scipy.sparse.csr_array`` (or ``csc_array``).

    Examples
    --------
    >>> import dask, numpy as np, scipy.sparse, convmat, convmat.dask
    >>> layer = convmat.Conv(np.ones((4, 2, 3, 3)), padding=1)
    >>> shards = convmat.dask.matrix(layer, (2, 8, 8), rows_per_shard=100)
    >>> len(shards)
    3
    >>> x = np.ones(128, dtype=np.float32)
    >>> y = np.concatenate(dask.compute(*[dask.delayed(lambda s: s @ x)(s) for s in shards]))
    >>> bool(np.array_equal(y, convmat.matrix(layer, (2, 8, 8)) @ x))
    True
    """
    layer = _conv(layer)
    shape = _shape(input_shape)
    fmt, dt = _sparse(format), _dtype(layer, shape, dtype)
    ranges = row_ranges(layer, shape, rows_per_shard, max_shard_bytes=max_shard_bytes, format=fmt, dtype=dt)
    shared = dask.delayed(layer, pure=True)
    build = dask.delayed(_shard, pure=True)
    return [build(shared, shape, r0, r1, fmt, dt, bool(drop_zeros)) for r0, r1 in ranges]


def _write_shard(
    layer: Conv, shape: List[int], path: str, r0: int, r1: int, format: str, dtype: str, drop_zeros: bool
) -> int:
    """Builds rows r0..r1 and writes them where the manifest says, atomically; returns the nnz."""
    a = _shard(layer, shape, r0, r1, format, dtype, drop_zeros)
    arrays: Dict[str, Any] = dict(
        indices=a.indices, indptr=a.indptr, format=np.bytes_(format), shape=np.array(a.shape, np.int64), data=a.data
    )
    if layer.bias is not None:  # as convmat build --rows: the bias of these rows
        arrays["bias"] = bias_vector(layer, shape, dtype="float64")[r0:r1]
    tmp = f"{path}.tmp-{os.getpid()}-{id(a)}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return int(a.nnz)


def build_shards(
    client: Any,
    layer: Any,
    input_shape: Sequence[int],
    out_dir: Union[str, "os.PathLike[str]"],
    *,
    rows_per_shard: Optional[int] = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    format: str = "csr",
    dtype: str = "float32",
    drop_zeros: bool = False,
) -> Dict[str, Any]:
    """Builds the matrix as row shards on a Dask cluster, each worker writing its shard file.

    ``out_dir`` must be reachable by every worker under the same path (a shared file system, or one
    machine). Each shard ``shard_NNNNN.npz`` is SciPy's layout (``scipy.sparse.load_npz`` reads it;
    the layout of ``convmat build --rows R0..R1 -o shard.npz``, with the rows' ``bias`` when the layer
    has one), written atomically by the worker that built it. ``manifest.json`` is written last, when
    every shard is there; if a task fails, the shards of this call are removed and the error raised.

    Parameters
    ----------
    client : dask.distributed.Client
    layer : convmat.Conv or torch.nn.Conv{1,2,3}d / ConvTranspose{1,2,3}d
        Sent to the workers once (a torch module as a ``convmat.Conv``: workers need no torch).
    input_shape : tuple of int
    out_dir : str or os.PathLike
    rows_per_shard : int, optional
        Rows per shard; by default as many as keep one shard under ``max_shard_bytes``.
    format : {"csr", "csc"}
    dtype : {"float32", "float64"}
    drop_zeros : bool

    Returns
    -------
    dict
        The manifest: ``layer``, ``input_shape``, ``shape``, ``format``, ``dtype``, ``nnz`` and
        ``shards`` (``file``, ``rows`` = [r0, r1], ``nnz``), in row order.
    """
    layer = _conv(layer)
    shape = _shape(input_shape)
    fmt, dt = _sparse(format), _dtype(layer, shape, dtype)
    ranges = row_ranges(layer, shape, rows_per_shard, max_shard_bytes=max_shard_bytes, format=fmt, dtype=dt)
    if not isinstance(out_dir, (str, os.PathLike)):
        raise ConvmatError(f"invalid out_dir {out_dir!r}: expected a folder path (str or pathlib.Path)")
    out = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out, exist_ok=True)
    rows, cols = layer._native.matrix_shape(shape)
    files = [f"shard_{k:05d}.npz" for k in range(len(ranges))]
    [remote] = client.scatter([layer], broadcast=True)
    futures = [
        client.submit(_write_shard, remote, shape, os.path.join(out, f), r0, r1, fmt, dt, bool(drop_zeros), pure=False)
        for f, (r0, r1) in zip(files, ranges)
    ]
    try:
        # every task ends (done or failed) before anything is judged: no shard is written after cleanup
        distributed.wait(futures)
        nnz = client.gather(futures)
    except BaseException:
        client.cancel(futures)
        for f in files:
            try:
                os.remove(os.path.join(out, f))
            except OSError:
                pass
        raise
    manifest = {
        "layer": repr(layer),
        "input_shape": shape,
        "shape": [rows, cols],
        "format": fmt,
        "dtype": dt,
        "nnz": sum(nnz),
        "shards": [{"file": f, "rows": [r0, r1], "nnz": n} for f, (r0, r1), n in zip(files, ranges, nnz)],
    }
    tmp = os.path.join(out, f"manifest.json.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, os.path.join(out, "manifest.json"))
    return manifest


def load_shards(out_dir: Union[str, "os.PathLike[str]"]) -> Any:
    """The shards of a :func:`build_shards` folder stacked into one SciPy sparse array (when it fits).

    Each shard is checked against the manifest (its rows, the matrix's columns).
    """
    import scipy.sparse as sp

    folder = os.fspath(out_dir)
    try:
        with open(os.path.join(folder, "manifest.json")) as fh:
            manifest = json.load(fh)
    except (OSError, ValueError) as e:
        raise ConvmatError(f"{folder}: no readable manifest.json of convmat.dask.build_shards ({e})") from None
    rows, cols = manifest["shape"]
    parts = []
    for s in manifest["shards"]:
        a = sp.load_npz(os.path.join(folder, s["file"]))
        r0, r1 = s["rows"]
        if a.shape != (r1 - r0, cols):
            raise ConvmatError(f"{s['file']}: shape {a.shape}, but the manifest says rows {r0}..{r1} of {cols} columns")
        parts.append(a)
    stacked = sp.vstack(parts, format=manifest["format"])
    if stacked.shape != (rows, cols):
        raise ConvmatError(f"{folder}: the shards stack to {stacked.shape}, the manifest says {(rows, cols)}")
    return stacked
