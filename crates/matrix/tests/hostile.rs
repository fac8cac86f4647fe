//! Hostile input (issue 16): fixed-point accumulators at the edge of `i128` and empty kernels. Each
//! case is a clean error or the exact answer, never a panic (the dev profile keeps overflow checks on).

use convmat_matrix::{convmtx2, Accumulation, Conv, FixedConv, MatrixError};
use convmat_numeric::{NumericError, Overflow, QFormat, Rounding};
use convmat_shape::{ConvSpec, Geometry, TrueConvShape};
use ndarray::Array2;

/// `x[0..4] = i64::MAX` through the 4-tap kernel `w = i64::MAX`: four products of
/// `(2^63 - 1)^2 = 2^126 - 2^64 + 1`, whose sum `2^128 - 2^66 + 4` passes `i128::MAX`.
fn extreme() -> (FixedConv, Array2<i64>) {
    let s64 = QFormat::new(true, 64, 0).unwrap();
    let g = Geometry::new(&ConvSpec::new(1, 1, 1, [4]).with_bias(false), &[4]).unwrap();
    let conv = FixedConv::new(g, &[1e30; 4], None, s64, s64).unwrap(); // saturates to i64::MAX
    let x = conv.quantize_input(&[1e30; 4]);
    assert_eq!(x, vec![i64::MAX; 4]);
    (conv, Array2::from_shape_vec((1, 4), x).unwrap())
}

#[test]
fn narrow_128_bit_accumulator_saturates_or_wraps_past_i128() {
    let (conv, x) = extreme();
    let s128 = QFormat::new(true, 128, 0).unwrap();
    let narrow = |overflow| Accumulation::Narrow { format: s128, rounding: Rounding::Floor, overflow };
    let y = conv.apply(x.view(), narrow(Overflow::Saturate)).unwrap();
    assert_eq!(y.raw[[0, 0]], i128::MAX);
    // the true sum modulo 2^128, as two's complement: -2^66 + 4
    let y = conv.apply(x.view(), narrow(Overflow::Wrap)).unwrap();
    assert_eq!(y.raw[[0, 0]], -(1i128 << 66) + 4);
}

#[test]
fn narrow_127_bit_accumulators_stay_in_range() {
    let (conv, x) = extreme();
    for signed in [true, false] {
        let f = QFormat::new(signed, 127, 0).unwrap();
        for overflow in [Overflow::Saturate, Overflow::Wrap] {
            let y = conv.apply(x.view(), Accumulation::Narrow { format: f, rounding: Rounding::Floor, overflow });
            let v = y.unwrap().raw[[0, 0]];
            assert!((f.raw_min()..=f.raw_max()).contains(&v), "{f} {overflow}: {v}");
        }
    }
}

#[test]
fn full_precision_beyond_128_bits_is_an_error() {
    let (conv, x) = extreme();
    // 128-bit products, four terms: 130 bits
    let e = conv.apply(x.view(), Accumulation::Full).unwrap_err();
    assert_eq!(e, MatrixError::Numeric(NumericError::TooWide { bits: 130, max: 128 }));
}

#[test]
fn convmtx2_of_an_empty_kernel_or_image_is_an_error() {
    for (kh, kw) in [(0, 3), (3, 0), (0, 0)] {
        let h = Array2::<f64>::zeros((kh, kw));
        let e = convmtx2(h.view(), 4, 4).unwrap_err();
        assert!(matches!(e, MatrixError::Dimension { what: "convmtx2 kernel H", .. }), "{e}");
        assert!(e.to_string().contains(&format!("[{kh}, {kw}]")), "{e}");
    }
    let h = Array2::<f64>::ones((2, 2));
    for (m, n) in [(0, 4), (4, 0)] {
        let e = convmtx2(h.view(), m, n).unwrap_err();
        assert!(e.to_string().contains("at least 1-by-1"), "{e}");
    }
    assert_eq!(convmtx2(h.view(), 1, 1).unwrap().dim(), (4, 1));
}

#[test]
fn true_convolution_validates_before_deriving_its_padding() {
    let spec = ConvSpec::new(1, 1, 1, [0]);
    let e = Conv::<f64>::true_convolution(&spec, TrueConvShape::Full, &[4], &[], None).unwrap_err();
    assert!(e.to_string().contains("kernel_size"), "{e}");
    let huge = ConvSpec::new(1, 1, 1, [usize::MAX]).with_dilation([usize::MAX]);
    assert!(Conv::<f64>::true_convolution(&huge, TrueConvShape::Same, &[4], &[], None).is_err());
}
