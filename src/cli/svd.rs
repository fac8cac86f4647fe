//! `convmat svd`: singular values of a layer (all, the top k, or the spectral norm).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use convmat_io::{write_npy, AtomicFile};
use convmat_matrix::Conv;
use convmat_spectrum::{singular_values, Method, Request};
use serde::Serialize;

use super::layer::LayerArgs;

/// Singular values of a layer's matrix: exact by FFT for circular padding, Lanczos or dense otherwise.
#[derive(Debug, Args)]
#[command(after_help = "\
Methods: fft is exact for circular padding (the layer is block-diagonal in the Fourier basis;
strides that divide the input are folded into the channels). lanczos finds the top k of any layer
without forming the matrix, to a relative residual --tol: the norm by single-vector Lanczos started
at the kernel's top Fourier mode (stride 1), k > 1 by block Lanczos, which returns repeated values
as often as they occur. dense computes all of a small layer. auto takes fft when it applies, dense
when all (or most) values of a small matrix are wanted, else lanczos, and says which. For zero
padding the report adds the norm of the circular layer on the padded grid, an upper bound.
S.npy holds float64 values in descending order; --all gives min(rows, cols) of them.

Examples:
  # the Lipschitz constant of a layer
  convmat svd --weight w.npy --input-shape 64,56,56 --padding 1 --norm --json

  # all 65,536 singular values of a circular layer, exactly
  convmat svd --weight w.npy --input-shape 64,32,32 --padding 1 --padding-mode circular \\
      --all -o S.npy

  # the top 300, as torch.svd_lowrank(A, q=300) would estimate them
  convmat svd --weights model.safetensors --layer conv2 --input-shape 16,32,32 --padding 1 \\
      --top 300 -o S.npy")]
pub struct SvdArgs {
    #[command(flatten)]
    layer: LayerArgs,
    /// All min(rows, cols) singular values.
    #[arg(long, group = "what")]
    all: bool,
    /// The largest K.
    #[arg(long, value_name = "K", group = "what")]
    top: Option<usize>,
    /// The largest only (the spectral norm, the layer's Lipschitz constant).
    #[arg(long, group = "what")]
    norm: bool,
    /// auto, fft, lanczos or dense.
    #[arg(long, default_value = "auto")]
    method: String,
    /// Lanczos: stop when every wanted value's residual ||Aᵀu - σv|| is below tol·σ₁.
    #[arg(long, default_value_t = 1e-10)]
    tol: f64,
    /// Output .npy (float64, descending).
    #[arg(short, long, value_name = "S.npy")]
    output: Option<PathBuf>,
    /// Print {layer, method, count, values, iterations, residual, start, circular_upper_bound, seconds} as
    /// JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    layer: String,
    method: &'static str,
    count: usize,
    values: Vec<f64>,
    iterations: usize,
    residual: f64,
    start: Option<&'static str>,
    circular_upper_bound: Option<f64>,
    seconds: f64,
}

pub fn run(args: SvdArgs) -> Result<()> {
    let request = match (args.all, args.top, args.norm) {
        (true, None, false) => Request::All,
        (false, Some(k), false) => Request::Top(k),
        (false, None, true) => Request::Norm,
        _ => bail!("say what to compute: --all, --top K or --norm"),
    };
    let method: Method = args.method.parse().map_err(anyhow::Error::msg)?;
    if !(args.tol > 0.0 && args.tol < 1.0) {
        bail!("invalid --tol {}: expected a number between 0 and 1, such as 1e-10", args.tol);
    }
    if let Some(o) = &args.output {
        if o.extension().and_then(|e| e.to_str()) != Some("npy") {
            bail!("invalid output '{}': svd writes .npy", o.display());
        }
    }
    let r = args.layer.resolve()?;
    // the spectrum is A's: the bias plays no part
    let conv = Conv::new(r.geometry().clone(), r.weight().to_vec(), None)?;
    let t = Instant::now();
    let s = singular_values(&conv, request, method, args.tol)?;
    let seconds = t.elapsed().as_secs_f64();
    if let Some(o) = &args.output {
        let mut f = AtomicFile::create(o)?;
        write_npy(f.writer(), &[s.values.len()], s.values.iter().copied())?;
        f.commit()?;
    }
    let report = Report {
        layer: r.description(),
        method: s.method,
        count: s.values.len(),
        values: s.values,
        iterations: s.iterations,
        residual: s.residual,
        start: s.start,
        circular_upper_bound: s.circular_upper_bound,
        seconds,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let shown: Vec<String> = report.values.iter().take(8).map(|v| format!("{v:.6e}")).collect();
        println!(
            "{}: {} singular value(s) by {} in {:.3} s{}: {}{}",
            report.layer,
            report.count,
            report.method,
            report.seconds,
            if report.iterations > 0 {
                format!(" ({} iterations, residual {:.1e})", report.iterations, report.residual)
            } else {
                String::new()
            },
            shown.join(" "),
            if report.count > 8 { " ..." } else { "" }
        );
        if let Some(b) = report.circular_upper_bound {
            println!("upper bound (circular convolution on the padded grid): {b:.6e}");
        }
    }
    Ok(())
}
