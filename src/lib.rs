//! convmat turns a convolution layer into the exact matrix it applies and characterizes that matrix.
//!
//! This crate is the command-line tool and a thin facade over the workspace's crates, each usable on its
//! own:
//! - [`shape`] (`convmat-shape`): layer specs, geometry, flat indices, tap maps and shape chains;
//! - [`numeric`] (`convmat-numeric`): the scalar abstraction (f32, f64, raw fixed-point integers);
//! - [`matrix`] (`convmat-matrix`): dense, sparse and matrix-free builders, unfold/fold, kernel adjoint,
//!   fixed-point convolution;
//! - [`spectrum`] (`convmat-spectrum`): exact FFT spectra, Lanczos top-k and norms, dense SVD;
//! - [`io`] (`convmat-io`): npy/npz/safetensors in, npy/SciPy npz/Matrix Market out, atomic writes;
//! - [`onnx`] (`convmat-onnx`): ONNX models read in pure Rust, nodes mapped to layers, affine blocks exported;
//! - [`cli`]: the `convmat` command line itself ([`cli::main`]), entered by the binary and by the Python
//!   package's `convmat` command.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod cli;

pub use convmat_io as io;
pub use convmat_matrix as matrix;
pub use convmat_net as net;
pub use convmat_numeric as numeric;
pub use convmat_onnx as onnx;
pub use convmat_plot as plot;
pub use convmat_shape as shape;
pub use convmat_spectrum as spectrum;

/// The README's Rust examples, compiled and run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
