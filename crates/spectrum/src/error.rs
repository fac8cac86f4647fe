//! [`SpectrumError`]: what can go wrong computing singular values.

use thiserror::Error;

/// What can go wrong computing singular values.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SpectrumError {
    /// The FFT method does not apply to this layer.
    #[error("the FFT method does not apply: {why}")]
    NotCircular {
        /// Why not.
        why: String,
    },
    /// A dense SVD of a matrix this large would not fit or finish.
    #[error("a dense SVD of a {rows} x {cols} matrix is too large (limit {limit} entries); ask for --top K or --norm (Lanczos)")]
    TooLarge {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Largest number of entries allowed.
        limit: usize,
    },
    /// None, or more singular values than the matrix has.
    #[error("asked for {k} singular values: ask for 1 to {max} (the matrix has min(rows, cols) = {max})")]
    TooMany {
        /// Asked for.
        k: usize,
        /// min(rows, cols).
        max: usize,
    },
    /// The SVD of a block failed to converge.
    #[error("the SVD did not converge")]
    Svd,
    /// Arrays that are not a CSR matrix of the stated shape.
    #[error("not a CSR matrix of {rows} x {cols} with {nnz} entries: offsets must rise from 0 to nnz, columns be below {cols}")]
    BadSparse {
        /// Rows stated.
        rows: usize,
        /// Columns stated.
        cols: usize,
        /// Entries given.
        nnz: usize,
    },
    /// A relative tolerance outside `(0, 1)` (or NaN).
    #[error("invalid {param} {value}: expected a number between 0 and 1 (exclusive), such as 1e-6")]
    Tolerance {
        /// The parameter as the caller spells it (`--tol`, `tol`).
        param: &'static str,
        /// The value given.
        value: f64,
    },
    /// The caller's [`Monitor`](crate::Monitor) asked the run to stop.
    #[error("cancelled before the singular values were found")]
    Cancelled,
    /// The layer is invalid.
    #[error(transparent)]
    Matrix(#[from] convmat_matrix::MatrixError),
}
