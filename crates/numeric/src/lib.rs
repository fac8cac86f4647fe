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
//! of raw integers plus a [`QFormat`]. [`QFormat`] follows MATLAB's `fi`/`fimath` to the bit: the six
//! [`Rounding`] methods and two [`Overflow`] actions, exact quantization and requantization, and
//! full-precision product and sum formats. [`fixed_facade`] converts to and from the `fixed` crate's
//! types through their bits.
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

mod dtype;
mod error;
pub mod fixed_facade;
mod qformat;
mod rng;

pub use dtype::Dtype;
pub use error::NumericError;
pub use qformat::{Overflow, QFormat, Rounding, MAX_WORD_BITS};
pub use rng::SeededRng;

mod sealed {
    pub trait Sealed {}
}

/// A matrix or tensor element: `f32`, `f64`, or a raw fixed-point integer (`i8`, `i16`, `i32`, `i64`).
///
/// Sealed: the set of types is part of convmat's contract (every builder is tested with each).
pub trait Scalar: Copy + Send + Sync + Debug + PartialEq + PartialOrd + Default + 'static + sealed::Sealed {
    /// The multiply-accumulate type: the type itself for floats, a wider integer for integers.
    type Acc: Copy + Send + Sync + Debug + PartialEq + PartialOrd + Default + 'static;
    /// The NumPy dtype name (`float32`, `int16`, ...).
    const DTYPE: &'static str;
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Zero accumulator.
    const ACC_ZERO: Self::Acc;

    /// `self + rhs` (wrapping for integers: sums of colliding taps of raw fixed-point weights should be
    /// built in a type wide enough, which the fixed-point layer chooses).
    fn add(self, rhs: Self) -> Self;
    /// Whether the value is exactly zero.
    fn is_zero(self) -> bool;
    /// `acc + a * b`, exactly for integers.
    fn mul_acc(acc: Self::Acc, a: Self, b: Self) -> Self::Acc;
    /// `a + b` in the accumulator.
    fn acc_add(a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// The value as an accumulator.
    fn widen(self) -> Self::Acc;
    /// An accumulator as `f64` (exact for integers up to 2^53).
    fn acc_to_f64(acc: Self::Acc) -> f64;
    /// The value as `f64` (exact for every type but `i64` beyond 2^53).
    fn to_f64(self) -> f64;
    /// `v` converted with Rust's `as` (floats: round to nearest; integers: truncate toward zero and
    /// saturate). For tests and examples; fixed-point quantization has its own exact rules.
    fn from_f64(v: f64) -> Self;
}

macro_rules! float_scalar {
    ($t:ty, $name:literal) => {
        impl sealed::Sealed for $t {}
        impl Scalar for $t {
            type Acc = $t;
            const DTYPE: &'static str = $name;
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const ACC_ZERO: Self::Acc = 0.0;
            #[inline(always)]
            fn add(self, rhs: Self) -> Self {
                self + rhs
            }
            #[inline(always)]
            fn is_zero(self) -> bool {
                self == 0.0
            }
            #[inline(always)]
            fn mul_acc(acc: Self::Acc, a: Self, b: Self) -> Self::Acc {
                acc + a * b
            }
            #[inline(always)]
            fn acc_add(a: Self::Acc, b: Self::Acc) -> Self::Acc {
                a + b
            }
            #[inline(always)]
            fn widen(self) -> Self::Acc {
                self
            }
            #[inline(always)]
            fn acc_to_f64(acc: Self::Acc) -> f64 {
                acc as f64
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    };
}

macro_rules! int_scalar {
    ($t:ty, $acc:ty, $name:literal) => {
        impl sealed::Sealed for $t {}
        impl Scalar for $t {
            type Acc = $acc;
            const DTYPE: &'static str = $name;
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const ACC_ZERO: Self::Acc = 0;
            #[inline(always)]
            fn add(self, rhs: Self) -> Self {
                self.wrapping_add(rhs)
            }
            #[inline(always)]
            fn is_zero(self) -> bool {
                self == 0
            }
            #[inline(always)]
            fn mul_acc(acc: Self::Acc, a: Self, b: Self) -> Self::Acc {
                acc + (a as $acc) * (b as $acc)
            }
            #[inline(always)]
            fn acc_add(a: Self::Acc, b: Self::Acc) -> Self::Acc {
                a + b
            }
            #[inline(always)]
            fn widen(self) -> Self::Acc {
                self as $acc
            }
            #[inline(always)]
            fn acc_to_f64(acc: Self::Acc) -> f64 {
                acc as f64
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    };
}

float_scalar!(f32, "float32");
float_scalar!(f64, "float64");
int_scalar!(i8, i64, "int8");
int_scalar!(i16, i64, "int16");
int_scalar!(i32, i64, "int32");
int_scalar!(i64, i128, "int64");

/// Element type of a [`Scalar`]'s accumulator, for generic signatures.
pub type Acc<T> = <T as Scalar>::Acc;
