//! Issue 18's goal layer: the certified norm of 64->64 3x3 zero padding on 56x56 with NumPy
//! `default_rng(0).standard_normal((64, 64, 3, 3)) / 24` (benches/data/w64_rng0.npy), timed.
//!
//! `cargo run --release -p convmat-spectrum --example norm_goal [-- TOL [PATH]]`

use std::time::Instant;

use convmat_matrix::{Conv, Float, Operator};
use convmat_shape::{ConvSpec, Geometry, Padding};
use convmat_spectrum::certified_norm;

/// The time of one `A·x` and one `Aᵀ·y` per vector, in ms, at batch `b` (warm; the mean of 5).
fn pair_ms<T: Float>(conv: &Conv<T>, b: usize) -> f64 {
    let mut op = Operator::new(conv);
    let x = vec![T::from_f64(0.5); b * conv.cols()];
    let (mut y, mut z) = (vec![T::ZERO; b * conv.rows()], vec![T::ZERO; b * conv.cols()]);
    op.apply(&x, &mut y).unwrap();
    let t = Instant::now();
    for _ in 0..5 {
        op.apply(&x, &mut y).unwrap();
        op.adjoint(&y, &mut z).unwrap();
    }
    t.elapsed().as_secs_f64() / 5.0 / b as f64 * 1e3
}

fn main() {
    let mut args = std::env::args().skip(1);
    let tol: f64 = args.next().map_or(1e-6, |t| t.parse().expect("a tolerance"));
    let path =
        args.next().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../benches/data/w64_rng0.npy").into());
    let w = convmat_io::read_npy(std::path::Path::new(&path)).expect("a readable .npy").data;
    let spec = ConvSpec::new(2, 64, 64, [3]).with_padding(Padding::uniform(1)).with_bias(false);
    let conv = Conv::new(Geometry::new(&spec, &[56, 56]).expect("geometry"), w, None).expect("layer");
    if std::env::var_os("OP_TIMES").is_some() {
        let w32: Vec<f32> = conv.weight().iter().map(|&v| v as f32).collect();
        let conv32 = Conv::new(conv.geometry().clone(), w32, None).expect("layer");
        for b in [1usize, 2, 4, 8] {
            let (f64t, f32t) = (pair_ms(&conv, b), pair_ms(&conv32, b));
            println!("batch {b}: pair per vector f64 {f64t:.2} ms, f32 {f32t:.2} ms");
        }
    }
    let t = Instant::now();
    let r = certified_norm(&conv, tol).expect("certified norm");
    let s = t.elapsed().as_secs_f64();
    let upper = r.upper.unwrap_or(f64::NAN);
    println!(
        "[{:.12}, {:.12}] width {:.2e} certificate {} cluster {} steps {} in {s:.3} s",
        r.lower,
        upper,
        (upper - r.lower) / r.lower,
        r.certificate,
        r.cluster,
        r.iterations
    );
}
