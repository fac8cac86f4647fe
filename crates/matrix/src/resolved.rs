//! [`ConvLayer`]: a layer's weights and options resolved on one input shape, what every front end (the
//! command line, the Python package, the ONNX reader) turns its input into before anything is built.

use std::fmt;
use std::str::FromStr;

use convmat_numeric::{Dtype, NumericError, QFormat, Scalar};
use convmat_shape::{Geometry, LayerOptions, ShapeError};

use crate::{flip_kernel, Affine, Conv, FixedConv, MatrixError, MatrixOptions};

/// How a matrix is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MatrixFormat {
    /// Compressed sparse rows (SciPy's `csr_array`).
    #[default]
    Csr,
    /// Compressed sparse columns (SciPy's `csc_array`).
    Csc,
    /// A dense row-major array.
    Dense,
}

impl MatrixFormat {
    /// All formats.
    pub const ALL: [MatrixFormat; 3] = [Self::Csr, Self::Csc, Self::Dense];

    /// The name: `csr`, `csc` or `dense` (SciPy's `format` key for the sparse ones).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csr => "csr",
            Self::Csc => "csc",
            Self::Dense => "dense",
        }
    }

    /// Whether the format is sparse.
    pub fn is_sparse(self) -> bool {
        self != Self::Dense
    }
}

impl fmt::Display for MatrixFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MatrixFormat {
    type Err = ShapeError;

    fn from_str(s: &str) -> Result<Self, ShapeError> {
        let t = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|f| f.as_str() == t).ok_or_else(|| ShapeError::Invalid {
            param: "format",
            value: format!("'{s}'"),
            valid: "expected 'csr', 'csc' or 'dense'".into(),
        })
    }
}

/// The size of a matrix before it is built: what a front end checks against the memory it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Estimate {
    /// Rows of the matrix (of the shard, with `rows`; plus the homogeneous row).
    pub rows: usize,
    /// Columns (plus the bias column in the affine forms).
    pub cols: usize,
    /// An upper bound of the stored entries (every entry for dense).
    pub nnz: u64,
    /// An upper bound of the bytes the build allocates for the result.
    pub bytes: u64,
}

impl Estimate {
    /// Refuses a build of this estimate beyond the memory available ([`crate::available_memory`]), before
    /// anything is allocated.
    ///
    /// # Errors
    /// [`MatrixError::Memory`], naming the matrix, the bytes and the limit.
    pub fn check_memory(&self) -> Result<(), MatrixError> {
        let (rows, cols) = (self.rows, self.cols);
        crate::check_memory(
            || format!("the {rows} x {cols} matrix"),
            usize::try_from(self.bytes).unwrap_or(usize::MAX),
            1,
        )
    }
}

/// A convolution layer with its weights, resolved on one input shape: the geometry (every shape checked
/// against the others), the weight in PyTorch's layout (already flipped for a true convolution) and the
/// bias, all as `f64` as read.
///
/// The command line's flags, the Python package's keyword arguments and ONNX node attributes all become
/// a [`LayerOptions`] and then one of these, so the three front ends can never disagree.
///
/// ```
/// use convmat_matrix::{ConvLayer, MatrixFormat, MatrixOptions};
/// use convmat_numeric::Dtype;
/// use convmat_shape::{LayerOptions, Padding};
/// // nn.Conv2d(2, 4, 3, padding=1) on 2x8x8
/// let weight = vec![0.25; 4 * 2 * 3 * 3];
/// let opts = LayerOptions::new().with_padding(Padding::uniform(1));
/// let layer = ConvLayer::new(&[4, 2, 3, 3], weight, Some(vec![1.0; 4]), &[2, 8, 8], &opts)?;
/// assert_eq!(layer.description(), "Conv2d(2, 4, 3, padding=1)");
/// let est = layer.estimate(MatrixFormat::Csr, Dtype::F32, &MatrixOptions::default());
/// let a = layer.conv::<f32>()?.csr()?;
/// assert!(a.nnz() as u64 <= est.nnz);
/// # Ok::<(), convmat_matrix::MatrixError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ConvLayer {
    geometry: Geometry,
    weight: Vec<f64>,
    bias: Option<Vec<f64>>,
}

impl ConvLayer {
    /// A layer from its weight (flat, row-major data of `weight_shape`), optional bias (one value per
    /// output channel) and options, on one input sample of shape `(C, *spatial)`.
    ///
    /// # Errors
    /// Everything [`LayerOptions::geometry`] checks (ranks, channels, groups, kernel larger than the
    /// input, ...); a weight buffer whose length is not `prod(weight_shape)`; a weight or bias value that
    /// is NaN or infinite (its matrix would carry it into every output it touches).
    pub fn new(
        weight_shape: &[usize],
        weight: Vec<f64>,
        bias: Option<Vec<f64>>,
        input_shape: &[usize],
        options: &LayerOptions,
    ) -> Result<Self, MatrixError> {
        let geometry = options.geometry(weight_shape, bias.as_ref().map(Vec::len), input_shape)?;
        Self::from_geometry(geometry, weight_shape, weight, bias, options.flip.is_some())
    }

    fn from_geometry(
        geometry: Geometry,
        weight_shape: &[usize],
        weight: Vec<f64>,
        bias: Option<Vec<f64>>,
        flip: bool,
    ) -> Result<Self, MatrixError> {
        let expected: usize = weight_shape.iter().product();
        if weight.len() != expected {
            return Err(MatrixError::WeightLen { expected, got: weight.len(), shape: weight_shape.to_vec() });
        }
        for (what, values) in [("weight", Some(&weight)), ("bias", bias.as_ref())] {
            if let Some(i) = values.and_then(|v| v.iter().position(|x| !x.is_finite())) {
                return Err(MatrixError::NotFinite { what, index: i, value: values.map_or(0.0, |v| v[i]).to_string() });
            }
        }
        let weight = if flip { flip_kernel(&weight, weight_shape) } else { weight };
        Ok(Self { geometry, weight, bias })
    }

    /// The same layer (geometry, kernel orientation) with other weights and bias: a per-channel scale
    /// and shift folded in (a BatchNorm after the layer, a whole network's block in fixed point).
    ///
    /// # Errors
    /// A weight buffer of another length, a bias not one value per output channel, a value that is NaN
    /// or infinite.
    pub fn with_weights(&self, weight: Vec<f64>, bias: Option<Vec<f64>>) -> Result<Self, MatrixError> {
        if weight.len() != self.weight.len() {
            return Err(MatrixError::WeightLen {
                expected: self.weight.len(),
                got: weight.len(),
                shape: vec![weight.len()],
            });
        }
        if let Some(b) = &bias {
            self.geometry.spec().check_bias_len(b.len())?;
        }
        for (what, values) in [("weight", Some(&weight)), ("bias", bias.as_ref())] {
            if let Some(i) = values.and_then(|v| v.iter().position(|x| !x.is_finite())) {
                return Err(MatrixError::NotFinite { what, index: i, value: values.map_or(0.0, |v| v[i]).to_string() });
            }
        }
        Ok(Self { geometry: self.geometry.clone(), weight, bias })
    }

    /// The geometry: spec, input and output shapes, rows and columns.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }
    /// The flat weight in PyTorch's layout (flipped for a true convolution).
    pub fn weight(&self) -> &[f64] {
        &self.weight
    }
    /// The bias, one value per output channel.
    pub fn bias(&self) -> Option<&[f64]> {
        self.bias.as_deref()
    }
    /// The layer as a PyTorch constructor expression, e.g. `Conv2d(3, 16, 3, padding=1)`.
    pub fn description(&self) -> String {
        self.geometry.spec().to_string()
    }

    /// The layer in `f32` or `f64`, ready to build matrices from or to apply.
    ///
    /// # Errors
    /// None in practice (the lengths were checked); kept for the builders' signature.
    pub fn conv<T: Scalar>(&self) -> Result<Conv<T>, MatrixError> {
        let w = self.weight.iter().map(|&v| T::from_f64(v)).collect();
        let b = self.bias.as_ref().map(|b| b.iter().map(|&v| T::from_f64(v)).collect());
        Conv::new(self.geometry.clone(), w, b)
    }

    /// The layer in fixed point: weights (and bias) quantized as MATLAB's `fi` does, inputs in
    /// `input_format`.
    ///
    /// # Errors
    /// Formats beyond 64-bit stored integers, or an exact accumulator wider than 128 bits.
    pub fn fixed(&self, weight_format: QFormat, input_format: QFormat) -> Result<FixedConv, MatrixError> {
        FixedConv::new(self.geometry.clone(), &self.weight, self.bias.as_deref(), weight_format, input_format)
    }

    /// The layer as the stored integers of `format` (weights and inputs both in it): what
    /// `convmat build --dtype qI.F` writes. See [`FixedConv::stored_conv`] for the bias rule.
    ///
    /// # Errors
    /// A format beyond 64-bit stored integers, or a bias whose product format does not fit them.
    pub fn stored_integers(&self, format: QFormat) -> Result<Conv<i64>, MatrixError> {
        self.fixed(format, format)?.stored_conv()
    }

    /// The matrix's shape, an upper bound of its stored entries and of the bytes a build of it in
    /// `format` and `dtype` allocates (values, indices as `u32`, row pointers as `u64`).
    pub fn estimate(&self, format: MatrixFormat, dtype: Dtype, options: &MatrixOptions) -> Estimate {
        let g = &self.geometry;
        let affine = options.affine;
        let full_rows = g.rows() + usize::from(affine == Affine::Homogeneous);
        let rows = options.rows.as_ref().map_or(full_rows, |r| r.len());
        let cols = g.cols() + usize::from(affine != Affine::None);
        let elem = dtype.element_bytes() as u64;
        let (rows64, cols64) = (rows as u64, cols as u64);
        if format == MatrixFormat::Dense {
            let nnz = rows64.saturating_mul(cols64);
            return Estimate { rows, cols, nnz, bytes: nnz.saturating_mul(elem) };
        }
        // every row reads at most (channels per group) x (kernel taps) entries, plus the bias column
        let per_row = (g.grid_channels() / g.spec().groups()) as u64 * g.spec().kernel_len() as u64 + 1;
        let nnz = rows64.saturating_mul(per_row.min(cols64));
        let pointers = if format == MatrixFormat::Csc { cols64 } else { rows64 };
        Estimate { rows, cols, nnz, bytes: nnz.saturating_mul(elem + 4).saturating_add(pointers.saturating_mul(8)) }
    }
}

impl FixedConv {
    /// The layer as stored integers, bias included, for matrices: `A` holds the weights' stored
    /// integers (in [`weight_format`](Self::weight_format)) and `b` the bias's at the product's fraction
    /// length (`f_w + f_x`), exactly as the exact accumulator adds it. So over stored inputs
    /// `A·x + b` *is* the exact accumulator of [`apply`](Self::apply) with [`Accumulation::Full`], and in
    /// the affine form `[A | b]` the homogeneous coordinate is the plain integer 1.
    ///
    /// [`Accumulation::Full`]: crate::Accumulation::Full
    ///
    /// # Errors
    /// A product format beyond 64-bit stored integers (with a bias).
    pub fn stored_conv(&self) -> Result<Conv<i64>, MatrixError> {
        let bias = match self.bias_raw() {
            Some(b) => {
                let p = self.weight_format().product(self.input_format())?;
                if !p.fits_i64() {
                    return Err(MatrixError::Numeric(NumericError::NotI64 { format: p.to_string() }));
                }
                Some(b.iter().map(|&v| v as i64).collect())
            }
            None => None,
        };
        Conv::new(self.raw_conv().geometry().clone(), self.raw_conv().weight().to_vec(), bias)
    }
}
