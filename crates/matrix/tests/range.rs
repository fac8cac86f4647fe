//! `accumulator_range` against brute force: every vertex of the input box through direct convolution
//! over an explicitly padded input (`direct_conv`), on random small layers covering every option; and
//! against the published bounds where their assumptions hold.

use convmat_matrix::{
    accumulator_range, direct_conv, signed_bits, AccumulatorRange, ConvLayer, Extremum, InputRange, RangeError,
    RangeOptions,
};
use convmat_numeric::{QFormat, SeededRng};
use convmat_shape::{Geometry, LayerOptions, Padding, PaddingMode};
use proptest::prelude::*;

mod common;
use common::random_spec;

/// A random layer with integer weights and bias, and the question asked of it.
#[derive(Clone, Debug)]
struct Case {
    layer: ConvLayer,
    options: RangeOptions,
}

fn fmt(s: &str) -> QFormat {
    s.parse().unwrap()
}

/// The stored box of the options, computed here: the whole format, or LO,HI rounded to nearest (ties
/// toward +inf, MATLAB's fi) in stored units.
fn stored_box(o: &RangeOptions) -> (i64, i64) {
    let f = o.input_format;
    match o.input_range {
        None => (f.raw_min() as i64, f.raw_max() as i64),
        Some(r) => {
            let s = 2f64.powi(f.frac_bits());
            ((r.lo() * s + 0.5).floor() as i64, (r.hi() * s + 0.5).floor() as i64)
        }
    }
}

/// Per axis whether an output position reads a full window with no tap in padding (three axes,
/// leading ones trivial): for a convolution `o·s - p + t·d` in `[0, n)` for every tap; for a transposed
/// one every tap aligned with the stride lands on an input.
fn interior_row(g: &Geometry, row: usize) -> bool {
    let spec = g.spec();
    let out = g.output_spatial();
    let rank = out.len();
    let mut pos = row % out.iter().product::<usize>();
    let mut coords = vec![0; rank];
    for d in (0..rank).rev() {
        coords[d] = pos % out[d];
        pos /= out[d];
    }
    (0..rank).all(|d| {
        let (k, s, dil, p) = (spec.kernel_size()[d], spec.stride()[d], spec.dilation()[d], g.pad_begin()[d]);
        let (o, n) = (coords[d] as isize, g.input_spatial()[d] as isize);
        (0..k as isize).all(|t| {
            if spec.is_transposed() {
                let j = o + p as isize - t * dil as isize;
                j.rem_euclid(s as isize) != 0 || (j >= 0 && (j / s as isize) < n)
            } else {
                let i = o * s as isize - p as isize + t * dil as isize;
                (0..n).contains(&i)
            }
        })
    })
}

/// Integer weights and bias as the accumulator sees them: `w - w_zp`, and the bias in stored units of
/// the product (`b · 2^(f_w + f_x)`, exact for the integer biases here).
fn effective(layer: &ConvLayer, o: &RangeOptions) -> (Vec<f64>, Option<Vec<f64>>) {
    let wf = o.weight_format.map_or(0, |f| f.frac_bits());
    let scale = 2f64.powi(wf + o.input_format.frac_bits());
    let w = layer.weight().iter().map(|&v| v * 2f64.powi(wf) - o.weight_zero_point as f64).collect();
    (w, layer.bias().map(|b| b.iter().map(|&v| v * scale).collect()))
}

/// Brute force over every vertex of the box: per channel (min, max, min over interior rows, max over
/// interior rows); `None` where the channel has no interior row.
fn brute(c: &Case) -> Vec<(f64, f64, Option<f64>, Option<f64>)> {
    let g = c.layer.geometry();
    let (lo, hi) = stored_box(&c.options);
    let zp = c.options.input_zero_point as f64;
    let (w, b) = effective(&c.layer, &c.options);
    let n = g.cols();
    let cout = g.spec().out_channels();
    let per = g.rows() / cout;
    let mut out = vec![(f64::INFINITY, f64::NEG_INFINITY, None::<f64>, None::<f64>); cout];
    for mask in 0u32..(1 << n) {
        let x: Vec<f64> = (0..n).map(|i| if mask >> i & 1 == 1 { hi as f64 } else { lo as f64 } - zp).collect();
        let y = direct_conv(g, &w, b.as_deref(), &x).unwrap();
        for (row, &v) in y.iter().enumerate() {
            let e = &mut out[row / per];
            e.0 = e.0.min(v);
            e.1 = e.1.max(v);
            if interior_row(g, row) {
                e.2 = Some(e.2.map_or(v, |m: f64| m.min(v)));
                e.3 = Some(e.3.map_or(v, |m: f64| m.max(v)));
            }
        }
    }
    out
}

/// The accumulator of `row` on the stored input `x`, by direct convolution.
fn accumulate(c: &Case, x: &[i64], row: usize) -> f64 {
    let (w, b) = effective(&c.layer, &c.options);
    let zp = c.options.input_zero_point;
    let x: Vec<f64> = x.iter().map(|&v| (v - zp) as f64).collect();
    direct_conv(c.layer.geometry(), &w, b.as_deref(), &x).unwrap()[row]
}

fn layer(max_cols: usize) -> impl Strategy<Value = Case> {
    (
        1usize..=3,                                                                        // rank
        1usize..=2,                                                                        // groups
        1usize..=2,                                                                        // in channels per group
        1usize..=2,                                                                        // out channels per group
        prop::collection::vec((1usize..7, 1usize..4, 1usize..3, 1usize..3, 0usize..2), 3), // n, k, s, d, op
        (0u8..5, prop::collection::vec(0usize..3, 6)),
        prop::sample::select(PaddingMode::ALL.to_vec()),
        (any::<bool>(), any::<bool>()),      // transposed, bias
        (0usize..4, any::<bool>()),          // input format, a weight format
        (any::<bool>(), 0u32..64, 0u32..64), // an input range, as two fractions of the format's range
        (0u32..64, -2i64..=2),               // zero points
        any::<u64>(),
    )
        .prop_filter_map(
            "invalid or too large layer",
            move |(rank, g, cin, cout, axes, (pk, pads), mode, (transposed, bias), (xf, wfmt), rng, zps, seed)| {
                let (spec, spatial) = random_spec(&axes[..rank], (g, cin, cout), (pk, &pads), mode, transposed);
                let input: Vec<usize> = std::iter::once(g * cin).chain(spatial).collect();
                if input.iter().product::<usize>() > max_cols {
                    return None;
                }
                let mut r = SeededRng::new(seed);
                let wlen = spec.weight_shape().iter().product();
                let weight = r.small_ints(wlen, 4);
                let b = bias.then(|| r.small_ints(g * cout, 20));
                let layer = ConvLayer::new(
                    &spec.weight_shape(),
                    weight,
                    b,
                    &input,
                    &LayerOptions::from_spec(&spec.with_bias(bias)),
                )
                .ok()?;
                let input_format = fmt(["q4.0", "uq3.0", "q8.0", "q2.2"][xf]);
                let mut options = RangeOptions::new(input_format);
                options.weight_format = wfmt.then(|| fmt("q4.0"));
                let (min, max) = (input_format.raw_min() as i64, input_format.raw_max() as i64);
                let (use_range, a, b) = rng;
                if use_range {
                    // LO,HI on a half-step grid of the format (ties round toward +inf)
                    let half = 2f64.powi(-input_format.frac_bits() - 1);
                    let span = (2 * (max - min)) as u32;
                    let (a, b) = ((a * span / 63).min(span), (b * span / 63).min(span));
                    let (a, b) = (a.min(b), a.max(b));
                    let lo = (2 * min) as f64 * half + a as f64 * half;
                    let hi = (2 * min) as f64 * half + b as f64 * half;
                    options.input_range = Some(InputRange::new(lo, hi).unwrap());
                }
                let (xz, wz) = zps;
                options.input_zero_point = min + i64::from(xz) * (max - min) / 63;
                // a weight zero point inside the weight format (the inferred one may be as narrow as q2.0)
                options.weight_zero_point = if wfmt { wz } else { 0 };
                Some(Case { layer, options })
            },
        )
}

fn check_case(c: &Case, r: &AccumulatorRange) -> Result<(), TestCaseError> {
    let expected = brute(c);
    prop_assert_eq!(r.channels().len(), expected.len());
    for (ch, (got, want)) in r.channels().iter().zip(&expected).enumerate() {
        prop_assert_eq!((got.min as f64, got.max as f64), (want.0, want.1), "channel {}", ch);
        prop_assert_eq!(got.bits, signed_bits(got.min, got.max));
        prop_assert_eq!(got.max_at_border, want.3.is_none_or(|i| want.1 > i), "channel {} max at border", ch);
        prop_assert_eq!(got.min_at_border, want.2.is_none_or(|i| want.0 < i), "channel {} min at border", ch);
        prop_assert!(
            got.bits <= r.datatype_bits(),
            "channel {}: {} bits > data-type {}",
            ch,
            got.bits,
            r.datatype_bits()
        );
        for which in Extremum::ALL {
            let x = r.witness(ch, which).unwrap();
            let row = r.witness_row(ch, which).unwrap();
            let (lo, hi) = r.input_bounds();
            prop_assert!(x.iter().all(|v| (lo..=hi).contains(v)));
            prop_assert_eq!(row / (c.layer.geometry().rows() / expected.len()), ch);
            prop_assert_eq!(accumulate(c, &x, row), got.value(which) as f64, "channel {} {} witness", ch, which);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    /// Every vertex of the box, through direct convolution: at most 12 inputs.
    #[test]
    fn equals_vertex_brute_force(c in layer(12)) {
        let r = accumulator_range(&c.layer, &c.options).unwrap();
        check_case(&c, &r)?;
    }
}

/// The row extremum from the matrix built column by column by direct convolution of unit inputs: on
/// layers too large to enumerate (many interior rows, several border classes per axis).
fn by_columns(c: &Case) -> Vec<(f64, f64)> {
    let g = c.layer.geometry();
    let (lo, hi) = stored_box(&c.options);
    let zp = c.options.input_zero_point;
    let (dl, dh) = ((lo - zp) as f64, (hi - zp) as f64);
    let (w, b) = effective(&c.layer, &c.options);
    let base = direct_conv(g, &w, b.as_deref(), &vec![0.0; g.cols()]).unwrap();
    let mut lo_v = base.clone();
    let mut hi_v = base;
    for col in 0..g.cols() {
        let mut e = vec![0.0; g.cols()];
        e[col] = 1.0;
        let y = direct_conv(g, &w, None, &e).unwrap();
        for (row, a) in y.iter().enumerate() {
            lo_v[row] += (a * dl).min(a * dh);
            hi_v[row] += (a * dl).max(a * dh);
        }
    }
    let cout = g.spec().out_channels();
    let per = g.rows() / cout;
    (0..cout)
        .map(|ch| {
            let rows = ch * per..(ch + 1) * per;
            (
                lo_v[rows.clone()].iter().copied().fold(f64::INFINITY, f64::min),
                hi_v[rows].iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn equals_column_brute_force_on_larger_layers(c in layer(200)) {
        let r = accumulator_range(&c.layer, &c.options).unwrap();
        let want = by_columns(&c);
        for (ch, (got, want)) in r.channels().iter().zip(&want).enumerate() {
            prop_assert_eq!((got.min as f64, got.max as f64), *want, "channel {}", ch);
            for which in Extremum::ALL {
                let x = r.witness(ch, which).unwrap();
                let row = r.witness_row(ch, which).unwrap();
                prop_assert_eq!(accumulate(&c, &x, row), got.value(which) as f64);
            }
        }
    }
}

fn conv1d(weight: &[f64], bias: Option<Vec<f64>>, n: usize, padding: usize) -> ConvLayer {
    let opts = LayerOptions::new().with_padding(Padding::uniform(padding));
    ConvLayer::new(&[1, 1, weight.len()], weight.to_vec(), bias, &[1, n], &opts).unwrap()
}

#[test]
fn qonnx_border_case_is_flagged() {
    // w = [1, -1], x in [1, 2], zero padding: interior rows x_i - x_(i+1) span [-1, 1] (qonnx's answer),
    // the last row reads x_3 and padding: it reaches 2, the first -x_0 reaches -2
    let layer = conv1d(&[1.0, -1.0], None, 4, 1);
    let mut o = RangeOptions::new(fmt("q8.0"));
    o.input_range = Some("1,2".parse().unwrap());
    let r = accumulator_range(&layer, &o).unwrap();
    let c = r.channels()[0];
    assert_eq!((c.min, c.max), (-2, 2));
    assert!(c.max_at_border && c.min_at_border && c.at_border());
    assert_eq!(r.witness_row(0, Extremum::Max).unwrap(), 4);
    assert_eq!(r.witness(0, Extremum::Max).unwrap(), [1, 1, 1, 2]);
    // without padding every row is interior: qonnx's [-1, 1]
    let r = accumulator_range(&conv1d(&[1.0, -1.0], None, 4, 0), &o).unwrap();
    let c = r.channels()[0];
    assert_eq!((c.min, c.max, c.at_border()), (-1, 1, false));
}

/// FINN's `MinimizeAccumulatorWidth` for a layer lowered to a matrix-vector unit: per output channel
/// the sum over its whole weight column of the product each weight prefers at the input type's bounds,
/// then the smallest signed type holding every channel's range (no padding: every row is the column).
fn finn_bits(weight: &[f64], cout: usize, lo: f64, hi: f64) -> u32 {
    let per = weight.len() / cout;
    weight
        .chunks(per)
        .map(|w| {
            let max: f64 = w.iter().map(|&v| (v * lo).max(v * hi)).sum();
            let min: f64 = w.iter().map(|&v| (v * lo).min(v * hi)).sum();
            signed_bits(min as i128, max as i128)
        })
        .max()
        .unwrap()
}

#[test]
fn equals_finn_and_a2q_plus_where_their_assumptions_hold() {
    // no bias, no padding; weights with zero sum per channel and unsigned inputs (A2Q+'s zero-centred case)
    for (seed, input) in [(1u64, "uq8.0"), (2, "uq4.0"), (3, "uq8.0")] {
        let mut rng = SeededRng::new(seed);
        let (cout, cin) = (4, 8);
        let mut weight = Vec::new();
        for _ in 0..cout {
            let half = rng.small_ints(cin * 9 / 2, 100);
            weight.extend(half.iter().copied());
            weight.extend(half.iter().map(|v| -v)); // zero-centred
        }
        let layer =
            ConvLayer::new(&[cout, cin, 3, 3], weight.clone(), None, &[cin, 6, 6], &LayerOptions::new()).unwrap();
        let f = fmt(input);
        let r = accumulator_range(&layer, &RangeOptions::new(f)).unwrap();
        assert_eq!(r.bits_layer(), finn_bits(&weight, cout, 0.0, f.raw_max() as f64), "{input}");
        assert_eq!(r.bits_layer(), r.a2q_plus_bits(), "{input}");
        for c in r.channels() {
            assert_eq!(c.bits, c.a2q_plus_bits);
            assert!(c.a2q_bits >= c.a2q_plus_bits);
        }
        // the data-type bound: 8 + input bits + ceil(log2 72) (weights q8.0: |w| <= 100)
        assert_eq!(r.datatype_bits(), 8 + f.word_bits() + 7);
        assert!(r.bits_layer() < r.datatype_bits());
    }
}

#[test]
fn strictly_tighter_than_the_published_bounds_where_bias_or_borders_matter() {
    // signed int8 inputs, random int8 weights: FINN (no padding) agrees; the data-type bound is loose
    let mut rng = SeededRng::new(9);
    let weight: Vec<f64> = rng.small_ints(16 * 64 * 9, 127);
    let layer = ConvLayer::new(&[16, 64, 3, 3], weight.clone(), None, &[64, 5, 5], &LayerOptions::new()).unwrap();
    let r = accumulator_range(&layer, &RangeOptions::new(fmt("q8.0"))).unwrap();
    assert_eq!(r.bits_layer(), finn_bits(&weight, 16, -128.0, 127.0));
    assert_eq!(r.datatype_bits(), 26);
    assert!(r.bits_layer() < 26);
    // a bias that moves the range past A2Q+'s width: A2Q+ (bias-blind) is then too narrow
    let w = [3.0, -2.0];
    let r = accumulator_range(&conv1d(&w, None, 4, 0), &RangeOptions::new(fmt("uq8.0"))).unwrap();
    let c = r.channels()[0];
    assert_eq!((c.min, c.max, c.bits, c.a2q_plus_bits), (-2 * 255, 3 * 255, 11, 11)); // ceil(log2(5·255 + 2))
    let r = accumulator_range(&conv1d(&w, Some(vec![600.0]), 4, 0), &RangeOptions::new(fmt("uq8.0"))).unwrap();
    let c = r.channels()[0];
    assert_eq!((c.min, c.max), (600 - 2 * 255, 600 + 3 * 255));
    assert_eq!((c.bits, c.a2q_plus_bits), (12, 11));
    // zero padding: the border rows lose a tap, whose best term is negative on inputs in [100, 200]
    let mut o = RangeOptions::new(fmt("uq8.0"));
    o.input_range = Some("100,200".parse().unwrap());
    let r = accumulator_range(&conv1d(&w, Some(vec![0.0]), 4, 1), &o).unwrap();
    let c = r.channels()[0];
    assert_eq!((c.min, c.max), (-2 * 200, 3 * 200)); // interior rows: [300 - 400, 600 - 200]
    assert!(c.max_at_border && c.min_at_border);
}

#[test]
fn reflect_collisions_sum_their_weights() {
    // Conv1d(1, 1, 3, padding=1, padding_mode='reflect') on 3 inputs, weights [5, 1, -5]: row 0 reads
    // x1, x0, x1 — x1's weight is 5 - 5 = 0, so its range is x0's alone: [-1, 1] for inputs in [-1, 1]
    let opts = LayerOptions::new().with_padding(Padding::uniform(1)).with_padding_mode(PaddingMode::Reflect);
    let layer = ConvLayer::new(&[1, 1, 3], vec![5.0, 1.0, -5.0], None, &[1, 3], &opts).unwrap();
    let mut o = RangeOptions::new(fmt("q8.0"));
    o.input_range = Some("-1,1".parse().unwrap());
    let r = accumulator_range(&layer, &o).unwrap();
    assert_eq!((r.channels()[0].min, r.channels()[0].max), (-11, 11)); // the interior row
    assert!(!r.channels()[0].at_border());
}

#[test]
fn zero_points_shift_the_box() {
    // uint8 inputs with zero point 128: x - 128 in [-128, 127]; weight zero point 1: w - 1
    let layer = conv1d(&[3.0, -1.0], None, 3, 0);
    let mut o = RangeOptions::new(fmt("uq8.0"));
    o.input_zero_point = 128;
    o.weight_zero_point = 1;
    let r = accumulator_range(&layer, &o).unwrap();
    // weights 2, -2: max 2·127 + 2·128, min -2·128 - 2·127
    assert_eq!((r.channels()[0].min, r.channels()[0].max), (-510, 510));
    assert_eq!(r.channels()[0].l1_norm, 4);
    assert_eq!(r.datatype_bits(), 8 + 1 + 3 + 1 + 1); // u8 + s3 weights, each operand one bit wider, 2 terms
}

#[test]
fn fractional_formats_use_stored_integers() {
    // q1.7 inputs in [-0.5, 0.25] are stored in [-64, 32]; q2.2 weights 0.75 and -1.5 are 3 and -6
    let layer = conv1d(&[0.75, -1.5], Some(vec![0.5]), 2, 0);
    let mut o = RangeOptions::new(fmt("q1.7"));
    o.input_range = Some("-0.5,0.25".parse().unwrap());
    o.weight_format = Some(fmt("q2.2"));
    let r = accumulator_range(&layer, &o).unwrap();
    assert_eq!(r.frac_bits(), 9);
    assert_eq!(r.input_bounds(), (-64, 32));
    let bias = 256; // 0.5 · 2^9
    assert_eq!(r.channels()[0].max, bias + 3 * 32 + 6 * 64);
    assert_eq!(r.channels()[0].min, bias - 3 * 64 - 6 * 32);
}

fn error(layer: &ConvLayer, f: impl FnOnce(&mut RangeOptions)) -> String {
    let mut o = RangeOptions::new(fmt("q8.0"));
    f(&mut o);
    let e = accumulator_range(layer, &o).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    e
}

#[test]
fn bad_input_is_one_clear_line() {
    let layer = conv1d(&[1.0, -1.0], None, 4, 0);
    let cases: Vec<(String, &str)> = vec![
        (
            error(&layer, |o| o.input_zero_point = 128),
            "input zero point 128 is outside q8.0's stored integers [-128, 127]",
        ),
        (error(&layer, |o| o.weight_zero_point = -3), "weight zero point -3 is outside q2.0's stored integers [-2, 1]"),
        (
            error(&layer, |o| o.input_range = Some(InputRange::new(-200.0, 0.0).unwrap())),
            "input range -200,0 is outside q8.0's values [-128, 127]",
        ),
        (
            error(&conv1d(&[0.5, 1.0], None, 4, 0), |_| ()),
            "weight value 0 is 0.5: without a weight format the weights must be integers",
        ),
        ("2,1".parse::<InputRange>().unwrap_err().to_string(), "input range 2,1 is empty or not finite"),
        ("".parse::<InputRange>().unwrap_err().to_string(), "invalid input range '': expected LO,HI"),
        ("1,x".parse::<InputRange>().unwrap_err().to_string(), "invalid input range '1,x'"),
        ("mid".parse::<Extremum>().unwrap_err().to_string(), "invalid extremum 'mid': expected min or max"),
    ];
    for (got, want) in cases {
        assert!(got.starts_with(want), "{got:?} does not start with {want:?}");
    }
    let r = accumulator_range(&layer, &RangeOptions::new(fmt("q8.0"))).unwrap();
    assert!(matches!(r.witness(1, Extremum::Max), Err(RangeError::Channel { channel: 1, channels: 1 })));
}

/// Per-channel weight zero points (ONNX's per-axis `w_zero_point`): the same extrema as the weights
/// shifted channel by channel with zero point 0, and a count that is neither one nor one per channel
/// refused.
#[test]
fn per_channel_weight_zero_points_shift_each_channel() {
    let w = vec![3.0, -2.0, 5.0, 1.0, 0.0, -4.0, 2.0, 2.0];
    let opts = LayerOptions::new().with_padding(Padding::uniform(1));
    let layer = ConvLayer::new(&[2, 2, 2], w.clone(), Some(vec![7.0, -9.0]), &[2, 3], &opts).unwrap();
    let mut o = RangeOptions::new(fmt("q8.0"));
    o.input_zero_point = 5;
    let zps = [1i64, -2];
    let got = convmat_matrix::accumulator_range_per_channel(&layer, &o, &zps).unwrap();
    let shifted: Vec<f64> = w.iter().enumerate().map(|(i, &v)| v - zps[i / 4] as f64).collect();
    let plain = ConvLayer::new(&[2, 2, 2], shifted, Some(vec![7.0, -9.0]), &[2, 3], &opts).unwrap();
    let want = accumulator_range(&plain, &o).unwrap();
    let ext = |r: &convmat_matrix::AccumulatorRange| r.channels().iter().map(|c| (c.min, c.max)).collect::<Vec<_>>();
    assert_eq!(ext(&got), ext(&want));
    assert_eq!(got.weight_zero_points(), zps);
    let e = convmat_matrix::accumulator_range_per_channel(&layer, &o, &[1, 2, 3]).unwrap_err().to_string();
    assert!(e.contains("3 weight zero points for 2 output channels"), "{e}");
}
