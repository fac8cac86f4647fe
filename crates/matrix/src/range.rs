//! Exact accumulator ranges of a quantized convolution: per output channel the minimum and maximum of
//! `Σ (x - x_zp)(w - w_zp) + bias` over a box of stored inputs, where each is reached (an interior or a
//! border row), the input that reaches it, and the published bounds beside it.
//!
//! Each output is one row of the layer's matrix, a linear function of the inputs, so its extremum over a
//! box is the sum of each column's weight times the bound it prefers (taps that land on the same input,
//! under reflect, replicate or circular padding, are summed first: they are one variable). Rows whose
//! taps read the same pattern (per axis, the same tap lists in the same order) have the same extremum:
//! along each axis the positions fall into a few classes (the interior, and each border position), so a
//! channel costs one pass over its weights plus `O(taps)` per class combination, not per row.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use convmat_numeric::{NumericError, Overflow, QFormat, Quantizer, Rounding};
use convmat_shape::{Geometry, TapGroups, MAX_RANK};
use rayon::prelude::*;
use thiserror::Error;

use crate::{Conv, ConvLayer, MatrixError};

/// What can be wrong with an accumulator-range question.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum RangeError {
    /// The layer, its weights or a format.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// Text that is not an input range.
    #[error("invalid input range '{text}': expected LO,HI (two finite numbers with LO <= HI, e.g. -1,0.75)")]
    RangeText {
        /// The text given.
        text: String,
    },
    /// An input range with LO > HI, or a bound that is not a finite number.
    #[error("input range {lo},{hi} is empty or not finite: expected finite LO <= HI")]
    EmptyRange {
        /// Lower bound given.
        lo: f64,
        /// Upper bound given.
        hi: f64,
    },
    /// An input range beyond what the input format represents.
    #[error("input range {lo},{hi} is outside {format}'s values [{min}, {max}]")]
    RangeOutside {
        /// Lower bound given.
        lo: f64,
        /// Upper bound given.
        hi: f64,
        /// The input format.
        format: String,
        /// Its smallest real value.
        min: f64,
        /// Its largest real value.
        max: f64,
    },
    /// A zero point that is not a stored integer of its format.
    #[error("{what} zero point {value} is outside {format}'s stored integers [{min}, {max}]")]
    ZeroPoint {
        /// `input` or `weight`.
        what: &'static str,
        /// The zero point given.
        value: i64,
        /// The format.
        format: String,
        /// Smallest stored integer.
        min: i128,
        /// Largest stored integer.
        max: i128,
    },
    /// A weight that is not an integer when no weight format says how to quantize it.
    #[error("weight value {index} is {value}: without a weight format the weights must be integers (give a weight format such as q1.7 to quantize them)")]
    NotInteger {
        /// Flat index of the first such weight.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A channel beyond the layer's output channels.
    #[error("channel {channel} is out of range: the layer has {channels} output channels")]
    Channel {
        /// Channel asked for.
        channel: usize,
        /// Output channels.
        channels: usize,
    },
    /// Per-channel weight zero points of the wrong count.
    #[error("{got} weight zero points for {channels} output channels: give one, or one per output channel")]
    ZeroPoints {
        /// How many were given.
        got: usize,
        /// Output channels.
        channels: usize,
    },
    /// Text that is not `min` or `max`.
    #[error("invalid extremum '{text}': expected min or max")]
    ExtremumText {
        /// The text given.
        text: String,
    },
}

impl From<NumericError> for RangeError {
    fn from(e: NumericError) -> Self {
        Self::Matrix(MatrixError::Numeric(e))
    }
}

/// A box of real input values, `LO,HI` (e.g. `0,6` after a ReLU6), quantized to stored integers of
/// the input format as its inputs are (Nearest, Saturate: monotone, so `[q(LO), q(HI)]`).
///
/// ```
/// use convmat_matrix::InputRange;
/// let r: InputRange = "-1, 0.5".parse().unwrap();
/// assert_eq!((r.lo(), r.hi()), (-1.0, 0.5));
/// assert!("2,1".parse::<InputRange>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputRange {
    lo: f64,
    hi: f64,
}

impl InputRange {
    /// `[lo, hi]`.
    ///
    /// # Errors
    /// [`RangeError::EmptyRange`]: `lo > hi`, or a bound that is NaN or infinite.
    pub fn new(lo: f64, hi: f64) -> Result<Self, RangeError> {
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(RangeError::EmptyRange { lo, hi });
        }
        Ok(Self { lo, hi })
    }
    /// Lower bound (real units).
    pub fn lo(self) -> f64 {
        self.lo
    }
    /// Upper bound (real units).
    pub fn hi(self) -> f64 {
        self.hi
    }
}

impl FromStr for InputRange {
    type Err = RangeError;

    /// `LO,HI`.
    fn from_str(text: &str) -> Result<Self, RangeError> {
        let bad = || RangeError::RangeText { text: text.to_string() };
        let (a, b) = text.split_once(',').ok_or_else(bad)?;
        let (lo, hi): (f64, f64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
        Self::new(lo, hi)
    }
}

impl fmt::Display for InputRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.lo, self.hi)
    }
}

/// The minimum or the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extremum {
    /// The minimum.
    Min,
    /// The maximum.
    Max,
}

impl Extremum {
    /// Both, minimum first.
    pub const ALL: [Extremum; 2] = [Self::Min, Self::Max];

    /// `min` or `max`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Max => "max",
        }
    }
}

impl fmt::Display for Extremum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Extremum {
    type Err = RangeError;

    fn from_str(text: &str) -> Result<Self, RangeError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "min" => Ok(Self::Min),
            "max" => Ok(Self::Max),
            _ => Err(RangeError::ExtremumText { text: text.to_string() }),
        }
    }
}

/// What an accumulator range is asked over: the input format and box, the weight format, the zero
/// points (stored integers; the accumulator is `Σ (x - x_zp)(w - w_zp) + bias`, as ONNX `QLinearConv`
/// and `ConvInteger` compute it, zero padding contributing nothing). The layer's bias is taken exactly
/// in stored units of the product, `round(b · 2^(f_w + f_x))` (Nearest), as ONNX's int32 bias: unlike
/// [`FixedConv`](crate::FixedConv), which saturates it to the product's word as MATLAB's `fi` does.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RangeOptions {
    /// The inputs' format: their stored integers span the box unless `input_range` narrows it.
    pub input_format: QFormat,
    /// A narrower box in real units (e.g. `0,6`), quantized to the input format.
    pub input_range: Option<InputRange>,
    /// The weights' format: the layer's weights are quantized to it (Nearest, Saturate, as
    /// [`FixedConv`](crate::FixedConv)). Without one the weights must be integers and are the stored integers themselves
    /// (fraction length 0, the narrowest signed word that holds them).
    pub weight_format: Option<QFormat>,
    /// The inputs' zero point (stored integer of the input format).
    pub input_zero_point: i64,
    /// The weights' zero point (stored integer of the weight format).
    pub weight_zero_point: i64,
}

impl RangeOptions {
    /// The whole range of `input_format`, zero points 0, integer weights.
    pub fn new(input_format: QFormat) -> Self {
        Self { input_format, input_range: None, weight_format: None, input_zero_point: 0, weight_zero_point: 0 }
    }
}

/// One output channel's exact accumulator range, in stored integers at the product's fraction length
/// (`f_w + f_x`), with the bounds published for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelRange {
    /// The exact minimum over the input box, bias included.
    pub min: i128,
    /// The exact maximum over the input box, bias included.
    pub max: i128,
    /// Whether the minimum is reached only at border rows (rows with taps in padding), below every
    /// interior row's minimum (or there is no interior row).
    pub min_at_border: bool,
    /// Whether the maximum is reached only at border rows.
    pub max_at_border: bool,
    /// The signed word length that holds `[min, max]`: the smallest `P` with `-2^(P-1) <= min` and
    /// `max <= 2^(P-1) - 1`.
    pub bits: u32,
    /// `||w - w_zp||_1` of the channel's integer weights.
    pub l1_norm: u128,
    /// A2Q (Colbert et al., ICCV 2023): `ceil(log2(||q||_1 · 2^(N - signed) + 1)) + 1`, `N` the input
    /// word length.
    pub a2q_bits: u32,
    /// A2Q+ (ICML 2024): `ceil(log2(||q||_1 · (2^N - 1) + 2))`.
    pub a2q_plus_bits: u32,
}

impl ChannelRange {
    /// Whether the minimum or the maximum is reached only at a border.
    pub fn at_border(&self) -> bool {
        self.min_at_border || self.max_at_border
    }
    /// The minimum or the maximum.
    pub fn value(&self, which: Extremum) -> i128 {
        match which {
            Extremum::Min => self.min,
            Extremum::Max => self.max,
        }
    }
}

/// The exact accumulator range of every output channel of a layer over an input box: what
/// [`accumulator_range`] computes.
#[derive(Clone, Debug)]
pub struct AccumulatorRange {
    channels: Vec<ChannelRange>,
    /// Per channel, a row reaching the minimum and one reaching the maximum.
    rows: Vec<[usize; 2]>,
    conv: Conv<i64>,
    input_format: QFormat,
    weight_format: QFormat,
    bounds: (i64, i64),
    zero_points: (i64, i64),
    weight_zero_points: Vec<i64>,
    datatype_bits: u32,
}

impl AccumulatorRange {
    /// One record per output channel.
    pub fn channels(&self) -> &[ChannelRange] {
        &self.channels
    }
    /// The width the layer needs: its widest channel's [`ChannelRange::bits`].
    pub fn bits_layer(&self) -> u32 {
        self.channels.iter().map(|c| c.bits).max().unwrap_or(1)
    }
    /// The data-type bound (MATLAB `fi`'s full-precision growth, hls4ml's `auto`, Brevitas' default):
    /// `w_x + w_w + ceil(log2 N)`, `N` the products per output plus one with a bias (as
    /// [`FixedConv::accumulator_format`](crate::FixedConv::accumulator_format)), each operand one bit wider when its zero point is not 0
    /// (`x - x_zp` spans two of its format's ranges).
    pub fn datatype_bits(&self) -> u32 {
        self.datatype_bits
    }
    /// The layer's A2Q width: its widest channel's.
    pub fn a2q_bits(&self) -> u32 {
        self.channels.iter().map(|c| c.a2q_bits).max().unwrap_or(1)
    }
    /// The layer's A2Q+ width: its widest channel's.
    pub fn a2q_plus_bits(&self) -> u32 {
        self.channels.iter().map(|c| c.a2q_plus_bits).max().unwrap_or(1)
    }
    /// The input format.
    pub fn input_format(&self) -> QFormat {
        self.input_format
    }
    /// The weight format (the one given, or the narrowest signed integer word holding the weights).
    pub fn weight_format(&self) -> QFormat {
        self.weight_format
    }
    /// The accumulator's fraction length: `f_w + f_x` (its stored integers are the values here).
    pub fn frac_bits(&self) -> i32 {
        self.input_format.frac_bits() + self.weight_format.frac_bits()
    }
    /// The box of stored inputs, `(lo, hi)`.
    pub fn input_bounds(&self) -> (i64, i64) {
        self.bounds
    }
    /// The zero points, `(input, weight)` (the first channel's weight zero point when they are per
    /// channel).
    pub fn zero_points(&self) -> (i64, i64) {
        self.zero_points
    }
    /// The weight zero points: one for all channels, or one per output channel.
    pub fn weight_zero_points(&self) -> &[i64] {
        &self.weight_zero_points
    }
    /// The flat output index (row of the layer's matrix) where the channel's extremum is reached.
    ///
    /// # Errors
    /// [`RangeError::Channel`] beyond the output channels.
    pub fn witness_row(&self, channel: usize, which: Extremum) -> Result<usize, RangeError> {
        let channels = self.channels.len();
        let r = self.rows.get(channel).ok_or(RangeError::Channel { channel, channels })?;
        Ok(r[usize::from(which == Extremum::Max)])
    }

    /// An input that reaches the channel's minimum or maximum at [`witness_row`](Self::witness_row):
    /// stored integers of the input format, flattened `(C_in, *spatial)`. Each input the row reads is
    /// at the bound its summed weight prefers; every other input is the zero point (clamped to the
    /// box).
    ///
    /// # Errors
    /// [`RangeError::Channel`] beyond the output channels.
    pub fn witness(&self, channel: usize, which: Extremum) -> Result<Vec<i64>, RangeError> {
        let row = self.witness_row(channel, which)?;
        let (lo, hi) = self.bounds;
        let zp = self.zero_points.0;
        let mut x = vec![zp.clamp(lo, hi); self.conv.cols()];
        let (dl, dh) = (i128::from(lo - zp), i128::from(hi - zp));
        self.conv.walker(false).for_each_entry(row, |col, w| {
            let w = i128::from(w);
            let high = match which {
                Extremum::Max => w * dh >= w * dl,
                Extremum::Min => w * dh < w * dl,
            };
            x[col] = if high { hi } else { lo };
        });
        Ok(x)
    }
}

/// The smallest signed word length holding `[min, max]` (at least 1).
pub fn signed_bits(min: i128, max: i128) -> u32 {
    // v needs bits(v) + 1 with bits(v) = bit length of v for v >= 0, of !v for v < 0
    let len = |v: i128| if v >= 0 { 128 - v.leading_zeros() } else { 128 - (!v).leading_zeros() };
    len(min).max(len(max)) + 1
}

/// `ceil(log2 m)` for `m >= 1`.
fn ceil_log2(m: u128) -> u32 {
    if m <= 1 {
        0
    } else {
        128 - (m - 1).leading_zeros()
    }
}

/// Per axis, the row positions grouped by the tap lists they read.
struct AxisClasses {
    /// Per class: the tap lists (one per distinct coordinate read, in coordinate order), a representative
    /// position, whether it is an interior position, whether every list is one tap.
    classes: Vec<AxisClass>,
}

struct AxisClass {
    taps: Vec<Vec<usize>>,
    position: usize,
    interior: bool,
    single: bool,
}

/// The row side of a layer: rows of a convolution gather over window hits, rows of a transposed one
/// over grid readers (as the builders' walker).
struct RowSide<'a> {
    conv: &'a Conv<i64>,
    by_readers: bool,
}

impl RowSide<'_> {
    fn lists(&self, axis: usize, pos: usize) -> TapGroups<'_> {
        let a = &self.conv.tap_map().axes()[axis];
        if self.by_readers {
            a.readers(pos)
        } else {
            a.hits(pos)
        }
    }

    /// Whether position `pos` along `axis` reads every tap of a full window, none through padding.
    fn interior(&self, axis: usize, pos: usize) -> bool {
        let g = self.conv.geometry();
        let spec = g.spec();
        let lead = MAX_RANK - spec.kernel_size().len();
        if axis < lead {
            return true;
        }
        let d = axis - lead;
        let (k, s, dil, pb) = (spec.kernel_size()[d], spec.stride()[d], spec.dilation()[d], g.pad_begin()[d]);
        let a = &self.conv.tap_map().axes()[axis];
        if self.by_readers {
            // a transposed output position: every tap t with (pos + pb - t·dil) ≡ 0 (mod s) reads an input
            (0..k).all(|t| {
                let j = (pos + pb) as isize - (t * dil) as isize;
                j.rem_euclid(s as isize) != 0 || (j >= 0 && (j as usize) / s < a.positions())
            })
        } else {
            pos * s >= pb && pos * s + (k - 1) * dil < a.size() + pb
        }
    }

    fn classes(&self, axis: usize) -> AxisClasses {
        let a = &self.conv.tap_map().axes()[axis];
        let n = if self.by_readers { a.size() } else { a.positions() };
        let mut seen: HashMap<(Vec<Vec<usize>>, bool), usize> = HashMap::new();
        let mut classes = Vec::new();
        for pos in 0..n {
            let taps: Vec<Vec<usize>> = self.lists(axis, pos).map(|(_, t)| t.to_vec()).collect();
            let interior = self.interior(axis, pos);
            seen.entry((taps.clone(), interior)).or_insert_with(|| {
                let single = taps.iter().all(|t| t.len() == 1);
                classes.push(AxisClass { taps, position: pos, interior, single });
                classes.len() - 1
            });
        }
        AxisClasses { classes }
    }
}

/// The exact accumulator range of every output channel of `layer` over the input box of `options`.
///
/// ```
/// use convmat_matrix::{accumulator_range, ConvLayer, RangeOptions};
/// use convmat_shape::{LayerOptions, Padding};
/// // Conv1d(1, 1, 2, padding=1) with weights [1, -1] on inputs in [1, 2] (stored q8.0 integers)
/// let layer = ConvLayer::new(&[1, 1, 2], vec![1.0, -1.0], None, &[1, 4],
///     &LayerOptions::new().with_padding(Padding::uniform(1)))?;
/// let mut opts = RangeOptions::new("q8.0".parse().unwrap());
/// opts.input_range = Some("1,2".parse().unwrap());
/// let r = accumulator_range(&layer, &opts)?;
/// let c = r.channels()[0];
/// assert_eq!((c.min, c.max), (-2, 2));       // interior rows give [-1, 1]; the borders reach ±2
/// assert!(c.max_at_border && c.min_at_border);
/// assert_eq!(r.witness(0, convmat_matrix::Extremum::Max)?, [1, 1, 1, 2]); // x[3] = 2 at the last row
/// # Ok::<(), convmat_matrix::RangeError>(())
/// ```
///
/// # Errors
/// [`RangeError`]: a non-integer weight without a weight format, an input range outside the input
/// format, a zero point outside its format, formats or an accumulator beyond what convmat computes in.
pub fn accumulator_range(layer: &ConvLayer, options: &RangeOptions) -> Result<AccumulatorRange, RangeError> {
    accumulator_range_per_channel(layer, options, &[options.weight_zero_point])
}

/// [`accumulator_range`] with one weight zero point per output channel (ONNX's per-axis zero points of
/// `QLinearConv`'s weight), or one for all; `options.weight_zero_point` is not read.
///
/// # Errors
/// As [`accumulator_range`]; [`RangeError::ZeroPoints`] when `weight_zero_points` holds neither one
/// value nor one per output channel.
pub fn accumulator_range_per_channel(
    layer: &ConvLayer,
    options: &RangeOptions,
    weight_zero_points: &[i64],
) -> Result<AccumulatorRange, RangeError> {
    let xf = options.input_format;
    if !xf.fits_i64() {
        return Err(NumericError::NotI64 { format: xf.to_string() }.into());
    }
    let wf = match options.weight_format {
        Some(f) => f,
        None => integer_format(layer.weight())?,
    };
    let check_zp = |what, value: i64, f: QFormat| {
        if (f.raw_min()..=f.raw_max()).contains(&i128::from(value)) {
            Ok(())
        } else {
            Err(RangeError::ZeroPoint { what, value, format: f.to_string(), min: f.raw_min(), max: f.raw_max() })
        }
    };
    let spec = layer.geometry().spec();
    let channels = spec.out_channels();
    if weight_zero_points.len() != 1 && weight_zero_points.len() != channels {
        return Err(RangeError::ZeroPoints { got: weight_zero_points.len(), channels });
    }
    let x_zp = options.input_zero_point;
    check_zp("input", x_zp, xf)?;
    for &z in weight_zero_points {
        check_zp("weight", z, wf)?;
    }
    let w_zp = weight_zero_points[0];
    // the output channel of each weight: (C_out, C_in/g, *k), or transposed (C_in, C_out/g, *k)
    let klen = spec.kernel_len();
    let (groups, cin) = (spec.groups(), spec.in_channels());
    let channel_of = |i: usize| -> usize {
        if spec.is_transposed() {
            let (ci, col) = (i / (channels / groups * klen), (i / klen) % (channels / groups));
            ci / (cin / groups) * (channels / groups) + col
        } else {
            i / (cin / groups * klen)
        }
    };
    let zp_of = |i: usize| if weight_zero_points.len() == 1 { w_zp } else { weight_zero_points[channel_of(i)] };
    let (lo, hi) = match options.input_range {
        None => (xf.raw_min() as i64, xf.raw_max() as i64),
        Some(r) => {
            let (min, max) = (xf.to_f64(xf.raw_min()), xf.to_f64(xf.raw_max()));
            if r.lo < min || r.hi > max {
                return Err(RangeError::RangeOutside { lo: r.lo, hi: r.hi, format: xf.to_string(), min, max });
            }
            let q = |v| xf.quantize(v, Rounding::Nearest, Overflow::Saturate) as i64;
            (q(r.lo), q(r.hi))
        }
    };
    // FixedConv::accumulator_format's rule (products per output, plus one for a bias), on the formats
    let terms = spec.in_channels() / spec.groups() * spec.kernel_len() + usize::from(spec.bias());
    let datatype_bits = wf.product(xf)?.sum_of(terms)?.word_bits()
        + u32::from(x_zp != 0)
        + u32::from(weight_zero_points.iter().any(|&z| z != 0));
    if datatype_bits > 126 {
        return Err(NumericError::TooWide { bits: datatype_bits, max: 126 }.into());
    }
    // the effective weights w - w_zp, quantized as FixedConv does (Nearest, Saturate; integers as they
    // are); 65 bits only for a 64-bit weight format with a zero point
    let quantizer = Quantizer::new(wf, Rounding::Nearest, Overflow::Saturate)?;
    let weight = layer
        .weight()
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let raw = if options.weight_format.is_some() { quantizer.quantize(w) } else { w as i64 };
            raw.checked_sub(zp_of(i))
        })
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(|| NumericError::NotI64 { format: format!("{wf} minus its zero point") })?;
    let conv = Conv::new(layer.geometry().clone(), weight, None)?;
    // the bias exactly, in stored units of the product (f_w + f_x), rounded like fi (Nearest): an int32
    // bias of ONNX QLinearConv often exceeds the product's word, to which `FixedConv` saturates it
    let bias_format = QFormat::new(true, 64, xf.frac_bits() + wf.frac_bits())?;
    let bias: Option<Vec<i128>> = layer
        .bias()
        .map(|b| b.iter().map(|&v| bias_format.quantize(v, Rounding::Nearest, Overflow::Saturate)).collect());
    let (dl, dh) = (i128::from(lo) - i128::from(x_zp), i128::from(hi) - i128::from(x_zp));
    let (channels, rows) = extrema(&conv, bias.as_deref(), dl, dh, xf, datatype_bits <= 62);
    Ok(AccumulatorRange {
        channels,
        rows,
        conv,
        input_format: xf,
        weight_format: wf,
        bounds: (lo, hi),
        zero_points: (x_zp, w_zp),
        weight_zero_points: weight_zero_points.to_vec(),
        datatype_bits,
    })
}

/// The narrowest signed integer format (fraction 0) holding the weights, which must be integers.
fn integer_format(weight: &[f64]) -> Result<QFormat, RangeError> {
    let (mut min, mut max) = (0i64, 0i64);
    for (index, &w) in weight.iter().enumerate() {
        let i = w as i64;
        if i as f64 != w || w.abs() >= 2f64.powi(63) {
            return Err(RangeError::NotInteger { index, value: w });
        }
        (min, max) = (min.min(i), max.max(i));
    }
    Ok(QFormat::new(true, signed_bits(min.into(), max.into()).max(2), 0)?)
}

/// Per output channel the range and its witness rows.
fn extrema(
    conv: &Conv<i64>,
    bias: Option<&[i128]>,
    dl: i128,
    dh: i128,
    xf: QFormat,
    small: bool,
) -> (Vec<ChannelRange>, Vec<[usize; 2]>) {
    // the data-type bound holds every |w - w_zp| · |x - x_zp| and every sum of them
    let small = small.then_some((dl as i64, dh as i64));
    let g: &Geometry = conv.geometry();
    let spec = g.spec();
    let side = RowSide { conv, by_readers: spec.is_transposed() };
    let taps = conv.tap_map();
    let axes: [AxisClasses; MAX_RANK] = std::array::from_fn(|a| side.classes(a));
    let row_strides = if side.by_readers { taps.grid_strides() } else { taps.window_strides() };
    let [k0, k1, _] = taps.kernel_strides();
    let klen = taps.kernel_len();
    let walker = conv.walker(false);
    let (row_len, row_channels, col_channels) = if side.by_readers {
        (taps.grid_len(), g.grid_channels(), g.window_channels())
    } else {
        (taps.windows_len(), g.window_channels(), g.grid_channels())
    };
    let (row_g, col_g) = (row_channels / spec.groups(), col_channels / spec.groups());
    // every combination of per-axis classes, with its representative row position
    let mut combos = Vec::new();
    for c0 in &axes[0].classes {
        for c1 in &axes[1].classes {
            for c2 in &axes[2].classes {
                combos.push((
                    [c0, c1, c2],
                    c0.position * row_strides[0] + c1.position * row_strides[1] + c2.position,
                    c0.interior && c1.interior && c2.interior,
                    c0.single && c1.single && c2.single,
                ));
            }
        }
    }
    let w = conv.weight();
    let n_bits = xf.word_bits();
    let signed = u32::from(xf.signed());
    let best = |v: i128| (v * dl).max(v * dh);
    let worst = |v: i128| (v * dl).min(v * dh);
    let out: Vec<(ChannelRange, [usize; 2])> = (0..row_channels)
        .into_par_iter()
        .map(|rc| {
            // the channel's weights per column channel: (C_out, C_in/g, *k) or, transposed, (C_in, C_out/g, *k)
            let group = rc / row_g;
            let base = |cl: usize| {
                if side.by_readers {
                    ((group * col_g + cl) * row_g + rc % row_g) * klen
                } else {
                    (rc * col_g + cl) * klen
                }
            };
            let (mut smax, mut smin) = (vec![0i128; klen], vec![0i128; klen]);
            let mut l1 = 0u128;
            if let Some((dl, dh)) = small {
                // every product and sum below 2^62: i64 arithmetic
                let (mut hi64, mut lo64) = (vec![0i64; klen], vec![0i64; klen]);
                let mut l1_64 = 0u64;
                for cl in 0..col_g {
                    let ws = &w[base(cl)..base(cl) + klen];
                    for ((&v, h), l) in ws.iter().zip(&mut hi64).zip(&mut lo64) {
                        let (a, b) = (v * dl, v * dh);
                        *h += a.max(b);
                        *l += a.min(b);
                        l1_64 += v.unsigned_abs();
                    }
                }
                smax.iter_mut().zip(&hi64).for_each(|(s, &v)| *s = i128::from(v));
                smin.iter_mut().zip(&lo64).for_each(|(s, &v)| *s = i128::from(v));
                l1 = u128::from(l1_64);
            } else {
                for cl in 0..col_g {
                    let b = base(cl);
                    for t in 0..klen {
                        let v = i128::from(w[b + t]);
                        smax[t] += best(v);
                        smin[t] += worst(v);
                        l1 += v.unsigned_abs();
                    }
                }
            }
            let bias = bias.map_or(0, |b| b[rc]);
            // [interior, border] x [min, max] values with their rows
            let mut found: [[Option<(i128, usize)>; 2]; 2] = [[None; 2]; 2];
            for ([c0, c1, c2], pos, interior, single) in &combos {
                let (mut lo_v, mut hi_v) = (0i128, 0i128);
                if *single {
                    for t0 in &c0.taps {
                        for t1 in &c1.taps {
                            for t2 in &c2.taps {
                                let t = t0[0] * k0 + t1[0] * k1 + t2[0];
                                hi_v += smax[t];
                                lo_v += smin[t];
                            }
                        }
                    }
                } else {
                    walker.for_each_entry(rc * row_len + pos, |_, v| {
                        hi_v += best(i128::from(v));
                        lo_v += worst(i128::from(v));
                    });
                }
                let slot = &mut found[usize::from(!interior)];
                let row = rc * row_len + pos;
                if slot[0].is_none_or(|(v, _)| lo_v < v) {
                    slot[0] = Some((lo_v, row));
                }
                if slot[1].is_none_or(|(v, _)| hi_v > v) {
                    slot[1] = Some((hi_v, row));
                }
            }
            // interior wins ties; border only when strictly beyond (or without interior rows)
            let pick = |which: usize, beyond: fn(i128, i128) -> bool| match (found[0][which], found[1][which]) {
                (Some(i), Some(b)) if beyond(b.0, i.0) => (b, true),
                (Some(i), _) => (i, false),
                (None, Some(b)) => (b, true),
                (None, None) => ((0, rc * row_len), false),
            };
            let ((min, min_row), min_at_border) = pick(0, |b, i| b < i);
            let ((max, max_row), max_at_border) = pick(1, |b, i| b > i);
            let (min, max) = (min + bias, max + bias);
            // the input word is at most 64 bits (fits_i64): the shifts stay inside u128
            let a2q_bits = ceil_log2(l1.saturating_mul(1u128 << (n_bits - signed)).saturating_add(1)) + 1;
            let a2q_plus_bits = ceil_log2(l1.saturating_mul((1u128 << n_bits) - 1).saturating_add(2));
            let range = ChannelRange {
                min,
                max,
                min_at_border,
                max_at_border,
                bits: signed_bits(min, max),
                l1_norm: l1,
                a2q_bits,
                a2q_plus_bits,
            };
            (range, [min_row, max_row])
        })
        .collect();
    out.into_iter().unzip()
}
