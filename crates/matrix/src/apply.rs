//! [`ConvLayer::apply`]: a resolved layer applied to a batch, in float or fixed point — what
//! `convmat apply` and the Python package's `convmat.apply` both call.

use convmat_numeric::{Dtype, FixedType, Modes, Overflow, QFormat, Rounding};

use crate::fixed::Fused;
use crate::{Accumulation, ConvLayer, FixedConv, MatrixError};

/// How [`ConvLayer::apply`] computes: the dtype and, for fixed point, MATLAB `fi`'s options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// The arithmetic: `f32`, `f64`, or fixed point (the input's format).
    pub dtype: Dtype,
    /// Fixed point: the weights' format (default: the input's).
    pub weight_format: Option<QFormat>,
    /// Fixed point: a narrow accumulator (default: full precision, MATLAB's `FullPrecision`).
    pub accumulator: Option<QFormat>,
    /// Fixed point: cast the result to this format (default: keep the accumulator).
    pub out_format: Option<QFormat>,
    /// Fixed point: rounding of the casts (MATLAB's default `nearest`).
    pub rounding: Rounding,
    /// Fixed point: overflow of the casts (MATLAB's default `saturate`).
    pub overflow: Overflow,
    /// Fixed point: return the stored integers instead of real values.
    pub raw: bool,
    /// Fixed point: how the inputs are quantized to `dtype` (MATLAB's constructor: Nearest, Saturate;
    /// a type such as `ap_fixed<8,3>` brings its own, [`FixedType::modes`](convmat_numeric::FixedType::modes)).
    pub input_modes: Modes,
    /// Fixed point: how the weights are quantized (default: `input_modes`).
    pub weight_modes: Option<Modes>,
    /// Fixed point: the narrow accumulator's casts (default: `rounding`, `overflow`).
    pub accumulator_modes: Option<Modes>,
    /// Fixed point: the output cast (default: `rounding`, `overflow`).
    pub out_modes: Option<Modes>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            dtype: Dtype::F32,
            weight_format: None,
            accumulator: None,
            out_format: None,
            rounding: Rounding::Nearest,
            overflow: Overflow::Saturate,
            raw: false,
            input_modes: Modes::MATLAB,
            weight_modes: None,
            accumulator_modes: None,
            out_modes: None,
        }
    }
}

impl ApplyOptions {
    /// The options for `dtype`, everything else at its default.
    pub fn new(dtype: Dtype) -> Self {
        Self { dtype, ..Self::default() }
    }

    /// These options with the fixed-point types a user wrote, in any dialect: the input's (`dtype`'s
    /// text), the weights', the accumulator's and the output's, and a rounding and overflow named
    /// separately (`--rounding`, `rounding=`).
    ///
    /// The rule, one place for every front end: a type that carries modes (`ap_fixed<8,3,AP_RND,AP_SAT>`,
    /// or `ap_fixed<8,3>` with Vitis's defaults `AP_TRN`, `AP_WRAP`) quantizes every value cast into it
    /// with them, inputs and weights included; a type without (`q1.7`, `int8`) takes MATLAB's constructor
    /// (Nearest, Saturate) for inputs and weights and the separate rounding and overflow (default
    /// Nearest, Saturate) for the accumulator's and the output's casts.
    ///
    /// # Errors
    /// A separate rounding or overflow that differs from the one the accumulator's or the output's type
    /// carries, and a sign-magnitude wrap on an unsigned type ([`FixedType::modes`]).
    pub fn with_types(mut self, types: &ApplyTypes) -> Result<Self, MatrixError> {
        let (r, o) = (types.rounding, types.overflow);
        self.rounding = r.unwrap_or_default();
        self.overflow = o.unwrap_or_default();
        if let Some(t) = types.input {
            self.input_modes = t.modes(None, None)?;
        }
        if let Some(t) = types.weight {
            (self.weight_format, self.weight_modes) = (Some(t.format), Some(t.modes(None, None)?));
        }
        if let Some(t) = types.accumulator {
            (self.accumulator, self.accumulator_modes) = (Some(t.format), Some(t.modes(r, o)?));
        }
        if let Some(t) = types.out {
            (self.out_format, self.out_modes) = (Some(t.format), Some(t.modes(r, o)?));
        }
        Ok(self)
    }
}

/// The fixed-point types of [`ConvLayer::apply`] as a user wrote them, each perhaps carrying its own
/// rounding and overflow, and the rounding and overflow named separately: see
/// [`ApplyOptions::with_types`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyTypes {
    /// The inputs' type (`dtype`'s text, when fixed point).
    pub input: Option<FixedType>,
    /// The weights' type (default: the inputs').
    pub weight: Option<FixedType>,
    /// A narrow accumulator's type.
    pub accumulator: Option<FixedType>,
    /// The output cast's type.
    pub out: Option<FixedType>,
    /// The rounding named separately.
    pub rounding: Option<Rounding>,
    /// The overflow named separately.
    pub overflow: Option<Overflow>,
}

/// The values [`ConvLayer::apply`] computed, row-major `(N, C_out, *out)`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Applied {
    /// `f32` arithmetic.
    F32(Vec<f32>),
    /// `f64` arithmetic, or fixed-point results as real values.
    F64(Vec<f64>),
    /// Fixed-point stored integers (`raw`).
    I64(Vec<i64>),
}

/// The result of [`ConvLayer::apply`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Output {
    /// The values.
    pub values: Applied,
    /// `(N, C_out, *out)`.
    pub shape: Vec<usize>,
    /// The values' format: `f32`, `f64`, or the fixed-point format of the result (`q4.14`, ...).
    pub format: String,
}

impl ConvLayer {
    /// The fixed-point layer [`apply`](Self::apply) computes with under `options`: weights quantized to
    /// their format with their modes, inputs in the dtype's format.
    ///
    /// # Errors
    /// A float dtype ([`MatrixError::FixedPointOnly`]); the errors of [`FixedConv::with_modes`].
    pub fn fixed_conv(&self, options: &ApplyOptions) -> Result<FixedConv, MatrixError> {
        let o = options;
        let Dtype::Fixed(xf) = o.dtype else { return Err(MatrixError::FixedPointOnly) };
        FixedConv::with_modes(
            self.geometry().clone(),
            self.weight(),
            self.bias(),
            (o.weight_format.unwrap_or(xf), o.weight_modes.unwrap_or(o.input_modes)),
            (xf, o.input_modes),
        )
    }

    /// The layer applied to `n` samples `x` (row-major `(n, C_in, *in)`, real values), with `options`:
    /// floats by the fast [`Operator`](crate::Operator) plus the bias; fixed point bit-exact with
    /// MATLAB's `fi` (inputs quantized with `nearest` and `saturate` as `fi(x, 1, w, f)` does, full
    /// precision or a narrow accumulator, an optional output cast).
    ///
    /// ```
    /// use convmat_matrix::{Applied, ApplyOptions, ConvLayer};
    /// use convmat_numeric::Dtype;
    /// use convmat_shape::LayerOptions;
    ///
    /// // Conv1d(1, 1, 2) with weights [0.5, 0.25] on [0.5, 0.75, -1]
    /// let layer = ConvLayer::new(&[1, 1, 2], vec![0.5, 0.25], None, &[1, 3], &LayerOptions::default())?;
    /// let y = layer.apply(&[0.5, 0.75, -1.0], 1, &ApplyOptions::new("q1.7".parse::<Dtype>()?))?;
    /// assert_eq!(y.values, Applied::F64(vec![0.4375, 0.125]));
    /// assert_eq!((y.shape, y.format.as_str()), (vec![1, 1, 2], "q3.14"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `x` not `n` whole samples; fixed-point options with a float dtype
    /// ([`MatrixError::FixedPointOnly`]); raw results beyond 64 bits or real results beyond 53
    /// ([`MatrixError::ResultTooWide`]: cast with `out_format`);
    /// the fixed-point layer's own errors.
    pub fn apply(&self, x: &[f64], n: usize, options: &ApplyOptions) -> Result<Output, MatrixError> {
        let geo = self.geometry();
        let mut in_shape = vec![n];
        in_shape.extend(geo.input_shape());
        if Some(x.len()) != in_shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
            return Err(MatrixError::Dimension {
                what: "input",
                expected: format!("{n} samples of {:?}", geo.input_shape()),
                got: vec![x.len()],
            });
        }
        let mut shape = vec![n];
        shape.extend(geo.output_shape());
        let o = options;
        let fixed_only = o.weight_format.is_some() || o.accumulator.is_some() || o.out_format.is_some() || o.raw;
        let (values, format) = match o.dtype {
            Dtype::F32 | Dtype::F64 if fixed_only => return Err(MatrixError::FixedPointOnly),
            Dtype::F64 => {
                let xa = ndarray::ArrayViewD::from_shape(in_shape, x).expect("length checked");
                (Applied::F64(self.conv::<f64>()?.conv_unfold(xa)?.into_raw_vec_and_offset().0), "f64".to_string())
            }
            Dtype::F32 => {
                // as `conv_unfold`, with each sample converted to f32 just before its product
                let conv = self.conv::<f32>()?;
                conv.check_batch_memory(n)?;
                let mut y = vec![0f32; n * conv.rows()];
                let to_f32 = |x: &[f64], o: &mut [f32]| o.iter_mut().zip(x).for_each(|(o, &v)| *o = v as f32);
                crate::Operator::new(&conv).apply_converted(x, &mut y, &to_f32)?;
                conv.add_bias(&mut y);
                (Applied::F32(y), "f32".to_string())
            }
            Dtype::Fixed(_) => {
                let fc = self.fixed_conv(o)?;
                let casts = Modes::new(o.rounding, o.overflow);
                let out_modes = o.out_modes.unwrap_or(casts);
                let cast = o.out_format.map(|f| (f, out_modes.rounding, out_modes.overflow));
                if o.accumulator.is_none() {
                    if let Some((v, f)) = fc.apply_fused(x, n, cast, o.raw) {
                        let values = match v {
                            Fused::Real(v) => Applied::F64(v),
                            Fused::Raw(v) => Applied::I64(v),
                        };
                        return Ok(Output { values, shape, format: f.to_string() });
                    }
                }
                let xq = ndarray::Array2::from_shape_vec((n, fc.raw_conv().cols()), fc.quantize_input(x))
                    .expect("length checked");
                let acc = match o.accumulator {
                    Some(format) => {
                        let Modes { rounding, overflow } = o.accumulator_modes.unwrap_or(casts);
                        Accumulation::Narrow { format, rounding, overflow }
                    }
                    None => Accumulation::Full,
                };
                let mut y = fc.apply(xq.view(), acc)?;
                if let Some(f) = o.out_format {
                    y = y.cast(f, out_modes.rounding, out_modes.overflow);
                }
                let format = y.format.to_string();
                let too_wide = |target, max| MatrixError::ResultTooWide {
                    format: format.clone(),
                    bits: y.format.word_bits(),
                    target,
                    max,
                };
                if o.raw {
                    if !y.format.fits_i64() {
                        return Err(too_wide("int64", 64));
                    }
                    (Applied::I64(y.raw.iter().map(|&v| v as i64).collect()), format)
                } else {
                    let v = y.to_f64().map_err(|_| too_wide("float64", 53))?;
                    (Applied::F64(v.into_raw_vec_and_offset().0), format)
                }
            }
            other => return Err(MatrixError::Unsupported { what: "dtype", value: other.to_string() }),
        };
        Ok(Output { values, shape, format })
    }
}
