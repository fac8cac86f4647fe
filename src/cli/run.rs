//! `convmat run`: an ONNX model evaluated through its exact blocks, with an optional trace of every tensor.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use convmat_io::{read_array, write_npy_slice, AtomicFile, NpyElement};
use convmat_matrix::Float;
use convmat_net::{write_trace, Precision, Run, Tensor};
use convmat_onnx::{BlockOptions, Model};

use super::args::show_shape;

/// Run an ONNX model on an input: every block (Conv, Gemm, pools, BatchNorm folded) through convmat's
/// exact operator, every junction and nonlinearity by ONNX semantics.
#[derive(Debug, Args)]
#[command(after_help = "\
X is a batch (N, C, H, W) or one sample (C, H, W) in .npy or .npz[:key]. --trace DIR writes every
tensor a node writes as DIR/NNN_<tensor>.npy (batch first) and DIR/trace.json (node, op, tensor,
shape, file) in graph order; DIR must be new or empty, and appears only when complete.

Quantized models (QuantizeLinear, QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger, QDQ) run in
exact integers: every convolution and matrix product accumulates sum((x - x_zp)(w - w_zp)) + bias
exactly, then requantises as --reference does (onnxruntime: round_half_even(f32(acc) * m) + y_zp with
m = x_scale * w_scale / y_scale in float32; onnx: the product in float64). DequantizeLinear -> Conv /
MatMul -> QuantizeLinear runs as the one integer kernel onnxruntime fuses it into. Integer tensors are
written (output, trace) as int64 stored integers; --dtype is not read.

Examples:
  convmat run resnet18.onnx --input x.npy -o y.npy
  convmat run model.onnx --input x.npy --dtype float64 --trace trace/
  convmat run model.onnx --input x.npy --fixed formats.json --report report.json")]
pub struct RunArgs {
    /// The ONNX model.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    /// The input: (N, *sample) or one sample.
    #[arg(long, value_name = "X")]
    input: PathBuf,
    /// Write the output here (.npy); without it, only a summary is printed.
    #[arg(short, long, value_name = "Y.npy")]
    output: Option<PathBuf>,
    /// The precision of the run: float32 (onnxruntime's) or float64.
    #[arg(long, default_value = "float32", value_name = "DTYPE")]
    dtype: Precision,
    /// Write every tensor of the run to this folder (new or empty).
    #[arg(long, value_name = "DIR")]
    trace: Option<PathBuf>,
    /// Quantized models: whose requantisation to reproduce: onnxruntime (float32 products, its CPU
    /// kernels) or onnx (onnx.reference: float64 products).
    #[arg(long, default_value = "onnxruntime", value_name = "REF")]
    reference: convmat_onnx::QuantReference,
    /// Run in fixed point with these per-layer types (README: "A network in fixed point").
    #[arg(long, value_name = "FORMATS.json")]
    fixed: Option<PathBuf>,
    /// With --fixed: write the per-layer report (overflows per channel, extremes, SQNR) as JSON.
    #[arg(long, value_name = "REPORT.json", requires = "fixed")]
    report: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> Result<()> {
    if let Some(o) = &args.output {
        if o.extension().and_then(|e| e.to_str()) != Some("npy") {
            bail!("invalid output '{}': run writes .npy", o.display());
        }
    }
    if let Some(dir) = &args.trace {
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            bail!("{}: the trace folder exists and is not empty (give a new or empty folder)", dir.display());
        }
    }
    let formats = args.fixed.as_deref().map(super::fixed::read_formats).transpose()?;
    // one job, block after block: freed buffers are reused instead of faulting in fresh pages
    convmat_matrix::keep_freed_memory();
    let x = read_array(&args.input).context("reading --input")?;
    let model = Model::load(&args.model)?;
    if model.is_quantized() {
        if args.fixed.is_some() {
            bail!(
                "{}: --fixed runs a float model in fixed point, and this model is quantized (it runs in its own \
                 exact integers without --fixed)",
                args.model.display()
            );
        }
        return super::qrun::run(&model, x, args.output.as_deref(), args.trace.as_deref(), args.reference);
    }
    if let (Some(formats), Some(path)) = (&formats, &args.fixed) {
        let outs = (args.output.as_ref(), args.report.as_ref(), args.trace.as_ref());
        return super::fixed::run(&args.model, &model, x, formats, outs, path);
    }
    match args.dtype {
        Precision::Float32 => finish::<f32>(&args, &model, x),
        Precision::Float64 => finish::<f64>(&args, &model, x),
    }
}

fn finish<T: Float + NpyElement>(args: &RunArgs, model: &Model, x: convmat_io::Tensor) -> Result<()> {
    let batched = model.sample_shape(&x.shape) != x.shape;
    let input = Tensor::new(x.shape.clone(), x.data.iter().map(|&v| T::from_f64(v)).collect());
    let t = Instant::now();
    let Run { outputs, trace } = model.run(input, &BlockOptions::default(), args.trace.is_some())?;
    let seconds = t.elapsed().as_secs_f64();
    let y = &outputs[0];
    let shape = if batched { y.shape.clone() } else { y.shape[1..].to_vec() };
    if let Some(o) = &args.output {
        let mut f = AtomicFile::create(o)?;
        f.write(|w| write_npy_slice(w, &shape, &y.data))?;
        f.commit()?;
    }
    if let Some(dir) = &args.trace {
        let records = write_trace(dir, &trace)?;
        eprintln!("trace: {} tensors and trace.json in {}", records.len(), dir.display());
    }
    eprintln!(
        "{} {} in {:.3} s ({}){}",
        if batched { "output" } else { "output of one sample" },
        show_shape(&shape),
        seconds,
        args.dtype,
        args.output.as_ref().map(|o| format!(", written to {}", o.display())).unwrap_or_default()
    );
    Ok(())
}
