//! The nine roundings and five overflow actions of MATLAB `fi`, Vitis HLS `ap_fixed`, QONNX and ONNX, each
//! with every dialect's spelling.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::NumericError;

/// How a value between two stored integers is rounded: the nine methods of MATLAB `fi`, Vitis HLS
/// `ap_fixed` and QONNX `Quant` (ONNX rounds ties to even: [`Rounding::Convergent`]).
///
/// | rounding | MATLAB fi | ap_fixed | QONNX | convmat |
/// |---|---|---|---|---|
/// | toward −∞ | `Floor` | `AP_TRN` | `FLOOR` | `floor` |
/// | toward +∞ | `Ceiling` | — | `CEIL` | `ceil` |
/// | toward 0 | `Zero` (`fix`) | `AP_TRN_ZERO` | `DOWN` | `zero` |
/// | away from 0 | — | — | `UP` | `away` |
/// | ties to even | `Convergent` | `AP_RND_CONV` | `ROUND` (`HALF_EVEN`) | `convergent` |
/// | ties away from 0 | `Round` | `AP_RND_INF` | `HALF_UP` | `round` |
/// | ties toward 0 | — | `AP_RND_ZERO` | `HALF_DOWN` | `nearest_zero` |
/// | ties toward +∞ | `Nearest` (default) | `AP_RND` | — | `nearest` |
/// | ties toward −∞ | — | `AP_RND_MIN_INF` | — | `nearest_min_inf` |
///
/// Names are read case-insensitively, with or without ap_fixed's `AP_` prefix (hls4ml writes `RND_CONV`).
/// One spelling is ambiguous: MATLAB's `Round` rounds ties away from zero, QONNX's `ROUND` ties to even.
/// A bare `round` is MATLAB's (convmat's flags accepted it first); write QONNX's as `half_even`,
/// `qonnx:ROUND` or read a QONNX attribute with [`Rounding::from_qonnx`]. Any name may carry a dialect
/// prefix (`matlab:`, `ap:`, `qonnx:`) that decides such a case.
///
/// ```
/// use convmat_numeric::Rounding;
/// for text in ["floor", "AP_TRN", "FLOOR", "trn"] {
///     assert_eq!(text.parse::<Rounding>().unwrap(), Rounding::Floor);
/// }
/// assert_eq!("HALF_DOWN".parse::<Rounding>().unwrap(), Rounding::NearestTiesToZero);
/// assert_eq!("round".parse::<Rounding>().unwrap(), Rounding::Round); // MATLAB's
/// assert_eq!("qonnx:ROUND".parse::<Rounding>().unwrap(), Rounding::Convergent);
/// assert_eq!(Rounding::Convergent.ap_name(), Some("AP_RND_CONV"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rounding {
    /// To nearest, ties toward +inf (MATLAB's default `Nearest`, ap_fixed `AP_RND`).
    #[default]
    Nearest,
    /// To nearest, ties away from zero (MATLAB `Round`, `AP_RND_INF`, QONNX `HALF_UP`).
    Round,
    /// To nearest, ties to even (MATLAB `Convergent`, `AP_RND_CONV`, QONNX `ROUND`, ONNX).
    Convergent,
    /// Toward -inf (MATLAB `Floor`, `AP_TRN`, QONNX `FLOOR`).
    Floor,
    /// Toward +inf (MATLAB `Ceiling`, QONNX `CEIL`).
    Ceiling,
    /// Toward zero (MATLAB `Zero`, also called `Fix`; `AP_TRN_ZERO`; QONNX `DOWN`).
    Zero,
    /// Away from zero (QONNX `UP`).
    AwayFromZero,
    /// To nearest, ties toward zero (`AP_RND_ZERO`, QONNX `HALF_DOWN`).
    NearestTiesToZero,
    /// To nearest, ties toward -inf (`AP_RND_MIN_INF`).
    NearestTiesToMinusInf,
}

/// What happens to a value beyond a format's range: the five actions of MATLAB `fi`, Vitis HLS `ap_fixed`
/// and QONNX `Quant`.
///
/// | overflow | MATLAB fi | ap_fixed | QONNX | convmat |
/// |---|---|---|---|---|
/// | clamp to the range | `Saturate` | `AP_SAT` | (always) | `saturate` |
/// | keep the low `w` bits | `Wrap` | `AP_WRAP` (default) | — | `wrap` |
/// | overflow gives 0 | — | `AP_SAT_ZERO` | — | `saturate_zero` |
/// | clamp to `[-max, max]` | — | `AP_SAT_SYM` | `narrow=1` (signed) | `saturate_sym` |
/// | sign-magnitude wrap | — | `AP_WRAP_SM` | — | `wrap_sm` |
///
/// On an unsigned format `saturate_sym` is `saturate` (Vitis HLS; QONNX's unsigned `narrow` instead
/// drops the largest value, which no mode here does), and `wrap_sm` is `wrap` (Vitis HLS refuses
/// `ap_ufixed` with `AP_WRAP_SM`, and so do convmat's type parser and `apply`).
///
/// ```
/// use convmat_numeric::Overflow;
/// assert_eq!("AP_SAT_SYM".parse::<Overflow>().unwrap(), Overflow::SaturateSymmetric);
/// assert_eq!("wrap".parse::<Overflow>().unwrap(), Overflow::Wrap);
/// assert!("clip".parse::<Overflow>().unwrap_err().to_string().contains("saturate_zero"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overflow {
    /// Clamp to the format's range (MATLAB's default, `AP_SAT`).
    #[default]
    Saturate,
    /// Keep the low `w` bits (two's complement for signed formats; `AP_WRAP`, ap_fixed's default).
    Wrap,
    /// A value beyond the range becomes zero (`AP_SAT_ZERO`).
    SaturateZero,
    /// Clamp to `[-max, max]`: the most negative stored integer is never produced (`AP_SAT_SYM`, QONNX
    /// `narrow=1` on signed types).
    SaturateSymmetric,
    /// Sign-magnitude wrap (`AP_WRAP_SM`): beyond the range, the low `w` bits, complemented when the
    /// first discarded bit differs from the new sign bit, as Vitis HLS's `ap_fixed_base.h` does.
    WrapSignMagnitude,
}

/// A rounding and an overflow action together: how one cast treats its value.
///
/// The default is MATLAB's `fi` constructor: `Nearest`, `Saturate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Modes {
    /// The rounding.
    pub rounding: Rounding,
    /// The overflow action.
    pub overflow: Overflow,
}

impl Modes {
    /// `rounding` and `overflow`.
    pub const fn new(rounding: Rounding, overflow: Overflow) -> Self {
        Self { rounding, overflow }
    }
    /// MATLAB's `fi` constructor: `Nearest`, `Saturate`.
    pub const MATLAB: Self = Self::new(Rounding::Nearest, Overflow::Saturate);
    /// Vitis HLS's `ap_fixed` defaults: `AP_TRN`, `AP_WRAP`.
    pub const AP_FIXED: Self = Self::new(Rounding::Floor, Overflow::Wrap);
}

impl fmt::Display for Modes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.rounding, self.overflow)
    }
}

/// A dialect whose spelling decides an ambiguous name (`matlab:round`, `qonnx:ROUND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NameSpace {
    Any,
    Matlab,
    Ap,
    Qonnx,
}

/// Splits an optional `dialect:` prefix off a mode name, lowercased.
fn namespace(text: &str) -> Option<(NameSpace, String)> {
    let t = text.trim().to_ascii_lowercase();
    let Some((prefix, name)) = t.split_once(':') else { return Some((NameSpace::Any, t)) };
    let ns = match prefix.trim() {
        "matlab" | "fi" => NameSpace::Matlab,
        "ap" | "ap_fixed" | "vitis" | "hls" | "hls4ml" => NameSpace::Ap,
        "qonnx" => NameSpace::Qonnx,
        _ => return None,
    };
    Some((ns, name.trim().to_string()))
}

impl Rounding {
    /// Every method: MATLAB's six first (in [`Rounding::MATLAB`]'s order), then the three it lacks.
    pub const ALL: [Rounding; 9] = [
        Self::Nearest,
        Self::Round,
        Self::Convergent,
        Self::Floor,
        Self::Ceiling,
        Self::Zero,
        Self::AwayFromZero,
        Self::NearestTiesToZero,
        Self::NearestTiesToMinusInf,
    ];
    /// MATLAB `fimath`'s six methods.
    pub const MATLAB: [Rounding; 6] =
        [Self::Nearest, Self::Round, Self::Convergent, Self::Floor, Self::Ceiling, Self::Zero];

    /// The command-line spelling (MATLAB's name where it has one).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nearest => "nearest",
            Self::Round => "round",
            Self::Convergent => "convergent",
            Self::Floor => "floor",
            Self::Ceiling => "ceil",
            Self::Zero => "zero",
            Self::AwayFromZero => "away",
            Self::NearestTiesToZero => "nearest_zero",
            Self::NearestTiesToMinusInf => "nearest_min_inf",
        }
    }

    /// MATLAB's `RoundingMethod` name, if MATLAB has the method.
    pub fn matlab_name(self) -> Option<&'static str> {
        Some(match self {
            Self::Nearest => "Nearest",
            Self::Round => "Round",
            Self::Convergent => "Convergent",
            Self::Floor => "Floor",
            Self::Ceiling => "Ceiling",
            Self::Zero => "Zero",
            _ => return None,
        })
    }

    /// The ap_fixed quantization mode (`AP_RND`, ...), if Vitis HLS has the method.
    pub fn ap_name(self) -> Option<&'static str> {
        Some(match self {
            Self::Nearest => "AP_RND",
            Self::Round => "AP_RND_INF",
            Self::Convergent => "AP_RND_CONV",
            Self::Floor => "AP_TRN",
            Self::Zero => "AP_TRN_ZERO",
            Self::NearestTiesToZero => "AP_RND_ZERO",
            Self::NearestTiesToMinusInf => "AP_RND_MIN_INF",
            Self::Ceiling | Self::AwayFromZero => return None,
        })
    }

    /// The QONNX `rounding_mode` attribute (`ROUND`, ...), if QONNX has the method.
    pub fn qonnx_name(self) -> Option<&'static str> {
        Some(match self {
            Self::Convergent => "ROUND",
            Self::Ceiling => "CEIL",
            Self::Floor => "FLOOR",
            Self::AwayFromZero => "UP",
            Self::Zero => "DOWN",
            Self::Round => "HALF_UP",
            Self::NearestTiesToZero => "HALF_DOWN",
            Self::Nearest | Self::NearestTiesToMinusInf => return None,
        })
    }

    /// A QONNX `rounding_mode` attribute, any case (`ROUND` is ties to even here).
    ///
    /// # Errors
    /// A name QONNX does not define.
    pub fn from_qonnx(text: &str) -> Result<Self, NumericError> {
        Self::parse_in(NameSpace::Qonnx, text.trim().to_ascii_lowercase().as_str(), text)
    }

    fn parse_in(ns: NameSpace, name: &str, text: &str) -> Result<Self, NumericError> {
        // ap_fixed's names with or without AP_ (hls4ml writes RND_CONV)
        let ap = name.strip_prefix("ap_").unwrap_or(name);
        let r = match (ns, name) {
            (NameSpace::Qonnx, "round") => Self::Convergent,
            (_, "nearest") | (_, "half_pos") => Self::Nearest,
            (_, "round") | (_, "half_up") | (_, "half_away") => Self::Round,
            (_, "convergent") | (_, "half_even") | (_, "ties_even") => Self::Convergent,
            (_, "floor") => Self::Floor,
            (_, "ceil") | (_, "ceiling") => Self::Ceiling,
            (_, "zero") | (_, "fix") | (_, "down") => Self::Zero,
            (_, "up") | (_, "away") => Self::AwayFromZero,
            (_, "half_down") | (_, "half_zero") | (_, "nearest_zero") => Self::NearestTiesToZero,
            (_, "half_neg") | (_, "nearest_min_inf") => Self::NearestTiesToMinusInf,
            _ => match ap {
                "rnd" => Self::Nearest,
                "rnd_inf" => Self::Round,
                "rnd_conv" => Self::Convergent,
                "trn" => Self::Floor,
                "trn_zero" => Self::Zero,
                "rnd_zero" => Self::NearestTiesToZero,
                "rnd_min_inf" => Self::NearestTiesToMinusInf,
                _ => {
                    return Err(NumericError::Parse {
                        what: "rounding",
                        text: text.to_string(),
                        valid: "nearest, round, convergent, floor, ceil, zero, away, nearest_zero, nearest_min_inf \
                                (MATLAB: Nearest Round Convergent Floor Ceiling Zero Fix; ap_fixed: AP_RND AP_RND_INF \
                                AP_RND_CONV AP_TRN AP_TRN_ZERO AP_RND_ZERO AP_RND_MIN_INF; QONNX: FLOOR CEIL DOWN UP \
                                HALF_UP HALF_DOWN, and qonnx:ROUND or half_even for ties to even)",
                    })
                }
            },
        };
        Ok(r)
    }

    /// Whether a value strictly between the integers `q` and `q + 1` (or equal to `q`) rounds up to
    /// `q + 1`, from what was discarded: `inexact` (a nonzero remainder), `half` (the remainder against
    /// one half), `negative` (the value's sign: `q < 0` when inexact) and `odd` (`q`'s lowest bit).
    ///
    /// The one rounding rule of the crate: `quantize`, `requantize` and `Quantizer` all call it.
    #[inline(always)]
    pub(crate) fn rounds_up(self, inexact: bool, half: Ordering, negative: bool, odd: bool) -> bool {
        use Ordering::{Equal, Greater};
        inexact
            && match self {
                Self::Floor => false,
                Self::Ceiling => true,
                Self::Zero => negative,
                Self::AwayFromZero => !negative,
                Self::Nearest => half != Ordering::Less,
                Self::NearestTiesToMinusInf => half == Greater,
                Self::Round => half == Greater || (half == Equal && !negative),
                Self::NearestTiesToZero => half == Greater || (half == Equal && negative),
                Self::Convergent => half == Greater || (half == Equal && odd),
            }
    }
}

impl FromStr for Rounding {
    type Err = NumericError;
    /// Any dialect's name (see the table on [`Rounding`]), any case, with an optional `dialect:` prefix.
    fn from_str(s: &str) -> Result<Self, NumericError> {
        let (ns, name) = namespace(s).ok_or_else(|| Self::parse_in(NameSpace::Any, "", s).unwrap_err())?;
        Self::parse_in(ns, &name, s)
    }
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Overflow {
    /// Every action: MATLAB's two first.
    pub const ALL: [Overflow; 5] =
        [Self::Saturate, Self::Wrap, Self::SaturateZero, Self::SaturateSymmetric, Self::WrapSignMagnitude];

    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Saturate => "saturate",
            Self::Wrap => "wrap",
            Self::SaturateZero => "saturate_zero",
            Self::SaturateSymmetric => "saturate_sym",
            Self::WrapSignMagnitude => "wrap_sm",
        }
    }

    /// MATLAB's `OverflowAction` name, if MATLAB has the action.
    pub fn matlab_name(self) -> Option<&'static str> {
        match self {
            Self::Saturate => Some("Saturate"),
            Self::Wrap => Some("Wrap"),
            _ => None,
        }
    }

    /// The ap_fixed overflow mode (`AP_SAT`, ...).
    pub fn ap_name(self) -> &'static str {
        match self {
            Self::Saturate => "AP_SAT",
            Self::Wrap => "AP_WRAP",
            Self::SaturateZero => "AP_SAT_ZERO",
            Self::SaturateSymmetric => "AP_SAT_SYM",
            Self::WrapSignMagnitude => "AP_WRAP_SM",
        }
    }
}

impl FromStr for Overflow {
    type Err = NumericError;
    /// Any dialect's name (see the table on [`Overflow`]), any case, with or without `AP_`.
    fn from_str(s: &str) -> Result<Self, NumericError> {
        let bad = || NumericError::Parse {
            what: "overflow",
            text: s.to_string(),
            valid: "saturate, wrap, saturate_zero, saturate_sym or wrap_sm (MATLAB: Saturate Wrap; ap_fixed: AP_SAT \
                    AP_WRAP AP_SAT_ZERO AP_SAT_SYM AP_WRAP_SM; QONNX: narrow for saturate_sym)",
        };
        let (_, name) = namespace(s).ok_or_else(bad)?;
        let ap = name.strip_prefix("ap_").unwrap_or(&name);
        Ok(match ap {
            "saturate" | "sat" | "clamp" => Self::Saturate,
            "wrap" => Self::Wrap,
            "saturate_zero" | "sat_zero" => Self::SaturateZero,
            "saturate_sym" | "sat_sym" | "saturate_symmetric" | "symmetric" | "narrow" => Self::SaturateSymmetric,
            "wrap_sm" | "wrap_sign_magnitude" => Self::WrapSignMagnitude,
            _ => return Err(bad()),
        })
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
