//! Tall-skinny block kernels for Krylov bases (`n` rows, a few columns): Gram matrices, rank-`p`
//! updates, block Gram-Schmidt and Cholesky QR, parallel over row chunks with sequential GEMMs in
//! each. For `n ~ 1e5` and 2-4 columns these are memory-bound; a threaded GEMM per call spends
//! more in its barriers than in arithmetic (and stalls badly on a loaded machine), while row chunks
//! stream each vector once per pass.

use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Rows per parallel chunk.
const CHUNK: usize = 4096;

/// `aᵀ b` (`a` is `n x p`, `b` is `n x q`).
pub(crate) fn gram(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let (p, q) = (a.ncols(), b.ncols());
    a.par_row_chunks(CHUNK)
        .zip(b.par_row_chunks(CHUNK))
        .map(|(a, b)| {
            let mut g = Mat::<f64>::zeros(p, q);
            faer::linalg::matmul::matmul(g.as_mut(), Accum::Replace, a.transpose(), b, 1.0, Par::Seq);
            g
        })
        .reduce(|| Mat::<f64>::zeros(p, q), |x, y| x + y)
}

/// `out = alpha · a · c` (`Accum::Replace`) or `out += alpha · a · c` (`Accum::Add`); `out` is
/// `n x q`, `a` is `n x p`, `c` is `p x q`.
pub(crate) fn mul(out: MatMut<'_, f64>, accum: Accum, a: MatRef<'_, f64>, c: MatRef<'_, f64>, alpha: f64) {
    out.par_row_chunks_mut(CHUNK).zip(a.par_row_chunks(CHUNK)).for_each(|(out, a)| {
        faer::linalg::matmul::matmul(out, accum, a, c, alpha, Par::Seq);
    });
}

/// `X q` with `X` the column-major `n`-row basis `x`, column-major (`n x q.ncols()`).
pub(crate) fn combine(x: &[f64], n: usize, q: MatRef<'_, f64>) -> Vec<f64> {
    let xm = MatRef::from_column_major_slice(x, n, q.nrows());
    let mut out = vec![0.0; n * q.ncols()];
    mul(MatMut::from_column_major_slice_mut(&mut out, n, q.ncols()), Accum::Replace, xm, q, 1.0);
    out
}

/// `m += alpha · a · c`.
pub(crate) fn mul_add(m: MatMut<'_, f64>, a: MatRef<'_, f64>, c: MatRef<'_, f64>, alpha: f64) {
    mul(m, Accum::Add, a, c, alpha);
}

/// `m -= V (Vᵀ m)` with `V` the `n`-row column-major basis, repeated once when the first pass removed
/// more than half of `m`'s norm (Daniel-Gragg-Kaufman-Stewart, per block).
pub(crate) fn orthogonalize(basis: &[f64], n: usize, m: &mut [f64]) {
    let k = basis.len() / n;
    if k == 0 {
        return;
    }
    let v = MatRef::from_column_major_slice(basis, n, k);
    let b = m.len() / n;
    let mut m = MatMut::from_column_major_slice_mut(m, n, b);
    let mut before = norm(m.as_ref());
    for _ in 0..2 {
        let c = gram(v, m.as_ref());
        mul_add(m.as_mut(), v, c.as_ref(), -1.0);
        let after = norm(m.as_ref());
        if after > std::f64::consts::FRAC_1_SQRT_2 * before {
            break;
        }
        before = after;
    }
}

/// The Frobenius norm, by chunks.
fn norm(m: MatRef<'_, f64>) -> f64 {
    m.par_row_chunks(CHUNK).map(|c| c.squared_norm_l2()).sum::<f64>().sqrt()
}

/// Thin QR `m = Q R` of a column-major `n`-row block (`Q` column-major, `R` upper triangular):
/// Cholesky QR on the kernels above (Gram matrix, Cholesky, `M R⁻¹`: BLAS3 throughout, several times
/// faster than Householder on a tall block), one pass when the Gram matrix's condition is below `1e4`
/// and two otherwise; Householder when the block is too ill-conditioned for the Gram matrix (a pivot
/// below `1e-12` of the largest diagonal: condition beyond `1e6`).
pub(crate) fn qr(m: &[f64], n: usize) -> Result<(Vec<f64>, Mat<f64>), crate::SpectrumError> {
    let mut q = Vec::new();
    let r = qr_into(m, n, &mut q)?;
    Ok((q, r))
}

/// [`qr`] writing `Q` into `q` (resized to `m`'s length): a loop that factors a block a step reuses
/// one buffer instead of mapping fresh pages each time.
pub(crate) fn qr_into(m: &[f64], n: usize, q: &mut Vec<f64>) -> Result<Mat<f64>, crate::SpectrumError> {
    q.resize(m.len(), 0.0);
    if let Some((r1, well)) = cholesky_qr(m, n, q) {
        // one pass leaves `Q` orthonormal to ~eps·κ(M)²: enough when the block is well-conditioned
        if well {
            return Ok(r1);
        }
        let q1 = q.clone();
        if let Some((r2, _)) = cholesky_qr(&q1, n, q) {
            return Ok(r2 * r1);
        }
    }
    let f = MatRef::from_column_major_slice(m, n, m.len() / n).qr();
    let qm = f.compute_thin_Q();
    for (j, col) in q.chunks_exact_mut(n).enumerate() {
        col.iter_mut().zip(qm.col(j).iter()).for_each(|(d, s)| *d = *s);
    }
    Ok(f.thin_R().to_owned())
}

/// One pass of Cholesky QR into `q`, `None` (and `q` untouched) when the Gram matrix is numerically
/// singular (a pivot below `1e-12` of the largest diagonal); with whether the Gram matrix's condition
/// is below `1e4`.
fn cholesky_qr(m: &[f64], n: usize, q: &mut [f64]) -> Option<(Mat<f64>, bool)> {
    let b = m.len() / n;
    let mm = MatRef::from_column_major_slice(m, n, b);
    let g = gram(mm, mm);
    let (r, inv) = cholesky_factors(&g)?;
    let well = well_conditioned(&g);
    mul(MatMut::from_column_major_slice_mut(q, n, b), Accum::Replace, mm, inv.as_ref(), 1.0);
    Some((r, well))
}

/// Whether a small Gram matrix is positive definite with condition below `1e4`: one
/// Cholesky QR pass then leaves `Q` orthonormal to ~eps·1e8 (false for NaN).
pub(crate) fn well_conditioned(g: &Mat<f64>) -> bool {
    g.self_adjoint_eigen(faer::Side::Lower).is_ok_and(|e| {
        let s = e.S().column_vector();
        let (lo, hi) = (s.iter().copied().fold(f64::INFINITY, f64::min), s.iter().copied().fold(0.0, f64::max));
        lo > 0.0 && (hi / lo).partial_cmp(&1e4) == Some(std::cmp::Ordering::Less)
    })
}

/// `G = Rᵀ R` and `R⁻¹` for a small Gram matrix, `None` when a pivot is below `1e-12` of the largest
/// diagonal (or NaN).
pub(crate) fn cholesky_factors(g: &Mat<f64>) -> Option<(Mat<f64>, Mat<f64>)> {
    let b = g.nrows();
    let scale = (0..b).map(|j| g[(j, j)]).fold(0.0, f64::max);
    let mut r = Mat::<f64>::zeros(b, b);
    for j in 0..b {
        let d = g[(j, j)] - (0..j).map(|p| r[(p, j)] * r[(p, j)]).sum::<f64>();
        if d.partial_cmp(&(1e-12 * scale)) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let d = d.sqrt();
        r[(j, j)] = d;
        for i in j + 1..b {
            r[(j, i)] = (g[(j, i)] - (0..j).map(|p| r[(p, j)] * r[(p, i)]).sum::<f64>()) / d;
        }
    }
    let mut inv = Mat::<f64>::zeros(b, b);
    for j in 0..b {
        inv[(j, j)] = 1.0 / r[(j, j)];
        for i in (0..j).rev() {
            inv[(i, j)] = -(i + 1..=j).map(|p| r[(i, p)] * inv[(p, j)]).sum::<f64>() / r[(i, i)];
        }
    }
    Some((r, inv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::random_vector;

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
            assert_eq!(cholesky_qr(m, n, &mut vec![0.0; m.len()]).is_some(), cholesky, "{name}");
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
