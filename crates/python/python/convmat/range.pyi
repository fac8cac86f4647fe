"""Type stubs of convmat.range (hand-written; the implementation is convmat/range.py over convmat._native)."""

from typing import Any, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

class AccumulatorRange:
    min: npt.NDArray[Any]
    max: npt.NDArray[Any]
    bits: npt.NDArray[np.int64]
    at_border: npt.NDArray[np.bool_]
    min_at_border: npt.NDArray[np.bool_]
    max_at_border: npt.NDArray[np.bool_]
    l1_norm: npt.NDArray[Any]
    a2q_bits_channel: npt.NDArray[np.int64]
    a2q_plus_bits_channel: npt.NDArray[np.int64]
    bits_layer: int
    datatype_bits: int
    a2q_bits: int
    a2q_plus_bits: int
    frac_bits: int
    input_format: str
    weight_format: str
    input_bounds: Tuple[int, int]
    zero_points: Tuple[int, int]
    def witness(self, channel: int, which: str = "max") -> npt.NDArray[np.int64]: ...
    def witness_output(self, channel: int, which: str = "max") -> int: ...

def accumulator_range(
    layer: Any,
    input_shape: Sequence[int],
    *,
    input_dtype: str,
    input_range: Optional[Tuple[float, float]] = None,
    weight_dtype: Optional[str] = None,
    input_zero_point: int = 0,
    weight_zero_point: int = 0,
) -> AccumulatorRange: ...
