//! Tap-map construction and traversal: the index arithmetic every matrix builder stands on.

use std::hint::black_box;

use convmat::shape::{ConvSpec, Geometry, Padding, PaddingMode};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn tap_map(c: &mut Criterion) {
    let mut g = c.benchmark_group("tap_map");
    for (name, mode) in [("zeros", PaddingMode::Zeros), ("reflect", PaddingMode::Reflect)] {
        let spec = ConvSpec::new(2, 64, 64, [3]).with_padding(Padding::uniform(1)).with_padding_mode(mode);
        let geo = Geometry::new(&spec, &[56, 56]).unwrap();
        g.bench_function(format!("build_56x56_{name}"), |b| b.iter(|| black_box(geo.tap_map())));
        let taps = geo.tap_map();
        g.throughput(Throughput::Elements((taps.windows_len() * taps.kernel_len()) as u64));
        g.bench_function(format!("for_each_read_56x56_{name}"), |b| {
            b.iter(|| {
                let mut acc = 0usize;
                for w in 0..taps.windows_len() {
                    taps.for_each_read(w, |t, r| acc = acc.wrapping_add(t ^ r.unwrap_or(0)));
                }
                black_box(acc)
            })
        });
        g.bench_function(format!("for_each_hit_56x56_{name}"), |b| {
            b.iter(|| {
                let mut acc = 0usize;
                for w in 0..taps.windows_len() {
                    taps.for_each_hit(w, |i, t| acc = acc.wrapping_add(i + t[2].len()));
                }
                black_box(acc)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, tap_map);
criterion_main!(benches);
