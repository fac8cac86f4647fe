//! The symbol of a stride-1 layer, `K(ω) = Σ_t W_t e^{iω·o_t}`, and its Gram `K(ω)ᴴK(ω)` as a
//! trigonometric polynomial: the peak search that starts Lanczos near the top singular vectors, and
//! the fast per-frequency Gram matrices the interlacing bounds test.

use convmat_matrix::{Circulant, Conv};
use faer::{c64, Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::{Monitor, SpectrumError};

/// For a stride-1 (non-transposed) layer: the kernel's top Fourier mode under the grid's lowest sine
/// mode, `x[c, p] = Re(v_c e^{i ω·p}) Π_a sin(π (p_a + 1) / (n_a + 1))`, where `ω` maximises the largest
/// singular value of the symbol `K(ω) = Σ_t W_t e^{i ω·offset_t}` and `v` is its top right singular
/// vector. A finite zero-padded section of the convolution has its top singular vectors near such
/// modes, so Lanczos started here needs a fraction of the steps. `None` for other layers.
pub(crate) fn symbol_start(conv: &Conv<f64>) -> Option<Vec<f64>> {
    symbol_modes(conv).map(|(re, _, _)| re)
}

/// The real and imaginary parts of [`symbol_start`]'s mode, `Re(v_c e^{i ω·p})` and `Im(…)` under the
/// same envelope: together they span the standing waves of the pair `±ω` (a real kernel's top
/// singular values come in such nearly equal pairs). With the peak `ω` itself.
pub(crate) fn symbol_modes(conv: &Conv<f64>) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let geo = conv.geometry();
    let spec = geo.spec();
    if spec.is_transposed() || spec.stride().iter().any(|&s| s != 1) {
        return None;
    }
    let symbol = Symbol::new(conv);
    let gram = GramSymbol::of(conv);
    let rank = spec.rank();
    // coarse grid, then pattern search from its best point; the grid shrinks for wide layers (one
    // symbol evaluation is a Gram matrix and a short Lanczos run per group) and the start is skipped
    // where it would cost more than ~1e10 flops
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
    // the coarse grid ranks points (12 Lanczos steps), the pattern search compares near ones (24)
    let rough = |w: &[f64]| top_squared(&gram, w, 12);
    let value = |w: &[f64]| top_squared(&gram, w, 24);
    // K(-ω) is the conjugate of K(ω): half of the first axis suffices
    let half = m / 2 + 1;
    let points = half * m.pow(rank as u32 - 1);
    let best = (0..points)
        .into_par_iter()
        .map(|i| {
            let w: Vec<f64> = (0..rank)
                .map(|a| if a == 0 { i % half } else { i / half / m.pow(a as u32 - 1) % m } as f64 * step)
                .collect();
            (rough(&w), w)
        })
        .reduce_with(|a, b| if b.0 > a.0 { b } else { a })?;
    let (mut value_at, mut at) = (value(&best.1), best.1);
    let mut h = step / 2.0;
    let moves: Vec<Vec<f64>> = (0..3usize.pow(rank as u32))
        .map(|i| (0..rank).map(|a| (i / 3usize.pow(a as u32) % 3) as f64 - 1.0).collect())
        .filter(|d: &Vec<f64>| d.iter().any(|&x| x != 0.0))
        .collect();
    // to 1e-3: on the goal layer the Lanczos steps are the same as from 1e-6
    while h > 1e-3 {
        let found = moves
            .par_iter()
            .map(|d| {
                let w: Vec<f64> = at.iter().zip(d).map(|(a, d)| a + h * d).collect();
                (value(&w), w)
            })
            .reduce_with(|a, b| if b.0 > a.0 { b } else { a })?;
        if found.0 > value_at {
            (value_at, at) = found;
        } else {
            h /= 2.0;
        }
    }
    let v = symbol.top_vector(&at);
    // the mode on the input grid: the phase and the envelope per position, then per channel
    let n = geo.input_spatial();
    let len: usize = n.iter().product();
    let wave: Vec<(f64, f64)> = (0..len)
        .into_par_iter()
        .map(|p| {
            let (mut phase, mut env, mut rest) = (0.0, 1.0, p);
            for a in (0..rank).rev() {
                let pa = rest % n[a];
                rest /= n[a];
                phase += at[a] * pa as f64;
                env *= (std::f64::consts::PI * (pa + 1) as f64 / (n[a] + 1) as f64).sin();
            }
            let (s, c) = phase.sin_cos();
            (c * env, s * env)
        })
        .collect();
    let mut x = vec![0.0; spec.in_channels() * len];
    let mut y = vec![0.0; spec.in_channels() * len];
    x.par_chunks_mut(len.max(1)).zip(y.par_chunks_mut(len.max(1))).enumerate().for_each(|(c, (plane, imag))| {
        let vc = v[c];
        for ((out, im), &(c, s)) in plane.iter_mut().zip(imag.iter_mut()).zip(&wave) {
            *out = vc.re * c - vc.im * s;
            *im = vc.re * s + vc.im * c;
        }
    });
    Some((x, y, at))
}

/// `σ_1(K(ω))²` over the groups: the top eigenvalue of the Gram symbol, from `steps` Lanczos steps.
pub(crate) fn top_squared(gram: &GramSymbol, w: &[f64], steps: usize) -> f64 {
    let n = gram.side();
    let (mut re, mut im) = (vec![0.0; n * n], vec![0.0; n * n]);
    (0..gram.groups())
        .map(|gi| {
            gram.eval(gi, |d| d.iter().zip(w).map(|(&d, w)| d as f64 * w).sum(), &mut re, &mut im);
            top_eigenvalue(n, &re, &im, steps)
        })
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The largest eigenvalue of the Hermitian `n x n` matrix `re + i·im` (row-major) by Lanczos with
/// full reorthogonalisation, at most `steps` steps from a fixed start: the top of a Gram symbol's
/// spectrum is well separated from the rest, and the search needs it to ~1e-8.
fn top_eigenvalue(n: usize, re: &[f64], im: &[f64], steps: usize) -> f64 {
    let steps = n.min(steps);
    // y = G x = Σ_j conj(G[j, :])ᵀ x_j (G is Hermitian): contiguous rows, no reductions
    let mul = |xr: &[f64], xi: &[f64], yr: &mut [f64], yi: &mut [f64]| {
        yr.fill(0.0);
        yi.fill(0.0);
        for j in 0..n {
            let (rr, ri) = (&re[j * n..(j + 1) * n], &im[j * n..(j + 1) * n]);
            let (a, b) = (xr[j], xi[j]);
            for (((yr, yi), &gr), &gi) in yr.iter_mut().zip(yi.iter_mut()).zip(rr).zip(ri) {
                *yr += gr * a + gi * b;
                *yi += gr * b - gi * a;
            }
        }
    };
    let norm = |xr: &[f64], xi: &[f64]| xr.iter().chain(xi).map(|v| v * v).sum::<f64>().sqrt();
    // a start with every component
    let mut qr: Vec<f64> = (0..n).map(|i| 1.0 + (i as f64 * 0.618_034).fract()).collect();
    let mut qi: Vec<f64> = (0..n).map(|i| (i as f64 * 0.414_214).fract() - 0.5).collect();
    let q0 = norm(&qr, &qi);
    qr.iter_mut().chain(qi.iter_mut()).for_each(|v| *v /= q0);
    let mut basis: Vec<(Vec<f64>, Vec<f64>)> = Vec::with_capacity(steps);
    let (mut alpha, mut beta) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    let (mut yr, mut yi) = (vec![0.0; n], vec![0.0; n]);
    let mut scale = 0.0f64;
    for _ in 0..steps {
        mul(&qr, &qi, &mut yr, &mut yi);
        let a: f64 = qr.iter().zip(&yr).chain(qi.iter().zip(&yi)).map(|(q, y)| q * y).sum();
        alpha.push(a);
        basis.push((std::mem::take(&mut qr), std::mem::take(&mut qi)));
        // y -= Σ q_j (q_jᴴ y), twice (this subtracts the three-term recurrence too)
        for _ in 0..2 {
            for (br, bi) in &basis {
                let cr: f64 = br.iter().zip(&yr).chain(bi.iter().zip(&yi)).map(|(q, y)| q * y).sum();
                let ci: f64 = br.iter().zip(&yi).map(|(q, y)| q * y).sum::<f64>()
                    - bi.iter().zip(&yr).map(|(q, y)| q * y).sum::<f64>();
                for j in 0..n {
                    yr[j] -= cr * br[j] - ci * bi[j];
                    yi[j] -= cr * bi[j] + ci * br[j];
                }
            }
        }
        let b = norm(&yr, &yi);
        scale = scale.max(a.abs()).max(b);
        if b <= 1e-12 * scale {
            break;
        }
        beta.push(b);
        qr = yr.iter().map(|v| v / b).collect();
        qi = yi.iter().map(|v| v / b).collect();
    }
    let k = alpha.len();
    let t = Mat::<f64>::from_fn(k, k, |i, j| match i.abs_diff(j) {
        0 => alpha[i],
        1 => beta[i.min(j)],
        _ => 0.0,
    });
    t.self_adjoint_eigenvalues(faer::Side::Lower)
        .map_or(f64::NEG_INFINITY, |e| e.iter().copied().fold(f64::NEG_INFINITY, f64::max))
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

    /// The right singular vector of the largest singular value of `K(ω)` over the groups, spread over
    /// all input channels (zero outside its group).
    fn top_vector(&self, w: &[f64]) -> Vec<c64> {
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
        best.1
    }
}

/// The Gram matrices `G(ω) = K(ω)ᴴ K(ω)` (or `K Kᴴ`, the smaller) of a stride-1 layer's symbol
/// `K(ω) = Σ_t W_t e^{iω·o_t}` (per group) as trigonometric polynomials:
/// `G(ω) = Σ_δ M_δ e^{iω·δ}` over the differences `δ = o_t' - o_t` of tap offsets, with
/// `M_δ = Σ_{o_t' - o_t = δ} W_tᵀ W_t'` precomputed once: one `G(ω)` is then 2·(2k-1)^r real
/// `n x n` multiply-adds (25 for 3x3) instead of building the block and its Gram (`n³` complex).
/// A circulant's blocks are the symbol at its grid's frequencies.
pub(crate) struct GramSymbol {
    /// The Gram's side, `min(rows, cols)` of the blocks' shape (`C_out/g x C_in/g`).
    n: usize,
    /// Per group, the differences `δ` of the terms.
    deltas: Vec<Vec<Vec<isize>>>,
    /// Per group, the terms' `M_δ` (each row-major `n x n`) as the columns of one column-major
    /// `n² x T` matrix.
    stacks: Vec<Vec<f64>>,
}

impl GramSymbol {
    /// `None` for a strided (polyphase) circulant.
    pub(crate) fn new(circ: &Circulant) -> Option<Self> {
        (circ.phases() == 1).then(|| Self::of(circ.conv()))
    }

    /// The Gram symbol of a layer's kernel (its stride and padding play no part).
    pub(crate) fn of(conv: &Conv<f64>) -> Self {
        let spec = conv.geometry().spec();
        let g = spec.groups();
        let (rows, cols) = (spec.out_channels() / g, spec.in_channels() / g);
        let n = rows.min(cols);
        let offsets = spec.tap_offsets();
        let k = offsets.len();
        let w = conv.weight();
        let tap = |gi: usize, t: usize| Mat::<f64>::from_fn(rows, cols, |o, i| w[((gi * rows + o) * cols + i) * k + t]);
        let terms = (0..g)
            .map(|gi| {
                let taps: Vec<Mat<f64>> = (0..k).map(|t| tap(gi, t)).collect();
                let mut terms: Vec<(Vec<isize>, Mat<f64>)> = Vec::new();
                for (t, wt) in taps.iter().enumerate() {
                    for (u, wu) in taps.iter().enumerate() {
                        // KᴴK = Σ W_tᵀ W_u e^{iθ·(o_u - o_t)}; K Kᴴ = Σ W_u W_tᵀ e^{iθ·(o_u - o_t)}
                        let delta: Vec<isize> =
                            offsets[u].iter().zip(&offsets[t]).map(|(&a, &b)| a as isize - b as isize).collect();
                        let m = if cols <= rows { wt.transpose() * wu } else { wu * wt.transpose() };
                        match terms.iter_mut().find(|(d, _)| *d == delta) {
                            Some((_, acc)) => *acc += m,
                            None => terms.push((delta, m)),
                        }
                    }
                }
                let stack = terms.iter().flat_map(|(_, m)| (0..n * n).map(move |i| m[(i / n, i % n)])).collect();
                (terms.into_iter().map(|(d, _)| d).collect(), stack)
            })
            .collect::<Vec<(Vec<Vec<isize>>, Vec<f64>)>>();
        let (deltas, stacks) = terms.into_iter().unzip();
        Self { n, deltas, stacks }
    }

    /// The Gram's side.
    pub(crate) fn side(&self) -> usize {
        self.n
    }

    /// Groups.
    pub(crate) fn groups(&self) -> usize {
        self.deltas.len()
    }

    /// `G(ω)` of group `g` as its real and imaginary parts (row-major, overwritten), with
    /// `theta(δ) = ω·δ`.
    pub(crate) fn eval(&self, g: usize, theta: impl Fn(&[isize]) -> f64, re: &mut [f64], im: &mut [f64]) {
        re.fill(0.0);
        im.fill(0.0);
        let nn = self.n * self.n;
        for (delta, m) in self.deltas[g].iter().zip(self.stacks[g].chunks_exact(nn)) {
            let (s, c) = theta(delta).sin_cos();
            for ((r, i), &v) in re.iter_mut().zip(im.iter_mut()).zip(m) {
                *r += c * v;
                *i += s * v;
            }
        }
    }

    /// For every block `(f, g)` of `circ` with `f <= conj(f)` (at `f · groups + g`), whether all its
    /// singular values are below `tau`: `tau² I - G(f)` has a Cholesky factorisation (faer's, which
    /// refuses a pivot that is not positive). The Gram matrices of a run of frequencies come from one
    /// GEMM, `[M_δ] · [cos θ_δ(f), sin θ_δ(f)]`, with the angles reduced exactly on the grid.
    pub(crate) fn below_all(
        &self,
        circ: &Circulant,
        tau: f64,
        monitor: &Monitor<'_>,
    ) -> Result<Vec<bool>, SpectrumError> {
        let (n, groups) = (self.n, self.groups());
        // frequencies per GEMM: up to 16, the Gram matrices of a run within 16 MiB
        let run_len = ((1 << 20) / (n * n).max(1)).clamp(1, 16);
        let grid = circ.grid();
        let freqs: Vec<usize> = (0..circ.frequencies()).filter(|&f| f <= circ.conjugate(f)).collect();
        let t2 = tau * tau;
        let runs: Vec<Vec<bool>> = freqs
            .par_chunks(run_len)
            .map(|run| {
                monitor.check()?;
                let mut out = Vec::with_capacity(run.len() * groups);
                let mut gram = Mat::<f64>::zeros(n * n, 2 * run.len());
                for (deltas, stack) in self.deltas.iter().zip(&self.stacks) {
                    let stack = MatRef::from_column_major_slice(stack, n * n, deltas.len());
                    let lead = grid.len() - deltas.first().map_or(0, Vec::len);
                    let angles = Mat::<f64>::from_fn(deltas.len(), 2 * run.len(), |t, c| {
                        let f = run[c / 2];
                        let fr = [f / (grid[1] * grid[2]), f / grid[2] % grid[1], f % grid[2]];
                        let theta: f64 = deltas[t]
                            .iter()
                            .enumerate()
                            .map(|(a, &d)| {
                                let m = grid[lead + a];
                                std::f64::consts::TAU * (fr[lead + a] * d.rem_euclid(m as isize) as usize % m) as f64
                                    / m as f64
                            })
                            .sum();
                        if c % 2 == 0 {
                            theta.cos()
                        } else {
                            theta.sin()
                        }
                    });
                    faer::linalg::matmul::matmul(gram.as_mut(), Accum::Replace, stack, &angles, 1.0, Par::Seq);
                    for c in 0..run.len() {
                        let (re, im) = (gram.col(2 * c), gram.col(2 * c + 1));
                        let a = Mat::<c64>::from_fn(n, n, |i, j| {
                            c64::new(if i == j { t2 } else { 0.0 } - re[i * n + j], -im[i * n + j])
                        });
                        out.push(a.llt(faer::Side::Lower).is_ok());
                    }
                }
                // group-major within the run: reorder to f · groups + g
                Ok((0..run.len())
                    .flat_map(|c| (0..groups).map(move |g| (c, g)))
                    .map(|(c, g)| out[g * run.len() + c])
                    .collect())
            })
            .collect::<Result<_, SpectrumError>>()?;
        let mut below = vec![false; circ.frequencies() * groups];
        for (&f, v) in freqs.iter().zip(runs.iter().flatten().collect::<Vec<_>>().chunks(groups)) {
            for (g, &&b) in v.iter().enumerate() {
                below[f * groups + g] = b;
            }
        }
        Ok(below)
    }
}
