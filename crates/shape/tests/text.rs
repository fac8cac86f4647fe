//! The typed text of the command line (`--input-shape`, `--stride`, `--rows`, `--max-memory`): what is
//! accepted reads as written, and hostile values (huge, negative, overflowing, empty parts) are one
//! typed error naming the text, never a panic or a wrapped or saturated number. Run in the dev profile,
//! where overflow checks are on.

use convmat_shape::{parse_bytes, parse_counts, parse_dims, parse_range, parse_tolerance, TextError, TextProblem};
use proptest::prelude::*;

const BIG: &str = "99999999999999999999"; // 10^20 > u64::MAX

fn problem(e: TextError) -> TextProblem {
    match e {
        TextError::Shape { problem, .. }
        | TextError::Counts { problem, .. }
        | TextError::Range { problem, .. }
        | TextError::Bytes { problem, .. }
        | TextError::Tolerance { problem, .. } => problem,
        other => panic!("unexpected {other:?}"),
    }
}

/// Each text must fail with its problem, in a message that starts with `prefix(text)`.
fn refuses<T: std::fmt::Debug>(
    cases: &[(&str, TextProblem)],
    parse: impl Fn(&str) -> Result<T, TextError>,
    prefix: impl Fn(&str) -> String,
) {
    for (text, expected) in cases {
        let e = parse(text).expect_err(text);
        assert!(e.to_string().starts_with(&prefix(text)), "{e}");
        assert_eq!(&problem(e), expected, "{text}");
    }
}

fn too_large(part: &str, max: u64) -> TextProblem {
    TextProblem::TooLarge { part: part.into(), max }
}

#[test]
fn shapes() {
    for (text, dims) in [("3,32,32", vec![3, 32, 32]), (" 1 x 28 x 28 ", vec![1, 28, 28]), ("7", vec![7])] {
        assert_eq!(parse_dims(text).unwrap(), dims, "{text}");
    }
    let usize_max = usize::MAX as u64;
    let cases = [
        ("", TextProblem::Empty { index: 1 }),
        ("1,,2", TextProblem::Empty { index: 2 }),
        ("3,32,", TextProblem::Empty { index: 3 }),
        ("3,0,32", TextProblem::Zero { index: 2 }),
        ("3,-1,32", TextProblem::Negative { part: "-1".into() }),
        ("3,a,32", TextProblem::NotInteger { part: "a".into() }),
        ("3,1.5,2", TextProblem::NotInteger { part: "1.5".into() }),
        (&format!("3,{BIG}"), too_large(BIG, usize_max)),
        ("3,4294967296,4294967296", TextProblem::ProductTooLarge { max: usize_max }),
    ];
    refuses(&cases, parse_dims, |text| format!("'{text}' is not a shape"));
}

#[test]
fn counts() {
    assert_eq!(parse_counts("--stride", "2").unwrap(), vec![2]);
    assert_eq!(parse_counts("--stride", " 2 , 0 ").unwrap(), vec![2, 0]);
    let cases = [
        ("", TextProblem::Empty { index: 1 }),
        ("1,,2", TextProblem::Empty { index: 2 }),
        ("-1", TextProblem::Negative { part: "-1".into() }),
        ("2;1", TextProblem::NotInteger { part: "2;1".into() }),
        (BIG, too_large(BIG, usize::MAX as u64)),
    ];
    refuses(&cases, |t| parse_counts("--dilation", t), |text| format!("invalid --dilation '{text}' ("));
}

#[test]
fn ranges() {
    assert_eq!(parse_range("--rows", "0..1000").unwrap(), 0..1000);
    assert_eq!(parse_range("--rows", " 5 .. 6 ").unwrap(), 5..6);
    let cases = [
        ("3:1", TextProblem::NoSeparator),
        ("", TextProblem::NoSeparator),
        ("0..0", TextProblem::Order { start: 0, end: 0 }),
        ("10..5", TextProblem::Order { start: 10, end: 5 }),
        ("..5", TextProblem::Empty { index: 1 }),
        ("5..", TextProblem::Empty { index: 2 }),
        ("-1..5", TextProblem::Negative { part: "-1".into() }),
        ("1..2..3", TextProblem::NotInteger { part: "2..3".into() }),
        (&format!("0..{BIG}"), too_large(BIG, usize::MAX as u64)),
    ];
    refuses(&cases, |t| parse_range("--rows", t), |text| format!("invalid --rows '{text}' ("));
}

#[test]
fn byte_sizes() {
    for (text, bytes) in [
        ("1000000", 1_000_000),
        ("0", 0),
        ("8G", 8 << 30),
        ("512M", 512 << 20),
        ("512mb", 512 << 20),
        ("1.5K", 1536),
        ("1 T", 1 << 40),
        ("2.5", 2),
        ("1e3", 1000),
        ("16777215T", 16_777_215 << 40),
        ("18446744073709551615", u64::MAX),
    ] {
        assert_eq!(parse_bytes("--max-memory", text).unwrap(), bytes, "{text}");
    }
    let cases = [
        ("", TextProblem::Empty { index: 1 }),
        ("KB", TextProblem::Empty { index: 1 }),
        ("-1", TextProblem::Negative { part: "-1".into() }),
        ("-0.5G", TextProblem::Negative { part: "-0.5".into() }),
        ("nan", TextProblem::NotNumber { part: "NAN".into() }),
        ("8Q", TextProblem::NotNumber { part: "8Q".into() }),
        ("1KiB", TextProblem::NotNumber { part: "1KI".into() }),
        ("1e400", too_large("1e400", u64::MAX)),
        ("inf", too_large("inf", u64::MAX)),
        ("16777216T", too_large("16777216T", u64::MAX)),
        ("99999999999999999999G", too_large("99999999999999999999G", u64::MAX)),
        ("18446744073709551616", too_large("18446744073709551616", u64::MAX)),
    ];
    refuses(&cases, |t| parse_bytes("--max-memory", t), |text| format!("invalid --max-memory '{text}' ("));
}

#[test]
fn tolerances() {
    for (text, tol) in [("1e-5", 1e-5), (" 0 ", 0.0), ("inf", f64::INFINITY), ("1e400", f64::INFINITY), ("-0", 0.0)] {
        assert_eq!(parse_tolerance("--tol", text).unwrap(), tol, "{text}");
    }
    let cases = [
        ("", TextProblem::Empty { index: 1 }),
        ("nan", TextProblem::NotNumber { part: "nan".into() }),
        ("1e-5x", TextProblem::NotNumber { part: "1e-5x".into() }),
        ("-1", TextProblem::Negative { part: "-1".into() }),
        ("-inf", TextProblem::Negative { part: "-inf".into() }),
    ];
    refuses(&cases, |t| parse_tolerance("--tol", t), |text| format!("invalid --tol '{text}' ("));
}

proptest! {
    #[test]
    fn a_written_shape_reads_back(dims in prop::collection::vec(1usize..10_000, 1..5)) {
        let text = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
        prop_assert_eq!(parse_dims(&text).unwrap(), dims);
    }

    #[test]
    fn integer_byte_sizes_scale_exactly_or_fail(n in any::<u64>(), suffix in 0usize..5) {
        let (letter, shift) = [("", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40)][suffix];
        let got = parse_bytes("--max-memory", &format!("{n}{letter}"));
        match n.checked_mul(1 << shift) {
            Some(bytes) => prop_assert_eq!(got.unwrap(), bytes),
            None => prop_assert!(got.is_err()),
        }
    }

    #[test]
    fn ranges_read_back(a in any::<usize>(), b in any::<usize>()) {
        let got = parse_range("--rows", &format!("{a}..{b}"));
        prop_assert_eq!(got.ok(), (a < b).then_some(a..b));
    }
}
