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
