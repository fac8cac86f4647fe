//! `accumulator_range` (as `convmat range`): the exact accumulator range per output channel of a quantized
//! layer, with the inputs that reach it.

use convmat_matrix::{accumulator_range as range_impl, AccumulatorRange as RangeImpl, Extremum, InputRange};
use convmat_matrix::{ChannelRange, RangeOptions};
use convmat_numeric::QFormat;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

use crate::layer::Layer;
use crate::{heavy, msg, Res};

fn qformat(name: &str, text: &str) -> Res<QFormat> {
    text.parse::<QFormat>().map_err(|e| format!("invalid {name} '{text}': {e}"))
}

/// A layer's accumulator ranges: what `convmat.accumulator_range` wraps.
#[pyclass(frozen, module = "convmat._native")]
pub struct AccumulatorRange {
    inner: RangeImpl,
}

#[pymethods]
impl AccumulatorRange {
    /// Per channel `(min, max, min_at_border, max_at_border, bits, l1_norm, a2q_bits, a2q_plus_bits)`.
    #[allow(clippy::type_complexity)]
    fn channels(&self) -> Vec<(i128, i128, bool, bool, u32, u128, u32, u32)> {
        self.inner
            .channels()
            .iter()
            .map(|c: &ChannelRange| {
                (c.min, c.max, c.min_at_border, c.max_at_border, c.bits, c.l1_norm, c.a2q_bits, c.a2q_plus_bits)
            })
            .collect()
    }

    /// `{bits_layer, datatype_bits, a2q_bits, a2q_plus_bits, frac_bits, input_format, weight_format,
    /// input_min, input_max, input_zero_point, weight_zero_point}`.
    fn summary(&self) -> (u32, u32, u32, u32, i32, String, String, i64, i64, i64, i64) {
        let r = &self.inner;
        let ((lo, hi), (xz, wz)) = (r.input_bounds(), r.zero_points());
        (
            r.bits_layer(),
            r.datatype_bits(),
            r.a2q_bits(),
            r.a2q_plus_bits(),
            r.frac_bits(),
            r.input_format().to_string(),
            r.weight_format().to_string(),
            lo,
            hi,
            xz,
            wz,
        )
    }

    /// The flat input (stored integers) reaching the channel's `which` ("min" or "max"), and the flat
    /// output index where it does.
    fn witness<'py>(
        &self,
        py: Python<'py>,
        channel: usize,
        which: &str,
    ) -> PyResult<(Bound<'py, PyArray1<i64>>, usize)> {
        let (x, row) = (|| -> Res<(Vec<i64>, usize)> {
            let which: Extremum = which.parse().map_err(msg)?;
            Ok((self.inner.witness(channel, which).map_err(msg)?, self.inner.witness_row(channel, which).map_err(msg)?))
        })()
        .map_err(crate::error)?;
        Ok((x.into_pyarray(py), row))
    }
}

/// The exact accumulator range of `layer` on one input sample `input_shape`.
#[pyfunction]
#[pyo3(signature = (layer, input_shape, input_dtype, input_range, weight_dtype, input_zero_point, weight_zero_point))]
#[allow(clippy::too_many_arguments)]
pub fn accumulator_range(
    py: Python<'_>,
    layer: &Layer,
    input_shape: Vec<usize>,
    input_dtype: &str,
    input_range: Option<(f64, f64)>,
    weight_dtype: Option<&str>,
    input_zero_point: i64,
    weight_zero_point: i64,
) -> PyResult<AccumulatorRange> {
    let inner = heavy(py, || {
        let r = layer.resolve(&input_shape)?;
        let mut options = RangeOptions::new(qformat("input_dtype", input_dtype)?);
        options.weight_format = weight_dtype.map(|w| qformat("weight_dtype", w)).transpose()?;
        options.input_range = input_range.map(|(lo, hi)| InputRange::new(lo, hi)).transpose().map_err(msg)?;
        options.input_zero_point = input_zero_point;
        options.weight_zero_point = weight_zero_point;
        range_impl(&r, &options).map_err(msg)
    })?;
    Ok(AccumulatorRange { inner })
}
