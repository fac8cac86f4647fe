//! Exact matrices of convolution layers, with PyTorch's semantics.
//!
//! For a layer described by [`convmat_shape`] and its weights, [`Conv`] builds the matrix `A` with
//! `flatten(layer(x)) = A·flatten(x) + b` — rows are the flattened output `(C_out, *out)`, columns the
//! flattened input `(C_in, *in)`, both as `torch.flatten` orders them — for every option: 1-3 d,
//! stride, dilation, groups, any padding, the four padding modes (colliding taps summed), transposed
//! convolutions with `output_padding`.
//!
//! - [`Conv::dense`] (`ndarray::Array2`), [`Conv::csr`] / [`Conv::csc`] (sprs, sorted unique indices,
//!   built in parallel in place, `u32` or wider indices), with [`MatrixOptions`]: row ranges (shards that
//!   stack to the full matrix), the affine forms ([`Affine`]), dropping exact zeros;
//! - [`Operator`]: the fast matrix-free `A·x` and `Aᵀ·y` on batches of floats ([`Float`]), by shifted
//!   GEMMs or unfold + GEMM (faer), buffers kept between calls; [`Conv::conv_unfold`],
//!   [`Conv::apply_gemm`] and [`Conv::adjoint_gemm`] run through it;
//! - [`Conv::apply`] / [`Conv::adjoint`] / [`Conv::forward`]: the tap-map operator for every scalar
//!   (raw integers accumulate exactly in their wide type);
//! - [`unfold`] / [`fold`] (im2col / col2im, `F.unfold` / `F.fold` in 1-3 d);
//! - [`Conv::kernel_adjoint`]: `dL/dA` back to `dL/dweight` and `dL/dbias`;
//! - [`Conv::true_convolution`] and [`convmtx2`]: MATLAB's flipped-kernel convolution;
//! - [`cconv`] / [`cconv_matrix`] (MATLAB's circular convolution modulo n) and [`Circulant`]: circular
//!   layers (any stride dividing the grid) as block-circulant operators applied by FFT;
//! - [`FixedConv`]: fixed-point convolution bit-exact with MATLAB `fi` (full precision, or a narrow
//!   accumulator), through unfold + exact GEMM;
//! - [`accumulator_range`]: the exact accumulator range of a quantized layer per output channel over an
//!   input box (bias and zero points included, border rows apart), the input reaching each extremum, and
//!   the data-type, A2Q and A2Q+ bounds beside it;
//! - [`direct_conv`]: the obviously-correct loop reference;
//! - [`ConvLayer::estimate`] and [`available_memory`]: the bytes a build allocates, checked by the front
//!   ends against the memory there is before building.
//!
//! Generic over the scalar ([`convmat_numeric::Scalar`]: `f32`, `f64`, raw fixed-point integers).
//!
//! ```
//! use convmat_matrix::{Affine, Conv, MatrixOptions};
//! use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
//!
//! // Conv2d(2, 3, 3, padding=1, padding_mode='circular') on 2x5x5
//! let spec = ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1)).with_padding_mode(PaddingMode::Circular);
//! let geometry = Geometry::new(&spec, &[5, 5])?;
//! let weight: Vec<f32> = (0..3 * 2 * 9).map(|i| i as f32).collect();
//! let conv = Conv::new(geometry, weight, Some(vec![1.0, 2.0, 3.0]))?;
//! let a = conv.csr()?;                       // 75 x 50, 9 * 2 entries per row
//! assert_eq!((a.rows(), a.cols(), a.nnz()), (75, 50, 75 * 18));
//! let affine = conv.csr_with::<u32, u32>(&MatrixOptions::default().affine(Affine::Column))?;
//! assert_eq!(affine.cols(), 51);             // [A | b]
//! # Ok::<(), convmat_matrix::MatrixError>(())
//! ```
//!
//! # Errors and panics
//! Wrong shapes, lengths and ranges are [`MatrixError`]s naming the numbers; nothing here panics on
//! user data.
#![warn(missing_docs)]

mod apply;
mod blocked;
mod build;
mod circulant;
mod direct;
mod error;
mod fixed;
mod flip;
mod gemm;
mod grad;
mod layer;
mod memory;
mod op;
mod operator;
mod range;
mod resolved;
mod unfold;

pub use apply::{Applied, ApplyOptions, ApplyTypes, Output};
pub use build::{Affine, MatrixOptions};
pub use circulant::{cconv, cconv_matrix, Circulant};
pub use direct::{direct_conv, random_inputs, verify, Verification};
pub use error::MatrixError;
pub use fixed::{Accumulation, FixedConv, FixedOutput, NarrowOverflows};
pub use flip::{convmtx2, flip_kernel};
pub use gemm::{matmul_transposed, Float};
pub use grad::KernelGrad;
pub use layer::Conv;
pub use memory::{available_memory, check_memory, keep_freed_memory};
pub use op::{Operator, OperatorPath};
pub use range::{
    accumulator_range, accumulator_range_per_channel, signed_bits, AccumulatorRange, ChannelRange, Extremum,
    InputRange, RangeError, RangeOptions,
};
pub use resolved::{ConvLayer, Estimate, MatrixFormat};
pub use rustfft::num_complex::Complex64;
pub use unfold::{fold, fold_into, unfold, unfold_into};
