//! Many singular values (`k > 1`) by block Lanczos on a Chebyshev filter of `AᵀA` instead of on `A`.
//!
//! The top `k` singular values of a large layer crowd together (for the top 300 of a zero-padded
//! 16→16 3x3 layer on 32x32, `σ_300 / σ_1 = 0.88`), so a Krylov method on `A` needs a basis of several
//! times `k` vectors, and keeping it orthogonal costs far more than the products (`n·d` flops per vector
//! against bases of `d` = hundreds of vectors, and a convolution product is cheap). A polynomial in
//! `AᵀA` that is small on the unwanted part of the spectrum and grows fast on the wanted part spreads
//! the wanted values apart: the Krylov space of the filtered operator holds them at a much smaller
//! dimension, so fewer vectors are orthogonalised, each at the price of a few more products.
//!
//! The filter is `M = T_m(2 AᵀA / c - I)` with `T_m` the Chebyshev polynomial of degree `m`: `|M| ≤ 1`
//! on the eigenvalues `λ ≤ c` of `AᵀA`, and `M` grows like `cosh(m·acosh(2λ/c - 1))` above `c`, where it
//! is increasing. The cut `c` comes from the spectrum's distribution, read off a circular convolution
//! the layer embeds in (the same kernel on a slightly larger periodic grid, by the FFT): `c` is about
//! `σ_{3k/2}²`. Nothing depends on the cut being right for correctness: when the `k`-th Ritz value of
//! `M` exceeds 1, at least `k` eigenvalues of `AᵀA` lie above the cut (Ritz values of a symmetric
//! operator are at most its eigenvalues, index by index), where `M` preserves their order, so the top
//! `k` of `M` are the top `k` of `AᵀA`; when it does not, the run gives up and the caller falls back to
//! the unfiltered method.
//!
//! The Lanczos run keeps the symmetric form of [`crate::krylov`]'s bidiagonalisation,
//! `M X = X T + N G` (`X` orthonormal, `N` the next block, orthogonal to `X`), with full
//! reorthogonalisation and the same thick restart (`X ← X S_m`, `T ← Θ_m`, `G ← G S_m`). The values
//! are not taken from `M`'s Ritz values but from a Rayleigh-Ritz step with `A` itself on the top Ritz
//! vectors `Y`: the SVD of `A Y = P Σ Qᵀ` gives the values `Σ`, right vectors `Y Q` and left vectors
//! `P`, with `A (Y Q) = P Σ` by construction and the residual `||Aᵀ P - Y Q Σ||` measured by one block
//! of adjoint products. So what is returned carries the same statement as the unfiltered method's:
//! every value is within its explicit residual of a singular value of `A`.

use convmat_matrix::{Conv, Operator};
use faer::{Accum, Mat, MatMut, MatRef};
use rayon::prelude::*;

use crate::tall::{combine, gram, mul, orthogonalize, qr, qr_into};
use crate::{Monitor, Progress, SpectrumError};

/// The Chebyshev filter `M = T_m(2 AᵀA / cut - I)` (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Filter {
    /// The polynomial's degree `m` (`2m` products per vector).
    pub degree: usize,
    /// The cut `c`: eigenvalues of `AᵀA` below it are damped to `[-1, 1]`.
    pub cut: f64,
}

impl Filter {
    /// The eigenvalue `λ > c` of `AᵀA` that `M` maps to `θ > 1`.
    fn lambda(&self, theta: f64) -> Option<f64> {
        if self.degree == 1 {
            // linear: every eigenvalue, in order
            return (theta > -1.0).then(|| self.cut * (theta + 1.0) / 2.0);
        }
        (theta > 1.0).then(|| self.cut * ((theta.acosh() / self.degree as f64).cosh() + 1.0) / 2.0)
    }

    /// `dM/dλ` at `λ > c`.
    fn slope(&self, lambda: f64) -> f64 {
        let m = self.degree as f64;
        let t = (2.0 * lambda / self.cut - 1.0).max(1.0).acosh();
        // T_m'(cosh t) = m sinh(m t) / sinh(t), m² at t = 0
        let dt = if t < 1e-8 { m * m } else { m * (m * t).sinh() / t.sinh() };
        dt * 2.0 / self.cut
    }
}

/// The filtered products, with their buffers and a count of the products with `A`.
struct Products<'a> {
    op: Operator<'a, f64>,
    rows: usize,
    cols: usize,
    filter: Filter,
    /// `A v` for a block (`rows x b`).
    image: Vec<f64>,
    /// The recurrence's terms (`cols x b` each), rotated instead of copied.
    terms: [Vec<f64>; 3],
    /// Products with `A` (as many with `Aᵀ`).
    count: usize,
}

impl<'a> Products<'a> {
    fn new(conv: &'a Conv<f64>, filter: Filter, b: usize) -> Self {
        Self {
            op: Operator::new(conv),
            rows: conv.rows(),
            cols: conv.cols(),
            filter,
            image: vec![0.0; conv.rows() * b],
            terms: std::array::from_fn(|_| vec![0.0; conv.cols() * b]),
            count: 0,
        }
    }

    /// `out = (2/c) AᵀA v - v`.
    fn shifted(&mut self, v: &[f64], out: &mut [f64]) -> Result<(), SpectrumError> {
        self.op.apply(v, &mut self.image)?;
        self.op.adjoint(&self.image, out)?;
        self.count += v.len() / self.cols;
        let s = 2.0 / self.filter.cut;
        out.par_iter_mut().zip(v).for_each(|(o, v)| *o = s * *o - v);
        Ok(())
    }

    /// `out = M x` by the three-term recurrence `T_{j+1} = 2 L T_j - T_{j-1}` (`T_0 = x`).
    fn filter(&mut self, x: &[f64], out: &mut [f64]) -> Result<(), SpectrumError> {
        let [mut prev, mut cur, mut next] = std::mem::take(&mut self.terms);
        self.shifted(x, &mut cur)?;
        for j in 1..self.filter.degree {
            self.shifted(&cur, &mut next)?;
            let before: &[f64] = if j == 1 { x } else { &prev };
            next.par_iter_mut().zip(before).for_each(|(n, p)| *n = 2.0 * *n - p);
            // (prev, cur, next) <- (cur, next, prev)
            std::mem::swap(&mut prev, &mut cur);
            std::mem::swap(&mut cur, &mut next);
        }
        out.copy_from_slice(&cur);
        self.terms = [prev, cur, next];
        Ok(())
    }
}

/// The symmetric block Lanczos state `M X = X T + N G` (see the module docs).
struct Lanczos {
    n: usize,
    b: usize,
    /// `X`, column-major `n x d`.
    x: Vec<f64>,
    /// `N`, column-major `n x b`.
    next: Vec<f64>,
    /// `T = Xᵀ M X`: the leading `d x d` of a matrix allocated once at the cap.
    t: Mat<f64>,
    d: usize,
    /// `G`; its columns before `g_from` are zero.
    g: Mat<f64>,
    g_from: usize,
    w: Vec<f64>,
}

/// Ritz pairs of `T`: values nonincreasing, their vectors (columns of `S`) and residuals `||G s||`.
struct Pairs {
    values: Vec<f64>,
    vectors: Mat<f64>,
    residuals: Vec<f64>,
}

impl Lanczos {
    /// Starts from the block `start` (`n x b`); the basis grows to at most `cap + b` vectors.
    fn new(start: &[f64], n: usize, cap: usize) -> Result<Self, SpectrumError> {
        let b = start.len() / n;
        Ok(Self {
            n,
            b,
            // reserved once: growing it would copy the basis and map fresh pages
            x: Vec::with_capacity(n * (cap + b)),
            next: qr(start, n)?.0,
            t: Mat::zeros(cap + b, cap + b),
            d: 0,
            g: Mat::zeros(b, 0),
            g_from: 0,
            w: vec![0.0; n * b],
        })
    }

    fn dim(&self) -> usize {
        self.d
    }

    fn step(&mut self, products: &mut Products<'_>, monitor: &Monitor<'_>) -> Result<(), SpectrumError> {
        let (n, b, d) = (self.n, self.b, self.dim());
        products.filter(&self.next, &mut self.w)?;
        monitor.check()?;
        let mut wm = MatMut::from_column_major_slice_mut(&mut self.w, n, b);
        // W = M N - X Gᵀ (Xᵀ M N = Gᵀ), then the diagonal block A = Nᵀ W
        if d > self.g_from {
            let x = MatRef::from_column_major_slice(&self.x[self.g_from * n..], n, d - self.g_from);
            let g = self.g.as_ref().subcols(self.g_from, d - self.g_from);
            mul(wm.as_mut(), Accum::Add, x, g.transpose(), -1.0);
        }
        let nm = MatRef::from_column_major_slice(&self.next, n, b);
        let a = gram(nm, wm.as_ref());
        let a = Mat::<f64>::from_fn(b, b, |i, j| (a[(i, j)] + a[(j, i)]) / 2.0);
        mul(wm, Accum::Add, nm, a.as_ref(), -1.0);
        self.x.extend_from_slice(&self.next);
        orthogonalize(&self.x, n, &mut self.w);
        let beta = qr_into(&self.w, n, &mut self.next)?;
        // T gains [Gᵀ; A] and [G A]; G becomes [0 … 0 B]
        self.t.as_mut().submatrix_mut(0, d, d, b).copy_from(self.g.transpose());
        self.t.as_mut().submatrix_mut(d, 0, b, d).copy_from(&self.g);
        self.t.as_mut().submatrix_mut(d, d, b, b).copy_from(&a);
        let mut g = Mat::<f64>::zeros(b, d + b);
        g.as_mut().submatrix_mut(0, d, b, b).copy_from(&beta);
        self.g = g;
        self.g_from = d;
        self.d = d + b;
        Ok(())
    }

    fn pairs(&self) -> Result<Pairs, SpectrumError> {
        let d = self.dim();
        let e = self
            .t
            .as_ref()
            .submatrix(0, 0, d, d)
            .self_adjoint_eigen(faer::Side::Lower)
            .map_err(|_| SpectrumError::Svd)?;
        // ascending from faer: reversed
        let values: Vec<f64> = (0..d).rev().map(|i| e.S().column_vector()[i]).collect();
        let vectors = Mat::<f64>::from_fn(d, d, |i, j| e.U()[(i, d - 1 - j)]);
        let g = self.g.as_ref().subcols(self.g_from, d - self.g_from);
        let tail = vectors.as_ref().subrows(self.g_from, d - self.g_from);
        let residuals = (0..d).map(|j| (g * tail.col(j)).norm_l2()).collect();
        Ok(Pairs { values, vectors, residuals })
    }

    fn restart(&mut self, pairs: &Pairs, keep: usize) {
        let s = pairs.vectors.as_ref().subcols(0, keep);
        // into the reserved basis (a new vector would lose the capacity and grow again)
        let kept = combine(&self.x, self.n, s);
        self.x.clear();
        self.x.extend_from_slice(&kept);
        let from = self.g_from;
        self.g = self.g.as_ref().subcols(from, self.dim() - from) * s.subrows(from, self.dim() - from);
        self.g_from = 0;
        let d = self.dim();
        self.t.as_mut().submatrix_mut(0, 0, d, d).fill(0.0);
        for (i, &v) in pairs.values[..keep].iter().enumerate() {
            self.t[(i, i)] = v;
        }
        self.d = keep;
    }
}

/// What a filtered run found: the top `k` values, their largest explicit residual relative to `σ_1`,
/// how many are within the tolerance, the products with `A` and the restarts.
pub(crate) struct Found {
    pub values: Vec<f64>,
    pub residual: f64,
    pub converged: usize,
    pub products: usize,
    pub restarts: usize,
}

/// The top `k` singular values by Lanczos on the filter (see the module docs), `None` when the filter
/// does not separate them (the cut is above `σ_k²`) or the Krylov space would reach `max`: then the
/// caller runs the unfiltered method. `start` is a `cols x b` block; `cap` bounds the basis.
pub(crate) fn filtered_top(
    conv: &Conv<f64>,
    filter: Filter,
    start: &[f64],
    k: usize,
    tol: f64,
    cap: usize,
    monitor: &Monitor<'_>,
) -> Result<Option<Found>, SpectrumError> {
    let (cols, max) = (conv.cols(), conv.rows().min(conv.cols()));
    let b = start.len() / cols;
    let keep = k + cap.saturating_sub(k) / 8;
    // the Rayleigh-Ritz step takes a few vectors beyond the k
    let extra = b.max(k / 16);
    let mut products = Products::new(conv, filter, b);
    let mut lanczos = Lanczos::new(start, cols, cap)?;
    let mut progress = Progress::new(k);
    let (mut next_check, mut restarts, mut steps) = (k + extra, 0, 0);
    // a Rayleigh-Ritz step is tried when the estimated residuals are below tol times this
    let mut margin = 1.0;
    // the vectors made and the largest estimated residual at the last check
    let mut last = (0, f64::INFINITY);
    loop {
        // no room for another block (a small layer: the unfiltered method ends with a dense SVD), or
        // a run far beyond what the filter should need
        if lanczos.dim() + b > max || steps * b > 20 * max {
            return Ok(None);
        }
        lanczos.step(&mut products, monitor)?;
        steps += 1;
        let dim = lanczos.dim();
        let restart = dim + b > cap;
        if dim >= next_check || restart {
            let pairs = lanczos.pairs()?;
            let estimates = estimates(&pairs, filter, k);
            let worst = estimates.iter().copied().fold(0.0, f64::max);
            // checking costs an eigendecomposition of the d x d T: every eighth of the dimension at
            // most, sooner when the residuals' decay since the last check says they reach tol sooner
            let made = steps * b;
            let rate = (last.1 / worst).ln() / made.saturating_sub(last.0).max(1) as f64;
            let due = if rate > 0.0 && worst.is_finite() { (worst / tol).ln() / rate } else { f64::INFINITY };
            next_check = dim + (due.max(0.0) as usize).clamp(b, (dim / 8).max(b));
            last = (made, worst);
            (progress.residual, progress.converged) = (worst, estimates.iter().filter(|&&e| e <= tol).count());
            if filter.degree > 1 && pairs.values[k - 1] <= 1.0 {
                // fewer than k Ritz values above 1: when those there are have converged, or the basis
                // holds several times k vectors, the cut is above σ_k² (the circulant's spectrum was a
                // poor guess of the layer's, as on small grids with wide kernels), and M's top k are
                // not AᵀA's
                let above = pairs.values.iter().take_while(|&&t| t > 1.0).count();
                if estimates[..above].iter().all(|&e| e <= tol) || steps * b >= 4 * (k + extra) {
                    return Ok(None);
                }
            }
            if worst <= tol * margin && dim >= k + extra {
                let found = rayleigh_ritz(&lanczos, &pairs, &mut products, k, k + extra, tol)?;
                if found.residual <= tol {
                    return Ok(Some(Found { restarts, ..found }));
                }
                margin /= 10.0;
            }
            if restart {
                lanczos.restart(&pairs, keep);
                restarts += 1;
                next_check = next_check.min(keep + (due.max(0.0) as usize).clamp(b, (keep / 8).max(b)));
            }
        }
        progress.steps = steps;
        monitor.step(&progress)?;
    }
}

/// Each of the top `k` Ritz pairs' estimated residual as a singular triple of `A`, relative to `σ_1`:
/// a Ritz vector of `M` with residual `r` at `θ = M(λ)` is off by `r / M'(λ)` along nearby eigenvectors
/// and by `r λ / θ` along damped ones, so `||AᵀA y - λ y|| ≲ r · max(1/M'(λ), λ/θ)`, and the singular
/// triple's residual is that over `σ`. Infinite for a value not above the cut.
fn estimates(pairs: &Pairs, filter: Filter, k: usize) -> Vec<f64> {
    let sigma1 = filter.lambda(pairs.values[0]).map_or(f64::NAN, f64::sqrt);
    (0..k)
        .map(|i| {
            let theta = pairs.values[i];
            match filter.lambda(theta) {
                Some(l) => pairs.residuals[i] * (1.0 / filter.slope(l)).max(l / theta) / (l.sqrt() * sigma1),
                None => f64::INFINITY,
            }
        })
        .map(|e| if e.is_nan() { f64::INFINITY } else { e })
        .collect()
}

/// The Rayleigh-Ritz step with `A` on the top `s` Ritz vectors `Y` (see the module docs): the top `k`
/// values of `A Y` and their explicit residuals `||Aᵀ p - σ Y q||`.
fn rayleigh_ritz(
    lanczos: &Lanczos,
    pairs: &Pairs,
    products: &mut Products<'_>,
    k: usize,
    s: usize,
    tol: f64,
) -> Result<Found, SpectrumError> {
    let (rows, cols) = (products.rows, products.cols);
    let s = s.min(lanczos.dim());
    // three buffers of s vectors, each reused once (fresh pages cost a fault each)
    let mut y = combine(&lanczos.x, cols, pairs.vectors.as_ref().subcols(0, s));
    let mut z = vec![0.0; rows * s];
    products.op.apply(&y, &mut z)?;
    let mut q = Vec::new();
    let r = qr_into(&z, rows, &mut q)?;
    let svd = r.svd().map_err(|_| SpectrumError::Svd)?;
    let values: Vec<f64> = svd.S().column_vector().iter().take(k).copied().collect();
    // left vectors Q_z U into z, right ones Y V into q, Aᵀ·left into y
    let qm = MatRef::from_column_major_slice(&q, rows, s);
    mul(
        MatMut::from_column_major_slice_mut(&mut z[..rows * k], rows, k),
        Accum::Replace,
        qm,
        svd.U().subcols(0, k),
        1.0,
    );
    q.resize(cols * k, 0.0);
    let ym = MatRef::from_column_major_slice(&y, cols, s);
    mul(MatMut::from_column_major_slice_mut(&mut q, cols, k), Accum::Replace, ym, svd.V().subcols(0, k), 1.0);
    let (left, right, back) = (&z[..rows * k], &q, &mut y[..cols * k]);
    products.op.adjoint(left, back)?;
    products.count += s.max(k);
    let sigma1 = values[0].max(f64::MIN_POSITIVE);
    let residuals: Vec<f64> = (0..k)
        .map(|i| {
            let (a, x) = (&back[i * cols..(i + 1) * cols], &right[i * cols..(i + 1) * cols]);
            a.iter().zip(x).map(|(a, x)| (a - values[i] * x) * (a - values[i] * x)).sum::<f64>().sqrt() / sigma1
        })
        .collect();
    Ok(Found {
        residual: residuals.iter().copied().fold(0.0, f64::max),
        converged: residuals.iter().filter(|&&r| r <= tol).count(),
        values,
        products: products.count,
        restarts: 0,
    })
}

/// The top `k` of `conv` by the filter where it applies ([`choose`]), `None` where it does not or
/// where no filtered run can finish (then the caller runs the unfiltered method): a block of `b`
/// vectors, the first `start`, the others random; a basis cap of `cap` (at least `k + 200`: room for
/// the vectors a run needs before its first values converge, ~200 on the layers measured). A run whose
/// cut is above `σ_k²` is repeated with degree 1 (`AᵀA` itself, which needs no cut).
pub(crate) fn top_k(
    conv: &Conv<f64>,
    start: &[f64],
    k: usize,
    tol: f64,
    b: usize,
    cap: usize,
    monitor: &Monitor<'_>,
) -> Result<Option<Found>, SpectrumError> {
    let Some(filter) = choose(conv, k, monitor)? else { return Ok(None) };
    let mut block = crate::vector::random_vector(conv.cols() * b);
    block[..conv.cols()].copy_from_slice(start);
    let cap = cap.max(k + 200);
    match filtered_top(conv, filter, &block, k, tol, cap, monitor)? {
        None if filter.degree > 1 => filtered_top(conv, Filter { degree: 1, ..filter }, &block, k, tol, cap, monitor),
        found => Ok(found),
    }
}

/// The filter for the top `k` of `conv` (see the module docs), `None` where it does not apply: `k`
/// below [`MIN_K`], a spectrum too small for a cut beyond the `k` (`2k > min(rows, cols)`), or a layer
/// that embeds in no circular convolution (reflect or replicate padding).
///
/// The cut is `min(σ̃_{3k/2}², 0.95 σ̃_k²)` with `σ̃_j` the circular convolution's singular value at the
/// same place in its (larger) spectrum: the wanted values lie at least ~5% above it. The degree
/// ([`degree`]) weighs the products against the orthogonalisation.
pub(crate) fn choose(conv: &Conv<f64>, k: usize, monitor: &Monitor<'_>) -> Result<Option<Filter>, SpectrumError> {
    let max = conv.rows().min(conv.cols());
    if k < MIN_K || 2 * k > max {
        return Ok(None);
    }
    let Some(grids) = crate::embed::embedding_grids(conv, 1) else { return Ok(None) };
    let values = crate::fft::fft_singular_values_with(&grids[0], &monitor.quiet())?;
    let scale = values.len() as f64 / max as f64;
    let at = |j: f64| values.get((j * scale).ceil() as usize).map_or(0.0, |v| v * v);
    let cut = at(1.5 * k as f64).min(0.95 * at(k as f64));
    Ok((cut > 0.0).then(|| Filter { degree: degree(conv, k), cut }))
}

/// The fewest values the filter is used for (measured down to the top 10 of a 16→16 3x3 layer on
/// 32x32: 0.5 s filtered against 0.8 s unfiltered).
pub(crate) const MIN_K: usize = 8;

/// The filter's degree `m` (1 to 8) minimising a cost model of the run: `d` basis vectors cost
/// `4 q m d` flops of products and `2 n d²` of orthogonalisation (per `n`), with `q` the layer's
/// multiply-adds per input entry and `d = k (1 + 6.7 / m^1.08)` the basis a run needs, fitted to the
/// top 300 of a 16→16 3x3 layer on 32x32 (`d` = 1248, 736, 576, 512 at `m` = 2, 4, 6, 8). That layer's
/// top 300 gets `m = 6`, its top 10 `m = 2`; a costlier layer (64→64) a lower degree.
pub(crate) fn degree(conv: &Conv<f64>, k: usize) -> usize {
    let spec = conv.geometry().spec();
    let q = conv.weight().len() as f64 * (conv.rows() as f64 / spec.out_channels() as f64) / conv.cols() as f64;
    let cost = |m: usize| {
        let d = k as f64 * (1.0 + 6.7 / (m as f64).powf(1.08));
        4.0 * q * m as f64 * d + 2.0 * d * d
    };
    (1..=8).min_by(|&a, &b| cost(a).total_cmp(&cost(b))).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::random_vector;
    use convmat_shape::{ConvSpec, Geometry, Padding};

    fn layer(spec: ConvSpec, input: &[usize]) -> Conv<f64> {
        let w = random_vector(spec.weight_shape().iter().product());
        Conv::new(Geometry::new(&spec.with_bias(false), input).unwrap(), w, None).unwrap()
    }

    /// The start block of `b` vectors.
    fn start(conv: &Conv<f64>, b: usize) -> Vec<f64> {
        convmat_numeric::Xorshift64::new(7).half_vec(conv.cols() * b)
    }

    /// On every kind of zero-padded layer, with the cut [`choose`] picks and degrees 1 to 6, and with
    /// a cap small enough to force thick restarts: the top `k` equal the dense SVD's, within the
    /// explicit residuals, which are within the tolerance.
    #[test]
    fn the_top_k_equal_the_dense_values_on_every_layer_kind() {
        let cases = [
            ("stride 1", ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1)), vec![12, 12], 20),
            (
                "stride 2",
                ConvSpec::new(2, 3, 4, [3]).with_stride([2]).with_padding(Padding::uniform(1)),
                vec![14, 12],
                12,
            ),
            (
                "dilation 2",
                ConvSpec::new(2, 2, 2, [3]).with_dilation([2]).with_padding(Padding::uniform(2)),
                vec![12, 11],
                16,
            ),
            ("groups 2", ConvSpec::new(2, 4, 4, [3]).with_groups(2).with_padding(Padding::uniform(1)), vec![9, 9], 24),
            ("transposed stride 2", ConvSpec::new_transposed(2, 3, 2, [3]).with_stride([2]), vec![6, 7], 10),
            ("1-d", ConvSpec::new(1, 2, 2, [5]).with_padding(Padding::uniform(2)), vec![90], 20),
            ("3-d", ConvSpec::new(3, 1, 2, [3]).with_padding(Padding::uniform(1)), vec![5, 5, 6], 12),
        ];
        let tol = 1e-10;
        let mut filtered = 0;
        for (name, spec, input, k) in cases {
            let conv = layer(spec, &input);
            let dense = crate::dense_singular_values(&conv).unwrap();
            let chosen = choose(&conv, k, &Monitor::new()).unwrap().unwrap_or_else(|| panic!("{name}: no filter"));
            for (degree, cap) in [(1, 200), (3, 200), (6, 200), (chosen.degree, k + 24)] {
                let filter = Filter { degree, ..chosen };
                let what = format!("{name}: top {k}, degree {degree}, cap {cap}");
                let Some(found) = filtered_top(&conv, filter, &start(&conv, 4), k, tol, cap, &Monitor::new()).unwrap()
                else {
                    // only a filter whose cut is above the wanted values may give up
                    let wanted = dense[k - 1] * dense[k - 1];
                    assert!(
                        degree > 1 && filter.cut > 0.95 * wanted,
                        "{what}: gave up (cut {}, σ_k² {wanted})",
                        filter.cut
                    );
                    continue;
                };
                assert!(found.residual <= tol, "{what}: residual {}", found.residual);
                assert_eq!(found.converged, k, "{what}");
                for (i, (got, expect)) in found.values.iter().zip(&dense).enumerate() {
                    assert!((got - expect).abs() <= 1e-9 * dense[0], "{what}: σ_{}: {got} vs {expect}", i + 1);
                }
                if cap == k + 24 {
                    assert!(found.restarts > 0, "{what}: no restart");
                }
                filtered += 1;
            }
        }
        // the degree-1 runs and most others answer
        assert!(filtered >= 7 * 3, "{filtered} runs answered");
    }

    /// A cut above `σ_k²` leaves fewer than `k` eigenvalues of the filter above 1: its top `k` need not
    /// be `AᵀA`'s, and the run gives up instead of answering.
    #[test]
    fn a_cut_above_the_wanted_values_gives_up() {
        let conv = layer(ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1)), &[12, 12]);
        let dense = crate::dense_singular_values(&conv).unwrap();
        let k = 20;
        let filter = Filter { degree: 4, cut: (dense[5] * dense[5] + dense[4] * dense[4]) / 2.0 };
        let found = filtered_top(&conv, filter, &start(&conv, 4), k, 1e-8, 200, &Monitor::new()).unwrap();
        assert!(found.is_none(), "answered with a cut between σ_5² and σ_6²");
    }

    /// Through the public entry: a layer whose chosen cut is too high (small grid, wide dilated
    /// kernel) falls back to the degree-1 filter, and the values are still the dense SVD's.
    #[test]
    fn lanczos_falls_back_when_the_cut_is_too_high() {
        let spec = ConvSpec::new(2, 2, 2, [3]).with_dilation([2]).with_padding(Padding::uniform(2));
        let conv = layer(spec, &[12, 11]);
        let dense = crate::dense_singular_values(&conv).unwrap();
        let k = 16;
        let filter = choose(&conv, k, &Monitor::new()).unwrap().unwrap();
        assert!(filter.cut > dense[k - 1] * dense[k - 1], "the case no longer has a cut above σ_k²");
        let r = crate::lanczos(&conv, k, 1e-10).unwrap();
        assert!(r.residual <= 1e-10, "residual {}", r.residual);
        for (i, (got, expect)) in r.values.iter().zip(&dense).enumerate() {
            assert!((got - expect).abs() <= 1e-9 * dense[0], "σ_{}: {got} vs {expect}", i + 1);
        }
    }

    /// The filter maps λ to θ and back, and its slope is the derivative.
    #[test]
    fn the_filter_inverts_and_differentiates() {
        for degree in [1, 2, 5] {
            let f = Filter { degree, cut: 3.0 };
            let m = |l: f64| {
                let x = 2.0 * l / 3.0 - 1.0;
                if degree == 1 {
                    x
                } else {
                    (degree as f64 * x.acosh()).cosh()
                }
            };
            for l in [3.5, 4.0, 9.0] {
                let back = f.lambda(m(l)).unwrap();
                assert!((back - l).abs() <= 1e-12 * l, "degree {degree}: λ {l} -> {back}");
                let h = 1e-6;
                let numeric = (m(l + h) - m(l - h)) / (2.0 * h);
                assert!((f.slope(l) - numeric).abs() <= 1e-6 * numeric, "degree {degree}: slope at {l}");
            }
        }
    }
}
