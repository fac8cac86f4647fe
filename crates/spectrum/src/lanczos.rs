//! Golub-Kahan-Lanczos bidiagonalisation with full reorthogonalisation on the matrix-free operator.

use convmat_matrix::Conv;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::{start, Monitor, Progress, SpectrumError};
use convmat_matrix::Operator;

/// The result of [`lanczos`].
#[derive(Clone, Debug, PartialEq)]
pub struct LanczosResult {
    /// The top singular values, nonincreasing.
    pub values: Vec<f64>,
    /// Lanczos steps taken (matrix-vector products with `A` and `Aᵀ` each).
    pub iterations: usize,
    /// The largest residual `||Aᵀu - σv||` of the returned values, relative to `σ_1`.
    pub residual: f64,
    /// Where the Krylov space started: a stride-1 layer's top Fourier mode under a sine envelope
    /// (see [`lanczos`]) or a random vector.
    pub start: StartVector,
}

/// The top `k` singular values of any layer by Golub-Kahan-Lanczos bidiagonalisation with full
/// reorthogonalisation, on the matrix-free operator (`A` is never formed; unfold + GEMM). Stops when
/// every one of the `k` values has a relative residual `||Aᵀu - σv|| / σ_1 <= tol` (exact for Ritz
/// values: `A v = σ u` holds by construction), or when the Krylov space is exhausted (then the values
/// are exact). Each value is then within `tol * σ_1` of a singular value of `A`. That they are the top
/// `k` is what no Krylov method can prove: a singular value whose vector is nearly absent from the
/// start is found late (a tight cluster at a loose `tol` can return its second member for the first);
/// the start vectors below and a small `tol` make that unlikely. The spectral norm alone (`k = 1`)
/// runs without reorthogonalisation: by Paige's theory a Ritz value with a small residual estimate is
/// that close to a singular value even after orthogonality is lost, and the basis need not be stored.
///
/// The start vector matters most for the spectral norm of a large zero-padded layer, whose top singular
/// values cluster (the layer is a finite section of a Toeplitz operator): for a stride-1 layer the start
/// is the kernel's top Fourier mode — the frequency maximising the largest singular value of the
/// `C_out x C_in` symbol, found by a coarse grid and pattern search — modulated by the lowest sine
/// mode of the grid (the top eigenvector of a Toeplitz section looks like that), plus a small random
/// part so that no singular vector is missed. Other layers start from a deterministic random vector.
///
/// Several values (`k > 1`) are found by the block method, `min(k, 32)` vectors per block, with full
/// reorthogonalisation as matrix products: a singular value repeated up to the block size is returned
/// as often as it occurs (a single-vector Krylov method sees each distinct value once). Circular
/// layers are still best served by [`fft_singular_values`](crate::fft_singular_values), as
/// [`Method::Auto`](crate::Method::Auto) does.
///
/// # Errors
/// `k` larger than `min(rows, cols)`.
pub fn lanczos(conv: &Conv<f64>, k: usize, tol: f64) -> Result<LanczosResult, SpectrumError> {
    lanczos_from(conv, k, tol, Start::Auto)
}

/// The start vector a run used (see [`lanczos`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StartVector {
    /// The kernel's top Fourier mode (stride-1 layers), with a small random part.
    Symbol,
    /// A deterministic random vector.
    Random,
}

impl StartVector {
    /// `symbol` or `random` (the names `convmat svd --json` prints).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Symbol => "symbol",
            Self::Random => "random",
        }
    }
}

impl std::fmt::Display for StartVector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How [`lanczos_from`] starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Start {
    /// The symbol start where it applies (see [`lanczos`]), else random.
    #[default]
    Auto,
    /// A deterministic random vector.
    Random,
}

/// [`lanczos`] with the start chosen.
///
/// # Errors
/// `k` larger than `min(rows, cols)`.
pub fn lanczos_from(conv: &Conv<f64>, k: usize, tol: f64, start: Start) -> Result<LanczosResult, SpectrumError> {
    lanczos_with(conv, k, tol, start, &Monitor::new())
}

/// [`lanczos_from`] watched by a [`Monitor`]: progress after every step, stopped between steps when
/// its cancel flag is set.
///
/// # Errors
/// `k` larger than `min(rows, cols)`; [`SpectrumError::Cancelled`].
pub fn lanczos_with(
    conv: &Conv<f64>,
    k: usize,
    tol: f64,
    start: Start,
    monitor: &Monitor<'_>,
) -> Result<LanczosResult, SpectrumError> {
    let (rows, cols) = (conv.rows(), conv.cols());
    let max = rows.min(cols);
    if k == 0 || k > max {
        return Err(SpectrumError::TooMany { k, max });
    }
    monitor.check()?;
    let (v, start) = start_vector(conv, start);
    let (Ritz { values, residual, .. }, iterations) = if k == 1 {
        norm_lanczos(conv, v, tol, max, monitor)?
    } else {
        block_bidiagonalize(conv, v, k, tol, max, monitor)?
    };
    Ok(LanczosResult { values, iterations, residual, start })
}

/// The start vector (not normalised) and its name: the symbol start where it applies and is asked
/// for (with a random part of relative norm 1e-3), else a deterministic random vector.
pub(crate) fn start_vector(conv: &Conv<f64>, start: Start) -> (Vec<f64>, StartVector) {
    let mut v = random_vector(conv.cols());
    let symbol = if start == Start::Auto { start::symbol_start(conv) } else { None };
    match symbol {
        Some(s) => {
            let (ns, nr) = (dot(&s, &s).sqrt(), dot(&v, &v).sqrt());
            v.par_iter_mut().zip(&s).for_each(|(r, &s)| *r = s / ns + 1e-3 * *r / nr);
            (v, StartVector::Symbol)
        }
        None => (v, StartVector::Random),
    }
}

/// The block size for `k > 1` values: repeated singular values up to this multiplicity are all found.
pub(crate) fn block_size(k: usize) -> usize {
    k.clamp(2, 32)
}

/// Block Golub-Kahan-Lanczos: `A V_j = U_j R_j + U_{j-1} D_{j-1}ᵀ`, `Aᵀ U_j = V_j R_jᵀ + V_{j+1} D_j`, with
/// `b` vectors per block, full reorthogonalisation as matrix products (two passes), QR per block. The
/// Ritz values are the singular values of the block-bidiagonal `B` (`R_j` on the diagonal, `D_jᵀ`
/// above); a Ritz triple's residual is `||D_j p_last||` (`p_last` the last block of its left vector).
fn block_bidiagonalize(
    conv: &Conv<f64>,
    start: Vec<f64>,
    k: usize,
    tol: f64,
    max: usize,
    monitor: &Monitor<'_>,
) -> Result<(Ritz, usize), SpectrumError> {
    let (rows, cols) = (conv.rows(), conv.cols());
    let b = block_size(k).min(max);
    let mut progress = Progress::new(k);
    let mut op = Operator::new(conv);
    // the first block: the start vector and b - 1 random ones (blocks are column-major n x b)
    let mut v = random_vector(cols * b);
    v[..cols].copy_from_slice(&start);
    let mut v = qr(&v, cols)?.0;
    let (mut vs, mut us) = (Vec::<f64>::new(), Vec::<f64>::new());
    let (mut diag, mut upper) = (Vec::<Mat<f64>>::new(), Vec::<Mat<f64>>::new());
    let (mut w, mut z) = (vec![0.0; rows * b], vec![0.0; cols * b]);
    let mut next_check = k;
    loop {
        vs.extend_from_slice(&v);
        let vm = MatRef::from_column_major_slice(&v, cols, b);
        // W = A V_j - U_{j-1} D_{j-1}ᵀ, reorthogonalised, = U_j R_j
        op.apply(&v, &mut w)?;
        if let Some(d) = upper.last() {
            let prev = MatRef::from_column_major_slice(&us[us.len() - rows * b..], rows, b);
            let wm = MatMut::from_column_major_slice_mut(&mut w, rows, b);
            faer::linalg::matmul::matmul(wm, Accum::Add, prev, d.transpose(), -1.0, Par::rayon(0));
        }
        // a block step is several products: look at the flag between them too
        monitor.check()?;
        orthogonalize_block(&us, rows, &mut w);
        monitor.check()?;
        let (u, r) = qr(&w, rows)?;
        us.extend_from_slice(&u);
        // Z = Aᵀ U_j - V_j R_jᵀ, reorthogonalised, = V_{j+1} D_j
        op.adjoint(&u, &mut z)?;
        let zm = MatMut::from_column_major_slice_mut(&mut z, cols, b);
        faer::linalg::matmul::matmul(zm, Accum::Add, vm, r.transpose(), -1.0, Par::rayon(0));
        diag.push(r);
        monitor.check()?;
        orthogonalize_block(&vs, cols, &mut z);
        let (next, d) = qr(&z, cols)?;
        upper.push(d);
        let dim = diag.len() * b;
        let full = dim + b > max;
        if dim >= next_check || full {
            // checking costs an SVD of the dim x dim B (cubic): every quarter of the dimension so far
            next_check = dim + (dim / 4).max(b);
            let ritz = block_ritz(&diag, &upper, k, tol)?;
            if full && ritz.residual > tol && rows.saturating_mul(cols) <= crate::DENSE_LIMIT {
                // no room for another block: the Krylov space is nearly the whole (small) matrix
                let mut values = crate::dense_singular_values(conv)?;
                values.truncate(k);
                return Ok((Ritz { values, residual: 0.0, converged: k }, dim));
            }
            if ritz.residual <= tol || full {
                return Ok((ritz, dim));
            }
            (progress.residual, progress.converged) = (ritz.residual, ritz.converged);
        }
        progress.steps = diag.len();
        monitor.step(&progress)?;
        v = next;
    }
}

/// `m -= V (Vᵀ m)` with `V` the `n`-row column-major basis, repeated once when the first pass removed
/// more than half of `m`'s norm (Daniel-Gragg-Kaufman-Stewart, per block).
pub(crate) fn orthogonalize_block(basis: &[f64], n: usize, m: &mut [f64]) {
    let k = basis.len() / n;
    if k == 0 {
        return;
    }
    let v = MatRef::from_column_major_slice(basis, n, k);
    let b = m.len() / n;
    let mut m = MatMut::from_column_major_slice_mut(m, n, b);
    let mut before = m.as_ref().norm_l2();
    for _ in 0..2 {
        let mut c = Mat::<f64>::zeros(k, b);
        faer::linalg::matmul::matmul(c.as_mut(), Accum::Replace, v.transpose(), m.as_ref(), 1.0, Par::rayon(0));
        faer::linalg::matmul::matmul(m.as_mut(), Accum::Add, v, c.as_ref(), -1.0, Par::rayon(0));
        let after = m.as_ref().norm_l2();
        if after > std::f64::consts::FRAC_1_SQRT_2 * before {
            break;
        }
        before = after;
    }
}

/// Thin QR `m = Q R` of a column-major `n`-row block: `Q` column-major, `R` upper triangular. Two
/// passes of Cholesky QR (Gram matrix by GEMM, Cholesky, `M R⁻¹` by GEMM: BLAS3 throughout, several
/// times faster than Householder on a tall block); Householder when the block is too ill-conditioned
/// for the Gram matrix (a pivot below `1e-12` of the largest diagonal: condition beyond `1e6`).
pub(crate) fn qr(m: &[f64], n: usize) -> Result<(Vec<f64>, Mat<f64>), SpectrumError> {
    if let Some((q1, r1)) = cholesky_qr(m, n) {
        if let Some((q, r2)) = cholesky_qr(&q1, n) {
            return Ok((q, r2 * r1));
        }
    }
    let f = MatRef::from_column_major_slice(m, n, m.len() / n).qr();
    let q = f.compute_thin_Q();
    let mut data = Vec::with_capacity(m.len());
    for j in 0..q.ncols() {
        data.extend(q.col(j).iter());
    }
    Ok((data, f.thin_R().to_owned()))
}

/// One pass of Cholesky QR, `None` when the Gram matrix is numerically singular.
fn cholesky_qr(m: &[f64], n: usize) -> Option<(Vec<f64>, Mat<f64>)> {
    let b = m.len() / n;
    let mm = MatRef::from_column_major_slice(m, n, b);
    let mut g = Mat::<f64>::zeros(b, b);
    faer::linalg::matmul::matmul(g.as_mut(), Accum::Replace, mm.transpose(), mm, 1.0, Par::rayon(0));
    // G = Rᵀ R
    let scale = (0..b).map(|j| g[(j, j)]).fold(0.0, f64::max);
    let mut r = Mat::<f64>::zeros(b, b);
    for j in 0..b {
        let d = g[(j, j)] - (0..j).map(|p| r[(p, j)] * r[(p, j)]).sum::<f64>();
        // also catches NaN
        if d.partial_cmp(&(1e-12 * scale)) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let d = d.sqrt();
        r[(j, j)] = d;
        for i in j + 1..b {
            r[(j, i)] = (g[(j, i)] - (0..j).map(|p| r[(p, j)] * r[(p, i)]).sum::<f64>()) / d;
        }
    }
    // R⁻¹, upper triangular, by back substitution per column
    let mut inv = Mat::<f64>::zeros(b, b);
    for j in 0..b {
        inv[(j, j)] = 1.0 / r[(j, j)];
        for i in (0..j).rev() {
            inv[(i, j)] = -(i + 1..=j).map(|p| r[(i, p)] * inv[(p, j)]).sum::<f64>() / r[(i, i)];
        }
    }
    let mut q = vec![0.0; m.len()];
    let qm = MatMut::from_column_major_slice_mut(&mut q, n, b);
    faer::linalg::matmul::matmul(qm, Accum::Replace, mm, inv.as_ref(), 1.0, Par::rayon(0));
    Some((q, r))
}

/// The top Ritz values of a bidiagonalisation and their residual.
struct Ritz {
    /// The top `k` Ritz values, nonincreasing.
    values: Vec<f64>,
    /// The largest residual `||Aᵀu - σv||` among them, relative to `σ_1`.
    residual: f64,
    /// How many of them have a relative residual at most the tolerance.
    converged: usize,
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

/// Singular values of the block-bidiagonal `B` with the residuals of the top `k` (and how many are
/// within `tol`).
fn block_ritz(diag: &[Mat<f64>], upper: &[Mat<f64>], k: usize, tol: f64) -> Result<Ritz, SpectrumError> {
    let b = diag[0].nrows();
    let n = diag.len() * b;
    let m = block_bidiagonal(diag, upper);
    // singular values and left vectors only (the residuals need the last block row of U)
    let (s, u) = crate::svd_left(m.as_ref(), true, Par::rayon(0))?;
    let u = u.expect("left vectors were asked for");
    let last = u.subrows(n - b, b);
    let d = upper.last().expect("one block at least");
    let sigma1 = s[0].max(f64::MIN_POSITIVE);
    let k = k.min(n);
    let residuals: Vec<f64> = (0..k).map(|i| (d * last.col(i)).norm_l2() / sigma1).collect();
    let residual = residuals.iter().copied().fold(0.0, f64::max);
    let converged = residuals.iter().filter(|&&r| r <= tol).count();
    Ok(Ritz { values: s[..k].to_vec(), residual, converged })
}

/// Single-vector Golub-Kahan-Lanczos for the norm. It needs no reorthogonalisation (Paige): a Ritz
/// value whose residual estimate is small is that close to a singular value, and lost orthogonality
/// only adds copies of converged values. So only the previous `u` and `v` are kept; the Ritz values
/// are those of the bidiagonal, as 1 x 1 blocks of [`block_ritz`].
fn norm_lanczos(
    conv: &Conv<f64>,
    mut v: Vec<f64>,
    tol: f64,
    max: usize,
    monitor: &Monitor<'_>,
) -> Result<(Ritz, usize), SpectrumError> {
    let (rows, cols) = (conv.rows(), conv.cols());
    let mut progress = Progress::new(1);
    let mut op = Operator::new(conv);
    normalize(&mut v);
    let (mut alphas, mut betas) = (Vec::<Mat<f64>>::new(), Vec::<Mat<f64>>::new());
    let (mut u, mut u_prev, mut w) = (vec![0.0; rows], vec![0.0; rows], vec![0.0; cols]);
    let (mut max_alpha, mut next_check) = (0.0f64, 1);
    op.apply(&v, &mut u)?;
    loop {
        // u_j = A v_j - beta_{j-1} u_{j-1}
        if let Some(b) = betas.last() {
            axpy(&mut u, -b[(0, 0)], &u_prev);
        }
        let alpha = normalize(&mut u);
        max_alpha = max_alpha.max(alpha);
        alphas.push(Mat::from_fn(1, 1, |_, _| alpha));
        // v_{j+1} = Aᵀ u_j - alpha_j v_j
        op.adjoint(&u, &mut w)?;
        axpy(&mut w, -alpha, &v);
        let beta = normalize(&mut w);
        betas.push(Mat::from_fn(1, 1, |_, _| beta));
        let steps = alphas.len();
        // an invariant subspace: the Ritz values are exact
        let invariant = beta <= 1e-14 * max_alpha || alpha == 0.0;
        if steps >= next_check || invariant || steps == max {
            // checking costs an SVD of the steps x steps bidiagonal (cubic, but small next to a
            // step while short): every step up to 100, every fiftieth of the steps so far up to 200,
            // then every tenth
            next_check = steps + (steps / if steps < 200 { 50 } else { 10 }).max(1);
            let ritz = block_ritz(&alphas, &betas, 1, tol)?;
            if invariant {
                return Ok((Ritz { residual: 0.0, converged: 1, ..ritz }, steps));
            }
            if ritz.residual <= tol || steps == max {
                return Ok((ritz, steps));
            }
            (progress.residual, progress.converged) = (ritz.residual, ritz.converged);
        }
        progress.steps = steps;
        monitor.step(&progress)?;
        std::mem::swap(&mut u, &mut u_prev);
        std::mem::swap(&mut v, &mut w);
        op.apply(&v, &mut u)?;
    }
}

/// A deterministic pseudo-random vector, uniform in [-0.5, 0.5).
pub(crate) fn random_vector(n: usize) -> Vec<f64> {
    let mut state = 0x9E3779B97F4A7C15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.par_iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    y.par_iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

pub(crate) fn normalize(v: &mut [f64]) -> f64 {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.par_iter_mut().for_each(|x| *x /= n);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Q R = M` with orthonormal `Q` and upper triangular `R`, for a well-conditioned block (Cholesky QR)
    /// and for blocks too ill-conditioned for it (Householder): nearly dependent and rank-deficient.
    #[test]
    fn qr_factors_well_and_ill_conditioned_blocks() {
        let (n, b) = (200, 6);
        let base = random_vector(n * b);
        let mut near = base.clone();
        // column 3 = column 1 + 1e-9 noise; condition ~1e9, beyond Cholesky QR's reach
        for i in 0..n {
            near[3 * n + i] = base[n + i] + 1e-9 * base[3 * n + i];
        }
        let mut deficient = base.clone();
        deficient[5 * n..].copy_from_slice(&base[2 * n..3 * n]);
        for (name, m, cholesky) in
            [("random", &base, true), ("nearly dependent", &near, false), ("rank 5", &deficient, false)]
        {
            assert_eq!(cholesky_qr(m, n).is_some(), cholesky, "{name}");
            let (q, r) = qr(m, n).unwrap();
            let qm = MatRef::from_column_major_slice(&q, n, b);
            let mm = MatRef::from_column_major_slice(m, n, b);
            assert!((qm * &r - mm).norm_l2() <= 1e-12 * mm.norm_l2(), "{name}: Q R != M");
            let gram = qm.transpose() * qm;
            assert!((gram - Mat::<f64>::identity(b, b)).norm_l2() <= 1e-13, "{name}: Q not orthonormal");
            assert!((0..b).all(|j| (j + 1..b).all(|i| r[(i, j)] == 0.0)), "{name}: R not upper triangular");
        }
    }
}
