use convmat_numeric::Scalar;
use ndarray::{Array2, Array3, ArrayView2, Axis};
use rayon::prelude::*;

use crate::{Conv, MatrixError};

impl<T: Scalar> Conv<T> {
    /// `A·x` for a batch `x` of shape `(batch, cols)`, straight from the tap map, never forming `A`:
    /// for layers whose matrix does not fit in memory. Accumulates in [`Scalar::Acc`].
    ///
    /// # Errors
    /// `x` without `cols` columns.
    pub fn apply(&self, x: ArrayView2<'_, T>) -> Result<Array2<T::Acc>, MatrixError> {
        self.check_batch("apply input", x, self.cols())?;
        Ok(if self.geometry().spec().is_transposed() { self.scatter(x) } else { self.gather(x) })
    }

    /// `Aᵀ·y` for a batch `y` of shape `(batch, rows)`: the adjoint, equally matrix-free.
    ///
    /// # Errors
    /// `y` without `rows` columns.
    pub fn adjoint(&self, y: ArrayView2<'_, T>) -> Result<Array2<T::Acc>, MatrixError> {
        self.check_batch("adjoint input", y, self.rows())?;
        Ok(if self.geometry().spec().is_transposed() { self.gather(y) } else { self.scatter(y) })
    }

    /// The layer's output `A·x + b` for a batch `x` of shape `(batch, cols)`.
    ///
    /// # Errors
    /// `x` without `cols` columns.
    pub fn forward(&self, x: ArrayView2<'_, T>) -> Result<Array2<T::Acc>, MatrixError> {
        let mut y = self.apply(x)?;
        if let Some(b) = self.expanded_bias() {
            for mut row in y.axis_iter_mut(Axis(0)) {
                for (v, &bias) in row.iter_mut().zip(&b) {
                    *v = T::acc_add(*v, bias.widen());
                }
            }
        }
        Ok(y)
    }

    pub(crate) fn check_batch(&self, what: &'static str, x: ArrayView2<'_, T>, cols: usize) -> Result<(), MatrixError> {
        if x.ncols() != cols {
            return Err(MatrixError::Dimension { what, expected: format!("(batch, {cols})"), got: x.shape().to_vec() });
        }
        self.check_batch_memory(x.nrows())
    }

    /// Refuses a batch of `n` whose output (with the input, a lower bound of what any path holds)
    /// does not fit in the memory available: an output sized by a huge padding is never allocated.
    pub(crate) fn check_batch_memory(&self, n: usize) -> Result<(), MatrixError> {
        let (rows, cols) = (self.rows(), self.cols());
        crate::check_memory(
            || format!("a batch of {n} through the {rows} x {cols} operator (input and output)"),
            n.saturating_mul(rows.saturating_add(cols)),
            std::mem::size_of::<T>(),
        )
    }

    /// The matching convolution applied to a batch over the grid: per window, the patch the kernel
    /// reads times every window channel's weights (one small GEMV, vectorised over channels).
    /// `x`: `(batch, grid_channels * grid_len)` -> `(batch, window_channels * windows_len)`.
    fn gather(&self, x: ArrayView2<'_, T>) -> Array2<T::Acc> {
        let d = Dims::of(self);
        let batch = x.nrows();
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        // weights per group as (grid channel within group * K + tap, window channel within group)
        let mut wt = vec![T::ZERO; self.weight().len()];
        for co in 0..d.cw {
            let (gi, col) = (co / d.cw_g, co % d.cw_g);
            for j in 0..d.cg_g * d.k {
                wt[(gi * d.cg_g * d.k + j) * d.cw_g + col] = self.weight()[co * d.cg_g * d.k + j];
            }
        }
        let taps = self.tap_map();
        let mut out = vec![T::ACC_ZERO; d.l * batch * d.cw]; // (window, batch, channel)
        if !out.is_empty() {
            out.par_chunks_mut(batch * d.cw).enumerate().for_each_init(Vec::new, |reads, (w, acc)| {
                reads.clear();
                taps.for_each_read(w, |t, r| {
                    if let Some(p) = r {
                        reads.push((t, p));
                    }
                });
                for ci in 0..d.cg {
                    let (gi, cl) = (ci / d.cg_g, ci % d.cg_g);
                    for &(t, p) in reads.iter() {
                        let j = gi * d.cg_g * d.k + cl * d.k + t;
                        let wrow = &wt[j * d.cw_g..(j + 1) * d.cw_g];
                        for b in 0..batch {
                            let xv = xs[b * d.cg * d.g_len + ci * d.g_len + p];
                            let dst = &mut acc[b * d.cw + gi * d.cw_g..b * d.cw + (gi + 1) * d.cw_g];
                            for (a, &wv) in dst.iter_mut().zip(wrow) {
                                *a = T::mul_acc(*a, wv, xv);
                            }
                        }
                    }
                }
            });
        }
        to_batch_major(out, d.l, batch, d.cw)
    }

    /// The matching convolution's transpose applied to a batch over the windows: per window, the
    /// column block `Wᵀ·y` (vectorised over taps), then folded back onto the grid through the inverse
    /// tap map, a gather per grid position (no atomics).
    /// `y`: `(batch, window_channels * windows_len)` -> `(batch, grid_channels * grid_len)`.
    fn scatter(&self, y: ArrayView2<'_, T>) -> Array2<T::Acc> {
        let d = Dims::of(self);
        let batch = y.nrows();
        let y = y.as_standard_layout();
        let ys = y.as_slice().expect("standard layout");
        let taps = self.tap_map();
        let w = self.weight();
        let block = d.cg * d.k;
        let mut cols = vec![T::ACC_ZERO; d.l * batch * block]; // (window, batch, grid channel * K + tap)
        if !cols.is_empty() {
            cols.par_chunks_mut(batch * block).enumerate().for_each(|(win, c)| {
                for co in 0..d.cw {
                    let gi = co / d.cw_g;
                    let wblock = &w[co * d.cg_g * d.k..(co + 1) * d.cg_g * d.k];
                    for b in 0..batch {
                        let yv = ys[b * d.cw * d.l + co * d.l + win];
                        let start = b * block + gi * d.cg_g * d.k;
                        for (a, &wv) in c[start..start + d.cg_g * d.k].iter_mut().zip(wblock) {
                            *a = T::mul_acc(*a, wv, yv);
                        }
                    }
                }
            });
        }
        let ks = taps.kernel_strides();
        let mut out = vec![T::ACC_ZERO; d.g_len * batch * d.cg]; // (grid position, batch, channel)
        if !out.is_empty() {
            out.par_chunks_mut(batch * d.cg).enumerate().for_each(|(p, acc)| {
                taps.for_each_reader(p, |win, [t0, t1, t2]| {
                    for &a in t0 {
                        for &bb in t1 {
                            for &c in t2 {
                                let t = a * ks[0] + bb * ks[1] + c;
                                for b in 0..batch {
                                    let src = &cols[(win * batch + b) * block..(win * batch + b + 1) * block];
                                    for (ci, o) in acc[b * d.cg..(b + 1) * d.cg].iter_mut().enumerate() {
                                        *o = T::acc_add(*o, src[ci * d.k + t]);
                                    }
                                }
                            }
                        }
                    }
                });
            });
        }
        to_batch_major(out, d.g_len, batch, d.cg)
    }
}

/// Channel and position counts of the matching convolution.
struct Dims {
    cg: usize,
    cw: usize,
    cg_g: usize,
    cw_g: usize,
    k: usize,
    l: usize,
    g_len: usize,
}

impl Dims {
    fn of<T: Scalar>(c: &Conv<T>) -> Self {
        let geo = c.geometry();
        let g = geo.spec().groups();
        let (cg, cw) = (geo.grid_channels(), geo.window_channels());
        let taps = c.tap_map();
        Self { cg, cw, cg_g: cg / g, cw_g: cw / g, k: taps.kernel_len(), l: taps.windows_len(), g_len: taps.grid_len() }
    }
}

/// `(position, batch, channel)` -> `(batch, channel * positions)`.
fn to_batch_major<A: Copy>(v: Vec<A>, positions: usize, batch: usize, channels: usize) -> Array2<A> {
    let a = Array3::from_shape_vec((positions, batch, channels), v).expect("length matches");
    let a = a.permuted_axes([1, 2, 0]).as_standard_layout().into_owned();
    a.into_shape_with_order((batch, channels * positions)).expect("standard layout")
}
