//! `convmat check`: build a layer's matrix, then compare A·x + b with direct convolution.

use anyhow::{bail, Result};
use clap::Args;
use convmat_matrix::{random_inputs, verify, ConvLayer, MatrixFormat, MatrixOptions};
use convmat_numeric::{Dtype, Scalar, SeededRng};
use serde::Serialize;

use super::layer::LayerArgs;

/// Build the sparse matrix of a layer and check A·x + b against direct convolution on random inputs.
#[derive(Debug, Args)]
#[command(after_help = "\
Direct convolution here is nested loops over an explicitly padded input, independent of the matrix
builders. The error is relative to max |conv(x)|. Exit code 1 when it exceeds --tol.

Examples:
  convmat check --weight w.npy --bias b.npy --input-shape 3,32,32 --padding 1 --padding-mode reflect
  convmat check --weights model.safetensors --layer conv1 --input-shape 3,32,32 --stride 2 --json")]
pub struct CheckArgs {
    #[command(flatten)]
    layer: LayerArgs,
    /// Element type of the matrix: f32 or f64.
    #[arg(long, default_value = "f32", value_parser = super::args::parse_dtype)]
    dtype: Dtype,
    /// Random inputs to try.
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Largest acceptable relative error (default 1e-5 for f32, 1e-12 for f64).
    #[arg(long, value_parser = parse_tol)]
    tol: Option<f64>,
    /// Print {layer, rows, cols, nnz, samples, max_error, max_relative_error} as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    layer: String,
    rows: usize,
    cols: usize,
    nnz: usize,
    samples: usize,
    max_error: f64,
    max_relative_error: f64,
}

fn parse_tol(text: &str) -> Result<f64, String> {
    convmat_shape::parse_tolerance("--tol", text).map_err(|e| e.to_string())
}

pub fn run(args: CheckArgs) -> Result<()> {
    let r = args.layer.resolve()?;
    let (report, tol) = match args.dtype {
        Dtype::F64 => (check::<f64>(&r, &args)?, args.tol.unwrap_or(1e-12)),
        Dtype::F32 => (check::<f32>(&r, &args)?, args.tol.unwrap_or(1e-5)),
        other => bail!("invalid --dtype {other}: check compares float matrices; expected f32 or f64"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: A {} x {}, nnz {}; over {} random inputs max |A·x + b - conv(x)| = {:.2e} (relative {:.2e})",
            report.layer,
            report.rows,
            report.cols,
            report.nnz,
            report.samples,
            report.max_error,
            report.max_relative_error
        );
    }
    if report.max_relative_error > tol {
        bail!(
            "the matrix disagrees with direct convolution: relative error {:.2e} > --tol {tol:.0e}",
            report.max_relative_error
        );
    }
    Ok(())
}

fn check<T: Scalar>(r: &ConvLayer, args: &CheckArgs) -> Result<Report> {
    r.estimate(MatrixFormat::Csr, args.dtype, &MatrixOptions::default()).check_memory()?;
    let conv = r.conv::<T>()?;
    let a = conv.csr_with::<u32, usize>(&Default::default())?;
    let xs = random_inputs(conv.cols(), args.samples.max(1), &mut SeededRng::new(args.seed))?;
    let v = verify(&conv, &a, &xs)?;
    Ok(Report {
        layer: r.description(),
        rows: a.rows(),
        cols: a.cols(),
        nnz: a.nnz(),
        samples: args.samples.max(1),
        max_error: v.max_error,
        max_relative_error: v.relative_error(),
    })
}
