//! Single-vector kernels (parallel over entries) and the deterministic random vector every run
//! starts from.

use rayon::prelude::*;

/// A deterministic pseudo-random vector, uniform in [-0.5, 0.5).
pub(crate) fn random_vector(n: usize) -> Vec<f64> {
    convmat_numeric::Xorshift64::new(0x9E3779B97F4A7C15).half_vec(n)
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.par_iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    y.par_iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

pub(crate) fn normalize(v: &mut [f64]) -> f64 {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.par_iter_mut().for_each(|x| *x /= n);
    }
    n
}
