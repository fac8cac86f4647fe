use convmat_numeric::Scalar;
use convmat_shape::{Geometry, TapMap};
use ndarray::{Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewD, Axis, IxDyn};
use rayon::prelude::*;

use crate::{Conv, Float, MatrixError, Operator};

/// im2col: `F.unfold` generalised to 1-3 d and every padding mode.
///
/// `x` is a batch over the geometry's [grid](Geometry::grid): shape `(N, C, *grid)` with
/// `C = grid_channels`. The result has shape `(N, C * K, L)`: row `c * K + t` holds, for each of the
/// `L` window positions, the input value tap `t` of channel `c` reads (0 in zero padding). For a plain
/// convolution with zero padding this is exactly `torch.nn.functional.unfold`.
///
/// # Errors
/// `x` of the wrong shape.
pub fn unfold<T: Scalar>(geometry: &Geometry, x: ArrayViewD<'_, T>) -> Result<Array3<T>, MatrixError> {
    let c = geometry.grid_channels();
    let taps = geometry.tap_map();
    let x = batch_view(x, c, geometry.grid(), "unfold input")?;
    let (n, k, l) = (x.len_of(Axis(0)), taps.kernel_len(), taps.windows_len());
    let x = x.as_standard_layout();
    let mut out = Array3::from_elem((n, c * k, l), T::ZERO);
    unfold_into(geometry, x.as_slice().expect("standard layout"), out.as_slice_mut().expect("fresh array"))?;
    Ok(out)
}

/// [`unfold`] between flat row-major buffers, into one the caller reuses (every entry is overwritten):
/// `x` holds `N` samples of `C * grid_len` values, `cols` `N * C * K * L`.
///
/// # Errors
/// Buffer lengths that do not match the geometry.
pub fn unfold_into<T: Scalar>(geometry: &Geometry, x: &[T], cols: &mut [T]) -> Result<(), MatrixError> {
    let c = geometry.grid_channels();
    let taps = geometry.tap_map();
    let (k, l, g) = (taps.kernel_len(), taps.windows_len(), taps.grid_len());
    let n = batch_len(x.len(), c * g, cols.len(), c * k * l, "unfold buffers")?;
    if n > 0 && l > 0 {
        // one (sample, channel, tap) row of length L per chunk, filled in window order
        cols.par_chunks_mut(l).enumerate().for_each(|(i, row)| {
            let (b, ch, t) = (i / (c * k), i / k % c, i % k);
            let src = &x[(b * c + ch) * g..(b * c + ch + 1) * g];
            row.fill(T::ZERO);
            for_each_read(&taps, t, |w, p| row[w] = src[p]);
        });
    }
    Ok(())
}

/// The batch size two flat buffers of `per_a` and `per_b` values per sample agree on.
fn batch_len(a: usize, per_a: usize, b: usize, per_b: usize, what: &'static str) -> Result<usize, MatrixError> {
    let n = a.checked_div(per_a).unwrap_or(0);
    if a != n * per_a || b != n * per_b {
        return Err(MatrixError::Dimension {
            what,
            expected: format!("N * {per_a} and N * {per_b} values"),
            got: vec![a, b],
        });
    }
    Ok(n)
}

/// Every `(window, grid position)` pair tap `t` connects, windows increasing (none for zero padding).
#[inline(always)]
fn for_each_read(taps: &TapMap, t: usize, mut f: impl FnMut(usize, usize)) {
    let [a0, a1, a2] = taps.axes();
    let ks = taps.kernel_strides();
    let gs = taps.grid_strides();
    let (t0, t1, t2) = (t / ks[0], t % ks[0] / ks[1], t % ks[1]);
    let n2 = a2.positions();
    // the innermost axis' reads once, not per row
    let inner: Vec<(usize, usize)> = (0..n2).filter_map(|o2| a2.read(o2, t2).map(|r| (o2, r))).collect();
    let mut w = 0;
    for o0 in 0..a0.positions() {
        let r0 = a0.read(o0, t0);
        for o1 in 0..a1.positions() {
            let r1 = a1.read(o1, t1);
            if let (Some(r0), Some(r1)) = (r0, r1) {
                let base = r0 * gs[0] + r1 * gs[1];
                for &(o2, r2) in &inner {
                    f(w + o2, base + r2);
                }
            }
            w += n2;
        }
    }
}

/// col2im: `F.fold`, the adjoint of [`unfold`]: sums every column entry back into the input position
/// it was read from (overlapping windows and colliding padding taps add up).
///
/// `cols` has shape `(N, C * K, L)`; the result `(N, C, *grid)`.
///
/// # Errors
/// `cols` of the wrong shape.
pub fn fold<T: Scalar>(geometry: &Geometry, cols: ArrayView3<'_, T>) -> Result<ArrayD<T>, MatrixError> {
    let c = geometry.grid_channels();
    let taps = geometry.tap_map();
    let (k, l, g) = (taps.kernel_len(), taps.windows_len(), taps.grid_len());
    if cols.shape()[1..] != [c * k, l] {
        return Err(MatrixError::Dimension {
            what: "fold input",
            expected: format!("(N, {}, {l})", c * k),
            got: cols.shape().to_vec(),
        });
    }
    let n = cols.len_of(Axis(0));
    let cols = cols.as_standard_layout();
    let mut out = ndarray::Array3::from_elem((n, c, g), T::ZERO);
    fold_into(geometry, cols.as_slice().expect("standard layout"), out.as_slice_mut().expect("fresh array"))?;
    let mut shape = vec![n, c];
    shape.extend_from_slice(geometry.grid());
    Ok(out.into_shape_with_order(IxDyn(&shape)).expect("same length"))
}

/// [`fold`] between flat row-major buffers, into one the caller reuses (every entry is overwritten):
/// `cols` holds `N * C * K * L` values, `x` `N` samples of `C * grid_len`.
///
/// # Errors
/// Buffer lengths that do not match the geometry.
pub fn fold_into<T: Scalar>(geometry: &Geometry, cols: &[T], x: &mut [T]) -> Result<(), MatrixError> {
    let c = geometry.grid_channels();
    let taps = geometry.tap_map();
    let (k, l, g) = (taps.kernel_len(), taps.windows_len(), taps.grid_len());
    let n = batch_len(x.len(), c * g, cols.len(), c * k * l, "fold buffers")?;
    if n > 0 {
        // one (sample, channel) plane per chunk: its K rows added back tap by tap
        x.par_chunks_mut(g).enumerate().for_each(|(i, plane)| {
            plane.fill(T::ZERO);
            let rows = &cols[i * k * l..(i + 1) * k * l];
            for t in 0..k {
                let row = &rows[t * l..(t + 1) * l];
                for_each_read(&taps, t, |w, p| plane[p] = plane[p].add(row[w]));
            }
        });
    }
    Ok(())
}

fn batch_view<'a, T>(
    x: ArrayViewD<'a, T>,
    c: usize,
    spatial: &[usize],
    what: &'static str,
) -> Result<ndarray::ArrayView3<'a, T>, MatrixError> {
    let mut expected = vec![x.shape().first().copied().unwrap_or(0), c];
    expected.extend_from_slice(spatial);
    if x.shape() != expected.as_slice() {
        return Err(MatrixError::Dimension {
            what,
            expected: format!("(N, {c}, {})", spatial.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
            got: x.shape().to_vec(),
        });
    }
    let n = expected[0];
    let len: usize = spatial.iter().product();
    let x = x.into_shape_with_order((n, c, len)).map_err(|_| MatrixError::Dimension {
        what,
        expected: "a contiguous (row-major) array".into(),
        got: vec![],
    })?;
    Ok(x)
}

impl<T: Float> Conv<T> {
    /// The layer applied to a batch `(N, C_in, *in)` by the fast [`Operator`] (unfold + GEMM, or
    /// shifted GEMMs) plus the bias (the seeds' `conv2d_to_matmul`), giving `(N, C_out, *out)`.
    ///
    /// # Errors
    /// `x` of the wrong shape.
    pub fn conv_unfold(&self, x: ArrayViewD<'_, T>) -> Result<ArrayD<T>, MatrixError> {
        let geo = self.geometry();
        let (in_ch, in_spatial, out_ch, out_spatial) = if geo.spec().is_transposed() {
            (geo.window_channels(), geo.windows(), geo.grid_channels(), geo.grid())
        } else {
            (geo.grid_channels(), geo.grid(), geo.window_channels(), geo.windows())
        };
        let x = batch_view(x, in_ch, in_spatial, "input")?;
        let n = x.len_of(Axis(0));
        self.check_batch_memory(n)?;
        let x = x.as_standard_layout();
        let mut y = vec![T::ZERO; n * self.rows()];
        Operator::new(self).apply(x.as_slice().expect("standard layout"), &mut y)?;
        self.add_bias(&mut y);
        let mut shape = vec![n, out_ch];
        shape.extend_from_slice(out_spatial);
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), y).expect("same length"))
    }

    /// Adds the bias to outputs `y`, whole samples `(N, C_out, *out)` of the layer.
    pub(crate) fn add_bias(&self, y: &mut [T]) {
        if let Some(bias) = self.bias() {
            // one bias per plane of `self.rows() / C_out` outputs
            let plane = self.rows() / bias.len().max(1);
            if plane > 0 {
                y.par_chunks_mut(plane).enumerate().for_each(|(i, p)| {
                    let b = bias[i % bias.len()];
                    p.iter_mut().for_each(|v| *v = Scalar::add(*v, b));
                });
            }
        }
    }

    /// `A·x` for a batch `x` of shape `(batch, cols)` by the fast [`Operator`]: floats accumulate in
    /// their own type (as PyTorch does).
    ///
    /// # Errors
    /// `x` without `cols` columns.
    pub fn apply_gemm(&self, x: ArrayView2<'_, T>) -> Result<Array2<T>, MatrixError> {
        Operator::new(self).apply_batch(x)
    }

    /// `Aᵀ·y` for a batch `y` of shape `(batch, rows)` by the fast [`Operator`].
    ///
    /// # Errors
    /// `y` without `rows` columns.
    pub fn adjoint_gemm(&self, y: ArrayView2<'_, T>) -> Result<Array2<T>, MatrixError> {
        Operator::new(self).adjoint_batch(y)
    }
}
