//! Pictures of convolution matrices, as PNG files, in pure Rust.
//!
//! - [`spy`]: a layer's matrix `A` as MATLAB's `spy` draws it, shaded by `|a_ij|`, with the channel
//!   blocks outlined (rows: one block of output positions per output channel; columns: one block of input
//!   positions per input channel), so the doubly-block-Toeplitz (zero padding) or block-circulant
//!   (circular padding) structure shows at a glance. Big matrices are max-pooled into pixels while their
//!   rows are walked in bounded chunks: the dense matrix is never formed. [`spy_entries`] draws any
//!   matrix given entry by entry.
//! - [`spectrum_plot`]: singular values against their index on a log scale, with an upper bound (such
//!   as the circular layer's norm) as a horizontal line.
//!
//! Both return an [`Image`], which [`Image::write_png`] encodes (8-bit RGB, through the `png` crate).
//! Text uses an embedded 8x8 bitmap font: nothing is read at run time.
//!
//! ```
//! use convmat_matrix::Conv;
//! use convmat_plot::{spy, PlotOptions, Size};
//! use convmat_shape::{ConvSpec, Geometry, Padding};
//!
//! // Conv2d(2, 3, 3, padding=1) on 2x8x8: a 192 x 128 matrix of 3 x 2 blocks
//! let spec = ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1));
//! let conv = Conv::new(Geometry::new(&spec, &[8, 8])?, (0..54).map(|i| i as f64).collect(), None)?;
//! let picture = spy(&conv, &PlotOptions::default().with_size(Size::Longest(300)))?;
//! assert_eq!((picture.image.width(), picture.image.height()), (200, 300)); // tall: 192 rows, 128 columns
//! let png: Vec<u8> = picture.image.png_bytes();
//! # assert!(png.starts_with(b"\x89PNG"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors
//! Sizes out of range, values that are not finite and empty inputs are [`PlotError`]s naming the
//! value; nothing here panics on user data.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod font;
mod image;
mod spectrum;
mod spy;

pub use error::PlotError;
pub use image::{Image, Rect, Rgb, Size, CHAR, GRID, INK, MAX_SIDE, MIN_SIDE, WHITE};
pub use spectrum::{spectrum_plot, BOUND, SERIES};
pub use spy::{magnitude_colour, spy, spy_entries, spy_layer, BlockShape, Spy, LINE, STORED_ZERO};

/// What every picture takes: its size, a title, and whether to draw labels and margins.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlotOptions {
    /// Pixels.
    pub size: Size,
    /// A line of text on top (e.g. the layer's PyTorch expression); cut to fit.
    pub title: Option<String>,
    /// Margins with a title, captions, channel numbers / tick labels and a colour scale. Without them
    /// the picture is the bare matrix (spy) or plot area; pictures under 160 pixels have none.
    pub labels: bool,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions { size: Size::default(), title: None, labels: true }
    }
}

impl PlotOptions {
    /// The size.
    pub fn with_size(mut self, size: Size) -> Self {
        self.size = size;
        self
    }
    /// The title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    /// Whether labels and margins are drawn.
    pub fn with_labels(mut self, labels: bool) -> Self {
        self.labels = labels;
        self
    }
}
