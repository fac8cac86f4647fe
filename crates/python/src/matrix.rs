//! `matrix` and `bias_vector`: the layer's exact matrix and expanded bias, handed to NumPy uncopied.

use convmat_matrix::{Affine, Conv, ConvLayer, Estimate, MatrixFormat, MatrixOptions};
use convmat_numeric::{Dtype, Scalar};
use numpy::{Element, IntoPyArray};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use sprs::{CsMatI, SpIndex};

use crate::layer::Layer;
use crate::{heavy, msg, Res};

pub(crate) fn dtype(text: &str) -> Res<Dtype> {
    text.parse::<Dtype>().map_err(msg)
}

fn affine(text: Option<&str>) -> Res<Affine> {
    match text {
        None => Ok(Affine::None),
        Some("column") => Ok(Affine::Column),
        Some("homogeneous") => Ok(Affine::Homogeneous),
        Some(t) => Err(format!("invalid affine '{t}': expected None, 'column' or 'homogeneous'")),
    }
}

/// Refuses to allocate `bytes` (for `what`) beyond the memory available: an allocation failure would
/// abort the interpreter. `hint` says what to do instead.
pub(crate) fn check_memory(bytes: u64, what: &str, hint: &str) -> Res<()> {
    match convmat_matrix::available_memory() {
        Some(limit) if bytes > limit => {
            Err(format!("{what} needs about {bytes} bytes, more than the {limit} bytes of memory available; {hint}"))
        }
        _ => Ok(()),
    }
}

fn check_estimate(est: &Estimate, format: MatrixFormat) -> Res<()> {
    check_memory(
        est.bytes,
        &format!("the {} x {} matrix", est.rows, est.cols),
        &format!(
            "build it in shards with rows=(r0, r1){}, or use convmat.operator (never forms it)",
            if format == MatrixFormat::Dense { ", the sparse format (format='csr')" } else { "" }
        ),
    )
}

/// A built matrix, its arrays ready for NumPy.
enum Built<T> {
    Dense(ndarray::Array2<T>),
    Sparse32(CsMatI<T, i32, i32>),
    Sparse64(CsMatI<T, i64, i64>),
}

fn build<T: Scalar>(conv: &Conv<T>, format: MatrixFormat, opts: &MatrixOptions, est: &Estimate) -> Res<Built<T>> {
    if format == MatrixFormat::Dense {
        return conv.dense_with(opts).map(Built::Dense).map_err(msg);
    }
    // int32 indices and pointers when every index and the nnz bound fit, so SciPy keeps the arrays
    let small = (est.rows.max(est.cols) as u64) < i32::MAX as u64 && est.nnz < i32::MAX as u64;
    fn go<T: Scalar, I: SpIndex>(conv: &Conv<T>, f: MatrixFormat, o: &MatrixOptions) -> Res<CsMatI<T, I, I>> {
        if f == MatrixFormat::Csc { conv.csc_with(o) } else { conv.csr_with(o) }.map_err(msg)
    }
    Ok(if small { Built::Sparse32(go(conv, format, opts)?) } else { Built::Sparse64(go(conv, format, opts)?) })
}

fn to_python<T: Scalar + Element>(py: Python<'_>, built: Built<T>) -> PyResult<Py<PyAny>> {
    fn parts<T: Element, I: SpIndex + Element>(py: Python<'_>, m: CsMatI<T, I, I>) -> PyResult<Py<PyAny>> {
        let shape = (m.rows(), m.cols());
        let fmt = if m.is_csr() { "csr" } else { "csc" };
        let (indptr, indices, data) = m.into_raw_storage();
        (data.into_pyarray(py), indices.into_pyarray(py), indptr.into_pyarray(py), shape, fmt).into_py_any(py)
    }
    match built {
        Built::Dense(a) => a.into_pyarray(py).into_py_any(py),
        Built::Sparse32(m) => parts(py, m),
        Built::Sparse64(m) => parts(py, m),
    }
}

/// What `matrix` and `estimate` are asked for, as one tuple `(format, dtype, affine_mode, rows,
/// drop_zeros)` (the keyword arguments the two Python functions share, checked there for type).
#[derive(FromPyObject)]
pub struct MatrixRequest(String, String, Option<String>, Option<(usize, usize)>, bool);

impl MatrixRequest {
    /// Parsed: the format, the dtype and the builder's options.
    fn parse(&self) -> PyResult<(MatrixFormat, Dtype, MatrixOptions)> {
        let Self(format, dtype, affine_mode, rows, drop_zeros) = self;
        let parse = || -> Res<_> {
            let mut opts = MatrixOptions::default().affine(affine(affine_mode.as_deref())?).drop_zeros(*drop_zeros);
            if let Some((r0, r1)) = *rows {
                if r0 >= r1 {
                    return Err(format!("invalid rows ({r0}, {r1}): expected (r0, r1) with r0 < r1"));
                }
                opts = opts.rows(r0..r1);
            }
            Ok((format.parse::<MatrixFormat>().map_err(msg)?, self::dtype(dtype)?, opts))
        };
        parse().map_err(crate::error)
    }
}

/// `(rows, cols, nnz, bytes)`: the matrix's shape, an upper bound of its stored entries and of the bytes
/// its build allocates (the library's `ConvLayer::estimate`, which `convmat build` checks before
/// allocating); nothing is built.
#[pyfunction]
#[pyo3(signature = (layer, input_shape, request))]
pub fn estimate(layer: &Layer, input_shape: Vec<usize>, request: MatrixRequest) -> PyResult<(usize, usize, u64, u64)> {
    let (format, dtype, opts) = request.parse()?;
    let est = layer.resolve(&input_shape).map_err(crate::error)?.estimate(format, dtype, &opts);
    Ok((est.rows, est.cols, est.nnz, est.bytes))
}

/// The matrix: a dense array, or `(data, indices, indptr, shape, format)` for SciPy.
#[pyfunction]
#[pyo3(signature = (layer, input_shape, request))]
pub fn matrix(py: Python<'_>, layer: &Layer, input_shape: Vec<usize>, request: MatrixRequest) -> PyResult<Py<PyAny>> {
    let (format, dtype, opts) = request.parse()?;
    let (l, shape) = (layer, input_shape.as_slice());
    match dtype {
        Dtype::F32 => built(py, l, shape, (format, dtype), &opts, |l| l.conv::<f32>()),
        Dtype::Fixed(q) => built(py, l, shape, (format, dtype), &opts, |l| l.stored_integers(q)),
        _ => built(py, l, shape, (format, dtype), &opts, |l| l.conv::<f64>()),
    }
}

/// `matrix` in `T`: resolve the layer, check the estimate against the memory, build (GIL released),
/// hand the arrays to NumPy.
fn built<T: Scalar + Element>(
    py: Python<'_>,
    layer: &Layer,
    input_shape: &[usize],
    (format, dtype): (MatrixFormat, Dtype),
    opts: &MatrixOptions,
    conv: impl Fn(&ConvLayer) -> Result<Conv<T>, convmat_matrix::MatrixError> + Sync,
) -> PyResult<Py<PyAny>> {
    let b = heavy(py, || {
        let l = layer.resolve(input_shape)?;
        let est = l.estimate(format, dtype, opts);
        check_estimate(&est, format)?;
        build(&conv(&l).map_err(msg)?, format, opts, &est)
    })?;
    to_python(py, b)
}

/// The expanded bias, one value per row of the matrix (zeros when the layer has none).
#[pyfunction]
#[pyo3(signature = (layer, input_shape, dtype))]
pub fn bias_vector(py: Python<'_>, layer: &Layer, input_shape: Vec<usize>, dtype: &str) -> PyResult<Py<PyAny>> {
    fn expanded<T: Scalar>(conv: Res<Conv<T>>) -> Res<Vec<T>> {
        let conv = conv?;
        Ok(conv.expanded_bias().unwrap_or_else(|| vec![T::ZERO; conv.rows()]))
    }
    let dtype = self::dtype(dtype).map_err(crate::error)?;
    let resolve = || -> Res<ConvLayer> {
        let l = layer.resolve(&input_shape)?;
        let rows = l.geometry().rows() as u64;
        check_memory(rows.saturating_mul(8), &format!("the bias of {rows} rows"), "the layer is too large")?;
        Ok(l)
    };
    match dtype {
        Dtype::F32 => heavy(py, || expanded(resolve()?.conv::<f32>().map_err(msg)))?.into_pyarray(py).into_py_any(py),
        Dtype::Fixed(q) => {
            heavy(py, || expanded(resolve()?.stored_integers(q).map_err(msg)))?.into_pyarray(py).into_py_any(py)
        }
        _ => heavy(py, || expanded(resolve()?.conv::<f64>().map_err(msg)))?.into_pyarray(py).into_py_any(py),
    }
}
