//! The circulant embedding of a zero-padded (or strided circular) layer: the circular convolutions it
//! is a sub-block of, whose spectra bound its singular values index by index (Cauchy interlacing; the
//! derivation is in [`crate::certify`]'s module docs), and the hot blocks of those circulants.

use convmat_matrix::{Circulant, Conv};
use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
use faer::{c64, Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::fft::{block_values, fft_singular_values, fft_singular_values_with};
use crate::limits::check_working_set;
use crate::symbol::{top_squared, GramSymbol};
use crate::{Monitor, SpectrumError};

/// How many grids each bound takes its minimum over.
pub(crate) const GRIDS: usize = 4;

/// The circular convolutions `C_m` whose singular values bound the layer's index by index (see the
/// module docs), `None` when no embedding exists. `grids` candidate grids, smallest first.
pub(crate) fn embedding_grids(conv: &Conv<f64>, grids: usize) -> Option<Vec<Conv<f64>>> {
    let geo = conv.geometry();
    let spec = geo.spec();
    let r = spec.rank();
    let (k, s, dil) = (spec.kernel_size(), spec.stride(), spec.dilation());
    let eff: Vec<usize> = (0..r).map(|d| dil[d] * (k[d] - 1) + 1).collect();
    let (grid, windows) = (geo.grid(), geo.windows());
    let circular = |m: &[usize], stride: &[usize]| -> Option<Conv<f64>> {
        let c = ConvSpec::new(r, geo.grid_channels(), geo.window_channels(), k)
            .with_stride(stride)
            .with_dilation(dil)
            .with_groups(spec.groups())
            .with_bias(false)
            .with_padding(Padding::Explicit { begin: eff.iter().map(|e| e - 1).collect(), end: vec![0; r] })
            .with_padding_mode(PaddingMode::Circular);
        Conv::new(Geometry::new(&c, m).ok()?, conv.weight().to_vec(), None).ok()
    };
    match spec.padding_mode() {
        PaddingMode::Zeros => {
            let least: Vec<usize> = (0..r)
                .map(|d| {
                    let (g, b, nw) = (grid[d], geo.pad_begin()[d], windows[d]);
                    let reads = (nw - 1) * s[d] + eff[d];
                    let m = (g + b).max(reads.saturating_sub(b)).max((nw - 1) * s[d] + 1);
                    m.div_ceil(s[d]) * s[d]
                })
                .collect();
            let convs: Vec<Conv<f64>> = (0..grids)
                .filter_map(|e| {
                    let m: Vec<usize> = (0..r).map(|d| least[d] + e * s[d]).collect();
                    circular(&m, s)
                })
                .collect();
            (!convs.is_empty()).then_some(convs)
        }
        PaddingMode::Circular if !spec.is_transposed() => {
            if Circulant::new(conv).is_ok() {
                return Some(vec![conv.clone()]);
            }
            // a row selection of the stride-1 circular layer on the same grid
            if (0..r).any(|d| (windows[d] - 1) * s[d] >= grid[d]) {
                return None;
            }
            circular(grid, &vec![1; r]).map(|c| vec![c])
        }
        _ => None,
    }
}

/// Upper bounds of `σ_1, …, σ_count` by Cauchy interlacing with the circular convolutions the layer
/// embeds in (the minimum over several grids; see the module docs), `None` for a layer that embeds in
/// none (reflect or replicate padding, or a circular layer whose strided windows wrap around).
///
/// # Errors
/// `count` beyond `min(rows, cols)`; a layer whose vectors do not fit in the memory available.
pub fn interlacing_upper_bounds(conv: &Conv<f64>, count: usize) -> Result<Option<Vec<f64>>, SpectrumError> {
    interlacing_upper_bounds_with(conv, count, &Monitor::new())
}

/// [`interlacing_upper_bounds`] watched by a [`Monitor`] (progress per frequency block, cancelled
/// between blocks).
///
/// # Errors
/// `count` beyond `min(rows, cols)`; [`SpectrumError::Cancelled`].
pub fn interlacing_upper_bounds_with(
    conv: &Conv<f64>,
    count: usize,
    monitor: &Monitor<'_>,
) -> Result<Option<Vec<f64>>, SpectrumError> {
    let max = conv.rows().min(conv.cols());
    if count == 0 || count > max {
        return Err(SpectrumError::TooMany { k: count, max });
    }
    // the embeddings' spectra (complex, on grids at least the layer's): more than two vectors
    check_working_set(conv, 2)?;
    let Some(grids) = embedding_grids(conv, GRIDS) else { return Ok(None) };
    let mut best = vec![f64::INFINITY; count];
    for c in &grids {
        let s = fft_singular_values_with(c, monitor)?;
        for (b, v) in best.iter_mut().zip(s) {
            *b = b.min(v);
        }
    }
    Ok(Some(best))
}

/// The singular values of the blocks of `circ` whose largest singular value reaches `tau` (each
/// conjugate pair counted twice), descending: every singular value of the circulant that is `>= tau`
/// is among them. Blocks below `tau` are rejected by a Cholesky factorisation of `tau² I - KᴴK`.
/// `gram` is the circulant's Gram symbol (`None` for a strided one: then each block is tested by its
/// own Cholesky factorisation).
pub(crate) fn hot_values(
    circ: &Circulant,
    gram: Option<&GramSymbol>,
    tau: f64,
    monitor: &Monitor<'_>,
) -> Result<Vec<f64>, SpectrumError> {
    let Some(gram) = gram else {
        return block_values(circ, |_, _| false, |m| !below(m, tau), monitor);
    };
    // rejected only when certainly below tau, rounding included; the rest are decomposed
    let test = tau * (1.0 - 1e-11);
    let below = gram.below_all(circ, test, monitor)?;
    let groups = gram.groups();
    block_values(circ, |f, g| below[f * groups + g], |_| true, &monitor.quiet())
}

/// `σ_1` of a circular layer known to be at least `floor` (up to rounding): the largest singular
/// value among the blocks that reach `floor`, without decomposing the others. `None` when no block
/// does (a `floor` above the norm) or the layer is not a circulant.
///
/// # Errors
/// [`SpectrumError::Cancelled`]; an SVD that fails to converge.
pub(crate) fn circulant_norm_at_least(
    c: &Conv<f64>,
    floor: f64,
    monitor: &Monitor<'_>,
) -> Result<Option<f64>, SpectrumError> {
    let Ok(circ) = Circulant::new(c) else { return Ok(None) };
    Ok(hot_values(&circ, GramSymbol::new(&circ).as_ref(), floor * (1.0 - 1e-9), monitor)?.first().copied())
}

/// Whether every singular value of `k` is below `tau`: `tau² I - KᴴK` (the smaller Gram) has a
/// Cholesky factorisation. Sequential (callers run many in parallel).
pub(crate) fn below(k: MatRef<'_, c64>, tau: f64) -> bool {
    let n = k.nrows().min(k.ncols());
    let mut g = Mat::<c64>::zeros(n, n);
    if k.ncols() <= k.nrows() {
        faer::linalg::matmul::matmul(g.as_mut(), Accum::Replace, k.adjoint(), k, c64::new(-1.0, 0.0), Par::Seq);
    } else {
        faer::linalg::matmul::matmul(g.as_mut(), Accum::Replace, k, k.adjoint(), c64::new(-1.0, 0.0), Par::Seq);
    }
    let t2 = tau * tau;
    // in place, lower triangle: g = tau² I - KᴴK = L Lᴴ
    for j in 0..n {
        let mut d = t2 + g[(j, j)].re;
        for p in 0..j {
            d -= g[(j, p)].norm_sqr();
        }
        // also catches NaN
        if d.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return false;
        }
        let d = d.sqrt();
        g[(j, j)] = c64::new(d, 0.0);
        for i in j + 1..n {
            let mut v = g[(i, j)];
            for p in 0..j {
                v -= g[(i, p)] * g[(j, p)].conj();
            }
            g[(i, j)] = v / d;
        }
    }
    true
}

/// Interlacing bounds of `σ_1..σ_count` from the singular values `>= tau` of one circulant.
fn bounds_from_hot(hot: &[f64], tau: f64, count: usize) -> Vec<f64> {
    (0..count).map(|j| hot.get(j).copied().filter(|&v| v >= tau).unwrap_or(tau)).collect()
}

/// Interlacing bounds of `σ_1..σ_{kmax+1}` from the hot blocks of the grids, the grids tried in turn
/// until one separates a cluster at the current Ritz values `theta`: in the order [`grid_order`]
/// predicts from the symbol's `peak` when it is known, else smallest first.
pub(crate) fn top_bounds(
    grids: &[Conv<f64>],
    theta: &[f64],
    kmax: usize,
    peak: Option<&[f64]>,
    monitor: &Monitor<'_>,
) -> Result<Vec<f64>, SpectrumError> {
    let count = kmax + 1;
    // values at or above the threshold are computed exactly, the rest bounded by it: halfway across
    // the widest gap among the top Ritz values, where a cluster is likeliest to separate
    let tau = if theta.len() > kmax {
        let k =
            (1..=kmax).max_by(|&a, &b| (theta[a - 1] - theta[a]).total_cmp(&(theta[b - 1] - theta[b]))).unwrap_or(1);
        (theta[k - 1] + theta[k]) / 2.0
    } else {
        theta[kmax.min(theta.len()) - 1] * (1.0 - 1e-6)
    };
    // one Gram symbol for every grid: they share the kernel and differ in size only (none when strided)
    let gram = grids.first().filter(|c| c.geometry().spec().stride().iter().all(|&s| s == 1)).map(GramSymbol::of);
    let order = match (peak, &gram) {
        (Some(peak), Some(gram)) if grids.len() > 1 => grid_order(gram, grids, theta, kmax, peak),
        _ => (0..grids.len()).collect(),
    };
    let mut best = vec![f64::INFINITY; count];
    for c in order.iter().map(|&i| &grids[i]) {
        let circ = Circulant::new(c).map_err(|e| SpectrumError::NotCircular { why: e.to_string() })?;
        let hot = hot_values(&circ, gram.as_ref(), tau, monitor)?;
        for (b, v) in best.iter_mut().zip(bounds_from_hot(&hot, tau, count)) {
            *b = b.min(v);
        }
        if (1..=kmax).any(|k| best[k] < theta[k - 1] * (1.0 - 1e-5)) {
            break;
        }
    }
    Ok(best)
}

/// The grids in the order in which they are likeliest to separate a cluster at the Ritz values
/// `theta`: each grid's top singular values are predicted from the symbol at its frequencies next to
/// the peak `±ω` (`3^r` each), and a grid scores the largest `θ_k - σ̂_{k+1}`. Only an order: every
/// grid's bounds are still computed in full (the top values may come from elsewhere).
fn grid_order(gram: &GramSymbol, grids: &[Conv<f64>], theta: &[f64], kmax: usize, peak: &[f64]) -> Vec<usize> {
    let r = peak.len();
    let score = |c: &Conv<f64>| -> f64 {
        let m = c.geometry().input_spatial();
        let mut seen: Vec<Vec<usize>> = Vec::new();
        let mut values = Vec::new();
        for sign in [1.0, -1.0] {
            for i in 0..3usize.pow(r as u32) {
                let f: Vec<usize> = (0..r)
                    .map(|a| {
                        let near = (sign * peak[a] * m[a] as f64 / std::f64::consts::TAU).round() as isize;
                        (near + (i / 3usize.pow(a as u32) % 3) as isize - 1).rem_euclid(m[a] as isize) as usize
                    })
                    .collect();
                if seen.contains(&f) {
                    continue;
                }
                let w: Vec<f64> = (0..r).map(|a| std::f64::consts::TAU * f[a] as f64 / m[a] as f64).collect();
                values.push(top_squared(gram, &w, 12).max(0.0).sqrt());
                seen.push(f);
            }
        }
        values.sort_unstable_by(|a, b| b.total_cmp(a));
        (1..=kmax.min(theta.len()))
            .filter_map(|k| values.get(k).map(|v| theta[k - 1] - v))
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let scores: Vec<f64> = grids.par_iter().map(score).collect();
    let mut order: Vec<usize> = (0..grids.len()).collect();
    // stable: ties keep the smaller grid first
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// For a zero-padded convolution: the spectral norm of the circular convolution (same kernel, stride 1)
/// on the padded grid. The layer is a sub-block of it (rows selected by the stride and the valid
/// windows, columns by the zero extension), so this bounds its norm from above.
pub fn circular_upper_bound(conv: &Conv<f64>) -> Option<f64> {
    fft_singular_values(&padded_circulant(conv)?).ok()?.first().copied()
}

/// The circular layer on the padded grid whose norm [`circular_upper_bound`] is.
pub(crate) fn padded_circulant(conv: &Conv<f64>) -> Option<Conv<f64>> {
    let geo = conv.geometry();
    let spec = geo.spec();
    if spec.is_transposed() || spec.padding_mode() != PaddingMode::Zeros {
        return None;
    }
    let r = spec.rank();
    let padded: Vec<usize> = (0..r).map(|d| geo.input_spatial()[d] + geo.pad_begin()[d] + geo.pad_end()[d]).collect();
    let eff: Vec<usize> = (0..r).map(|d| spec.dilation()[d] * (spec.kernel_size()[d] - 1) + 1).collect();
    // circular, stride 1, 'same' padding that keeps the output grid equal to the padded grid; the
    // window offset only rotates the output, so the norm is that of C on the padded grid
    let circ = ConvSpec::new(r, spec.in_channels(), spec.out_channels(), spec.kernel_size())
        .with_dilation(spec.dilation())
        .with_groups(spec.groups())
        .with_padding(Padding::Explicit { begin: eff.iter().map(|e| e - 1).collect(), end: vec![0; r] })
        .with_padding_mode(PaddingMode::Circular);
    let g = Geometry::new(&circ, &padded).ok()?;
    Conv::new(g, conv.weight().to_vec(), None).ok()
}
