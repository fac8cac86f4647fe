//! Values users type as text on a command line: a sample shape (`3,32,32`), a list of per-dimension
//! integers (`2,1`), a row range (`0..1000`) and a byte size (`8G`). Every number is checked: nothing
//! wraps, saturates or is silently clamped; an error names the text, what is wrong and what is valid.

use std::ops::Range;

use thiserror::Error;

/// What is wrong with one typed value (inside a [`TextError`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TextProblem {
    /// Nothing where a number belongs (`1,,2`, `..5`, an empty string).
    #[error("part {index} is empty")]
    Empty {
        /// 1-based position of the empty part.
        index: usize,
    },
    /// A part that is not a number.
    #[error("'{part}' is not a non-negative integer")]
    NotInteger {
        /// The part, as typed.
        part: String,
    },
    /// A part that is not a number at all.
    #[error("'{part}' is not a number")]
    NotNumber {
        /// The part, as typed.
        part: String,
    },
    /// A negative number where only non-negative ones are valid.
    #[error("'{part}' is negative")]
    Negative {
        /// The part, as typed.
        part: String,
    },
    /// A number beyond what the value can hold.
    #[error("'{part}' is larger than {max}")]
    TooLarge {
        /// The part, as typed.
        part: String,
        /// The largest valid value.
        max: u64,
    },
    /// A zero where only positive numbers are valid.
    #[error("part {index} is 0")]
    Zero {
        /// 1-based position of the zero.
        index: usize,
    },
    /// Numbers each valid whose product is not.
    #[error("the product of the dimensions is larger than {max}")]
    ProductTooLarge {
        /// The largest valid product.
        max: u64,
    },
    /// A range without its `..`.
    #[error("there is no '..' between R0 and R1")]
    NoSeparator,
    /// A range whose start is not below its end (empty or reversed).
    #[error("R0 = {start} is not below R1 = {end}")]
    Order {
        /// R0.
        start: usize,
        /// R1.
        end: usize,
    },
}

/// A typed value that is not valid: which value, the text, what is wrong and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TextError {
    /// Not a sample shape (see [`parse_dims`]).
    #[error("'{text}' is not a shape ({problem}); expected comma-separated positive integers such as 3,32,32 (C,H,W)")]
    Shape {
        /// The text.
        text: String,
        /// What is wrong.
        problem: TextProblem,
    },
    /// Not a list of non-negative integers (see [`parse_counts`]).
    #[error(
        "invalid {param} '{text}' ({problem}): expected non-negative integers, one or one per spatial dim, \
         comma separated"
    )]
    Counts {
        /// The value's name, as the caller spells it (`--stride`).
        param: &'static str,
        /// The text.
        text: String,
        /// What is wrong.
        problem: TextProblem,
    },
    /// Not a row range (see [`parse_range`]).
    #[error("invalid {param} '{text}' ({problem}): expected R0..R1 with R0 < R1, e.g. 0..1000")]
    Range {
        /// The value's name, as the caller spells it (`--rows`).
        param: &'static str,
        /// The text.
        text: String,
        /// What is wrong.
        problem: TextProblem,
    },
    /// Not a tolerance (see [`parse_tolerance`]).
    #[error("invalid {param} '{text}' ({problem}): expected a non-negative number such as 1e-5")]
    Tolerance {
        /// The value's name, as the caller spells it (`--tol`).
        param: &'static str,
        /// The text.
        text: String,
        /// What is wrong.
        problem: TextProblem,
    },
    /// Not a byte size (see [`parse_bytes`]).
    #[error("invalid {param} '{text}' ({problem}): expected bytes such as 8G, 512M or 1000000")]
    Bytes {
        /// The value's name, as the caller spells it (`--max-memory`).
        param: &'static str,
        /// The text.
        text: String,
        /// What is wrong.
        problem: TextProblem,
    },
}

/// One non-negative integer (`index` is its 1-based position, for the message), surrounding
/// whitespace allowed.
fn count(part: &str, index: usize) -> Result<usize, TextProblem> {
    let part = part.trim();
    if part.is_empty() {
        return Err(TextProblem::Empty { index });
    }
    if let Ok(n) = part.parse::<usize>() {
        return Ok(n);
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    Err(if part.strip_prefix('-').is_some_and(digits) {
        TextProblem::Negative { part: part.into() }
    } else if digits(part.strip_prefix('+').unwrap_or(part)) {
        TextProblem::TooLarge { part: part.into(), max: usize::MAX as u64 }
    } else {
        TextProblem::NotInteger { part: part.into() }
    })
}

/// A sample shape `C,H,W` (also `CxHxW`, any number of dimensions): positive integers whose product
/// fits in `usize`, so every size derived from the shape can be computed.
///
/// ```
/// use convmat_shape::parse_dims;
/// assert_eq!(parse_dims("3, 32, 32").unwrap(), vec![3, 32, 32]);
/// assert_eq!(parse_dims("1x28x28").unwrap(), vec![1, 28, 28]);
/// assert!(parse_dims("3,,32").is_err() && parse_dims("3,0,32").is_err());
/// ```
///
/// # Errors
/// [`TextError::Shape`]: an empty part, a part that is not a positive integer, or a product of the
/// dimensions beyond `usize::MAX`.
pub fn parse_dims(text: &str) -> Result<Vec<usize>, TextError> {
    let err = |problem| TextError::Shape { text: text.into(), problem };
    let dims = text
        .split([',', 'x'])
        .enumerate()
        .map(|(i, part)| match count(part, i + 1) {
            Ok(0) => Err(TextProblem::Zero { index: i + 1 }),
            other => other,
        })
        .collect::<Result<Vec<usize>, _>>()
        .map_err(err)?;
    if dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none() {
        return Err(err(TextProblem::ProductTooLarge { max: usize::MAX as u64 }));
    }
    Ok(dims)
}

/// Comma-separated non-negative integers (`2` or `2,1`), the spelling of a per-dimension parameter such
/// as a stride; `param` names it in the error. Zero is accepted here: whether it is valid is the
/// layer's rule ([`LayerOptions`](crate::LayerOptions) reports it).
///
/// ```
/// use convmat_shape::parse_counts;
/// assert_eq!(parse_counts("--stride", "2, 1").unwrap(), vec![2, 1]);
/// assert!(parse_counts("--stride", "-1").unwrap_err().to_string().contains("'-1' is negative"));
/// ```
///
/// # Errors
/// [`TextError::Counts`]: an empty part or a part that is not a non-negative integer fitting `usize`.
pub fn parse_counts(param: &'static str, text: &str) -> Result<Vec<usize>, TextError> {
    text.split(',')
        .enumerate()
        .map(|(i, part)| count(part, i + 1))
        .collect::<Result<_, _>>()
        .map_err(|problem| TextError::Counts { param, text: text.into(), problem })
}

/// A half-open range of rows `R0..R1` with `R0 < R1` (the rows of one shard); `param` names it in the
/// error. Whether `R1` is within a matrix is the builder's check.
///
/// ```
/// use convmat_shape::parse_range;
/// assert_eq!(parse_range("--rows", "0..1000").unwrap(), 0..1000);
/// assert!(parse_range("--rows", "5..5").is_err());
/// ```
///
/// # Errors
/// [`TextError::Range`]: no `..`, an end that is not a non-negative integer, or `R0 >= R1`.
pub fn parse_range(param: &'static str, text: &str) -> Result<Range<usize>, TextError> {
    let err = |problem| TextError::Range { param, text: text.into(), problem };
    let (a, b) = text.split_once("..").ok_or_else(|| err(TextProblem::NoSeparator))?;
    let (start, end) = (count(a, 1).map_err(err)?, count(b, 2).map_err(err)?);
    if start >= end {
        return Err(err(TextProblem::Order { start, end }));
    }
    Ok(start..end)
}

/// A number of bytes: a non-negative number (integer or decimal such as `1.5`) with an optional
/// binary suffix `K`, `M`, `G` or `T` (powers of 1024), case-insensitive, an optional trailing `B`
/// (`512MB`); a fractional byte count rounds down. `param` names it in the error.
///
/// ```
/// use convmat_shape::parse_bytes;
/// assert_eq!(parse_bytes("--max-memory", "8G").unwrap(), 8 << 30);
/// assert_eq!(parse_bytes("--max-memory", "1.5k").unwrap(), 1536);
/// assert!(parse_bytes("--max-memory", "99999999999999999999G").is_err());
/// ```
///
/// # Errors
/// [`TextError::Bytes`]: no number, a number that is not one, negative, not finite, or a size beyond
/// `u64::MAX` bytes.
pub fn parse_bytes(param: &'static str, text: &str) -> Result<u64, TextError> {
    let err = |problem| TextError::Bytes { param, text: text.into(), problem };
    let upper = text.trim().to_ascii_uppercase();
    let body = upper.trim_end_matches('B');
    let (number, shift) = match body.as_bytes().last() {
        Some(b'K') => (&body[..body.len() - 1], 10),
        Some(b'M') => (&body[..body.len() - 1], 20),
        Some(b'G') => (&body[..body.len() - 1], 30),
        Some(b'T') => (&body[..body.len() - 1], 40),
        _ => (body, 0),
    };
    let number = number.trim();
    let too_large = || err(TextProblem::TooLarge { part: text.trim().into(), max: u64::MAX });
    if number.is_empty() {
        return Err(err(TextProblem::Empty { index: 1 }));
    }
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(1 << shift).ok_or_else(too_large);
    }
    let not_a_number = || err(TextProblem::NotNumber { part: number.into() });
    let value = number.parse::<f64>().map_err(|_| not_a_number())?;
    if value.is_nan() {
        return Err(not_a_number());
    }
    if value < 0.0 {
        return Err(err(TextProblem::Negative { part: number.into() }));
    }
    let bytes = value * (1u64 << shift) as f64;
    // 2^64 is the first f64 past u64::MAX (an infinity fails here too)
    if bytes >= 18_446_744_073_709_551_616.0 {
        return Err(too_large());
    }
    Ok(bytes as u64)
}

/// A tolerance: a non-negative number, `inf` included (accept anything); NaN is refused, since it
/// would pass every comparison unnoticed. `param` names it in the error.
///
/// ```
/// use convmat_shape::parse_tolerance;
/// assert_eq!(parse_tolerance("--tol", "1e-5").unwrap(), 1e-5);
/// assert!(parse_tolerance("--tol", "nan").is_err() && parse_tolerance("--tol", "-1").is_err());
/// ```
///
/// # Errors
/// [`TextError::Tolerance`]: empty, not a number, NaN or negative.
pub fn parse_tolerance(param: &'static str, text: &str) -> Result<f64, TextError> {
    let err = |problem| TextError::Tolerance { param, text: text.into(), problem };
    let t = text.trim();
    if t.is_empty() {
        return Err(err(TextProblem::Empty { index: 1 }));
    }
    match t.parse::<f64>() {
        Ok(v) if v >= 0.0 => Ok(v),
        Ok(v) if v < 0.0 => Err(err(TextProblem::Negative { part: t.into() })),
        _ => Err(err(TextProblem::NotNumber { part: t.into() })),
    }
}
