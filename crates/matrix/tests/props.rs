//! Invariants of every builder over random layers covering every option, on integer-valued data so
//! that equality is exact.

use convmat_matrix::{direct_conv, fold, unfold, Affine, Conv, MatrixOptions};
use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
use ndarray::{Array1, Array2, ArrayD, Axis, IxDyn};
use proptest::prelude::*;

mod common;
use common::random_spec;

/// A random layer with weights, bias and an input batch.
#[derive(Clone, Debug)]
struct Case {
    conv: Conv<f64>,
    x: Array2<f64>,
}

/// Small integers (-3..=3) from the workspace's seeded generator: exact in f64 sums.
fn ints(n: usize, seed: u64) -> Vec<f64> {
    convmat_numeric::SeededRng::new(seed).small_ints(n, 3)
}

fn padding() -> impl Strategy<Value = (u8, Vec<usize>)> {
    (0u8..5, prop::collection::vec(0usize..3, 6))
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=3,                                                                        // rank
        1usize..=2,                                                                        // groups
        1usize..=2,                                                                        // in channels per group
        1usize..=2,                                                                        // out channels per group
        prop::collection::vec((3usize..7, 1usize..4, 1usize..3, 1usize..3, 0usize..2), 3), // n, k, s, d, op
        padding(),
        prop::sample::select(PaddingMode::ALL.to_vec()),
        any::<bool>(), // transposed
        any::<bool>(), // bias
        1usize..3,     // batch
        any::<u64>(),
    )
        .prop_filter_map(
            "invalid layer",
            |(rank, g, cin, cout, axes, (pk, pads), mode, transposed, bias, batch, seed)| {
                let (spec, spatial) = random_spec(&axes[..rank], (g, cin, cout), (pk, &pads), mode, transposed);
                let spec = spec.with_bias(bias);
                let geometry = Geometry::new(&spec, &spatial).ok()?;
                let wlen = spec.weight_shape().iter().product();
                let b = bias.then(|| ints(spec.out_channels(), seed ^ 1));
                let conv = Conv::new(geometry, ints(wlen, seed), b).ok()?;
                let x = Array2::from_shape_vec((batch, conv.cols()), ints(batch * conv.cols(), seed ^ 2)).unwrap();
                Some(Case { conv, x })
            },
        )
}

fn direct_batch(c: &Conv<f64>, x: &Array2<f64>, with_bias: bool) -> Array2<f64> {
    let mut y = Array2::zeros((x.nrows(), c.rows()));
    for (i, xi) in x.axis_iter(Axis(0)).enumerate() {
        let out =
            direct_conv(c.geometry(), c.weight(), if with_bias { c.bias() } else { None }, xi.as_slice().unwrap())
                .unwrap();
        y.row_mut(i).assign(&Array1::from(out));
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn dense_times_x_is_direct_conv(c in case()) {
        let a = c.conv.dense();
        prop_assert_eq!(a.dim(), (c.conv.rows(), c.conv.cols()));
        let y = c.x.dot(&a.t());
        prop_assert_eq!(&y, &direct_batch(&c.conv, &c.x, false));
        // forward adds the bias, and the matrix-free apply gives the same
        prop_assert_eq!(c.conv.forward(c.x.view()).unwrap(), direct_batch(&c.conv, &c.x, true));
        prop_assert_eq!(c.conv.apply(c.x.view()).unwrap(), y);
    }

    #[test]
    fn csr_csc_dense_agree(c in case(), drop in any::<bool>()) {
        let dense = c.conv.dense();
        let opts = MatrixOptions::default().drop_zeros(drop);
        let csr = c.conv.csr_with::<u32, u32>(&opts).unwrap();
        let csc = c.conv.csc_with::<usize, usize>(&opts).unwrap();
        prop_assert!(csr.is_csr() && csc.is_csc());
        prop_assert_eq!(&csr.to_dense(), &dense);
        prop_assert_eq!(&csc.to_dense(), &dense);
        prop_assert_eq!(csr.nnz(), csc.nnz());
        // sorted, unique indices (sprs's own structure check)
        prop_assert!(sprs::CsMatI::try_new(csr.shape(), csr.indptr().raw_storage().to_vec(), csr.indices().to_vec(), csr.data().to_vec()).is_ok());
        if drop {
            prop_assert!(csr.data().iter().all(|&v| v != 0.0));
            prop_assert_eq!(csr.nnz(), dense.iter().filter(|&&v| v != 0.0).count());
        } else {
            // every stored entry is a real tap: as many as the distinct inputs each output reads
            let mut structural = 0;
            let taps = c.conv.tap_map();
            let g = c.conv.geometry();
            let per = g.grid_channels() / g.spec().groups() * g.window_channels();
            for w in 0..taps.windows_len() { structural += taps.hit_count(w); }
            prop_assert_eq!(csr.nnz(), structural * per);
        }
    }

    #[test]
    fn row_ranges_stack_to_the_full_matrix(c in case(), cut in 0.0f64..1.0, affine in prop::sample::select(vec![Affine::None, Affine::Column, Affine::Homogeneous])) {
        let full = c.conv.dense_with(&MatrixOptions::default().affine(affine)).unwrap();
        let rows = full.nrows();
        let mid = ((rows as f64 * cut) as usize).clamp(1, rows.saturating_sub(1).max(1));
        let mut pieces = Vec::new();
        let mut sparse = Vec::new();
        for range in [0..mid, mid..rows] {
            if range.is_empty() { continue; }
            let o = MatrixOptions::default().affine(affine).rows(range);
            pieces.push(c.conv.dense_with(&o).unwrap());
            sparse.push(c.conv.csr_with::<u32, u64>(&o).unwrap().to_dense());
        }
        let views: Vec<_> = pieces.iter().map(|p| p.view()).collect();
        prop_assert_eq!(&ndarray::concatenate(Axis(0), &views).unwrap(), &full);
        let views: Vec<_> = sparse.iter().map(|p| p.view()).collect();
        prop_assert_eq!(&ndarray::concatenate(Axis(0), &views).unwrap(), &full);
        // the affine forms: [A | b] and the homogeneous row
        if affine != Affine::None {
            let a = c.conv.dense();
            let b = c.conv.expanded_bias().unwrap_or_else(|| vec![0.0; c.conv.rows()]);
            prop_assert_eq!(full.slice(ndarray::s![..c.conv.rows(), ..c.conv.cols()]), a.view());
            prop_assert_eq!(full.slice(ndarray::s![..c.conv.rows(), c.conv.cols()]).to_vec(), b);
            if affine == Affine::Homogeneous {
                let last = full.row(rows - 1).to_vec();
                let mut expect = vec![0.0; c.conv.cols() + 1];
                expect[c.conv.cols()] = 1.0;
                prop_assert_eq!(last, expect);
            }
        }
    }

    #[test]
    fn adjoint_is_the_transpose(c in case()) {
        let a = c.conv.dense();
        let y = Array2::from_shape_vec((c.x.nrows(), c.conv.rows()), ints(c.x.nrows() * c.conv.rows(), 7)).unwrap();
        let aty = c.conv.adjoint(y.view()).unwrap();
        prop_assert_eq!(&aty, &y.dot(&a));
        // <A x, y> == <x, Aᵀ y>
        let ax = c.conv.apply(c.x.view()).unwrap();
        prop_assert_eq!((&ax * &y).sum(), (&c.x * &aty).sum());
        // the GEMM operator is the same matrix
        prop_assert_eq!(&c.conv.apply_gemm(c.x.view()).unwrap(), &c.x.dot(&a.t()));
        prop_assert_eq!(&c.conv.adjoint_gemm(y.view()).unwrap(), &aty);
    }

    #[test]
    fn transposed_matrix_is_the_conv_matrix_transposed(c in case()) {
        let g = c.conv.geometry();
        let s = g.spec();
        prop_assume!(s.padding_mode() == PaddingMode::Zeros);
        // the same layer with transposed-ness flipped, on the other side's grid
        let other = if s.is_transposed() {
            ConvSpec::new(s.rank(), s.out_channels(), s.in_channels(), s.kernel_size())
        } else {
            ConvSpec::new_transposed(s.rank(), s.out_channels(), s.in_channels(), s.kernel_size())
        }
        .with_stride(s.stride())
        .with_dilation(s.dilation())
        .with_groups(s.groups())
        .with_padding(Padding::Explicit { begin: g.pad_begin().to_vec(), end: g.pad_end().to_vec() });
        let other = if s.is_transposed() { other } else {
            // output_padding makes the transposed output reach the conv's input size
            let op: Vec<usize> = (0..s.rank()).map(|d| {
                let (n, o) = (g.input_spatial()[d], g.output_spatial()[d]);
                let base = (o - 1) * s.stride()[d] + s.dilation()[d] * (s.kernel_size()[d] - 1) + 1 - g.pad_begin()[d] - g.pad_end()[d];
                n - base
            }).collect();
            other.with_output_padding(op)
        };
        let Ok(og) = Geometry::new(&other, g.output_spatial()) else { return Ok(()) };
        prop_assume!(og.output_spatial() == g.input_spatial());
        let t = Conv::new(og, c.conv.weight().to_vec(), None).unwrap();
        prop_assert_eq!(t.dense(), c.conv.dense().t().to_owned());
    }

    #[test]
    fn unfold_fold_and_gemm(c in case()) {
        let g = c.conv.geometry();
        let n = c.x.nrows();
        // unfold is the operator the taps define, fold its adjoint
        let grid_shape: Vec<usize> = [n, g.grid_channels()].into_iter().chain(g.grid().iter().copied()).collect();
        let grid_len: usize = grid_shape.iter().product();
        let xg = ArrayD::from_shape_vec(IxDyn(&grid_shape), ints(grid_len, 3)).unwrap();
        let cols = unfold(g, xg.view()).unwrap();
        let cshape = cols.dim();
        let other = ndarray::Array3::from_shape_vec(cshape, ints(cshape.0 * cshape.1 * cshape.2, 5)).unwrap();
        let folded = fold(g, other.view()).unwrap();
        prop_assert_eq!((&cols * &other).sum(), (&xg * &folded).sum());
        // brute force unfold: entry (c*K + t, w) reads tap t of window w
        let taps = c.conv.tap_map();
        let k = taps.kernel_len();
        let flat = xg.as_slice().unwrap();
        for ch in 0..g.grid_channels() {
            for w in 0..taps.windows_len() {
                for t in 0..k {
                    let expect = taps.read(w, t).map_or(0.0, |p| flat[ch * taps.grid_len() + p]);
                    prop_assert_eq!(cols[[0, ch * k + t, w]], expect);
                }
            }
        }
        // convolution as unfold + GEMM (+ fold when transposed) equals the direct loops
        let in_shape: Vec<usize> = [n].into_iter().chain(g.input_shape()).collect();
        let x = c.x.clone().into_shape_with_order(IxDyn(&in_shape)).unwrap();
        let y = c.conv.conv_unfold(x.view()).unwrap();
        let y = y.into_shape_with_order((n, c.conv.rows())).unwrap();
        prop_assert_eq!(y, direct_batch(&c.conv, &c.x, true));
    }

    #[test]
    fn kernel_adjoint_is_the_brute_force_sum(c in case(), affine in any::<bool>()) {
        let (rows, cols) = (c.conv.rows(), c.conv.cols() + usize::from(affine));
        let gvals = ints(rows * cols, 11);
        let grad = Array2::from_shape_vec((rows, cols), gvals).unwrap();
        let got = c.conv.kernel_adjoint(grad.view()).unwrap();
        let sparse = sprs::CsMat::csr_from_dense(grad.view(), 0.0);
        prop_assert_eq!(&c.conv.kernel_adjoint_sparse(&sparse).unwrap(), &got);
        // dL/dw_i = <G, dA/dw_i>, and dA/dw_i is the matrix of the unit weight e_i
        let n = c.conv.weight().len();
        for i in 0..n {
            let mut e = vec![0.0; n];
            e[i] = 1.0;
            let unit = Conv::new(c.conv.geometry().clone(), e, None).unwrap().dense();
            let expect = (&grad.slice(ndarray::s![.., ..c.conv.cols()]) * &unit).sum();
            prop_assert_eq!(got.weight[i], expect, "weight {}", i);
        }
        if affine {
            let oc = c.conv.geometry().spec().out_channels();
            let per = rows / oc;
            let expect: Vec<f64> = (0..oc).map(|ch| (0..per).map(|r| grad[[ch * per + r, cols - 1]]).sum()).collect();
            prop_assert_eq!(got.bias.unwrap(), expect);
        } else {
            prop_assert!(got.bias.is_none());
        }
    }

    #[test]
    fn integer_matrices_equal_float_ones(c in case()) {
        let w: Vec<i32> = c.conv.weight().iter().map(|&v| v as i32).collect();
        let b = c.conv.bias().map(|b| b.iter().map(|&v| v as i32).collect());
        let ci = Conv::new(c.conv.geometry().clone(), w, b).unwrap();
        prop_assert_eq!(ci.dense().mapv(f64::from), c.conv.dense());
        prop_assert_eq!(ci.csr().unwrap().to_dense().mapv(f64::from), c.conv.dense());
    }
}
