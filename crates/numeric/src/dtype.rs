//! The element type a front end asks for: `float32`, `float64` or a fixed-point format.

use std::fmt;
use std::str::FromStr;

use crate::{NumericError, QFormat};

/// The element type of a matrix or a computation, as every front end names it: `f32`/`float32`,
/// `f64`/`float64`, or a fixed-point [`QFormat`] in any dialect's syntax (`q1.7`, `uq8.8`, MATLAB's `s8,7`
/// and `fi(1,8,7)`, `int8`, `ap_fixed<8,1>`: see [`FixedType`](crate::FixedType); the format only).
///
/// ```
/// use convmat_numeric::Dtype;
/// assert_eq!("float32".parse::<Dtype>().unwrap(), Dtype::F32);
/// assert_eq!("f64".parse::<Dtype>().unwrap().to_string(), "float64");
/// assert_eq!("q1.7".parse::<Dtype>().unwrap().to_string(), "q1.7");
/// assert_eq!("int8".parse::<Dtype>().unwrap().to_string(), "q8.0");
/// assert_eq!("ap_fixed<8,3>".parse::<Dtype>().unwrap().to_string(), "q3.5");
/// assert!("int".parse::<Dtype>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// IEEE single precision (PyTorch's default).
    F32,
    /// IEEE double precision.
    F64,
    /// Fixed point: stored integers in this format.
    Fixed(QFormat),
}

impl Dtype {
    /// Bytes per stored element: 4 for `f32`, 8 otherwise (fixed point is stored as `int64`).
    pub fn element_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F64 | Self::Fixed(_) => 8,
        }
    }

    /// The fixed-point format, if this is one.
    pub fn fixed(self) -> Option<QFormat> {
        match self {
            Self::Fixed(q) => Some(q),
            _ => None,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::F32 => f.write_str("float32"),
            Self::F64 => f.write_str("float64"),
            Self::Fixed(q) => write!(f, "{q}"),
        }
    }
}

impl FromStr for Dtype {
    type Err = NumericError;

    /// `f32`, `float32`, `f64`, `float64` (any case), or a fixed-point format in any dialect.
    fn from_str(text: &str) -> Result<Self, NumericError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Self::F32),
            "f64" | "float64" => Ok(Self::F64),
            _ => text.parse::<QFormat>().map(Self::Fixed).map_err(|e| match e {
                // a well-formed format out of range keeps its own message
                NumericError::Parse { .. } => NumericError::Parse {
                    what: "dtype",
                    text: text.to_string(),
                    valid: "f32 (float32), f64 (float64), or a fixed-point format: qI.F (e.g. q1.7), uqI.F, sW,F, \
                            fi(s,w,f), numerictype(s,w,f), int8/uint8/int16/..., ap_fixed<W,I>, ap_ufixed<W,I>, \
                            ap_int<W>, ap_uint<W>, fixed<W,I>",
                },
                other => other,
            }),
        }
    }
}
