use convmat_numeric::Scalar;
use convmat_shape::{Geometry, TapMap};
use ndarray::{Array3, ArrayD, ArrayView3, ArrayViewD, Axis, IxDyn, LinalgScalar};
use rayon::prelude::*;

use crate::{Conv, MatrixError};

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
    let mut out = Array3::from_elem((n, c * k, l), T::ZERO);
    let flat = out.as_slice_mut().expect("fresh array");
    if !flat.is_empty() {
        // one (sample, channel, tap) row of length L per chunk, filled in window order
        flat.par_chunks_mut(l).enumerate().for_each(|(i, row)| {
            let (b, ch, t) = (i / (c * k), i / k % c, i % k);
            let src = x.slice(ndarray::s![b, ch, ..]);
            unfold_row(&taps, t, src.as_slice().expect("standard layout"), row);
        });
    }
    Ok(out)
}

/// Row `t` of one channel's unfold: for every window, the value tap `t` reads (0 in zero padding).
fn unfold_row<T: Scalar>(taps: &TapMap, t: usize, src: &[T], row: &mut [T]) {
    let [a0, a1, a2] = taps.axes();
    let ks = taps.kernel_strides();
    let gs = taps.grid_strides();
    let (t0, t1, t2) = (t / ks[0], t % ks[0] / ks[1], t % ks[1]);
    let mut w = 0;
    for o0 in 0..a0.positions() {
        let r0 = a0.read(o0, t0);
        for o1 in 0..a1.positions() {
            let r1 = a1.read(o1, t1);
            let dst = &mut row[w..w + a2.positions()];
            w += a2.positions();
            let (Some(r0), Some(r1)) = (r0, r1) else { continue };
            let base = r0 * gs[0] + r1 * gs[1];
            for (o2, d) in dst.iter_mut().enumerate() {
                if let Some(r2) = a2.read(o2, t2) {
                    *d = src[base + r2];
                }
            }
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
    let ks = taps.kernel_strides();
    let mut out = ndarray::Array3::from_elem((n, c, g), T::ZERO);
    out.axis_iter_mut(Axis(0)).into_par_iter().zip(cols.axis_iter(Axis(0))).for_each(|(mut xs, cs)| {
        for ch in 0..c {
            for p in 0..g {
                let mut acc = T::ZERO;
                taps.for_each_reader(p, |w, [t0, t1, t2]| {
                    for &a in t0 {
                        for &b in t1 {
                            for &t in t2 {
                                acc = acc.add(cs[[ch * k + a * ks[0] + b * ks[1] + t, w]]);
                            }
                        }
                    }
                });
                xs[[ch, p]] = acc;
            }
        }
    });
    let mut shape = vec![n, c];
    shape.extend_from_slice(geometry.grid());
    Ok(out.into_shape_with_order(IxDyn(&shape)).expect("same length"))
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

impl<T: Scalar + LinalgScalar> Conv<T> {
    /// The layer applied to a batch `(N, C_in, *in)` by unfold + matrix multiply + bias (the seeds'
    /// `conv2d_to_matmul`), giving `(N, C_out, *out)`. A transposed layer runs as matrix multiply + fold
    /// (col2im). One GEMM per group.
    ///
    /// # Errors
    /// `x` of the wrong shape.
    pub fn conv_unfold(&self, x: ArrayViewD<'_, T>) -> Result<ArrayD<T>, MatrixError> {
        let geo = self.geometry();
        let spec = geo.spec();
        let taps: &TapMap = self.tap_map();
        let (k, l) = (taps.kernel_len(), taps.windows_len());
        let g = spec.groups();
        let (wch, gch) = (geo.window_channels(), geo.grid_channels());
        let (wg, gg) = (wch / g, gch / g);
        // weight as (window channels, grid channels per group * K)
        let w = ndarray::ArrayView2::from_shape((wch, gg * k), self.weight()).expect("weight length checked");
        let out = if !spec.is_transposed() {
            let cols = unfold(geo, x)?;
            let n = cols.len_of(Axis(0));
            let mut y = Array3::from_elem((n, wch, l), T::zero());
            for gi in 0..g {
                let wg_mat = w.slice(ndarray::s![gi * wg..(gi + 1) * wg, ..]);
                for b in 0..n {
                    let cols_g = cols.slice(ndarray::s![b, gi * gg * k..(gi + 1) * gg * k, ..]);
                    let mut yb = y.slice_mut(ndarray::s![b, gi * wg..(gi + 1) * wg, ..]);
                    ndarray::linalg::general_mat_mul(T::one(), &wg_mat, &cols_g, T::zero(), &mut yb);
                }
            }
            let mut shape = vec![n, wch];
            shape.extend_from_slice(geo.windows());
            y.into_shape_with_order(IxDyn(&shape)).expect("same length")
        } else {
            let x = batch_view(x, wch, geo.windows(), "input")?;
            let n = x.len_of(Axis(0));
            let mut cols = Array3::from_elem((n, gch * k, l), T::zero());
            for gi in 0..g {
                let wg_t = w.slice(ndarray::s![gi * wg..(gi + 1) * wg, ..]).reversed_axes();
                for b in 0..n {
                    let xg = x.slice(ndarray::s![b, gi * wg..(gi + 1) * wg, ..]);
                    let mut cb = cols.slice_mut(ndarray::s![b, gi * gg * k..(gi + 1) * gg * k, ..]);
                    ndarray::linalg::general_mat_mul(T::one(), &wg_t, &xg, T::zero(), &mut cb);
                }
            }
            fold(geo, cols.view())?
        };
        let mut out = out;
        if let Some(bias) = self.bias() {
            for mut sample in out.axis_iter_mut(Axis(0)) {
                for (ch, mut plane) in sample.axis_iter_mut(Axis(0)).enumerate() {
                    plane.mapv_inplace(|v| v + bias[ch]);
                }
            }
        }
        Ok(out)
    }
}
