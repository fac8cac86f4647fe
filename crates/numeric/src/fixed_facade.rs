//! The `fixed` crate's types (`I1F7`, `I1F15`, `I8F8`, `I16F16`, ...) as [`QFormat`]s, converting
//! through their bits.
//!
//! MATLAB semantics never go through `fixed`'s own arithmetic: its `from_num` rounds ties to even and its
//! `*` truncates, while MATLAB's default is Nearest (ties toward +inf) with exact products. Quantize and
//! compute with [`QFormat`], and use this module to hand results to code written against `fixed`.
//!
//! ```
//! use convmat_numeric::fixed_facade::{quantize, qformat, to_raw};
//! use convmat_numeric::{Overflow, Rounding};
//! use fixed::types::I1F7;
//! assert_eq!(qformat::<I1F7>().to_string(), "q1.7");
//! // 3/256 is a tie at q1.7: MATLAB's Nearest goes up to 2/128; fixed's from_num would go to even (1/128)
//! let x: I1F7 = quantize(3.0 / 256.0, Rounding::Nearest, Overflow::Saturate);
//! assert_eq!(to_raw(x), 2);
//! assert_eq!(I1F7::from_num(3.0 / 256.0).to_bits(), 2); // here ties-to-even happens to agree...
//! let y: I1F7 = quantize(1.0 / 256.0, Rounding::Nearest, Overflow::Saturate);
//! assert_eq!((to_raw(y), I1F7::from_num(1.0 / 256.0).to_bits()), (1, 0)); // ...here it does not
//! ```

use az::{Cast, WrappingCast};
use fixed::traits::Fixed;

use crate::{Overflow, QFormat, Rounding};

/// The [`QFormat`] of a `fixed` type.
pub fn qformat<F: Fixed>() -> QFormat {
    QFormat::new(F::IS_SIGNED, F::INT_NBITS + F::FRAC_NBITS, F::FRAC_NBITS as i32)
        .expect("fixed types have 8 to 128 bits")
}

/// The stored integer of a `fixed` value.
pub fn to_raw<F: Fixed>(x: F) -> i128
where
    F::Bits: Cast<i128>,
{
    x.to_bits().cast()
}

/// The `fixed` value with stored integer `raw` (wrapped into the type's bits if out of its range;
/// values from [`quantize`] or [`QFormat::quantize`] with this type's format always fit).
pub fn from_raw<F: Fixed>(raw: i128) -> F
where
    i128: WrappingCast<F::Bits>,
{
    F::from_bits(raw.wrapping_cast())
}

/// `v` quantized to the `fixed` type with MATLAB's rounding and overflow.
pub fn quantize<F: Fixed>(v: f64, rounding: Rounding, overflow: Overflow) -> F
where
    i128: WrappingCast<F::Bits>,
{
    from_raw(qformat::<F>().quantize(v, rounding, overflow))
}
