use convmat_numeric::NumericError;
use convmat_shape::ShapeError;
use thiserror::Error;

/// What can go wrong building or applying a convolution's matrix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MatrixError {
    /// The layer itself is invalid.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// A fixed-point format or accumulator problem.
    #[error(transparent)]
    Numeric(#[from] NumericError),
    /// A weight buffer of the wrong length.
    #[error("weight has {got} values, expected {expected} for weight shape {shape:?}")]
    WeightLen {
        /// `prod(shape)`.
        expected: usize,
        /// Values given.
        got: usize,
        /// The layer's weight shape.
        shape: Vec<usize>,
    },
    /// A row range outside the matrix.
    #[error("rows {start}..{end} are out of range: the matrix has {rows} rows (valid: start < end <= {rows})")]
    RowRange {
        /// First row asked for.
        start: usize,
        /// One past the last row asked for.
        end: usize,
        /// Rows of the matrix.
        rows: usize,
    },
    /// A count that does not fit the sparse index type.
    #[error("{what} = {value} does not fit the {index} index type (max {max}); use a wider index type")]
    IndexOverflow {
        /// `columns` or `nnz`.
        what: &'static str,
        /// The count.
        value: usize,
        /// The index type's name.
        index: &'static str,
        /// Its largest value.
        max: u128,
    },
    /// An array of the wrong shape.
    #[error("{what} has shape {got:?}, expected {expected}")]
    Dimension {
        /// Which argument.
        what: &'static str,
        /// What would be valid.
        expected: String,
        /// Shape given.
        got: Vec<usize>,
    },
    /// A weight or bias value that is NaN or infinite.
    #[error("{what} value {index} is {value}: weights and biases must be finite numbers")]
    NotFinite {
        /// `weight` or `bias`.
        what: &'static str,
        /// Flat index of the first such value.
        index: usize,
        /// The value, as printed (`NaN`, `inf`, `-inf`).
        value: String,
    },
    /// Fixed-point options (weight, accumulator or output formats, raw integers) with a float dtype.
    #[error("weight, accumulator and output formats and raw integers need a fixed-point dtype such as q1.7")]
    FixedPointOnly,
    /// A result whose format is too wide for the values asked for.
    #[error(
        "the result format {format} has {bits} bits, beyond {target} ({max} bits); cast it to a narrower output format"
    )]
    ResultTooWide {
        /// The result's format.
        format: String,
        /// Its word length.
        bits: u32,
        /// `int64` (stored integers) or `float64` (real values).
        target: &'static str,
        /// The target's exact bits.
        max: u32,
    },
    /// A choice this operation does not implement.
    #[error("{what} {value} is not supported here")]
    Unsupported {
        /// Which choice.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A narrow accumulator asked of a transposed layer (its casts follow a convolution's tap order).
    #[error("a narrow accumulator ({format}) follows a convolution's tap order: a transposed layer accumulates in full precision only (leave the accumulator out)")]
    NarrowTransposed {
        /// The accumulator's format.
        format: String,
    },
    /// A layer without the circulant structure an FFT method needs.
    #[error("the layer is not a circular convolution ({reason}): the FFT method needs circular padding, no transposition and an output of input / stride in every dimension")]
    NotCircular {
        /// What breaks the structure.
        reason: String,
    },
    /// A buffer the input asks for that the memory cannot hold.
    #[error("{what}: about {bytes} bytes, more than the {available} bytes of memory available")]
    Memory {
        /// What would be allocated, with the count asked for.
        what: String,
        /// Its size (at least this many, when the count overflows).
        bytes: u128,
        /// The memory available ([`available_memory`](crate::available_memory)).
        available: u64,
    },
}
