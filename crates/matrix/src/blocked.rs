//! A register-blocked direct convolution: [`Operator`](crate::Operator)'s `A·x` for plain zero-padded
//! layers of any rank, stride, dilation and groups, without unfolding the input or calling a GEMM.
//!
//! - **Dense** (any layer with at least one SIMD vector of output channels per group): a block of
//!   output channels (one or two vectors) times a block of output positions (12 or 6) lives in twelve
//!   accumulator registers; per input channel and tap, the block's weights are loaded as vectors and each
//!   position's input value is broadcast. Positions are a table of offsets into the zero-padded input, so
//!   strides, dilations and ranks cost nothing in the loop, and a block may span output rows.
//! - **Depthwise** (one input and one output channel per group): the input is copied once into blocks of
//!   channels interleaved by vector (`[block][position][lane]`), and a vector of channels times a block of
//!   positions accumulates with vector loads only.
//!
//! Kernels exist for x86-64 with AVX2 and FMA (detected at run time; they run unchanged on AVX-512
//! parts); elsewhere the operator keeps its GEMM paths. Every sum runs over the same terms as the GEMM
//! paths (one fused multiply-add each, input channel by input channel, tap by tap), only in another
//! order, so integer-valued data gives the same exact results and other data the same up to rounding.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use convmat_shape::PaddingMode;
use rayon::prelude::*;

use crate::gemm::{Float, Threads};
use crate::Conv;

/// Output positions per dense block, by vectors of output channels: twelve accumulators either way.
const fn dense_positions(vectors: usize) -> usize {
    12 / vectors
}

/// Output positions per depthwise block.
const DEPTHWISE_POSITIONS: usize = 8;

/// Dense blocks of positions per task: a task's input rows stay in cache across its channel blocks.
const BLOCKS_PER_TASK: usize = 8;

pub mod kernels {
    /// The SIMD kernels of one float type. Sealed: implemented for `f32` and `f64` below.
    pub trait Kernels: Copy + Send + Sync + 'static {
        /// Values per vector register.
        const LANES: usize;

        /// Whether this CPU runs the kernels.
        fn available() -> bool;

        /// One dense block: `tile[(j * vectors + v) * LANES + l] (+)= Σ_c Σ_t w[c][t][v·LANES + l] ·
        /// x[c·plane + pix[j] + taps[t]]` for `j` below `12 / vectors` (`+=` when `accumulate`).
        ///
        /// # Safety
        /// [`available`](Self::available) holds; `vectors` is 1 or 2; `pix` holds `12 / vectors` offsets;
        /// `x` is readable at every `c·plane + pix[j] + taps[t]` for `c < channels`; `w` holds
        /// `channels · taps.len() · vectors · LANES` values; `tile` holds `12 · LANES`.
        #[allow(clippy::too_many_arguments)]
        unsafe fn dense(
            vectors: usize,
            x: *const Self,
            pix: &[usize],
            taps: &[usize],
            plane: usize,
            channels: usize,
            w: *const Self,
            accumulate: bool,
            tile: &mut [Self],
        );

        /// One depthwise block: `tile[j · LANES + l] = Σ_t w[t][l] · x[(pix[j] + taps[t]) · LANES + l]`
        /// for `j` below [`DEPTHWISE_POSITIONS`](super::DEPTHWISE_POSITIONS).
        ///
        /// # Safety
        /// [`available`](Self::available) holds; `pix` holds `DEPTHWISE_POSITIONS` offsets; `x` is
        /// readable at every `(pix[j] + taps[t]) · LANES + l`; `w` holds `taps.len() · LANES` values;
        /// `tile` holds `DEPTHWISE_POSITIONS · LANES`.
        unsafe fn depthwise(x: *const Self, pix: &[usize], taps: &[usize], w: *const Self, tile: &mut [Self]);
    }
}

use kernels::Kernels;

#[cfg(target_arch = "x86_64")]
macro_rules! avx2_kernels {
    ($t:ty, $lanes:expr, $zero:ident, $load:ident, $splat:ident, $fma:ident, $store:ident, $dense:ident, $dw:ident) => {
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $dense<const NV: usize, const P: usize>(
            x: *const $t,
            pix: &[usize],
            taps: &[usize],
            plane: usize,
            channels: usize,
            w: *const $t,
            accumulate: bool,
            tile: &mut [$t],
        ) {
            let pix: [usize; P] = pix[..P].try_into().expect("one block of positions");
            assert!(tile.len() >= P * NV * $lanes);
            let k = taps.len();
            // SAFETY: the caller guarantees every offset read below (see `Kernels::dense`).
            unsafe {
                let mut acc = [[$zero(); NV]; P];
                if accumulate {
                    for j in 0..P {
                        for v in 0..NV {
                            acc[j][v] = $load(tile.as_ptr().add((j * NV + v) * $lanes));
                        }
                    }
                }
                for c in 0..channels {
                    let xc = x.add(c * plane);
                    let wc = w.add(c * k * NV * $lanes);
                    for (t, &off) in taps.iter().enumerate() {
                        let wt = wc.add(t * NV * $lanes);
                        let mut wv = [$zero(); NV];
                        for (v, wv) in wv.iter_mut().enumerate() {
                            *wv = $load(wt.add(v * $lanes));
                        }
                        for j in 0..P {
                            let xb = $splat(*xc.add(pix[j] + off));
                            for v in 0..NV {
                                acc[j][v] = $fma(wv[v], xb, acc[j][v]);
                            }
                        }
                    }
                }
                for j in 0..P {
                    for v in 0..NV {
                        $store(tile.as_mut_ptr().add((j * NV + v) * $lanes), acc[j][v]);
                    }
                }
            }
        }

        #[target_feature(enable = "avx2,fma")]
        unsafe fn $dw<const P: usize>(x: *const $t, pix: &[usize], taps: &[usize], w: *const $t, tile: &mut [$t]) {
            let pix: [usize; P] = pix[..P].try_into().expect("one block of positions");
            assert!(tile.len() >= P * $lanes);
            // SAFETY: the caller guarantees every offset read below (see `Kernels::depthwise`).
            unsafe {
                let mut acc = [$zero(); P];
                for (t, &off) in taps.iter().enumerate() {
                    let wv = $load(w.add(t * $lanes));
                    for j in 0..P {
                        acc[j] = $fma(wv, $load(x.add((pix[j] + off) * $lanes)), acc[j]);
                    }
                }
                for (j, a) in acc.into_iter().enumerate() {
                    $store(tile.as_mut_ptr().add(j * $lanes), a);
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
avx2_kernels!(
    f32,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_storeu_ps,
    dense_f32,
    depthwise_f32
);
#[cfg(target_arch = "x86_64")]
avx2_kernels!(
    f64,
    4,
    _mm256_setzero_pd,
    _mm256_loadu_pd,
    _mm256_set1_pd,
    _mm256_fmadd_pd,
    _mm256_storeu_pd,
    dense_f64,
    depthwise_f64
);

macro_rules! impl_kernels {
    ($t:ty, $lanes:expr, $dense:ident, $dw:ident) => {
        impl Kernels for $t {
            const LANES: usize = $lanes;

            fn available() -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    false
                }
            }

            #[allow(unused_variables)]
            unsafe fn dense(
                vectors: usize,
                x: *const Self,
                pix: &[usize],
                taps: &[usize],
                plane: usize,
                channels: usize,
                w: *const Self,
                accumulate: bool,
                tile: &mut [Self],
            ) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: forwarded from the caller.
                unsafe {
                    match vectors {
                        1 => $dense::<1, { dense_positions(1) }>(x, pix, taps, plane, channels, w, accumulate, tile),
                        _ => $dense::<2, { dense_positions(2) }>(x, pix, taps, plane, channels, w, accumulate, tile),
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("no kernels without x86-64")
            }

            #[allow(unused_variables)]
            unsafe fn depthwise(x: *const Self, pix: &[usize], taps: &[usize], w: *const Self, tile: &mut [Self]) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: forwarded from the caller.
                unsafe {
                    $dw::<DEPTHWISE_POSITIONS>(x, pix, taps, w, tile)
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("no kernels without x86-64")
            }
        }
    };
}

impl_kernels!(f32, 8, dense_f32, depthwise_f32);
impl_kernels!(f64, 4, dense_f64, depthwise_f64);

/// Which kernel a layer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `vectors` (1 or 2) SIMD vectors of output channels per block, `blocks` blocks per group.
    Dense { vectors: usize, blocks: usize },
    /// One channel per group; `blocks` vectors of channels.
    Depthwise { blocks: usize },
}

/// A layer prepared for the direct kernels: its position and tap offsets in the zero-padded input and
/// its weights packed by block.
pub(crate) struct Direct<T> {
    kind: Kind,
    /// `(C_in / g, C_out / g, g)`.
    channels: (usize, usize, usize),
    /// Input values per channel.
    in_len: usize,
    /// Values per channel of the zero-padded input.
    plane: usize,
    /// Per input row (all axes but the last), its start in the padded input; with the row's length.
    /// `None` for a dense layer without padding, which reads its input in place.
    rows: Option<(Vec<usize>, usize)>,
    /// Output positions per channel.
    out_len: usize,
    /// Per output position, its first input in the padded input (padded with zeros to whole blocks).
    pix: Vec<usize>,
    /// Per tap, its offset from a position's first input.
    taps: Vec<usize>,
    /// Dense: `[group][block][input channel][tap][vectors · LANES]`; depthwise: `[block][tap][LANES]`;
    /// zero beyond the layer's channels.
    weights: Vec<T>,
}

/// The output buffer shared by tasks that write disjoint entries.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
impl<T> Shared<T> {
    /// The entry at `i` (a method, so that closures capture the whole `Sync` wrapper).
    fn at(&self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}
// SAFETY: tasks write disjoint indices of one live buffer (see `Direct::apply`).
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T: Float> Direct<T> {
    /// The layer on the direct kernels, or `None` where they do not apply (no AVX2 + FMA, a transposed
    /// layer, a padding other than zeros, fewer output channels per group than a vector and more than
    /// one input channel per group) or where the GEMM paths are faster.
    pub(crate) fn new(conv: &Conv<T>) -> Option<Self> {
        let geo = conv.geometry();
        let spec = geo.spec();
        if !T::available() || spec.is_transposed() || spec.padding_mode() != PaddingMode::Zeros {
            return None;
        }
        let lanes = T::LANES;
        let g = spec.groups();
        let (ci_g, co_g) = (spec.in_channels() / g, spec.out_channels() / g);
        let kind = if ci_g == 1 && co_g == 1 {
            Kind::Depthwise { blocks: g.div_ceil(lanes) }
        } else if spec.kernel_size().iter().all(|&k| k == 1) && spec.stride().iter().all(|&s| s == 1) {
            // a pointwise layer is one GEMM on the shifted path, faster than these kernels (1x1 96->24
            // and 256->64 on 56x56: 21 and 15 GMAC/s here against 26 and 19 for the GEMM, one run)
            return None;
        } else if co_g >= lanes {
            let vectors = if co_g >= 2 * lanes { 2 } else { 1 };
            Kind::Dense { vectors, blocks: co_g.div_ceil(vectors * lanes) }
        } else {
            return None;
        };
        let r = spec.rank();
        let (input, output, pb, pe) = (geo.input_spatial(), geo.output_spatial(), geo.pad_begin(), geo.pad_end());
        if input.contains(&0) || output.contains(&0) || spec.in_channels() == 0 {
            return None;
        }
        let dims: Vec<usize> = (0..r).map(|a| input[a] + pb[a] + pe[a]).collect();
        let mut strides = vec![1; r];
        for a in (0..r.saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * dims[a + 1];
        }
        let taps: Vec<usize> =
            spec.tap_offsets().iter().map(|o| o.iter().zip(&strides).map(|(o, s)| o * s).sum()).collect();
        let out_len: usize = output.iter().product();
        let block = match kind {
            Kind::Dense { vectors, .. } => dense_positions(vectors),
            Kind::Depthwise { .. } => DEPTHWISE_POSITIONS,
        };
        let mut pix: Vec<usize> = (0..out_len)
            .map(|mut q| {
                let mut off = 0;
                for a in (0..r).rev() {
                    off += (q % output[a]) * spec.stride()[a] * strides[a];
                    q /= output[a];
                }
                off
            })
            .collect();
        pix.resize(out_len.next_multiple_of(block), 0);
        let in_row = input[r - 1];
        let in_rows: Vec<usize> = (0..input[..r - 1].iter().product::<usize>())
            .map(|mut i| {
                let mut start = pb[r - 1];
                for a in (0..r - 1).rev() {
                    start += (i % input[a] + pb[a]) * strides[a];
                    i /= input[a];
                }
                start
            })
            .collect();
        let padded = pb.iter().chain(pe).any(|&p| p > 0);
        let k = taps.len();
        let w = conv.weight();
        let weights = match kind {
            Kind::Dense { vectors, blocks } => {
                let width = vectors * lanes;
                let mut packed = vec![T::ZERO; g * blocks * ci_g * k * width];
                // output channel `o` of group `gi`: its `ci_g · k` weights, `width` apart in its block
                for (go, src) in w.chunks_exact(ci_g * k).enumerate() {
                    let (gi, o) = (go / co_g, go % co_g);
                    let start = (gi * blocks + o / width) * ci_g * k * width + o % width;
                    for (dst, &v) in packed[start..].iter_mut().step_by(width).zip(src) {
                        *dst = v;
                    }
                }
                packed
            }
            Kind::Depthwise { blocks } => {
                let mut packed = vec![T::ZERO; blocks * k * lanes];
                for c in 0..g {
                    for t in 0..k {
                        packed[((c / lanes) * k + t) * lanes + c % lanes] = w[c * k + t];
                    }
                }
                packed
            }
        };
        Some(Self {
            kind,
            channels: (ci_g, co_g, g),
            in_len: input.iter().product(),
            plane: dims.iter().product(),
            rows: (padded || matches!(kind, Kind::Depthwise { .. })).then_some((in_rows, in_row)),
            out_len,
            pix,
            taps,
            weights,
        })
    }

    /// One sample: `y = A·x`. `scratch` keeps the padded input between calls (its padding stays zero:
    /// only the interior is written).
    pub(crate) fn apply(&self, x: &[T], y: &mut [T], scratch: &mut Vec<T>, threads: Threads) {
        let (ci_g, co_g, g) = self.channels;
        let (plane, l) = (self.plane, self.out_len);
        let lanes = T::LANES;
        debug_assert_eq!(x.len(), ci_g * g * self.in_len);
        debug_assert_eq!(y.len(), co_g * g * l);
        let src: &[T] = match (&self.rows, self.kind) {
            (None, _) => x,
            (Some((starts, row)), Kind::Dense { .. }) => {
                let row = *row;
                fresh(scratch, g * ci_g * plane);
                for (src, dst) in x.chunks_exact(self.in_len).zip(scratch.chunks_exact_mut(plane)) {
                    for (r, &start) in starts.iter().enumerate() {
                        dst[start..start + row].copy_from_slice(&src[r * row..(r + 1) * row]);
                    }
                }
                scratch
            }
            (Some((starts, row)), Kind::Depthwise { blocks }) => {
                let row = *row;
                fresh(scratch, blocks * plane * lanes);
                for (c, src) in x.chunks_exact(self.in_len).enumerate() {
                    let dst = &mut scratch[(c / lanes) * plane * lanes..(c / lanes + 1) * plane * lanes];
                    let lane = c % lanes;
                    for (r, &start) in starts.iter().enumerate() {
                        for (i, &v) in src[r * row..(r + 1) * row].iter().enumerate() {
                            dst[(start + i) * lanes + lane] = v;
                        }
                    }
                }
                scratch
            }
        };
        let out = Shared(y.as_mut_ptr());
        let (k, pix, taps) = (self.taps.len(), &self.pix, &self.taps);
        match self.kind {
            Kind::Dense { vectors, blocks } => {
                let (p, width) = (dense_positions(vectors), vectors * lanes);
                let pos_blocks = pix.len() / p;
                let chunks = pos_blocks.div_ceil(BLOCKS_PER_TASK);
                let channel_blocks = g * blocks;
                // input channels per pass: the block's weights of one pass stay in L1 (16 KB)
                let pass = (16384 / (k * width * std::mem::size_of::<T>())).clamp(1, ci_g);
                // a task: one chunk of positions, one block of output channels
                let task = |task: usize| {
                    let (chunk, cb) = (task / channel_blocks, task % channel_blocks);
                    let (gi, b) = (cb / blocks, cb % blocks);
                    let first = chunk * BLOCKS_PER_TASK;
                    let last = (first + BLOCKS_PER_TASK).min(pos_blocks);
                    let mut tiles = [T::ZERO; BLOCKS_PER_TASK * 12 * 8];
                    let tile = 12 * lanes;
                    for c0 in (0..ci_g).step_by(pass) {
                        let x = src[(gi * ci_g + c0) * plane..].as_ptr();
                        let w = self.weights[(cb * ci_g + c0) * k * width..].as_ptr();
                        for (i, pb) in (first..last).enumerate() {
                            let p0 = pb * p;
                            let t = &mut tiles[i * tile..(i + 1) * tile];
                            // SAFETY: `available` held at construction; every `c·plane + pix + tap` lies
                            // inside the group's padded input (the geometry's output positions read inside
                            // it), the packed block holds `ci_g · k · width` weights from `c0` on, and the
                            // tile 12 vectors.
                            unsafe {
                                T::dense(vectors, x, &pix[p0..p0 + p], taps, plane, pass.min(ci_g - c0), w, c0 > 0, t)
                            };
                        }
                    }
                    for (i, pb) in (first..last).enumerate() {
                        let p0 = pb * p;
                        let t = &tiles[i * tile..(i + 1) * tile];
                        for j in 0..p.min(l - p0) {
                            for o in 0..width.min(co_g - b * width) {
                                // SAFETY: `(channel, position)` pairs of distinct tasks are distinct, and
                                // every index is below `C_out · L = y.len()`.
                                unsafe { *out.at((gi * co_g + b * width + o) * l + p0 + j) = t[j * width + o] };
                            }
                        }
                    }
                };
                run(chunks * channel_blocks, threads, task);
            }
            Kind::Depthwise { blocks } => {
                let p = DEPTHWISE_POSITIONS;
                let pos_blocks = pix.len() / p;
                let chunks = pos_blocks.div_ceil(BLOCKS_PER_TASK);
                let task = |task: usize| {
                    let (chunk, b) = (task / blocks, task % blocks);
                    let x = src[b * plane * lanes..].as_ptr();
                    let w = self.weights[b * k * lanes..].as_ptr();
                    let mut tile = [T::ZERO; DEPTHWISE_POSITIONS * 8];
                    for pb in chunk * BLOCKS_PER_TASK..((chunk + 1) * BLOCKS_PER_TASK).min(pos_blocks) {
                        let p0 = pb * p;
                        // SAFETY: as above, on the block's interleaved padded input.
                        unsafe { T::depthwise(x, &pix[p0..p0 + p], taps, w, &mut tile) };
                        for j in 0..p.min(l - p0) {
                            for c in 0..lanes.min(g - b * lanes) {
                                // SAFETY: as above.
                                unsafe { *out.at((b * lanes + c) * l + p0 + j) = tile[j * lanes + c] };
                            }
                        }
                    }
                };
                run(chunks * blocks, threads, task);
            }
        }
    }
}

/// Sizes `scratch` to `len`, zeroed when it did not already have that length.
fn fresh<T: Float>(scratch: &mut Vec<T>, len: usize) {
    if scratch.len() != len {
        scratch.clear();
        scratch.resize(len, T::ZERO);
    }
}

/// Runs `tasks` tasks, on rayon's pool or on this thread.
fn run(tasks: usize, threads: Threads, task: impl Fn(usize) + Sync + Send) {
    match threads {
        Threads::All if tasks > 1 => (0..tasks).into_par_iter().for_each(task),
        _ => (0..tasks).for_each(task),
    }
}

#[cfg(test)]
mod tests {
    use convmat_shape::{ConvSpec, Geometry, Padding};
    use ndarray::Array2;

    use crate::{Conv, Operator};

    /// `A·x` on the direct kernels equals the tap-map operator exactly on integer-valued data, in both
    /// floats, on layers of every kind the kernels take (and the operator says it took them).
    #[test]
    fn direct_kernels_equal_the_tap_map_operator() {
        let cases = [
            // dense, two vectors of f32 outputs (and four of f64), a partial block of positions
            (ConvSpec::new(2, 3, 16, [3]).with_padding(Padding::uniform(1)), vec![5, 7]),
            // channels not a multiple of the block, stride 2, no padding at the end
            (ConvSpec::new(2, 5, 21, [3]).with_stride([2]).with_padding(Padding::uniform(1)), vec![9, 8]),
            // 1x1 without padding (read in place), stride 2 (stride 1 is a GEMM on the shifted path)
            (ConvSpec::new(2, 7, 8, [1]).with_stride([2]), vec![6, 5]),
            // groups with eight outputs each, dilation, asymmetric kernel
            (
                ConvSpec::new(2, 16, 16, [3, 2]).with_groups(2).with_dilation([2, 1]).with_padding(Padding::Same),
                vec![6, 7],
            ),
            // 7x7 stride 2 padding 3 (a stem)
            (ConvSpec::new(2, 3, 8, [7]).with_stride([2]).with_padding(Padding::uniform(3)), vec![11, 10]),
            // 1-d and 3-d
            (ConvSpec::new(1, 4, 9, [5]).with_padding(Padding::uniform(2)), vec![13]),
            (ConvSpec::new(3, 2, 8, [3]).with_padding(Padding::uniform(1)), vec![3, 4, 5]),
            // depthwise: a partial vector of channels, stride 2, 7x7, and 1-d
            (
                ConvSpec::new(2, 11, 11, [3]).with_groups(11).with_stride([2]).with_padding(Padding::uniform(1)),
                vec![7, 9],
            ),
            (ConvSpec::new(2, 8, 8, [7]).with_groups(8).with_padding(Padding::uniform(3)), vec![9, 9]),
            (ConvSpec::new(1, 5, 5, [3]).with_groups(5), vec![10]),
        ];
        for (i, (spec, input)) in cases.into_iter().enumerate() {
            let n: usize = spec.weight_shape().iter().product();
            let w: Vec<f64> = (0..n).map(|j| ((j * 7 + i) % 11) as f64 - 5.0).collect();
            let conv = Conv::new(Geometry::new(&spec, &input).unwrap(), w.clone(), None).unwrap();
            let conv32 = Conv::new(conv.geometry().clone(), w.iter().map(|&v| v as f32).collect(), None).unwrap();
            let (mut op, mut op32) = (Operator::new(&conv), Operator::new(&conv32));
            if !<f64 as super::Kernels>::available() {
                continue;
            }
            assert!(op.direct() && op32.direct(), "layer {i}");
            for batch in [1, 2, 5] {
                let x = Array2::from_shape_fn((batch, conv.cols()), |(b, j)| ((j * 5 + b) % 9) as f64 - 4.0);
                let ax = conv.apply(x.view()).unwrap();
                // twice: the kept padded input must stay zero-padded
                for _ in 0..2 {
                    assert_eq!(op.apply_batch(x.view()).unwrap(), ax, "layer {i}, batch {batch}");
                    let x32 = x.mapv(|v| v as f32);
                    assert_eq!(
                        op32.apply_batch(x32.view()).unwrap(),
                        ax.mapv(|v| v as f32),
                        "layer {i}, batch {batch}"
                    );
                }
            }
        }
    }
}
