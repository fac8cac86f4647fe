//! `convmat._native.Operator`: `A·x` and `Aᵀ·y` by the library's one fast operator (GEMMs), never forming `A`.

use std::sync::Arc;

use convmat_matrix::Conv;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::layer::Layer;
use crate::{heavy, msg};

/// The matrix-free operator of a layer on one input shape (float64, without the bias).
#[pyclass(frozen, module = "convmat._native")]
pub struct Operator {
    conv: Arc<Conv<f64>>,
}

#[pymethods]
impl Operator {
    #[new]
    fn new(py: Python<'_>, layer: &Layer, input_shape: Vec<usize>) -> PyResult<Self> {
        let conv = heavy(py, || crate::spectrum::operator_conv(layer, &input_shape))?;
        Ok(Self { conv: Arc::new(conv) })
    }

    /// `(rows, cols)`.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.conv.rows(), self.conv.cols())
    }

    /// `A·x` for a batch `x` of shape `(batch, cols)`: `(batch, rows)`.
    fn apply<'py>(&self, py: Python<'py>, x: PyReadonlyArray2<'py, f64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = x.as_array();
        let conv = &self.conv;
        Ok(heavy(py, || conv.apply_gemm(x).map_err(msg))?.into_pyarray(py))
    }

    /// `Aᵀ·y` for a batch `y` of shape `(batch, rows)`: `(batch, cols)`.
    fn adjoint<'py>(&self, py: Python<'py>, y: PyReadonlyArray2<'py, f64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let y = y.as_array();
        let conv = &self.conv;
        Ok(heavy(py, || conv.adjoint_gemm(y).map_err(msg))?.into_pyarray(py))
    }
}
