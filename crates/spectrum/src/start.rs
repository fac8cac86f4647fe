//! A start vector for Lanczos near a stride-1 layer's top right singular vector.

use convmat_matrix::Conv;
use faer::{c64, Mat};
use rayon::prelude::*;

/// For a stride-1 (non-transposed) layer: the kernel's top Fourier mode under the grid's lowest sine
/// mode, `x[c, p] = Re(v_c e^{i ω·p}) Π_a sin(π (p_a + 1) / (n_a + 1))`, where `ω` maximises the largest
/// singular value of the symbol `K(ω) = Σ_t W_t e^{i ω·offset_t}` and `v` is its top right singular
/// vector. A finite zero-padded section of the convolution has its top singular vectors near such
/// modes, so Lanczos started here needs a fraction of the steps. `None` for other layers.
pub(crate) fn symbol_start(conv: &Conv<f64>) -> Option<Vec<f64>> {
    symbol_modes(conv).map(|(re, _)| re)
}

/// The real and imaginary parts of [`symbol_start`]'s mode, `Re(v_c e^{i ω·p})` and `Im(…)` under the
/// same envelope: together they span the standing waves of the pair `±ω` (a real kernel's top
/// singular values come in such nearly equal pairs).
pub(crate) fn symbol_modes(conv: &Conv<f64>) -> Option<(Vec<f64>, Vec<f64>)> {
    let geo = conv.geometry();
    let spec = geo.spec();
    if spec.is_transposed() || spec.stride().iter().any(|&s| s != 1) {
        return None;
    }
    let symbol = Symbol::new(conv);
    let rank = spec.rank();
    // coarse grid, then pattern search from its best point; the grid shrinks for wide layers (one
    // symbol evaluation is an SVD per group) and the start is skipped where it would cost more than
    // ~1e10 flops
    let g = spec.groups();
    let (co, ci) = (spec.out_channels() / g, spec.in_channels() / g);
    let evals = 1e10 / (20.0 * (g * co * ci * co.min(ci)) as f64);
    let m: usize = match rank {
        1 => 64,
        2 => 16,
        _ => 8,
    };
    let m = (m..=m).chain([8, 6, 4]).find(|&m| (m.pow(rank as u32) / 2 + 60) as f64 <= evals)?;
    let step = std::f64::consts::TAU / m as f64;
    // K(-ω) is the conjugate of K(ω): half of the first axis suffices
    let half = m / 2 + 1;
    let points = half * m.pow(rank as u32 - 1);
    let best = (0..points)
        .into_par_iter()
        .map(|i| {
            let w: Vec<f64> = (0..rank)
                .map(|a| if a == 0 { i % half } else { i / half / m.pow(a as u32 - 1) % m } as f64 * step)
                .collect();
            let s = symbol.top(&w, false).0;
            (s, w)
        })
        .reduce_with(|a, b| if b.0 > a.0 { b } else { a })?;
    let (mut value, mut at) = best;
    let mut h = step / 2.0;
    let moves: Vec<Vec<f64>> = (0..3usize.pow(rank as u32))
        .map(|i| (0..rank).map(|a| (i / 3usize.pow(a as u32) % 3) as f64 - 1.0).collect())
        .filter(|d: &Vec<f64>| d.iter().any(|&x| x != 0.0))
        .collect();
    // to 1e-4: the phase error across a grid of a few hundred is then negligible
    while h > 1e-4 {
        let found = moves
            .par_iter()
            .map(|d| {
                let w: Vec<f64> = at.iter().zip(d).map(|(a, d)| a + h * d).collect();
                (symbol.top(&w, false).0, w)
            })
            .reduce_with(|a, b| if b.0 > a.0 { b } else { a })?;
        if found.0 > value {
            (value, at) = found;
        } else {
            h /= 2.0;
        }
    }
    let v = symbol.top(&at, true).1;
    // the mode on the input grid
    let n = geo.input_spatial();
    let len: usize = n.iter().product();
    let mut x = vec![0.0; spec.in_channels() * len];
    let mut y = vec![0.0; spec.in_channels() * len];
    x.par_chunks_mut(len.max(1)).zip(y.par_chunks_mut(len.max(1))).enumerate().for_each(|(c, (plane, imag))| {
        let vc = v[c];
        for (p, (out, im)) in plane.iter_mut().zip(imag.iter_mut()).enumerate() {
            let (mut phase, mut env, mut rest) = (0.0, 1.0, p);
            for a in (0..rank).rev() {
                let pa = rest % n[a];
                rest /= n[a];
                phase += at[a] * pa as f64;
                env *= (std::f64::consts::PI * (pa + 1) as f64 / (n[a] + 1) as f64).sin();
            }
            *out = (vc.re * phase.cos() - vc.im * phase.sin()) * env;
            *im = (vc.re * phase.sin() + vc.im * phase.cos()) * env;
        }
    });
    Some((x, y))
}

/// The layer's symbol: per group, `K(ω)[o, i] = Σ_t W[o, i, t] e^{i ω·offset_t}`.
struct Symbol<'a> {
    conv: &'a Conv<f64>,
    /// Per tap, its spatial offset (tap index times dilation) per axis.
    offsets: Vec<Vec<f64>>,
}

impl<'a> Symbol<'a> {
    fn new(conv: &'a Conv<f64>) -> Self {
        let spec = conv.geometry().spec();
        let offsets = spec.tap_offsets().iter().map(|o| o.iter().map(|&o| o as f64).collect()).collect();
        Self { conv, offsets }
    }

    /// The largest singular value of `K(ω)` over the groups, with (if asked) its right singular vector
    /// spread over all input channels (zero outside its group).
    fn top(&self, w: &[f64], vector: bool) -> (f64, Vec<c64>) {
        let spec = self.conv.geometry().spec();
        let g = spec.groups();
        let (co_g, ci_g) = (spec.out_channels() / g, spec.in_channels() / g);
        let phases: Vec<c64> = self
            .offsets
            .iter()
            .map(|o| {
                let p: f64 = o.iter().zip(w).map(|(o, w)| o * w).sum();
                c64::new(p.cos(), p.sin())
            })
            .collect();
        let k = phases.len();
        let weight = self.conv.weight();
        let mut best = (f64::NEG_INFINITY, Vec::new());
        for gi in 0..g {
            let m = Mat::<c64>::from_fn(co_g, ci_g, |o, i| {
                let base = ((gi * co_g + o) * ci_g + i) * k;
                weight[base..base + k].iter().zip(&phases).map(|(&wv, &p)| p * wv).sum()
            });
            if !vector {
                // sequential: the callers evaluate many frequencies in parallel
                let s = crate::svd_values(m.as_ref()).map_or(f64::NEG_INFINITY, |s| s[0]);
                best.0 = best.0.max(s);
                continue;
            }
            let Ok(svd) = m.svd() else { continue };
            let s = svd.S().column_vector()[0].re;
            if s > best.0 {
                let mut v = vec![c64::new(0.0, 0.0); spec.in_channels()];
                for i in 0..ci_g {
                    v[gi * ci_g + i] = svd.V()[(i, 0)];
                }
                best = (s, v);
            }
        }
        best
    }
}
