//! The scalar abstraction of convmat: one sealed trait, [`Scalar`], implemented once per type by a
//! macro, that every matrix builder, operator and convolution in the workspace is generic over.
//!
//! Each type chooses its accumulator ([`Scalar::Acc`]) for multiply-accumulate:
//! - `f32` accumulates in `f32` and `f64` in `f64`, as PyTorch's CPU kernels and BLAS do, so results
//!   match PyTorch to rounding and SIMD keeps full width. (Accumulating `f32` in `f64` would be more
//!   accurate but slower and would *differ* from the reference we promise to reproduce.)
//! - Raw integers (the stored integers of fixed-point values) accumulate exactly in a wider integer:
//!   `i8`, `i16`, `i32` in `i64`, `i64` in `i128`, as MATLAB's full-precision `fimath` does.
//!
//! Fixed point is *not* forced through `num_traits::Float`: a matrix of fixed-point weights is a matrix
//! of raw integers plus a [`QFormat`]. [`QFormat`] follows MATLAB's `fi`/`fimath` to the bit: exact
//! quantization and requantization, and full-precision product and sum formats. It speaks the other
//! dialects too: the nine [`Rounding`] methods and five [`Overflow`] actions of MATLAB, Vitis HLS
//! `ap_fixed` and QONNX (every dialect's spelling), and types in each dialect's syntax ([`FixedType`]:
//! `q1.7`, `fi(1,8,7)`, `int8`, `ap_fixed<10,4,AP_RND,AP_SAT>`), printed back with
//! [`QFormat::to_dialect`]. [`fixed_facade`] converts to and from the `fixed` crate's types through
//! their bits.
//!
//! ```
//! use convmat_numeric::Scalar;
//! fn dot<T: Scalar>(a: &[T], b: &[T]) -> T::Acc {
//!     a.iter().zip(b).fold(T::ACC_ZERO, |acc, (&x, &y)| T::mul_acc(acc, x, y))
//! }
//! assert_eq!(dot(&[1.5f32, 2.0], &[2.0, -1.0]), 1.0);
//! assert_eq!(dot(&[100i8, 100], &[100, 100]), 20_000i64); // no i8 overflow: exact accumulator
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::fmt::Debug;

use num_traits::ConstOne;
pub use num_traits::{AsPrimitive, ConstZero, NumOps};

mod dialect;
mod dtype;
mod error;
pub mod fixed_facade;
mod modes;
mod qformat;
mod rng;

pub use dialect::{Dialect, FixedType, QonnxQuant};
pub use dtype::Dtype;
pub use error::NumericError;
pub use modes::{Modes, Overflow, Rounding};
pub use qformat::{QFormat, Quantizer, MAX_FRAC_BITS, MAX_WORD_BITS};
pub use rng::{SeededRng, Xorshift64};

mod sealed {
    pub trait Sealed {}
}

/// A matrix or tensor element: `f32`, `f64`, or a raw fixed-point integer (`i8`, `i16`, `i32`, `i64`).
///
/// Built on num-traits: conversions are [`AsPrimitive`] (Rust's `as`), zero and one come from
/// [`ConstZero`]/[`ConstOne`], and the accumulator is any num-traits [`NumOps`] type, so
/// multiply-accumulate and the `f64` views are written once, here, for every type. What num-traits has
/// no single trait for stays: the element sum ([`Scalar::add`], wrapping for integers, plain for floats)
/// and the choice of accumulator. `Scalar` does not extend `Zero` (whose `Add` supertrait would make
/// `x.add(y)` ambiguous with the wrapping sum), and fixed point is deliberately not a `num_traits::Float`.
///
/// Sealed: the set of types is part of convmat's contract (every builder is tested with each).
pub trait Scalar:
    Copy + Send + Sync + Debug + PartialEq + PartialOrd + Default + 'static + AsPrimitive<f64> + sealed::Sealed
{
    /// The multiply-accumulate type: the type itself for floats, a wider integer for integers.
    type Acc: Copy
        + Send
        + Sync
        + Debug
        + PartialEq
        + PartialOrd
        + Default
        + 'static
        + ConstZero
        + NumOps
        + AsPrimitive<f64>;
    /// The NumPy dtype name (`float32`, `int16`, ...).
    const DTYPE: &'static str;
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Zero accumulator.
    const ACC_ZERO: Self::Acc = <Self::Acc as ConstZero>::ZERO;

    /// `self + rhs` (wrapping for integers: sums of colliding taps of raw fixed-point weights should be
    /// built in a type wide enough, which the fixed-point layer chooses).
    fn add(self, rhs: Self) -> Self;
    /// The value as an accumulator (Rust's `as`: exact, the accumulator is at least as wide).
    fn widen(self) -> Self::Acc;
    /// `v` converted with Rust's `as` (floats: round to nearest; integers: truncate toward zero and
    /// saturate). For tests and examples; fixed-point quantization has its own exact rules.
    fn from_f64(v: f64) -> Self;

    /// Whether the value is exactly zero.
    #[inline(always)]
    fn is_zero(self) -> bool {
        self == Self::ZERO
    }
    /// `acc + a * b`, exactly for integers.
    #[inline(always)]
    fn mul_acc(acc: Self::Acc, a: Self, b: Self) -> Self::Acc {
        acc + a.widen() * b.widen()
    }
    /// `a + b` in the accumulator.
    #[inline(always)]
    fn acc_add(a: Self::Acc, b: Self::Acc) -> Self::Acc {
        a + b
    }
    /// An accumulator as `f64` (exact for integers up to 2^53).
    #[inline(always)]
    fn acc_to_f64(acc: Self::Acc) -> f64 {
        acc.as_()
    }
    /// The value as `f64` (exact for every type but `i64` beyond 2^53).
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self.as_()
    }
}

/// One impl per type: the accumulator, the NumPy name and how two elements add.
macro_rules! scalar {
    ($t:ty, $acc:ty, $name:literal, $add:path) => {
        impl sealed::Sealed for $t {}
        impl Scalar for $t {
            type Acc = $acc;
            const DTYPE: &'static str = $name;
            const ZERO: Self = <$t as ConstZero>::ZERO;
            const ONE: Self = <$t as ConstOne>::ONE;
            #[inline(always)]
            fn add(self, rhs: Self) -> Self {
                $add(self, rhs)
            }
            #[inline(always)]
            fn widen(self) -> Self::Acc {
                self.as_()
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v.as_()
            }
        }
    };
}

scalar!(f32, f32, "float32", std::ops::Add::add);
scalar!(f64, f64, "float64", std::ops::Add::add);
scalar!(i8, i64, "int8", i8::wrapping_add);
scalar!(i16, i64, "int16", i16::wrapping_add);
scalar!(i32, i64, "int32", i32::wrapping_add);
scalar!(i64, i128, "int64", i64::wrapping_add);

/// Element type of a [`Scalar`]'s accumulator, for generic signatures.
pub type Acc<T> = <T as Scalar>::Acc;
