//! All singular values of circular layers by the FFT (polyphase) method; the spectral norm of a
//! zero-padded layer by Lanczos from the symbol start, and certified to an interval.

use std::hint::black_box;

use convmat::matrix::Conv;
use convmat::shape::{ConvSpec, Geometry, Padding, PaddingMode};
use convmat::spectrum::{certified_norm, fft_singular_values, lanczos};
use criterion::{criterion_group, criterion_main, Criterion};

fn layer(c: usize, hw: usize) -> Conv<f64> {
    layer_with(c, hw, PaddingMode::Circular)
}

/// Seeded weights (for 16 channels the same as `xtask/oracle/lowrank_peer.py`).
fn layer_with(c: usize, hw: usize, mode: PaddingMode) -> Conv<f64> {
    let spec = ConvSpec::new(2, c, c, [3]).with_padding(Padding::Same).with_padding_mode(mode);
    let w = convmat::numeric::Xorshift64::new(0x2545F4914F6CDD1D).half_vec(c * c * 9);
    Conv::new(Geometry::new(&spec, &[hw, hw]).unwrap(), w, None).unwrap()
}

fn spectrum(c: &mut Criterion) {
    let mut g = c.benchmark_group("fft_all_singular_values");
    g.sample_size(10);
    for (name, ch, hw) in [("circular_16to16_3x3_16x16", 16, 16), ("circular_64to64_3x3_32x32", 64, 32)] {
        let conv = layer(ch, hw);
        g.bench_function(name, |b| b.iter(|| black_box(fft_singular_values(&conv).unwrap())));
    }
    g.finish();
}

fn zero_padded(c: &mut Criterion) {
    let mut g = c.benchmark_group("lanczos_zero_padded");
    g.sample_size(10);
    let conv = layer_with(64, 56, PaddingMode::Zeros);
    g.bench_function("norm_64to64_3x3_56x56_tol1e-6", |b| b.iter(|| black_box(lanczos(&conv, 1, 1e-6).unwrap())));
    // issue 18's goal layer: `np.random.default_rng(0).standard_normal((64, 64, 3, 3)) / 24`
    let w = convmat::io::read_array(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/data/w64_rng0.npy"
    )))
    .unwrap()
    .data;
    let spec = ConvSpec::new(2, 64, 64, [3]).with_padding(Padding::uniform(1)).with_bias(false);
    let goal = Conv::new(Geometry::new(&spec, &[56, 56]).unwrap(), w, None).unwrap();
    g.bench_function("certified_norm_64to64_3x3_56x56_rng0_width1e-6", |b| {
        b.iter(|| black_box(certified_norm(&goal, 1e-6).unwrap()))
    });
    // a smaller top k with thick restarts (the basis caps at 2k + 128 = 248 vectors of 4096); the top 300
    // of 16->16 on 32x32 is measured against PROPACK by xtask/oracle/propack_peer.py (see README)
    let small = layer_with(16, 16, PaddingMode::Zeros);
    g.bench_function("top60_16to16_3x3_16x16_tol1e-6", |b| b.iter(|| black_box(lanczos(&small, 60, 1e-6).unwrap())));
    g.finish();
}

criterion_group!(benches, spectrum, zero_padded);
criterion_main!(benches);
