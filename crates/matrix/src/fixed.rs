//! Fixed-point convolution, bit-exact with MATLAB's `fi` under its default `fimath`.

use convmat_numeric::{Modes, NumericError, Overflow, QFormat, Quantizer, Rounding};
use convmat_shape::Geometry;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use crate::{direct_conv, Conv, Float, MatrixError};

/// How products are accumulated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accumulation {
    /// MATLAB's default `fimath` (`ProductMode` and `SumMode` `FullPrecision`): exact products and an
    /// exact sum, growing `ceil(log2 N)` bits; nothing is rounded.
    #[default]
    Full,
    /// A narrow hardware accumulator, as the seed's MATLAB loop `sum = fi(sum + fi(w * x, ...), ...)`:
    /// every product and every partial sum is re-cast to `format` with `rounding` and `overflow`,
    /// accumulating in kernel-tap order (input channel, then kernel rows, then columns), starting from
    /// the bias cast to `format`. Order-dependent by nature.
    Narrow {
        /// The accumulator's format.
        format: QFormat,
        /// Rounding of each product (and of the bias) into the accumulator.
        rounding: Rounding,
        /// Overflow action after every operation.
        overflow: Overflow,
    },
}

/// What [`FixedConv::apply_narrow_counted`] counted, per output channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NarrowOverflows {
    /// Products whose cast into the accumulator saturated or wrapped.
    pub products: Vec<u64>,
    /// Accumulations (one per output) in which the bias' cast or a partial sum saturated or wrapped.
    pub accumulators: Vec<u64>,
}

/// The values [`FixedConv::apply_fused`] computed.
pub(crate) enum Fused {
    /// Real values.
    Real(Vec<f64>),
    /// Stored integers.
    Raw(Vec<i64>),
}

/// Stored integers and the format they are in.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedOutput {
    /// Stored integers, `(batch, rows)`.
    pub raw: Array2<i128>,
    /// Their format.
    pub format: QFormat,
}

impl FixedOutput {
    /// The real values (`raw * 2^-f`) as `f64`.
    ///
    /// # Errors
    /// An accumulator wider than 53 bits, whose values `f64` cannot hold exactly.
    pub fn to_f64(&self) -> Result<Array2<f64>, MatrixError> {
        if self.format.word_bits() > 53 {
            return Err(MatrixError::Numeric(NumericError::TooWide { bits: self.format.word_bits(), max: 53 }));
        }
        // |raw| < 2^53: through i64, no 128-bit conversion; the same value as `format.to_f64`
        let scale = self.format.to_f64(1);
        Ok(ndarray::Zip::from(&self.raw).par_map_collect(|&r| r as i64 as f64 * scale))
    }

    /// Cast to `format` with `rounding` and `overflow` (MATLAB's `fi(y, s, w, f)` with a chosen fimath).
    pub fn cast(&self, format: QFormat, rounding: Rounding, overflow: Overflow) -> FixedOutput {
        let from = self.format.frac_bits();
        FixedOutput { raw: self.raw.mapv(|r| format.requantize(r, from, rounding, overflow)), format }
    }
}

/// A convolution layer in fixed point: weights and bias quantized as MATLAB's `fi` constructor does
/// (Nearest, Saturate), inputs in a given format, exact integer arithmetic.
///
/// The bias is quantized (Nearest, Saturate) to the product's format (word `w_w + w_x`, fraction
/// `f_w + f_x`) and added exactly in the accumulator as one more term, as integer inference hardware does.
///
/// ```
/// use convmat_matrix::{Accumulation, FixedConv};
/// use convmat_numeric::QFormat;
/// use convmat_shape::{ConvSpec, Geometry};
/// let q17: QFormat = "q1.7".parse().unwrap();
/// let g = Geometry::new(&ConvSpec::new(1, 1, 1, [2]).with_bias(false), &[3]).unwrap();
/// let conv = FixedConv::new(g, &[0.5, -0.25], None, q17, q17).unwrap();
/// let x = conv.quantize_input(&[0.75, 1.0, -1.0]); // 1.0 saturates to 127/128
/// let y = conv.apply(ndarray::Array2::from_shape_vec((1, 3), x).unwrap().view(), Accumulation::Full).unwrap();
/// assert_eq!(y.format.to_string(), "q3.14"); // s16,14 products, 2 terms: one more bit
/// assert_eq!(y.raw.into_raw_vec_and_offset().0, vec![64 * 96 - 32 * 127, 64 * 127 + 32 * 128]);
/// ```
#[derive(Clone, Debug)]
pub struct FixedConv {
    raw: Conv<i64>,
    weight_format: QFormat,
    input_format: QFormat,
    /// How inputs are quantized (MATLAB's constructor unless a type says otherwise).
    input_modes: Modes,
    bias: Option<Vec<i128>>,
}

impl FixedConv {
    /// Quantizes `weight` (and `bias`) and fixes the input format, as MATLAB's `fi` constructor does
    /// (Nearest, Saturate).
    ///
    /// # Errors
    /// Wrong weight or bias length, formats beyond 64-bit stored integers, or an exact accumulator wider
    /// than 128 bits.
    pub fn new(
        geometry: Geometry,
        weight: &[f64],
        bias: Option<&[f64]>,
        weight_format: QFormat,
        input_format: QFormat,
    ) -> Result<Self, MatrixError> {
        Self::with_modes(geometry, weight, bias, (weight_format, Modes::MATLAB), (input_format, Modes::MATLAB))
    }

    /// [`new`](Self::new) with the rounding and overflow that quantize the weights and the inputs (an
    /// `ap_fixed<8,3>` weight type truncates and wraps, as Vitis HLS does). The bias is still quantized
    /// to the product's format with Nearest, Saturate.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_modes(
        geometry: Geometry,
        weight: &[f64],
        bias: Option<&[f64]>,
        (weight_format, weight_modes): (QFormat, Modes),
        (input_format, input_modes): (QFormat, Modes),
    ) -> Result<Self, MatrixError> {
        for f in [weight_format, input_format] {
            if !f.fits_i64() {
                return Err(MatrixError::Numeric(NumericError::NotI64 { format: f.to_string() }));
            }
        }
        let Modes { rounding, overflow } = weight_modes;
        let wq: Vec<i64> = weight.iter().map(|&v| weight_format.quantize(v, rounding, overflow) as i64).collect();
        let raw = Conv::new(geometry, wq, None)?;
        let mut this = Self { raw, weight_format, input_format, input_modes, bias: None };
        if let Some(b) = bias {
            this.raw.geometry().spec().check_bias_len(b.len())?;
            // one more term of the sum: in the product's format, so the growth of ceil(log2(N + 1)) bits holds
            let p = this.product_format();
            let bias_format = QFormat::new(true, p.word_bits(), p.frac_bits())?;
            this.bias =
                Some(b.iter().map(|&v| bias_format.quantize(v, Rounding::Nearest, Overflow::Saturate)).collect());
        }
        Ok(this)
    }

    /// The layer with the quantized weights as stored integers: its matrices (`dense`, `csr`, ...) hold
    /// raw integers in [`weight_format`](Self::weight_format).
    pub fn raw_conv(&self) -> &Conv<i64> {
        &self.raw
    }

    /// The layer with the real values the quantized weights stand for.
    pub fn real_conv(&self) -> Conv<f64> {
        let w = self.raw.weight().iter().map(|&r| self.weight_format.to_f64(r as i128)).collect();
        let b = self.bias.as_ref().map(|b| {
            let f = self.product_format().frac_bits();
            b.iter().map(|&r| r as f64 * 2f64.powi(-f)).collect()
        });
        Conv::new(self.raw.geometry().clone(), w, b).expect("same geometry and lengths")
    }

    /// Weight format.
    pub fn weight_format(&self) -> QFormat {
        self.weight_format
    }
    /// Input format.
    pub fn input_format(&self) -> QFormat {
        self.input_format
    }
    /// Stored bias, at the product's fraction length.
    pub fn bias_raw(&self) -> Option<&[i128]> {
        self.bias.as_deref()
    }

    /// Products per output at most: `C_in / groups * prod(kernel)` (the `N` of MATLAB's `ceil(log2 N)`;
    /// for a transposed layer the sum runs over its input channels too).
    pub fn terms(&self) -> usize {
        let spec = self.raw.geometry().spec();
        spec.in_channels() / spec.groups() * self.raw.tap_map().kernel_len()
    }

    fn product_format(&self) -> QFormat {
        self.weight_format.product(self.input_format).expect("both fit 64 bits")
    }

    /// The exact accumulator: the product format grown by `ceil(log2 N)` bits, `N` the products per
    /// output plus one for the bias.
    ///
    /// # Errors
    /// More than 128 bits.
    pub fn accumulator_format(&self) -> Result<QFormat, MatrixError> {
        let n = self.terms() + usize::from(self.raw.geometry().spec().bias());
        Ok(self.product_format().sum_of(n)?)
    }

    /// Input values quantized like MATLAB's `fi` constructor (Nearest, Saturate), or with the modes
    /// given to [`with_modes`](Self::with_modes).
    pub fn quantize_input(&self, x: &[f64]) -> Vec<i64> {
        let Modes { rounding, overflow } = self.input_modes;
        match Quantizer::new(self.input_format, rounding, overflow) {
            // at memory speed, in parallel: no 128-bit arithmetic
            Ok(q) => x.par_iter().map(|&v| q.quantize(v)).collect(),
            Err(_) => x.par_iter().map(|&v| self.input_format.quantize(v, rounding, overflow) as i64).collect(),
        }
    }

    /// [`quantize_input`](Self::quantize_input), [`apply`](Self::apply) with [`Accumulation::Full`], the
    /// optional output cast and the conversion to real values (or to stored integers when `raw`), fused:
    /// the inputs are quantized straight into `f32`, multiplied exactly in `f32`, and each result goes to
    /// its `f64` (or `i64`) once — no `i64` inputs, no `i128` accumulators, two passes over memory fewer.
    ///
    /// Taken only when the formats alone (not the data) prove every partial sum an integer below 2^24
    /// and the result fits its target; `None` otherwise (and for a batch beyond memory), and the caller
    /// takes the general path, which gives the same values or the error. `x` holds `n` whole samples.
    pub(crate) fn apply_fused(
        &self,
        x: &[f64],
        n: usize,
        cast: Option<(QFormat, Rounding, Overflow)>,
        raw: bool,
    ) -> Option<(Fused, QFormat)> {
        let q = Quantizer::new(self.input_format, self.input_modes.rounding, self.input_modes.overflow).ok()?;
        let acc = self.accumulator_format().ok()?;
        let f = self.input_format;
        let max_x = f.raw_min().unsigned_abs().max(f.raw_max().unsigned_abs()) as f64;
        let max_w = self.raw.weight().iter().map(|w| w.unsigned_abs()).max().unwrap_or(0) as f64;
        let max_b = self.bias.as_ref().map_or(0.0, |b| b.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0) as f64);
        let out = cast.map_or(acc, |c| c.0);
        let fits = if raw { out.fits_i64() } else { out.word_bits() <= 53 };
        if max_w * max_x * self.terms() as f64 + max_b >= (1u64 << 24) as f64 || !fits || x.len() != n * self.raw.cols()
        {
            return None;
        }
        self.raw.check_batch_memory(n).ok()?;
        let w: Vec<f32> = self.raw.weight().iter().map(|&v| v as f32).collect();
        let conv = Conv::new(self.raw.geometry().clone(), w, None).expect("same geometry");
        // stored integers of at most 2^23 in magnitude (max_x above): exact in f32; quantized sample by
        // sample into a buffer the product reads at once
        let mut y = vec![0f32; n * self.raw.rows()];
        crate::Operator::new(&conv)
            .apply_converted(x, &mut y, &|x: &[f64], o: &mut [f32]| q.quantize_f32(x, o))
            .expect("lengths checked");
        // one bias per plane of `per` outputs (the bias' integer is below 2^24 too: the sum stays exact in f64)
        let (planes, per) = match &self.bias {
            Some(b) => (b.len(), self.raw.rows() / b.len()),
            None => (1, self.raw.rows().max(1)),
        };
        let bias = |i: usize| self.bias.as_ref().map_or(0.0, |b| b[i % planes] as f64);
        let from = acc.frac_bits();
        let stored = move |v: f32, b: f64| -> i64 {
            let r = (v as f64 + b) as i64;
            match cast {
                Some((c, rounding, overflow)) => c.requantize(r as i128, from, rounding, overflow) as i64,
                None => r,
            }
        };
        let values = if raw {
            let mut o = vec![0i64; y.len()];
            o.par_chunks_mut(per).zip(y.par_chunks(per)).enumerate().for_each(|(i, (o, y))| {
                let b = bias(i);
                o.iter_mut().zip(y).for_each(|(o, &v)| *o = stored(v, b));
            });
            Fused::Raw(o)
        } else {
            // `FixedOutput::to_f64`'s arithmetic: the stored integer times 2^-f
            let scale = out.to_f64(1);
            let mut o = vec![0f64; y.len()];
            o.par_chunks_mut(per).zip(y.par_chunks(per)).enumerate().for_each(|(i, (o, y))| {
                let b = bias(i);
                match cast {
                    None => o.iter_mut().zip(y).for_each(|(o, &v)| *o = (v as f64 + b) * scale),
                    Some(_) => o.iter_mut().zip(y).for_each(|(o, &v)| *o = stored(v, b) as f64 * scale),
                }
            });
            Fused::Real(o)
        };
        Some((values, out))
    }

    /// The layer applied to a batch of stored inputs `(batch, cols)`, exactly.
    ///
    /// [`Accumulation::Full`] runs as unfold + matrix multiply, in `f32` or `f64` when the accumulator
    /// provably stays within 24 or 53 bits (every partial sum is then an exactly representable integer,
    /// whatever the summation order), otherwise in `i128`.
    ///
    /// # Errors
    /// An input of the wrong shape; an accumulator beyond 128 bits; a narrow accumulator on a transposed
    /// layer (tap order is defined for convolutions).
    pub fn apply(&self, x: ArrayView2<'_, i64>, accumulation: Accumulation) -> Result<FixedOutput, MatrixError> {
        if x.ncols() != self.raw.cols() {
            return Err(MatrixError::Dimension {
                what: "input",
                expected: format!("(batch, {})", self.raw.cols()),
                got: x.shape().to_vec(),
            });
        }
        self.raw.check_batch_memory(x.nrows())?;
        match accumulation {
            Accumulation::Full => self.apply_full(x),
            Accumulation::Narrow { format, rounding, overflow } => {
                self.apply_narrow(x, format, rounding, overflow, None)
            }
        }
    }

    /// [`apply`](Self::apply) with a narrow accumulator, counting per output channel the products whose
    /// cast into the accumulator overflowed and the accumulations (outputs) in which the bias' cast or
    /// any partial sum overflowed (saturated or wrapped). The values are [`apply`](Self::apply)'s.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn apply_narrow_counted(
        &self,
        x: ArrayView2<'_, i64>,
        format: QFormat,
        rounding: Rounding,
        overflow: Overflow,
    ) -> Result<(FixedOutput, NarrowOverflows), MatrixError> {
        if x.ncols() != self.raw.cols() {
            return Err(MatrixError::Dimension {
                what: "input",
                expected: format!("(batch, {})", self.raw.cols()),
                got: x.shape().to_vec(),
            });
        }
        self.raw.check_batch_memory(x.nrows())?;
        let cout = self.raw.geometry().spec().out_channels();
        let counts: Vec<[AtomicU64; 2]> = (0..cout).map(|_| [AtomicU64::new(0), AtomicU64::new(0)]).collect();
        let y = self.apply_narrow(x, format, rounding, overflow, Some(&counts))?;
        let take = |k: usize| counts.iter().map(|c| c[k].load(AtomicOrdering::Relaxed)).collect();
        Ok((y, NarrowOverflows { products: take(0), accumulators: take(1) }))
    }

    fn apply_full(&self, x: ArrayView2<'_, i64>) -> Result<FixedOutput, MatrixError> {
        let format = self.accumulator_format()?;
        let max_w = self.raw.weight().iter().map(|w| w.unsigned_abs()).max().unwrap_or(0) as f64;
        let max_x = x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0) as f64;
        let max_b = self.bias.as_ref().map_or(0.0, |b| b.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0) as f64);
        // every partial sum is bounded by the sum of the absolute values of its terms
        let bound = max_w * max_x * self.terms() as f64 + max_b;
        let mut raw = if bound < (1u64 << 24) as f64 {
            self.exact_float::<f32>(x)
        } else if bound < (1u64 << 53) as f64 {
            self.exact_float::<f64>(x)
        } else {
            self.raw.apply(x)?
        };
        if let Some(b) = &self.bias {
            let per = self.raw.rows() / b.len();
            for mut row in raw.rows_mut() {
                for (i, v) in row.iter_mut().enumerate() {
                    *v += b[i / per];
                }
            }
        }
        Ok(FixedOutput { raw, format })
    }

    /// The stored integers as floats of type `F` through the fast [`Operator`](crate::Operator): exact
    /// under the caller's bound (every partial sum an integer below `F`'s 2^24 or 2^53).
    fn exact_float<F: Float>(&self, x: ArrayView2<'_, i64>) -> Array2<i128> {
        let w: Vec<F> = self.raw.weight().iter().map(|&v| F::from_f64(v as f64)).collect();
        let conv = Conv::new(self.raw.geometry().clone(), w, None).expect("same geometry");
        let x = x.as_standard_layout();
        let xf: Vec<F> = x.as_slice().expect("standard layout").par_iter().map(|&v| F::from_f64(v as f64)).collect();
        let mut y = vec![F::ZERO; x.nrows() * self.raw.rows()];
        crate::Operator::new(&conv).apply(&xf, &mut y).expect("shape checked");
        // every value is an integer below 2^53: through i64, no 128-bit float conversion
        let y: Vec<i128> = y.par_iter().map(|&v| v.to_f64() as i64 as i128).collect();
        Array2::from_shape_vec((x.nrows(), self.raw.rows()), y).expect("length matches")
    }

    fn apply_narrow(
        &self,
        x: ArrayView2<'_, i64>,
        format: QFormat,
        rounding: Rounding,
        overflow: Overflow,
        counts: Option<&[[AtomicU64; 2]]>,
    ) -> Result<FixedOutput, MatrixError> {
        let geo = self.raw.geometry();
        if geo.spec().is_transposed() {
            return Err(MatrixError::NarrowTransposed { format: format.to_string() });
        }
        let taps = self.raw.tap_map();
        let (k, l, glen) = (taps.kernel_len(), taps.windows_len(), taps.grid_len());
        let (cout, g) = (geo.spec().out_channels(), geo.spec().groups());
        let (cin_g, cout_g) = (geo.spec().in_channels() / g, cout / g);
        let pf = self.product_format().frac_bits();
        let wide = QFormat::new(true, 128, format.frac_bits())?;
        let w = self.raw.weight();
        let mut out = Array2::zeros((x.nrows(), self.raw.rows()));
        out.outer_iter_mut().into_par_iter().zip(x.outer_iter()).for_each(|(mut y, xs)| {
            let mut reads = Vec::with_capacity(k);
            for win in 0..l {
                reads.clear();
                taps.for_each_read(win, |t, r| reads.push((t, r)));
                for co in 0..cout {
                    let grp = co / cout_g;
                    let mut acc = match &self.bias {
                        Some(b) => format.requantize(b[co], pf, rounding, overflow),
                        None => 0,
                    };
                    // counting: a cast overflowed when it differs from the same rounding into 128 bits
                    let mut acc_over = counts.is_some()
                        && self.bias.as_ref().is_some_and(|b| wide.requantize(b[co], pf, rounding, overflow) != acc);
                    for cl in 0..cin_g {
                        let ci = grp * cin_g + cl;
                        for &(t, r) in &reads {
                            // a zero-padded tap multiplies 0: its product casts to 0 and adds nothing
                            let Some(p) = r else { continue };
                            let exact = w[(co * cin_g + cl) * k + t] as i128 * xs[ci * glen + p] as i128;
                            let prod = format.requantize(exact, pf, rounding, overflow);
                            let sum = format.add(acc, prod, overflow); // exact even for 127/128-bit words
                            if let Some(c) = counts {
                                if wide.requantize(exact, pf, rounding, overflow) != prod {
                                    c[co][0].fetch_add(1, AtomicOrdering::Relaxed);
                                }
                                acc_over |= acc.checked_add(prod) != Some(sum);
                            }
                            acc = sum;
                        }
                    }
                    if acc_over {
                        if let Some(c) = counts {
                            c[co][1].fetch_add(1, AtomicOrdering::Relaxed);
                        }
                    }
                    y[co * l + win] = acc;
                }
            }
        });
        Ok(FixedOutput { raw: out, format })
    }

    /// The reference: direct loops over an explicitly padded input in `i128`, bias added at the end.
    ///
    /// # Errors
    /// An input of the wrong length.
    pub fn apply_direct(&self, x: &[i64]) -> Result<Vec<i128>, MatrixError> {
        let mut y = direct_conv(self.raw.geometry(), self.raw.weight(), None, x)?;
        if let Some(b) = &self.bias {
            let per = y.len() / b.len();
            for (i, v) in y.iter_mut().enumerate() {
                *v += b[i / per];
            }
        }
        Ok(y)
    }
}
