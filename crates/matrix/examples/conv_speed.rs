//! Times [`Operator`]'s `A·x` (f32) on one convolution, on each path, and prints the median and the
//! rate in GMAC/s: the convmat side of `xtask/oracle/peers/conv_speed.py`, which runs torch's
//! `F.conv2d` on the same shape in the same run.
//!
//! ```text
//! cargo run --release -p convmat-matrix --example conv_speed -- N,C,H,W C_OUT K STRIDE PADDING GROUPS [REPEATS]
//! ```
//! prints one line per path: `path median_ms gmac_per_s`.

use std::time::Instant;

use convmat_matrix::{Conv, Operator, OperatorPath};
use convmat_numeric::SeededRng;
use convmat_shape::{ConvSpec, Geometry, Padding};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        return Err("usage: conv_speed N,C,H,W C_OUT K STRIDE PADDING GROUPS [REPEATS]".into());
    }
    let nchw: Vec<usize> = args[0].split(',').map(str::parse).collect::<Result<_, _>>()?;
    let [n, c, h, w] = nchw[..] else { return Err("N,C,H,W: four counts".into()) };
    let [cout, k, stride, pad, groups]: [usize; 5] =
        [args[1].parse()?, args[2].parse()?, args[3].parse()?, args[4].parse()?, args[5].parse()?];
    let repeats: usize = args.get(6).map_or(Ok(9), |r| r.parse())?;
    let spec =
        ConvSpec::new(2, c, cout, [k]).with_stride([stride]).with_padding(Padding::uniform(pad)).with_groups(groups);
    let geo = Geometry::new(&spec, &[h, w])?;
    let mut rng = SeededRng::new(0);
    let weight: Vec<f32> = rng.uniform_f32(spec.weight_shape().iter().product());
    let conv = Conv::new(geo, weight, None)?;
    let x: Vec<f32> = rng.uniform_f32(n * conv.cols());
    let mut y = vec![0.0f32; n * conv.rows()];
    let macs = (n * conv.rows() * c / groups * k * k) as f64;
    let mut ops = vec![("auto", Operator::new(&conv))];
    ops.push(("shifted", Operator::with_path(&conv, OperatorPath::Shifted)));
    ops.push(("unfold_gemm", Operator::with_path(&conv, OperatorPath::UnfoldGemm)));
    for (name, op) in &mut ops {
        let name: &str = name;
        let label = if name == "auto" && op.direct() { "direct" } else { name };
        if name == "shifted" && op.path() != OperatorPath::Shifted {
            continue;
        }
        op.apply(&x, &mut y)?;
        let mut times: Vec<f64> = (0..repeats)
            .map(|_| {
                let t = Instant::now();
                op.apply(&x, &mut y).expect("sizes checked");
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times[repeats / 2];
        println!("{label} {:.3} {:.1}", median * 1e3, macs / median / 1e9);
    }
    Ok(())
}
