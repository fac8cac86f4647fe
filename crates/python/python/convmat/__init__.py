"""The exact matrix of any convolution layer, with PyTorch's semantics.

For a layer -- a :class:`convmat.Conv`, or a PyTorch ``Conv{1,2,3}d`` / ``ConvTranspose{1,2,3}d``
module read by duck typing (convmat never imports torch) -- and one input sample shape
``(C, *spatial)``, convmat gives the matrix ``A`` and the expanded bias ``b`` with
``flatten(layer(x)) = A @ flatten(x) + b``, flattening row-major ``(C, *spatial)`` as ``torch.flatten``
does:

- :func:`matrix`: ``A`` as ``scipy.sparse.csr_array`` / ``csc_array`` or a dense ``numpy.ndarray``,
  in float32, float64 or fixed point (stored integers);
- :func:`bias_vector`: ``b``; :func:`estimate`: its size before building it;
- :func:`operator`: a ``scipy.sparse.linalg.LinearOperator`` applying ``A`` and ``A.T`` in Rust,
  for layers whose matrix does not fit in memory;
- :func:`singular_values`, :func:`spectral_norm`: the spectrum and the Lipschitz constant;
- :func:`apply`: the layer on a batch, in float or fixed point bit-exact with MATLAB ``fi``;
- :func:`shapes`: output shapes through a chain of PyTorch layers; :func:`cconv`: MATLAB's ``cconv``;
- :mod:`convmat.onnx`: ONNX models in -- every node listed, every affine block's exact matrix with
  BatchNorm folded (``convmat.onnx.load(path).affine_layers()``);
- :mod:`convmat.dask` (the extra ``convmat[dask]``): a matrix too large for one machine built as row
  shards by the workers of a Dask cluster.

Bad input raises :class:`ConvmatError` (a ``ValueError``) with one line saying what is wrong.

Examples
--------
>>> import numpy as np, convmat
>>> w = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
>>> layer = convmat.Conv(w, bias=[1.0, -1.0], padding=1)
>>> A = convmat.matrix(layer, (1, 4, 4))
>>> A.shape, A.nnz
((32, 16), 200)
>>> x = np.ones(16, dtype=np.float32)
>>> y = A @ x + convmat.bias_vector(layer, (1, 4, 4))
>>> y.reshape(2, 4, 4)[0, 0]
array([25., 34., 34., 21.], dtype=float32)
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import ConvmatError

__all__ = [
    "AccumulatorRange",
    "Conv",
    "ConvmatError",
    "Spectrum",
    "SpectralNorm",
    "accumulator_range",
    "apply",
    "bias_vector",
    "cconv",
    "Estimate",
    "estimate",
    "LayerNorm",
    "NetworkNorms",
    "network_norms",
    "matrix",
    "onnx",
    "operator",
    "shapes",
    "singular_values",
    "spectral_norm",
]

try:
    from importlib.metadata import version as _version

    __version__ = _version("convmat")
except Exception:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

_MAX = 2**62  # larger ints are no size or index any machine can hold


# ---------------------------------------------------------------------------------------------
# argument conversion: what users hold -> the plain values convmat._native takes


def _array(name: str, value: Any) -> np.ndarray:
    """A float64 C-contiguous copy-free-when-possible view of an array-like or a torch tensor."""
    if value is None:
        raise ConvmatError(f"{name} is None: expected an array of numbers")
    if not isinstance(value, np.ndarray):
        # torch tensors by duck typing: detached (also when they require grad), on the CPU, float64
        if callable(getattr(value, "detach", None)):
            value = value.detach()
        if callable(getattr(value, "cpu", None)):
            value = value.cpu()
        if callable(getattr(value, "double", None)) and callable(getattr(value, "numpy", None)):
            value = value.double().numpy()
    try:
        arr = np.asarray(value)
    except Exception as e:  # objects NumPy cannot read
        raise ConvmatError(f"{name} is not an array of numbers ({type(value).__name__}): {e}") from None
    if arr.dtype.kind not in "biuf":
        raise ConvmatError(
            f"{name} has dtype {arr.dtype}: expected real numbers (float, int or bool), "
            f"got a {type(value).__name__}"
        )
    return _f64(arr)


def _f64(arr: Any) -> np.ndarray:
    """float64, C-contiguous and aligned (a copy only when needed): Rust reads the buffer in place, and
    an unaligned one (np.frombuffer at an odd offset, pickle protocol 5 buffers as Dask ships them)
    cannot be read in place."""
    return np.require(arr, dtype=np.float64, requirements=["C_CONTIGUOUS", "ALIGNED"])


def _int(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConvmatError(f"invalid {name} {value!r}: expected an integer >= {minimum}")
    v = int(value)
    if not minimum <= v < _MAX:
        raise ConvmatError(f"invalid {name} {v}: expected an integer >= {minimum}")
    return v


def _ints(name: str, value: Any, minimum: int = 0) -> list:
    """One int or a sequence of ints (a PyTorch tuple, a list, a torch.Size)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return [_int(name, value, minimum)]
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or not value:
        raise ConvmatError(f"invalid {name} {value!r}: expected an integer >= {minimum} or a tuple of them")
    return [_int(name, v, minimum) for v in value]


def _shape(value: Any) -> list:
    if isinstance(value, (int, np.integer)) or not isinstance(value, (tuple, list, np.ndarray)):
        raise ConvmatError(
            f"invalid input_shape {value!r}: expected one sample's shape (C, *spatial), e.g. (3, 32, 32)"
        )
    return _ints("input_shape", value, 0)


def _str(name: str, value: Any, valid: str) -> str:
    if not isinstance(value, str):
        raise ConvmatError(f"invalid {name} {value!r}: expected {valid}")
    return value


def _opt_str(name: str, value: Any, valid: str) -> Optional[str]:
    return None if value is None else _str(name, value, valid)


def _padding(value: Any) -> str:
    """PyTorch's int / tuple / 'same' / 'valid', or ONNX pads (2 x dims ints), as text."""
    if isinstance(value, str):
        return value
    return ",".join(str(p) for p in _ints("padding", value, 0))


_DTYPES = "'float32', 'float64' or a fixed-point format such as 'q1.7'"


# ---------------------------------------------------------------------------------------------
# layers


class Conv:
    """A convolution layer with its weights, as PyTorch's constructor states it.

    Parameters
    ----------
    weight : array_like
        ``(C_out, C_in / groups, *kernel)``, or ``(C_in, C_out / groups, *kernel)`` when
        ``transposed``; 3 to 5 dims for 1-d to 3-d layers. NumPy arrays, anything with
        ``__array__``, and torch tensors (also ones that require grad) are accepted.
    bias : array_like, optional
        One value per output channel.
    stride, dilation : int or tuple of int
        One value for every spatial dim, or one per dim.
    padding : int, tuple of int, or str
        As PyTorch writes it (``1``, ``(1, 2)``, ``"same"``, ``"valid"``), ONNX ``pads``
        (``2 * dims`` ints: all begins, then all ends), or ``"same_upper"`` / ``"same_lower"``.
    groups : int
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
    transposed : bool
        A ``ConvTranspose`` layer.
    output_padding : int or tuple of int
        Transposed layers only.
    flip : {"full", "same", "valid"}, optional
        A true convolution (the kernel flipped, as MATLAB ``conv2`` / ``convn`` and ``convmat build
        --flip --shape``) with that output shape, instead of PyTorch's cross-correlation; it sets the
        padding (``padding`` must be left at 0). ``"same"`` centres as MATLAB does: the output starts
        at index ``k // 2`` of the full convolution (NumPy's and SciPy's ``"same"`` start at
        ``(k - 1) // 2``: they differ for even kernels; README's "Conventions" shows how to get theirs).

    Raises
    ------
    ConvmatError
        A weight of the wrong rank, groups not dividing the channels, an unknown padding, ...

    Examples
    --------
    >>> import numpy as np, convmat
    >>> layer = convmat.Conv(np.ones((16, 3, 3, 3)), stride=2, padding=1)
    >>> layer
    convmat.Conv(Conv2d(3, 16, 3, stride=2, padding=1, bias=False))
    >>> convmat.matrix(layer, (3, 32, 32)).shape
    (4096, 3072)
    >>> convmat.Conv(np.ones((16, 3, 3)), groups=5)  # 16 output channels in 5 groups
    Traceback (most recent call last):
    ...
    convmat.ConvmatError: ...
    """

    def __init__(
        self,
        weight: Any,
        bias: Any = None,
        *,
        stride: Union[int, Sequence[int]] = 1,
        padding: Union[int, Sequence[int], str] = 0,
        dilation: Union[int, Sequence[int]] = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        transposed: bool = False,
        output_padding: Union[int, Sequence[int]] = 0,
        flip: Optional[str] = None,
    ) -> None:
        self.weight = _array("weight", weight)
        self.bias = None if bias is None else _array("bias", bias)
        self.stride = tuple(_ints("stride", stride, 1))
        self.padding = padding if isinstance(padding, str) else tuple(_ints("padding", padding, 0))
        self.dilation = tuple(_ints("dilation", dilation, 1))
        self.groups = _int("groups", groups, 1)
        self.padding_mode = _str("padding_mode", padding_mode, "'zeros', 'reflect', 'replicate' or 'circular'")
        if not isinstance(transposed, (bool, np.bool_)):
            raise ConvmatError(f"invalid transposed {transposed!r}: expected True or False")
        self.transposed = bool(transposed)
        self.output_padding = tuple(_ints("output_padding", output_padding, 0))
        self.flip = _opt_str("flip", flip, "'full', 'same' or 'valid'")
        if self.flip is not None and (isinstance(self.padding, str) or any(self.padding)):
            raise ConvmatError(f"padding={padding!r} with flip={flip!r}: flip sets the padding; leave padding at 0")
        self._native = _native.Layer(
            self.weight,
            self.bias,
            list(self.stride),
            _padding(self.padding),
            list(self.dilation),
            self.groups,
            self.padding_mode,
            self.transposed,
            list(self.output_padding),
            self.flip,
        )

    @classmethod
    def from_torch(cls, module: Any) -> "Conv":
        """The layer of a PyTorch ``Conv{1,2,3}d`` / ``ConvTranspose{1,2,3}d`` module.

        Read by duck typing (``weight``, ``bias``, ``stride``, ``padding``, ``dilation``, ``groups``,
        ``padding_mode``, ``transposed``, ``output_padding``): torch is never imported.

        Examples
        --------
        >>> import convmat
        >>> class Conv2d:  # what torch.nn.Conv2d(1, 1, 3, padding=1, bias=False) holds
        ...     weight = [[[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]]
        ...     bias = None
        ...     stride, padding, dilation, groups = (1, 1), (1, 1), (1, 1), 1
        ...     padding_mode, transposed, output_padding = "zeros", False, (0, 0)
        >>> convmat.Conv.from_torch(Conv2d())
        convmat.Conv(Conv2d(1, 1, 3, padding=(1, 1), bias=False))
        """
        if isinstance(module, Conv):
            return module
        missing = [a for a in ("weight", "stride", "padding", "dilation", "groups") if not hasattr(module, a)]
        if missing:
            raise ConvmatError(
                f"{type(module).__name__} is not a convolution layer: it has no {', '.join(missing)}; "
                "expected convmat.Conv or a torch Conv1d-3d / ConvTranspose1d-3d module"
            )
        if getattr(module, "weight", None) is None:
            raise ConvmatError(f"{type(module).__name__} has no weight (weight is None)")
        weight = module.weight
        if type(weight).__name__ == "UninitializedParameter":
            raise ConvmatError(
                f"{type(module).__name__} has an uninitialized weight (a Lazy module): run it once first"
            )
        return cls(
            weight,
            getattr(module, "bias", None),
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
            padding_mode=getattr(module, "padding_mode", "zeros"),
            transposed=bool(getattr(module, "transposed", False)),
            output_padding=getattr(module, "output_padding", 0),
        )

    def output_shape(self, input_shape: Sequence[int]) -> Tuple[int, ...]:
        """The output shape ``(C_out, *spatial)`` on one sample ``(C, *spatial)``.

        >>> import numpy as np, convmat
        >>> convmat.Conv(np.ones((16, 3, 3, 3)), stride=2, padding=1).output_shape((3, 32, 32))
        (16, 16, 16)
        """
        return tuple(self._native.output_shape(_shape(input_shape)))

    def __repr__(self) -> str:
        return f"convmat.Conv({self._native.description()})"

    def __reduce__(self) -> Tuple[Any, ...]:
        # pickled by its constructor's arguments (the native layer is rebuilt): Dask ships layers this way
        options = dict(
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            padding_mode=self.padding_mode,
            transposed=self.transposed,
            output_padding=self.output_padding,
            flip=self.flip,
        )
        return (_conv, (self.weight, self.bias, options))

    def __dask_tokenize__(self) -> Tuple[Any, ...]:
        # equal layers get equal Dask keys (the weights hashed, not pickled)
        return ("convmat.Conv", self.weight, self.bias, self.__reduce__()[1][2])


def _conv(weight: np.ndarray, bias: Optional[np.ndarray], options: dict) -> Conv:
    return Conv(weight, bias, **options)


def _layer(layer: Any, input_shape: Any = None) -> "_native.Layer":
    native = layer._native if isinstance(layer, Conv) else Conv.from_torch(layer)._native
    if input_shape is not None:
        # the library's doubt about a valid but implausible reading (a TensorFlow-layout weight, say)
        doubt = native.doubt(_shape(input_shape))
        if doubt:
            warnings.warn(doubt, UserWarning, stacklevel=3)
    return native


# ---------------------------------------------------------------------------------------------
# matrices


def matrix(
    layer: Any,
    input_shape: Sequence[int],
    *,
    format: str = "csr",
    dtype: str = "float32",
    affine: Optional[str] = None,
    rows: Optional[Tuple[int, int]] = None,
    drop_zeros: bool = False,
) -> Any:
    """The exact matrix ``A`` of a layer: ``flatten(layer(x)) = A @ flatten(x) + b``.

    Rows are the flattened output ``(C_out, *out)``, columns the flattened input ``(C, *spatial)``,
    both row-major as ``torch.flatten`` orders one sample.

    Parameters
    ----------
    layer : convmat.Conv or torch.nn.Conv{1,2,3}d / ConvTranspose{1,2,3}d
    input_shape : tuple of int
        One sample, without the batch: ``(C, L)``, ``(C, H, W)`` or ``(C, D, H, W)``.
    format : {"csr", "csc", "dense"}
        ``scipy.sparse.csr_array`` / ``csc_array`` (sorted, no duplicates, int32 indices when they fit:
        SciPy keeps Rust's arrays without a copy), or a ``numpy.ndarray``.
    dtype : str
        ``"float32"``, ``"float64"``, or a fixed-point format ``"qI.F"`` (e.g. ``"q1.7"``): the weights
        quantized as MATLAB's ``fi(w, 1, I+F, F)``, the matrix holding the stored integers (int64),
        as ``convmat build --dtype``.
    affine : {None, "column", "homogeneous"}
        ``"column"`` appends ``b`` as a last column (``[A | b] @ [x; 1]``); ``"homogeneous"`` also
        appends the row ``[0 ... 0 1]`` so affine layers compose by matrix product.
    rows : (int, int), optional
        Only rows ``r0 <= i < r1`` (shards stack to the full matrix).
    drop_zeros : bool
        Leave out entries whose weight is exactly zero (kept by default, so the sparsity pattern is
        the layer's).

    Returns
    -------
    scipy.sparse.csr_array, scipy.sparse.csc_array or numpy.ndarray

    Raises
    ------
    ConvmatError
        Input shape not fitting the layer, unknown format or dtype, a row range out of bounds.

    Examples
    --------
    >>> import numpy as np, convmat
    >>> layer = convmat.Conv(np.array([[[1.0, 2.0, 3.0]]]))          # Conv1d(1, 1, 3)
    >>> convmat.matrix(layer, (1, 5), format="dense")
    array([[1., 2., 3., 0., 0.],
           [0., 1., 2., 3., 0.],
           [0., 0., 1., 2., 3.]], dtype=float32)
    >>> A = convmat.matrix(layer, (1, 5))
    >>> type(A).__name__, A.indices.dtype, A.nnz
    ('csr_array', dtype('int32'), 9)

    With a torch module (``torch.nn.Conv2d(3, 16, 3, stride=2, padding=1)``) the call is the same:
    ``A = convmat.matrix(conv, (3, 32, 32))``.
    """
    out = _native.matrix(*_matrix_args(layer, input_shape, format, dtype, affine, rows, drop_zeros))
    if isinstance(out, np.ndarray):
        return out
    data, indices, indptr, shp, kind = out
    import scipy.sparse as sp

    cls = sp.csr_array if kind == "csr" else sp.csc_array
    return cls((data, indices, indptr), shape=shp, copy=False)


class Estimate(NamedTuple):
    """The size of a layer's matrix, known before building it."""

    rows: int
    cols: int
    nnz: int
    """An upper bound of the stored entries (every entry for dense)."""
    bytes: int
    """An upper bound of the bytes the build allocates for the result (values, indices, row pointers)."""


def estimate(
    layer: Any,
    input_shape: Sequence[int],
    *,
    format: str = "csr",
    dtype: str = "float32",
    affine: Optional[str] = None,
    rows: Optional[Tuple[int, int]] = None,
    drop_zeros: bool = False,
) -> Estimate:
    """How large :func:`matrix` with the same arguments would be, without building it.

    The bound ``convmat build`` checks before allocating: use it to decide between building the
    matrix, building it in row shards (``rows=``, :mod:`convmat.dask`) and :func:`operator`.

    Examples
    --------
    >>> import numpy as np, convmat
    >>> layer = convmat.Conv(np.ones((64, 64, 3, 3)), padding=1)
    >>> e = convmat.estimate(layer, (64, 32, 32))
    >>> e.rows, e.cols, e.nnz  # an upper bound: the matrix holds 36.2 M (the padding's taps are left out)
    (65536, 65536, 37814272)
    >>> round(e.bytes / e.nnz, 1)  # bytes per stored entry: float32 value + int32 index, + row pointers
    8.0
    """
    return Estimate(*_native.estimate(*_matrix_args(layer, input_shape, format, dtype, affine, rows, drop_zeros)))


def _matrix_args(layer: Any, input_shape: Any, format: Any, dtype: Any, affine: Any, rows: Any, drop_zeros: Any) -> tuple:
    lay = _layer(layer, input_shape)
    shape = _shape(input_shape)
    fmt = _str("format", format, "'csr', 'csc' or 'dense'")
    dt = _str("dtype", dtype, _DTYPES)
    aff = _opt_str("affine", affine, "None, 'column' or 'homogeneous'")
    if rows is not None:
        if not isinstance(rows, (tuple, list)) or len(rows) != 2:
            raise ConvmatError(f"invalid rows {rows!r}: expected (r0, r1) with r0 < r1")
        rows = (_int("rows[0]", rows[0]), _int("rows[1]", rows[1]))
    if not isinstance(drop_zeros, (bool, np.bool_)):
        raise ConvmatError(f"invalid drop_zeros {drop_zeros!r}: expected True or False")
    return lay, shape, (fmt, dt, aff, rows, bool(drop_zeros))


def bias_vector(layer: Any, input_shape: Sequence[int], *, dtype: str = "float32") -> np.ndarray:
    """The expanded bias ``b``: one value per row of :func:`matrix` (zeros without a bias).

    Parameters
    ----------
    layer : convmat.Conv or torch.nn.Conv{1,2,3}d / ConvTranspose{1,2,3}d
    input_shape : tuple of int
        One sample ``(C, *spatial)``.
    dtype : str
        As :func:`matrix`; fixed point gives the bias's stored integers in the weight's format.

    Examples
    --------
    >>> import numpy as np, convmat
    >>> layer = convmat.Conv(np.ones((2, 1, 3)), bias=[0.5, -1.0])
    >>> convmat.bias_vector(layer, (1, 5))
    array([ 0.5,  0.5,  0.5, -1. , -1. , -1. ], dtype=float32)
    """
    return _native.bias_vector(_layer(layer, input_shape), _shape(input_shape), _str("dtype", dtype, _DTYPES))


def operator(layer: Any, input_shape: Sequence[int]) -> Any:
    """``A`` as a ``scipy.sparse.linalg.LinearOperator`` that never forms the matrix.

    ``matvec``, ``rmatvec``, ``matmat`` and ``rmatmat`` run in Rust (float64, the GIL released),
    straight from the layer's taps: for layers whose matrix does not fit in memory. The bias is not
    included (add :func:`bias_vector`).

    Examples
    --------
    >>> import numpy as np, convmat
    >>> from scipy.sparse.linalg import svds
    >>> layer = convmat.Conv(np.ones((4, 2, 3, 3)), padding=1)
    >>> A = convmat.operator(layer, (2, 8, 8))
    >>> A.shape
    (256, 128)
    >>> x = np.ones(128)
    >>> bool(np.allclose(A @ x, convmat.matrix(layer, (2, 8, 8), dtype="float64") @ x))
    True
    >>> s = svds(A, k=1, return_singular_vectors=False)
    >>> r = convmat.spectral_norm(layer, (2, 8, 8))
    >>> bool(r.lower - 1e-9 <= float(s[0]) <= r.upper + 1e-9)
    True
    """
    from scipy.sparse.linalg import LinearOperator

    native = _native.Operator(_layer(layer, input_shape), _shape(input_shape))

    class ConvOperator(LinearOperator):
        """A convolution layer's matrix, applied in Rust without forming it."""

        def __init__(self) -> None:
            super().__init__(np.float64, native.shape)

        def _matvec(self, x: np.ndarray) -> np.ndarray:
            return native.apply(_f64(np.reshape(x, (1, -1))))[0]

        def _rmatvec(self, y: np.ndarray) -> np.ndarray:
            return native.adjoint(_f64(np.reshape(y, (1, -1))))[0]

        def _matmat(self, X: np.ndarray) -> np.ndarray:
            return native.apply(_f64(np.asarray(X).T)).T

        def _rmatmat(self, Y: np.ndarray) -> np.ndarray:
            return native.adjoint(_f64(np.asarray(Y).T)).T

        def _adjoint(self) -> LinearOperator:
            return LinearOperator(
                shape=(self.shape[1], self.shape[0]),
                matvec=self._rmatvec,
                rmatvec=self._matvec,
                matmat=self._rmatmat,
                rmatmat=self._matmat,
                dtype=np.float64,
            )

    return ConvOperator()


# ---------------------------------------------------------------------------------------------
# spectra


class Spectrum(NamedTuple):
    """Singular values and how they were obtained."""

    values: np.ndarray
    """float64, descending."""
    method: str
    """``"fft"`` (exact, circular padding), ``"dense"`` (exact SVD) or ``"lanczos"``."""
    iterations: int
    """Lanczos steps (0 for the direct methods)."""
    residual: float
    """Largest relative residual ``||A.T u - s v|| / s_1`` of the values (0 for the direct methods)."""
    start: Optional[str]
    """Lanczos' start vector (``"symbol"`` or ``"random"``), None for the direct methods."""
    circular_upper_bound: Optional[float]
    """For zero padding: the norm of the circular layer on the padded grid, an upper bound of ``s_1``."""
    upper_bounds: np.ndarray = np.zeros(0)
    """Interlacing upper bounds of ``s_1, s_2, ...`` (``s_j(A) <= s_j(C_m)`` for circulant embeddings
    ``C_m``; as many as were computed), empty where the layer embeds in no circulant (reflect,
    replicate padding)."""


class SpectralNorm(NamedTuple):
    """The spectral norm (Lipschitz constant) of a layer, with bounds."""

    value: float
    """The largest singular value found."""
    lower: float
    """A lower bound: ``value`` itself (a Lanczos/Ritz value never exceeds the largest singular value;
    the direct methods are exact), up to floating-point rounding."""
    upper: float
    """An upper bound: ``value`` for the exact methods (fft, dense); for Lanczos on zero or circular
    padding the certified bound of ``convmat svd --norm`` (see ``certificate``); ``inf`` where nothing
    certifies one (reflect, replicate padding)."""
    method: str
    iterations: int
    residual: float
    certificate: str = "residual-only"
    """What ``lower`` and ``upper`` rest on: ``"exact"`` (fft, dense), ``"kato-temple"`` (a certified
    two-sided interval: interlacing separated the top cluster, Kato-Temple and residual bounds close it),
    ``"interlacing"`` (the upper bound is the interlacing bound of ``s_1`` alone) or
    ``"residual-only"`` (reflect/replicate padding: no certified upper bound; ``upper`` is ``inf``)."""


def _spectrum_tol(tol: Any) -> float:
    # a number; its range is the library's rule
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, (int, float, np.floating, np.integer)):
        raise ConvmatError(f"invalid tol {tol!r}: expected a number between 0 and 1, such as 1e-6")
    return float(tol)


def _spectrum(layer: Any, input_shape: Any, k: Optional[int], norm: bool, tol: Any, method: Any) -> dict:
    m = _str("method", method, "'auto', 'fft', 'lanczos' or 'dense'")
    return _native.singular_values(_layer(layer, input_shape), _shape(input_shape), k, norm, _spectrum_tol(tol), m)


def singular_values(
    layer: Any, input_shape: Sequence[int], k: Optional[int] = None, *, tol: float = 1e-6, method: str = "auto"
) -> Spectrum:
    """Singular values of the layer's matrix (without forming it where possible).

    Parameters
    ----------
    layer : convmat.Conv or torch.nn.Conv{1,2,3}d / ConvTranspose{1,2,3}d
    input_shape : tuple of int
    k : int, optional
        The largest ``k``; None means all ``min(rows, cols)``.
    tol : float
        Lanczos stops when every value's relative residual is below ``tol``.
    method : {"auto", "fft", "lanczos", "dense"}
        ``fft`` is exact for circular padding; ``dense`` computes all of a small layer; ``lanczos`` the
        top ``k`` of any layer; ``auto`` picks (and ``.method`` says which).

    Returns
    -------
    Spectrum
        ``.values`` (float64, descending), ``.method``, ``.iterations``, ``.residual``.

    Long computations answer Ctrl-C (``KeyboardInterrupt``) within a second, and the computation stops
    too (the library checks a cancel flag between Lanczos steps).

    Examples
    --------
    >>> import numpy as np, convmat
    >>> layer = convmat.Conv(np.array([[[1.0, 1.0]]]), padding_mode="circular", padding=(1, 0))
    >>> s = convmat.singular_values(layer, (1, 4))
    >>> s.method, np.round(s.values, 6).tolist()
    ('fft', [2.0, 1.414214, 1.414214, 0.0])
    """
    if k is not None:
        k = _int("k", k, 1)
    d = _spectrum(layer, input_shape, k, False, tol, method)
    return Spectrum(
        d["values"], d["method"], d["iterations"], d["residual"], d["start"], d["circular_upper_bound"],
        d["upper_bounds"],
    )


def spectral_norm(layer: Any, input_shape: Sequence[int], *, tol: float = 1e-6) -> SpectralNorm:
    """The spectral norm of the layer's matrix (its Lipschitz constant in the 2-norm), with bounds.

    Parameters
    ----------
    layer : convmat.Conv or torch.nn.Conv{1,2,3}d / ConvTranspose{1,2,3}d
    input_shape : tuple of int
        One input sample ``(C, *spatial)``, without the batch dimension: ``(3, 32, 32)`` for a
        ``Conv2d(3, ...)`` on 32x32 images (not ``(32, 32)``, not ``(1, 3, 32, 32)``).
    tol : float
        The relative accuracy asked of the norm, strictly between 0 and 1 (default ``1e-6``): the
        iteration stops when the certified interval is that narrow, ``(upper - lower) / lower <= tol``
        (as ``convmat svd --norm --tol``), or, where no upper bound can be certified (reflect,
        replicate padding), when the top value's relative residual is below ``tol``. The exact methods
        (``fft``, ``dense``) do not use it. A looser ``tol`` such as ``1e-3`` is faster on large layers.

    Returns
    -------
    SpectralNorm
        ``.value``, ``.lower``, ``.upper``, ``.method``: see :class:`SpectralNorm` for what the
        bounds are.

    Examples
    --------
    >>> import numpy as np, convmat
    >>> r = convmat.spectral_norm(convmat.Conv(np.ones((1, 1, 3)), padding=1), (1, 3))
    >>> r.method, round(r.value, 6), round(r.lower, 6), round(r.upper, 6)
    ('dense', 2.414214, 2.414214, 2.414214)
    """
    d = _spectrum(layer, input_shape, None, True, tol, "auto")
    value = float(d["values"][0])
    lower = value if d["lower"] is None else float(d["lower"])
    upper = math.inf if d["upper"] is None else float(d["upper"])
    return SpectralNorm(value, lower, upper, d["method"], d["iterations"], d["residual"], d["certificate"])


# ---------------------------------------------------------------------------------------------
# whole networks


class LayerNorm(NamedTuple):
    """One affine layer of a network with its spectral norm: ``lower <= ||A||_2 <= upper`` (the bias plays
    no part). The fields are the keys of ``convmat svd --json``'s network view."""

    name: str
    """The ``state_dict`` prefix in a ``Sequential`` (``"0"``, ``"2"``), the main node in an ONNX model."""
    op: str
    """``"Conv2d"``, ``"Linear"``, ... (``"Conv"``, ``"Gemm"``, ... in an ONNX model)."""
    nodes: List[str]
    """The layer as written (``Sequential``), or every node folded into the block (ONNX)."""
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    rows: int
    cols: int
    lower: float
    upper: float
    """``inf`` where nothing certifies an upper bound."""
    certificate: str
    """``"exact"``, ``"interlacing"`` / ``"kato-temple"`` (certified matrix-free) or ``"norm-inequality"``."""
    iterations: int
    activations: List[str]
    """The nonlinearities and pools that follow the layer."""
    seconds: float
    method: str = ""
    """How the interval was found: ``"diagonal"``, ``"closed-form"``, ``"dense-svd"``, ``"per-group"``,
    ``"certified"`` or ``"power-iteration"``."""
    tol_met: bool = True
    """Whether the interval's relative width is within the ``tol`` asked for."""


class NetworkNorms(NamedTuple):
    """Every affine layer's certified norm and the AutoLip product: which layer dominates the network's
    Lipschitz bound."""

    layers: List[LayerNorm]
    product_upper: float
    """An upper bound of the network's Lipschitz constant (2-norm) when every nonlinearity between the
    layers is 1-Lipschitz (AutoLip); ``not_one_lipschitz`` lists the exceptions."""
    product_lower: float
    """NOT a lower bound of the network's constant: the product had every layer sat at its lower end."""
    largest: Optional[int]
    """Index in ``layers`` of the largest upper bound."""
    not_one_lipschitz: List[str]
    graph_upper: float = math.inf
    """An upper bound of the whole graph's Lipschitz constant (2-norm), node by node: branches summed,
    concatenations by the root of the sum of squares, each nonlinearity's constant multiplied in."""
    graph_conditional_on: List[str] = []
    """The ops with no global constant (``"name (op): why"``): where any is listed, ``graph_upper`` counts
    them as 1-Lipschitz in each operand and holds only where they are."""
    tol_missed: List[str] = []
    """The layers whose interval is wider than the ``tol`` asked for."""


def _network(text: str) -> NetworkNorms:
    d = json.loads(text)
    layers = [
        LayerNorm(**{**l, "input_shape": tuple(l["input_shape"]), "output_shape": tuple(l["output_shape"]),
                     "upper": math.inf if l["upper"] is None else float(l["upper"])})
        for l in d["layers"]
    ]
    upper = math.inf if d["product_upper"] is None else float(d["product_upper"])
    graph = math.inf if d.get("graph_upper") is None else float(d["graph_upper"])
    return NetworkNorms(layers, upper, float(d["product_lower"]), d["largest"], d["not_one_lipschitz"], graph,
                        d.get("graph_conditional_on", []), d.get("tol_missed", []))


def _module_text(m: Any) -> str:
    """A torch module as the layer expression convmat reads (its repr, except where the repr leaves a
    string unquoted or a parameter out)."""
    name = type(m).__name__
    if hasattr(m, "kernel_size") and hasattr(m, "in_channels") and hasattr(m, "padding_mode"):
        text = (f"{name}({m.in_channels}, {m.out_channels}, kernel_size={tuple(m.kernel_size)}, "
                f"stride={tuple(m.stride)}, padding={m.padding!r}, dilation={tuple(m.dilation)}, groups={m.groups}, "
                f"padding_mode={m.padding_mode!r}")
        if getattr(m, "transposed", False):
            text += f", output_padding={tuple(m.output_padding)}"
        return text + ")"
    if hasattr(m, "num_features") and hasattr(m, "running_var"):
        return f"{name}({m.num_features})"  # refused with what to do: fold it first
    return repr(m)


def network_norms(
    layers: Any, input_shape: Sequence[int], *, weights: Optional[Any] = None, tol: float = 1e-6
) -> NetworkNorms:
    """Each affine layer's certified spectral norm and their product (AutoLip), for a chain of layers.

    Parameters
    ----------
    layers : torch.nn.Sequential, or str / list of str
        A ``torch.nn.Sequential`` (its weights are then its ``state_dict()``), or the chain as text:
        ``"Sequential(Conv2d(3, 16, 3, padding=1), ReLU(), ...)"`` or a list of layer expressions.
    input_shape : tuple of int
        One sample, without the batch: ``(C, H, W)``.
    weights : mapping of str to array, optional
        The ``state_dict`` of a chain given as text: layer ``i``'s weight is ``weights[f"{i}.weight"]``
        (``numpy.load("w.npz")`` and ``safetensors.numpy.load_file`` give such mappings).
    tol : float
        The relative width at which the certified norms stop.

    Returns
    -------
    NetworkNorms
        ``.layers`` (Conv and Linear layers, with the nonlinearities that follow each), ``.product_upper``
        (the AutoLip bound), ``.largest``, ``.not_one_lipschitz``. Convolutions above 4 M matrix entries
        get the certified matrix-free norm; smaller ones and Linear layers are exact. BatchNorm must be
        folded into the convolution before it (``torch.nn.utils.fusion.fuse_conv_bn_eval``).

    Examples
    --------
    >>> import numpy as np, convmat
    >>> w = {"0.weight": np.ones((1, 1, 3)), "2.weight": np.full((2, 3), 0.5)}
    >>> r = convmat.network_norms("Sequential(Conv1d(1, 1, 3), ReLU(), Linear(3, 2))", (1, 5), weights=w)
    >>> [(l.name, l.op, l.certificate) for l in r.layers]
    [('0', 'Conv1d', 'exact'), ('2', 'Linear', 'exact')]
    >>> round(r.layers[1].upper, 6), round(r.product_upper, 6)  # ||0.5 * ones((2, 3))|| = 0.5 * sqrt(6)
    (1.224745, 3.09167)
    """
    if isinstance(layers, str):
        texts = [layers]
    elif hasattr(layers, "state_dict") and hasattr(layers, "__iter__"):
        texts = [_module_text(m) for m in layers]
        if weights is None:
            weights = layers.state_dict()
    elif isinstance(layers, (list, tuple)) and all(isinstance(t, str) for t in layers):
        texts = list(layers)
    else:
        raise ConvmatError(
            f"invalid layers {type(layers).__name__}: expected a torch.nn.Sequential, a 'Sequential(...)' string "
            "or a list of layer expressions"
        )
    if weights is None:
        raise ConvmatError("network_norms needs weights=: the state_dict of the chain (0.weight, 2.weight, ...)")
    tol = _spectrum_tol(tol)
    tensors = {}
    for k in weights.keys():
        if str(k).endswith(".weight"):
            v = weights[k]
            v = v.detach().cpu() if hasattr(v, "detach") else v
            tensors[str(k)] = np.ascontiguousarray(np.asarray(v, dtype=np.float64))
    return _network(_native.network_norms(texts, _shape(input_shape), tensors, tol))


# ---------------------------------------------------------------------------------------------
# applying layers, shapes, cconv


def apply(
    layer: Any,
    x: Any,
    *,
    dtype: str = "float32",
    weight_dtype: Optional[str] = None,
    out_dtype: Optional[str] = None,
    rounding: Optional[str] = None,
    overflow: Optional[str] = None,
    acc_dtype: Optional[str] = None,
    raw: bool = False,
) -> np.ndarray:
    """The layer applied to ``x``, in float or in fixed point bit-exact with MATLAB ``fi``.

    Exactly as ``convmat apply``: inputs quantized to ``dtype``, weights to ``weight_dtype`` (default
    ``dtype``), the bias to the product's format, like MATLAB's ``fi`` constructor (nearest,
    saturate); products and sums exact (MATLAB's FullPrecision) unless ``acc_dtype`` names a narrow
    accumulator to which every product and partial sum is re-cast in kernel-tap order.

    Parameters
    ----------
    layer : convmat.Conv or torch.nn.Conv{1,2,3}d / ConvTranspose{1,2,3}d
    x : array_like
        ``(N, C, *spatial)`` or one sample ``(C, *spatial)``.
    dtype : str
        ``"float32"``, ``"float64"`` or the inputs' fixed-point type in any dialect: ``"q1.7"``,
        ``"fi(1,8,7)"``, ``"int8"``, ``"ap_fixed<8,1>"``, ``"ap_fixed<8,1,AP_RND,AP_SAT>"``, ...
    weight_dtype, out_dtype, acc_dtype : str, optional
        Fixed-point types of the weights, of the result's cast, of a narrow accumulator. An ap_fixed
        type carries its rounding and overflow (written, or Vitis's AP_TRN, AP_WRAP): every cast into
        it uses them, inputs and weights included.
    rounding : str, optional
        Of the output cast and the narrow accumulator (default ``"nearest"``, MATLAB's: ties toward
        +inf): ``"nearest"``, ``"round"``, ``"convergent"``, ``"floor"``, ``"ceil"``, ``"zero"``,
        ``"away"``, ``"nearest_zero"``, ``"nearest_min_inf"`` or any dialect's name (``"AP_RND_MIN_INF"``,
        ``"HALF_DOWN"``, ...). It must agree with a type that carries its own.
    overflow : str, optional
        Default ``"saturate"``; also ``"wrap"``, ``"saturate_zero"``, ``"saturate_sym"``, ``"wrap_sm"``
        (ap_fixed's ``AP_SAT_ZERO``, ``AP_SAT_SYM``, ``AP_WRAP_SM``).
    raw : bool
        Return the stored integers (int64) instead of the real values (float64).

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, *out)`` or ``(C_out, *out)`` as ``x`` was given.

    Examples
    --------
    >>> import numpy as np, convmat
    >>> layer = convmat.Conv(np.array([[[0.5, 0.25]]]))
    >>> # x quantized to Q1.3: [0.25, 0.625, 0.875]; sums 0.28125, 0.53125 cast to Q1.3 (nearest)
    >>> convmat.apply(layer, np.array([[0.3, 0.6, 0.9]]), dtype="q1.3", out_dtype="q1.3")
    array([[0.25, 0.5 ]])
    >>> convmat.apply(layer, np.array([[0.3, 0.6, 0.9]]), dtype="q1.3", out_dtype="q1.3", raw=True)
    array([[2, 4]])
    """
    lay = _layer(layer)
    arr = _array("x", x)
    rank = len(lay.weight_shape) - 2
    if arr.ndim == rank + 1:
        batched = False
        arr = arr[None]
    elif arr.ndim == rank + 2:
        batched = True
    else:
        raise ConvmatError(
            f"x has shape {arr.shape}: a {rank}-d layer takes (N, C, *{rank} spatial) or (C, *{rank} spatial)"
        )
    q = "a fixed-point format such as 'q1.7'"
    y = _native.apply(
        lay,
        arr,
        _str("dtype", dtype, _DTYPES),
        _opt_str("weight_dtype", weight_dtype, q),
        _opt_str("out_dtype", out_dtype, q),
        _opt_str("rounding", rounding, "a rounding name such as 'nearest', 'floor' or 'AP_RND_CONV'"),
        _opt_str("overflow", overflow, "an overflow name such as 'saturate', 'wrap' or 'AP_SAT_SYM'"),
        _opt_str("acc_dtype", acc_dtype, q),
        bool(raw),
    )
    return y if batched else y[0]


def shapes(input_shape: Sequence[int], layers: Union[str, Sequence[str]]) -> list:
    """Output shape and parameter count of every layer in a chain: ``convmat shape --json``'s "layers".

    Parameters
    ----------
    input_shape : tuple of int
        One sample ``(C, *spatial)``.
    layers : list of str, or str
        PyTorch constructor expressions (``"Conv2d(1, 6, 3)"``, ``"MaxPool2d(2)"``, ``"Flatten()"``,
        ...), or one ``"Sequential(...)"`` expression.

    Returns
    -------
    list of dict
        ``{"layer", "output", "features", "params"}`` per layer.

    Examples
    --------
    >>> import convmat
    >>> for row in convmat.shapes((1, 32, 32), ["Conv2d(1, 6, 3)", "MaxPool2d(2)", "Flatten()"]):
    ...     print(row["layer"], row["output"], row["params"])
    Conv2d(1, 6, 3) [6, 30, 30] 60
    MaxPool2d(2) [6, 15, 15] 0
    Flatten() [1350] 0
    """
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, (list, tuple)) or not all(isinstance(s, str) for s in layers):
        raise ConvmatError(f"invalid layers {layers!r}: expected a list of PyTorch expressions such as 'Conv2d(3, 16, 3)'")
    if not layers:
        raise ConvmatError("layers is empty: give at least one PyTorch expression such as 'Conv2d(3, 16, 3)'")
    return _native.shapes(_shape(input_shape), list(layers))


def cconv(a: Any, b: Any, n: Optional[int] = None) -> np.ndarray:
    """MATLAB's ``cconv(a, b, n)``: circular convolution modulo ``n``.

    The linear convolution (length ``len(a) + len(b) - 1``, the default ``n``) wrapped around and
    summed when ``n`` is smaller, zero-extended when larger.

    Examples
    --------
    >>> import convmat
    >>> convmat.cconv([2, 1, 2, 1], [1, 2, 3, 4], 4)
    array([14., 16., 14., 16.])
    """
    av, bv = _array("a", a), _array("b", b)
    if av.ndim != 1 or bv.ndim != 1:
        raise ConvmatError(f"a and b must be vectors: got shapes {av.shape} and {bv.shape}")
    return _native.cconv(av, bv, None if n is None else _int("n", n, 1))


from . import onnx  # noqa: E402  (the submodule needs the names above)
from .range import AccumulatorRange, accumulator_range  # noqa: E402  (needs the names above)


def __getattr__(name: str) -> Any:
    # convmat.dask imports dask: loaded on first use, so convmat itself never needs it
    if name == "dask":
        import importlib

        try:
            return importlib.import_module(".dask", __name__)
        except ImportError as e:  # an AttributeError, so hasattr(convmat, "dask") stays False without Dask
            raise AttributeError(str(e)) from e
    raise AttributeError(f"module 'convmat' has no attribute {name!r}")
