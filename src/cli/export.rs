//! `convmat export`: every affine block of an ONNX model as a SciPy CSR `.npz`, plus a manifest.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use convmat_onnx::{BlockOptions, Model};

use super::args::{parse_shape, show_shape, Dims};

/// Write each affine block of an ONNX model (BatchNorm, Pad and constant Add/Mul folded) as
/// DIR/NNN_name.npz (SciPy CSR with `bias`) and DIR/manifest.json.
#[derive(Debug, Args)]
#[command(after_help = "\
manifest.json lists the blocks in order: file, name, op, nodes (every node folded into the block),
input_shape, output_shape, nonlinearity (the op that follows, or null), nonlinearities (all of them,
with attributes), rows, cols, nnz. Composing y = A x + bias with the nonlinearities reproduces the model.
Blocks are built and written one at a time; an error leaves no file of this export behind.

Example:
  convmat export cnn.onnx -o blocks/
  python -c \"import scipy.sparse as s, numpy as n; A = s.load_npz('blocks/000_conv1_Conv.npz'); \\
             b = n.load('blocks/000_conv1_Conv.npz')['bias']\"")]
pub struct ExportArgs {
    /// The ONNX model.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,

    /// Output folder (created if missing).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,

    /// Shape of one input sample (C,H,W), for models whose input shape is dynamic.
    #[arg(long, value_name = "C,H,W", value_parser = parse_shape)]
    input_shape: Option<Dims>,

    /// Keep each BatchNormalization as a diagonal block of its own instead of folding it.
    #[arg(long)]
    no_fold: bool,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let t = Instant::now();
    let model = Model::load(&args.model)?;
    let opts = BlockOptions::default().fold_batchnorm(!args.no_fold);
    let blocks = model.export(&args.output, args.input_shape.as_ref().map(|d| d.0.as_slice()), &opts)?;
    for b in &blocks {
        println!(
            "{}  {} {} -> {}  {}x{} nnz {}{}",
            b.file,
            b.op,
            show_shape(&b.input_shape),
            show_shape(&b.output_shape),
            b.rows,
            b.cols,
            b.nnz,
            b.nonlinearity.as_ref().map(|n| format!("  then {n}")).unwrap_or_default()
        );
    }
    println!(
        "wrote {} blocks and manifest.json to {} in {:.3} s",
        blocks.len(),
        args.output.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
