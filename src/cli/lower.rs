//! `convmat lower`: an ONNX model rewritten as the Gemm / MatMul + Relu network MILP encoders and
//! verifiers read.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use convmat_onnx::{Form, LowerOptions, LowerReport, MaxPoolForm, Model};
use serde::Serialize;

use super::args::{parse_shape, Dims};

/// Write the same network with every affine block (Conv, ConvTranspose, linear pools, Gemm, MatMul;
/// BatchNorm and Pad folded) as one dense Gemm (or MatMul + Add), the nonlinearities kept, the input flat.
#[derive(Debug, Args)]
#[command(after_help = "\
The written model: opset 13 or the model's own if later; one graph input named as the original's, flat
[N, C*H*W] in row-major (NCHW) order with no Flatten or Reshape (--keep-input-shape declares [N, C, H, W]
and adds a leading Flatten); every Gemm with alpha=1, beta=1, transA=0, transB=1 written explicitly
(B is the block's rows x cols matrix); elementwise nonlinearities (Relu, Sigmoid, ...) on the flat vector,
their operands written explicitly (LeakyRelu's alpha, PRelu's slope per element, Clip's bounds), others
(MaxPool, ...) between a Reshape and a Flatten (--max-pool relu: Gemm + Relu layers instead); every node
named, no two alike. Graphs lower too: a residual Add / Sub and a channel Concat become Add / Sub /
Concat(axis=1) of the flat vectors; Split, Slice and Transpose become 0/1 selection Gemms. Weights are float32.
The dense weights are sized before anything is built: over --max-dense-bytes (default: the memory
available) the model is refused, naming its largest block. Blocks are built and written one at a time
into a temporary file renamed over OUT.onnx on success.

Examples:
  convmat lower cnn.onnx -o cnn_gemm.onnx
  convmat lower cnn.onnx -o cnn_mm.onnx --form matmul --json
  convmat lower resnet_block.onnx -o flat.onnx --max-pool relu
  convmat lower model.onnx -o flat.onnx --input-shape 3,32,32 --max-dense-bytes 2G")]
pub struct LowerArgs {
    /// The ONNX model.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,

    /// The lowered model to write.
    #[arg(short, long, value_name = "OUT.onnx")]
    output: PathBuf,

    /// Shape of one input sample (C,H,W), for models whose input shape is dynamic.
    #[arg(long, value_name = "C,H,W", value_parser = parse_shape)]
    input_shape: Option<Dims>,

    /// Refuse models whose dense weights (f32) take more bytes than this (1000000, 512M, 2G; default:
    /// the memory available).
    #[arg(long, value_name = "N")]
    max_dense_bytes: Option<String>,

    /// How each block is written: gemm (one Gemm) or matmul (MatMul + Add).
    #[arg(long, value_name = "gemm|matmul", default_value = "gemm", value_parser = parse_form)]
    form: Form,

    /// Declare the original input shape [N, C, H, W] behind a leading Flatten instead of a flat input.
    #[arg(long)]
    keep_input_shape: bool,

    /// How max pools are written: keep (the MaxPool op between a Reshape and a Flatten) or relu (Gemm +
    /// Relu layers of pairwise maxima, for readers without MaxPool: OMLT, gurobi-machinelearning).
    #[arg(long, value_name = "keep|relu", default_value = "keep", value_parser = parse_max_pool)]
    max_pool: MaxPoolForm,

    /// Print JSON {"model", "output", "blocks": [{"name", "op", "rows", "cols", "bytes"}], "bytes", "seconds"}.
    #[arg(long)]
    json: bool,
}

fn parse_form(text: &str) -> Result<Form, String> {
    text.parse().map_err(|e: convmat_onnx::FormError| e.to_string())
}

fn parse_max_pool(text: &str) -> Result<MaxPoolForm, String> {
    text.parse().map_err(|e: convmat_onnx::MaxPoolFormError| e.to_string())
}

/// What `--json` prints: the library's report and the seconds the whole command took.
#[derive(Serialize)]
struct Printed<'a> {
    #[serde(flatten)]
    report: &'a LowerReport,
    seconds: f64,
}

pub fn run(args: LowerArgs) -> Result<()> {
    let t = Instant::now();
    let max =
        args.max_dense_bytes.as_deref().map(|m| convmat_shape::parse_bytes("--max-dense-bytes", m)).transpose()?;
    let options = LowerOptions::default()
        .input_shape(args.input_shape.map(|d| d.0))
        .max_dense_bytes(max)
        .form(args.form)
        .keep_input_shape(args.keep_input_shape)
        .max_pool(args.max_pool);
    let model = Model::load(&args.model)?;
    let report = model.lower(&options)?.write(&args.output)?;
    let seconds = t.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&Printed { report: &report, seconds })?);
        return Ok(());
    }
    for b in &report.blocks {
        println!("{}  {} -> {}  {} x {}  {} bytes", b.name, b.op, args.form, b.rows, b.cols, b.bytes);
    }
    println!(
        "wrote {} ({} blocks, {} bytes) in {seconds:.3} s",
        args.output.display(),
        report.blocks.len(),
        report.bytes
    );
    Ok(())
}
