//! Dense singular values: faer's SVD of a small matrix, of a layer's dense matrix, of a block-bidiagonal
//! projection.

use convmat_matrix::Conv;
use faer::{Mat, MatRef, Par};

use crate::SpectrumError;

/// Singular values of a small (complex or real) matrix, in nonincreasing order, computed sequentially
/// (the callers parallelise over blocks).
pub(crate) fn svd_values<T: faer::traits::ComplexField>(a: MatRef<'_, T>) -> Result<Vec<T::Real>, SpectrumError> {
    svd_left(a, false, Par::Seq).map(|(s, _)| s)
}

/// Singular values (nonincreasing) and, if asked, the thin left singular vectors.
type SvdParts<T> = (Vec<<T as faer::traits::ComplexField>::Real>, Option<Mat<T>>);

/// Singular values (nonincreasing) and, if `left`, the thin left singular vectors, by faer's SVD
/// without the right vectors (which no caller needs).
pub(crate) fn svd_left<T: faer::traits::ComplexField>(
    a: MatRef<'_, T>,
    left: bool,
    par: Par,
) -> Result<SvdParts<T>, SpectrumError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::svd::{svd, svd_scratch, ComputeSvdVectors};
    let (m, n) = a.shape();
    let mut s = faer::diag::Diag::<T>::zeros(m.min(n));
    let mut u = left.then(|| Mat::<T>::zeros(m, m.min(n)));
    let vectors = if left { ComputeSvdVectors::Thin } else { ComputeSvdVectors::No };
    let scratch = svd_scratch::<T>(m, n, vectors, ComputeSvdVectors::No, par, Default::default());
    let u_mut = u.as_mut().map(|u| u.as_mut());
    svd(a, s.as_mut(), u_mut, None, par, MemStack::new(&mut MemBuffer::new(scratch)), Default::default())
        .map_err(|_| SpectrumError::Svd)?;
    Ok((s.column_vector().iter().map(|x| faer::traits::math_utils::real(x)).collect(), u))
}

/// The largest dense matrix [`dense_singular_values`] accepts (entries).
pub const DENSE_LIMIT: usize = 30_000_000;

/// All singular values of a layer through its dense matrix (faer's SVD), nonincreasing.
///
/// # Errors
/// A matrix with more than [`DENSE_LIMIT`] entries.
pub fn dense_singular_values(conv: &Conv<f64>) -> Result<Vec<f64>, SpectrumError> {
    let (rows, cols) = (conv.rows(), conv.cols());
    if rows.saturating_mul(cols) > DENSE_LIMIT {
        return Err(SpectrumError::TooLarge { rows, cols, limit: DENSE_LIMIT });
    }
    let a = conv.dense();
    let m = Mat::<f64>::from_fn(rows, cols, |i, j| a[[i, j]]);
    m.singular_values().map_err(|_| SpectrumError::Svd)
}

/// The block-bidiagonal `B`: `R_j` on the diagonal, `D_jᵀ` above it.
pub(crate) fn block_bidiagonal(diag: &[Mat<f64>], upper: &[Mat<f64>]) -> Mat<f64> {
    let b = diag[0].nrows();
    let n = diag.len() * b;
    let mut m = Mat::<f64>::zeros(n, n);
    for (j, r) in diag.iter().enumerate() {
        m.as_mut().submatrix_mut(j * b, j * b, b, b).copy_from(r);
        if j + 1 < diag.len() {
            m.as_mut().submatrix_mut(j * b, (j + 1) * b, b, b).copy_from(upper[j].transpose());
        }
    }
    m
}
