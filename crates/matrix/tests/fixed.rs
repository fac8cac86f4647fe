//! Fixed-point convolution: im2col + GEMM against direct loops, bit for bit, and fixed-point.md vector 9.

use convmat_matrix::{flip_kernel, Accumulation, FixedConv};
use convmat_numeric::{Overflow, QFormat, Rounding};
use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode, TrueConvShape};
use ndarray::Array2;
use proptest::prelude::*;

fn uniform(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    // 2·[-0.5, 0.5) is [-1, 1) exactly (multiples of 2^-53 scaled by 2)
    let mut rng = convmat_numeric::Xorshift64::new(seed | 1);
    (0..n).map(|_| 2.0 * rng.half() * scale).collect()
}

#[derive(Clone, Debug)]
struct Case {
    conv: FixedConv,
    x: Array2<i64>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=3,
        1usize..=2,
        1usize..=3,
        1usize..=3,
        prop::collection::vec((2usize..6, 1usize..4, 1usize..3, 0usize..2), 3),
        prop::sample::select(PaddingMode::ALL.to_vec()),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec!["q1.7", "q1.15", "q4.4", "q8.8", "uq4.4", "q16.16", "q24.24"]),
        prop::sample::select(vec!["q1.7", "q2.6", "q8.8", "q16.16", "q32.16"]),
        1.0f64..300.0,
        any::<u64>(),
    )
        .prop_filter_map("invalid", |(rank, g, cin, cout, axes, mode, transposed, bias, wf, xf, scale, seed)| {
            let axes = &axes[..rank];
            let v = |f: fn(&(usize, usize, usize, usize)) -> usize| axes.iter().map(f).collect::<Vec<_>>();
            let spec = if transposed {
                ConvSpec::new_transposed(rank, g * cin, g * cout, v(|a| a.1))
            } else {
                ConvSpec::new(rank, g * cin, g * cout, v(|a| a.1)).with_padding_mode(mode)
            }
            .with_groups(g)
            .with_stride(v(|a| a.2))
            .with_padding(Padding::symmetric(v(|a| a.3)))
            .with_bias(bias);
            let geometry = Geometry::new(&spec, &v(|a| a.0)).ok()?;
            let (wf, xf): (QFormat, QFormat) = (wf.parse().unwrap(), xf.parse().unwrap());
            let n: usize = spec.weight_shape().iter().product();
            let b = bias.then(|| uniform(spec.out_channels(), seed ^ 9, scale));
            let conv = FixedConv::new(geometry, &uniform(n, seed, scale), b.as_deref(), wf, xf).ok()?;
            let cols = conv.raw_conv().cols();
            let x =
                Array2::from_shape_vec((2, cols), conv.quantize_input(&uniform(2 * cols, seed ^ 5, scale))).unwrap();
            Some(Case { conv, x })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn gemm_equals_direct_loops_bit_for_bit(c in case()) {
        let Ok(y) = c.conv.apply(c.x.view(), Accumulation::Full) else { return Ok(()) };
        for (row, x) in y.raw.outer_iter().zip(c.x.outer_iter()) {
            prop_assert_eq!(row.to_vec(), c.conv.apply_direct(x.as_slice().unwrap()).unwrap());
        }
        // every exact result fits the accumulator format MATLAB's full precision predicts
        prop_assert!(y.raw.iter().all(|&v| v >= y.format.raw_min() && v <= y.format.raw_max()));
    }

    #[test]
    fn a_wide_enough_narrow_accumulator_is_exact(c in case(), r in prop::sample::select(Rounding::ALL.to_vec())) {
        prop_assume!(!c.conv.raw_conv().geometry().spec().is_transposed());
        let Ok(full) = c.conv.apply(c.x.view(), Accumulation::Full) else { return Ok(()) };
        let narrow = Accumulation::Narrow { format: full.format, rounding: r, overflow: Overflow::Wrap };
        prop_assert_eq!(c.conv.apply(c.x.view(), narrow).unwrap().raw, full.raw);
    }
}

#[test]
fn narrow_accumulator_saturates_every_step() {
    // y = 0.75*x0 + 0.75*x1 + (-0.75)*x2 with x = (1, 1, 1) in q1.7: the exact sum is 0.75*127/128*... ;
    // in a q1.7 accumulator the partial sum saturates at 127/128 before the negative term comes.
    let q17: QFormat = "q1.7".parse().unwrap();
    let g = Geometry::new(&ConvSpec::new(1, 1, 1, [3]).with_bias(false), &[3]).unwrap();
    let conv = FixedConv::new(g, &[0.75, 0.75, -0.75], None, q17, q17).unwrap();
    let x = Array2::from_shape_vec((1, 3), conv.quantize_input(&[1.0, 1.0, 1.0])).unwrap();
    let full = conv.apply(x.view(), Accumulation::Full).unwrap();
    assert_eq!(full.raw[[0, 0]], 96 * 127); // 0.75 * 127/128, exact at 2^-14
    let narrow = Accumulation::Narrow { format: q17, rounding: Rounding::Floor, overflow: Overflow::Saturate };
    let y = conv.apply(x.view(), narrow).unwrap();
    // products: floor(96*127 / 128) = 95; 95 + 95 = 190 -> 127; 127 - 96 = 31
    assert_eq!(y.raw[[0, 0]], 31);
    let wrap = Accumulation::Narrow { format: q17, rounding: Rounding::Floor, overflow: Overflow::Wrap };
    // 95 + 95 = 190 wraps to -66; -66 - 96 = -162 wraps to 94
    assert_eq!(conv.apply(x.view(), wrap).unwrap().raw[[0, 0]], 94);
}

#[test]
fn vector_9_conv_of_fi_integers() {
    // fi([-1 2 3 -2 0 1 2]) (s16,13) conv fi([2 4 -1 1]) (s16,12): full and 'same', as s34,25
    let (fa, fb): (QFormat, QFormat) = ("s16,13".parse().unwrap(), "s16,12".parse().unwrap());
    let a = [-1.0, 2.0, 3.0, -2.0, 0.0, 1.0, 2.0];
    let h = [2.0, 4.0, -1.0, 1.0];
    for (shape, expect) in [
        (TrueConvShape::Full, vec![-2.0, 0.0, 15.0, 5.0, -9.0, 7.0, 6.0, 7.0, -1.0, 2.0]),
        (TrueConvShape::Same, vec![15.0, 5.0, -9.0, 7.0, 6.0, 7.0, -1.0]),
    ] {
        let spec = ConvSpec::new(1, 1, 1, [4]).with_bias(false);
        let spec = spec.clone().with_padding(shape.padding(spec.kernel_size(), spec.dilation()));
        let g = Geometry::new(&spec, &[7]).unwrap();
        let conv = FixedConv::new(g, &flip_kernel(&h, &[1, 1, 4]), None, fb, fa).unwrap();
        let x = Array2::from_shape_vec((1, 7), conv.quantize_input(&a)).unwrap();
        let y = conv.apply(x.view(), Accumulation::Full).unwrap();
        assert_eq!((y.format.word_bits(), y.format.frac_bits()), (34, 25));
        assert_eq!(y.to_f64().unwrap().row(0).to_vec(), expect, "{shape:?}");
    }
}

#[test]
fn cast_to_output_format() {
    let q17: QFormat = "q1.7".parse().unwrap();
    let g = Geometry::new(&ConvSpec::new(1, 1, 1, [2]).with_bias(false), &[2]).unwrap();
    let conv = FixedConv::new(g, &[0.5, -0.25], None, q17, q17).unwrap();
    let x = Array2::from_shape_vec((1, 2), conv.quantize_input(&[0.3, 0.7])).unwrap();
    let y = conv.apply(x.view(), Accumulation::Full).unwrap();
    // 64*38 - 32*90 = -448 at 2^-14 = -3.5 / 128: a tie
    assert_eq!(y.raw[[0, 0]], -448);
    let cast = |r| y.cast(q17, r, Overflow::Saturate).raw[[0, 0]];
    assert_eq!([cast(Rounding::Nearest), cast(Rounding::Round), cast(Rounding::Convergent)], [-3, -4, -4]);
    assert_eq!([cast(Rounding::Floor), cast(Rounding::Ceiling), cast(Rounding::Zero)], [-4, -3, -3]);
}

/// `ConvLayer::apply` in fixed point (fused: quantized straight to f32, exact f32 GEMM, one conversion
/// of each result, when the formats prove it exact) gives exactly the general path's values: quantize,
/// `FixedConv::apply` in i128, cast, `to_f64` or the stored integers. Formats on both sides of the
/// 2^24 bound, with and without bias, cast and raw, and inputs beyond the range and non-finite.
#[test]
fn fused_apply_equals_the_general_path() {
    use convmat_matrix::{Applied, ApplyOptions, ConvLayer};
    use convmat_numeric::Dtype;
    use convmat_shape::LayerOptions;
    // (input format, weight format, output cast, bias, padding, stride)
    type Case = (&'static str, &'static str, Option<&'static str>, bool, Padding, Vec<usize>);
    let cases: [Case; 7] = [
        ("q1.7", "q1.7", None, false, Padding::uniform(1), vec![1]),
        ("q1.7", "q1.7", Some("q1.7"), true, Padding::uniform(1), vec![1]),
        ("q2.6", "q1.7", None, true, Padding::Valid, vec![2]),
        ("q4.4", "uq4.4", Some("q3.5"), false, Padding::uniform(2), vec![1]),
        ("q1.15", "q1.7", None, false, Padding::uniform(1), vec![1]), // 2^15 * 2^7 * 36 > 2^24: general path
        ("q1.15", "q1.15", Some("q1.15"), true, Padding::Valid, vec![1]),
        ("q8.8", "q1.7", Some("q2.14"), false, Padding::uniform(1), vec![2]),
    ];
    for (i, (xf, wf, out, bias, padding, stride)) in cases.into_iter().enumerate() {
        let (xf, wf): (QFormat, QFormat) = (xf.parse().unwrap(), wf.parse().unwrap());
        let mut options = LayerOptions::default();
        (options.padding, options.stride) = (padding, stride);
        let (cin, cout) = (4, 3);
        let w = uniform(cout * cin * 9, 3 + i as u64, 1.5);
        let b = bias.then(|| uniform(cout, 5 + i as u64, 2.0));
        let layer = ConvLayer::new(&[cout, cin, 3, 3], w, b, &[cin, 7, 6], &options).unwrap();
        let n = 3;
        let mut x = uniform(n * cin * 42, 7 + i as u64, 3.0);
        x[0] = f64::NAN;
        x[1] = f64::INFINITY;
        x[2] = f64::NEG_INFINITY;
        x[3] = 0.5 / 128.0; // a tie of q1.7
        let fc = layer.fixed(wf, xf).unwrap();
        let xq = Array2::from_shape_vec((n, fc.raw_conv().cols()), fc.quantize_input(&x)).unwrap();
        let mut y = fc.apply(xq.view(), Accumulation::Full).unwrap();
        let out: Option<QFormat> = out.map(|o| o.parse().unwrap());
        if let Some(o) = out {
            y = y.cast(o, Rounding::Nearest, Overflow::Saturate);
        }
        for raw in [false, true] {
            let mut opts = ApplyOptions::new(Dtype::Fixed(xf));
            opts.weight_format = Some(wf);
            opts.out_format = out;
            opts.raw = raw;
            let got = layer.apply(&x, n, &opts).unwrap();
            assert_eq!(got.format, y.format.to_string(), "case {i}");
            let want = if raw {
                Applied::I64(y.raw.iter().map(|&v| v as i64).collect())
            } else {
                Applied::F64(y.to_f64().unwrap().iter().copied().collect())
            };
            assert_eq!(got.values, want, "case {i} raw {raw}");
        }
    }
}

/// `ConvLayer::apply` in f32 (each sample converted to f32 just before its product, the bias added
/// in parallel) equals `Conv::conv_unfold` on the whole batch converted first, with and without bias,
/// on the shifted and the unfold paths, batches below and above the thread count.
#[test]
fn f32_apply_converts_sample_by_sample() {
    use convmat_matrix::{Applied, ApplyOptions, ConvLayer};
    use convmat_numeric::Dtype;
    use convmat_shape::LayerOptions;
    for (i, (bias, stride)) in [(true, 1), (false, 1), (true, 2)].into_iter().enumerate() {
        let mut options = LayerOptions::default();
        (options.padding, options.stride) = (Padding::uniform(1), vec![stride]);
        let (cin, cout) = (3, 5);
        let w = uniform(cout * cin * 9, 11 + i as u64, 1.0);
        let b = bias.then(|| uniform(cout, 13 + i as u64, 1.0));
        let layer = ConvLayer::new(&[cout, cin, 3, 3], w, b, &[cin, 7, 6], &options).unwrap();
        for n in [1, 3] {
            let x = uniform(n * cin * 42, 17 + n as u64, 2.0);
            let got = layer.apply(&x, n, &ApplyOptions::new(Dtype::F32)).unwrap();
            let xf =
                ndarray::ArrayD::from_shape_vec(vec![n, cin, 7, 6], x.iter().map(|&v| v as f32).collect()).unwrap();
            let want = layer.conv::<f32>().unwrap().conv_unfold(xf.view()).unwrap();
            assert_eq!(got.values, Applied::F32(want.iter().copied().collect()), "layer {i}, batch {n}");
            assert_eq!(got.shape, want.shape().to_vec());
        }
    }
}
