use thiserror::Error;

/// What can be wrong with a fixed-point format or its arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NumericError {
    /// A word length outside what convmat computes in.
    #[error("word length {word_bits} bits is out of range: expected {min} to {max}")]
    WordBits {
        /// The word length given.
        word_bits: u32,
        /// Smallest allowed (2 for signed formats).
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A fraction length beyond what convmat computes with.
    #[error("fraction length {frac_bits} is out of range: expected -{max} to {max}")]
    FracBits {
        /// The fraction length given.
        frac_bits: i32,
        /// Largest magnitude allowed.
        max: i32,
    },
    /// An exact result would need more bits than convmat's widest accumulator.
    #[error("the exact result needs {bits} bits, more than the {max}-bit accumulator; use a narrow accumulator (--acc-dtype) or smaller formats")]
    TooWide {
        /// Bits needed.
        bits: u32,
        /// Widest accumulator.
        max: u32,
    },
    /// Text that is not a format, rounding or overflow name.
    #[error("invalid {what} '{text}': expected {valid}")]
    Parse {
        /// What was being read.
        what: &'static str,
        /// The text.
        text: String,
        /// What would be valid.
        valid: &'static str,
    },
    /// A format whose stored integers do not fit the 64-bit arrays convmat stores data in.
    #[error("format {format} stores integers beyond 64 bits; data formats must fit int64")]
    NotI64 {
        /// The format, as written.
        format: String,
    },
    /// A rounding or overflow given beside a type that carries a different one.
    #[error("{} '{given}' conflicts with the {} '{carried}' of the type {ty}: drop one or make them agree", mode_word(.overflow), mode_word(.overflow))]
    ModeConflict {
        /// Whether the overflow (else the rounding) conflicts.
        overflow: bool,
        /// The mode given separately.
        given: &'static str,
        /// The mode the type carries.
        carried: &'static str,
        /// The type.
        ty: crate::FixedType,
    },
    /// A mode or parameter a dialect cannot express.
    #[error("{dialect} has no {what} {value}")]
    Unsupported {
        /// The dialect.
        dialect: &'static str,
        /// What kind of thing.
        what: &'static str,
        /// The value.
        value: String,
    },
}

fn mode_word(overflow: &bool) -> &'static str {
    if *overflow {
        "overflow"
    } else {
        "rounding"
    }
}
