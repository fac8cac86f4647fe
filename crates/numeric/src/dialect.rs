//! Fixed-point types in every dialect's syntax: convmat's `qI.F`, MATLAB's `numerictype(s,w,f)` /
//! `fi(s,w,f)` / `sfix8_En7`, Vitis HLS's `ap_fixed<W,I,Q,O>`, hls4ml's `fixed<W,I>`, integer names
//! (`int8`, `ap_int<8>`), and QONNX's `Quant` attributes for printing.

use std::fmt;
use std::str::FromStr;

use crate::{Modes, NumericError, Overflow, QFormat, Rounding, MAX_WORD_BITS};

/// A fixed-point type as a dialect writes it: a [`QFormat`] and, where the dialect's syntax carries them,
/// the rounding and overflow of every cast into it.
///
/// | text | format | rounding, overflow |
/// |---|---|---|
/// | `q1.7`, `uq0.8`, `s8,7`, `u8,4` | `fi(v,1,8,7)`, ... | none |
/// | `fi(1,8,7)`, `numerictype(1,8,7)`, `sfix8_En7`, `ufix8_En8` | signedness, word, fraction | none |
/// | `int8`, `uint8`, `int16`, `uint16`, `int32`, `int4`, `uint4`, ... | integers: fraction 0 | none |
/// | `ap_fixed<10,4>`, `ap_ufixed<8,0>` (`W` bits, `I` integer bits with the sign) | `W`, `F = W - I` | `AP_TRN`, `AP_WRAP` (Vitis' defaults) |
/// | `ap_fixed<10,4,AP_RND,AP_SAT>`, `ap_fixed<10,4,AP_RND>` | as above | as written (the overflow defaults to `AP_WRAP`) |
/// | `fixed<16,6>`, `ufixed<8,0,RND_CONV,SAT>` (hls4ml) | as `ap_fixed` | as `ap_fixed` |
/// | `ap_int<8>`, `ap_uint<4>`, `int<8>`, `uint<4>` (hls4ml) | integers | toward zero, wrap (C's conversion, as Vitis does) |
///
/// `I` may exceed `W` or be negative, as Vitis allows (`ap_fixed<4,6>` steps by 4, `ap_fixed<4,-2>` holds
/// ±2^-3). Saturation bits (a fifth `ap_fixed` parameter) other than 0 and `ap_ufixed` with `AP_WRAP_SM`
/// are refused (the latter as Vitis does). Names are read case-insensitively and spaces are ignored.
///
/// ```
/// use convmat_numeric::{Dialect, FixedType, Overflow, Rounding};
/// let t: FixedType = "ap_fixed<10,4,AP_RND,AP_SAT>".parse().unwrap();
/// assert_eq!(t.format.to_string(), "q4.6");
/// assert_eq!((t.rounding, t.overflow), (Some(Rounding::Nearest), Some(Overflow::Saturate)));
/// // hls4ml #68: ap_fixed<10,4> truncates and wraps, so 8.99 becomes -7.015625
/// let t: FixedType = "ap_fixed<10,4>".parse().unwrap();
/// let m = t.modes(None, None).unwrap();
/// assert_eq!(t.format.to_f64(t.format.quantize(8.99, m.rounding, m.overflow)), -7.015625);
/// assert_eq!(t.format.to_dialect(Dialect::Matlab), "numerictype(1,10,6)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FixedType {
    /// The format.
    pub format: QFormat,
    /// The rounding the text carries, if any.
    pub rounding: Option<Rounding>,
    /// The overflow action the text carries, if any.
    pub overflow: Option<Overflow>,
}

/// A dialect to print a format in ([`QFormat::to_dialect`], [`FixedType::to_dialect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// convmat's `qI.F` / `uqI.F`.
    Q,
    /// MATLAB's `numerictype(s,w,f)`.
    Matlab,
    /// Vitis HLS's `ap_fixed<W,I>` / `ap_ufixed<W,I>` (with `Q, O` when a type carries them).
    ApFixed,
    /// hls4ml's precision string `fixed<W,I>` / `ufixed<W,I>` (its newer spelling of `ap_fixed`).
    Hls4ml,
    /// QONNX `Quant` attributes ([`QonnxQuant`]).
    Qonnx,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 5] = [Self::Q, Self::Matlab, Self::ApFixed, Self::Hls4ml, Self::Qonnx];

    /// The name [`FromStr`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Q => "q",
            Self::Matlab => "matlab",
            Self::ApFixed => "ap_fixed",
            Self::Hls4ml => "hls4ml",
            Self::Qonnx => "qonnx",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dialect {
    type Err = NumericError;
    fn from_str(s: &str) -> Result<Self, NumericError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "q" => Self::Q,
            "matlab" | "fi" | "numerictype" => Self::Matlab,
            "ap_fixed" | "vitis" | "hls" => Self::ApFixed,
            "hls4ml" => Self::Hls4ml,
            "qonnx" => Self::Qonnx,
            _ => {
                return Err(NumericError::Parse {
                    what: "dialect",
                    text: s.to_string(),
                    valid: "q, matlab, ap_fixed, hls4ml or qonnx",
                })
            }
        })
    }
}

/// A QONNX `Quant` node's attributes and constant inputs for a format: `scale = 2^-F`, `zeropt = 0`,
/// `bitwidth = W`, `signed`, `narrow` (a symmetric saturation on a signed type) and `rounding_mode`.
///
/// ```
/// use convmat_numeric::{FixedType, QonnxQuant};
/// let t: FixedType = "ap_fixed<8,1,AP_RND_CONV,AP_SAT_SYM>".parse().unwrap();
/// let q = QonnxQuant::new(t).unwrap();
/// assert_eq!((q.bitwidth, q.signed, q.narrow, q.rounding_mode), (8, true, true, "ROUND"));
/// assert_eq!(q.scale(), 1.0 / 128.0);
/// assert_eq!(q.to_string(), "scale=2^-7 zeropt=0 bitwidth=8 signed=1 narrow=1 rounding_mode=ROUND");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct QonnxQuant {
    /// `log2(scale)`: `-F`.
    pub scale_exponent: i32,
    /// The zero point (always 0: binary fixed point is symmetric around zero).
    pub zeropt: i64,
    /// The bit width `W`.
    pub bitwidth: u32,
    /// `signed`.
    pub signed: bool,
    /// `narrow`: the most negative value is not used.
    pub narrow: bool,
    /// `rounding_mode` (`ROUND`, `CEIL`, `FLOOR`, `UP`, `DOWN`, `HALF_UP`, `HALF_DOWN`).
    pub rounding_mode: &'static str,
}

impl QonnxQuant {
    /// The `Quant` node of `t`: a type without modes takes QONNX's defaults (`ROUND`, `narrow=0`).
    ///
    /// # Errors
    /// A rounding QONNX lacks (`nearest`, `nearest_min_inf`), or an overflow other than a saturation
    /// (`Quant` always saturates), or a symmetric saturation on an unsigned type (QONNX's unsigned
    /// `narrow` drops the largest value instead).
    pub fn new(t: FixedType) -> Result<Self, NumericError> {
        let rounding = t.rounding.unwrap_or(Rounding::Convergent);
        let unsupported =
            |what: &'static str, value: String| NumericError::Unsupported { dialect: "QONNX", what, value };
        let rounding_mode =
            rounding.qonnx_name().ok_or_else(|| unsupported("rounding", rounding.as_str().to_string()))?;
        let narrow = match t.overflow.unwrap_or(Overflow::Saturate) {
            Overflow::Saturate => false,
            Overflow::SaturateSymmetric if t.format.signed() => true,
            o => return Err(unsupported("overflow", format!("{o} on {}", t.format))),
        };
        Ok(Self {
            scale_exponent: -t.format.frac_bits(),
            zeropt: 0,
            bitwidth: t.format.word_bits(),
            signed: t.format.signed(),
            narrow,
            rounding_mode,
        })
    }

    /// `scale` as `f64` (`2^scale_exponent`, 0 or inf beyond f64's exponents).
    pub fn scale(&self) -> f64 {
        2f64.powi(self.scale_exponent)
    }
}

impl fmt::Display for QonnxQuant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scale=2^{} zeropt={} bitwidth={} signed={} narrow={} rounding_mode={}",
            self.scale_exponent,
            self.zeropt,
            self.bitwidth,
            u8::from(self.signed),
            u8::from(self.narrow),
            self.rounding_mode
        )
    }
}

impl QFormat {
    /// The format in `dialect`'s syntax (without rounding or overflow): `q1.7`, `numerictype(1,8,7)`,
    /// `ap_fixed<8,1>`, `fixed<8,1>`, or QONNX's attributes with its default rounding (`ROUND`).
    ///
    /// Every form but QONNX's reads back as this format (an `ap_fixed` string also brings Vitis's
    /// default modes, see [`FixedType`]).
    pub fn to_dialect(self, dialect: Dialect) -> String {
        let (w, i, f, s) = (self.word_bits(), self.int_bits(), self.frac_bits(), self.signed());
        let u = if s { "" } else { "u" };
        match dialect {
            Dialect::Q => self.to_string(),
            Dialect::Matlab => format!("numerictype({},{w},{f})", u8::from(s)),
            Dialect::ApFixed => format!("ap_{u}fixed<{w},{i}>"),
            Dialect::Hls4ml => format!("{u}fixed<{w},{i}>"),
            Dialect::Qonnx => QonnxQuant::new(FixedType::plain(self)).expect("ROUND and saturate exist").to_string(),
        }
    }
}

impl FixedType {
    /// A format that carries no rounding or overflow.
    pub fn plain(format: QFormat) -> Self {
        Self { format, rounding: None, overflow: None }
    }

    /// The modes of a cast into this type: the type's own, else `rounding` / `overflow` given separately
    /// (a flag), else MATLAB's `Nearest` / `Saturate`.
    ///
    /// # Errors
    /// A rounding or overflow given separately that differs from the one the type carries
    /// ([`NumericError::ModeConflict`]): convmat refuses to guess which one was meant. A sign-magnitude
    /// wrap on an unsigned format (Vitis HLS refuses it too).
    pub fn modes(self, rounding: Option<Rounding>, overflow: Option<Overflow>) -> Result<Modes, NumericError> {
        let conflict = |overflow, given, carried| NumericError::ModeConflict { overflow, given, carried, ty: self };
        match (rounding, self.rounding) {
            (Some(g), Some(c)) if g != c => return Err(conflict(false, g.as_str(), c.as_str())),
            _ => {}
        }
        match (overflow, self.overflow) {
            (Some(g), Some(c)) if g != c => return Err(conflict(true, g.as_str(), c.as_str())),
            _ => {}
        }
        let m = Modes {
            rounding: self.rounding.or(rounding).unwrap_or(Modes::MATLAB.rounding),
            overflow: self.overflow.or(overflow).unwrap_or(Modes::MATLAB.overflow),
        };
        if m.overflow == Overflow::WrapSignMagnitude && !self.format.signed() {
            // as Vitis HLS refuses ap_ufixed<..., AP_WRAP_SM>
            return Err(NumericError::Unsupported {
                dialect: "an unsigned type",
                what: "overflow",
                value: format!("wrap_sm ({}: sign-magnitude needs a sign)", self.format),
            });
        }
        Ok(m)
    }

    /// The type in `dialect`'s syntax. `q` and MATLAB's `numerictype` print the format only (their type
    /// syntax has no modes); `ap_fixed` and hls4ml add `Q, O` when the type carries modes other than
    /// Vitis's defaults (a missing one is written as its default); QONNX gives [`QonnxQuant`]'s attributes.
    ///
    /// # Errors
    /// A mode the dialect lacks (`ceil` in `ap_fixed`, `wrap` in QONNX, ...).
    pub fn to_dialect(self, dialect: Dialect) -> Result<String, NumericError> {
        let ap = matches!(dialect, Dialect::ApFixed | Dialect::Hls4ml);
        if dialect == Dialect::Qonnx {
            return QonnxQuant::new(self).map(|q| q.to_string());
        }
        if !ap || (self.rounding.is_none() && self.overflow.is_none()) {
            return Ok(self.format.to_dialect(dialect));
        }
        let m = Modes {
            rounding: self.rounding.unwrap_or(Modes::AP_FIXED.rounding),
            overflow: self.overflow.unwrap_or(Modes::AP_FIXED.overflow),
        };
        let q = m.rounding.ap_name().ok_or_else(|| NumericError::Unsupported {
            dialect: "ap_fixed",
            what: "rounding",
            value: m.rounding.to_string(),
        })?;
        if m.overflow == Overflow::WrapSignMagnitude && !self.format.signed() {
            return Err(NumericError::Unsupported {
                dialect: "ap_fixed",
                what: "overflow",
                value: "wrap_sm on an unsigned type".into(),
            });
        }
        let base = self.format.to_dialect(dialect);
        let head = base.trim_end_matches('>');
        let (q, o) =
            if dialect == Dialect::Hls4ml { (&q[3..], &m.overflow.ap_name()[3..]) } else { (q, m.overflow.ap_name()) };
        Ok(if m == Modes::AP_FIXED { base } else { format!("{head},{q},{o}>") })
    }
}

impl fmt::Display for FixedType {
    /// `qI.F` for a type without modes; otherwise its `ap_fixed` spelling, or `qI.F (rounding, overflow)`
    /// where `ap_fixed` lacks a mode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.rounding, self.overflow) {
            (None, None) => write!(f, "{}", self.format),
            (r, o) => match self.to_dialect(Dialect::ApFixed) {
                Ok(s) => f.write_str(&s),
                Err(_) => {
                    let show = |x: Option<String>| x.unwrap_or_else(|| "-".into());
                    write!(
                        f,
                        "{} ({}, {})",
                        self.format,
                        show(r.map(|r| r.to_string())),
                        show(o.map(|o| o.to_string()))
                    )
                }
            },
        }
    }
}

const VALID: &str = "qI.F (signed, I integer bits including the sign, e.g. q1.7 = fi(v,1,8,7)), uqI.F, sW,F, uW,F, \
                     fi(s,w,f), numerictype(s,w,f), sfix8_En7, intN/uintN (int8, uint4, ...), ap_fixed<W,I[,Q,O]>, \
                     ap_ufixed<W,I[,Q,O]>, ap_int<W>, ap_uint<W>, fixed<W,I>, ufixed<W,I>, int<W>, uint<W>";

impl FromStr for FixedType {
    type Err = NumericError;

    /// Any dialect's type: see the table on [`FixedType`].
    fn from_str(text: &str) -> Result<Self, NumericError> {
        let spelled: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let t = spelled.to_ascii_lowercase(); // the same byte offsets as `spelled`
        let bad = || NumericError::Parse { what: "fixed-point format", text: text.to_string(), valid: VALID };
        let int = |s: &str| s.parse::<i32>().map_err(|_| bad());
        let word = |s: &str| s.parse::<u32>().map_err(|_| bad());
        let plain = |f: QFormat| Self::plain(f);

        // <...> families: ap_fixed, ap_ufixed, fixed, ufixed, ap_int, ap_uint, int, uint
        if let Some((family, rest)) = t.split_once('<') {
            rest.strip_suffix('>').ok_or_else(bad)?;
            // the arguments as written: mode names keep their case in error messages
            let args: Vec<&str> = spelled[family.len() + 1..spelled.len() - 1].split(',').collect();
            let (signed, fixed) = match family {
                "ap_fixed" | "fixed" => (true, true),
                "ap_ufixed" | "ufixed" => (false, true),
                "ap_int" | "int" => (true, false),
                "ap_uint" | "uint" => (false, false),
                _ => return Err(bad()),
            };
            if !fixed {
                let [w] = args[..] else { return Err(bad()) };
                let format = QFormat::new(signed, word(w)?, 0)?;
                return Ok(Self { format, rounding: Some(Rounding::Zero), overflow: Some(Overflow::Wrap) });
            }
            if !(2..=5).contains(&args.len()) {
                return Err(bad());
            }
            let (w, i) = (word(args[0])?, int(args[1])?);
            let frac = i64::from(w) - i64::from(i);
            let frac = i32::try_from(frac)
                .map_err(|_| NumericError::FracBits { frac_bits: i32::MAX, max: crate::MAX_FRAC_BITS })?;
            let format = QFormat::new(signed, w, frac)?;
            let rounding = args.get(2).map(|q| q.parse::<Rounding>()).transpose()?.unwrap_or(Modes::AP_FIXED.rounding);
            let overflow = args.get(3).map(|o| o.parse::<Overflow>()).transpose()?.unwrap_or(Modes::AP_FIXED.overflow);
            if let Some(n) = args.get(4) {
                if word(n)? != 0 {
                    return Err(NumericError::Unsupported {
                        dialect: "convmat",
                        what: "ap_fixed saturation bits",
                        value: format!("N = {n} in '{text}' (only 0)"),
                    });
                }
            }
            if rounding.ap_name().is_none() {
                return Err(NumericError::Unsupported {
                    dialect: "ap_fixed",
                    what: "rounding",
                    value: rounding.to_string(),
                });
            }
            if !signed && overflow == Overflow::WrapSignMagnitude {
                return Err(NumericError::Unsupported {
                    dialect: "ap_fixed",
                    what: "overflow",
                    value: format!("AP_WRAP_SM on the unsigned '{text}'"),
                });
            }
            return Ok(Self { format, rounding: Some(rounding), overflow: Some(overflow) });
        }
        // fi(s,w,f) / numerictype(s,w,f)
        if let Some(args) =
            t.strip_prefix("numerictype(").or_else(|| t.strip_prefix("fi(")).and_then(|r| r.strip_suffix(')'))
        {
            let [s, w, f] = args.split(',').collect::<Vec<_>>()[..] else { return Err(bad()) };
            let signed = match s {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => return Err(bad()),
            };
            return Ok(plain(QFormat::new(signed, word(w)?, int(f)?)?));
        }
        // Simulink: sfix16_En15, ufix8_En4, sfix8_E2 (fraction -2), sfix8
        if let Some((signed, rest)) =
            t.strip_prefix("sfix").map(|r| (true, r)).or_else(|| t.strip_prefix("ufix").map(|r| (false, r)))
        {
            let (w, f) = match rest.split_once('_') {
                None => (rest, 0),
                Some((w, e)) => match (e.strip_prefix("en"), e.strip_prefix('e')) {
                    (Some(f), _) => (w, int(f)?),
                    (None, Some(f)) => (w, -int(f)?),
                    _ => return Err(bad()),
                },
            };
            return Ok(plain(QFormat::new(signed, word(w)?, f)?));
        }
        // int8, uint4, ...: integers
        if let Some((signed, w)) =
            t.strip_prefix("uint").map(|r| (false, r)).or_else(|| t.strip_prefix("int").map(|r| (true, r)))
        {
            return Ok(plain(QFormat::new(signed, word(w)?, 0)?));
        }
        parse_q(&t, bad).map(plain)
    }
}

/// `q1.7`, `uq8.8`, `q10.-2`, or MATLAB's `s8,7` / `u16,8` (lowercase, no spaces).
fn parse_q(t: &str, bad: impl Fn() -> NumericError) -> Result<QFormat, NumericError> {
    if let Some((signed, body)) =
        t.strip_prefix("uq").map(|r| (false, r)).or_else(|| t.strip_prefix('q').map(|r| (true, r)))
    {
        let (i, f) = body.split_once('.').ok_or_else(&bad)?;
        let (i, f): (i32, i32) = (i.parse().map_err(|_| bad())?, f.parse().map_err(|_| bad())?);
        let w = i64::from(i) + i64::from(f);
        let Ok(w) = u32::try_from(w) else {
            let word_bits = if w < 0 { 0 } else { u32::MAX };
            let (min, max) = if signed { (2, MAX_WORD_BITS) } else { (1, MAX_WORD_BITS - 1) };
            return Err(NumericError::WordBits { word_bits, min, max });
        };
        return QFormat::new(signed, w, f);
    }
    if let Some((signed, body)) =
        t.strip_prefix('s').map(|r| (true, r)).or_else(|| t.strip_prefix('u').map(|r| (false, r)))
    {
        let (w, f) = body.split_once(',').ok_or_else(&bad)?;
        return QFormat::new(signed, w.parse().map_err(|_| bad())?, f.parse().map_err(|_| bad())?);
    }
    Err(bad())
}
