//! Hostile input (issue 16): values chosen to overflow the arithmetic of the expression parser, pooling
//! and convolution geometry. Each case must end in a clean error naming the problem (or the right
//! answer), never a panic: these tests run in the dev profile, where overflow checks are on.

use convmat_shape::{parse_layer, propagate, ConvSpec, Geometry, PoolKind, PoolSpec, ShapeError, TrueConvShape};

/// `text` must fail to parse with a message containing `needle`.
fn parse_fails(text: &str, needle: &str) {
    let e = parse_layer(text).expect_err(text).to_string();
    assert!(e.contains(needle), "{text}: {e}");
}

#[test]
fn floor_division_of_i64_min_by_minus_one_is_an_overflow_error() {
    // -4611686018427387904 * 2 is i64::MIN (a bare -9223372036854775808 reads as a float)
    parse_fails("Linear(-4611686018427387904 * 2 // -1, 1)", "integer overflow");
    // divisions that fit still work, with Python's floor semantics
    let l = parse_layer("Linear(-7 // -2 + 0 * (-4611686018427387904 * 2 // 2), 1)").unwrap();
    assert_eq!(l.to_string(), "Linear(4, 1)");
}

#[test]
fn negating_i64_min_is_an_overflow_error() {
    parse_fails("Linear(-(-4611686018427387904 * 2), 1)", "integer overflow");
    parse_fails("Linear(0 - -(-4611686018427387904 * 2), 1)", "integer overflow");
    assert_eq!(parse_layer("Linear(--5, 1)").unwrap().to_string(), "Linear(5, 1)");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // tuples, arithmetic parentheses, unary minus signs
    for (open, close) in [("(", ")"), ("[", "]"), ("0 + (", ")"), ("-", "")] {
        let deep = format!("Linear({}1{}, 1)", open.repeat(100_000), close.repeat(100_000));
        parse_fails(&deep, "nested more than 64 levels");
    }
    // 60 levels are fine
    let l = parse_layer(&format!("Linear(0 + {}3{}, 1)", "(".repeat(60), ")".repeat(60))).unwrap();
    assert_eq!(l.to_string(), "Linear(3, 1)");
}

fn pool(rank: usize, k: usize, s: usize, p: usize, dil: usize) -> PoolSpec {
    PoolSpec {
        kind: PoolKind::Max,
        rank,
        kernel_size: vec![k; rank],
        stride: vec![s; rank],
        padding: vec![p; rank],
        dilation: vec![dil; rank],
        ceil_mode: true,
    }
}

#[test]
fn pool_output_checks_the_input_rank() {
    let e = pool(2, 2, 2, 0, 1).output_spatial(&[8]).unwrap_err();
    assert_eq!(e, ShapeError::Arity { param: "input size", expected: 2, got: 1 });
    assert_eq!(pool(2, 2, 2, 0, 1).output_spatial(&[8, 9]).unwrap(), vec![4, 5]);
}

#[test]
fn pool_output_with_huge_sizes_is_exact_or_an_error() {
    let m = usize::MAX;
    // (n + 2p - d(k-1) - 1 + s - 1) / s + 1, exactly: beyond i64 but within i128
    assert_eq!(pool(1, 3, 1, 1, 1).output_spatial(&[m]).unwrap(), vec![m]);
    // d * (k - 1) beyond i128
    let e = pool(1, m, 1, 0, m).output_spatial(&[m]).unwrap_err();
    assert!(matches!(e, ShapeError::TooLarge { .. }), "{e}");
    // a dilated kernel far larger than the input: an empty output, its size named
    let e = pool(1, 1 << 40, 1, 0, 1 << 40).output_spatial(&[5]).unwrap_err();
    assert!(matches!(e, ShapeError::EmptyOutput { dim: 0, .. }), "{e}");
}

#[test]
fn huge_kernels_and_strides_are_errors() {
    let m = i64::MAX; // the largest integer an expression holds
                      // dilation * (kernel - 1) overflows while resolving 'same' padding
    for padding in ["'same'", "'same_upper'", "0"] {
        let text = format!("Conv1d(1, 1, {m}, dilation={m}, padding={padding})");
        let layer = parse_layer(&text).unwrap();
        assert!(propagate(&[1, 4], [&layer]).is_err(), "{text}");
    }
    // a transposed output (n - 1) * s + ... beyond i128
    let m = usize::MAX;
    let spec = ConvSpec::new_transposed(1, 1, 1, [1]).with_stride([m]);
    let e = Geometry::new(&spec, &[m]).unwrap_err();
    assert!(matches!(e, ShapeError::SizeOverflow { dim: 0, what: "transposed output", .. }), "{e}");
}

#[test]
fn true_convolution_padding_of_an_empty_kernel_does_not_underflow() {
    for shape in [TrueConvShape::Full, TrueConvShape::Same, TrueConvShape::Valid] {
        let _ = shape.padding(&[0, 3], &[1, 1]);
        let _ = shape.padding(&[usize::MAX], &[usize::MAX]);
    }
}

#[test]
fn parameter_counts_that_overflow_are_errors_in_propagate() {
    let big = 1usize << 62;
    let linear = parse_layer(&format!("Linear({big}, 4)")).unwrap();
    assert_eq!(linear.parameter_count(), usize::MAX);
    let e = propagate(&[big], [&linear]).unwrap_err().to_string();
    assert!(e.contains("parameter count"), "{e}");
    // features beyond usize: the output shape's element count is checked
    let wide = parse_layer(&format!("Linear(2, {big})")).unwrap();
    let e = propagate(&[8, 2], [&wide]).unwrap_err();
    assert!(matches!(e.error, ShapeError::TooLarge { .. }), "{e}");
    // an input shape beyond usize
    assert!(propagate(&[big, big], [&parse_layer("ReLU()").unwrap()]).is_err());
}

#[test]
fn asymmetric_padding_prints_as_an_expression_that_reads_back() {
    // fuzz finding (layer): it printed as `padding=pads(0, 1, 1, 0, 1, 0)`, which parse_layer refused
    for text in [
        "Conv3d(3, 4, (1, 2, 6), stride=(2, 1, 1), padding=(0, 1, 1, 0, 1, 0))",
        "Conv1d(3, 4, 3, padding=(2, 0))",
        "ConvTranspose2d(3, 4, 3, padding=(1, 0, 0, 1))",
    ] {
        let layer = parse_layer(text).unwrap();
        assert_eq!(layer.to_string(), text);
        assert_eq!(parse_layer(&layer.to_string()).unwrap(), layer);
    }
    let spec = ConvSpec::new(2, 1, 1, [3]).with_padding(convmat_shape::Padding::onnx(vec![1, 2]).unwrap());
    assert_eq!(spec.to_string(), "Conv2d(1, 1, 3, padding=(1, 1, 2, 2))");
}

#[test]
fn groups_whose_channel_count_overflows_are_an_error() {
    // found by the CLI sweep: `convmat build --groups 18446744073709551615` multiplied in from_weight_shape
    for transposed in [false, true] {
        let e = ConvSpec::from_weight_shape(&[4, 3, 3, 3], usize::MAX, transposed).unwrap_err();
        assert!(matches!(e, ShapeError::Invalid { param: "groups", .. }), "{e}");
        assert!(e.to_string().contains(&usize::MAX.to_string()), "{e}");
    }
    // a weight of one channel per group takes any groups; the layer then refuses what does not divide
    let spec = ConvSpec::from_weight_shape(&[4, 1, 3, 3], usize::MAX, false).unwrap();
    assert!(spec.validate().is_err());
}
