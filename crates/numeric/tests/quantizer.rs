//! `Quantizer` (the array path, no 128-bit arithmetic) gives exactly `QFormat::quantize`.

use convmat_numeric::{Overflow, QFormat, Quantizer, Rounding};
use proptest::prelude::*;

/// Values that probe every branch: ties of the format's step, near-ties, huge, tiny, specials.
fn value(f: i32) -> impl Strategy<Value = f64> {
    let step = 2f64.powi(-f.clamp(-1000, 1000));
    prop_oneof![
        any::<f64>(),
        (-1e6f64..1e6).prop_map(move |v| v * step),
        (-300i64..300).prop_map(move |k| (k as f64 + 0.5) * step),
        (-300i64..300, -3i32..=3).prop_map(move |(k, d)| ((k as f64 + 0.5) * step) * (1.0 + d as f64 * 1e-15)),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(move |k| k as f64 * step),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(f64::MIN_POSITIVE / 4.0),
        Just(-f64::MIN_POSITIVE / 4.0),
    ]
}

fn format() -> impl Strategy<Value = QFormat> {
    (any::<bool>(), 2u32..=64, -70i32..80).prop_map(|(s, w, f)| QFormat::new(s, if s { w } else { w - 1 }, f).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn quantizer_is_quantize((q, v) in format().prop_flat_map(|q| (Just(q), value(q.frac_bits()))),
                             r in 0usize..6, wrap in any::<bool>()) {
        let rounding = Rounding::ALL[r];
        let overflow = if wrap { Overflow::Wrap } else { Overflow::Saturate };
        let fast = Quantizer::new(q, rounding, overflow).unwrap();
        prop_assert_eq!(fast.quantize(v) as i128, q.quantize(v, rounding, overflow), "{} {:e} {} {}", q, v, rounding, overflow);
    }

    /// The slice path (branch-free for Nearest/Saturate up to 48 bits) is `quantize`, value by value.
    #[test]
    fn quantize_f32_is_quantize((q, v) in format().prop_flat_map(|q| (Just(q), prop::collection::vec(value(q.frac_bits()), 1..40))),
                                r in 0usize..6, wrap in any::<bool>()) {
        let rounding = if r < 3 { Rounding::Nearest } else { Rounding::ALL[r] };
        let overflow = if wrap && r % 2 == 0 { Overflow::Wrap } else { Overflow::Saturate };
        let fast = Quantizer::new(q, rounding, overflow).unwrap();
        let mut out = vec![f32::NAN; v.len()];
        fast.quantize_f32(&v, &mut out);
        for (&v, &o) in v.iter().zip(&out) {
            let want = q.quantize(v, rounding, overflow) as i64 as f32;
            prop_assert_eq!(o.to_bits(), want.to_bits(), "{} {:e} {} {}", q, v, rounding, overflow);
        }
    }
}

#[test]
fn extreme_fraction_lengths() {
    for f in [-1000, -999, 1000, 999, 1001, -1001, 1075] {
        let q = QFormat::new(true, 16, f).unwrap();
        for v in [1e-300, -1e-300, 5e-324, 1e300, 0.75, -0.75, 3.0] {
            for r in Rounding::ALL {
                let fast = Quantizer::new(q, r, Overflow::Saturate).unwrap();
                assert_eq!(fast.quantize(v) as i128, q.quantize(v, r, Overflow::Saturate), "{q} {v:e} {r}");
            }
        }
    }
    assert!(Quantizer::new(QFormat::new(true, 65, 0).unwrap(), Rounding::Nearest, Overflow::Saturate).is_err());
}
