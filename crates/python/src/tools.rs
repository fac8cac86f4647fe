//! `apply` (float or fixed point, as `convmat apply`), `shapes` (as `convmat shape --json`) and `cconv`.

use convmat_matrix::{cconv as cconv_impl, Applied, ApplyOptions, ApplyTypes, MatrixError};
use convmat_numeric::{FixedType, Overflow, Rounding};
use convmat_shape::{parse_layer, propagate, split_sequential, Layer as ChainLayer};
use ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;

use crate::layer::Layer;
use crate::matrix::{check_memory, dtype as parse_dtype};
use crate::{heavy, msg, Res};

fn fixed_type(name: &str, text: &str) -> Res<FixedType> {
    text.parse::<FixedType>().map_err(|e| format!("invalid {name} '{text}': {e}"))
}

enum Values {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    I64(ArrayD<i64>),
}

/// The layer applied to a batch `x` of shape `(N, C, *spatial)`; returns `(N, C_out, *out)`.
#[pyfunction]
#[pyo3(signature = (layer, x, dtype, weight_dtype, out_dtype, rounding, overflow, acc_dtype, raw))]
#[allow(clippy::too_many_arguments)]
pub fn apply(
    py: Python<'_>,
    layer: &Layer,
    x: PyReadonlyArrayDyn<'_, f64>,
    dtype: &str,
    weight_dtype: Option<&str>,
    out_dtype: Option<&str>,
    rounding: Option<&str>,
    overflow: Option<&str>,
    acc_dtype: Option<&str>,
    raw: bool,
) -> PyResult<Py<PyAny>> {
    let x = x.as_array();
    let values = heavy(py, || {
        if x.ndim() < 3 {
            return Err(format!("x has shape {:?}: expected a batch (N, C, *spatial)", x.shape()));
        }
        let r = layer.resolve(&x.shape()[1..])?;
        let n = x.shape()[0];
        let rounding: Option<Rounding> =
            rounding.map(|r| r.parse().map_err(|e| format!("invalid rounding '{r}': {e}"))).transpose()?;
        let overflow: Option<Overflow> =
            overflow.map(|o| o.parse().map_err(|e| format!("invalid overflow '{o}': {e}"))).transpose()?;
        let dtype_text = dtype;
        let dtype = parse_dtype(dtype)?;
        if dtype.fixed().is_none() && (weight_dtype.is_some() || out_dtype.is_some() || acc_dtype.is_some() || raw) {
            // the library's rule (MatrixError::FixedPointOnly), in this front end's argument names
            return Err("weight_dtype, out_dtype, acc_dtype and raw need a fixed-point dtype such as 'q1.7'".into());
        }
        let g = r.geometry();
        let out_len: usize = g.output_spatial().iter().product();
        let per_sample = (g.rows() as u64).saturating_add(
            (out_len as u64).saturating_mul(g.spec().in_channels() as u64).saturating_mul(g.spec().kernel_len() as u64),
        );
        check_memory(
            per_sample.saturating_mul(n as u64).saturating_mul(16),
            &format!("applying the layer to {n} samples"),
            "apply it to fewer samples at a time",
        )?;
        let options = {
            let mut t = ApplyTypes::default();
            (t.rounding, t.overflow) = (rounding, overflow);
            t.input = dtype.fixed().map(|_| fixed_type("dtype", dtype_text)).transpose()?;
            t.weight = weight_dtype.map(|w| fixed_type("weight_dtype", w)).transpose()?;
            t.accumulator = acc_dtype.map(|a| fixed_type("acc_dtype", a)).transpose()?;
            t.out = out_dtype.map(|o| fixed_type("out_dtype", o)).transpose()?;
            let mut o = ApplyOptions::new(dtype).with_types(&t).map_err(msg)?;
            o.raw = raw;
            o
        };
        let x = x.as_standard_layout();
        let y = r.apply(x.as_slice().expect("standard layout"), n, &options).map_err(|e| match e {
            MatrixError::ResultTooWide { target: "int64", .. } => format!("{e}: give out_dtype"),
            MatrixError::ResultTooWide { .. } => {
                format!("{e}: give out_dtype to cast the result, or raw=True for the stored integers")
            }
            e => msg(e),
        })?;
        let shape = IxDyn(&y.shape);
        Ok(match y.values {
            Applied::F32(v) => Values::F32(ArrayD::from_shape_vec(shape, v).map_err(msg)?),
            Applied::I64(v) => Values::I64(ArrayD::from_shape_vec(shape, v).map_err(msg)?),
            Applied::F64(v) => Values::F64(ArrayD::from_shape_vec(shape, v).map_err(msg)?),
            _ => return Err("convmat.apply cannot return this result type".into()),
        })
    })?;
    match values {
        Values::F32(v) => v.into_pyarray(py).into_py_any(py),
        Values::F64(v) => v.into_pyarray(py).into_py_any(py),
        Values::I64(v) => v.into_pyarray(py).into_py_any(py),
    }
}

/// Every layer's output shape and parameter count: the `layers` of `convmat shape --json`.
#[pyfunction]
pub fn shapes<'py>(py: Python<'py>, input_shape: Vec<usize>, layers: Vec<String>) -> PyResult<Bound<'py, PyList>> {
    let rows = (|| -> Res<_> {
        let layers = split_sequential(&layers).map_err(msg)?;
        let parsed: Vec<ChainLayer> = layers
            .iter()
            .enumerate()
            .map(|(i, t)| parse_layer(t).map_err(|e| format!("layer {}: {e}", i + 1)))
            .collect::<Res<_>>()?;
        propagate(&input_shape, &parsed).map_err(msg)
    })()
    .map_err(crate::error)?;
    let list = PyList::empty(py);
    for s in rows {
        let d = PyDict::new(py);
        d.set_item("layer", s.layer)?;
        d.set_item("features", s.output.iter().product::<usize>())?;
        d.set_item("output", s.output)?;
        d.set_item("params", s.params)?;
        list.append(d)?;
    }
    Ok(list)
}

/// MATLAB's `cconv(a, b, n)`.
#[pyfunction]
#[pyo3(signature = (a, b, n))]
pub fn cconv<'py>(
    py: Python<'py>,
    a: PyReadonlyArray1<'py, f64>,
    b: PyReadonlyArray1<'py, f64>,
    n: Option<usize>,
) -> PyResult<Py<PyAny>> {
    let (a, b) = (a.as_array(), b.as_array());
    let out = heavy(py, || {
        if n == Some(0) {
            return Err("invalid n 0: expected a positive length, or None for len(a) + len(b) - 1".into());
        }
        // the result has n (or len(a) + len(b) - 1) values: an allocation failure would abort Python
        let len = n.unwrap_or((a.len() + b.len()).saturating_sub(1)) as u64;
        check_memory(len.saturating_mul(8), &format!("cconv of length {len}"), "give a smaller n")?;
        Ok(cconv_impl(&a.to_vec(), &b.to_vec(), n))
    })?;
    out.into_pyarray(py).into_py_any(py)
}
