//! The layer's matrix and its transpose on vectors, by GEMMs (faer) with reused buffers.

use convmat_matrix::{fold_into, unfold_into, Conv};
use convmat_shape::{ConvSpec, PaddingMode};
use faer::{Accum, MatMut, MatRef, Par};

/// `A·x` and `Aᵀ·y` for batches of flat vectors, never forming `A`. A stride-1 zero-padded layer is a
/// sum of shifted GEMMs over the zero-padded input (one per tap, no unfold); any other layer runs as
/// unfold (im2col) + one GEMM per group and sample, its transpose as one GEMM + fold (col2im). Buffers
/// are kept between calls.
pub(crate) struct Operator<'a> {
    conv: &'a Conv<f64>,
    cols: Vec<f64>,
    shifted: Option<Shifted>,
}

impl<'a> Operator<'a> {
    pub(crate) fn new(conv: &'a Conv<f64>) -> Self {
        Self { conv, cols: Vec::new(), shifted: Shifted::new(conv) }
    }

    /// `y = A·x` for `x` holding whole samples of `cols()` values (and `y` of `rows()`).
    pub(crate) fn apply(&mut self, x: &[f64], y: &mut [f64]) {
        if let Some(s) = &mut self.shifted {
            s.apply(self.conv, x, y)
        } else if self.conv.geometry().spec().is_transposed() {
            self.scatter(x, y)
        } else {
            self.gather(x, y)
        }
    }

    /// `x = Aᵀ·y`.
    pub(crate) fn adjoint(&mut self, y: &[f64], x: &mut [f64]) {
        if let Some(s) = &mut self.shifted {
            s.adjoint(self.conv, y, x)
        } else if self.conv.geometry().spec().is_transposed() {
            self.gather(y, x)
        } else {
            self.scatter(y, x)
        }
    }

    /// `(group rows, group columns, K * L)` sizes and the batch.
    fn sizes(&self, grid_values: usize) -> (usize, usize, usize, usize, usize) {
        let geo = self.conv.geometry();
        let taps = self.conv.tap_map();
        let g = geo.spec().groups();
        let (k, l) = (taps.kernel_len(), taps.windows_len());
        let gch = geo.grid_channels();
        let n = grid_values / (gch * taps.grid_len()).max(1);
        (geo.window_channels() / g, gch / g * k, l, g, n)
    }

    /// The matching convolution: grid values -> window values.
    fn gather(&mut self, x: &[f64], y: &mut [f64]) {
        let (wg, ck, l, g, n) = self.sizes(x.len());
        self.cols.resize(n * g * ck * l, 0.0);
        unfold_into(self.conv.geometry(), x, &mut self.cols).expect("lengths match the geometry");
        let w = self.conv.weight();
        for b in 0..n {
            for gi in 0..g {
                let wm = MatRef::from_row_major_slice(&w[gi * wg * ck..(gi + 1) * wg * ck], wg, ck);
                let start = (b * g + gi) * ck * l;
                // transposed, so that every view is column-major: Yᵀ (L x wg) = colsᵀ (L x ck) Wᵀ
                let cm = MatRef::from_column_major_slice(&self.cols[start..start + ck * l], l, ck);
                let ys = &mut y[(b * g + gi) * wg * l..(b * g + gi + 1) * wg * l];
                let ym = MatMut::from_column_major_slice_mut(ys, l, wg);
                faer::linalg::matmul::matmul(ym, Accum::Replace, cm, wm.transpose(), 1.0, Par::rayon(0));
            }
        }
    }

    /// The matching convolution's transpose: window values -> grid values.
    fn scatter(&mut self, y: &[f64], x: &mut [f64]) {
        let (wg, ck, l, g, n) = self.sizes(x.len());
        self.cols.resize(n * g * ck * l, 0.0);
        let w = self.conv.weight();
        for b in 0..n {
            for gi in 0..g {
                let wm = MatRef::from_row_major_slice(&w[gi * wg * ck..(gi + 1) * wg * ck], wg, ck);
                // colsᵀ (L x ck) = Yᵀ (L x wg) W, all column-major
                let ym = MatRef::from_column_major_slice(&y[(b * g + gi) * wg * l..(b * g + gi + 1) * wg * l], l, wg);
                let start = (b * g + gi) * ck * l;
                let cm = MatMut::from_column_major_slice_mut(&mut self.cols[start..start + ck * l], l, ck);
                faer::linalg::matmul::matmul(cm, Accum::Replace, ym, wm, 1.0, Par::rayon(0));
            }
        }
        fold_into(self.conv.geometry(), &self.cols, x).expect("lengths match the geometry");
    }
}

/// A stride-1 zero-padded convolution as shifted GEMMs: with the input zero-padded to `(C_in, P)` (`P`
/// the padded grid, flattened), output position `q` (flattened with the padded grid's strides) is
/// `Σ_t W_t · xpad[:, q + offset_t]`, so each tap is one GEMM `W_t (C_out x C_in) · xpad[:, offset_t..]`
/// over all `q` at once; the positions between output rows are computed and dropped.
struct Shifted {
    /// Per tap, its offset in the flattened padded grid.
    offsets: Vec<usize>,
    /// Flattened padded grid length.
    padded: usize,
    /// Number of flattened positions computed: the last output's plus one.
    span: usize,
    /// Per input row (all axes but the last), where it starts in the padded grid; with its length.
    in_rows: Vec<usize>,
    in_row: usize,
    /// Per output row, where it starts in the computed positions; with its length.
    out_rows: Vec<usize>,
    out_row: usize,
    /// `(group, tap)` weight blocks `(C_out / g, C_in / g)`, row-major.
    blocks: Vec<f64>,
    /// The zero-padded input of `apply` (its padding stays zero between calls).
    xpad: Vec<f64>,
    /// The padded-grid result of `adjoint`.
    xgrad: Vec<f64>,
    yfull: Vec<f64>,
}

impl Shifted {
    fn new(conv: &Conv<f64>) -> Option<Self> {
        let geo = conv.geometry();
        let spec = geo.spec();
        if spec.is_transposed() || spec.padding_mode() != PaddingMode::Zeros || spec.stride().iter().any(|&s| s != 1) {
            return None;
        }
        let r = spec.rank();
        let (input, output) = (geo.input_spatial(), geo.output_spatial());
        let dims: Vec<usize> = (0..r).map(|a| input[a] + geo.pad_begin()[a] + geo.pad_end()[a]).collect();
        let mut strides = vec![1; r];
        for a in (0..r.saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * dims[a + 1];
        }
        let offsets: Vec<usize> =
            tap_offsets(spec).iter().map(|o| o.iter().zip(&strides).map(|(o, s)| o * s).sum()).collect();
        let k = offsets.len();
        let span = (0..r).map(|a| (output[a] - 1) * strides[a]).sum::<usize>() + 1;
        let row_starts = |extent: &[usize], shift: &[usize]| -> Vec<usize> {
            let rows: usize = extent[..r - 1].iter().product();
            (0..rows)
                .map(|mut i| {
                    let mut start = shift[r - 1];
                    for a in (0..r - 1).rev() {
                        start += (i % extent[a] + shift[a]) * strides[a];
                        i /= extent[a];
                    }
                    start
                })
                .collect()
        };
        let g = spec.groups();
        let (co_g, ci_g) = (spec.out_channels() / g, spec.in_channels() / g);
        let w = conv.weight();
        let mut blocks = Vec::with_capacity(w.len());
        for gi in 0..g {
            for t in 0..k {
                for o in 0..co_g {
                    for i in 0..ci_g {
                        blocks.push(w[((gi * co_g + o) * ci_g + i) * k + t]);
                    }
                }
            }
        }
        Some(Self {
            offsets,
            padded: dims.iter().product(),
            span,
            in_rows: row_starts(input, geo.pad_begin()),
            in_row: input[r - 1],
            out_rows: row_starts(output, &vec![0; r]),
            out_row: output[r - 1],
            blocks,
            xpad: Vec::new(),
            xgrad: Vec::new(),
            yfull: Vec::new(),
        })
    }

    /// `(C_in / g, C_out / g, g)`, the flattened input and output lengths per channel.
    fn dims(&self, conv: &Conv<f64>) -> (usize, usize, usize, usize, usize) {
        let spec = conv.geometry().spec();
        let g = spec.groups();
        let (in_len, out_len) = (self.in_rows.len() * self.in_row, self.out_rows.len() * self.out_row);
        (spec.in_channels() / g, spec.out_channels() / g, g, in_len, out_len)
    }

    fn apply(&mut self, conv: &Conv<f64>, x: &[f64], y: &mut [f64]) {
        let (ci_g, co_g, g, in_len, out_len) = self.dims(conv);
        let (k, p, span) = (self.offsets.len(), self.padded, self.span);
        self.xpad.resize(g * ci_g * p, 0.0);
        self.yfull.resize(g * co_g * span, 0.0);
        for (xs, ys) in x.chunks_exact(g * ci_g * in_len).zip(y.chunks_exact_mut(g * co_g * out_len)) {
            // zero-pad (the padding stays zero between calls; the interior is overwritten)
            widen(xs, &self.in_rows, self.in_row, &mut self.xpad, p);
            for gi in 0..g {
                for (t, &off) in self.offsets.iter().enumerate() {
                    let b = (gi * k + t) * co_g * ci_g;
                    // transposed, so that every view is column-major: Yᵀ (span x co) = Xᵀ (span x ci) W_tᵀ
                    let wm = MatRef::from_row_major_slice(&self.blocks[b..b + co_g * ci_g], co_g, ci_g);
                    let xm =
                        MatRef::from_column_major_slice_with_stride(&self.xpad[gi * ci_g * p + off..], span, ci_g, p);
                    let ym = &mut self.yfull[gi * co_g * span..(gi + 1) * co_g * span];
                    let ym = MatMut::from_column_major_slice_mut(ym, span, co_g);
                    let accum = if t == 0 { Accum::Replace } else { Accum::Add };
                    faer::linalg::matmul::matmul(ym, accum, xm, wm.transpose(), 1.0, Par::rayon(0));
                }
            }
            narrow(&self.yfull, span, &self.out_rows, self.out_row, ys);
        }
    }

    fn adjoint(&mut self, conv: &Conv<f64>, y: &[f64], x: &mut [f64]) {
        let (ci_g, co_g, g, in_len, out_len) = self.dims(conv);
        let (k, p, span) = (self.offsets.len(), self.padded, self.span);
        self.xgrad.resize(g * ci_g * p, 0.0);
        self.yfull.resize(g * co_g * span, 0.0);
        for (ys, xs) in y.chunks_exact(g * co_g * out_len).zip(x.chunks_exact_mut(g * ci_g * in_len)) {
            // y on the computed positions, zero between output rows
            self.yfull.fill(0.0);
            widen(ys, &self.out_rows, self.out_row, &mut self.yfull, span);
            self.xgrad.fill(0.0);
            for gi in 0..g {
                for (t, &off) in self.offsets.iter().enumerate() {
                    let b = (gi * k + t) * co_g * ci_g;
                    // Xᵀ (span x ci, column stride P) += Yᵀ (span x co) W_t, all column-major (faer 0.24
                    // writes out of bounds into a row-major strided destination)
                    let wm = MatRef::from_row_major_slice(&self.blocks[b..b + co_g * ci_g], co_g, ci_g);
                    let ym = &self.yfull[gi * co_g * span..(gi + 1) * co_g * span];
                    let ym = MatRef::from_column_major_slice(ym, span, co_g);
                    let xm = &mut self.xgrad[gi * ci_g * p + off..];
                    let xm = MatMut::from_column_major_slice_with_stride_mut(xm, span, ci_g, p);
                    faer::linalg::matmul::matmul(xm, Accum::Add, ym, wm, 1.0, Par::rayon(0));
                }
            }
            narrow(&self.xgrad, p, &self.in_rows, self.in_row, xs);
        }
    }
}

/// Per kernel tap (row-major over the kernel), its spatial offset per axis: tap index times dilation.
pub(crate) fn tap_offsets(spec: &ConvSpec) -> Vec<Vec<usize>> {
    let (ks, dil) = (spec.kernel_size(), spec.dilation());
    let k: usize = ks.iter().product();
    (0..k)
        .map(|t| {
            let mut rest = t;
            let mut o = vec![0; ks.len()];
            for a in (0..ks.len()).rev() {
                o[a] = (rest % ks[a]) * dil[a];
                rest /= ks[a];
            }
            o
        })
        .collect()
}

/// Copies every channel of `compact` (rows of `row` values, back to back) into `wide` (`wide_len`
/// values per channel), row `r` starting at `starts[r]`.
fn widen(compact: &[f64], starts: &[usize], row: usize, wide: &mut [f64], wide_len: usize) {
    for (src, dst) in compact.chunks_exact(starts.len() * row).zip(wide.chunks_exact_mut(wide_len)) {
        for (r, &start) in starts.iter().enumerate() {
            dst[start..start + row].copy_from_slice(&src[r * row..(r + 1) * row]);
        }
    }
}

/// The inverse of [`widen`]: the rows at `starts` of every channel of `wide`, back to back.
fn narrow(wide: &[f64], wide_len: usize, starts: &[usize], row: usize, compact: &mut [f64]) {
    for (src, dst) in wide.chunks_exact(wide_len).zip(compact.chunks_exact_mut(starts.len() * row)) {
        for (r, &start) in starts.iter().enumerate() {
            dst[r * row..(r + 1) * row].copy_from_slice(&src[start..start + row]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use convmat_shape::{ConvSpec, Geometry, Padding};
    use ndarray::Array2;

    /// Both paths equal the tap-map operator, on layers that take each.
    #[test]
    fn operator_equals_the_matrix_free_reference() {
        let specs = [
            (ConvSpec::new(2, 4, 6, [3]).with_padding(Padding::uniform(1)), vec![5, 7]),
            (
                ConvSpec::new(2, 4, 6, [3, 2]).with_padding(Padding::Same).with_dilation([2, 1]).with_groups(2),
                vec![6, 5],
            ),
            (ConvSpec::new(1, 3, 2, [4]).with_padding(Padding::Explicit { begin: vec![3], end: vec![0] }), vec![9]),
            (ConvSpec::new(3, 2, 2, [2]).with_padding(Padding::uniform(1)), vec![3, 4, 3]),
            (ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::Valid), vec![4, 4]),
            (ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1)).with_stride([2]), vec![5, 6]),
            (
                ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1)).with_padding_mode(PaddingMode::Reflect),
                vec![5, 6],
            ),
            (ConvSpec::new_transposed(2, 3, 2, [3]).with_stride([2]).with_padding(Padding::uniform(1)), vec![3, 4]),
        ];
        for (i, (spec, input)) in specs.into_iter().enumerate() {
            let n: usize = spec.weight_shape().iter().product();
            let w: Vec<f64> = (0..n).map(|j| ((j * 7 + i) % 11) as f64 - 5.0).collect();
            let conv = Conv::new(Geometry::new(&spec, &input).unwrap(), w, None).unwrap();
            assert_eq!(Operator::new(&conv).shifted.is_some(), i < 5, "layer {i}");
            // the shifted GEMMs where they apply, and unfold + GEMM on every layer
            for mut op in [Operator::new(&conv), Operator { conv: &conv, cols: Vec::new(), shifted: None }] {
                for batch in [1, 2] {
                    let x = Array2::from_shape_fn((batch, conv.cols()), |(b, j)| ((j * 5 + b) % 9) as f64 - 4.0);
                    let y = Array2::from_shape_fn((batch, conv.rows()), |(b, j)| ((j * 3 + b) % 7) as f64 - 3.0);
                    // twice: the kept buffers must not leak between calls
                    for _ in 0..2 {
                        let mut ax = vec![0.0; batch * conv.rows()];
                        op.apply(x.as_slice().unwrap(), &mut ax);
                        assert_eq!(ax, conv.apply(x.view()).unwrap().into_raw_vec_and_offset().0, "layer {i}");
                        let mut aty = vec![0.0; batch * conv.cols()];
                        op.adjoint(y.as_slice().unwrap(), &mut aty);
                        assert_eq!(aty, conv.adjoint(y.view()).unwrap().into_raw_vec_and_offset().0, "layer {i}");
                    }
                }
            }
        }
    }
}
