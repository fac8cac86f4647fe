//! Golub-Kahan-Lanczos bidiagonalisation with full reorthogonalisation on the matrix-free operator.

use convmat_matrix::{Conv, Operator};
use faer::{Mat, Par};

use crate::filtered;
use crate::krylov::Bidiagonalization;
// the certified norm's own block loop (certify.rs) takes these from here
use crate::dense::{block_bidiagonal, svd_left};
use crate::limits::check_count;
use crate::start::{start_vector, Start, StartVector};
use crate::vector::{axpy, normalize, random_vector};
use crate::{Monitor, Progress, SpectrumError};

/// The result of [`lanczos`].
#[derive(Clone, Debug, PartialEq)]
pub struct LanczosResult {
    /// The top singular values, nonincreasing.
    pub values: Vec<f64>,
    /// Products with `A` (as many with `Aᵀ`): the Lanczos vectors of an unfiltered run, the filter's
    /// products and the Rayleigh-Ritz step's of a filtered one.
    pub iterations: usize,
    /// The largest residual `||Aᵀu - σv||` of the returned values, relative to `σ_1`.
    pub residual: f64,
    /// Thick restarts taken (0 when the Krylov space never reached its cap; see [`lanczos`]).
    pub restarts: usize,
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
/// Several values (`k > 1`) of a zero-padded layer (any stride, dilation, groups, transposed; `k ≥ 8`
/// and `2k ≤ min(rows, cols)`) are found by block Lanczos on a Chebyshev filter of `AᵀA` whose cut
/// comes from the spectrum of a circular convolution the layer embeds in (ARCHITECTURE.md, "the
/// filtered top k"): the filter spreads the crowded top of the spectrum apart, so the
/// basis that must be kept orthogonal is several times smaller, and a Rayleigh-Ritz step with `A`
/// itself gives the values, their vectors and explicit residuals. Other layers, and any filtered run
/// that cannot vouch for its order (a cut above `σ_k²`), use Golub-Kahan bidiagonalisation of `A`.
/// Both are block methods, `min(k, 16)` vectors per block, with full reorthogonalisation as matrix
/// products: a singular value repeated up to the block size is returned as often as it occurs (a
/// single-vector Krylov method sees each distinct value once). The bidiagonalisation's basis is
/// capped at `2k + max(100, 8 x block)` vectors: at the cap a thick restart keeps the top `k` Ritz
/// triples and an eighth of the others (Krylov-Schur form of the bidiagonalisation, see
/// [`LanczosResult::restarts`]), so memory and the cost of a step stay bounded however many steps the
/// values need. The residual returned is the explicit `max(||A v - σ u||, ||Aᵀu - σ v||) / σ_1` of the
/// returned Ritz vectors. Circular
/// layers are still best served by [`fft_singular_values`](crate::fft_singular_values), as
/// [`Method::Auto`](crate::Method::Auto) does.
///
/// # Errors
/// `k` larger than `min(rows, cols)`.
pub fn lanczos(conv: &Conv<f64>, k: usize, tol: f64) -> Result<LanczosResult, SpectrumError> {
    lanczos_from(conv, k, tol, Start::Auto)
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
    let max = check_count(conv, k)?;
    monitor.check()?;
    let (v, start) = start_vector(conv, start);
    let (Ritz { values, residual, .. }, iterations, restarts) = if k == 1 {
        let (ritz, steps) = norm_lanczos(conv, v, tol, max, monitor)?;
        (ritz, steps, 0)
    } else {
        let b = block_size(k).min(max);
        let cap = basis_cap(k, b);
        match filtered::top_k(conv, &v, k, tol, b, cap, monitor)? {
            Some(f) => {
                (Ritz { values: f.values, residual: f.residual, converged: f.converged }, f.products, f.restarts)
            }
            None => block_bidiagonalize(conv, v, k, tol, max, cap, monitor)?,
        }
    };
    Ok(LanczosResult { values, iterations, residual, start, restarts })
}

/// The block size for `k > 1` values: repeated singular values up to this multiplicity are all found.
/// 16 (not more) because the cost is the reorthogonalisation, proportional to the products, and a
/// smaller block needs fewer (top 300 of a 16384 x 16384 layer: 2368 products with 16, 3232 with 32).
pub(crate) fn block_size(k: usize) -> usize {
    k.clamp(2, 16)
}

/// The basis cap for the top `k` in blocks of `b`: `2k + max(100, 8b)`. A restart keeps the top `k`
/// Ritz triples and an eighth of the rest (measured on the top 300 of a 16384 x 16384 layer: the
/// cost per product, reorthogonalisation plus restart, is flat around a cap of 2k + 100 keeping k + 50).
pub(crate) fn basis_cap(k: usize, b: usize) -> usize {
    2 * k + (8 * b).max(100)
}

/// Block Golub-Kahan-Lanczos on the shared engine ([`Bidiagonalization`]): `b` vectors per block, the
/// first the start vector and the others random, full reorthogonalisation. The Ritz values are the
/// singular values of the projection; a Ritz triple's residual is `||G p||` (see [`crate::krylov`]).
/// When the basis would pass its cap ([`basis_sizes`]), a thick restart keeps the top Ritz triples
/// (converged ones included: they stay in the basis, so later vectors are orthogonal to them). The
/// returned residuals are the explicit ones of the Ritz vectors. Returns the Ritz values, the products
/// taken and the restarts.
fn block_bidiagonalize(
    conv: &Conv<f64>,
    start: Vec<f64>,
    k: usize,
    tol: f64,
    max: usize,
    cap: usize,
    monitor: &Monitor<'_>,
) -> Result<(Ritz, usize, usize), SpectrumError> {
    let cols = conv.cols();
    let b = block_size(k).min(max);
    let keep = k + cap.saturating_sub(k) / 8;
    let mut progress = Progress::new(k);
    // the first block: the start vector and b - 1 random ones (blocks are column-major n x b)
    let mut block = random_vector(cols * b);
    block[..cols].copy_from_slice(&start);
    let mut krylov = Bidiagonalization::new(conv, &block)?;
    let (mut next_check, mut restarts) = (k, 0);
    loop {
        krylov.step(monitor)?;
        let dim = krylov.dim();
        let full = dim + b > max;
        let restart = !full && dim + b > cap && keep + b <= cap;
        if dim >= next_check || full || restart {
            // checking costs an SVD of the dim x dim B (cubic): every quarter of the dimension so far;
            // once restarting, at each restart, and four times a cycle when the values are near
            next_check = dim + (dim / 4).max(b);
            let t = krylov.ritz(restart)?;
            let ritz = summarize(&t.values, &t.residuals, k, tol);
            if full && ritz.residual > tol && conv.rows().saturating_mul(cols) <= crate::DENSE_LIMIT {
                // no room for another block: the Krylov space is nearly the whole (small) matrix
                let mut values = crate::dense_singular_values(conv)?;
                values.truncate(k);
                return Ok((Ritz { values, residual: 0.0, converged: k }, dim, restarts));
            }
            if ritz.residual <= tol || full {
                // confirmed by the explicit residuals of the Ritz vectors
                let t = if t.right.is_some() { t } else { krylov.ritz(true)? };
                let explicit = krylov.explicit_residuals(&t, k.min(t.values.len()))?;
                let ritz = summarize(&t.values, &explicit, k, tol);
                return Ok((ritz, krylov.steps() * b, restarts));
            }
            (progress.residual, progress.converged) = (ritz.residual, ritz.converged);
            if restart {
                krylov.restart(&t, keep);
                restarts += 1;
            }
            if restarts > 0 {
                let near = ritz.residual <= 1e3 * tol;
                next_check = if near { krylov.dim() + ((cap - keep) / 4).max(b) } else { usize::MAX };
            }
        }
        progress.steps = krylov.steps();
        monitor.step(&progress)?;
    }
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

/// Singular values of the block-bidiagonal `B` with the residuals of the top `k` (and how many are
/// within `tol`).
fn block_ritz(diag: &[Mat<f64>], upper: &[Mat<f64>], k: usize, tol: f64) -> Result<Ritz, SpectrumError> {
    let b = diag[0].nrows();
    let n = diag.len() * b;
    let m = block_bidiagonal(diag, upper);
    // singular values and left vectors only (the residuals need the last block row of U)
    let (s, u) = svd_left(m.as_ref(), true, Par::rayon(0))?;
    let u = u.expect("left vectors were asked for");
    let last = u.subrows(n - b, b);
    let d = upper.last().expect("one block at least");
    let residuals: Vec<f64> = (0..k.min(n)).map(|i| (d * last.col(i)).norm_l2()).collect();
    Ok(summarize(&s, &residuals, k, tol))
}

/// The top `k` of Ritz values with their absolute residuals: the largest residual relative to `σ_1`
/// and how many are within `tol`.
fn summarize(values: &[f64], residuals: &[f64], k: usize, tol: f64) -> Ritz {
    let sigma1 = values[0].max(f64::MIN_POSITIVE);
    let k = k.min(values.len());
    let residuals: Vec<f64> = residuals[..k].iter().map(|r| r / sigma1).collect();
    let residual = residuals.iter().copied().fold(0.0, f64::max);
    let converged = residuals.iter().filter(|&&r| r <= tol).count();
    Ritz { values: values[..k].to_vec(), residual, converged }
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

#[cfg(test)]
mod tests {
    use super::*;
    use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};

    /// A basis cap far below what convergence needs: the top `k` comes out through many thick
    /// restarts, equal to the dense SVD's, with explicit residuals within the tolerance.
    #[test]
    fn thick_restarts_converge_to_the_dense_values() {
        let cases = [
            (ConvSpec::new(2, 3, 4, [3]).with_padding(Padding::uniform(1)), vec![12, 12], 12),
            (ConvSpec::new(2, 2, 3, [3]).with_stride([2]).with_padding(Padding::uniform(1)), vec![20, 18], 7),
            (
                ConvSpec::new(1, 2, 2, [3]).with_padding(Padding::Same).with_padding_mode(PaddingMode::Reflect),
                vec![150],
                10,
            ),
        ];
        for (spec, input, k) in cases {
            let w = random_vector(spec.weight_shape().iter().product());
            let conv = Conv::new(Geometry::new(&spec.with_bias(false), &input).unwrap(), w, None).unwrap();
            let dense = crate::dense_singular_values(&conv).unwrap();
            let max = conv.rows().min(conv.cols());
            let b = block_size(k);
            let (start, _) = start_vector(&conv, Start::Auto);
            let (ritz, products, restarts) =
                block_bidiagonalize(&conv, start, k, 1e-10, max, k + 2 * b, &Monitor::new()).unwrap();
            let what = format!("{input:?} top {k}");
            assert!(restarts >= 3, "{what}: {restarts} restarts");
            assert!(products > max, "{what}: {products} products");
            assert!(ritz.residual <= 1e-10, "{what}: residual {}", ritz.residual);
            for (i, (got, expect)) in ritz.values.iter().zip(&dense).enumerate() {
                assert!((got - expect).abs() <= 1e-9 * dense[0], "{what}: value {i}: {got} vs {expect}");
            }
        }
    }
}
