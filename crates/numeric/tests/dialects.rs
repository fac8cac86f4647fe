//! Every rounding and overflow dialect against independent oracles: Vitis HLS's documented examples,
//! hls4ml #68, the QONNX spec's rounding table, golden vectors from apytypes and from Vitis's own
//! `ap_fixed` headers (`xtask/oracle/dialects_golden.py`), and a slow big-integer reference for every mode
//! and width up to 64 bits.

use convmat_numeric::{Dialect, FixedType, Modes, NumericError, Overflow, QFormat, QonnxQuant, Quantizer, Rounding};
use proptest::prelude::*;

fn ty(text: &str) -> FixedType {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The real value `text`'s type gives `v`, cast with the modes the type carries.
fn cast(text: &str, v: f64) -> f64 {
    let t = ty(text);
    let m = t.modes(None, None).unwrap();
    t.format.to_f64(t.format.quantize(v, m.rounding, m.overflow))
}

#[test]
fn vitis_documented_examples() {
    // UG1399, "Arbitrary Precision Fixed-Point Data Types": ap_fixed<3, 2, Q, AP_SAT> of 1.25 and -1.25
    for (q, pos, neg) in [
        ("AP_RND", 1.5, -1.0),
        ("AP_RND_ZERO", 1.0, -1.0),
        ("AP_RND_MIN_INF", 1.0, -1.5),
        ("AP_RND_INF", 1.5, -1.5),
        ("AP_RND_CONV", 1.0, -1.0), // ties to the even stored integer: 2 (1.0) and -2 (-1.0)
        ("AP_TRN", 1.0, -1.5),
        ("AP_TRN_ZERO", 1.0, -1.0),
    ] {
        let t = format!("ap_fixed<3,2,{q},AP_SAT>");
        assert_eq!((cast(&t, 1.25), cast(&t, -1.25)), (pos, neg), "{t}");
    }
    // ap_fixed<4,4,AP_RND,...> of 19 and -19 (UG1399's overflow examples)
    assert_eq!((cast("ap_fixed<4,4,AP_RND,AP_SAT>", 19.0), cast("ap_fixed<4,4,AP_RND,AP_SAT>", -19.0)), (7.0, -8.0));
    assert_eq!(
        (cast("ap_fixed<4,4,AP_RND,AP_SAT_ZERO>", 19.0), cast("ap_fixed<4,4,AP_RND,AP_SAT_ZERO>", -19.0)),
        (0.0, 0.0)
    );
    assert_eq!(
        (cast("ap_fixed<4,4,AP_RND,AP_SAT_SYM>", 19.0), cast("ap_fixed<4,4,AP_RND,AP_SAT_SYM>", -19.0)),
        (7.0, -7.0)
    );
    assert_eq!((cast("ap_fixed<4,4,AP_RND,AP_WRAP>", 31.0), cast("ap_fixed<4,4,AP_RND,AP_WRAP>", -19.0)), (-1.0, -3.0));
    assert_eq!(
        (cast("ap_fixed<4,4,AP_RND,AP_WRAP_SM>", 19.0), cast("ap_fixed<4,4,AP_RND,AP_WRAP_SM>", -19.0)),
        (-4.0, 2.0)
    );
    // the most negative value itself is dropped by AP_SAT_SYM
    assert_eq!(cast("ap_fixed<4,4,AP_RND,AP_SAT_SYM>", -8.0), -7.0);
}

#[test]
fn hls4ml_issue_68() {
    assert_eq!(cast("ap_fixed<10,4>", 8.99), -7.015625);
    assert_eq!(cast("ap_fixed<10,4,AP_TRN,AP_WRAP>", 8.99), -7.015625);
    assert_eq!(cast("ap_fixed<10,4,AP_TRN_ZERO,AP_SAT>", 8.99), 7.984375);
    assert_eq!(cast("fixed<10,4,TRN_ZERO,SAT>", 8.99), 7.984375); // hls4ml's own spelling
}

#[test]
fn qonnx_spec_rounding_table() {
    // docs/qonnx-custom-ops/quant_op.md, "Rounding modes"
    let x = [5.5, 2.5, 1.6, 1.1, 1.0, -1.0, -1.1, -1.6, -2.5, -5.5];
    let table: [(&str, [i128; 10]); 7] = [
        ("ROUND", [6, 2, 2, 1, 1, -1, -1, -2, -2, -6]),
        ("CEIL", [6, 3, 2, 2, 1, -1, -1, -1, -2, -5]),
        ("FLOOR", [5, 2, 1, 1, 1, -1, -2, -2, -3, -6]),
        ("UP", [6, 3, 2, 2, 1, -1, -2, -2, -3, -6]),
        ("DOWN", [5, 2, 1, 1, 1, -1, -1, -1, -2, -5]),
        ("HALF_UP", [6, 3, 2, 1, 1, -1, -1, -2, -3, -6]),
        ("HALF_DOWN", [5, 2, 2, 1, 1, -1, -1, -2, -2, -5]),
    ];
    let int8: QFormat = "int8".parse().unwrap();
    for (name, expect) in table {
        for r in [Rounding::from_qonnx(name).unwrap(), Rounding::from_qonnx(&name.to_lowercase()).unwrap()] {
            let got = x.map(|v| int8.quantize(v, r, Overflow::Saturate));
            assert_eq!(got, expect, "{name}");
            assert_eq!(r.qonnx_name(), Some(name));
        }
    }
    // narrow: [-127, 127] at 8 bits
    assert_eq!(int8.quantize(-200.0, Rounding::Convergent, Overflow::SaturateSymmetric), -127);
    assert_eq!(int8.quantize(-128.0, Rounding::Convergent, Overflow::SaturateSymmetric), -127);
}

/// The golden file: apytypes (nine roundings x wrap/saturate) and Vitis's ap_fixed headers (seven
/// roundings x five overflows), on formats with I < W, I = W, I > W and I < 0, signed and unsigned.
#[test]
fn golden_vectors_from_apytypes_and_vitis_headers() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("dialects_golden.json")).unwrap();
    let mut checked = 0;
    for f in doc["formats"].as_array().unwrap() {
        let (signed, w, i) =
            (f["signed"].as_bool().unwrap(), f["w"].as_u64().unwrap() as u32, f["i"].as_i64().unwrap() as i32);
        let format = QFormat::new(signed, w, w as i32 - i).unwrap();
        let frac = format.frac_bits();
        let y4: Vec<i128> = f["y4"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i128).collect();
        for oracle in ["apytypes", "ap_fixed"] {
            let Some(modes) = f[oracle].as_object() else { continue };
            for (key, expect) in modes {
                let (r, o) = key.split_once('/').unwrap();
                let (r, o): (Rounding, Overflow) = (r.parse().unwrap(), o.parse().unwrap());
                let fast = Quantizer::new(format, r, o).unwrap();
                for (y, e) in y4.iter().zip(expect.as_array().unwrap()) {
                    let e = e.as_i64().unwrap() as i128;
                    let v = *y as f64 * 2f64.powi(-frac - 2);
                    let what = format!("{oracle} {format} {key} y4={y} (v={v})");
                    assert_eq!(format.quantize(v, r, o), e, "quantize: {what}");
                    assert_eq!(format.requantize(*y, frac + 2, r, o), e, "requantize: {what}");
                    assert_eq!(fast.quantize(v) as i128, e, "Quantizer: {what}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 5000, "{checked}");
}

#[test]
fn every_spelling_of_the_issue_table() {
    let cases: [(&[&str], Rounding); 9] = [
        (&["Floor", "AP_TRN", "FLOOR", "trn"], Rounding::Floor),
        (&["Ceiling", "ceil", "CEIL"], Rounding::Ceiling),
        (&["Zero", "fix", "AP_TRN_ZERO", "DOWN"], Rounding::Zero),
        (&["UP", "away"], Rounding::AwayFromZero),
        (&["Convergent", "AP_RND_CONV", "qonnx:ROUND", "half_even", "RND_CONV"], Rounding::Convergent),
        (&["Round", "AP_RND_INF", "HALF_UP", "matlab:round"], Rounding::Round),
        (&["AP_RND_ZERO", "HALF_DOWN", "nearest_zero"], Rounding::NearestTiesToZero),
        (&["Nearest", "AP_RND", "rnd"], Rounding::Nearest),
        (&["AP_RND_MIN_INF", "nearest_min_inf"], Rounding::NearestTiesToMinusInf),
    ];
    for (names, r) in cases {
        for n in names {
            assert_eq!(n.parse::<Rounding>().unwrap(), r, "{n}");
        }
        assert_eq!(r.to_string().parse::<Rounding>().unwrap(), r);
    }
    let overflows: [(&[&str], Overflow); 5] = [
        (&["Saturate", "AP_SAT", "sat"], Overflow::Saturate),
        (&["Wrap", "AP_WRAP"], Overflow::Wrap),
        (&["AP_SAT_ZERO", "saturate_zero"], Overflow::SaturateZero),
        (&["AP_SAT_SYM", "narrow", "saturate_sym"], Overflow::SaturateSymmetric),
        (&["AP_WRAP_SM", "wrap_sm"], Overflow::WrapSignMagnitude),
    ];
    for (names, o) in overflows {
        for n in names {
            assert_eq!(n.parse::<Overflow>().unwrap(), o, "{n}");
        }
        assert_eq!(o.to_string().parse::<Overflow>().unwrap(), o);
    }
    assert_eq!(Rounding::ALL.len(), 9);
    assert_eq!(Overflow::ALL.len(), 5);
    // unknown names: one line listing every valid name
    for (bad, want) in [("upward", "nearest_min_inf"), ("AP_RND_EVEN", "AP_RND_CONV"), ("onnx:round", "HALF_DOWN")] {
        let e = bad.parse::<Rounding>().unwrap_err().to_string();
        assert!(e.contains(bad) && e.contains(want) && !e.contains('\n'), "{e}");
    }
    let e = "clip".parse::<Overflow>().unwrap_err().to_string();
    assert!(e.contains("'clip'") && e.contains("AP_WRAP_SM") && !e.contains('\n'), "{e}");
}

#[test]
fn types_in_every_dialect() {
    for (text, signed, w, f, modes) in [
        ("q1.7", true, 8, 7, None),
        ("uq0.8", false, 8, 8, None),
        ("fi(1,8,7)", true, 8, 7, None),
        ("numerictype(1, 8, 7)", true, 8, 7, None),
        ("numerictype(0,16,-2)", false, 16, -2, None),
        ("sfix16_En15", true, 16, 15, None),
        ("ufix8_En8", false, 8, 8, None),
        ("sfix8_E2", true, 8, -2, None),
        ("int8", true, 8, 0, None),
        ("uint8", false, 8, 0, None),
        ("int16", true, 16, 0, None),
        ("uint16", false, 16, 0, None),
        ("int32", true, 32, 0, None),
        ("int4", true, 4, 0, None),
        ("uint4", false, 4, 0, None),
        ("ap_fixed<8,3>", true, 8, 5, Some(Modes::AP_FIXED)),
        ("ap_ufixed<8,0>", false, 8, 8, Some(Modes::AP_FIXED)),
        ("ap_fixed<4,6>", true, 4, -2, Some(Modes::AP_FIXED)),
        ("ap_fixed<4,-2>", true, 4, 6, Some(Modes::AP_FIXED)),
        ("AP_FIXED<10, 4, AP_RND, AP_SAT>", true, 10, 6, Some(Modes::new(Rounding::Nearest, Overflow::Saturate))),
        ("ap_fixed<10,4,AP_RND_CONV>", true, 10, 6, Some(Modes::new(Rounding::Convergent, Overflow::Wrap))),
        ("ap_fixed<10,4,AP_RND,AP_SAT,0>", true, 10, 6, Some(Modes::new(Rounding::Nearest, Overflow::Saturate))),
        ("fixed<16,6>", true, 16, 10, Some(Modes::AP_FIXED)),
        (
            "ufixed<8,0,RND_CONV,SAT_SYM>",
            false,
            8,
            8,
            Some(Modes::new(Rounding::Convergent, Overflow::SaturateSymmetric)),
        ),
        ("ap_int<8>", true, 8, 0, Some(Modes::new(Rounding::Zero, Overflow::Wrap))),
        ("ap_uint<4>", false, 4, 0, Some(Modes::new(Rounding::Zero, Overflow::Wrap))),
        ("int<8>", true, 8, 0, Some(Modes::new(Rounding::Zero, Overflow::Wrap))),
    ] {
        let t = ty(text);
        assert_eq!((t.format.signed(), t.format.word_bits(), t.format.frac_bits()), (signed, w, f), "{text}");
        assert_eq!(t.rounding.zip(t.overflow).map(|(r, o)| Modes::new(r, o)), modes, "{text}");
        assert_eq!(text.parse::<QFormat>().unwrap(), t.format, "{text}");
    }
    // ap_int<8> converts as C does (Vitis: -2.7 -> -2, 300.7 -> 44)
    assert_eq!((cast("ap_int<8>", -2.7), cast("ap_int<8>", 300.7)), (-2.0, 44.0));
}

#[test]
fn bad_type_strings_get_one_line() {
    for (bad, want) in [
        ("ap_fixed<0,0>", "word length 0"),
        ("ap_fixed<1,1>", "word length 1"),
        ("ap_fixed<8>", "ap_fixed<8>"),
        ("ap_fixed<8,3,AP_CEIL>", "AP_CEIL"),
        ("ap_fixed<8,3,ceil>", "ap_fixed has no rounding ceil"),
        ("ap_ufixed<8,3,AP_RND,AP_WRAP_SM>", "AP_WRAP_SM"),
        ("ap_fixed<8,3,AP_RND,AP_SAT,2>", "saturation bits"),
        ("ap_fixed<8,3", "ap_fixed<8,3"),
        ("ap_float<8,3>", "ap_float<8,3>"),
        ("fi(2,8,7)", "fi(2,8,7)"),
        ("numerictype(1,8)", "numerictype(1,8)"),
        ("int", "'int'"),
        ("int1", "word length 1"),
        ("uint0", "word length 0"),
        ("float8", "float8"),
        ("sfix8_X3", "sfix8_X3"),
        ("ap_fixed<8,-2147483648>", "fraction length"),
    ] {
        let e = bad.parse::<FixedType>().unwrap_err().to_string();
        assert!(e.contains(want) && !e.contains('\n'), "{bad}: {e}");
    }
}

#[test]
fn modes_from_a_type_and_flags() {
    let apr = ty("ap_fixed<8,3,AP_RND,AP_SAT>");
    let plain = ty("q3.5");
    let m = |r, o| Modes::new(r, o);
    assert_eq!(plain.modes(None, None).unwrap(), Modes::MATLAB);
    assert_eq!(plain.modes(Some(Rounding::Floor), Some(Overflow::Wrap)).unwrap(), m(Rounding::Floor, Overflow::Wrap));
    assert_eq!(apr.modes(None, None).unwrap(), m(Rounding::Nearest, Overflow::Saturate));
    assert_eq!(
        apr.modes(Some(Rounding::Nearest), Some(Overflow::Saturate)).unwrap(),
        m(Rounding::Nearest, Overflow::Saturate)
    );
    let e = apr.modes(Some(Rounding::Floor), None).unwrap_err();
    assert!(matches!(e, NumericError::ModeConflict { overflow: false, .. }), "{e}");
    assert!(e.to_string().contains("'floor'") && e.to_string().contains("ap_fixed<8,3,AP_RND,AP_SAT>"), "{e}");
    // ap_fixed's defaults are part of the type: a different flag conflicts too
    let e = ty("ap_fixed<8,3>").modes(None, Some(Overflow::Saturate)).unwrap_err().to_string();
    assert!(e.contains("'wrap'"), "{e}");
}

#[test]
fn printing_in_each_dialect() {
    let q = |t: &str| t.parse::<QFormat>().unwrap();
    let f = q("q4.6");
    assert_eq!(f.to_dialect(Dialect::Q), "q4.6");
    assert_eq!(f.to_dialect(Dialect::Matlab), "numerictype(1,10,6)");
    assert_eq!(f.to_dialect(Dialect::ApFixed), "ap_fixed<10,4>");
    assert_eq!(f.to_dialect(Dialect::Hls4ml), "fixed<10,4>");
    assert_eq!(f.to_dialect(Dialect::Qonnx), "scale=2^-6 zeropt=0 bitwidth=10 signed=1 narrow=0 rounding_mode=ROUND");
    assert_eq!(q("uq0.8").to_dialect(Dialect::ApFixed), "ap_ufixed<8,0>");
    assert_eq!(
        ty("ap_fixed<10,4,AP_RND,AP_SAT>").to_dialect(Dialect::ApFixed).unwrap(),
        "ap_fixed<10,4,AP_RND,AP_SAT>"
    );
    assert_eq!(ty("ap_fixed<10,4,AP_RND,AP_SAT>").to_dialect(Dialect::Hls4ml).unwrap(), "fixed<10,4,RND,SAT>");
    assert_eq!(ty("ap_fixed<10,4>").to_dialect(Dialect::ApFixed).unwrap(), "ap_fixed<10,4>");
    assert_eq!(ty("ap_fixed<10,4,AP_RND,AP_SAT>").to_string(), "ap_fixed<10,4,AP_RND,AP_SAT>");
    let ceil = FixedType { rounding: Some(Rounding::Ceiling), ..FixedType::plain(f) };
    assert!(ceil.to_dialect(Dialect::ApFixed).unwrap_err().to_string().contains("ap_fixed has no rounding ceil"));
    assert_eq!(ceil.to_string(), "q4.6 (ceil, -)");
    let qq = QonnxQuant::new(FixedType { rounding: Some(Rounding::Ceiling), ..FixedType::plain(f) }).unwrap();
    assert_eq!((qq.rounding_mode, qq.scale(), qq.zeropt), ("CEIL", 1.0 / 64.0, 0));
    for bad in ["ap_fixed<10,4>", "ap_fixed<10,4,AP_RND,AP_SAT>", "ap_ufixed<8,0,AP_RND_CONV,AP_SAT_SYM>"] {
        let e = QonnxQuant::new(ty(bad)).unwrap_err().to_string();
        assert!(e.starts_with("QONNX has no"), "{bad}: {e}");
    }
    for d in Dialect::ALL {
        assert_eq!(d.to_string().parse::<Dialect>().unwrap(), d);
    }
}

fn format() -> impl Strategy<Value = QFormat> {
    (any::<bool>(), 1u32..=64, -70i32..90).prop_filter_map("signed 1-bit", |(s, w, f)| QFormat::new(s, w, f).ok())
}

fn rounding() -> impl Strategy<Value = Rounding> {
    prop::sample::select(Rounding::ALL.to_vec())
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop::sample::select(Overflow::ALL.to_vec())
}

/// `raw / 2^s` rounded (`s <= 100`), the textbook way: the two neighbours and which one the rule picks.
fn reference_round(raw: i128, s: i32, r: Rounding) -> (i128, i128) {
    if s <= 0 {
        let v = raw * (1i128 << -s);
        return (v, v);
    }
    let d = 1i128 << s;
    let (lo, rem) = (raw.div_euclid(d), raw.rem_euclid(d));
    let hi = lo + 1;
    if rem == 0 {
        return (lo, lo);
    }
    let positive = lo >= 0;
    let pick = match r {
        Rounding::Floor => lo,
        Rounding::Ceiling => hi,
        Rounding::Zero => {
            if positive {
                lo
            } else {
                hi
            }
        }
        Rounding::AwayFromZero => {
            if positive {
                hi
            } else {
                lo
            }
        }
        _ if 2 * rem < d => lo,
        _ if 2 * rem > d => hi,
        Rounding::Nearest => hi,
        Rounding::NearestTiesToMinusInf => lo,
        Rounding::Round => {
            if positive {
                hi
            } else {
                lo
            }
        }
        Rounding::NearestTiesToZero => {
            if positive {
                lo
            } else {
                hi
            }
        }
        Rounding::Convergent => {
            if lo.rem_euclid(2) == 0 {
                lo
            } else {
                hi
            }
        }
        _ => unreachable!("a new rounding needs its reference"),
    };
    (pick, lo)
}

/// `o` applied to `v` (rounded from `floor`), the textbook way.
fn reference_overflow(q: QFormat, v: i128, floor: i128, o: Overflow) -> i128 {
    let w = q.word_bits();
    let (min, max) = if q.signed() { (-(1i128 << (w - 1)), (1i128 << (w - 1)) - 1) } else { (0, (1i128 << w) - 1) };
    let wrapped = (v - min).rem_euclid(1i128 << w) + min;
    let inside = (min..=max).contains(&v);
    match o {
        Overflow::Saturate => v.clamp(min, max),
        Overflow::SaturateSymmetric if q.signed() => v.clamp(-max, max),
        Overflow::SaturateSymmetric => v.clamp(min, max),
        Overflow::SaturateZero => {
            if inside {
                v
            } else {
                0
            }
        }
        Overflow::Wrap => wrapped,
        Overflow::WrapSignMagnitude if inside || !q.signed() => wrapped,
        Overflow::WrapSignMagnitude => {
            // Vitis: complemented when the floor's bit w differs from the wrapped word's sign
            let bit_w = floor.div_euclid(1i128 << w).rem_euclid(2) == 1;
            if bit_w != (wrapped < 0) {
                -wrapped - 1
            } else {
                wrapped
            }
        }
        _ => unreachable!("a new overflow needs its reference"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// `requantize` (stored integers, no floats) is the slow reference for every mode and width <= 64.
    #[test]
    fn requantize_is_the_reference(q in format(), raw in -(1i128 << 100)..(1i128 << 100), shift in -20i32..=100,
                                   r in rounding(), o in overflow()) {
        let from = q.frac_bits() + shift;
        let (v, floor) = reference_round(raw, shift, r);
        prop_assert_eq!(q.requantize(raw, from, r, o), reference_overflow(q, v, floor, o), "{} raw={} s={} {} {}", q, raw, shift, r, o);
    }

    /// `quantize` and `Quantizer` (floats) are the same reference on values exact in f64.
    #[test]
    fn quantize_is_the_reference(q in format(), raw in -(1i128 << 53)..(1i128 << 53), shift in 0i32..=60,
                                 r in rounding(), o in overflow()) {
        prop_assume!(q.frac_bits().abs() <= 900);
        let x = raw as f64 * 2f64.powi(-q.frac_bits() - shift);
        let (v, floor) = reference_round(raw, shift, r);
        let want = reference_overflow(q, v, floor, o);
        prop_assert_eq!(q.quantize(x, r, o), want, "{} x={:e} {} {}", q, x, r, o);
        if let Ok(fast) = Quantizer::new(q, r, o) {
            prop_assert_eq!(fast.quantize(x) as i128, want, "Quantizer {} x={:e} {} {}", q, x, r, o);
        }
    }

    /// Every format prints in every dialect and reads back as itself; types with ap_fixed modes too.
    #[test]
    fn dialects_round_trip(q in format(), r in rounding(), o in overflow()) {
        for d in [Dialect::Q, Dialect::Matlab, Dialect::ApFixed, Dialect::Hls4ml] {
            let text = q.to_dialect(d);
            prop_assert_eq!(text.parse::<QFormat>().unwrap(), q, "{}", text);
        }
        let t = FixedType { format: q, rounding: Some(r), overflow: Some(o) };
        for d in [Dialect::ApFixed, Dialect::Hls4ml] {
            match t.to_dialect(d) {
                Ok(text) => prop_assert_eq!(text.parse::<FixedType>().unwrap(), t, "{}", text),
                Err(_) => prop_assert!(r.ap_name().is_none() || (o == Overflow::WrapSignMagnitude && !q.signed())),
            }
        }
    }
}
