use std::fmt;
use std::str::FromStr;

use crate::NumericError;

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
/// MATLAB allows: `q10.-2` is `fi(v, 1, 8, -2)`.
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

/// MATLAB's rounding methods (`fimath` `RoundingMethod`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// To nearest, ties toward +inf (MATLAB's default, `Nearest`).
    #[default]
    Nearest,
    /// To nearest, ties away from zero (`Round`).
    Round,
    /// To nearest, ties to even (`Convergent`).
    Convergent,
    /// Toward -inf (`Floor`).
    Floor,
    /// Toward +inf (`Ceiling`).
    Ceiling,
    /// Toward zero (`Zero`, also called `Fix`).
    Zero,
}

/// MATLAB's overflow actions (`fimath` `OverflowAction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Clamp to the format's range (MATLAB's default).
    #[default]
    Saturate,
    /// Keep the low `w` bits (two's complement for signed formats).
    Wrap,
}

impl Rounding {
    /// All methods.
    pub const ALL: [Rounding; 6] =
        [Self::Nearest, Self::Round, Self::Convergent, Self::Floor, Self::Ceiling, Self::Zero];

    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nearest => "nearest",
            Self::Round => "round",
            Self::Convergent => "convergent",
            Self::Floor => "floor",
            Self::Ceiling => "ceil",
            Self::Zero => "zero",
        }
    }
}

impl FromStr for Rounding {
    type Err = NumericError;
    fn from_str(s: &str) -> Result<Self, NumericError> {
        match s.to_ascii_lowercase().as_str() {
            "nearest" => Ok(Self::Nearest),
            "round" => Ok(Self::Round),
            "convergent" => Ok(Self::Convergent),
            "floor" => Ok(Self::Floor),
            "ceil" | "ceiling" => Ok(Self::Ceiling),
            "zero" | "fix" => Ok(Self::Zero),
            _ => Err(NumericError::Parse {
                what: "rounding",
                text: s.to_string(),
                valid: "nearest, round, convergent, floor, ceil or zero",
            }),
        }
    }
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Overflow {
    type Err = NumericError;
    fn from_str(s: &str) -> Result<Self, NumericError> {
        match s.to_ascii_lowercase().as_str() {
            "saturate" => Ok(Self::Saturate),
            "wrap" => Ok(Self::Wrap),
            _ => Err(NumericError::Parse { what: "overflow", text: s.to_string(), valid: "saturate or wrap" }),
        }
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Saturate => "saturate",
            Self::Wrap => "wrap",
        })
    }
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
    /// NaN gives 0; ±inf the largest/smallest value (0 under `Wrap`). MATLAB's constructor
    /// `fi(v, s, w, f)` is `quantize(v, Nearest, Saturate)`.
    ///
    /// Exact: the scaling by `2^f` is exact in binary floating point and the rounding inspects the
    /// exact remainder; no float rounding shortcut is taken.
    pub fn quantize(self, v: f64, rounding: Rounding, overflow: Overflow) -> i128 {
        if v.is_nan() {
            return 0;
        }
        if v.is_infinite() {
            return match overflow {
                Overflow::Wrap => 0,
                Overflow::Saturate if v > 0.0 => self.raw_max(),
                Overflow::Saturate => self.raw_min(),
            };
        }
        let y = scale_pow2(v, self.frac_bits);
        let r = if y == 0.0 && v != 0.0 {
            // |y| underflowed below the smallest subnormal: only directed roundings move off zero
            match (rounding, v > 0.0) {
                (Rounding::Ceiling, true) => 1,
                (Rounding::Floor, false) => -1,
                _ => 0,
            }
        } else {
            match round_exact(y, rounding) {
                Some(r) => r,
                // beyond i128: saturate to the range; wrap keeps low bits, which are all 0 that far out
                None => {
                    return match overflow {
                        Overflow::Saturate if y > 0.0 => self.raw_max(),
                        Overflow::Saturate => self.raw_min(),
                        Overflow::Wrap => 0,
                    }
                }
            }
        };
        self.overflow(r, overflow)
    }

    /// Applies the overflow action to a stored integer of this format's fraction length.
    pub fn overflow(self, raw: i128, overflow: Overflow) -> i128 {
        match overflow {
            Overflow::Saturate => raw.clamp(self.raw_min(), self.raw_max()),
            // the low w bits, sign-extended when signed (w <= 128 signed, <= 127 unsigned: no shift overflows)
            Overflow::Wrap if self.signed => {
                let unused = MAX_WORD_BITS - self.word_bits;
                (raw << unused) >> unused
            }
            Overflow::Wrap => raw & (i128::MAX >> (MAX_WORD_BITS - 1 - self.word_bits)),
        }
    }

    /// The exact sum `a + b` of two stored integers of this format, then `overflow` (a sum beyond
    /// `i128`, possible for 127- and 128-bit words, saturates or wraps like any other overflow).
    pub fn add(self, a: i128, b: i128, overflow: Overflow) -> i128 {
        match (a.checked_add(b), overflow) {
            (Some(s), _) => self.overflow(s, overflow),
            // the low 128 bits of the true sum; every word length divides 2^128
            (None, Overflow::Wrap) => self.overflow(a.wrapping_add(b), overflow),
            (None, Overflow::Saturate) if a > 0 => self.raw_max(),
            (None, Overflow::Saturate) => self.raw_min(),
        }
    }

    /// Re-expresses a stored integer of fraction length `from_frac` in this format: shifted to this
    /// fraction length with `rounding` (the exact integer formulas of `fixed-point.md`), then `overflow`.
    pub fn requantize(self, raw: i128, from_frac: i32, rounding: Rounding, overflow: Overflow) -> i128 {
        let s = i64::from(from_frac) - i64::from(self.frac_bits);
        let shifted = if s > 0 {
            shift_right_rounded(raw, u32::try_from(s).unwrap_or(u32::MAX), rounding)
        } else {
            let left = s.unsigned_abs();
            match (left < 127).then(|| raw.checked_mul(1i128 << left)).flatten() {
                Some(v) => v,
                None if raw == 0 => 0,
                // too large for i128: saturate, or wrap (the low bits are all zero that far out)
                None => {
                    return match overflow {
                        Overflow::Saturate if raw > 0 => self.raw_max(),
                        Overflow::Saturate => self.raw_min(),
                        Overflow::Wrap => 0,
                    }
                }
            }
        };
        self.overflow(shifted, overflow)
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

    /// `q1.7`, `uq8.8`, `q10.-2`, or MATLAB's `s8,7` / `u16,8`.
    fn from_str(text: &str) -> Result<Self, NumericError> {
        let t = text.trim().to_ascii_lowercase();
        let bad = || NumericError::Parse {
            what: "fixed-point format",
            text: text.to_string(),
            valid: "qI.F (signed, I integer bits including the sign, e.g. q1.7 = fi(v,1,8,7)), uqI.F, sW,F or uW,F",
        };
        if let Some(rest) = t.strip_prefix("uq").map(|r| (false, r)).or_else(|| t.strip_prefix('q').map(|r| (true, r)))
        {
            let (signed, body) = rest;
            let (i, f) = body.split_once('.').ok_or_else(bad)?;
            let (i, f): (i32, i32) = (i.parse().map_err(|_| bad())?, f.parse().map_err(|_| bad())?);
            let w = i64::from(i) + i64::from(f);
            let Ok(w) = u32::try_from(w) else {
                let word_bits = if w < 0 { 0 } else { u32::MAX };
                let (min, max) = if signed { (2, MAX_WORD_BITS) } else { (1, MAX_WORD_BITS - 1) };
                return Err(NumericError::WordBits { word_bits, min, max });
            };
            return Self::new(signed, w, f);
        }
        if let Some((signed, body)) =
            t.strip_prefix('s').map(|r| (true, r)).or_else(|| t.strip_prefix('u').map(|r| (false, r)))
        {
            let (w, f) = body.split_once(',').ok_or_else(bad)?;
            return Self::new(signed, w.trim().parse().map_err(|_| bad())?, f.trim().parse().map_err(|_| bad())?);
        }
        Err(bad())
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
        let up = match self.rounding {
            Rounding::Floor => false,
            Rounding::Ceiling => r > 0.0,
            Rounding::Zero => y < 0.0 && r > 0.0,
            Rounding::Nearest => r >= 0.5,
            Rounding::Round => r > 0.5 || (r == 0.5 && y > 0.0),
            Rounding::Convergent => r > 0.5 || (r == 0.5 && (fl as i64) & 1 == 1),
        };
        let raw = fl + if up { 1.0 } else { 0.0 };
        match self.overflow {
            Overflow::Saturate => raw.clamp(self.lo, self.hi) as i64,
            // |raw| <= 2^51 and the word has at most 53 bits: wrap in i64
            Overflow::Wrap => self.format.overflow(raw as i64 as i128, Overflow::Wrap) as i64,
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

/// `y` rounded to an integer by `rounding`, exactly; `None` beyond the `i128` range.
fn round_exact(y: f64, rounding: Rounding) -> Option<i128> {
    let fl = y.floor();
    let r = y - fl; // exact: fl and y share the exponent range, and y - floor(y) is in [0, 1)
    let up = match rounding {
        Rounding::Floor => false,
        Rounding::Ceiling => r > 0.0,
        Rounding::Zero => y < 0.0 && r > 0.0,
        Rounding::Nearest => r >= 0.5,
        Rounding::Round => r > 0.5 || (r == 0.5 && y > 0.0),
        Rounding::Convergent => r > 0.5 || (r == 0.5 && (fl / 2.0).floor() * 2.0 != fl),
    };
    let v = fl + if up { 1.0 } else { 0.0 };
    (v.abs() < 1.7e38).then_some(v as i128)
}

/// `raw / 2^s` rounded by `rounding`, with the exact integer formulas.
fn shift_right_rounded(raw: i128, s: u32, rounding: Rounding) -> i128 {
    if s >= 127 {
        // |raw| < 2^127 <= half of 2^s: only directed roundings leave zero
        return match rounding {
            Rounding::Floor if raw < 0 => -1,
            Rounding::Ceiling if raw > 0 => 1,
            _ => 0,
        };
    }
    let q = raw >> s; // floor
    let rem = raw - (q << s); // in [0, 2^s)
    let half = 1i128 << (s - 1);
    let up = match rounding {
        Rounding::Floor => false,
        Rounding::Ceiling => rem > 0,
        Rounding::Zero => raw < 0 && rem > 0,
        Rounding::Nearest => rem >= half,
        Rounding::Round => rem > half || (rem == half && raw > 0),
        Rounding::Convergent => rem > half || (rem == half && q & 1 == 1),
    };
    q + i128::from(up)
}
