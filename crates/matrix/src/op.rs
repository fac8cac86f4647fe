//! [`Operator`]: the layer's matrix and its transpose on batches, by GEMMs, never forming `A`.

use convmat_shape::PaddingMode;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::blocked::Direct;
use crate::gemm::{gemm, Float, RowMajor, Threads};
use crate::{fold_into, unfold_into, Conv, MatrixError};

/// How an [`Operator`] multiplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperatorPath {
    /// A stride-1 zero-padded (not transposed) layer: one GEMM per kernel tap over the zero-padded
    /// input, shifted by the tap's offset (no unfold, so no `K`-fold copy of the input).
    Shifted,
    /// Any layer: unfold (im2col) + one GEMM per group, and GEMM + fold (col2im) for the transpose.
    UnfoldGemm,
}

/// `A·x` and `Aᵀ·y` for batches of flattened samples, never forming `A`: the one fast matrix-free
/// product of convmat (the command line's `apply`, the float path of [`FixedConv`](crate::FixedConv),
/// Lanczos and the Python operator all run through it).
///
/// It borrows the layer (and its cached tap map) and picks its path by geometry
/// ([`OperatorPath`]): shifted GEMMs for stride-1 zero-padded layers, else unfold + GEMM. Samples of a
/// batch run in parallel, one scratch buffer per thread; a batch smaller than the thread pool threads
/// each GEMM instead. Scratch buffers are kept between calls.
///
/// ```
/// use convmat_matrix::{Conv, Operator, OperatorPath};
/// use convmat_shape::{ConvSpec, Geometry, Padding};
///
/// // Conv2d(2, 3, 3, padding=1) on 2x4x4
/// let spec = ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1));
/// let conv = Conv::new(Geometry::new(&spec, &[4, 4])?, vec![1.0f32; 3 * 2 * 9], None)?;
/// let mut op = Operator::new(&conv);
/// assert_eq!(op.path(), OperatorPath::Shifted);
/// let x = vec![1.0f32; 2 * conv.cols()]; // two samples
/// let mut y = vec![0.0f32; 2 * conv.rows()];
/// op.apply(&x, &mut y)?;
/// assert_eq!(y[0], 8.0); // a corner: 2 channels x 4 taps inside the input
/// # Ok::<(), convmat_matrix::MatrixError>(())
/// ```
pub struct Operator<'a, T: Float> {
    conv: &'a Conv<T>,
    /// The shifted GEMMs, built when a product first needs them.
    shifted: Option<Shifted<T>>,
    /// Whether the GEMM path is [`OperatorPath::Shifted`].
    shifted_path: bool,
    /// `A·x` on the register-blocked direct kernels, where they apply and win.
    direct: Option<Direct<T>>,
    /// Per parallel run of samples, its scratch.
    scratch: Vec<Scratch<T>>,
}

impl<T: Float> std::fmt::Debug for Operator<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("rows", &self.conv.rows())
            .field("cols", &self.conv.cols())
            .field("path", &self.path())
            .field("direct", &self.direct())
            .finish()
    }
}

/// One thread's buffers.
#[derive(Default)]
struct Scratch<T> {
    /// unfold: one sample's columns; shifted: the zero-padded input (padding stays zero between calls).
    a: Vec<T>,
    /// shifted: the computed positions of the output (or of `Aᵀ·y`'s padded grid).
    b: Vec<T>,
    /// direct: the zero-padded input (padding stays zero between calls).
    d: Vec<T>,
}

impl<'a, T: Float> Operator<'a, T> {
    /// The operator of `conv`, on the fastest path for its geometry.
    pub fn new(conv: &'a Conv<T>) -> Self {
        let direct = Direct::new(conv);
        let shifted_path = Shifted::applies(conv);
        // with the direct kernel, only `Aᵀ·y` needs the shifted GEMMs: built if it is ever called
        let shifted = if direct.is_none() && shifted_path { Shifted::new(conv) } else { None };
        Self { conv, shifted, shifted_path, direct, scratch: Vec::new() }
    }

    /// The operator of `conv` on a chosen GEMM path, for `A·x` too (no direct kernel); `Shifted` falls
    /// back to unfold + GEMM where it does not apply (strided, transposed or not zero-padded layers).
    pub fn with_path(conv: &'a Conv<T>, path: OperatorPath) -> Self {
        let shifted = if path == OperatorPath::Shifted { Shifted::new(conv) } else { None };
        Self { conv, shifted_path: shifted.is_some(), shifted, direct: None, scratch: Vec::new() }
    }

    /// Whether `A·x` runs on the register-blocked direct convolution (x86-64 with AVX2 and FMA; plain
    /// zero-padded layers with a vector of output channels per group, or depthwise), which
    /// [`new`](Self::new) picks where it applies; `Aᵀ·y` always takes [`path`](Self::path).
    pub fn direct(&self) -> bool {
        self.direct.is_some()
    }

    /// The GEMM path this operator takes: for `Aᵀ·y`, and for `A·x` unless [`direct`](Self::direct).
    pub fn path(&self) -> OperatorPath {
        if self.shifted_path {
            OperatorPath::Shifted
        } else {
            OperatorPath::UnfoldGemm
        }
    }

    /// `y = A·x` for `x` holding `N` whole samples of [`Conv::cols`] values and `y` `N` of [`Conv::rows`].
    ///
    /// # Errors
    /// Lengths that are not whole samples, or that disagree on `N`.
    pub fn apply(&mut self, x: &[T], y: &mut [T]) -> Result<(), MatrixError> {
        self.run(Input::<T, T>::Same(x), y, true)
    }

    /// `x = Aᵀ·y`, the adjoint, the same way.
    ///
    /// # Errors
    /// Lengths that are not whole samples, or that disagree on `N`.
    pub fn adjoint(&mut self, y: &[T], x: &mut [T]) -> Result<(), MatrixError> {
        self.run(Input::<T, T>::Same(y), x, false)
    }

    /// `A·x` for a batch of shape `(N, cols)`, as a new `(N, rows)` array.
    ///
    /// # Errors
    /// `x` without `cols` columns.
    pub fn apply_batch(&mut self, x: ArrayView2<'_, T>) -> Result<Array2<T>, MatrixError> {
        self.conv.check_batch("apply input", x, self.conv.cols())?;
        let x = x.as_standard_layout();
        let mut y = Array2::from_elem((x.nrows(), self.conv.rows()), T::ZERO);
        self.apply(x.as_slice().expect("standard layout"), y.as_slice_mut().expect("fresh array"))?;
        Ok(y)
    }

    /// `Aᵀ·y` for a batch of shape `(N, rows)`, as a new `(N, cols)` array.
    ///
    /// # Errors
    /// `y` without `rows` columns.
    pub fn adjoint_batch(&mut self, y: ArrayView2<'_, T>) -> Result<Array2<T>, MatrixError> {
        self.conv.check_batch("adjoint input", y, self.conv.rows())?;
        let y = y.as_standard_layout();
        let mut x = Array2::from_elem((y.nrows(), self.conv.cols()), T::ZERO);
        self.adjoint(y.as_slice().expect("standard layout"), x.as_slice_mut().expect("fresh array"))?;
        Ok(x)
    }

    /// `y = A·x` for `x` holding `N` whole samples of another type `S` (`f64` values, say), each sample
    /// converted by `convert` (one sample's `S` values into its `T` values) into a per-thread buffer just
    /// before its product: no converted copy of the whole batch in fresh memory, one pass fewer over it.
    pub(crate) fn apply_converted<S: Sync>(
        &mut self,
        x: &[S],
        y: &mut [T],
        convert: &(dyn Fn(&[S], &mut [T]) + Sync),
    ) -> Result<(), MatrixError> {
        self.run(Input::Converted(x, convert), y, true)
    }

    fn run<S: Sync>(&mut self, input: Input<'_, S, T>, output: &mut [T], forward: bool) -> Result<(), MatrixError> {
        let (per_in, per_out) =
            if forward { (self.conv.cols(), self.conv.rows()) } else { (self.conv.rows(), self.conv.cols()) };
        let len = match input {
            Input::Same(x) => x.len(),
            Input::Converted(x, _) => x.len(),
        };
        let n = len.checked_div(per_in).unwrap_or(0);
        if len != n * per_in || output.len() != n * per_out {
            return Err(MatrixError::Dimension {
                what: if forward { "operator apply buffers" } else { "operator adjoint buffers" },
                expected: format!("N * {per_in} and N * {per_out} values"),
                got: vec![len, output.len()],
            });
        }
        if n == 0 || per_out == 0 {
            return Ok(());
        }
        if per_in == 0 {
            output.fill(T::ZERO);
            return Ok(());
        }
        let threads = rayon::current_num_threads().max(1);
        let (runs, gemm_threads) = if n >= threads { (threads, Threads::One) } else { (1, Threads::All) };
        let run = n.div_ceil(runs);
        self.scratch.resize_with(runs, Scratch::default);
        if self.shifted_path && self.shifted.is_none() && !(forward && self.direct.is_some()) {
            self.shifted = Shifted::new(self.conv);
        }
        let (conv, shifted, direct) = (self.conv, self.shifted.as_ref(), self.direct.as_ref());
        // sample `i` into `y`; `buf` holds a converted sample
        let sample = |i: usize, y: &mut [T], s: &mut Scratch<T>, buf: &mut Vec<T>| {
            let x: &[T] = match input {
                Input::Same(x) => &x[i * per_in..(i + 1) * per_in],
                Input::Converted(x, convert) => {
                    buf.resize(per_in, T::ZERO);
                    convert(&x[i * per_in..(i + 1) * per_in], buf);
                    buf
                }
            };
            let transposed = conv.geometry().spec().is_transposed();
            match (shifted, forward) {
                _ if forward && direct.is_some() => {
                    direct.expect("checked").apply(x, y, &mut s.d, gemm_threads);
                }
                (Some(sh), true) => sh.apply(x, y, s, gemm_threads),
                (Some(sh), false) => sh.adjoint(x, y, s, gemm_threads),
                (None, f) if f != transposed => gather(conv, x, y, &mut s.a, gemm_threads),
                (None, _) => scatter(conv, x, y, &mut s.a, gemm_threads),
            }
        };
        if runs == 1 {
            let (s, mut buf) = (&mut self.scratch[0], Vec::new());
            for (i, y) in output.chunks_exact_mut(per_out).enumerate() {
                sample(i, y, s, &mut buf);
            }
        } else {
            output.par_chunks_mut(run * per_out).enumerate().zip(&mut self.scratch).for_each(|((r, out), s)| {
                let mut buf = Vec::new();
                for (j, y) in out.chunks_exact_mut(per_out).enumerate() {
                    sample(r * run + j, y, s, &mut buf);
                }
            });
        }
        Ok(())
    }
}

/// The input of [`Operator::run`]: the operator's own scalars, or another type with its conversion.
enum Input<'a, S, T> {
    Same(&'a [T]),
    Converted(&'a [S], &'a (dyn Fn(&[S], &mut [T]) + Sync)),
}

impl<S, T> Clone for Input<'_, S, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S, T> Copy for Input<'_, S, T> {}

/// `(window channels per group, grid channels per group * K, L, groups)`.
fn gemm_sizes<T: Float>(conv: &Conv<T>) -> (usize, usize, usize, usize) {
    let geo = conv.geometry();
    let taps = conv.tap_map();
    let g = geo.spec().groups();
    (geo.window_channels() / g, geo.grid_channels() / g * taps.kernel_len(), taps.windows_len(), g)
}

/// The matching convolution on one sample: grid values -> unfold -> one GEMM per group -> window values.
fn gather<T: Float>(conv: &Conv<T>, x: &[T], y: &mut [T], cols: &mut Vec<T>, threads: Threads) {
    let (wg, ck, l, g) = gemm_sizes(conv);
    cols.resize(g * ck * l, T::ZERO);
    unfold_into(conv.geometry(), x, cols).expect("one sample of the geometry");
    let w = conv.weight();
    for gi in 0..g {
        let wm = RowMajor::dense(&w[gi * wg * ck..(gi + 1) * wg * ck], wg, ck);
        let cm = RowMajor::dense(&cols[gi * ck * l..(gi + 1) * ck * l], ck, l);
        gemm(&mut y[gi * wg * l..(gi + 1) * wg * l], l, wm, false, cm, false, threads);
    }
}

/// The matching convolution's transpose on one sample: window values -> one GEMM `Wᵀ·y` per group ->
/// fold -> grid values.
fn scatter<T: Float>(conv: &Conv<T>, y: &[T], x: &mut [T], cols: &mut Vec<T>, threads: Threads) {
    let (wg, ck, l, g) = gemm_sizes(conv);
    cols.resize(g * ck * l, T::ZERO);
    let w = conv.weight();
    for gi in 0..g {
        let wm = RowMajor::dense(&w[gi * wg * ck..(gi + 1) * wg * ck], wg, ck);
        let ym = RowMajor::dense(&y[gi * wg * l..(gi + 1) * wg * l], wg, l);
        gemm(&mut cols[gi * ck * l..(gi + 1) * ck * l], l, wm, true, ym, false, threads);
    }
    fold_into(conv.geometry(), cols, x).expect("one sample of the geometry");
}

/// A stride-1 zero-padded convolution as shifted GEMMs: with the input zero-padded to `(C_in, P)` (`P`
/// the padded grid, flattened), output position `q` (flattened with the padded grid's strides) is
/// `Σ_t W_t · xpad[:, q + offset_t]`, so each tap is one GEMM `W_t (C_out x C_in) · xpad[:, offset_t..]`
/// over all `q` at once; the positions between output rows are computed and dropped.
struct Shifted<T> {
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
    blocks: Vec<T>,
    /// `(C_in / g, C_out / g, g)`.
    channels: (usize, usize, usize),
}

impl<T: Float> Shifted<T> {
    /// Whether the layer takes this path: stride 1, zero padding, not transposed, a nonempty output.
    fn applies(conv: &Conv<T>) -> bool {
        let geo = conv.geometry();
        let spec = geo.spec();
        !(spec.is_transposed()
            || spec.padding_mode() != PaddingMode::Zeros
            || spec.stride().iter().any(|&s| s != 1)
            || geo.output_spatial().contains(&0))
    }

    fn new(conv: &Conv<T>) -> Option<Self> {
        if !Self::applies(conv) {
            return None;
        }
        let geo = conv.geometry();
        let spec = geo.spec();
        let r = spec.rank();
        let (input, output) = (geo.input_spatial(), geo.output_spatial());
        let dims: Vec<usize> = (0..r).map(|a| input[a] + geo.pad_begin()[a] + geo.pad_end()[a]).collect();
        let mut strides = vec![1; r];
        for a in (0..r.saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * dims[a + 1];
        }
        let offsets: Vec<usize> =
            spec.tap_offsets().iter().map(|o| o.iter().zip(&strides).map(|(o, s)| o * s).sum()).collect();
        let k = offsets.len();
        if output.contains(&0) {
            return None;
        }
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
            channels: (ci_g, co_g, g),
        })
    }

    /// One sample: `y = A·x`.
    fn apply(&self, x: &[T], y: &mut [T], s: &mut Scratch<T>, threads: Threads) {
        let (ci_g, co_g, g) = self.channels;
        let (k, p, span) = (self.offsets.len(), self.padded, self.span);
        if s.a.len() != g * ci_g * p {
            // fresh: the padding must be zero (it stays zero: only the interior is written below)
            s.a.clear();
            s.a.resize(g * ci_g * p, T::ZERO);
        }
        s.b.resize(g * co_g * span, T::ZERO);
        widen(x, &self.in_rows, self.in_row, &mut s.a, p);
        for gi in 0..g {
            let ym = &mut s.b[gi * co_g * span..(gi + 1) * co_g * span];
            for (t, &off) in self.offsets.iter().enumerate() {
                let b = (gi * k + t) * co_g * ci_g;
                let wm = RowMajor::dense(&self.blocks[b..b + co_g * ci_g], co_g, ci_g);
                let start = gi * ci_g * p + off;
                let xm =
                    RowMajor { data: &s.a[start..start + (ci_g - 1) * p + span], rows: ci_g, cols: span, stride: p };
                gemm(ym, span, wm, false, xm, t > 0, threads);
            }
        }
        narrow(&s.b, span, &self.out_rows, self.out_row, y);
    }

    /// One sample: `x = Aᵀ·y`.
    fn adjoint(&self, y: &[T], x: &mut [T], s: &mut Scratch<T>, threads: Threads) {
        let (ci_g, co_g, g) = self.channels;
        let (k, p, span) = (self.offsets.len(), self.padded, self.span);
        // the shifted path's `a` is the padded input of `apply`; here it is the padded result
        s.a.clear();
        s.a.resize(g * ci_g * p, T::ZERO);
        s.b.clear();
        s.b.resize(g * co_g * span, T::ZERO);
        // y on the computed positions, zero between output rows
        widen(y, &self.out_rows, self.out_row, &mut s.b, span);
        for gi in 0..g {
            let ym = RowMajor::dense(&s.b[gi * co_g * span..(gi + 1) * co_g * span], co_g, span);
            for (t, &off) in self.offsets.iter().enumerate() {
                let b = (gi * k + t) * co_g * ci_g;
                let wm = RowMajor::dense(&self.blocks[b..b + co_g * ci_g], co_g, ci_g);
                let start = gi * ci_g * p + off;
                // Xpad[:, off..off+span] (ci x span, row stride P) += W_tᵀ · Y
                gemm(&mut s.a[start..start + (ci_g - 1) * p + span], p, wm, true, ym, true, threads);
            }
        }
        narrow(&s.a, p, &self.in_rows, self.in_row, x);
        // `a` now holds a result, not a zero-padded input: the next `apply` must start afresh
        s.a.clear();
    }
}

/// Copies every channel of `compact` (rows of `row` values, back to back) into `wide` (`wide_len`
/// values per channel), row `r` starting at `starts[r]`.
fn widen<T: Copy>(compact: &[T], starts: &[usize], row: usize, wide: &mut [T], wide_len: usize) {
    for (src, dst) in compact.chunks_exact(starts.len() * row).zip(wide.chunks_exact_mut(wide_len)) {
        for (r, &start) in starts.iter().enumerate() {
            dst[start..start + row].copy_from_slice(&src[r * row..(r + 1) * row]);
        }
    }
}

/// The inverse of [`widen`]: the rows at `starts` of every channel of `wide`, back to back.
fn narrow<T: Copy>(wide: &[T], wide_len: usize, starts: &[usize], row: usize, compact: &mut [T]) {
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

    /// Both paths equal the tap-map operator, on layers that take each, in both floats.
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
            (ConvSpec::new_transposed(2, 4, 2, [3]).with_groups(2).with_dilation([2, 1]), vec![3, 4]),
        ];
        for (i, (spec, input)) in specs.into_iter().enumerate() {
            let n: usize = spec.weight_shape().iter().product();
            let w: Vec<f64> = (0..n).map(|j| ((j * 7 + i) % 11) as f64 - 5.0).collect();
            let conv = Conv::new(Geometry::new(&spec, &input).unwrap(), w, None).unwrap();
            let w32: Vec<f32> = conv.weight().iter().map(|&v| v as f32).collect();
            let conv32 = Conv::new(conv.geometry().clone(), w32, None).unwrap();
            assert_eq!(Operator::new(&conv).path() == OperatorPath::Shifted, i < 5, "layer {i}");
            for mut op in [Operator::new(&conv), Operator::with_path(&conv, OperatorPath::UnfoldGemm)] {
                let mut op32 = Operator::with_path(&conv32, op.path());
                // batches below, at and above the thread count
                for batch in [1, 2, 5] {
                    let x = Array2::from_shape_fn((batch, conv.cols()), |(b, j)| ((j * 5 + b) % 9) as f64 - 4.0);
                    let y = Array2::from_shape_fn((batch, conv.rows()), |(b, j)| ((j * 3 + b) % 7) as f64 - 3.0);
                    let (ax, aty) = (conv.apply(x.view()).unwrap(), conv.adjoint(y.view()).unwrap());
                    // twice, interleaved: the kept buffers must not leak between calls
                    for _ in 0..2 {
                        assert_eq!(op.apply_batch(x.view()).unwrap(), ax, "layer {i}");
                        assert_eq!(op.adjoint_batch(y.view()).unwrap(), aty, "layer {i}");
                        // small integers: exact in f32 too
                        let x32 = x.mapv(|v| v as f32);
                        assert_eq!(op32.apply_batch(x32.view()).unwrap(), ax.mapv(|v| v as f32), "layer {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let spec = ConvSpec::new(2, 2, 3, [3]);
        let conv = Conv::new(Geometry::new(&spec, &[4, 4]).unwrap(), vec![1.0f64; 54], None).unwrap();
        let mut op = Operator::new(&conv);
        let mut y = vec![0.0; conv.rows()];
        assert!(matches!(op.apply(&[0.0; 5], &mut y), Err(MatrixError::Dimension { .. })));
        assert!(matches!(op.apply(&vec![0.0; 2 * conv.cols()], &mut y), Err(MatrixError::Dimension { .. })));
        assert!(op.apply(&[], &mut []).is_ok());
    }
}
