//! Issue 18's goal layer: the certified norm of 64->64 3x3 zero padding on 56x56 with NumPy
//! `default_rng(0).standard_normal((64, 64, 3, 3)) / 24` (benches/data/w64_rng0.npy), timed.
//!
//! `cargo run --release -p convmat-spectrum --example norm_goal [-- TOL [PATH]]`

use std::time::Instant;

use convmat_matrix::Conv;
use convmat_shape::{ConvSpec, Geometry, Padding};
use convmat_spectrum::certified_norm;

/// The little-endian f64 data of a `.npy` file (version 1 header).
fn read_npy_f64(path: &str) -> Vec<f64> {
    let bytes = std::fs::read(path).expect("readable .npy");
    assert!(bytes.starts_with(b"\x93NUMPY") && bytes[6] == 1, "a version 1 .npy");
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let text = String::from_utf8_lossy(&bytes[10..10 + header]);
    assert!(text.contains("'<f8'") && text.contains("False"), "C-order little-endian f64: {text}");
    bytes[10 + header..].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let tol: f64 = args.next().map_or(1e-6, |t| t.parse().expect("a tolerance"));
    let path =
        args.next().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../benches/data/w64_rng0.npy").into());
    let w = read_npy_f64(&path);
    let spec = ConvSpec::new(2, 64, 64, [3]).with_padding(Padding::uniform(1)).with_bias(false);
    let conv = Conv::new(Geometry::new(&spec, &[56, 56]).expect("geometry"), w, None).expect("layer");
    if std::env::var_os("OP_TIMES").is_some() {
        let w32: Vec<f32> = conv.weight().iter().map(|&v| v as f32).collect();
        let conv32 = Conv::new(conv.geometry().clone(), w32, None).expect("layer");
        for b in [1usize, 2, 4, 8] {
            let mut op = convmat_matrix::Operator::new(&conv);
            let x = vec![0.5f64; b * conv.cols()];
            let mut y = vec![0.0f64; b * conv.rows()];
            op.apply(&x, &mut y).unwrap();
            let t = Instant::now();
            for _ in 0..5 {
                op.apply(&x, &mut y).unwrap();
                op.adjoint(&y, &mut x.clone()).unwrap();
            }
            let f64t = t.elapsed().as_secs_f64() / 5.0 / b as f64;
            let mut op = convmat_matrix::Operator::new(&conv32);
            let x = vec![0.5f32; b * conv.cols()];
            let mut y = vec![0.0f32; b * conv.rows()];
            op.apply(&x, &mut y).unwrap();
            let t = Instant::now();
            for _ in 0..5 {
                op.apply(&x, &mut y).unwrap();
                op.adjoint(&y, &mut x.clone()).unwrap();
            }
            let f32t = t.elapsed().as_secs_f64() / 5.0 / b as f64;
            println!("batch {b}: pair per vector f64 {:.2} ms, f32 {:.2} ms", f64t * 1e3, f32t * 1e3);
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
