"""The private extension module (Rust, PyO3): use the documented functions of convmat instead."""

from os import PathLike
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

class ConvmatError(ValueError): ...

class Layer:
    weight_shape: List[int]
    def __init__(
        self,
        weight: npt.NDArray[np.float64],
        bias: Optional[npt.NDArray[np.float64]],
        stride: List[int],
        padding: str,
        dilation: List[int],
        groups: int,
        padding_mode: str,
        transposed: bool,
        output_padding: List[int],
    ) -> None: ...
    def description(self) -> str: ...
    def output_shape(self, input_shape: List[int]) -> List[int]: ...
    def matrix_shape(self, input_shape: List[int]) -> Tuple[int, int]: ...

class Operator:
    shape: Tuple[int, int]
    def __init__(self, layer: Layer, input_shape: List[int]) -> None: ...
    def apply(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
    def adjoint(self, y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

# (format, dtype, affine_mode, rows, drop_zeros): the arguments matrix and estimate share
MatrixRequest = Tuple[str, str, Optional[str], Optional[Tuple[int, int]], bool]

def matrix(layer: Layer, input_shape: List[int], request: MatrixRequest) -> Any: ...
def estimate(layer: Layer, input_shape: List[int], request: MatrixRequest) -> Tuple[int, int, int, int]: ...
def network_norms(
    layers: List[str], input_shape: List[int], weights: Dict[str, npt.NDArray[np.float64]], tol: float
) -> str: ...
def bias_vector(layer: Layer, input_shape: List[int], dtype: str) -> npt.NDArray[Any]: ...
def singular_values(
    layer: Layer, input_shape: List[int], k: Optional[int], norm: bool, tol: float, method: str
) -> dict: ...
def apply(
    layer: Layer,
    x: npt.NDArray[np.float64],
    dtype: str,
    weight_dtype: Optional[str],
    out_dtype: Optional[str],
    rounding: Optional[str],
    overflow: Optional[str],
    acc_dtype: Optional[str],
    raw: bool,
) -> npt.NDArray[Any]: ...
def shapes(input_shape: List[int], layers: List[str]) -> List[dict]: ...
def cconv(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], n: Optional[int]) -> npt.NDArray[np.float64]: ...

class AccumulatorRange:
    def channels(self) -> List[Tuple[int, int, bool, bool, int, int, int, int]]: ...
    def summary(self) -> Tuple[int, int, int, int, int, str, str, int, int, int, int]: ...
    def witness(self, channel: int, which: str) -> Tuple[npt.NDArray[np.int64], int]: ...

def accumulator_range(
    layer: Layer,
    input_shape: List[int],
    input_dtype: str,
    input_range: Optional[Tuple[float, float]],
    weight_dtype: Optional[str],
    input_zero_point: int,
    weight_zero_point: int,
) -> AccumulatorRange: ...

class OnnxModel:
    path: PathLike[str]
    opset: int
    def __init__(self, path: str) -> None: ...
    def summary(self, input_shape: Optional[List[int]]) -> str: ...
    def affine_layers(
        self, input_shape: Optional[List[int]], fold_batchnorm: bool, format: str
    ) -> List[Tuple[str, str, List[str], List[int], List[int], str, Any, npt.NDArray[np.float64]]]: ...
    def conv_layer(self, node_name: str, input_shape: Optional[List[int]]) -> Tuple[Any, ...]: ...
    def export(self, out_dir: str, input_shape: Optional[List[int]], fold_batchnorm: bool) -> str: ...
    def norms(self, input_shape: Optional[List[int]], tol: float) -> str: ...
    def graph(self, input_shape: Optional[List[int]], fold_batchnorm: bool) -> str: ...
    def run(
        self, x: npt.NDArray[np.float64], trace: bool, dtype: str
    ) -> Tuple[Any, List[Tuple[str, str, str, Any]]]: ...
    def lower(
        self,
        out_path: str,
        input_shape: Optional[List[int]],
        form: str,
        max_dense_bytes: Optional[int],
        keep_input_shape: bool,
    ) -> str: ...
