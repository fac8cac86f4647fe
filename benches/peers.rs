//! The layers of `xtask/oracle/peers/bench_peers.py`, built by convmat: the Rust side of the side-by-side
//! table that `cargo xtask bench-peers` prints (CSR f32 with u32 indices; dense f32 for the small one).

use std::hint::black_box;

use convmat::matrix::Conv;
use convmat::shape::{ConvSpec, Geometry, Padding};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// name: (Cin, H, W, Cout, k, stride, padding), as in bench_peers.py.
const CASES: &[(&str, [usize; 7])] = &[
    ("cifar_in", [3, 32, 32, 16, 3, 1, 1]),
    ("lenet2", [6, 15, 15, 16, 3, 1, 0]),
    ("cifar_mid", [64, 32, 32, 64, 3, 1, 1]),
    ("resnet_s2", [64, 56, 56, 128, 3, 2, 1]),
    ("resnet_56", [64, 56, 56, 64, 3, 1, 1]),
];

fn layer(c: [usize; 7]) -> Conv<f32> {
    let [cin, h, w, cout, k, s, p] = c;
    let spec = ConvSpec::new(2, cin, cout, [k]).with_stride([s]).with_padding(Padding::uniform(p));
    let n: usize = spec.weight_shape().iter().product();
    let weight =
        convmat::numeric::SeededRng::new(0x2545F4914F6CDD1D).uniform_f32(n).into_iter().map(|v| v / 2.0).collect();
    Conv::new(Geometry::new(&spec, &[h, w]).unwrap(), weight, None).unwrap()
}

fn peers(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers_csr");
    g.sample_size(10);
    for &(name, case) in CASES {
        let conv = layer(case);
        g.throughput(Throughput::Elements(conv.csr().unwrap().nnz() as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(|| black_box(conv.csr().unwrap())));
    }
    g.finish();
    let mut g = c.benchmark_group("peers_dense");
    g.sample_size(10);
    for &(name, case) in &CASES[..2] {
        let conv = layer(case);
        g.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(|| black_box(conv.dense())));
    }
    g.finish();
}

criterion_group!(benches, peers);
criterion_main!(benches);
