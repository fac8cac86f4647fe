//! cconv against MATLAB's documented examples and a brute-force modulo sum; the FFT circulant operator
//! against the matrix-free one.

use convmat_matrix::{cconv, cconv_matrix, Circulant, Conv};
use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
use ndarray::Array2;
use proptest::prelude::*;

#[test]
fn cconv_matlab_documentation_examples() {
    // "Circular Convolution with Specified Length" / "Linear and Circular Convolution" examples
    let (a, b) = ([2i32, 1, 2, 1], [1i32, 2, 3, 4]);
    assert_eq!(cconv(&a, &b, Some(4)), vec![14, 16, 14, 16]);
    assert_eq!(cconv(&a, &b, Some(5)), vec![13, 9, 10, 16, 12]);
    assert_eq!(cconv(&a, &b, None), vec![2, 5, 10, 16, 12, 11, 4]); // n = len(a) + len(b) - 1: linear
    assert_eq!(cconv(&a, &b, Some(10)), vec![2, 5, 10, 16, 12, 11, 4, 0, 0, 0]);
    let (a, b) = ([1i32, 2, -1, 1], [1i32, 1, 2, 1, 2, 2, 1, 1]);
    assert_eq!(cconv(&a, &b, Some(11)), vec![1, 3, 3, 5, 3, 7, 4, 3, 3, 0, 1]);
}

proptest! {
    #[test]
    fn cconv_is_the_wrapped_linear_convolution(
        a in prop::collection::vec(-9i64..9, 1..8), b in prop::collection::vec(-9i64..9, 1..8), n in 1usize..20
    ) {
        let mut expect = vec![0i128; n];
        for (i, &x) in a.iter().enumerate() {
            for (j, &y) in b.iter().enumerate() {
                expect[(i + j) % n] += (x * y) as i128;
            }
        }
        prop_assert_eq!(cconv(&a, &b, Some(n)), expect.clone());
        let c = cconv_matrix(&b, a.len(), Some(n));
        let av = ndarray::Array1::from(a.clone());
        prop_assert_eq!(c.dot(&av).to_vec().iter().map(|&v| v as i128).collect::<Vec<_>>(), expect);
    }
}

#[test]
fn fft_apply_equals_the_matrix_free_operator() {
    let cases = [
        (ConvSpec::new(2, 3, 2, [3]).with_padding(Padding::Same), vec![5, 6]),
        (ConvSpec::new(2, 2, 4, [3]).with_groups(2).with_stride([2]).with_padding(Padding::uniform(1)), vec![6, 8]),
        (
            ConvSpec::new(1, 2, 3, [4])
                .with_stride([2])
                .with_dilation([2])
                .with_padding(Padding::Explicit { begin: vec![3], end: vec![3] }),
            vec![10],
        ),
        (ConvSpec::new(3, 1, 2, [3]).with_padding(Padding::Same), vec![3, 4, 5]),
    ];
    for (spec, input) in cases {
        let spec = spec.with_padding_mode(PaddingMode::Circular).with_bias(false);
        let n: usize = spec.weight_shape().iter().product();
        let w: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
        let conv = Conv::new(Geometry::new(&spec, &input).unwrap(), w, None).unwrap();
        let circ = Circulant::new(&conv).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let x = Array2::from_shape_fn((2, conv.cols()), |(b, i)| ((i * 13 + b * 7) % 9) as f64 - 4.0);
        let fft = circ.apply(x.view()).unwrap();
        let direct = conv.apply(x.view()).unwrap();
        let err = (&fft - &direct).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-9, "{spec}: {err}");
    }
}
