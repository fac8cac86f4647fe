//! The certified norm's per-step block work on `n x b` blocks with `b` of 1 or 2 and `n ~ 1e5`:
//! hand-written passes over row pieces instead of a chain of general kernels.
//!
//! One Lanczos half-step takes the product `out`, subtracts the previous block's recurrence term,
//! reorthogonalises against the previous block and factors the result by Cholesky QR. With
//! `w = out - P T` (`P` the previous, orthonormal block), one pass gives `C = Pᵀw` and `G = wᵀw`; then
//! `w' = w - P C` has the Gram matrix `G - CᵀC` and `R` its Cholesky factor, and a second pass writes
//! `u = (out - P (T + C)) R⁻¹` straight into the stored basis. The decisions are those of the general
//! kernels (`tall`): the reorthogonalisation is repeated when the first pass removed more than half
//! the norm (DGKS), and one Cholesky QR pass suffices when the Gram matrix's condition is below `1e4`;
//! otherwise the half-step falls back to those general kernels. Two passes over the block instead of
//! about ten, and no allocation but the new block.
//!
//! The basis is stored in the products' precision: with f32 products, the stored f32 block is both
//! the next product's input and the previous block `P` of the recurrence (the products see only the
//! rounded vectors anyway, and their own rounding is of that size), which halves the memory the
//! passes stream and the memory the basis takes (whose first touch costs page faults; transparent
//! huge pages were tried and cost more, in the kernel's compaction, on the 2-core VM).

use convmat_matrix::Float;
use faer::{Mat, MatRef};
use rayon::prelude::*;

use crate::tall::{orthogonalize, qr};
use crate::SpectrumError;

/// Rows per parallel piece.
const PIECE: usize = 4096;

/// A basis of `n x b` blocks (each column-major).
pub(crate) struct Basis<S> {
    /// Values per block.
    len: usize,
    blocks: Vec<Vec<S>>,
}

impl<S: Float> Basis<S> {
    pub(crate) fn new(len: usize) -> Self {
        Self { len, blocks: Vec::new() }
    }

    /// Block `i`.
    pub(crate) fn block(&self, i: usize) -> &[S] {
        &self.blocks[i]
    }

    /// The last block.
    pub(crate) fn last(&self) -> &[S] {
        self.blocks.last().expect("a block")
    }

    /// The last block (if any) and a new one to write, appended (fresh pages: a calloc).
    fn last_and_next(&mut self) -> (Option<&[S]>, &mut [S]) {
        self.blocks.push(vec![S::ZERO; self.len]);
        let (next, before) = self.blocks.split_last_mut().expect("just pushed");
        (before.last().map(|b| &b[..]), next)
    }

    /// Appends `block` (rounded to the storage's precision).
    pub(crate) fn push(&mut self, block: &[f64]) {
        let (_, next) = self.last_and_next();
        next.iter_mut().zip(block).for_each(|(d, &v)| *d = S::from_f64(v));
    }

    /// `X q` for the first `q.nrows() / b` blocks (`q` in the basis' coordinates), column-major
    /// `n x q.ncols()`.
    pub(crate) fn combine(&self, n: usize, q: MatRef<'_, f64>) -> Vec<f64> {
        let k = q.ncols();
        let b = self.len / n.max(1);
        let used = q.nrows() / b.max(1);
        let blocks: Vec<Vec<Vec<&[S]>>> = (0..used).map(|i| pieces(self.block(i), n)).collect();
        let mut out = vec![0.0; n * k];
        pieces_mut(&mut out, n).into_par_iter().enumerate().for_each(|(p, mut op)| {
            for (j, o) in op.iter_mut().enumerate() {
                // written before it is read: a fresh page read first is mapped to the zero page and
                // then copied on write, with a TLB shootdown
                o.fill(0.0);
                for (s, block) in blocks.iter().enumerate() {
                    for (c, col) in block[p].iter().enumerate() {
                        let f = q[(s * b + c, j)];
                        o.iter_mut().zip(col.iter()).for_each(|(d, &x)| *d += f * x.to_f64());
                    }
                }
            }
        });
        out
    }

    /// `m -= X (Xᵀ m)` over the whole basis, repeated once when the first pass removed more than
    /// half of `m`'s norm (as [`orthogonalize`]).
    fn orthogonalize(&self, n: usize, m: &mut [f64]) {
        if self.blocks.is_empty() || n == 0 {
            return;
        }
        let bm = m.len() / n;
        let cols: Vec<&[S]> = (0..self.blocks.len()).flat_map(|i| self.block(i).chunks_exact(n)).collect();
        let d = cols.len();
        let norm2 = |m: &[f64]| m.par_chunks(PIECE).map(|c| c.iter().map(|x| x * x).sum::<f64>()).sum::<f64>();
        let mut before = norm2(m);
        for _ in 0..2 {
            // C = Xᵀ m, d x bm, by row pieces
            let mp = pieces(m, n);
            let c = (0..mp.len())
                .into_par_iter()
                .map(|p| {
                    let lo = p * PIECE;
                    let mut s = vec![0.0; d * bm];
                    for (i, col) in cols.iter().enumerate() {
                        let x = &col[lo..lo + mp[p][0].len()];
                        for j in 0..bm {
                            s[i * bm + j] = dot(x, mp[p][j]);
                        }
                    }
                    s
                })
                .reduce(|| vec![0.0; d * bm], add);
            pieces_mut(m, n).into_par_iter().enumerate().for_each(|(p, mut mp)| {
                let lo = p * PIECE;
                for (j, o) in mp.iter_mut().enumerate() {
                    for (i, col) in cols.iter().enumerate() {
                        let f = c[i * bm + j];
                        let x = &col[lo..lo + o.len()];
                        o.iter_mut().zip(x).for_each(|(d, &x)| *d -= f * x.to_f64());
                    }
                }
            });
            let after = norm2(m);
            if after > 0.5 * before {
                break;
            }
            before = after;
        }
    }
}

fn add(x: Vec<f64>, y: Vec<f64>) -> Vec<f64> {
    x.iter().zip(&y).map(|(a, b)| a + b).collect()
}

/// The columns of a column-major `n`-row block cut into row pieces: `pieces[p][j]` is column `j`'s
/// piece `p`.
fn pieces<T>(data: &[T], n: usize) -> Vec<Vec<&[T]>> {
    let b = data.len().checked_div(n).unwrap_or(0);
    let mut out: Vec<Vec<&[T]>> = (0..n.div_ceil(PIECE)).map(|_| Vec::with_capacity(b)).collect();
    for col in data.chunks_exact(n.max(1)).take(b) {
        for (p, piece) in col.chunks(PIECE).enumerate() {
            out[p].push(piece);
        }
    }
    out
}

/// [`pieces`] for writing.
fn pieces_mut<T>(data: &mut [T], n: usize) -> Vec<Vec<&mut [T]>> {
    let b = data.len().checked_div(n).unwrap_or(0);
    let mut out: Vec<Vec<&mut [T]>> = (0..n.div_ceil(PIECE)).map(|_| Vec::with_capacity(b)).collect();
    for col in data.chunks_exact_mut(n.max(1)).take(b) {
        for (p, piece) in col.chunks_mut(PIECE).enumerate() {
            out[p].push(piece);
        }
    }
    out
}

/// `Σ a_i b_i` in eight lanes.
fn dot<A: Float>(a: &[A], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l].to_f64() * y[l];
        }
    }
    let tail: f64 = ar.iter().zip(br).map(|(x, y)| x.to_f64() * y).sum();
    acc.iter().sum::<f64>() + tail
}

/// `dst = out_j - Σ_i P_i T[i][j]` on one row piece (`P` absent: `dst = out_j`).
fn residual_piece<O: Float, S: Float>(dst: &mut [f64], out: &[O], prev: Option<(&[&[S]], &Mat<f64>)>, j: usize) {
    dst.iter_mut().zip(out).for_each(|(d, &o)| *d = o.to_f64());
    if let Some((prev, t)) = prev {
        for (i, p) in prev.iter().enumerate() {
            let c = t[(i, j)];
            dst.iter_mut().zip(p.iter()).for_each(|(d, &p)| *d -= c * p.to_f64());
        }
    }
}

/// The recurrence's previous block and coefficients: `w = out - P T`.
type Prev<'a, S> = Option<(&'a [S], &'a Mat<f64>)>;

/// `(C, G)` with `w = out - P T`, `C = Pᵀw` (zero without `P`) and `G = wᵀw`.
fn grams<O: Float, S: Float>(out: &[O], prev: Prev<'_, S>, n: usize, b: usize) -> (Mat<f64>, Mat<f64>) {
    let out_p = pieces(out, n);
    let prev_p = prev.map(|(p, _)| pieces(p, n));
    let sums = (0..out_p.len())
        .into_par_iter()
        .map_init(Vec::new, |buf: &mut Vec<f64>, p| {
            let len = out_p[p][0].len();
            buf.resize(len * b, 0.0);
            let pp = prev_p.as_ref().zip(prev).map(|(pp, (_, t))| (&pp[p][..], t));
            for (j, w) in buf.chunks_exact_mut(len).enumerate() {
                residual_piece(w, out_p[p][j], pp, j);
            }
            let mut s = vec![0.0; 2 * b * b];
            for j in 0..b {
                let wj = &buf[j * len..(j + 1) * len];
                if let Some((pp, _)) = pp {
                    for i in 0..b {
                        s[i * b + j] = dot(pp[i], wj);
                    }
                }
                for i in 0..=j {
                    s[b * b + i * b + j] = dot(&buf[i * len..(i + 1) * len], wj);
                }
            }
            s
        })
        .reduce(|| vec![0.0; 2 * b * b], add);
    let c = Mat::from_fn(b, b, |i, j| sums[i * b + j]);
    let g = Mat::from_fn(b, b, |i, j| sums[b * b + i.min(j) * b + i.max(j)]);
    (c, g)
}

/// `next = (out - P T) R⁻¹`.
fn finish<O: Float, S: Float>(out: &[O], prev: Prev<'_, S>, rinv: &Mat<f64>, n: usize, b: usize, next: &mut [S]) {
    let out_p = pieces(out, n);
    let prev_p = prev.map(|(p, _)| pieces(p, n));
    pieces_mut(next, n).into_par_iter().enumerate().for_each_init(Vec::new, |buf: &mut Vec<f64>, (p, mut np)| {
        let len = out_p[p][0].len();
        // w by columns, then one column of u
        buf.resize(len * (b + 1), 0.0);
        let (w, acc) = buf.split_at_mut(len * b);
        let pp = prev_p.as_ref().zip(prev).map(|(pp, (_, t))| (&pp[p][..], t));
        for (j, wj) in w.chunks_exact_mut(len).enumerate() {
            residual_piece(wj, out_p[p][j], pp, j);
        }
        for (j, nj) in np.iter_mut().enumerate() {
            // R⁻¹ is upper triangular
            let c0 = rinv[(0, j)];
            acc.iter_mut().zip(&w[..len]).for_each(|(a, &x)| *a = c0 * x);
            for i in 1..=j {
                let c = rinv[(i, j)];
                acc.iter_mut().zip(&w[i * len..(i + 1) * len]).for_each(|(a, &x)| *a += c * x);
            }
            nj.iter_mut().zip(acc.iter()).for_each(|(d, &a)| *d = S::from_f64(a));
        }
    });
}

/// `G = Rᵀ R` (`R` upper triangular) and `R⁻¹`, `None` unless `G` is well conditioned (condition
/// below `1e4`, as [`qr`] asks for one Cholesky QR pass).
fn well_conditioned_cholesky(g: &Mat<f64>) -> Option<(Mat<f64>, Mat<f64>)> {
    if !crate::tall::well_conditioned(g) {
        return None;
    }
    crate::tall::cholesky_factors(g)
}

/// One side of the bidiagonalisation (`n` rows, `b` columns), with a buffer for the general route.
pub(crate) struct HalfStep {
    n: usize,
    b: usize,
    scratch: Vec<f64>,
}

impl HalfStep {
    pub(crate) fn new(n: usize, b: usize) -> Self {
        Self { n, b, scratch: Vec::new() }
    }

    /// `out - P T`, reorthogonalised (against `P`, or against the whole of `basis` when `full`),
    /// `= u R`: appends `u` to `basis`, returns `R`. `P` is the basis' last block when `t` is given.
    pub(crate) fn run<O: Float, S: Float>(
        &mut self,
        out: &[O],
        t: Option<&Mat<f64>>,
        full: bool,
        basis: &mut Basis<S>,
    ) -> Result<Mat<f64>, SpectrumError> {
        let (n, b) = (self.n, self.b);
        if full {
            // the whole basis' reorthogonalisation (it holds `P`), then the fused Cholesky QR
            let mut w = std::mem::take(&mut self.scratch);
            w.resize(n * b, 0.0);
            let prev = t.map(|t| (basis.last(), t));
            materialise(out, prev, n, b, &mut w);
            basis.orthogonalize(n, &mut w);
            let r = self.run(&w, None, false, basis);
            self.scratch = w;
            return r;
        }
        let (prev, next) = basis.last_and_next();
        let prev = prev.zip(t);
        let (c, g) = grams(out, prev, n, b);
        let before = (0..b).map(|j| g[(j, j)]).sum::<f64>();
        let removed = c.squared_norm_l2();
        let fused =
            if before - removed > 0.5 * before { well_conditioned_cholesky(&(&g - c.transpose() * &c)) } else { None };
        if let Some((r, rinv)) = fused {
            let t = prev.map(|(p, t)| (p, t + &c));
            finish(out, t.as_ref().map(|(p, t)| (*p, t)), &rinv, n, b, next);
            return Ok(r);
        }
        // the general kernels: reorthogonalisation with DGKS, then QR (Householder when needed)
        let w = &mut self.scratch;
        w.resize(n * b, 0.0);
        materialise(out, prev, n, b, w);
        if let Some((p, _)) = prev {
            let p: Vec<f64> = p.iter().map(|x| x.to_f64()).collect();
            orthogonalize(&p, n, w);
        }
        let (q, r) = qr(w, n)?;
        next.iter_mut().zip(&q).for_each(|(d, &v)| *d = S::from_f64(v));
        Ok(r)
    }
}

/// `dst = out - P T` (column-major `n x b`).
fn materialise<O: Float, S: Float>(out: &[O], prev: Prev<'_, S>, n: usize, b: usize, dst: &mut [f64]) {
    let out_p = pieces(out, n);
    let prev_p = prev.map(|(p, _)| pieces(p, n));
    pieces_mut(dst, n).into_par_iter().enumerate().for_each(|(p, mut dp)| {
        let pp = prev_p.as_ref().zip(prev).map(|(pp, (_, t))| (&pp[p][..], t));
        for (j, d) in dp.iter_mut().enumerate().take(b) {
            residual_piece(d, out_p[p][j], pp, j);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::random_vector;

    /// The fused half-step against the general kernels on a block with a previous block and
    /// recurrence coefficients (f64 storage: to rounding; f32: to f32's), then a half-step against
    /// the whole basis, which leaves the new block orthogonal to it;
    #[test]
    fn fused_half_step_matches_the_general_kernels() {
        fn check<S: Float>(tol: f64) {
            let (n, b) = (3 * PIECE + 17, 2);
            let p = qr(&random_vector(n * b), n).unwrap().0;
            let out: Vec<f64> = random_vector(n * b * 2)[n * b..].to_vec();
            let t = Mat::from_fn(b, b, |i, j| 0.3 * (i as f64) - 0.2 * (j as f64) + 0.1);
            let mut basis = Basis::<S>::new(n * b);
            basis.push(&p);
            // the general route on the stored (rounded) P
            let ps: Vec<f64> = basis.last().iter().map(|x| x.to_f64()).collect();
            let mut w = out.clone();
            for j in 0..b {
                for r in 0..n {
                    w[j * n + r] -= (0..b).map(|i| ps[i * n + r] * t[(i, j)]).sum::<f64>();
                }
            }
            orthogonalize(&ps, n, &mut w);
            let (q_ref, r_ref) = qr(&w, n).unwrap();
            let r = HalfStep::new(n, b).run(&out, Some(&t), false, &mut basis).unwrap();
            assert!((&r - &r_ref).norm_l2() <= 1e-12 * r_ref.norm_l2(), "R: {r:?} vs {r_ref:?}");
            let err = basis.last().iter().zip(&q_ref).map(|(a, b)| (a.to_f64() - b).abs()).fold(0.0, f64::max);
            assert!(err <= tol, "u differs by {err}");
            // against the whole basis
            let mut small = Basis::<S>::new(n * b);
            for i in 0..3 {
                let o = random_vector(n * b * (i + 2))[(i + 1) * n * b..].to_vec();
                HalfStep::new(n, b).run(&o, None, true, &mut small).unwrap();
            }
            assert_eq!(small.blocks.len(), 3);
            let x = small.combine(n, Mat::<f64>::identity(3 * b, 3 * b).as_ref());
            let xm = MatRef::from_column_major_slice(&x, n, 3 * b);
            let e = (xm.transpose() * xm - Mat::<f64>::identity(3 * b, 3 * b)).norm_l2();
            assert!(e <= 1e3 * tol.max(1e-16), "not orthonormal: {e}");
        }
        check::<f64>(1e-12);
        check::<f32>(1e-7);
    }
}
