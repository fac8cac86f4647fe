//! Matrix builders: CSR throughput next to the physical limit (writing the same bytes to fresh memory),
//! dense fill, and the matrix-free operator next to unfold + GEMM. Seeded weights; one run compares all.

use std::hint::black_box;

use convmat::matrix::{Conv, Operator, OperatorPath};
use convmat::shape::{ConvSpec, Geometry, Padding};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{Array2, IxDyn};

fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = convmat::numeric::Xorshift64::new(seed);
    (0..n).map(|_| (rng.next_u64() % 2001) as f32 / 1000.0 - 1.0).collect()
}

fn layer(cin: usize, cout: usize, hw: usize, stride: usize) -> Conv<f32> {
    let spec = ConvSpec::new(2, cin, cout, [3]).with_padding(Padding::uniform(1)).with_stride([stride]);
    let g = Geometry::new(&spec, &[hw, hw]).unwrap();
    let n = spec.weight_shape().iter().product();
    Conv::new(g, weights(n, 42), Some(weights(cout, 7))).unwrap()
}

/// Writing `nnz` u32 indices and f32 values to freshly allocated memory, in parallel: the floor any
/// CSR builder of this size sits on. `huge` advises transparent huge pages, as convmat's builders do.
fn fresh_fill(nnz: usize, huge: bool) -> (Vec<u32>, Vec<f32>) {
    use rayon::prelude::*;
    let mut i = vec![0u32; nnz];
    let mut d = vec![0f32; nnz];
    if huge {
        advise(&mut i);
        advise(&mut d);
    }
    i.par_chunks_mut(1 << 16).zip(d.par_chunks_mut(1 << 16)).for_each(|(a, b)| {
        for (k, (x, y)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            *x = k as u32;
            *y = k as f32;
        }
    });
    (i, d)
}

fn advise<T>(v: &mut [T]) {
    const HUGE: usize = 2 << 20;
    let start = v.as_mut_ptr() as usize;
    let (lo, hi) = ((start + HUGE - 1) & !(HUGE - 1), (start + std::mem::size_of_val(v)) & !(HUGE - 1));
    if hi > lo {
        // SAFETY: the range lies inside the vector; the advice does not change its contents.
        unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
    }
}

fn csr(c: &mut Criterion) {
    let mut g = c.benchmark_group("csr_f32_u32");
    g.sample_size(10);
    for (name, cin, cout, hw) in [("64to64_3x3_32x32", 64, 64, 32), ("64to64_3x3_56x56", 64, 64, 56)] {
        let conv = layer(cin, cout, hw, 1);
        let nnz = conv.csr().unwrap().nnz();
        g.throughput(Throughput::Elements(nnz as u64));
        g.bench_function(BenchmarkId::new("convmat", name), |b| b.iter(|| black_box(conv.csr().unwrap())));
        g.bench_function(BenchmarkId::new("fresh_fill", name), |b| b.iter(|| black_box(fresh_fill(nnz, false))));
        g.bench_function(BenchmarkId::new("fresh_fill_thp", name), |b| b.iter(|| black_box(fresh_fill(nnz, true))));
    }
    g.finish();
}

fn dense(c: &mut Criterion) {
    let mut g = c.benchmark_group("dense_f32");
    g.sample_size(10);
    let conv = layer(3, 16, 32, 1);
    let bytes = conv.rows() * conv.cols() * 4;
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("3to16_3x3_32x32", |b| b.iter(|| black_box(conv.dense())));
    g.bench_function("fresh_fill_same_bytes", |b| b.iter(|| black_box(fresh_fill(bytes / 8, false))));
    g.bench_function("fresh_fill_thp_same_bytes", |b| b.iter(|| black_box(fresh_fill(bytes / 8, true))));
    g.finish();
}

fn operator(c: &mut Criterion) {
    let mut g = c.benchmark_group("operator_batch8");
    g.sample_size(10);
    let conv = layer(64, 64, 32, 1);
    let x = Array2::from_shape_vec((8, conv.cols()), weights(8 * conv.cols(), 3)).unwrap();
    let y = Array2::from_shape_vec((8, conv.rows()), weights(8 * conv.rows(), 5)).unwrap();
    let x4 = x.clone().into_shape_with_order(IxDyn(&[8, 64, 32, 32])).unwrap();
    g.bench_function("apply_64to64_32x32", |b| b.iter(|| black_box(conv.apply(x.view()).unwrap())));
    g.bench_function("adjoint_64to64_32x32", |b| b.iter(|| black_box(conv.adjoint(y.view()).unwrap())));
    g.bench_function("unfold_gemm_64to64_32x32", |b| b.iter(|| black_box(conv.conv_unfold(x4.view()).unwrap())));
    g.finish();
    // the one fast operator at batch 1 (Lanczos' case), f64, on each path
    let mut g = c.benchmark_group("operator_batch1_f64_64to64_3x3_56x56");
    g.sample_size(20);
    let spec = ConvSpec::new(2, 64, 64, [3]).with_padding(Padding::uniform(1));
    let geo = Geometry::new(&spec, &[56, 56]).unwrap();
    let w: Vec<f64> = weights(64 * 64 * 9, 42).into_iter().map(f64::from).collect();
    let conv = Conv::new(geo, w, None).unwrap();
    let x: Vec<f64> = weights(conv.cols(), 3).into_iter().map(f64::from).collect();
    let yv: Vec<f64> = weights(conv.rows(), 5).into_iter().map(f64::from).collect();
    g.throughput(Throughput::Elements((64 * 64 * 9 * 56 * 56) as u64));
    for (name, path) in [("shifted", OperatorPath::Shifted), ("unfold_gemm", OperatorPath::UnfoldGemm)] {
        let mut op = Operator::with_path(&conv, path);
        let (mut y, mut z) = (vec![0.0; conv.rows()], vec![0.0; conv.cols()]);
        g.bench_function(format!("apply_{name}"), |b| b.iter(|| op.apply(black_box(&x), &mut y).unwrap()));
        g.bench_function(format!("adjoint_{name}"), |b| b.iter(|| op.adjoint(black_box(&yv), &mut z).unwrap()));
    }
    g.finish();
}

/// `A·x` in f32 on the register-blocked direct kernels (`Operator::new`) beside the GEMM paths, per
/// shape; throughput in multiply-adds. `xtask/oracle/peers/conv_speed.py` runs torch's `F.conv2d` on the
/// same shapes.
fn direct(c: &mut Criterion) {
    let mut g = c.benchmark_group("operator_f32_direct");
    g.sample_size(10);
    // (name, batch, C_in, C_out, kernel, stride, padding, groups, input size)
    let shapes = [
        ("64to64_3x3_32x32_batch8", 8, 64, 64, 3, 1, 1, 1, 32),
        ("64to128_3x3_s2_56x56", 1, 64, 128, 3, 2, 1, 1, 56),
        ("3to64_7x7_s2_224x224", 1, 3, 64, 7, 2, 3, 1, 224),
        ("depthwise144_3x3_56x56", 1, 144, 144, 3, 1, 1, 144, 56),
    ];
    for (name, n, cin, cout, k, s, p, groups, hw) in shapes {
        let spec =
            ConvSpec::new(2, cin, cout, [k]).with_stride([s]).with_padding(Padding::uniform(p)).with_groups(groups);
        let conv = Conv::new(Geometry::new(&spec, &[hw, hw]).unwrap(), weights(cout * cin / groups * k * k, 42), None)
            .unwrap();
        let x = weights(n * conv.cols(), 3);
        let mut y = vec![0.0f32; n * conv.rows()];
        g.throughput(Throughput::Elements((n * conv.rows() * cin / groups * k * k) as u64));
        let mut ops = vec![
            ("direct", Operator::new(&conv)),
            ("unfold_gemm", Operator::with_path(&conv, OperatorPath::UnfoldGemm)),
        ];
        if s == 1 {
            ops.push(("shifted", Operator::with_path(&conv, OperatorPath::Shifted)));
        }
        for (path, mut op) in ops {
            g.bench_function(BenchmarkId::new(path, name), |b| b.iter(|| op.apply(black_box(&x), &mut y).unwrap()));
        }
    }
    g.finish();
}

criterion_group!(benches, csr, dense, operator, direct);
criterion_main!(benches);
