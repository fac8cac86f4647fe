//! Python bindings of convmat: the private extension module `convmat._native`.
//!
//! The documented API is the pure-Python package `convmat` (in `python/convmat/`), which turns what
//! users hold (NumPy arrays, torch tensors and modules, Python ints and strings) into the plain
//! arguments taken here. This crate holds no decisions of its own: each function converts its
//! arguments, makes one library call with the GIL released, and converts the result — arrays are
//! handed to NumPy without copying. Every library error becomes `convmat.ConvmatError` (a
//! `ValueError`) carrying the library's one-line message; a panic is caught and reported the same way,
//! so none reaches the interpreter.
#![warn(missing_docs)]

mod cli;
mod layer;
mod matrix;
mod onnx;
mod operator;
mod range;
mod spectrum;
mod tools;

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;

pyo3::create_exception!(
    convmat,
    ConvmatError,
    pyo3::exceptions::PyValueError,
    "Bad input to convmat: the message says what is wrong, which value, and what would be valid."
);

/// A library error or an argument that cannot be converted: its one-line message.
pub(crate) type Res<T> = Result<T, String>;

/// Runs `f` with the GIL released; a panic becomes a `ConvmatError` instead of reaching Python.
pub(crate) fn heavy<T: Send>(py: Python<'_>, f: impl FnOnce() -> Res<T> + Send) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(|panic| error(panic_message(panic.as_ref())))?
        .map_err(error)
}

/// The one line a caught panic turns into.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error in convmat (please report it with the call that caused it): {what}")
}

/// Any displayable error as the message `ConvmatError` carries.
pub(crate) fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A `ConvmatError` with the message on one line, as the CLI prints it (user text inside a message,
/// such as a layer expression, may hold line breaks).
pub(crate) fn error(message: impl Into<String>) -> PyErr {
    ConvmatError::new_err(message.into().replace(['\r', '\n'], " "))
}

#[pymodule(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ConvmatError", m.py().get_type::<ConvmatError>())?;
    m.add_class::<layer::Layer>()?;
    m.add_class::<operator::Operator>()?;
    m.add_class::<onnx::OnnxModel>()?;
    m.add_function(wrap_pyfunction!(matrix::matrix, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::bias_vector, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::estimate, m)?)?;
    m.add_function(wrap_pyfunction!(spectrum::singular_values, m)?)?;
    m.add_function(wrap_pyfunction!(spectrum::network_norms, m)?)?;
    m.add_function(wrap_pyfunction!(tools::apply, m)?)?;
    m.add_function(wrap_pyfunction!(tools::shapes, m)?)?;
    m.add_function(wrap_pyfunction!(tools::cconv, m)?)?;
    m.add_class::<range::AccumulatorRange>()?;
    m.add_function(wrap_pyfunction!(range::accumulator_range, m)?)?;
    m.add_function(wrap_pyfunction!(cli::cli_main, m)?)?;
    Ok(())
}
