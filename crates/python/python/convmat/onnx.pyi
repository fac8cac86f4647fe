"""Type stubs of convmat.onnx (hand-written; the implementation is convmat/onnx.py over convmat._native)."""

import os
from typing import Any, Dict, List, Literal, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
from scipy.sparse import csc_array, csr_array

from . import Conv, NetworkNorms
from . import ConvmatError as ConvmatError

_Path = Union[str, "os.PathLike[str]"]

class Input(NamedTuple):
    name: str
    declared: List[str]
    shape: Tuple[int, ...]

class Node(NamedTuple):
    name: str
    op: str
    input_shape: Optional[Tuple[int, ...]]
    output_shape: Optional[Tuple[int, ...]]
    params: Dict[str, Any]
    affine: bool

class GraphNode(NamedTuple):
    name: str
    op: str
    kind: Literal["block", "junction", "nonlinearity"]
    inputs: List[str]
    outputs: List[str]
    output_shapes: List[Tuple[int, ...]]
    file: Optional[str]
    folded: List[str]
    params: Dict[str, Any]

class Activation(NamedTuple):
    name: str
    op: str
    params: Dict[str, Any]
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]

class ConvNode(NamedTuple):
    layer: Conv
    input_shape: Tuple[int, ...]

class AffineLayer:
    name: str
    op: str
    matrix: Union[csr_array, csc_array, npt.NDArray[np.float64]]
    bias: npt.NDArray[np.float64]
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    activation: Optional[str]
    activations: List[Activation]
    nodes: List[str]

class FixedRun:
    output: npt.NDArray[np.float64]
    format: Optional[str]
    report: List[Dict[str, Any]]
    tensors: Dict[str, npt.NDArray[np.float64]]

class Model:
    path: str
    opset: int
    input_shape: Optional[Tuple[int, ...]]
    inputs: List[Input]
    nodes: List[Node]
    def affine_layers(
        self, fold_batchnorm: bool = True, format: Literal["csr", "csc", "dense"] = "csr"
    ) -> List[AffineLayer]: ...
    def conv_layer(self, node_name: str) -> ConvNode: ...
    def export(self, out_dir: _Path, fold_batchnorm: bool = True) -> List[Dict[str, Any]]: ...
    def norms(self, tol: float = 1e-6) -> NetworkNorms: ...
    @property
    def graph(self) -> List[GraphNode]: ...
    def run(
        self, x: Any, trace: bool = False, dtype: Literal["float32", "float64"] = "float32", fixed: Any = None
    ) -> Union[npt.NDArray[Any], Tuple[npt.NDArray[Any], Dict[str, npt.NDArray[Any]]], FixedRun]: ...
    def run_fixed(self, x: Any, formats: Any, trace: bool = False) -> FixedRun: ...
    def lower(
        self,
        out_path: _Path,
        form: Literal["gemm", "matmul"] = "gemm",
        max_dense_bytes: Optional[int] = None,
        keep_input_shape: bool = False,
        max_pool: Literal["keep", "relu"] = "keep",
    ) -> Dict[str, Any]: ...

def load(path: _Path, input_shape: Optional[Sequence[int]] = None) -> Model: ...
