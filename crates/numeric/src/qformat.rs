use std::fmt;
use std::str::FromStr;

use std::cmp::Ordering;

use crate::{NumericError, Overflow, Rounding};

/// The widest accumulator convmat computes in (raw values are `i128`).
pub const MAX_WORD_BITS: u32 = 128;

/// The largest fraction length magnitude a format may have (MATLAB's `fi` limit on word lengths). It
/// keeps `I = w - F`, products' `fa + fb` and the shifts between formats far inside `i32`.
pub const MAX_FRAC_BITS: i32 = 65535;

/// A binary fixed-point format, as MATLAB's `numerictype(s, w, f)`: signedness, word length in bits
/// (sign included) and fraction length. The real value of a stored integer `x` is `x * 2^-f`.
///
/// Written `qI.F` (signed, `I = w - F` integer bits *including the sign bit*) or `uqI.F` (unsigned):
/// `q1.7` is `fi(v, 1, 8, 7)`, `q8.8` is `fi(v, 1, 16, 8)`, `uq4.4` is `fi(v, 0, 8, 4)`. (TI's Q
/// notation counts integer bits without the sign; ours follows MATLAB's word length.) MATLAB's
/// shorthand `s8,7` / `u8,4` is read too. Fraction lengths may be negative or exceed the word, as
/// MATLAB allows: `q10.-2` is `fi(v, 1, 8, -2)`. Every dialect's type syntax is read as well
/// (`fi(1,8,7)`, `int8`, `ap_fixed<8,1>`: see [`FixedType`](crate::FixedType)).
///
/// ```
/// use convmat_numeric::{QFormat, Rounding, Overflow};
/// let q = "q1.7".parse::<QFormat>().unwrap();
/// assert_eq!((q.signed(), q.word_bits(), q.frac_bits()), (true, 8, 7));
/// assert_eq!(q.quantize(0.3, Rounding::Nearest, Overflow::Saturate), 38);
/// assert_eq!(q.quantize(1.0, Rounding::Nearest, Overflow::Saturate), 127); // fi(1, 1, 8, 7)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QFormat {
    signed: bool,
    word_bits: u32,
    frac_bits: i32,
}

impl QFormat {
    /// `numerictype(signed, word_bits, frac_bits)`.
    ///
    /// # Errors
    /// A word length outside `2..=128` when signed, `1..=127` when unsigned (stored integers are
    /// `i128`); a fraction length beyond ±[`MAX_FRAC_BITS`].
    pub fn new(signed: bool, word_bits: u32, frac_bits: i32) -> Result<Self, NumericError> {
        let (min, max) = if signed { (2, MAX_WORD_BITS) } else { (1, MAX_WORD_BITS - 1) };
        if !(min..=max).contains(&word_bits) {
            return Err(NumericError::WordBits { word_bits, min, max });
        }
        if !(-MAX_FRAC_BITS..=MAX_FRAC_BITS).contains(&frac_bits) {
            return Err(NumericError::FracBits { frac_bits, max: MAX_FRAC_BITS });
        }
        Ok(Self { signed, word_bits, frac_bits })
    }

    /// Signed `qI.F`: `I` integer bits including the sign, `F` fraction bits.
    ///
    /// # Errors
    /// As [`QFormat::new`].
    pub fn q(int_bits: i32, frac_bits: i32) -> Result<Self, NumericError> {
        let w = i64::from(int_bits) + i64::from(frac_bits);
        Self::new(true, u32::try_from(w).unwrap_or(if w < 0 { 0 } else { u32::MAX }), frac_bits)
    }

    /// Whether the format is signed.
    pub fn signed(self) -> bool {
        self.signed
    }
    /// Word length in bits, sign included.
    pub fn word_bits(self) -> u32 {
        self.word_bits
    }
    /// Fraction length.
    pub fn frac_bits(self) -> i32 {
        self.frac_bits
    }
    /// Integer bits, sign included: `word_bits - frac_bits`.
    pub fn int_bits(self) -> i32 {
        self.word_bits as i32 - self.frac_bits
    }

    /// Smallest stored integer.
    pub fn raw_min(self) -> i128 {
        if !self.signed {
            0
        } else if self.word_bits == 128 {
            i128::MIN
        } else {
            -(1i128 << (self.word_bits - 1))
        }
    }

    /// Largest stored integer.
    pub fn raw_max(self) -> i128 {
        match (self.signed, self.word_bits) {
            (true, 128..) | (false, 127..) => i128::MAX,
            (true, w) => (1i128 << (w - 1)) - 1,
            (false, w) => (1i128 << w) - 1,
        }
    }

    /// Whether stored integers fit `i64` (every data format convmat stores in arrays must).
    pub fn fits_i64(self) -> bool {
        self.raw_min() >= i64::MIN as i128 && self.raw_max() <= i64::MAX as i128
    }

    /// The real value of a stored integer, as `f64` (exact while `|raw| < 2^53`).
    pub fn to_f64(self, raw: i128) -> f64 {
        raw as f64 * pow2(-self.frac_bits)
    }

    /// The stored integer of `v` in this format: `v * 2^f` rounded by `rounding`, then `overflow`.
    /// NaN gives 0; ±inf the largest/smallest value under the saturations (0 under `SaturateZero` and
    /// the wraps). MATLAB's constructor `fi(v, s, w, f)` is `quantize(v, Nearest, Saturate)`.
    ///
    /// Exact: the scaling by `2^f` is exact in binary floating point and the rounding inspects the
    /// exact remainder; no float rounding shortcut is taken.
    pub fn quantize(self, v: f64, rounding: Rounding, overflow: Overflow) -> i128 {
        if v.is_nan() {
            return 0;
        }
        if v.is_infinite() {
            return self.overflowed(v < 0.0, 0, false, overflow);
        }
        let y = scale_pow2(v, self.frac_bits);
        if y == 0.0 && v != 0.0 {
            // |y| underflowed below the smallest subnormal: just above -1 + 1 = 0 from below, or 0 from above
            let (floor, half) = if v < 0.0 { (-1, Ordering::Greater) } else { (0, Ordering::Less) };
            let up = rounding.rounds_up(true, half, v < 0.0, floor != 0);
            return self.overflow_rounded(floor + i128::from(up), floor, overflow);
        }
        match round_exact(y, rounding) {
            Some((rounded, floor)) => self.overflow_rounded(rounded, floor, overflow),
            // beyond i128, so an integer beyond every range: its low bits decide the wraps
            None => {
                let (m, e) = integer_parts(y);
                let low = if e < 128 { i128::from(m).wrapping_shl(e) } else { 0 };
                self.overflowed(y < 0.0, low, bit_of_shifted(i128::from(m), e, self.word_bits), overflow)
            }
        }
    }

    /// Applies the overflow action to a stored integer of this format's fraction length.
    pub fn overflow(self, raw: i128, overflow: Overflow) -> i128 {
        self.overflow_rounded(raw, raw, overflow)
    }

    /// `overflow` of `value`, which rounding made from `floor` (the value truncated toward -inf; `value`
    /// is `floor` or `floor + 1`). Sign-magnitude wrap reads bit `w` of `floor`, as Vitis HLS does.
    fn overflow_rounded(self, value: i128, floor: i128, overflow: Overflow) -> i128 {
        let in_range = value >= self.raw_min() && value <= self.raw_max();
        if in_range && !(overflow == Overflow::SaturateSymmetric && self.signed && value == self.raw_min()) {
            return value;
        }
        // in range only when w = 128, where bit w is the sign
        let bit_w = if self.word_bits < 128 { (floor >> self.word_bits) & 1 == 1 } else { floor < 0 };
        self.overflowed(value < 0, value, bit_w, overflow)
    }

    /// The result of `overflow` on a value beyond the range (or, for `SaturateSymmetric`, at its most
    /// negative end), known by its sign, its low 128 bits `low` (two's complement) and its bit `w` before
    /// rounding.
    fn overflowed(self, negative: bool, low: i128, bit_w: bool, overflow: Overflow) -> i128 {
        match overflow {
            Overflow::Saturate if negative => self.raw_min(),
            Overflow::Saturate => self.raw_max(),
            Overflow::SaturateSymmetric if negative && self.signed => -self.raw_max(),
            Overflow::SaturateSymmetric if negative => 0,
            Overflow::SaturateSymmetric => self.raw_max(),
            Overflow::SaturateZero => 0,
            Overflow::Wrap => self.wrap(low),
            Overflow::WrapSignMagnitude if !self.signed => self.wrap(low),
            Overflow::WrapSignMagnitude => {
                // ap_fixed_base.h's overflow_adjust with no saturation bits: complement the wrapped word
                // when the first discarded bit differs from the new sign bit
                let w = self.wrap(low);
                if bit_w != (w < 0) {
                    !w
                } else {
                    w
                }
            }
        }
    }

    /// The low `w` bits of `raw`, sign-extended when signed (w <= 128 signed, <= 127 unsigned: no shift
    /// overflows).
    fn wrap(self, raw: i128) -> i128 {
        if self.signed {
            let unused = MAX_WORD_BITS - self.word_bits;
            (raw << unused) >> unused
        } else {
            raw & (i128::MAX >> (MAX_WORD_BITS - 1 - self.word_bits))
        }
    }

    /// The exact sum `a + b` of two stored integers of this format, then `overflow` (a sum beyond
    /// `i128`, possible for 127- and 128-bit words, saturates or wraps like any other overflow).
    pub fn add(self, a: i128, b: i128, overflow: Overflow) -> i128 {
        match a.checked_add(b) {
            Some(s) => self.overflow(s, overflow),
            None => {
                // the low 128 bits of the true sum; its bit 128 is its sign (it lies in [-2^128, 2^128))
                let low = a.wrapping_add(b);
                let bit_w = if self.word_bits < 128 { (low >> self.word_bits) & 1 == 1 } else { a < 0 };
                self.overflowed(a < 0, low, bit_w, overflow)
            }
        }
    }

    /// Re-expresses a stored integer of fraction length `from_frac` in this format: shifted to this
    /// fraction length with `rounding` (the exact integer formulas of `fixed-point.md`), then `overflow`.
    pub fn requantize(self, raw: i128, from_frac: i32, rounding: Rounding, overflow: Overflow) -> i128 {
        let s = i64::from(from_frac) - i64::from(self.frac_bits);
        if s > 0 {
            let (rounded, floor) = shift_right_rounded(raw, u32::try_from(s).unwrap_or(u32::MAX), rounding);
            return self.overflow_rounded(rounded, floor, overflow);
        }
        let left = s.unsigned_abs();
        match (left < 127).then(|| raw.checked_mul(1i128 << left)).flatten() {
            Some(v) => self.overflow(v, overflow),
            None if raw == 0 => 0,
            // beyond i128: an integer beyond every range, whose low bits decide the wraps
            None => {
                let e = u32::try_from(left).unwrap_or(u32::MAX);
                let low = if e < 128 { raw.wrapping_shl(e) } else { 0 };
                self.overflowed(raw < 0, low, bit_of_shifted(raw, e, self.word_bits), overflow)
            }
        }
    }

    /// The exact product format (MATLAB's full-precision `ProductMode`): word `wa + wb`, fraction
    /// `fa + fb`, signed if either is.
    ///
    /// # Errors
    /// A word longer than 128 bits.
    pub fn product(self, other: QFormat) -> Result<QFormat, NumericError> {
        let signed = self.signed || other.signed;
        let bits = self.word_bits + other.word_bits;
        if bits > MAX_WORD_BITS || (!signed && bits == MAX_WORD_BITS) {
            return Err(NumericError::TooWide { bits, max: MAX_WORD_BITS });
        }
        // both fraction lengths are within ±MAX_FRAC_BITS, so the sum fits i32; new() bounds it
        Self::new(signed, bits, self.frac_bits + other.frac_bits)
    }

    /// The exact format of a sum of `n` values of this format (MATLAB's full-precision `SumMode`):
    /// `ceil(log2 n)` more bits.
    ///
    /// # Errors
    /// A word longer than 128 bits.
    pub fn sum_of(self, n: usize) -> Result<QFormat, NumericError> {
        let grow = if n <= 1 { 0 } else { usize::BITS - (n - 1).leading_zeros() };
        let bits = self.word_bits + grow;
        let max = if self.signed { MAX_WORD_BITS } else { MAX_WORD_BITS - 1 };
        if bits > max {
            return Err(NumericError::TooWide { bits, max });
        }
        Self::new(self.signed, bits, self.frac_bits)
    }
}

impl fmt::Display for QFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}q{}.{}", if self.signed { "" } else { "u" }, self.int_bits(), self.frac_bits)
    }
}

impl FromStr for QFormat {
    type Err = NumericError;

    /// Any dialect's type (`q1.7`, `uq8.8`, `q10.-2`, MATLAB's `s8,7` / `fi(1,8,7)` /
    /// `numerictype(1,8,7)`, `int8`, `ap_fixed<8,1>`, ...: see [`FixedType`](crate::FixedType)); the
    /// format only: a rounding or overflow the text carries is kept by `FixedType`, not here.
    fn from_str(text: &str) -> Result<Self, NumericError> {
        text.parse::<crate::FixedType>().map(|t| t.format)
    }
}

/// [`QFormat::quantize`] for one format, rounding and overflow, made for arrays: stored integers as
/// `i64`, without 128-bit arithmetic for every format of at most 53 bits and fraction length within
/// ±1000 (identical results; the rare value beyond ±2^51 stored units, NaN and ±inf take the general
/// path).
///
/// ```
/// use convmat_numeric::{Overflow, QFormat, Quantizer, Rounding};
/// let q: QFormat = "q1.7".parse().unwrap();
/// let fast = Quantizer::new(q, Rounding::Nearest, Overflow::Saturate).unwrap();
/// for v in [0.3, -0.5 / 128.0, 1.0, -2.0, f64::NAN] {
///     assert_eq!(fast.quantize(v) as i128, q.quantize(v, Rounding::Nearest, Overflow::Saturate));
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Quantizer {
    format: QFormat,
    rounding: Rounding,
    overflow: Overflow,
    /// Whether the float path applies to this format.
    fast: bool,
    scale: f64,
    lo: f64,
    hi: f64,
}

impl Quantizer {
    /// The quantizer of `format` with `rounding` and `overflow`.
    ///
    /// # Errors
    /// A format whose stored integers do not fit `i64`.
    pub fn new(format: QFormat, rounding: Rounding, overflow: Overflow) -> Result<Self, NumericError> {
        if !format.fits_i64() {
            return Err(NumericError::NotI64 { format: format.to_string() });
        }
        let fast = format.word_bits() <= 53 && format.frac_bits().abs() <= 1000;
        Ok(Self {
            format,
            rounding,
            overflow,
            fast,
            scale: if fast { pow2(format.frac_bits()) } else { 1.0 },
            lo: format.raw_min() as f64,
            hi: format.raw_max() as f64,
        })
    }

    /// The format.
    pub fn format(&self) -> QFormat {
        self.format
    }

    /// [`quantize`](Self::quantize) of every value of `x` into `out` (the same length), as `f32`: exactly
    /// the stored integers for formats of at most 24 bits. MATLAB's constructor (Nearest, Saturate) on a
    /// format of at most 48 bits runs branch-free, so the compiler vectorises it (memory speed); other
    /// options take [`quantize`](Self::quantize) value by value.
    ///
    /// # Panics
    /// `x` and `out` of different lengths.
    pub fn quantize_f32(&self, x: &[f64], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "quantize_f32: input and output lengths");
        if !(self.fast
            && self.rounding == Rounding::Nearest
            && self.overflow == Overflow::Saturate
            && self.format.word_bits() <= 48)
        {
            out.iter_mut().zip(x).for_each(|(o, &v)| *o = self.quantize(v) as f32);
            return;
        }
        const MAGIC: f64 = (3u64 << 51) as f64;
        let (scale, lo, hi) = (self.scale, self.lo, self.hi);
        for (o, &v) in out.iter_mut().zip(x) {
            // |y| < 2^51: `quantize`'s arithmetic, exactly. Beyond, the result is within 1 of y, so outside
            // the range of a 48-bit word, and the clamp saturates it as `quantize` does; ±inf clamp too.
            // A tiny v that underflows to 0 rounds to 0 under Nearest, as in `quantize`.
            let y = v * scale;
            let nearest = (y + MAGIC) - MAGIC;
            let fl = if nearest > y { nearest - 1.0 } else { nearest };
            let raw = fl + if y - fl >= 0.5 { 1.0 } else { 0.0 };
            let raw = if raw < lo {
                lo
            } else if raw > hi {
                hi
            } else {
                raw
            };
            // NaN gives 0
            *o = if y.is_nan() { 0.0 } else { raw as f32 };
        }
    }

    /// The stored integer of `v`: exactly `format.quantize(v, rounding, overflow)`.
    #[inline]
    pub fn quantize(&self, v: f64) -> i64 {
        // 2^51 stored units: y + 1.5 * 2^52 lands in [2^52, 2^53), where doubles are the integers
        const LIMIT: f64 = (1u64 << 51) as f64;
        const MAGIC: f64 = (3u64 << 51) as f64;
        let y = v * self.scale; // exact: 2^f with |f| <= 1000, and a result that underflows is caught below
        if !(self.fast && y.abs() < LIMIT && (y != 0.0 || v == 0.0)) {
            return self.format.quantize(v, self.rounding, self.overflow) as i64;
        }
        let nearest = (y + MAGIC) - MAGIC; // y rounded to an integer, exactly
        let fl = if nearest > y { nearest - 1.0 } else { nearest };
        let r = y - fl; // exact, in [0, 1)
        let up = self.rounding.rounds_up(r > 0.0, half_cmp(r), fl < 0.0, (fl as i64) & 1 == 1);
        let raw = fl + if up { 1.0 } else { 0.0 };
        match self.overflow {
            Overflow::Saturate => raw.clamp(self.lo, self.hi) as i64,
            // |raw| <= 2^51 and the word has at most 53 bits: the other actions in i128, exactly
            o => self.format.overflow_rounded(raw as i64 as i128, fl as i64 as i128, o) as i64,
        }
    }
}

/// `2^e` as f64 (exact for |e| <= 1022).
fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}

/// `v * 2^e`, exact whenever the result is a normal number (split in steps so 2^e never overflows).
fn scale_pow2(v: f64, e: i32) -> f64 {
    let mut y = v;
    let mut e = e;
    while e > 1000 {
        y *= pow2(1000);
        e -= 1000;
    }
    while e < -1000 {
        y *= pow2(-1000);
        e += 1000;
    }
    y * pow2(e)
}

/// `y` rounded to an integer by `rounding`, exactly, with `floor(y)`; `None` beyond the `i128` range.
fn round_exact(y: f64, rounding: Rounding) -> Option<(i128, i128)> {
    let fl = y.floor();
    let r = y - fl; // exact: fl and y share the exponent range, and y - floor(y) is in [0, 1)
    let odd = (fl / 2.0).floor() * 2.0 != fl;
    let up = rounding.rounds_up(r > 0.0, half_cmp(r), fl < 0.0, odd);
    let v = fl + if up { 1.0 } else { 0.0 };
    (v.abs() < 1.7e38).then_some((v as i128, fl as i128))
}

/// How a remainder in `[0, 1)` compares with one half.
#[inline(always)]
fn half_cmp(r: f64) -> Ordering {
    if r < 0.5 {
        Ordering::Less
    } else if r == 0.5 {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

/// A finite nonzero integer-valued `y` as `m * 2^e` with `|m| < 2^53` (for `|y| >= 2^53`, `e >= 0`).
fn integer_parts(y: f64) -> (i64, u32) {
    let bits = y.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let mant = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
    let m = if y < 0.0 { -(mant as i64) } else { mant as i64 };
    (m, u32::try_from(exp - 1075).unwrap_or(0))
}

/// Bit `w` of `raw * 2^e` (two's complement, sign-extended).
fn bit_of_shifted(raw: i128, e: u32, w: u32) -> bool {
    w >= e && (raw >> (w - e).min(127)) & 1 == 1
}

/// `raw / 2^s` rounded by `rounding`, with the exact integer formulas; also `floor(raw / 2^s)`.
fn shift_right_rounded(raw: i128, s: u32, rounding: Rounding) -> (i128, i128) {
    let (floor, inexact, half) = if s <= 127 {
        let rem = raw & (i128::MAX >> (127 - s)); // in [0, 2^s)
        (raw >> s, rem != 0, rem.cmp(&(1i128 << (s - 1))))
    } else {
        // |raw| <= 2^127 <= 2^(s-1): the remainder is raw, or 2^s + raw when negative
        let half = match (raw < 0, s == 128 && raw == i128::MIN) {
            (false, _) => Ordering::Less,
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
        };
        (raw >> 127, raw != 0, half)
    };
    (floor + i128::from(rounding.rounds_up(inexact, half, floor < 0, floor & 1 == 1)), floor)
}
