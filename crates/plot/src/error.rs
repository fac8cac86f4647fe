use convmat_matrix::MatrixError;
use thiserror::Error;

/// What can go wrong drawing a picture.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum PlotError {
    /// A picture side out of range.
    #[error("invalid picture size {side} pixels: expected {min} to {max}")]
    Size {
        /// The side asked for.
        side: u32,
        /// Smallest side.
        min: u32,
        /// Largest side.
        max: u32,
    },
    /// A size that does not parse.
    #[error("invalid size '{0}': expected the longer side in pixels (800) or WIDTHxHEIGHT (800x600)")]
    SizeText(String),
    /// Nothing to draw.
    #[error("nothing to plot: {0}")]
    Empty(&'static str),
    /// A matrix with more stored entries than a picture of it is drawn from in reasonable time.
    #[error("the matrix has up to {entries} stored entries, more than the {max} a picture is drawn from (each one is visited; about a minute at the limit); draw a smaller input shape: the picture's pattern is the same")]
    TooLarge {
        /// The layer's stored entries (an upper bound).
        entries: u128,
        /// The most `spy` visits.
        max: u128,
    },
    /// A value that cannot be plotted.
    #[error("{what} {index} is {value}: expected a finite number >= 0")]
    Value {
        /// Which series (`singular value`, `bound`).
        what: &'static str,
        /// Its position (0-based).
        index: usize,
        /// The value.
        value: f64,
    },
    /// A matrix shape that does not split into the blocks given.
    #[error("a {rows} x {cols} matrix does not split into {row_blocks} x {col_blocks} equal blocks")]
    Blocks {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Row blocks asked for.
        row_blocks: usize,
        /// Column blocks asked for.
        col_blocks: usize,
    },
    /// An entry outside the matrix.
    #[error("entry ({row}, {col}) is outside the {rows} x {cols} matrix")]
    Entry {
        /// Row.
        row: usize,
        /// Column.
        col: usize,
        /// Rows of the matrix.
        rows: usize,
        /// Columns of the matrix.
        cols: usize,
    },
    /// Building the layer's rows failed.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
}
