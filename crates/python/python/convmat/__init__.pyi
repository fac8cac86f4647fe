"""Type stubs of convmat (hand-written; the implementation is convmat/__init__.py over convmat._native)."""

from typing import Any, List, Literal, Mapping, NamedTuple, Optional, Sequence, Tuple, TypedDict, Union

import numpy as np
import numpy.typing as npt
from scipy.sparse import csc_array, csr_array
from scipy.sparse.linalg import LinearOperator

from . import onnx as onnx
from .range import AccumulatorRange as AccumulatorRange, accumulator_range as accumulator_range

__version__: str

_Ints = Union[int, Sequence[int]]
_Shape = Sequence[int]

class ConvmatError(ValueError):
    """Bad input: the message says what is wrong, which value, and what would be valid."""

class Conv:
    weight: npt.NDArray[np.float64]
    bias: Optional[npt.NDArray[np.float64]]
    stride: Tuple[int, ...]
    padding: Union[Tuple[int, ...], str]
    dilation: Tuple[int, ...]
    groups: int
    padding_mode: str
    transposed: bool
    output_padding: Tuple[int, ...]
    flip: Optional[str]
    def __init__(
        self,
        weight: npt.ArrayLike,
        bias: Optional[npt.ArrayLike] = None,
        *,
        stride: _Ints = 1,
        padding: Union[_Ints, str] = 0,
        dilation: _Ints = 1,
        groups: int = 1,
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
        transposed: bool = False,
        output_padding: _Ints = 0,
        flip: Optional[Literal["full", "same", "valid"]] = None,
    ) -> None: ...
    @classmethod
    def from_torch(cls, module: Any) -> Conv: ...
    def output_shape(self, input_shape: _Shape) -> Tuple[int, ...]: ...

# a convmat.Conv, or a torch Conv1d-3d / ConvTranspose1d-3d module (read by duck typing)
_Layer = Union[Conv, Any]

def matrix(
    layer: _Layer,
    input_shape: _Shape,
    *,
    format: Literal["csr", "csc", "dense"] = "csr",
    dtype: str = "float32",
    affine: Optional[Literal["column", "homogeneous"]] = None,
    rows: Optional[Tuple[int, int]] = None,
    drop_zeros: bool = False,
) -> Union[csr_array, csc_array, npt.NDArray[Any]]: ...
class Estimate(NamedTuple):
    rows: int
    cols: int
    nnz: int
    bytes: int

def estimate(
    layer: _Layer,
    input_shape: _Shape,
    *,
    format: Literal["csr", "csc", "dense"] = "csr",
    dtype: str = "float32",
    affine: Optional[Literal["column", "homogeneous"]] = None,
    rows: Optional[Tuple[int, int]] = None,
    drop_zeros: bool = False,
) -> Estimate: ...
def bias_vector(layer: _Layer, input_shape: _Shape, *, dtype: str = "float32") -> npt.NDArray[Any]: ...
def operator(layer: _Layer, input_shape: _Shape) -> LinearOperator: ...

class Spectrum(NamedTuple):
    values: npt.NDArray[np.float64]
    method: str
    iterations: int
    residual: float
    start: Optional[str]
    circular_upper_bound: Optional[float]
    upper_bounds: npt.NDArray[np.float64]

class SpectralNorm(NamedTuple):
    value: float
    lower: float
    upper: float
    method: str
    iterations: int
    residual: float
    certificate: str

def singular_values(
    layer: _Layer,
    input_shape: _Shape,
    k: Optional[int] = None,
    *,
    tol: float = 1e-6,
    method: Literal["auto", "fft", "lanczos", "dense"] = "auto",
) -> Spectrum: ...
def spectral_norm(layer: _Layer, input_shape: _Shape, *, tol: float = 1e-6) -> SpectralNorm: ...

class LayerNorm(NamedTuple):
    name: str
    op: str
    nodes: List[str]
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    rows: int
    cols: int
    lower: float
    upper: float
    certificate: str
    iterations: int
    activations: List[str]
    seconds: float

class NetworkNorms(NamedTuple):
    layers: List[LayerNorm]
    product_upper: float
    product_lower: float
    largest: Optional[int]
    not_one_lipschitz: List[str]

def network_norms(
    layers: Union[Any, str, Sequence[str]],
    input_shape: _Shape,
    *,
    weights: Optional[Mapping[str, Any]] = None,
    tol: float = 1e-6,
) -> NetworkNorms: ...
def apply(
    layer: _Layer,
    x: npt.ArrayLike,
    *,
    dtype: str = "float32",
    weight_dtype: Optional[str] = None,
    out_dtype: Optional[str] = None,
    rounding: Optional[str] = None,
    overflow: Optional[str] = None,
    acc_dtype: Optional[str] = None,
    raw: bool = False,
) -> npt.NDArray[Any]: ...

class LayerShape(TypedDict):
    layer: str
    output: List[int]
    features: int
    params: int

def shapes(input_shape: _Shape, layers: Union[str, Sequence[str]]) -> List[LayerShape]: ...
def cconv(a: npt.ArrayLike, b: npt.ArrayLike, n: Optional[int] = None) -> npt.NDArray[np.float64]: ...
