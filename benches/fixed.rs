//! Fixed-point convolution (q1.7 x q1.7, bit-exact with MATLAB fi) next to f32 on the same layer:
//! 64->64, 3x3, padding 1, 32x32, batch 8 (302 M MACs).

use std::hint::black_box;

use convmat::matrix::{Accumulation, Conv, FixedConv};
use convmat::numeric::QFormat;
use convmat::shape::{ConvSpec, Geometry, Padding};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::{Array2, ArrayD, IxDyn};

fn uniform(n: usize, s: u64) -> Vec<f64> {
    let mut rng = convmat::numeric::Xorshift64::new(s);
    (0..n).map(|_| 2.0 * rng.half()).collect()
}

fn fixed(c: &mut Criterion) {
    let spec = ConvSpec::new(2, 64, 64, [3]).with_padding(Padding::uniform(1)).with_bias(false);
    let g = Geometry::new(&spec, &[32, 32]).unwrap();
    let n: usize = spec.weight_shape().iter().product();
    let w = uniform(n, 7);
    let q: QFormat = "q1.7".parse().unwrap();
    let fc = FixedConv::new(g.clone(), &w, None, q, q).unwrap();
    let batch = 8;
    let x = uniform(batch * g.cols(), 11);
    let xq = Array2::from_shape_vec((batch, g.cols()), fc.quantize_input(&x)).unwrap();
    let macs = (batch * g.rows() * 64 * 9) as u64;
    let mut grp = c.benchmark_group("conv_64to64_3x3_32x32_batch8");
    grp.sample_size(10);
    grp.throughput(Throughput::Elements(macs));
    grp.bench_function("q1.7_exact", |b| b.iter(|| black_box(fc.apply(xq.view(), Accumulation::Full).unwrap())));
    let cf = Conv::new(g.clone(), w.iter().map(|&v| v as f32).collect(), None).unwrap();
    let xf = ArrayD::from_shape_vec(IxDyn(&[batch, 64, 32, 32]), x.iter().map(|&v| v as f32).collect()).unwrap();
    grp.bench_function("f32_unfold_gemm", |b| b.iter(|| black_box(cf.conv_unfold(xf.view()).unwrap())));
    grp.finish();
}

criterion_group!(benches, fixed);
criterion_main!(benches);
