//! `convmat demo`: build the matrices of embedded example layers and check them against direct
//! convolution.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use convmat_matrix::Conv;
use convmat_numeric::SeededRng;
use convmat_shape::{parse_layer, Geometry, Layer};
use serde::Serialize;

use super::args::show_shape;

/// Build the exact sparse matrices of two embedded layers and check them against direct convolution.
#[derive(Debug, Args)]
#[command(after_help = "\
The layers: LeNet's second convolution, Conv2d(6, 16, 3) on 6x15x15, and the seeds' circular
example, Conv2d(2, 3, 5, padding=2, padding_mode='circular') on 2x8x8, both with fixed
pseudo-random f32 weights and bias. Each matrix A is built as CSR (u32 indices); A·x + b is
compared with direct convolution (nested loops over an explicitly padded input) on a random x.

Examples:
  convmat demo
  convmat demo --json")]
pub struct DemoArgs {
    /// Print a JSON list of {layer, input, rows, cols, nnz, density, bytes, build_seconds, max_error}.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    layer: String,
    input: Vec<usize>,
    rows: usize,
    cols: usize,
    nnz: usize,
    density: f64,
    bytes: usize,
    build_seconds: f64,
    max_error: f64,
}

const LAYERS: [(&str, &[usize]); 2] =
    [("Conv2d(6, 16, 3)", &[6, 15, 15]), ("Conv2d(2, 3, 5, padding=2, padding_mode='circular')", &[2, 8, 8])];

pub fn run(args: DemoArgs) -> Result<()> {
    let mut rng = SeededRng::new(2019);
    let mut rows = Vec::new();
    for (text, input) in LAYERS {
        let Layer::Conv(spec) = parse_layer(text)? else { unreachable!("embedded layers are convolutions") };
        let geometry = Geometry::new(&spec, &input[1..])?;
        let weight = rng.uniform_f32(spec.weight_shape().iter().product());
        let bias = rng.uniform_f32(spec.out_channels());
        let conv = Conv::new(geometry, weight, Some(bias))?;
        let t = Instant::now();
        let a = conv.csr()?;
        let build_seconds = t.elapsed().as_secs_f64();
        // check A·x + b against direct convolution, in f64 on the same f32 values
        let xs = convmat_matrix::random_inputs(conv.cols(), 1, &mut rng)?;
        let max_error = convmat_matrix::verify(&conv, &a, &xs)?.max_error;
        let bytes = a.nnz() * 8 + (a.rows() + 1) * 4;
        rows.push(Row {
            layer: text.to_string(),
            input: input.to_vec(),
            rows: a.rows(),
            cols: a.cols(),
            nnz: a.nnz(),
            density: a.nnz() as f64 / (a.rows() * a.cols()) as f64,
            bytes,
            build_seconds,
            max_error,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("Exact matrices of two layers (CSR, f32 values, u32 indices), checked against direct convolution:\n");
    for r in &rows {
        println!("{}  on input {}", r.layer, show_shape(&r.input));
        println!(
            "  A: {} x {}, nnz {} (density {:.4}), {} bytes, built in {:.3} ms; max |A·x + b - conv(x)| = {:.1e}\n",
            r.rows,
            r.cols,
            r.nnz,
            r.density,
            r.bytes,
            r.build_seconds * 1e3,
            r.max_error
        );
    }
    let worst = rows.iter().map(|r| r.max_error).fold(0.0, f64::max);
    if worst > 1e-9 {
        anyhow::bail!("the matrices disagree with direct convolution (max error {worst:.1e})");
    }
    println!("All matrices agree with direct convolution.");
    Ok(())
}
