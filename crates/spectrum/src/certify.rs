//! Certified bounds: per-index interlacing upper bounds from circulant embeddings, and a two-sided
//! interval for the spectral norm.
//!
//! # The embedding
//! A zero-padded convolution (any stride, dilation, groups; transposed through its matching
//! convolution) reads, along each axis, padded positions `r = q·s + t·d` in `[0, L)` with
//! `L = (n_w - 1)·s + d·(k - 1) + 1`, the grid of `G` values sitting at `[b, b + G)` and zeros
//! elsewhere. Put the grid on a circle of `m` positions at `b, …, b + G - 1 (mod m)`: every read of a
//! zero lands off the grid iff `m >= G + b` and `m >= L - b`, and the `n_w` windows are distinct rows of
//! the circular convolution iff `(n_w - 1)·s < m`. Then `A = S_out · C_m · S_in` exactly, with `C_m` the
//! circular convolution (stride `s`; polyphase when `s` divides `m`) on the grid `m`, `S_in` an isometric
//! embedding (columns of the identity) and `S_out` a row selection, so by Cauchy interlacing
//! `σ_j(A) <= σ_j(C_m)` for every `j`, for every such `m`; each index takes the minimum over several `m`.
//! A transposed layer is `Aᵀ` of its matching convolution: same singular values, same bounds. A
//! circular layer the FFT cannot diagonalise (a stride that does not divide the input) is a row
//! selection of the stride-1 circular layer on its own grid when `(n_w - 1)·s < n`. Reflect and
//! replicate padding are `B·P` with `P` the padding operator, which is not an isometry (`||P|| > 1`):
//! no interlacing holds, and only the residual statement is made.
//!
//! # The interval
//! On `H = AᵀA` with `λ_j = σ_j²`: Lanczos gives an orthonormal `X` (`k` Ritz vectors); with
//! `M = XᵀHX = diag(μ)` and `R = HX - XM` computed explicitly, `μ_1 <= λ_1` (Rayleigh-Ritz: the lower
//! bound). If the interlacing bounds give `λ_{k+1} <= c < μ_k - ||R||`, Davis-Kahan's sinΘ theorem
//! gives `||sin Θ|| <= s = ||R|| / (μ_k - c) < 1` between `X` and the top-`k` eigenspace (which so has
//! exactly `k` eigenvalues above `c`: Kahan's cluster statement), and the Schur complement of `H` in
//! the basis `[X, X⊥]` gives the quadratic (Kato-Temple type) bound
//! `λ_1 <= μ_1 + ||R||² / ((μ_1 - c)(1 - s²))`. Within the cluster, `H - (R Xᵀ + X Rᵀ)` has `X` as an
//! invariant subspace and differs from `H` by `||R||`, so Weyl bounds `λ_2 <= max(μ_2, ν) + ||R|| = a`
//! (`ν = c + s²(λ_1 - c)` bounds the rest); when `μ_1 > a`, Kato-Temple on the top Ritz vector alone
//! gives `λ_1 <= μ_1 + ρ_1² / (μ_1 - a)` with its own residual `ρ_1`: the top value need not wait for
//! the rest of its cluster to converge. The upper bound is the smaller of the two.
//!
//! Everything is computed in floating point; both ends are padded by `1e-13` relative for rounding.

use convmat_matrix::Conv;
use faer::{Mat, MatRef, Par};

mod small;

use small::{Basis, HalfStep};

use crate::dense::{block_bidiagonal, svd_left};
use crate::embed::{embedding_grids, interlacing_upper_bounds, top_bounds, GRIDS};
use crate::start::{start_block, Start, StartVector};
use crate::tall::qr;
use crate::{Monitor, Phase, Progress, SpectrumError};
use convmat_matrix::{Float, Operator};
use rayon::prelude::*;

/// What a spectral norm's interval rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Certificate {
    /// The value is exact up to rounding (FFT of a circular layer, or a dense SVD): `lower = upper`.
    Exact,
    /// Interlacing upper bounds separate the top `cluster` singular values from the rest; the upper
    /// bound is the quadratic residual bound (Kato-Temple / Davis-Kahan) of that cluster.
    KatoTemple,
    /// No cluster was separated: the upper bound is the interlacing bound of `σ_1` itself.
    Interlacing,
    /// No embedding exists (reflect / replicate padding): the value lies within its residual of a
    /// singular value and `lower` is a Rayleigh quotient, but nothing bounds `σ_1` from above.
    ResidualOnly,
    /// An explicit matrix too large for a dense SVD ([`sparse_norm`](crate::sparse_norm)): `lower` is
    /// a Rayleigh quotient of power iteration, `upper` the norm inequality
    /// `σ_1 <= min(||A||_F, sqrt(||A||_1 ||A||_∞))` (valid, usually loose).
    Inequality,
}

names! {
    /// `exact`, `kato-temple`, `interlacing`, `residual-only` or `norm-inequality`.
    Certificate {
        Exact => "exact",
        KatoTemple => "kato-temple",
        Interlacing => "interlacing",
        ResidualOnly => "residual-only",
        Inequality => "norm-inequality",
    }
}

/// A certified interval for the spectral norm: `lower <= σ_1 <= upper` (up to rounding, ~1e-13).
#[derive(Clone, Debug, PartialEq)]
pub struct NormInterval {
    /// The estimate: the top Ritz value (or the exact value).
    pub value: f64,
    /// A lower bound: the Rayleigh quotient `||A x|| / ||x||` of the top Ritz vector.
    pub lower: f64,
    /// An upper bound, `None` when no embedding exists ([`Certificate::ResidualOnly`]).
    pub upper: Option<f64>,
    /// What the interval rests on.
    pub certificate: Certificate,
    /// The size of the top cluster the bounds separated (0 when none was).
    pub cluster: usize,
    /// Lanczos steps (products with `A` and `Aᵀ` each), 0 for the direct methods.
    pub iterations: usize,
    /// `||Aᵀu - σv|| / σ` of the top Ritz pair.
    pub residual: f64,
    /// Lanczos' start vector (`None` for the direct methods).
    pub start: Option<StartVector>,
    /// The interlacing upper bounds of `σ_1, σ_2, …` that were computed (the top few), empty when
    /// no embedding exists.
    pub upper_bounds: Vec<f64>,
}

/// The largest cluster size tried.
const MAX_CLUSTER: usize = 4;

/// The Ritz values of a block bidiagonalisation and their residual estimates `||D_last p_last||`.
struct Ritz {
    values: Vec<f64>,
    residuals: Vec<f64>,
}

/// Ritz values and residuals of the block-bidiagonal `B` (`R_j` on the diagonal, `D_jᵀ` above):
/// its singular values and left vectors only.
fn block_ritz(diag: &[Mat<f64>], upper: &[Mat<f64>]) -> Result<Ritz, SpectrumError> {
    let b = diag[0].nrows();
    let n = diag.len() * b;
    let m = block_bidiagonal(diag, upper);
    let (values, left) = svd_left(m.as_ref(), true, Par::Seq)?;
    let left = left.expect("left vectors were asked for");
    let d = upper.last().expect("one block at least");
    let last = left.as_ref().subrows(n - b, b);
    let residuals = (0..n).map(|i| (d * last.col(i)).norm_l2()).collect();
    Ok(Ritz { values, residuals })
}

/// The first `k` right singular vectors of the block-bidiagonal `B`: the Ritz vectors' coordinates.
fn block_right(diag: &[Mat<f64>], upper: &[Mat<f64>], k: usize) -> Result<Mat<f64>, SpectrumError> {
    let svd = block_bidiagonal(diag, upper).svd().map_err(|_| SpectrumError::Svd)?;
    Ok(svd.V().subcols(0, k).to_owned())
}

/// The explicit certificate of `k` Ritz vectors: `(μ descending, ||R||)` of `H = AᵀA` on `X`.
struct Explicit {
    mu: Vec<f64>,
    /// `||R||`.
    r: f64,
    /// `||R e_i||`: each Ritz vector's own residual.
    rho: Vec<f64>,
}

fn explicit(op: &mut Operator<'_, f64>, x: &[f64], rows: usize, cols: usize) -> Result<Explicit, SpectrumError> {
    // the tall-skinny kernels: faer's `*` on these 2-column blocks would run its threaded GEMM
    use crate::tall::{combine, gram};
    let k = x.len() / cols;
    let (x, _) = qr(x, cols)?;
    let mut y = zeroed(rows * k);
    op.apply(&x, &mut y)?;
    let ym = MatRef::from_column_major_slice(&y, rows, k);
    let eig = gram(ym, ym).self_adjoint_eigen(faer::Side::Lower).map_err(|_| SpectrumError::Svd)?;
    // ascending eigenvalues: rotate to descending
    let q = Mat::<f64>::from_fn(k, k, |i, j| eig.U()[(i, k - 1 - j)]);
    let mu: Vec<f64> = (0..k).map(|j| eig.S().column_vector()[k - 1 - j]).collect();
    let (xr, yr) = (combine(&x, cols, q.as_ref()), combine(&y, rows, q.as_ref()));
    let mut z = zeroed(cols * k);
    op.adjoint(&yr, &mut z)?;
    // R = Aᵀ Y - X diag(μ), in place of Aᵀ Y
    for (j, (zj, xj)) in z.chunks_exact_mut(cols).zip(xr.chunks_exact(cols)).enumerate() {
        zj.par_iter_mut().zip(xj).for_each(|(z, &x)| *z -= x * mu[j]);
    }
    let rm = MatRef::from_column_major_slice(&z, cols, k);
    // ||R||₂² and ||R e_i||² from RᵀR
    let rtr = gram(rm, rm);
    let top = rtr.self_adjoint_eigen(faer::Side::Lower).map_err(|_| SpectrumError::Svd)?;
    let r = top.S().column_vector().iter().copied().fold(0.0, f64::max).sqrt();
    let rho = (0..k).map(|j| rtr[(j, j)].max(0.0).sqrt()).collect();
    Ok(Explicit { mu, r, rho })
}

/// Zeros for a product's output, written once: the product adds into it, and a fresh page read
/// before it is written is mapped to the zero page, then copied on write with a TLB shootdown.
fn zeroed(n: usize) -> Vec<f64> {
    let mut v = vec![0.0; n];
    v.fill(0.0);
    v
}

/// The upper bound of `λ_1` from a separated cluster (see the module docs), `None` if not separated.
fn kato_temple(e: &Explicit, c: f64) -> Option<f64> {
    let k = e.mu.len();
    let gap = e.mu[k - 1] - c;
    // also refuses NaN
    if gap.partial_cmp(&e.r) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let s = e.r / gap;
    let cluster = e.mu[0] + e.r * e.r / ((e.mu[0] - c) * (1.0 - s * s));
    if k == 1 {
        return Some(cluster);
    }
    // σ_1 alone: H' = H - (R Xᵀ + X Rᵀ) has X invariant with eigenvalues μ and X⊥ with those of
    // N = X⊥ᵀ H X⊥ (at most ν = c + s² (λ_1 - c)), and ||H - H'|| = ||R||, so by Weyl
    // λ_2 <= max(μ_2, ν) + ||R|| =: a; if μ_1 > a, Kato-Temple on the top Ritz vector alone gives
    // λ_1 <= μ_1 + ρ_1² / (μ_1 - a)
    let nu = c + s * s * (cluster - c);
    let a = e.mu[1].max(nu) + e.r;
    let single = if e.mu[0] > a { e.mu[0] + e.rho[0] * e.rho[0] / (e.mu[0] - a) } else { f64::INFINITY };
    Some(cluster.min(single))
}

/// Relative padding for rounding in the computed quantities.
const ROUNDING: f64 = 1e-13;

/// The spectral norm of any layer with an interval: Lanczos bidiagonalisation with full
/// reorthogonalisation, certified as the module docs derive, until `(upper - lower) / lower <= tol`.
/// Layers without an embedding stop when the top residual is below `tol` and get
/// [`Certificate::ResidualOnly`].
///
/// # Errors
/// An SVD that fails to converge.
pub fn certified_norm(conv: &Conv<f64>, tol: f64) -> Result<NormInterval, SpectrumError> {
    certified_norm_from(conv, tol, Start::Auto)
}

/// [`certified_norm`] with the start chosen.
///
/// # Errors
/// An SVD that fails to converge.
pub fn certified_norm_from(conv: &Conv<f64>, tol: f64, start: Start) -> Result<NormInterval, SpectrumError> {
    certified_norm_with(conv, tol, start, &Monitor::new())
}

/// [`certified_norm_from`] watched by a [`Monitor`]: progress (steps, residual, the interval's width
/// once estimated) after every block step, stopped between steps when its cancel flag is set.
///
/// # Errors
/// An SVD that fails to converge; [`SpectrumError::Cancelled`].
pub fn certified_norm_with(
    conv: &Conv<f64>,
    tol: f64,
    start: Start,
    monitor: &Monitor<'_>,
) -> Result<NormInterval, SpectrumError> {
    let grids = embedding_grids(conv, GRIDS);
    let policy = Policy::for_layer(conv, tol, grids.is_some());
    norm_with(conv, tol, start, monitor, grids, policy)
}

/// The sizes from which the Lanczos run of [`certified_norm_with`] takes its shortcuts: vectors of
/// at least this many entries (below, full reorthogonalisation and f64 products cost little).
const LARGE: usize = 1 << 14;

/// The loosest tolerance at which the Lanczos products run in f32 (the certificate itself is always
/// computed with the f64 operator): an f32 product is within ~1e-6 of the f64 one, so Ritz vectors
/// reach residuals ~1e-6, and the quadratic bound squares them.
const FAST_TOL: f64 = 1e-7;

/// How the Lanczos run of [`certified_norm_with`] spends its time. Neither choice touches the
/// certificate, which is recomputed from the Ritz vectors with the f64 operator (`explicit`); they
/// decide only how fast the Ritz vectors converge.
#[derive(Clone, Copy, Debug)]
struct Policy {
    /// Products in f32 (the layer's weights rounded) until an explicit check fails to reach the
    /// tolerance; then the run restarts from its Ritz vectors with f64 products.
    fast: bool,
    /// Reorthogonalise each block only against the previous one while every Ritz value's relative
    /// residual is above [`SEMI_ORTHOGONAL`]: by Paige's theory the basis loses orthogonality only
    /// towards Ritz vectors that have converged, by about `eps / residual`, so until one converges
    /// that far the basis stays orthogonal to ~1e-10 without touching the older blocks. Then (and
    /// always for small layers) each block is reorthogonalised against the whole basis.
    local: bool,
}

impl Policy {
    fn for_layer(conv: &Conv<f64>, tol: f64, embeds: bool) -> Self {
        let large = conv.rows().min(conv.cols()) >= LARGE;
        Self { fast: large && embeds && tol >= FAST_TOL && f32_weights(conv).is_some(), local: large }
    }
}

/// A Ritz value's relative residual below which the basis is kept fully orthogonal (see [`Policy`]).
const SEMI_ORTHOGONAL: f64 = 1e-6;

/// The layer with its weights rounded to f32, `None` when one is not finite there (or is a
/// subnormal that flushes the product's accuracy).
fn f32_weights(conv: &Conv<f64>) -> Option<Conv<f32>> {
    let w: Vec<f32> = conv.weight().iter().map(|&v| v as f32).collect();
    if w.iter().zip(conv.weight()).any(|(&f, &d)| !f.is_finite() || (d != 0.0 && !f.is_normal())) {
        return None;
    }
    Conv::new(conv.geometry().clone(), w, None).ok()
}

/// What persists across the restart of [`norm_with`]'s Lanczos run with f64 products.
struct Run {
    progress: Progress,
    /// Steps of the earlier (restarted) run.
    earlier: usize,
    start: StartVector,
    /// The symbol's peak frequency, when the start searched for it.
    peak: Option<Vec<f64>>,
    /// The interlacing bounds of `σ_1..σ_{MAX_CLUSTER+1}`, once computed.
    bounds: Option<Vec<f64>>,
    /// The step at which they were, whether they separated nothing at the Ritz values since, and how
    /// many times they were looked for.
    bounds_at: usize,
    unseparated: bool,
    looks: usize,
    /// The smallest relative width an explicit check found.
    best_explicit: f64,
}

/// How a Lanczos run of [`norm_with`] ended.
enum Outcome {
    Done(NormInterval),
    /// The f32 products could not reach the tolerance: their Ritz vectors (column-major) start a run
    /// with f64 products.
    Restart(Vec<f64>),
}

/// [`certified_norm_with`] under a chosen [`Policy`].
fn norm_with(
    conv: &Conv<f64>,
    tol: f64,
    start: Start,
    monitor: &Monitor<'_>,
    grids: Option<Vec<Conv<f64>>>,
    policy: Policy,
) -> Result<NormInterval, SpectrumError> {
    monitor.check()?;
    let (block, start, peak) = start_block(conv, start);
    monitor.finished(Phase::Start);
    let mut run = Run {
        progress: Progress::new(1),
        earlier: 0,
        start,
        peak,
        bounds: None,
        bounds_at: 0,
        unseparated: false,
        looks: 0,
        best_explicit: f64::INFINITY,
    };
    let mut exact = Operator::new(conv);
    let mut first = qr(&block, conv.cols())?.0;
    if let Some(conv32) = policy.fast.then(|| f32_weights(conv)).flatten() {
        let mut op = Operator::new(&conv32);
        match lanczos_run(conv, &mut op, &mut exact, &first, tol, monitor, grids.as_deref(), policy, &mut run)? {
            Outcome::Done(n) => return Ok(n),
            Outcome::Restart(x) => first = qr(&x, conv.cols())?.0,
        }
    }
    let mut op = Operator::new(conv);
    match lanczos_run(conv, &mut op, &mut exact, &first, tol, monitor, grids.as_deref(), policy, &mut run)? {
        Outcome::Done(n) => Ok(n),
        Outcome::Restart(_) => unreachable!("f64 products do not restart"),
    }
}

/// One Lanczos run of [`norm_with`] from the orthonormal block `first`, its products by `op` (f32:
/// the fast products, which may end in [`Outcome::Restart`]; f64) and the certificates by `exact`.
#[allow(clippy::too_many_arguments)]
fn lanczos_run<S: Float>(
    conv: &Conv<f64>,
    op: &mut Operator<'_, S>,
    exact: &mut Operator<'_, f64>,
    first: &[f64],
    tol: f64,
    monitor: &Monitor<'_>,
    grids: Option<&[Conv<f64>]>,
    policy: Policy,
    run: &mut Run,
) -> Result<Outcome, SpectrumError> {
    let (rows, cols) = (conv.rows(), conv.cols());
    let max = rows.min(cols);
    let b = first.len() / cols;
    let fast = std::mem::size_of::<S>() < 8;
    let mut local = policy.local;
    // the bases, in the products' precision; `vs` holds the next block too
    let (mut vs, mut us) = (Basis::<S>::new(cols * b), Basis::<S>::new(rows * b));
    vs.push(first);
    let (mut left, mut right) = (HalfStep::new(rows, b), HalfStep::new(cols, b));
    let (mut w, mut z) = (vec![S::ZERO; rows * b], vec![S::ZERO; cols * b]);
    let (mut diag, mut uppers) = (Vec::<Mat<f64>>::new(), Vec::<Mat<f64>>::new());
    let mut max_r = 0.0f64;
    let mut next_check = 1;
    loop {
        run.progress.steps = run.earlier + diag.len();
        monitor.step(&run.progress)?;
        // W = A V_j - U_{j-1} D_{j-1}ᵀ, reorthogonalised, = U_j R_j
        op.apply(vs.last(), &mut w)?;
        monitor.finished(Phase::Products);
        // a block step is several products: look at the flag between them too
        monitor.check()?;
        let t = uppers.last().map(|d| d.transpose().to_owned());
        let r = left.run(&w, t.as_ref(), !local, &mut us)?;
        monitor.finished(Phase::Orthogonalize);
        monitor.check()?;
        // Z = Aᵀ U_j - V_j R_jᵀ, reorthogonalised, = V_{j+1} D_j
        op.adjoint(us.last(), &mut z)?;
        monitor.finished(Phase::Products);
        max_r = max_r.max(r.norm_l2());
        monitor.check()?;
        let d = right.run(&z, Some(&r.transpose().to_owned()), !local, &mut vs)?;
        diag.push(r);
        let dnorm = d.norm_l2();
        uppers.push(d);
        monitor.finished(Phase::Orthogonalize);
        let dim = diag.len() * b;
        let exhausted = dim + b > max || dnorm <= 1e-14 * max_r;
        let total = run.earlier + diag.len();
        if exhausted && rows.saturating_mul(cols) <= crate::DENSE_LIMIT {
            // the Krylov space is (nearly) the whole small matrix
            let s = crate::dense_singular_values(conv)?;
            let upper_bounds = match grids {
                Some(_) => interlacing_upper_bounds(conv, (MAX_CLUSTER + 1).min(max))?.unwrap_or_default(),
                None => Vec::new(),
            };
            return Ok(Outcome::Done(NormInterval {
                value: s[0],
                lower: s[0],
                upper: Some(s[0]),
                certificate: Certificate::Exact,
                cluster: 0,
                iterations: total,
                residual: 0.0,
                start: Some(run.start),
                upper_bounds,
            }));
        }
        if diag.len() < next_check && !exhausted {
            continue;
        }
        let steps = diag.len();
        next_check = steps + (steps / 20).max(1);
        let ritz = block_ritz(&diag, &uppers)?;
        monitor.finished(Phase::Ritz);
        let theta = &ritz.values;
        let scale = theta[0].max(f64::MIN_POSITIVE);
        let rel = ritz.residuals[0] / scale;
        // a Ritz value converging far enough to pull the basis off orthogonality: keep it orthogonal
        local &= ritz.residuals.iter().all(|&r| r > SEMI_ORTHOGONAL * scale);
        (run.progress.residual, run.progress.converged) = (rel, usize::from(rel <= tol));
        let Some(grids) = grids else {
            // residual-only
            if rel <= tol || exhausted {
                let q = block_right(&diag, &uppers, 1)?;
                let e = explicit(exact, &vs.combine(cols, q.as_ref()), rows, cols)?;
                let lower = e.mu[0].max(0.0).sqrt() * (1.0 - ROUNDING);
                return Ok(Outcome::Done(NormInterval {
                    value: theta[0],
                    lower,
                    upper: None,
                    certificate: Certificate::ResidualOnly,
                    cluster: 0,
                    iterations: total,
                    residual: rel,
                    start: Some(run.start),
                    upper_bounds: Vec::new(),
                }));
            }
            continue;
        };
        let kmax = MAX_CLUSTER.min(dim).min(max - 1).max(1);
        if run.unseparated && total >= run.bounds_at + 8 && run.looks < 3 && !exhausted {
            run.bounds = None;
        }
        if run.bounds.is_none() && (rel < tol.clamp(1e-4, 1e-3) || exhausted) {
            run.bounds = Some(top_bounds(grids, theta, kmax, run.peak.as_deref(), &monitor.quiet())?);
            monitor.finished(Phase::Bounds);
            (run.bounds_at, run.looks) = (total, run.looks + 1);
        }
        let Some(u_b) = &run.bounds else { continue };
        // the cluster whose estimated certified width is smallest
        let estimate = |k: usize| -> Option<f64> {
            let c = u_b.get(k)?.powi(2) * (1.0 + ROUNDING);
            let rho: Vec<f64> = (0..k).map(|i| theta[i] * ritz.residuals[i]).collect();
            let r = rho.iter().map(|x| x * x).sum::<f64>().sqrt();
            let e = Explicit { mu: theta[..k].iter().map(|t| t * t).collect(), r, rho };
            kato_temple(&e, c).map(|up| (up.sqrt() - theta[0]) / theta[0])
        };
        let choice =
            (1..=kmax.min(theta.len())).filter_map(|k| estimate(k).map(|w| (k, w))).min_by(|a, b| a.1.total_cmp(&b.1));
        run.progress.width = choice.map(|c| c.1);
        // bounds that separate no cluster at the current Ritz values (a threshold from values that
        // have moved since) are looked for again
        run.unseparated =
            !(1..=kmax.min(theta.len())).any(|k| u_b.get(k).is_some_and(|&c| c < theta[k - 1] * (1.0 - 1e-5)));
        let stagnant = rel < 1e-14;
        let ready = choice.is_some_and(|(_, w)| w <= tol / 2.0 && w < run.best_explicit / 4.0);
        if ready || exhausted || stagnant || (choice.is_none() && rel <= tol) {
            let k = choice.map_or(1, |c| c.0);
            let q = block_right(&diag, &uppers, k.max(b))?;
            let x = vs.combine(cols, q.as_ref());
            let e = explicit(exact, &x[..cols * k], rows, cols)?;
            monitor.finished(Phase::Explicit);
            let lower = e.mu[0].max(0.0).sqrt() * (1.0 - ROUNDING);
            let c = u_b.get(k).map(|b| b * b * (1.0 + ROUNDING));
            let kt = c.and_then(|c| kato_temple(&e, c)).map(|l| l.sqrt() * (1.0 + ROUNDING));
            let (upper, certificate, cluster) = match kt {
                Some(up) if up < u_b[0] => (up, Certificate::KatoTemple, k),
                _ => (u_b[0], Certificate::Interlacing, 0),
            };
            let upper = upper.max(lower);
            let width = (upper - lower) / lower;
            run.best_explicit = run.best_explicit.min(width);
            if width > tol && fast && choice.is_some() {
                // the f32 products' rounding stands between the Ritz vectors and the tolerance:
                // restart from them with f64 products
                run.earlier += steps;
                return Ok(Outcome::Restart(x[..cols * b].to_vec()));
            }
            if width <= tol || exhausted || stagnant || choice.is_none() {
                return Ok(Outcome::Done(NormInterval {
                    value: theta[0].clamp(lower, upper),
                    lower,
                    upper: Some(upper),
                    certificate,
                    cluster,
                    iterations: total,
                    residual: rel,
                    start: Some(run.start),
                    upper_bounds: u_b.clone(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::{below, circulant_norm_at_least};
    use crate::symbol::GramSymbol;
    use convmat_matrix::Circulant;
    use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
    use faer::c64;

    /// The derivation's claim, checked entry by entry: the layer's matrix (for a transposed layer, its
    /// matching convolution's) is the sub-block of each `C_m` at the rows of its windows and the
    /// columns `(i + b - (eff - 1)) mod m` of its grid positions.
    #[test]
    fn zero_padded_layers_are_sub_blocks_of_the_circulants() {
        let specs = [
            (ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1)), vec![5, 4]),
            (ConvSpec::new(1, 2, 2, [3]).with_padding(Padding::uniform(2)).with_stride([2]), vec![7]),
            (ConvSpec::new(1, 1, 2, [4]).with_padding(Padding::Explicit { begin: vec![3], end: vec![0] }), vec![5]),
            (ConvSpec::new(1, 2, 1, [3]).with_padding(Padding::Explicit { begin: vec![0], end: vec![4] }), vec![4]),
            (ConvSpec::new(2, 4, 2, [3, 2]).with_dilation([2, 1]).with_groups(2).with_stride([1, 3]), vec![6, 7]),
            (ConvSpec::new(1, 2, 2, [2]).with_padding(Padding::uniform(3)).with_stride([3]), vec![4]),
            (ConvSpec::new_transposed(2, 2, 3, [3]).with_stride([2]).with_padding(Padding::uniform(1)), vec![3, 2]),
            (ConvSpec::new_transposed(1, 2, 2, [3]).with_stride([3]).with_output_padding([2]).with_groups(2), vec![3]),
        ];
        for (case, (spec, input)) in specs.into_iter().enumerate() {
            let n: usize = spec.weight_shape().iter().product();
            let w: Vec<f64> = (0..n).map(|j| ((j * 7 + case) % 11) as f64 - 5.0).collect();
            let conv = Conv::new(Geometry::new(&spec, &input).unwrap(), w, None).unwrap();
            let geo = conv.geometry();
            let a = conv.dense();
            // the matching convolution's matrix: windows x grid
            let a = if spec.is_transposed() { a.t().to_owned() } else { a };
            let r = spec.rank();
            let grids = embedding_grids(&conv, 3).expect("zero padding embeds");
            assert_eq!(grids.len(), 3, "case {case}");
            for c in &grids {
                let m = c.geometry().input_spatial().to_vec();
                let wout = c.geometry().output_spatial().to_vec();
                let dense = c.dense();
                let (grid, windows) = (geo.grid(), geo.windows());
                let (glen, wlen): (usize, usize) = (grid.iter().product(), windows.iter().product());
                let (mlen, olen): (usize, usize) = (m.iter().product(), wout.iter().product());
                let unflat = |mut f: usize, dims: &[usize]| {
                    let mut out = vec![0; dims.len()];
                    for d in (0..dims.len()).rev() {
                        out[d] = f % dims[d];
                        f /= dims[d];
                    }
                    out
                };
                let flat = |p: &[usize], dims: &[usize]| p.iter().zip(dims).fold(0, |acc, (p, n)| acc * n + p);
                for row in 0..a.nrows() {
                    let (ch, q) = (row / wlen, unflat(row % wlen, windows));
                    let crow = ch * olen + flat(&q, &wout);
                    for col in 0..a.ncols() {
                        let (cg, i) = (col / glen, unflat(col % glen, grid));
                        let j: Vec<usize> = (0..r)
                            .map(|d| {
                                let eff = spec.dilation()[d] * (spec.kernel_size()[d] - 1) + 1;
                                (i[d] + geo.pad_begin()[d] + m[d] - (eff - 1) % m[d]) % m[d]
                            })
                            .collect();
                        let ccol = cg * mlen + flat(&j, &m);
                        assert_eq!(a[[row, col]], dense[[crow, ccol]], "case {case}, grid {m:?}, ({row}, {col})");
                    }
                }
            }
        }
    }

    /// The large-layer shortcuts (f32 products, local reorthogonalisation, and the restart with f64
    /// products when f32 cannot reach the tolerance) forced on small layers: the interval still holds
    /// the dense σ1 and shrinks to the tolerance.
    #[test]
    fn f32_products_and_local_reorthogonalisation_keep_the_certificate() {
        let cases = [
            (ConvSpec::new(2, 4, 4, [3]).with_padding(Padding::uniform(1)), vec![24, 24], 11),
            (ConvSpec::new(1, 4, 4, [3]).with_padding(Padding::uniform(1)), vec![100], 11),
            (ConvSpec::new(2, 3, 5, [3]).with_padding(Padding::uniform(1)).with_stride([2]), vec![20, 20], 11),
            (ConvSpec::new(2, 4, 4, [3]).with_padding(Padding::uniform(1)).with_groups(2), vec![18, 18], 13),
        ];
        for (case, (spec, input, seed)) in cases.into_iter().enumerate() {
            let spec = spec.with_bias(false);
            let n: usize = spec.weight_shape().iter().product();
            let w = convmat_numeric::Xorshift64::new(seed | 1).half_vec(n);
            let conv = Conv::new(Geometry::new(&spec, &input).unwrap(), w, None).unwrap();
            let s1 = crate::dense_singular_values(&conv).unwrap()[0];
            // 1e-10: beyond what f32 products reach, so the run restarts with f64 products
            for tol in [1e-6, 1e-10] {
                let policy = Policy { fast: true, local: true };
                let n =
                    norm_with(&conv, tol, Start::Auto, &Monitor::new(), embedding_grids(&conv, GRIDS), policy).unwrap();
                let upper = n.upper.unwrap();
                assert_eq!(n.certificate, Certificate::KatoTemple, "case {case}, tol {tol}: {n:?}");
                assert!((upper - n.lower) / n.lower <= tol, "case {case}, tol {tol}: {n:?}");
                let slack = 1e-12 * s1;
                assert!(n.lower <= s1 + slack && s1 <= upper + slack, "case {case}, tol {tol}: {s1} outside {n:?}");
            }
        }
    }

    /// The circulant's norm from the blocks above a floor equals the FFT spectrum's top, for floors
    /// below it, and is `None` above it.
    #[test]
    fn circulant_norm_at_least_a_floor_is_the_fft_norm() {
        let spec = ConvSpec::new(2, 6, 4, [3])
            .with_padding(Padding::Same)
            .with_padding_mode(PaddingMode::Circular)
            .with_bias(false);
        let w: Vec<f64> = (0..6 * 4 * 9).map(|j| ((j * 7) % 11) as f64 - 5.0).collect();
        let c = Conv::new(Geometry::new(&spec, &[9, 10]).unwrap(), w, None).unwrap();
        let top = crate::fft_singular_values(&c).unwrap()[0];
        for floor in [0.0, 0.5 * top, top * (1.0 - 1e-12)] {
            let got = circulant_norm_at_least(&c, floor, &Monitor::new()).unwrap().unwrap();
            assert!((got - top).abs() <= 1e-12 * top, "floor {floor}: {got} vs {top}");
        }
        assert_eq!(circulant_norm_at_least(&c, top * 1.01, &Monitor::new()).unwrap(), None);
    }

    /// The batched Gram-symbol test of every block against each block's largest singular value
    /// (dense SVD of the circulant's block), for 1-d, 2-d with groups and wide blocks, and 3-d layers.
    #[test]
    fn gram_symbol_tests_agree_with_the_blocks_svds() {
        let cases = [
            (ConvSpec::new(1, 3, 5, [3]), vec![11]),
            (ConvSpec::new(2, 4, 6, [3, 2]).with_groups(2).with_dilation([1, 2]), vec![7, 6]),
            (ConvSpec::new(2, 5, 2, [3]), vec![6, 5]),
            (ConvSpec::new(3, 2, 3, [2]), vec![4, 3, 5]),
        ];
        for (case, (spec, input)) in cases.into_iter().enumerate() {
            let spec = spec.with_padding(Padding::Same).with_padding_mode(PaddingMode::Circular).with_bias(false);
            let n: usize = spec.weight_shape().iter().product();
            let w = convmat_numeric::Xorshift64::new(case as u64 * 2 + 1).half_vec(n);
            let c = Conv::new(Geometry::new(&spec, &input).unwrap(), w, None).unwrap();
            let circ = Circulant::new(&c).unwrap();
            let gram = GramSymbol::new(&circ).unwrap();
            let groups = spec.groups();
            let (rows, cols) = (spec.out_channels() / groups, spec.in_channels() / groups);
            let mut tops = Vec::new();
            for f in (0..circ.frequencies()).filter(|&f| f <= circ.conjugate(f)) {
                for g in 0..groups {
                    let k = circ.block(f, g);
                    let m = Mat::<c64>::from_fn(rows, cols, |i, j| c64::new(k[i * cols + j].re, k[i * cols + j].im));
                    tops.push((f, g, crate::dense::svd_values(m.as_ref()).unwrap()[0]));
                }
            }
            let mut sorted: Vec<f64> = tops.iter().map(|t| t.2).collect();
            sorted.sort_by(f64::total_cmp);
            for tau in [sorted[0] * 0.5, sorted[sorted.len() / 2], sorted[sorted.len() - 1] * 1.01] {
                let below = gram.below_all(&circ, tau, &Monitor::new()).unwrap();
                for &(f, g, s) in &tops {
                    if (s - tau).abs() > 1e-9 * tau {
                        assert_eq!(below[f * groups + g], s < tau, "case {case}, tau {tau}, block ({f}, {g}): {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn cholesky_test_agrees_with_the_svd() {
        let k = Mat::<c64>::from_fn(5, 3, |i, j| c64::new((i * 3 + j) as f64 % 4.0 - 1.5, (i + 2 * j) as f64 % 3.0));
        let s = crate::dense::svd_values(k.as_ref()).unwrap()[0];
        assert!(below(k.as_ref(), s * (1.0 + 1e-9)));
        assert!(!below(k.as_ref(), s * (1.0 - 1e-9)));
        assert!(!below(k.transpose(), s * (1.0 - 1e-9)));
        assert!(below(k.transpose(), s * (1.0 + 1e-9)));
    }
}
