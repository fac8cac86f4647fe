//! Singular values of convolution layers: the spectral norm (Lipschitz constant), the top `k`, or all.
//!
//! - [`fft_singular_values`]: **exact, all** singular values of a circular-padded convolution by the
//!   method of Sedghi, Gupta and Long (ICLR 2019): the layer is block-diagonalised by the DFT over the
//!   grid, leaving one small `C_out x C_in` matrix per frequency. Groups split each block further.
//!   Strides that divide the grid are handled by a polyphase decomposition: the stride is folded into
//!   the input channels (`C_in * prod(stride)` of them, on the grid divided by the stride), which turns
//!   the strided layer into a stride-1 circular one.
//! - [`lanczos`]: the top `k` singular values of **any** layer (every padding mode, stride, dilation,
//!   groups, transposed) by Golub-Kahan-Lanczos bidiagonalisation on the matrix-free operator (shifted
//!   GEMMs for stride-1 zero padding, else unfold + GEMM; faer), until each wanted value's residual
//!   `||Aᵀu - σv||` is below `tol * σ_1`. The norm: single-vector, started at the kernel's top Fourier
//!   mode; `k > 1`: block Lanczos with full reorthogonalisation, which returns repeated values.
//! - [`certified_norm`]: the spectral norm with a certified interval `lower <= σ_1 <= upper`: per-index
//!   upper bounds by Cauchy interlacing with the circular convolutions a zero-padded layer is a
//!   sub-block of ([`interlacing_upper_bounds`]), which separate the top cluster, then the explicit
//!   residuals of block Lanczos' Ritz vectors (Davis-Kahan, Weyl, Kato-Temple). [`Certificate`] names
//!   what each interval rests on; reflect / replicate padding get the residual-only statement.
//! - [`dense_singular_values`]: all singular values of a small layer through its dense matrix.
//! - A whole network's table (every block's certified norm, the AutoLip bound of the graph) is
//!   `convmat-net`'s (`Graph::norms`, `sequential_norms`), built on these functions.
//! - [`singular_values`]: picks among them ([`Method::Auto`]) and reports which, with the iterations,
//!   the residual and, for zero padding, the norm of the circular convolution on the padded grid, which
//!   bounds the layer's norm from above (the layer is a sub-block of it).
//!
//! Dense linear algebra is faer's (pure Rust, no system BLAS/LAPACK).
//!
//! ```
//! use convmat_matrix::Conv;
//! use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
//! use convmat_spectrum::{fft_singular_values, dense_singular_values};
//! let spec = ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::Same).with_padding_mode(PaddingMode::Circular);
//! let w: Vec<f64> = (0..3 * 2 * 9).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
//! let conv = Conv::new(Geometry::new(&spec, &[6, 6]).unwrap(), w, None).unwrap();
//! let fft = fft_singular_values(&conv).unwrap();
//! let dense = dense_singular_values(&conv).unwrap();
//! assert!(fft.iter().zip(&dense).all(|(a, b)| (a - b).abs() < 1e-10 * dense[0]));
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

#[macro_use]
mod names;

mod certify;
mod dense;
mod embed;
mod error;
mod fft;
mod filtered;
mod krylov;
mod lanczos;
mod limits;
mod monitor;
mod sparse;
mod start;
mod symbol;
mod tall;
mod values;
mod vector;

pub use certify::{certified_norm, certified_norm_from, certified_norm_with, Certificate, NormInterval};
pub use dense::{dense_singular_values, DENSE_LIMIT};
pub use embed::{circular_upper_bound, interlacing_upper_bounds, interlacing_upper_bounds_with};
pub use error::SpectrumError;
pub use fft::{fft_singular_values, fft_singular_values_with};
pub use lanczos::{lanczos, lanczos_from, lanczos_with, LanczosResult};
pub use limits::check_tolerance;
pub use monitor::{Monitor, Phase, Progress};
pub use sparse::{csr_norm, sparse_norm, CsrRef, SPARSE_DENSE_LIMIT};
pub use start::{Start, StartVector};
pub use values::{singular_values, singular_values_with, Method, Request, Spectrum};
