//! Hostile input (issue 16): fixed-point format strings and arithmetic at the extremes of `i32` and
//! `i128`. Each case ends in a clean error naming the value (or the exact answer), never a panic: these
//! tests run in the dev profile, where overflow checks are on.

use convmat_numeric::{NumericError, Overflow, QFormat, Rounding, MAX_FRAC_BITS};

#[test]
fn format_strings_whose_word_length_overflows_i32_are_errors() {
    let cases = [
        ("q2147483647.1", 2147483648),
        ("q2147483647.2147483647", 4294967294),
        ("uq2147483647.2147483647", 4294967294),
        ("q-2147483648.-1", 0),
        ("q-2147483648.1", 0),
    ];
    for (text, word_bits) in cases {
        match text.parse::<QFormat>() {
            Err(NumericError::WordBits { word_bits: w, .. }) => assert_eq!(w, word_bits, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(QFormat::q(i32::MAX, i32::MAX).is_err());
    assert!(QFormat::q(i32::MIN, i32::MIN).is_err());
}

#[test]
fn fraction_lengths_are_bounded() {
    for text in ["s8,-2147483648", "s8,2147483647", "q-2147483640.2147483647", "u8,65536"] {
        let e = text.parse::<QFormat>().unwrap_err();
        assert!(matches!(e, NumericError::FracBits { .. }), "{text}: {e}");
        assert!(e.to_string().contains("-65535 to 65535"), "{e}");
    }
    // the extremes that are allowed print and read back
    for (s, w, f) in [(true, 2, -MAX_FRAC_BITS), (true, 128, MAX_FRAC_BITS), (false, 1, MAX_FRAC_BITS)] {
        let q = QFormat::new(s, w, f).unwrap();
        assert_eq!(q.to_string().parse::<QFormat>().unwrap(), q);
    }
}

#[test]
fn unsigned_words_stop_at_127_bits() {
    // stored integers are i128: 2^128 - 1 does not fit
    assert_eq!(QFormat::new(false, 128, 0).unwrap_err(), NumericError::WordBits { word_bits: 128, min: 1, max: 127 });
    assert!("uq128.0".parse::<QFormat>().is_err());
    let u64f = QFormat::new(false, 64, 0).unwrap();
    assert_eq!(u64f.product(u64f).unwrap_err(), NumericError::TooWide { bits: 128, max: 128 });
    assert_eq!(
        QFormat::new(false, 127, 0).unwrap().sum_of(2).unwrap_err(),
        NumericError::TooWide { bits: 128, max: 127 }
    );
}

#[test]
fn products_of_extreme_fraction_lengths_are_errors() {
    let a = QFormat::new(true, 8, MAX_FRAC_BITS).unwrap();
    assert!(matches!(a.product(a).unwrap_err(), NumericError::FracBits { frac_bits: 131070, .. }));
}

#[test]
fn requantize_from_extreme_fraction_lengths() {
    let q = QFormat::new(true, 16, 0).unwrap();
    // 5 * 2^-(2^31 - 1) rounds to 0 (1 under ceiling); 5 * 2^(2^31) saturates or wraps to 0
    assert_eq!(q.requantize(5, i32::MAX, Rounding::Nearest, Overflow::Saturate), 0);
    assert_eq!(q.requantize(5, i32::MAX, Rounding::Ceiling, Overflow::Saturate), 1);
    assert_eq!(q.requantize(5, i32::MIN, Rounding::Nearest, Overflow::Saturate), i16::MAX as i128);
    assert_eq!(q.requantize(-5, i32::MIN, Rounding::Nearest, Overflow::Saturate), i16::MIN as i128);
    assert_eq!(q.requantize(5, i32::MIN, Rounding::Nearest, Overflow::Wrap), 0);
    let far = QFormat::new(true, 16, -MAX_FRAC_BITS).unwrap();
    assert_eq!(far.requantize(5, i32::MIN, Rounding::Nearest, Overflow::Saturate), i16::MAX as i128);
}

#[test]
fn sums_beyond_i128_saturate_or_wrap() {
    let s128 = QFormat::new(true, 128, 0).unwrap();
    assert_eq!(s128.add(i128::MAX, 1, Overflow::Saturate), i128::MAX);
    assert_eq!(s128.add(i128::MIN, -1, Overflow::Saturate), i128::MIN);
    assert_eq!(s128.add(i128::MAX, 1, Overflow::Wrap), i128::MIN);
    assert_eq!(s128.add(i128::MIN, -1, Overflow::Wrap), i128::MAX);
    // unsigned 127 bits: (2^127 - 1) + (2^127 - 1) = 2^128 - 2, which is 2^127 - 2 mod 2^127
    let u127 = QFormat::new(false, 127, 0).unwrap();
    assert_eq!(u127.add(i128::MAX, i128::MAX, Overflow::Saturate), i128::MAX);
    assert_eq!(u127.add(i128::MAX, i128::MAX, Overflow::Wrap), i128::MAX - 1);
    // signed 127 bits: sums fit i128, then the format's own overflow applies
    let s127 = QFormat::new(true, 127, 0).unwrap();
    let max = (1i128 << 126) - 1;
    assert_eq!(s127.add(max, max, Overflow::Saturate), max);
    assert_eq!(s127.add(max, 1, Overflow::Wrap), -(1i128 << 126));
    // ordinary formats are unchanged
    let q8 = QFormat::new(true, 8, 0).unwrap();
    assert_eq!(q8.add(100, 100, Overflow::Saturate), 127);
    assert_eq!(q8.add(100, 100, Overflow::Wrap), 200 - 256);
}
