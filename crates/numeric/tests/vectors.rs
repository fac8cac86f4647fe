//! The test vectors of shared/fixed-point.md (MATLAB fi semantics, checked there against fxpmath and
//! apytypes), and invariants of quantization.

use convmat_numeric::{Overflow, QFormat, Rounding};
use proptest::prelude::*;

fn q(text: &str) -> QFormat {
    text.parse().unwrap()
}

/// Data-driven: quantize `values` to `format` with `rounding`/`overflow`, expect these stored integers.
fn check(format: &str, values: &[f64], rounding: Rounding, overflow: Overflow, expect: &[i128]) {
    let f = q(format);
    let got: Vec<i128> = values.iter().map(|&v| f.quantize(v, rounding, overflow)).collect();
    assert_eq!(got, expect, "{format} {rounding} {overflow}");
}

/// MATLAB's best-precision fraction length for `fi(v, 1, w)`: as many fraction bits as leave room for
/// the integer part and the sign.
fn best_precision(v: f64, w: u32) -> QFormat {
    let int_bits = v.abs().log2().floor() as i32 + 1;
    QFormat::new(true, w, w as i32 - 1 - int_bits).unwrap()
}

#[test]
fn vector_1_nearest_saturate() {
    check(
        "q1.7",
        &[0.3, -0.7, 1.0, -1.0, 3.0 / 256.0],
        Rounding::Nearest,
        Overflow::Saturate,
        &[38, -90, 127, -128, 2],
    );
}

#[test]
fn vector_2_wrap() {
    check(
        "q1.7",
        &[0.3, -0.7, 1.0, -1.0, 3.0 / 256.0, 1.5, -1.2],
        Rounding::Nearest,
        Overflow::Wrap,
        &[38, -90, -128, -128, 2, -64, 102],
    );
}

#[test]
fn vector_3_ties_in_every_mode() {
    let v: Vec<f64> = [3.0, -3.0, 1.0, -1.0, 5.0, -5.0].iter().map(|x| x / 256.0).collect();
    let cases: [(Rounding, [i128; 6]); 6] = [
        (Rounding::Nearest, [2, -1, 1, 0, 3, -2]),
        (Rounding::Convergent, [2, -2, 0, 0, 2, -2]),
        (Rounding::Round, [2, -2, 1, -1, 3, -3]),
        (Rounding::Floor, [1, -2, 0, -1, 2, -3]),
        (Rounding::Ceiling, [2, -1, 1, 0, 3, -2]),
        (Rounding::Zero, [1, -1, 0, 0, 2, -2]),
    ];
    for (r, expect) in cases {
        check("q1.7", &v, r, Overflow::Saturate, &expect);
    }
}

#[test]
fn vector_4_integer_ties() {
    let v: Vec<f64> = (0..8).map(|i| -3.5 + i as f64).collect();
    check("s8,0", &v, Rounding::Convergent, Overflow::Saturate, &[-4, -2, -2, 0, 0, 2, 2, 4]);
    check("s8,0", &v, Rounding::Nearest, Overflow::Saturate, &[-3, -2, -1, 0, 1, 2, 3, 4]);
    check("s8,0", &v, Rounding::Round, Overflow::Saturate, &[-4, -3, -2, -1, 1, 2, 3, 4]);
}

#[test]
fn vector_5_just_below_half() {
    check("s8,0", &[0.49999999999999994], Rounding::Nearest, Overflow::Saturate, &[0]);
}

#[test]
fn vector_6_best_precision() {
    let pi = std::f64::consts::PI;
    let f16 = best_precision(pi, 16);
    assert_eq!(f16.to_string(), "q3.13");
    assert_eq!(f16.quantize(pi, Rounding::Nearest, Overflow::Saturate), 25736);
    let f8 = best_precision(pi, 8);
    assert_eq!((f8.word_bits(), f8.frac_bits()), (8, 5));
    assert_eq!(f8.quantize(pi, Rounding::Nearest, Overflow::Saturate), 101);
}

#[test]
fn vector_7_product_and_sum_formats() {
    let (pi, e) = (std::f64::consts::PI, std::f64::consts::E);
    let (fp, fe) = (best_precision(pi, 8), best_precision(e, 8));
    let (a, b) =
        (fp.quantize(pi, Rounding::Nearest, Overflow::Saturate), fe.quantize(e, Rounding::Nearest, Overflow::Saturate));
    let p = fp.product(fe).unwrap();
    assert_eq!((p.word_bits(), p.frac_bits()), (16, 10));
    assert_eq!(p.to_f64(a * b), 8.5810546875);
    // a sum of two: fraction max(fa, fb), one more integer bit (both are s8,5 here)
    let s = fp.sum_of(2).unwrap();
    assert_eq!((s.word_bits(), s.frac_bits()), (9, 5));
    assert_eq!(s.to_f64(a + b), 5.875);
}

#[test]
fn vector_8_matrix_multiply() {
    let f = q("q1.7");
    let quant = |m: [f64; 4]| m.map(|v| f.quantize(v, Rounding::Nearest, Overflow::Saturate));
    let (a, b) = (quant([0.5, -0.25, 0.75, 1.0]), quant([0.125, -1.0, 0.5, 0.3]));
    let mut c = [0i128; 4];
    for i in 0..2 {
        for j in 0..2 {
            c[i * 2 + j] = (0..2).map(|k| a[i * 2 + k] * b[k * 2 + j]).sum();
        }
    }
    let acc = f.product(f).unwrap().sum_of(2).unwrap();
    assert_eq!((acc.word_bits(), acc.frac_bits()), (17, 14));
    assert_eq!(c, [-1024, -9408, 9664, -7462]);
    let cases = [
        (Rounding::Nearest, [-8, -73, 76, -58]),
        (Rounding::Convergent, [-8, -74, 76, -58]),
        (Rounding::Round, [-8, -74, 76, -58]),
        (Rounding::Floor, [-8, -74, 75, -59]),
        (Rounding::Zero, [-8, -73, 75, -58]),
    ];
    for (r, expect) in cases {
        let got = c.map(|v| f.requantize(v, acc.frac_bits(), r, Overflow::Saturate));
        assert_eq!(got, expect, "{r}");
    }
}

#[test]
fn vector_9_conv_format() {
    // fi([-1 2 3 -2 0 1 2]) conv fi([2 4 -1 1]): s16,13 x s16,12, N = min(7, 4) = 4 -> s34,25
    let (fa, fb) = (best_precision(3.0, 16), best_precision(4.0, 16));
    assert_eq!((fa.frac_bits(), fb.frac_bits()), (13, 12));
    let acc = fa.product(fb).unwrap().sum_of(4).unwrap();
    assert_eq!((acc.word_bits(), acc.frac_bits()), (34, 25));
}

#[test]
fn formats_parse_and_print() {
    for (text, signed, w, f, shown) in [
        ("q1.7", true, 8, 7, "q1.7"),
        ("Q1.15", true, 16, 15, "q1.15"),
        ("q4.4", true, 8, 4, "q4.4"),
        ("q8.8", true, 16, 8, "q8.8"),
        ("uq8.8", false, 16, 8, "uq8.8"),
        ("s8,7", true, 8, 7, "q1.7"),
        ("u16, 4", false, 16, 4, "uq12.4"),
        ("q10.-2", true, 8, -2, "q10.-2"),
        ("q-2.10", true, 8, 10, "q-2.10"),
    ] {
        let fmt = q(text);
        assert_eq!((fmt.signed(), fmt.word_bits(), fmt.frac_bits()), (signed, w, f), "{text}");
        assert_eq!(fmt.to_string(), shown);
    }
    for bad in ["q1", "q.7", "x1.7", "q0.1", "q100.100", "uq0.0", "s8"] {
        let e = bad.parse::<QFormat>().unwrap_err().to_string();
        assert!(e.contains(bad) || e.contains("word length"), "{bad}: {e}");
    }
    assert_eq!("ceil".parse::<Rounding>().unwrap(), Rounding::Ceiling);
    assert!("upward".parse::<Rounding>().unwrap_err().to_string().contains("nearest, round, convergent"));
}

#[test]
fn special_values() {
    let f = q("q1.7");
    assert_eq!(f.quantize(f64::NAN, Rounding::Nearest, Overflow::Saturate), 0);
    assert_eq!(f.quantize(f64::INFINITY, Rounding::Nearest, Overflow::Saturate), 127);
    assert_eq!(f.quantize(f64::NEG_INFINITY, Rounding::Nearest, Overflow::Saturate), -128);
    assert_eq!(f.quantize(f64::INFINITY, Rounding::Nearest, Overflow::Wrap), 0);
    assert_eq!(f.quantize(1e300, Rounding::Floor, Overflow::Saturate), 127);
    assert_eq!(q("s8,-1000").quantize(1e-300, Rounding::Ceiling, Overflow::Saturate), 1);
    assert_eq!(q("s8,-1000").quantize(-1e-300, Rounding::Floor, Overflow::Saturate), -1);
    assert_eq!(q("uq4.4").quantize(-0.5, Rounding::Nearest, Overflow::Saturate), 0);
}

fn format() -> impl Strategy<Value = QFormat> {
    (any::<bool>(), 2u32..=64, -8i32..70).prop_map(|(s, w, f)| QFormat::new(s, w, f).unwrap())
}

fn rounding() -> impl Strategy<Value = Rounding> {
    prop::sample::select(Rounding::ALL.to_vec())
}

proptest! {
    #[test]
    fn dequantize_then_quantize_is_identity(fmt in format(), seed in any::<i64>(), r in rounding()) {
        let raw = (seed as i128).clamp(fmt.raw_min(), fmt.raw_max());
        prop_assume!(raw.unsigned_abs() < 1 << 53); // exact in f64
        let v = fmt.to_f64(raw);
        prop_assert_eq!(fmt.quantize(v, r, Overflow::Saturate), raw);
        prop_assert_eq!(fmt.quantize(v, r, Overflow::Wrap), raw);
    }

    #[test]
    fn saturation_bounds_hold(fmt in format(), v in -1e30f64..1e30, r in rounding()) {
        let raw = fmt.quantize(v, r, Overflow::Saturate);
        prop_assert!(raw >= fmt.raw_min() && raw <= fmt.raw_max());
        let scaled = v * 2f64.powi(fmt.frac_bits());
        if scaled > fmt.raw_max() as f64 + 1.0 { prop_assert_eq!(raw, fmt.raw_max()); }
        if scaled < fmt.raw_min() as f64 - 1.0 { prop_assert_eq!(raw, fmt.raw_min()); }
    }

    #[test]
    fn wrap_is_twos_complement_truncation(v in -1e6f64..1e6, r in rounding(), w in prop::sample::select(vec![8u32, 16, 32])) {
        let wide = QFormat::new(true, 64, 4).unwrap();
        let narrow = QFormat::new(true, w, 4).unwrap();
        let full = wide.quantize(v, r, Overflow::Wrap) as i64;
        let truncated = match w { 8 => full as i8 as i128, 16 => full as i16 as i128, _ => full as i32 as i128 };
        prop_assert_eq!(narrow.quantize(v, r, Overflow::Wrap), truncated);
        let unsigned = QFormat::new(false, w, 4).unwrap();
        let t = match w { 8 => full as u8 as i128, 16 => full as u16 as i128, _ => full as u32 as i128 };
        prop_assert_eq!(unsigned.quantize(v, r, Overflow::Wrap), t);
    }

    #[test]
    fn requantize_agrees_with_quantizing_the_exact_value(
        raw in -(1i128 << 40)..(1i128 << 40), from in -10i32..40, to in format(), r in rounding(), wrap in any::<bool>()
    ) {
        let o = if wrap { Overflow::Wrap } else { Overflow::Saturate };
        let exact = raw as f64 * 2f64.powi(-from); // exact: |raw| < 2^53
        prop_assert_eq!(to.requantize(raw, from, r, o), to.quantize(exact, r, o));
    }
}
