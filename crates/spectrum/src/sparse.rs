//! The spectral norm of an explicit sparse matrix (a model's Gemm, a folded BatchNorm, a pool whose
//! border windows divide by fewer taps): exact by dense SVD when small, else a two-sided bound.

use faer::Mat;
use rayon::prelude::*;

use crate::vector::{dot, normalize, random_vector};
use crate::{Certificate, Monitor, NormInterval, Progress, SpectrumError};

/// A CSR matrix borrowed as its three arrays (row offsets, column indices, values), as SciPy and
/// sprs store it.
#[derive(Clone, Copy, Debug)]
pub struct CsrRef<'a> {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows + 1` offsets into `indices` and `data`.
    pub indptr: &'a [usize],
    /// Column of each stored entry.
    pub indices: &'a [u32],
    /// Value of each stored entry.
    pub data: &'a [f64],
}

impl CsrRef<'_> {
    fn check(&self) -> Result<(), SpectrumError> {
        let nnz = self.data.len();
        let ok = self.indptr.len() == self.rows + 1
            && self.indices.len() == nnz
            && self.indptr.first() == Some(&0)
            && self.indptr.last() == Some(&nnz)
            && self.indptr.windows(2).all(|w| w[0] <= w[1])
            && self.indices.iter().all(|&c| (c as usize) < self.cols);
        if ok {
            Ok(())
        } else {
            Err(SpectrumError::BadSparse { rows: self.rows, cols: self.cols, nnz })
        }
    }

    fn row(&self, r: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let span = self.indptr[r]..self.indptr[r + 1];
        self.indices[span.clone()].iter().map(|&c| c as usize).zip(self.data[span].iter().copied())
    }

    /// `y = A x`.
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        y.par_iter_mut().enumerate().for_each(|(r, y)| *y = self.row(r).map(|(c, v)| v * x[c]).sum());
    }

    /// `x = Aᵀ y` (sequential scatter: the explicit blocks this serves are small next to a layer).
    fn adjoint(&self, y: &[f64], x: &mut [f64]) {
        x.iter_mut().for_each(|x| *x = 0.0);
        for (r, &yr) in y.iter().enumerate() {
            for (c, v) in self.row(r) {
                x[c] += v * yr;
            }
        }
    }
}

/// Matrices up to this many entries get [`sparse_norm`]'s dense SVD (a 2000 x 2000 SVD: about a
/// second here).
pub const SPARSE_DENSE_LIMIT: usize = 4_000_000;

/// Power iteration steps at most.
const MAX_STEPS: usize = 2000;

/// [`sparse_norm`] of an sprs CSR matrix (the matrix a layer or a model's block builds).
///
/// # Errors
/// As [`sparse_norm`].
pub fn csr_norm(
    m: &sprs::CsMatI<f64, u32, usize>,
    tol: f64,
    monitor: &Monitor<'_>,
) -> Result<NormInterval, SpectrumError> {
    let indptr = m.indptr();
    let csr =
        CsrRef { rows: m.rows(), cols: m.cols(), indptr: indptr.raw_storage(), indices: m.indices(), data: m.data() };
    sparse_norm(csr, tol, monitor)
}

/// The spectral norm of an explicit matrix with an interval. Up to [`SPARSE_DENSE_LIMIT`] entries:
/// its dense SVD ([`Certificate::Exact`]). Larger: power iteration on `AᵀA` until the Rayleigh
/// quotient changes by less than `tol` relative between steps (`lower`, a Rayleigh quotient, is
/// certified whatever the convergence), and `upper = min(||A||_F, sqrt(||A||_1 ||A||_∞))`
/// ([`Certificate::Inequality`]). A diagonal-like matrix (at most one entry per row and per column)
/// is exact at any size: its singular values are the entries' magnitudes.
///
/// # Errors
/// Arrays that are not a CSR matrix of that shape; [`SpectrumError::Cancelled`].
pub fn sparse_norm(a: CsrRef<'_>, tol: f64, monitor: &Monitor<'_>) -> Result<NormInterval, SpectrumError> {
    a.check()?;
    monitor.check()?;
    let exact = |value: f64, iterations: usize| NormInterval {
        value,
        lower: value,
        upper: Some(value),
        certificate: Certificate::Exact,
        cluster: 0,
        iterations,
        residual: 0.0,
        start: None,
        upper_bounds: Vec::new(),
    };
    if a.rows == 0 || a.cols == 0 || a.data.is_empty() {
        return Ok(exact(0.0, 0));
    }
    let mut col_count = vec![0u32; a.cols];
    a.indices.iter().for_each(|&c| col_count[c as usize] += 1);
    let one_per_row = a.indptr.windows(2).all(|w| w[1] - w[0] <= 1);
    if one_per_row && col_count.iter().all(|&n| n <= 1) {
        return Ok(exact(a.data.iter().fold(0.0, |m: f64, v| m.max(v.abs())), 0));
    }
    if a.rows.saturating_mul(a.cols) <= SPARSE_DENSE_LIMIT {
        let mut m = Mat::<f64>::zeros(a.rows, a.cols);
        for r in 0..a.rows {
            for (c, v) in a.row(r) {
                m[(r, c)] += v;
            }
        }
        let s = m.singular_values().map_err(|_| SpectrumError::Svd)?;
        return Ok(exact(s.first().copied().unwrap_or(0.0), 0));
    }
    // upper: the norm inequalities
    let frobenius = a.data.iter().map(|v| v * v).sum::<f64>().sqrt();
    let row_max = (0..a.rows).map(|r| a.row(r).map(|(_, v)| v.abs()).sum::<f64>()).fold(0.0, f64::max);
    let mut col_sums = vec![0.0; a.cols];
    a.indices.iter().zip(a.data).for_each(|(&c, v)| col_sums[c as usize] += v.abs());
    let col_max = col_sums.iter().copied().fold(0.0, f64::max);
    let upper = frobenius.min((row_max * col_max).sqrt()) * (1.0 + 1e-13);
    // lower: power iteration on AᵀA
    let mut x = random_vector(a.cols);
    normalize(&mut x);
    let (mut y, mut z) = (vec![0.0; a.rows], vec![0.0; a.cols]);
    let mut progress = Progress::new(1);
    let (mut sigma, mut residual) = (0.0f64, f64::INFINITY);
    for step in 1..=MAX_STEPS {
        a.apply(&x, &mut y);
        let s = dot(&y, &y).sqrt();
        a.adjoint(&y, &mut z);
        // ||AᵀA x - s² x|| / s²: the eigen-residual of the Rayleigh pair
        residual = if s > 0.0 {
            z.iter().zip(&x).map(|(z, x)| (z - s * s * x).powi(2)).sum::<f64>().sqrt() / (s * s)
        } else {
            0.0
        };
        let change = (s - sigma).abs() / s.max(f64::MIN_POSITIVE);
        sigma = sigma.max(s);
        progress.steps = step;
        progress.residual = residual;
        progress.converged = usize::from(change <= tol);
        monitor.step(&progress)?;
        if s == 0.0 || change <= tol || residual <= tol {
            break;
        }
        x.copy_from_slice(&z);
        normalize(&mut x);
    }
    let lower = sigma * (1.0 - 1e-13);
    Ok(NormInterval {
        value: sigma,
        lower,
        upper: Some(upper.max(lower)),
        certificate: Certificate::Inequality,
        cluster: 0,
        iterations: progress.steps,
        residual,
        start: None,
        upper_bounds: Vec::new(),
    })
}
