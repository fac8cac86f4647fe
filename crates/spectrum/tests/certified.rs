//! The certified norm interval and the interlacing bounds against dense SVD of the same matrix.

use convmat_matrix::Conv;
use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
use convmat_spectrum::{certified_norm, dense_singular_values, interlacing_upper_bounds, Certificate};
use proptest::prelude::*;

fn weights(n: usize, seed: u64) -> Vec<f64> {
    convmat_numeric::Xorshift64::new(seed | 1).half_vec(n)
}

fn conv(spec: &ConvSpec, input: &[usize], seed: u64) -> Option<Conv<f64>> {
    let n = spec.weight_shape().iter().product();
    Conv::new(Geometry::new(spec, input).ok()?, weights(n, seed), None).ok()
}

/// Relative slack for rounding in the dense reference.
const SLACK: f64 = 1e-11;

/// `lower <= σ_1 <= upper` and every interlacing bound above its singular value.
fn check(c: &Conv<f64>, tol: f64, what: &str) -> Certificate {
    let dense = dense_singular_values(c).unwrap();
    let s1 = dense[0];
    let n = certified_norm(c, tol).unwrap();
    assert!(n.lower <= s1 * (1.0 + SLACK), "{what}: lower {} above σ1 {s1}", n.lower);
    let upper = n.upper.unwrap_or_else(|| panic!("{what}: no upper bound ({})", n.certificate));
    assert!(upper >= s1 * (1.0 - SLACK), "{what}: upper {upper} below σ1 {s1} ({:?})", n);
    assert!(n.lower <= n.value && n.value <= upper, "{what}: value outside its interval");
    if n.certificate != Certificate::Exact {
        assert!(n.certificate != Certificate::ResidualOnly, "{what}");
    }
    let bounds = interlacing_upper_bounds(c, dense.len()).unwrap().expect("embeds");
    for (j, (b, s)) in bounds.iter().zip(&dense).enumerate() {
        assert!(*b >= s - SLACK * dense[0], "{what}: bound of σ_{} is {b} < {s}", j + 1);
    }
    for (j, b) in n.upper_bounds.iter().enumerate() {
        assert!(*b >= dense[j] - SLACK * s1, "{what}: norm's bound of σ_{} is {b} < {}", j + 1, dense[j]);
    }
    n.certificate
}

/// A random layer of every kind the interval claims to certify: zero padding with any stride,
/// dilation, groups, asymmetric padding, 1-3 spatial dims, transposed (with output padding); circular.
fn layer() -> impl Strategy<Value = (ConvSpec, Vec<usize>)> {
    (
        1usize..=3,
        1usize..=2,
        1usize..=3,
        1usize..=3,
        1usize..=3,
        1usize..=2,
        0usize..=2,
        0usize..=2,
        0usize..4,
        any::<bool>(),
        4usize..=9,
    )
        .prop_map(|(rank, g, cin, cout, k, dil, pb, pe, kind, wide, n)| {
            let (cin, cout) = (cin * g, cout * g);
            let (pb, pe) = (pb.min(k), pe.min(k));
            let stride = if kind == 1 { 2 } else { 1 + usize::from(wide && kind != 3) };
            let n = if rank == 3 {
                n.min(5)
            } else if rank == 1 {
                n * 3
            } else {
                n
            };
            let input = vec![n; rank];
            let spec = match kind {
                2 => ConvSpec::new_transposed(rank, cin, cout, [k])
                    .with_stride([stride])
                    .with_dilation([dil])
                    .with_groups(g)
                    .with_padding(Padding::uniform(pb.min(dil * (k - 1))))
                    .with_output_padding([usize::from(stride > 1 && wide)]),
                3 => ConvSpec::new(rank, cin, cout, [k])
                    .with_dilation([dil])
                    .with_groups(g)
                    .with_padding(Padding::Same)
                    .with_padding_mode(PaddingMode::Circular),
                _ => ConvSpec::new(rank, cin, cout, [k])
                    .with_stride([stride])
                    .with_dilation([dil])
                    .with_groups(g)
                    .with_padding(Padding::Explicit { begin: vec![pb; rank], end: vec![pe; rank] }),
            };
            (spec.with_bias(false), input)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    /// The true σ_1 lies inside the interval, and every interlacing bound above its value, on random
    /// layers of every certified kind and at loose and tight tolerances.
    #[test]
    fn the_interval_holds_the_norm((spec, input) in layer(), seed in any::<u64>(), tol in prop::sample::select(vec![1e-2, 1e-4, 1e-7])) {
        if let Some(c) = conv(&spec, &input, seed) {
            check(&c, tol, &format!("{spec} on {input:?}, tol {tol}"));
        }
    }
}

/// Layers whose top cluster the bounds separate: the interval is certified by Kato-Temple before
/// the Krylov space is exhausted, and shrinks to the tolerance.
#[test]
fn the_interval_shrinks_to_the_tolerance() {
    let cases = [
        ("4->4 3x3 on 24x24", ConvSpec::new(2, 4, 4, [3]).with_padding(Padding::uniform(1)), vec![24, 24], 11),
        ("8->8 3x3 on 16x16", ConvSpec::new(2, 8, 8, [3]).with_padding(Padding::uniform(1)), vec![16, 16], 12),
        ("1d 4->4 k3 on 100", ConvSpec::new(1, 4, 4, [3]).with_padding(Padding::uniform(1)), vec![100], 11),
        (
            "3->5 3x3 stride 2 on 20x20",
            ConvSpec::new(2, 3, 5, [3]).with_padding(Padding::uniform(1)).with_stride([2]),
            vec![20, 20],
            11,
        ),
        (
            "1d 2->2 k5 dilation 2 on 200",
            ConvSpec::new(1, 2, 2, [5]).with_padding(Padding::uniform(3)).with_dilation([2]),
            vec![200],
            12,
        ),
    ];
    for (name, spec, input, seed) in cases {
        let c = conv(&spec.with_bias(false), &input, seed).unwrap();
        let s1 = dense_singular_values(&c).unwrap()[0];
        for tol in [1e-4, 1e-6] {
            let n = certified_norm(&c, tol).unwrap();
            let upper = n.upper.unwrap();
            // at 1e-4 the interlacing bound alone can already be that tight
            let want: &[Certificate] = if tol < 1e-5 {
                &[Certificate::KatoTemple]
            } else {
                &[Certificate::KatoTemple, Certificate::Interlacing]
            };
            assert!(want.contains(&n.certificate), "{name}, tol {tol}: {n:?}");
            assert!((upper - n.lower) / n.lower <= tol, "{name}: width {} > {tol}", (upper - n.lower) / n.lower);
            assert!(n.lower <= s1 * (1.0 + SLACK) && s1 <= upper * (1.0 + SLACK), "{name}: {s1} outside {n:?}");
            assert!(n.iterations < c.cols().min(c.rows()), "{name}: the Krylov space was exhausted");
        }
    }
}

/// Reflect and replicate padding embed in no circulant: residual-only, with a lower bound and no upper.
#[test]
fn reflect_and_replicate_padding_are_residual_only() {
    for mode in [PaddingMode::Reflect, PaddingMode::Replicate] {
        let spec =
            ConvSpec::new(2, 3, 3, [3]).with_padding(Padding::uniform(1)).with_padding_mode(mode).with_bias(false);
        let c = conv(&spec, &[12, 12], 5).unwrap();
        let s1 = dense_singular_values(&c).unwrap()[0];
        let n = certified_norm(&c, 1e-8).unwrap();
        assert_eq!((n.certificate, n.upper), (Certificate::ResidualOnly, None), "{mode}");
        assert!(n.lower <= s1 * (1.0 + SLACK) && (n.value - s1).abs() <= 1e-6 * s1, "{mode}: {n:?} vs {s1}");
        assert_eq!(interlacing_upper_bounds(&c, 3).unwrap(), None);
    }
}
