//! `convmat check`: build a layer's matrix, then compare A·x + b with direct convolution.

use anyhow::{bail, Result};
use clap::Args;
use convmat_matrix::{direct_conv, Conv};
use convmat_numeric::Scalar;
use serde::Serialize;
use sprs::{CsMatI, SpIndex};

use super::layer::{LayerArgs, Resolved};
use super::rng::Rng;

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
    #[arg(long, default_value = "f32", value_parser = ["f32", "f64"])]
    dtype: String,
    /// Random inputs to try.
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Largest acceptable relative error (default 1e-5 for f32, 1e-12 for f64).
    #[arg(long)]
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

pub fn run(args: CheckArgs) -> Result<()> {
    let r = args.layer.resolve()?;
    let (report, tol) = if args.dtype == "f64" {
        (check::<f64>(&r, &args)?, args.tol.unwrap_or(1e-12))
    } else {
        (check::<f32>(&r, &args)?, args.tol.unwrap_or(1e-5))
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

/// `max |A·x + b - conv(x)|` and `max |conv(x)|` over `samples` random inputs, where `A` is the built
/// matrix and `conv` the direct loops (in f64, on the same `T` values).
pub fn verify<T: Scalar, Iptr: SpIndex>(
    conv: &Conv<T>,
    a: &CsMatI<T, u32, Iptr>,
    samples: usize,
    rng: &mut Rng,
) -> Result<(f64, f64)> {
    let bias = conv.expanded_bias();
    let to64 = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let (w64, b64) = (to64(conv.weight()), conv.bias().map(to64));
    let (mut max_err, mut max_y) = (0f64, 0f64);
    for _ in 0..samples {
        let x: Vec<T> = (0..conv.cols()).map(|_| T::from_f64(rng.uniform())).collect();
        let reference = direct_conv(conv.geometry(), &w64, b64.as_deref(), &to64(&x))?;
        for (row, vec) in a.outer_iterator().enumerate() {
            let y = vec.iter().map(|(c, v)| v.to_f64() * x[c].to_f64()).sum::<f64>()
                + bias.as_ref().map_or(0.0, |b| b[row].to_f64());
            max_err = max_err.max((y - reference[row]).abs());
            max_y = max_y.max(reference[row].abs());
        }
    }
    Ok((max_err, max_y))
}

fn check<T: Scalar>(r: &Resolved, args: &CheckArgs) -> Result<Report> {
    let w: Vec<T> = r.weight.iter().map(|&v| T::from_f64(v)).collect();
    let b: Option<Vec<T>> = r.bias.as_ref().map(|b| b.iter().map(|&v| T::from_f64(v)).collect());
    let conv = Conv::new(r.geometry.clone(), w, b)?;
    let a = conv.csr_with::<u32, usize>(&Default::default())?;
    let mut rng = Rng::new(args.seed);
    let (max_err, max_y) = verify(&conv, &a, args.samples.max(1), &mut rng)?;
    Ok(Report {
        layer: r.description.clone(),
        rows: a.rows(),
        cols: a.cols(),
        nnz: a.nnz(),
        samples: args.samples.max(1),
        max_error: max_err,
        max_relative_error: max_err / max_y.max(f64::MIN_POSITIVE),
    })
}
