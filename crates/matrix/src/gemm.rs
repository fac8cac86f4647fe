//! The crate's one GEMM: faer's (AVX2 / AVX-512 kernels chosen at run time), for the two floats.
//!
//! Measured on this project's 2-core AVX-512 VM for the 64->64 3x3 32x32 im2col product (64 x 576 by
//! 576 x 1024, 8 samples), side by side: faer 9.4-11 GMAC/s in f32 and 5.7 in f64, ndarray's
//! matrixmultiply 5.8-6.2 and 2.9. So ndarray's GEMM is not used.

use convmat_numeric::Scalar;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The floats convmat multiplies with faer's GEMM (`f32` and `f64`): the scalars of
/// [`Operator`](crate::Operator). Sealed.
pub trait Float:
    Scalar<Acc = Self> + faer::traits::ComplexField + sealed::Sealed + crate::blocked::kernels::Kernels
{
}
impl Float for f32 {}
impl Float for f64 {}

/// How a GEMM may use threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Threads {
    /// One thread (the caller parallelises over something else, e.g. samples).
    One,
    /// rayon's pool.
    All,
}

/// A row-major operand: `rows x cols` values with `stride` between rows (`stride ≥ cols`).
#[derive(Clone, Copy)]
pub(crate) struct RowMajor<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

impl<'a, T> RowMajor<'a, T> {
    /// A contiguous `rows x cols` matrix.
    pub fn dense(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, stride: cols }
    }
}

/// `c (m x n, row-major, row stride c_stride) (=|+=) op(a) · b`, with `a` row-major `m x k`, or given as
/// its transpose (`k x m` row-major) when `a_transposed`; `b` row-major `k x n`.
///
/// Every view is handed to faer as the column-major transpose (`cᵀ = bᵀ · aᵀ`), so that strides are
/// column strides: faer 0.24 writes out of bounds into a row-major strided destination.
pub(crate) fn gemm<T: Float>(
    c: &mut [T],
    c_stride: usize,
    a: RowMajor<'_, T>,
    a_transposed: bool,
    b: RowMajor<'_, T>,
    add: bool,
    threads: Threads,
) {
    let (m, k, n) = if a_transposed { (a.cols, a.rows, b.cols) } else { (a.rows, a.cols, b.cols) };
    debug_assert_eq!(b.rows, k);
    if m == 0 || n == 0 {
        return;
    }
    // aᵀ as a column-major k x m (or, transposed, m x k then .transpose())
    let at = if a_transposed {
        MatRef::from_column_major_slice_with_stride(a.data, m, k, a.stride).transpose()
    } else {
        MatRef::from_column_major_slice_with_stride(a.data, k, m, a.stride)
    };
    let bt = MatRef::from_column_major_slice_with_stride(b.data, n, k, b.stride);
    let ct = MatMut::from_column_major_slice_with_stride_mut(c, n, m, c_stride);
    let accum = if add { Accum::Add } else { Accum::Replace };
    let parts = match threads {
        Threads::One => 1,
        // at least 256 output columns per part, so that each part still fills faer's kernels
        Threads::All => rayon::current_num_threads().min(n / 256).max(1),
    };
    if parts == 1 {
        faer::linalg::matmul::matmul(ct, accum, bt, at, T::ONE, Par::Seq);
        return;
    }
    // Split the output columns (rows of cᵀ) into one part per thread, each a sequential GEMM: one
    // fork-join per product instead of faer's spinning barriers, which stall whenever a thread of a
    // busy machine is descheduled (measured: 60% of a certified norm's time in barrier waits).
    let chunk = n.div_ceil(parts);
    rayon::scope(|scope| {
        let (mut ct, mut bt) = (ct, bt);
        while ct.nrows() > 0 {
            let rows = chunk.min(ct.nrows());
            let (c0, c1) = ct.split_at_row_mut(rows);
            let (b0, b1) = bt.split_at_row(rows);
            scope.spawn(move |_| faer::linalg::matmul::matmul(c0, accum, b0, at, T::ONE, Par::Seq));
            (ct, bt) = (c1, b1);
        }
    });
}

/// `out = x · wᵀ` for row-major `x` (`n x k`: `n` rows of `k` values) and `w` (`m x k`), `out` row-major
/// `n x m`: a batch of rows through one dense matrix (a Gemm or MatMul block), on faer's GEMM, the rows
/// split over rayon's pool when there are enough of them.
///
/// # Errors
/// `k` zero, or lengths that are not whole rows of `k` values or disagree on `n` and `m`.
pub fn matmul_transposed<T: Float>(x: &[T], w: &[T], k: usize, out: &mut [T]) -> Result<(), crate::MatrixError> {
    let (n, m) = (x.len().checked_div(k).unwrap_or(0), w.len().checked_div(k).unwrap_or(0));
    if k == 0 || x.len() != n * k || w.len() != m * k || out.len() != n * m {
        return Err(crate::MatrixError::Dimension {
            what: "matmul_transposed operands",
            expected: format!("x of n * {k}, w of m * {k} and out of n * m values"),
            got: vec![x.len(), w.len(), out.len()],
        });
    }
    if n == 0 || m == 0 {
        return Ok(());
    }
    // column-major views: outᵀ (m x n) = w (m x k, as wᵀ transposed) · xᵀ (k x n)
    let wt = MatRef::from_column_major_slice(w, k, m).transpose();
    let parts = rayon::current_num_threads().min(n * m * k / (1 << 18)).min(n).max(1);
    let rows = n.div_ceil(parts);
    out.par_chunks_mut(rows * m).zip(x.par_chunks(rows * k)).for_each(|(o, x)| {
        let r = x.len() / k;
        let xt = MatRef::from_column_major_slice(x, k, r);
        let ot = MatMut::from_column_major_slice_mut(o, m, r);
        faer::linalg::matmul::matmul(ot, Accum::Replace, wt, xt, T::ONE, Par::Seq);
    });
    Ok(())
}
