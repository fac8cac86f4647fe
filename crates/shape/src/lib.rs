//! Convolution geometry for convmat: everything about a convolution layer that does not need its
//! weights.
//!
//! - [`ConvSpec`]: a `Conv{1,2,3}d` / `ConvTranspose{1,2,3}d` layer with PyTorch's names, defaults and
//!   validity rules, for any spatial rank (rank is data, not a type); [`Padding`] covers ints, tuples,
//!   ONNX `pads`, `same`, `same_upper`/`same_lower` and `valid`; [`PaddingMode`] the four border modes.
//! - [`Geometry`]: a spec on a concrete input size: output size (checked arithmetic, errors that name
//!   the numbers), resolved padding, matrix rows and columns, and the [`TapMap`]: for each (output
//!   position, kernel tap) the flat input position read after reflect / replicate / circular remapping.
//!   Every matrix builder in convmat stands on it.
//! - [`RowMajor`]: flat index encode/decode, exactly `torch.flatten` of one sample.
//! - Shape chains: [`parse_layer`] reads PyTorch constructor expressions and [`propagate`] pushes a
//!   sample shape through Conv / ConvTranspose / pooling / adaptive pooling / Flatten / Linear layers.
//! - Typed text: [`parse_dims`] (`3,32,32`), [`parse_counts`] (`2,1`), [`parse_range`] (`0..1000`) and
//!   [`parse_bytes`] (`8G`), [`parse_tolerance`] (`1e-5`), the values the command line takes, with checked arithmetic and a
//!   [`TextError`] naming the text and what is valid.
//!
//! Depends on nothing heavier than `thiserror`.
//!
//! ```
//! use convmat_shape::{parse_layer, propagate, ConvSpec, Geometry, Padding};
//!
//! // "why is it nn.Linear(16*6*6, 120)?"
//! let chain: Vec<_> = ["Conv2d(1, 6, 3)", "MaxPool2d(2)", "Conv2d(6, 16, 3)", "MaxPool2d(2)", "Flatten()"]
//!     .iter().map(|s| parse_layer(s).unwrap()).collect();
//! assert_eq!(propagate(&[1, 32, 32], &chain).unwrap()[4].output, vec![16 * 6 * 6]);
//!
//! // The geometry of a strided, padded layer and the input pixel one tap reads.
//! let spec = ConvSpec::new(2, 3, 8, [3]).with_stride([2]).with_padding(Padding::uniform(1));
//! let g = Geometry::new(&spec, &[32, 32]).unwrap();
//! assert_eq!(g.output_shape(), vec![8, 16, 16]);
//! let taps = g.tap_map();
//! assert_eq!(taps.read(0, 0), None);            // top-left tap of the first window is padding
//! assert_eq!(taps.read(0, 4), Some(0));         // the centre tap reads pixel (0, 0)
//! assert_eq!(taps.read(17, 4), Some(2 * 32 + 2)); // window (1, 1) centre reads pixel (2, 2)
//! ```
//!
//! # Errors and panics
//! Everything a user can get wrong (layer parameters, input sizes, weight shapes, expressions) returns a
//! [`ShapeError`] or [`ParseError`] whose message names the parameter and the numbers. Index accessors
//! (`encode`, `read`, ...) panic on out-of-range indices: those are caller bugs, documented per method.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod chain;
mod error;
mod geometry;
mod layout;
mod options;
mod parse;
mod sequential;
mod spec;
mod taps;
mod text;

pub use chain::{parse_layer, propagate, Layer, LayerShape, PoolKind, PoolSpec};
pub use error::{ChainError, ParseError, ShapeError};
pub use geometry::Geometry;
pub use layout::RowMajor;
pub use options::LayerOptions;
pub use sequential::split_sequential;
pub use spec::{ConvSpec, Padding, PaddingMode, TrueConvShape, MAX_RANK};
pub use taps::{AxisTaps, TapGroups, TapMap};
pub use text::{parse_bytes, parse_counts, parse_dims, parse_range, parse_tolerance, TextError, TextProblem};
