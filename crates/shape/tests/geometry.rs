//! Geometry, flat indices and tap maps against brute force.

use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode, RowMajor, ShapeError};
use proptest::prelude::*;

/// One axis of a random layer.
#[derive(Clone, Debug)]
struct Axis {
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    begin: usize,
    end: usize,
}

fn axis() -> impl Strategy<Value = Axis> {
    (1usize..12, 1usize..5, 1usize..4, 1usize..4, 0usize..5, 0usize..5)
        .prop_map(|(input, kernel, stride, dilation, begin, end)| Axis { input, kernel, stride, dilation, begin, end })
}

fn mode() -> impl Strategy<Value = PaddingMode> {
    prop::sample::select(PaddingMode::ALL.to_vec())
}

fn spec_of(axes: &[Axis], mode: PaddingMode) -> ConvSpec {
    let v = |f: fn(&Axis) -> usize| axes.iter().map(f).collect::<Vec<_>>();
    ConvSpec::new(axes.len(), 2, 3, v(|a| a.kernel))
        .with_stride(v(|a| a.stride))
        .with_dilation(v(|a| a.dilation))
        .with_padding(Padding::Explicit { begin: v(|a| a.begin), end: v(|a| a.end) })
        .with_padding_mode(mode)
}

/// `F.pad` of one axis written out literally: the padded axis as a list of source indices (`None` = 0).
fn padded_axis(n: usize, begin: usize, end: usize, mode: PaddingMode) -> Vec<Option<usize>> {
    let x: Vec<usize> = (0..n).collect();
    let (head, tail): (Vec<Option<usize>>, Vec<Option<usize>>) = match mode {
        PaddingMode::Zeros => (vec![None; begin], vec![None; end]),
        PaddingMode::Replicate => (vec![Some(0); begin], vec![Some(n - 1); end]),
        // x[begin], ..., x[1] | x | x[n-2], ..., x[n-1-end]
        PaddingMode::Reflect => (
            x[1..=begin].iter().rev().map(|&i| Some(i)).collect(),
            x[n - 1 - end..n - 1].iter().rev().map(|&i| Some(i)).collect(),
        ),
        // x[n-begin..] | x | x[..end]
        PaddingMode::Circular => {
            (x[n - begin..].iter().map(|&i| Some(i)).collect(), x[..end].iter().map(|&i| Some(i)).collect())
        }
    };
    head.into_iter().chain(x.iter().map(|&i| Some(i))).chain(tail).collect()
}

fn brute_output_len(a: &Axis) -> usize {
    let padded = a.input + a.begin + a.end;
    let eff = a.dilation * (a.kernel - 1) + 1;
    (0..padded).step_by(a.stride).filter(|&p| p + eff <= padded).count()
}

fn mode_allows(a: &Axis, mode: PaddingMode) -> bool {
    match mode {
        PaddingMode::Reflect => a.begin.max(a.end) < a.input,
        PaddingMode::Circular => a.begin.max(a.end) <= a.input,
        _ => true,
    }
}

proptest! {
    #[test]
    fn output_size_counts_valid_windows(axes in prop::collection::vec(axis(), 1..=3), mode in mode()) {
        let spec = spec_of(&axes, mode);
        let input: Vec<usize> = axes.iter().map(|a| a.input).collect();
        let brute: Vec<usize> = axes.iter().map(brute_output_len).collect();
        let allowed = axes.iter().all(|a| mode_allows(a, mode));
        match Geometry::new(&spec, &input) {
            Ok(g) => {
                prop_assert!(allowed);
                prop_assert_eq!(g.output_spatial(), brute.as_slice());
                prop_assert_eq!(g.rows(), 3 * brute.iter().product::<usize>());
                prop_assert_eq!(g.cols(), 2 * input.iter().product::<usize>());
            }
            Err(ShapeError::PaddingTooLarge { .. }) => prop_assert!(!allowed),
            Err(ShapeError::InputTooSmall { dim, .. }) => prop_assert_eq!(brute[dim], 0),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn taps_read_the_padded_array(axes in prop::collection::vec(axis(), 1..=3), mode in mode()) {
        let spec = spec_of(&axes, mode);
        let input: Vec<usize> = axes.iter().map(|a| a.input).collect();
        let Ok(g) = Geometry::new(&spec, &input) else { return Ok(()) };
        let taps = g.tap_map();
        let padded: Vec<_> = axes.iter().map(|a| padded_axis(a.input, a.begin, a.end, mode)).collect();
        let in_layout = RowMajor::new(&input).unwrap();
        let out_layout = RowMajor::new(g.output_spatial()).unwrap();
        let k_layout = RowMajor::new(spec.kernel_size()).unwrap();
        let mut seen = 0;
        for w in 0..out_layout.len() {
            let o = out_layout.decode(w);
            let mut via_for_each = Vec::new();
            taps.for_each_read(w, |t, r| via_for_each.push((t, r)));
            prop_assert_eq!(via_for_each.len(), k_layout.len());
            for (t, read) in via_for_each {
                let k = k_layout.decode(t);
                let expect: Option<Vec<usize>> = (0..axes.len())
                    .map(|d| padded[d][o[d] * axes[d].stride + k[d] * axes[d].dilation])
                    .collect();
                let expect = expect.map(|idx| in_layout.encode(&idx));
                prop_assert_eq!(read, expect);
                prop_assert_eq!(taps.read(w, t), expect);
                if let Some(r) = read {
                    prop_assert!(r < in_layout.len());
                }
            }
            // hits: distinct, increasing, and every non-padding tap accounted for exactly once
            let mut hits = Vec::new();
            let mut tap_total = 0;
            taps.for_each_hit(w, |idx, [t0, t1, t2]| {
                hits.push(idx);
                tap_total += t0.len() * t1.len() * t2.len();
            });
            prop_assert!(hits.windows(2).all(|p| p[0] < p[1]));
            prop_assert_eq!(hits.len(), taps.hit_count(w));
            let mut reads = Vec::new();
            taps.for_each_read(w, |_, r| reads.extend(r));
            prop_assert_eq!(tap_total, reads.len());
            reads.sort_unstable();
            reads.dedup();
            prop_assert_eq!(&reads, &hits);
            seen += 1;
        }
        prop_assert_eq!(seen, taps.windows_len());

        // readers are the exact inverse of reads: (grid, window, tap) triples agree
        let mut forward = Vec::new();
        for w in 0..taps.windows_len() {
            taps.for_each_read(w, |t, r| if let Some(p) = r { forward.push((p, w, t)) });
        }
        let mut inverse = Vec::new();
        let ks = taps.kernel_strides();
        for p in 0..taps.grid_len() {
            let mut windows = Vec::new();
            taps.for_each_reader(p, |w, [t0, t1, t2]| {
                windows.push(w);
                for &a in t0 { for &b in t1 { for &c in t2 { inverse.push((p, w, a * ks[0] + b * ks[1] + c)); } } }
            });
            prop_assert!(windows.windows(2).all(|q| q[0] < q[1]));
            prop_assert_eq!(windows.len(), taps.reader_count(p));
        }
        forward.sort_unstable();
        inverse.sort_unstable();
        prop_assert_eq!(forward, inverse);
    }

    #[test]
    fn same_keeps_the_size(
        dims in prop::collection::vec((1usize..10, 1usize..6, 1usize..4), 1..=3),
        mode in mode(),
    ) {
        let input: Vec<usize> = dims.iter().map(|d| d.0).collect();
        let k: Vec<usize> = dims.iter().map(|d| d.1).collect();
        let dil: Vec<usize> = dims.iter().map(|d| d.2).collect();
        let spec = ConvSpec::new(dims.len(), 1, 1, &k).with_dilation(&dil).with_padding(Padding::Same).with_padding_mode(mode);
        match Geometry::new(&spec, &input) {
            Ok(g) => {
                prop_assert_eq!(g.output_spatial(), input.as_slice());
                for d in 0..dims.len() {
                    let total = dil[d] * (k[d] - 1);
                    prop_assert_eq!(g.pad_begin()[d], total / 2);
                    prop_assert_eq!(g.pad_end()[d], total - total / 2);
                }
            }
            Err(ShapeError::PaddingTooLarge { .. }) => prop_assert!(mode == PaddingMode::Reflect || mode == PaddingMode::Circular),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn onnx_same_gives_ceil(input in 1usize..30, k in 1usize..6, s in 1usize..5, d in 1usize..3, upper in any::<bool>()) {
        let pad = if upper { Padding::SameUpper } else { Padding::SameLower };
        let spec = ConvSpec::new(1, 1, 1, [k]).with_stride([s]).with_dilation([d]).with_padding(pad);
        let g = Geometry::new(&spec, &[input]).unwrap();
        prop_assert_eq!(g.output_spatial()[0], input.div_ceil(s));
        let (b, e) = (g.pad_begin()[0], g.pad_end()[0]);
        prop_assert!(b.abs_diff(e) <= 1);
        let ordered = if upper { e >= b } else { b >= e };
        prop_assert!(ordered);
    }

    #[test]
    fn encode_decode_round_trip(shape in prop::collection::vec(1usize..7, 0..5), seed in any::<usize>()) {
        let l = RowMajor::new(&shape).unwrap();
        let flat = seed % l.len();
        let idx = l.decode(flat);
        prop_assert_eq!(l.encode(&idx), flat);
        // row-major: the last index varies fastest
        if let (Some(&last), true) = (idx.last(), flat + 1 < l.len()) {
            let next = l.decode(flat + 1);
            if last + 1 < *shape.last().unwrap() {
                prop_assert_eq!(next.last().copied(), Some(last + 1));
            }
        }
    }

    #[test]
    fn transposed_is_the_matching_conv(
        (input, k, s, d, p, op) in (1usize..8, 1usize..5, 1usize..4, 1usize..3, 0usize..3, 0usize..3)
    ) {
        let spec = ConvSpec::new_transposed(1, 2, 4, [k]).with_stride([s]).with_dilation([d])
            .with_padding(Padding::uniform(p)).with_output_padding([op]);
        match Geometry::new(&spec, &[input]) {
            Ok(g) => {
                let out = g.output_spatial()[0];
                prop_assert_eq!(out as i64, (input as i64 - 1) * s as i64 - 2 * p as i64 + (d * (k - 1)) as i64 + op as i64 + 1);
                prop_assert_eq!(g.grid(), &[out]);
                prop_assert_eq!(g.windows(), &[input]);
                // the matching conv over the transposed output has at least `input` windows, exactly when op < s
                let conv = ConvSpec::new(1, 4, 2, [k]).with_stride([s]).with_dilation([d]).with_padding(Padding::uniform(p));
                let back = Geometry::new(&conv, &[out]).unwrap().output_spatial()[0];
                prop_assert!(back >= input);
                if op < s { prop_assert_eq!(back, input); }
            }
            Err(ShapeError::OutputPadding { .. }) => prop_assert!(op >= s && op >= d),
            Err(ShapeError::EmptyOutput { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

/// Data-driven: `(spec, input) -> Ok(output spatial) | Err(message fragment)`.
fn check(spec: ConvSpec, input: &[usize], expect: Result<&[usize], &str>) {
    let got = Geometry::new(&spec, input);
    match (got, expect) {
        (Ok(g), Ok(out)) => assert_eq!(g.output_spatial(), out, "{spec}"),
        (Err(e), Err(fragment)) => {
            assert!(e.to_string().contains(fragment), "{spec}: error `{e}` does not mention `{fragment}`")
        }
        (got, expect) => panic!("{spec} on {input:?}: got {got:?}, expected {expect:?}"),
    }
}

#[test]
fn geometry_cases() {
    let c2 = |cin, cout, k: &[usize]| ConvSpec::new(2, cin, cout, k);
    check(c2(1, 6, &[3]), &[32, 32], Ok(&[30, 30]));
    check(c2(3, 64, &[7]).with_stride([2]).with_padding(Padding::uniform(3)), &[224, 224], Ok(&[112, 112]));
    check(c2(3, 8, &[3, 5]).with_stride([2, 1]).with_padding(Padding::symmetric([1, 2])), &[9, 10], Ok(&[5, 10]));
    check(c2(1, 1, &[3]).with_padding(Padding::onnx([0, 1, 2, 3]).unwrap()), &[5, 5], Ok(&[5, 7]));
    check(c2(1, 1, &[4]).with_padding(Padding::Same), &[6, 7], Ok(&[6, 7]));
    check(c2(1, 1, &[3]).with_stride([2]).with_padding(Padding::SameUpper), &[7, 8], Ok(&[4, 4]));
    check(c2(1, 1, &[3]).with_padding(Padding::Valid), &[3, 3], Ok(&[1, 1]));
    check(ConvSpec::new(3, 1, 1, [3]), &[3, 4, 5], Ok(&[1, 2, 3]));
    check(ConvSpec::new(1, 4, 2, [5]), &[9], Ok(&[5]));
    // ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1) on 7x7 -> 14x14 (PyTorch)
    let t = ConvSpec::new_transposed(2, 16, 8, [3]).with_stride([2]).with_padding(Padding::uniform(1));
    check(t.clone().with_output_padding([1]), &[7, 7], Ok(&[14, 14]));
    check(t, &[7, 7], Ok(&[13, 13]));

    check(
        c2(3, 8, &[5]),
        &[4, 4],
        Err("input size 4 (padded 4) in spatial dim 0 is smaller than the dilated kernel 5"),
    );
    check(c2(3, 8, &[3]).with_dilation([6]).with_padding(Padding::uniform(1)), &[9, 9], Err("dilated kernel 13"));
    check(
        c2(1, 1, &[7]).with_padding(Padding::uniform(3)).with_padding_mode(PaddingMode::Reflect),
        &[3, 3],
        Err("padding 3 for input size 3"),
    );
    check(
        c2(1, 1, &[9]).with_padding(Padding::uniform(4)).with_padding_mode(PaddingMode::Circular),
        &[3, 3],
        Err("at most the input size"),
    );
    check(c2(1, 1, &[3]).with_stride([2]).with_padding(Padding::Same), &[8, 8], Err("strided"));
    check(c2(3, 8, &[3]).with_groups(2), &[8, 8], Err("in_channels=3 is not divisible by groups=2"));
    check(c2(4, 6, &[3]).with_groups(4), &[8, 8], Err("out_channels=6 is not divisible by groups=4"));
    check(c2(1, 1, &[3]).with_stride([0]), &[8, 8], Err("stride must be at least 1, got 0"));
    check(c2(1, 1, &[3, 3, 3]), &[8, 8], Err("kernel_size has 3 values, expected 1 or 2"));
    check(c2(1, 1, &[3]), &[8], Err("expects input 2 spatial dimensions"));
    check(c2(1, 1, &[1]), &[8, 0], Err("input size must be at least 1"));
    check(ConvSpec::new(4, 1, 1, [1]), &[1, 1, 1, 1], Err("rank must be 1, 2 or 3, got 4"));
    check(
        ConvSpec::new_transposed(2, 1, 1, [3]).with_stride([2]).with_output_padding([2]),
        &[4, 4],
        Err("output_padding 2 in spatial dim 0 must be smaller than either stride 2 or dilation 1"),
    );
    check(
        ConvSpec::new_transposed(2, 1, 1, [3]).with_padding_mode(PaddingMode::Reflect),
        &[4, 4],
        Err("only padding_mode='zeros'"),
    );
    check(ConvSpec::new_transposed(1, 1, 1, [2]).with_padding(Padding::uniform(3)), &[1], Err("would be -4"));
    check(c2(1, 1, &[3]).with_output_padding([1]), &[5, 5], Err("transposed convolutions only"));
}

#[test]
fn padding_parse_cases() {
    let cases: &[(&str, usize, Result<Padding, &str>)] = &[
        ("1", 2, Ok(Padding::uniform(1))),
        ("1,2", 2, Ok(Padding::symmetric([1, 2]))),
        ("0,1,2,3", 2, Ok(Padding::Explicit { begin: vec![0, 1], end: vec![2, 3] })),
        ("same", 3, Ok(Padding::Same)),
        ("'valid'", 1, Ok(Padding::Valid)),
        ("SAME_UPPER", 2, Ok(Padding::SameUpper)),
        ("1,2,3", 2, Err("expected 'same'")),
        ("-1", 2, Err("invalid padding '-1'")),
        ("x", 1, Err("2 ints (ONNX pads")),
        ("(1,)", 2, Ok(Padding::uniform(1))),
        ("(1, 2)", 2, Ok(Padding::symmetric([1, 2]))),
        ("1,,2", 2, Err("invalid padding '1,,2'")),
        (",1", 1, Err("invalid padding ',1'")),
        ("99999999999999999999", 1, Err("one non-negative int")),
    ];
    for (text, rank, expect) in cases {
        match (Padding::parse(text, *rank), expect) {
            (Ok(p), Ok(e)) => assert_eq!(&p, e, "{text}"),
            (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "{text}: {e}"),
            (got, _) => panic!("{text}: got {got:?}"),
        }
    }
}

#[test]
fn weight_and_bias_checks() {
    let spec = ConvSpec::new(2, 6, 16, [3]).with_groups(2);
    assert_eq!(spec.weight_shape(), vec![16, 3, 3, 3]);
    assert!(spec.check_weight_shape(&[16, 3, 3, 3]).is_ok());
    let e = spec.check_weight_shape(&[16, 6, 3, 3]).unwrap_err().to_string();
    assert!(e.contains("[16, 6, 3, 3]") && e.contains("[16, 3, 3, 3]") && e.contains("C_out, C_in/groups"), "{e}");
    assert_eq!(
        spec.check_bias_len(15).unwrap_err().to_string(),
        "bias has 15 values, expected 16 (one per output channel)"
    );
    let t = ConvSpec::new_transposed(2, 16, 8, [3]).with_groups(4);
    assert_eq!(t.weight_shape(), vec![16, 2, 3, 3]);
    assert_eq!(ConvSpec::from_weight_shape(&[16, 2, 3, 3], 4, true).unwrap(), t);
    assert_eq!(ConvSpec::from_weight_shape(&[16, 3, 3, 3], 2, false).unwrap(), spec);
    assert!(ConvSpec::from_weight_shape(&[16, 3], 1, false).is_err());
    assert_eq!(spec.parameter_count(), 16 * 3 * 9 + 16);
}

#[test]
fn remap_matches_f_pad_on_the_limits() {
    // F.pad(arange(4), (3, 3), mode) as documented
    let cases = [
        (PaddingMode::Reflect, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]),
        (PaddingMode::Replicate, [0, 0, 0, 0, 1, 2, 3, 3, 3, 3]),
        (PaddingMode::Circular, [1, 2, 3, 0, 1, 2, 3, 0, 1, 2]),
    ];
    for (mode, expect) in cases {
        let got: Vec<usize> = (-3isize..7).map(|i| mode.remap(i, 4).unwrap()).collect();
        assert_eq!(got, expect, "{mode}");
    }
    assert_eq!(PaddingMode::Zeros.remap(-1, 4), None);
    assert_eq!(PaddingMode::Reflect.remap(-1, 1), Some(0));
}
