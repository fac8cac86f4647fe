//! `matrix` and `bias_vector`: the layer's exact matrix and expanded bias, handed to NumPy uncopied.

use convmat_matrix::{Affine, Conv, FixedConv, MatrixOptions};
use convmat_numeric::{Overflow, QFormat, Rounding, Scalar};
use numpy::{Element, IntoPyArray};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use sprs::{CsMatI, SpIndex};

use crate::layer::{Layer, Resolved};
use crate::{heavy, msg, Res};

/// The element type asked for.
#[derive(Clone, Copy)]
pub(crate) enum Dtype {
    F32,
    F64,
    Fixed(QFormat),
}

impl Dtype {
    pub(crate) fn parse(text: &str) -> Res<Self> {
        match text.to_ascii_lowercase().as_str() {
            "float32" | "f32" => Ok(Self::F32),
            "float64" | "f64" => Ok(Self::F64),
            q => q.parse::<QFormat>().map(Self::Fixed).map_err(|e| {
                format!("invalid dtype '{text}': expected 'float32', 'float64' or a fixed-point format such as 'q1.7' ({e})")
            }),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csr,
    Csc,
    Dense,
}

fn format(text: &str) -> Res<Format> {
    match text.to_ascii_lowercase().as_str() {
        "csr" => Ok(Format::Csr),
        "csc" => Ok(Format::Csc),
        "dense" => Ok(Format::Dense),
        _ => Err(format!("invalid format '{text}': expected 'csr', 'csc' or 'dense'")),
    }
}

fn affine(text: Option<&str>) -> Res<Affine> {
    match text {
        None => Ok(Affine::None),
        Some("column") => Ok(Affine::Column),
        Some("homogeneous") => Ok(Affine::Homogeneous),
        Some(t) => Err(format!("invalid affine '{t}': expected None, 'column' or 'homogeneous'")),
    }
}

fn cast<T: Scalar>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn float_conv<T: Scalar>(r: &Resolved) -> Res<Conv<T>> {
    Conv::new(r.geometry.clone(), cast(&r.weight), r.bias.as_deref().map(cast)).map_err(msg)
}

/// The stored-integer layer `convmat build --dtype qI.F` writes: weights quantized as MATLAB's
/// `fi(w, 1, I+F, F)`, the bias (for the affine column) in the same format.
// Mirrors src/cli/build.rs until the library offers it.
fn fixed_conv(r: &Resolved, q: QFormat) -> Res<Conv<i64>> {
    let fc = FixedConv::new(r.geometry.clone(), &r.weight, r.bias.as_deref(), q, q).map_err(msg)?;
    let bias =
        r.bias.as_ref().map(|b| b.iter().map(|&v| q.quantize(v, Rounding::Nearest, Overflow::Saturate) as i64).collect());
    Conv::new(fc.raw_conv().geometry().clone(), fc.raw_conv().weight().to_vec(), bias).map_err(msg)
}

/// A built matrix, its arrays ready for NumPy.
enum Built<T> {
    Dense(ndarray::Array2<T>),
    Sparse32(CsMatI<T, i32, i32>),
    Sparse64(CsMatI<T, i64, i64>),
}

fn build<T: Scalar>(conv: &Conv<T>, format: Format, opts: &MatrixOptions) -> Res<Built<T>> {
    if format == Format::Dense {
        return conv.dense_with(opts).map(Built::Dense).map_err(msg);
    }
    // int32 indices when every index and the nnz fit, so SciPy keeps the arrays as they are
    let (rows, cols) = (conv.rows() + 1, conv.cols() + 1);
    let per_row = conv.geometry().grid_channels() / conv.geometry().spec().groups() * conv.geometry().spec().kernel_len() + 1;
    let small = rows.max(cols) < i32::MAX as usize && rows.saturating_mul(per_row) < i32::MAX as usize;
    fn go<T: Scalar, I: SpIndex>(conv: &Conv<T>, f: Format, o: &MatrixOptions) -> Res<CsMatI<T, I, I>> {
        if f == Format::Csc { conv.csc_with(o) } else { conv.csr_with(o) }.map_err(msg)
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

/// The matrix: a dense array, or `(data, indices, indptr, shape, format)` for SciPy.
#[pyfunction]
#[pyo3(signature = (layer, input_shape, format, dtype, affine_mode, rows, drop_zeros))]
#[allow(clippy::too_many_arguments)]
pub fn matrix(
    py: Python<'_>,
    layer: &Layer,
    input_shape: Vec<usize>,
    format: &str,
    dtype: &str,
    affine_mode: Option<&str>,
    rows: Option<(usize, usize)>,
    drop_zeros: bool,
) -> PyResult<Py<PyAny>> {
    let parsed = (|| -> Res<_> {
        let mut opts = MatrixOptions::default().affine(affine(affine_mode)?).drop_zeros(drop_zeros);
        if let Some((r0, r1)) = rows {
            if r0 >= r1 {
                return Err(format!("invalid rows ({r0}, {r1}): expected (r0, r1) with r0 < r1"));
            }
            opts = opts.rows(r0..r1);
        }
        Ok((self::format(format)?, Dtype::parse(dtype)?, opts))
    })();
    let (format, dtype, opts) = parsed.map_err(crate::ConvmatError::new_err)?;
    match dtype {
        Dtype::F32 => {
            let b = heavy(py, || build(&float_conv::<f32>(&layer.resolve(&input_shape)?)?, format, &opts))?;
            to_python(py, b)
        }
        Dtype::F64 => {
            let b = heavy(py, || build(&float_conv::<f64>(&layer.resolve(&input_shape)?)?, format, &opts))?;
            to_python(py, b)
        }
        Dtype::Fixed(q) => {
            let b = heavy(py, || build(&fixed_conv(&layer.resolve(&input_shape)?, q)?, format, &opts))?;
            to_python(py, b)
        }
    }
}

/// The expanded bias, one value per row of the matrix (zeros when the layer has none).
#[pyfunction]
#[pyo3(signature = (layer, input_shape, dtype))]
pub fn bias_vector(py: Python<'_>, layer: &Layer, input_shape: Vec<usize>, dtype: &str) -> PyResult<Py<PyAny>> {
    fn expanded<T: Scalar>(conv: &Conv<T>) -> Vec<T> {
        conv.expanded_bias().unwrap_or_else(|| vec![T::ZERO; conv.rows()])
    }
    match Dtype::parse(dtype).map_err(crate::ConvmatError::new_err)? {
        Dtype::F32 => heavy(py, || Ok(expanded(&float_conv::<f32>(&layer.resolve(&input_shape)?)?)))?
            .into_pyarray(py)
            .into_py_any(py),
        Dtype::F64 => heavy(py, || Ok(expanded(&float_conv::<f64>(&layer.resolve(&input_shape)?)?)))?
            .into_pyarray(py)
            .into_py_any(py),
        Dtype::Fixed(q) => heavy(py, || Ok(expanded(&fixed_conv(&layer.resolve(&input_shape)?, q)?)))?
            .into_pyarray(py)
            .into_py_any(py),
    }
}
