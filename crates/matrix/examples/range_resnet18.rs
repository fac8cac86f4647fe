//! Times `accumulator_range` on the 20 convolutions of ResNet-18 at 3x224x224 with random int8 weights
//! and int8 inputs (seeded), and prints the per-layer widths against the data-type bound and A2Q+.
//!
//! ```text
//! cargo run --release -p convmat-matrix --example range_resnet18
//! ```

use std::time::Instant;

use convmat_matrix::{accumulator_range, ConvLayer, RangeOptions};
use convmat_numeric::SeededRng;
use convmat_shape::{LayerOptions, Padding};

/// (C_in, C_out, kernel, stride, padding, input size): conv1, layer1-4 (two blocks of two 3x3 each, the
/// first of layers 2-4 with a 1x1 stride-2 downsample).
fn resnet18() -> Vec<(usize, usize, usize, usize, usize, usize)> {
    let mut v = vec![(3, 64, 7, 2, 3, 224)];
    v.extend(std::iter::repeat_n((64, 64, 3, 1, 1, 56), 4));
    for (cin, cout, n) in [(64, 128, 56), (128, 256, 28), (256, 512, 14)] {
        v.push((cin, cout, 3, 2, 1, n));
        v.push((cin, cout, 1, 2, 0, n));
        v.extend(std::iter::repeat_n((cout, cout, 3, 1, 1, n / 2), 3));
    }
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = SeededRng::new(18);
    let layers: Vec<ConvLayer> = resnet18()
        .into_iter()
        .map(|(cin, cout, k, s, p, n)| {
            let shape = [cout, cin, k, k];
            let w = rng.small_ints(shape.iter().product(), 127);
            let b = rng.small_ints(cout, 5000);
            let opts = LayerOptions::new().with_stride(vec![s]).with_padding(Padding::uniform(p));
            ConvLayer::new(&shape, w, Some(b), &[cin, n, n], &opts)
        })
        .collect::<Result<_, _>>()?;
    let options = RangeOptions::new("q8.0".parse()?);
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for l in &layers {
            std::hint::black_box(accumulator_range(l, &options)?);
        }
        runs.push(t.elapsed().as_secs_f64());
    }
    println!("{:<40} {:>5} {:>9} {:>5} {:>7}", "layer", "bits", "datatype", "A2Q+", "border");
    for l in &layers {
        let r = accumulator_range(l, &options)?;
        let border = r.channels().iter().filter(|c| c.at_border()).count();
        let shape = l.geometry().input_shape();
        let name = format!("{} on {}x{}", l.description(), shape[1], shape[2]);
        println!(
            "{name:<40} {:>5} {:>9} {:>5} {:>7}",
            r.bits_layer(),
            r.datatype_bits(),
            r.a2q_plus_bits(),
            format!("{border}/{}", r.channels().len())
        );
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "all 20 convolutions: median {:.3} s (min {:.3}, max {:.3}) over {} runs",
        runs[runs.len() / 2],
        runs[0],
        runs[runs.len() - 1],
        runs.len()
    );
    Ok(())
}
