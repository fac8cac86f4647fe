//! `sparse_norm`: the norm of an explicit CSR matrix, exact when small or diagonal-like, bracketed otherwise.

use std::sync::atomic::AtomicBool;

use convmat_matrix::{Conv, MatrixOptions};
use convmat_shape::{ConvSpec, Geometry, Padding};
use convmat_spectrum::{
    dense_singular_values, sparse_norm, Certificate, CsrRef, Monitor, SpectrumError, SPARSE_DENSE_LIMIT,
};

/// `reps` copies of `[[3, 1], [0, 2]]` on the diagonal: σ₁ = sqrt(7 + sqrt(13)).
fn blocks(reps: usize) -> (Vec<usize>, Vec<u32>, Vec<f64>) {
    let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
    for r in 0..reps {
        let c = 2 * r as u32;
        indices.extend([c, c + 1]);
        data.extend([3.0, 1.0]);
        indptr.push(indices.len());
        indices.push(c + 1);
        data.push(2.0);
        indptr.push(indices.len());
    }
    (indptr, indices, data)
}

#[test]
fn large_matrices_are_bracketed_by_power_iteration_and_the_norm_inequality() {
    let reps = 2000;
    assert!((2 * reps) * (2 * reps) > SPARSE_DENSE_LIMIT);
    let (indptr, indices, data) = blocks(reps);
    let a = CsrRef { rows: 2 * reps, cols: 2 * reps, indptr: &indptr, indices: &indices, data: &data };
    let n = sparse_norm(a, 1e-12, &Monitor::new()).unwrap();
    let s = (7.0 + 13f64.sqrt()).sqrt();
    assert_eq!(n.certificate, Certificate::Inequality);
    let upper = n.upper.unwrap();
    assert!(n.lower <= s && s <= upper, "{s} not in [{}, {upper}]", n.lower);
    assert!((n.lower - s).abs() <= 1e-9 * s, "power iteration converged: {} vs {s}", n.lower);
    // sqrt(||A||_1 ||A||_inf) = sqrt(3 * 4)
    assert!((upper - 12f64.sqrt()).abs() <= 1e-12);
}

#[test]
fn small_matrices_are_exact() {
    let spec = ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1)).with_bias(false);
    let w: Vec<f64> = (0..54).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
    let conv = Conv::new(Geometry::new(&spec, &[5, 6]).unwrap(), w, None).unwrap();
    let m = conv.csr_with::<u32, usize>(&MatrixOptions::default()).unwrap();
    let indptr = m.indptr();
    let a =
        CsrRef { rows: m.rows(), cols: m.cols(), indptr: indptr.raw_storage(), indices: m.indices(), data: m.data() };
    let n = sparse_norm(a, 1e-12, &Monitor::new()).unwrap();
    let s = dense_singular_values(&conv).unwrap()[0];
    assert_eq!(n.certificate, Certificate::Exact);
    assert!((n.value - s).abs() <= 1e-12 * s && n.lower == n.value && n.upper == Some(n.value));
}

#[test]
fn diagonal_like_matrices_are_exact_at_any_size() {
    // a scaled permutation (a folded BatchNorm alone is diagonal)
    let n = 5000;
    let indptr: Vec<usize> = (0..=n).collect();
    let indices: Vec<u32> = (0..n as u32).map(|r| (r * 7) % n as u32).collect();
    let data: Vec<f64> = (0..n).map(|r| (r % 13) as f64 - 6.5).collect();
    let a = CsrRef { rows: n, cols: n, indptr: &indptr, indices: &indices, data: &data };
    let r = sparse_norm(a, 1e-6, &Monitor::new()).unwrap();
    assert_eq!((r.certificate, r.value, r.upper), (Certificate::Exact, 6.5, Some(6.5)));
}

#[test]
fn bad_arrays_and_cancellation() {
    let (indptr, indices, data) = blocks(3);
    let bad = CsrRef { rows: 6, cols: 5, indptr: &indptr, indices: &indices, data: &data };
    let e = sparse_norm(bad, 1e-6, &Monitor::new()).unwrap_err();
    assert_eq!(e, SpectrumError::BadSparse { rows: 6, cols: 5, nnz: 9 });
    assert!(e.to_string().contains("columns be below 5"), "{e}");
    let (indptr, indices, data) = blocks(2000);
    let a = CsrRef { rows: 4000, cols: 4000, indptr: &indptr, indices: &indices, data: &data };
    let stop = AtomicBool::new(true);
    assert_eq!(sparse_norm(a, 1e-12, &Monitor::new().cancel_on(&stop)).unwrap_err(), SpectrumError::Cancelled);
}
