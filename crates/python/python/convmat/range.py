"""Exact accumulator ranges of quantized layers: ``convmat range`` in Python."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from . import ConvmatError, _int, _layer, _native, _opt_str, _shape, _str

__all__ = ["AccumulatorRange", "accumulator_range"]

_FORMATS = "a fixed-point format such as 'q8.0' (int8), 'uq8.0' (uint8) or 'q1.7'"


def _column(values: list) -> np.ndarray:
    """int64 when every value fits, else an object array of Python ints (accumulators beyond 63 bits)."""
    if all(-(2**63) <= v < 2**63 for v in values):
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=object)


class AccumulatorRange:
    """Per output channel the exact range of the accumulator ``sum((x - x_zp) * (w - w_zp)) + bias``
    over the input box, in stored integers at fraction length ``frac_bits``; see
    :func:`accumulator_range`.

    Attributes
    ----------
    min, max : numpy.ndarray
        Per channel, the exact minimum and maximum (int64, or Python ints beyond 63 bits).
    bits : numpy.ndarray
        Per channel, the signed word length that holds ``[min, max]``.
    at_border, min_at_border, max_at_border : numpy.ndarray of bool
        Whether the extremum is reached only at border rows (rows with taps in padding).
    l1_norm, a2q_bits_channel, a2q_plus_bits_channel : numpy.ndarray
        Per channel ``||w - w_zp||_1`` and the A2Q / A2Q+ widths from it.
    bits_layer, datatype_bits, a2q_bits, a2q_plus_bits : int
        The widest channel's width; the data-type bound ``w_x + w_w + ceil(log2 N)``; A2Q and A2Q+ for
        the layer (their widest channel).
    frac_bits : int
        The accumulator's fraction length ``f_w + f_x``.
    input_format, weight_format : str
    input_bounds : tuple of int
        The box of stored inputs ``(lo, hi)``.
    zero_points : tuple of int
        ``(input_zero_point, weight_zero_point)``.
    """

    def __init__(self, native: Any, input_shape: Sequence[int]) -> None:
        self._native = native
        self._input_shape = tuple(input_shape)
        rows = native.channels()
        self.min = _column([r[0] for r in rows])
        self.max = _column([r[1] for r in rows])
        self.min_at_border = np.array([r[2] for r in rows], dtype=bool)
        self.max_at_border = np.array([r[3] for r in rows], dtype=bool)
        self.at_border = self.min_at_border | self.max_at_border
        self.bits = np.array([r[4] for r in rows], dtype=np.int64)
        self.l1_norm = _column([r[5] for r in rows])
        self.a2q_bits_channel = np.array([r[6] for r in rows], dtype=np.int64)
        self.a2q_plus_bits_channel = np.array([r[7] for r in rows], dtype=np.int64)
        (
            self.bits_layer,
            self.datatype_bits,
            self.a2q_bits,
            self.a2q_plus_bits,
            self.frac_bits,
            self.input_format,
            self.weight_format,
            lo,
            hi,
            xz,
            wz,
        ) = native.summary()
        self.input_bounds = (lo, hi)
        self.zero_points = (xz, wz)

    def witness(self, channel: int, which: str = "max") -> np.ndarray:
        """One input sample (stored integers, int64, shape ``input_shape``) on which the channel's
        accumulator reaches its ``which`` (``"min"`` or ``"max"``) at :meth:`witness_output`."""
        x, _ = self._native.witness(_int("channel", channel), _str("which", which, "'min' or 'max'"))
        return x.reshape(self._input_shape)

    def witness_output(self, channel: int, which: str = "max") -> int:
        """The flat output index (row of the layer's matrix) where :meth:`witness` reaches the value."""
        _, row = self._native.witness(_int("channel", channel), _str("which", which, "'min' or 'max'"))
        return int(row)

    def __repr__(self) -> str:
        return (
            f"AccumulatorRange({len(self.bits)} channels, bits_layer={self.bits_layer}, "
            f"datatype_bits={self.datatype_bits}, a2q_plus_bits={self.a2q_plus_bits})"
        )


def _range(value: Any) -> Optional[Tuple[float, float]]:
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2:
        try:
            return float(value[0]), float(value[1])
        except (TypeError, ValueError):
            pass
    raise ConvmatError(f"invalid input_range {value!r}: expected (lo, hi), two numbers with lo <= hi")


def accumulator_range(
    layer: Any,
    input_shape: Sequence[int],
    *,
    input_dtype: str,
    input_range: Optional[Tuple[float, float]] = None,
    weight_dtype: Optional[str] = None,
    input_zero_point: int = 0,
    weight_zero_point: int = 0,
) -> AccumulatorRange:
    """The exact accumulator range of a quantized layer per output channel: ``convmat range``.

    The accumulator is ``sum((x - x_zp) * (w - w_zp)) + bias`` in stored integers (ONNX
    ``QLinearConv`` / ``ConvInteger``): zero padding contributes nothing; reflect, replicate and
    circular padding read real inputs (taps landing on one input summed first). Its extremum over the
    box is exact (each input at the bound its weight prefers), found per class of rows with the same
    taps, so a whole layer takes milliseconds.

    Parameters
    ----------
    layer : convmat.Conv or torch.nn.Conv{1,2,3}d / ConvTranspose{1,2,3}d
    input_shape : tuple of int
        One sample ``(C, *spatial)``.
    input_dtype : str
        The inputs' fixed-point format: ``"q8.0"`` (int8), ``"uq8.0"`` (uint8), ``"q1.7"``, ...
    input_range : (float, float), optional
        A narrower box in real units, quantized to ``input_dtype`` (nearest, saturate).
    weight_dtype : str, optional
        Quantize the weights to this format (nearest, saturate); without it they must be integers.
    input_zero_point, weight_zero_point : int
        Stored integers of their formats.

    Returns
    -------
    AccumulatorRange

    Examples
    --------
    qonnx's border case: weights ``[1, -1]`` on inputs in ``[1, 2]`` with zero padding. Interior
    outputs span ``[-1, 1]``; the last output reads ``x[3]`` and padding, and reaches 2.

    >>> import numpy as np, convmat
    >>> layer = convmat.Conv(np.array([[[1.0, -1.0]]]), padding=1)
    >>> r = convmat.accumulator_range(layer, (1, 4), input_dtype="q8.0", input_range=(1, 2))
    >>> r.min, r.max, r.at_border, r.bits_layer
    (array([-2]), array([2]), array([ True]), 3)
    >>> r.witness(0, "max")
    array([[1, 1, 1, 2]])
    >>> int(convmat.apply(layer, r.witness(0, "max"), dtype="q8.0", raw=True)[0, 4])
    2
    """
    native = _native.accumulator_range(
        _layer(layer),
        _shape(input_shape),
        _str("input_dtype", input_dtype, _FORMATS),
        _range(input_range),
        _opt_str("weight_dtype", weight_dtype, _FORMATS),
        _zero_point("input_zero_point", input_zero_point),
        _zero_point("weight_zero_point", weight_zero_point),
    )
    return AccumulatorRange(native, _shape(input_shape))


def _zero_point(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConvmatError(f"invalid {name} {value!r}: expected an integer (a stored integer of its format)")
    v = int(value)
    if not -(2**63) <= v < 2**63:
        raise ConvmatError(f"invalid {name} {v}: expected a stored integer of its format")
    return v
