//! `convmat apply`: a layer applied to an input file, in float or fixed point (bit-exact with MATLAB fi).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use convmat_io::{read_array, write_npy_slice, AtomicFile};
use convmat_matrix::{Applied, ApplyOptions, ApplyTypes, MatrixError, Output};
use convmat_numeric::FixedType;
use serde::Serialize;

use super::args::TypedDtype;
use super::layer::LayerArgs;

/// Apply a layer to an input batch: float, or fixed point bit-exact with MATLAB's fi/fimath.
#[derive(Debug, Args)]
#[command(after_help = "\
X is a batch (N, C, *spatial) or one sample (C, *spatial); --input-shape may be left out. In fixed
point, inputs, weights and bias are quantized like MATLAB's fi constructor (Nearest, Saturate):
inputs to --dtype, weights to --weight-dtype (default --dtype), the bias to the product's format.
Products and sums are exact (MATLAB's default fimath, FullPrecision) unless --acc-dtype gives a
narrow accumulator, to which every product and partial sum is re-cast in kernel-tap order (input
channel, kernel rows, columns). Without --out-dtype Y is the exact accumulator; --rounding and
--overflow apply to the output cast (and to the narrow accumulator's casts). Y holds real values
as float64, or the stored integers as int64 with --raw.

Types may be written in any dialect: q1.7, fi(1,8,7), numerictype(1,8,7), int8, ap_fixed<8,1>,
ap_ufixed<8,0>, ap_int<8>, fixed<8,1>. An ap_fixed type carries its rounding and overflow (written,
or Vitis's defaults AP_TRN, AP_WRAP): every cast into it uses them, inputs and weights included, and
a --rounding or --overflow that differs from them is an error.

Examples:
  # MATLAB: y = fi(conv(fi(x,1,8,7), fi(w,1,8,7)), 1, 8, 7) as im2col + matrix multiply
  convmat apply --weight w.npy --input x.npy --padding 1 --dtype q1.7 --out-dtype q1.7 -o y.npy

  # 16-bit weights, 8-bit activations, a 16-bit accumulator that wraps, stored integers out
  convmat apply --weight w.npy --input x.npy --dtype q1.7 --weight-dtype q1.15 --acc-dtype q4.12 \\
      --overflow wrap --out-dtype q1.7 --rounding floor --raw -o y.npy

  # Vitis HLS semantics: ap_fixed inputs, an 18-bit accumulator rounding ties to -inf, symmetric saturation
  convmat apply --weight w.npy --input x.npy --dtype 'ap_fixed<8,1,AP_RND,AP_SAT>' \\
      --acc-dtype 'ap_fixed<18,4>' --out-dtype q1.7 --rounding AP_RND_MIN_INF --overflow AP_SAT_SYM -o y.npy

  # plain float32 convolution
  convmat apply --weight w.npy --bias b.npy --input x.npy --stride 2 -o y.npy")]
pub struct ApplyArgs {
    #[command(flatten)]
    layer: LayerArgs,
    /// Input: (N, C, *spatial) or (C, *spatial), .npy or .npz[:key].
    #[arg(long, value_name = "X")]
    input: PathBuf,
    /// Output .npy file.
    #[arg(short, long, value_name = "Y.npy")]
    output: PathBuf,
    /// f32, f64, or the inputs' fixed-point type in any dialect (q1.7, fi(1,8,7), int8, ap_fixed<8,1>).
    #[arg(long, default_value = "f32", value_name = "DTYPE", value_parser = super::args::parse_typed_dtype)]
    dtype: TypedDtype,
    /// Fixed-point type of the weights (default: --dtype).
    #[arg(long, value_name = "qI.F")]
    weight_dtype: Option<String>,
    /// Cast the result to this fixed-point type (default: the exact accumulator).
    #[arg(long, value_name = "qI.F")]
    out_dtype: Option<String>,
    /// Rounding of the output cast [default: nearest, MATLAB's: ties toward +inf]: nearest, round,
    /// convergent, floor, ceil, zero, away, nearest_zero, nearest_min_inf, or any dialect's name
    /// (AP_RND_MIN_INF, HALF_DOWN, ...). A type that carries its own (ap_fixed) must agree.
    #[arg(long)]
    rounding: Option<String>,
    /// Overflow of the output cast [default: saturate]: saturate, wrap, saturate_zero, saturate_sym,
    /// wrap_sm, or ap_fixed's AP_SAT, AP_WRAP, AP_SAT_ZERO, AP_SAT_SYM, AP_WRAP_SM.
    #[arg(long)]
    overflow: Option<String>,
    /// A narrow accumulator type: every product and partial sum is re-cast to it.
    #[arg(long, value_name = "qI.F")]
    acc_dtype: Option<String>,
    /// Write the stored integers (int64) instead of real values.
    #[arg(long)]
    raw: bool,
    /// Print {output, shape, format, seconds} as JSON.
    #[arg(long)]
    json: bool,
    /// No summary on stderr.
    #[arg(long)]
    quiet: bool,
}

#[derive(Serialize)]
struct Report {
    output: String,
    shape: Vec<usize>,
    format: String,
    seconds: f64,
}

fn fixed_type(flag: &str, text: &str) -> Result<FixedType> {
    text.parse::<FixedType>().with_context(|| format!("invalid --{flag} '{text}'"))
}

pub fn run(args: ApplyArgs) -> Result<()> {
    if args.output.extension().and_then(|e| e.to_str()) != Some("npy") {
        bail!("invalid output '{}': apply writes .npy", args.output.display());
    }
    let x = read_array(&args.input).context("reading --input")?;
    if args.layer.onnx_model().is_some() {
        // the node's own input shape (or --input-shape) says whether X is one sample or a batch
        let r = args.layer.resolve()?;
        let sample = r.geometry().input_shape();
        let batched = x.shape.len() == sample.len() + 1 && x.shape[1..] == sample[..];
        if !batched && x.shape != sample {
            bail!("--input has shape {:?}, which is neither the node's input {:?} nor a batch of it", x.shape, sample);
        }
        return finish(&args, x, r, batched);
    }
    let (weight, bias) = args.layer.load()?;
    // the sample shape: from --input-shape, or X itself (batched when it has one more dim than the weight's rank)
    let (batched, sample) = match &args.layer.input_shape {
        Some(d) if x.shape == d.0 => (false, d.0.clone()),
        Some(d) if x.shape.len() == d.0.len() + 1 && x.shape[1..] == d.0[..] => (true, d.0.clone()),
        Some(d) => bail!("--input has shape {:?}, which is neither --input-shape {:?} nor a batch of it", x.shape, d.0),
        None => {
            if !(3..=5).contains(&weight.shape.len()) {
                bail!("weight has shape {:?}: expected 3 to 5 dims (C_out, C_in/groups, *kernel)", weight.shape);
            }
            let rank = weight.shape.len() - 2;
            match x.shape.len() {
                n if n == rank + 2 => (true, x.shape[1..].to_vec()),
                n if n == rank + 1 => (false, x.shape.clone()),
                _ => bail!(
                    "--input has shape {:?}: a {rank}-d layer takes (N, C, *{rank} spatial) or (C, *{rank} spatial)",
                    x.shape
                ),
            }
        }
    };
    let r = args.layer.resolve_loaded(&sample, weight, bias)?;
    finish(&args, x, r, batched)
}

/// Applies the resolved layer to X and writes Y.
fn finish(args: &ApplyArgs, x: convmat_io::Tensor, r: convmat_matrix::ConvLayer, batched: bool) -> Result<()> {
    let n = if batched { x.shape[0] } else { 1 };
    let mut out_shape = vec![n];
    out_shape.extend(r.geometry().output_shape());
    let mut types = ApplyTypes::default();
    types.rounding = args.rounding.as_deref().map(str::parse).transpose()?;
    types.overflow = args.overflow.as_deref().map(str::parse).transpose()?;
    types.input = args.dtype.fixed;
    types.weight = args.weight_dtype.as_deref().map(|w| fixed_type("weight-dtype", w)).transpose()?;
    types.accumulator = args.acc_dtype.as_deref().map(|a| fixed_type("acc-dtype", a)).transpose()?;
    types.out = args.out_dtype.as_deref().map(|o| fixed_type("out-dtype", o)).transpose()?;
    let mut options = ApplyOptions::new(args.dtype.dtype).with_types(&types)?;
    options.raw = args.raw;
    let t = Instant::now();
    let Output { values, format, .. } = r.apply(&x.data, n, &options).map_err(|e| match e {
        MatrixError::FixedPointOnly => {
            anyhow::anyhow!(
                "--weight-dtype, --out-dtype, --acc-dtype and --raw need a fixed-point --dtype such as q1.7"
            )
        }
        MatrixError::ResultTooWide { target: "int64", .. } => anyhow::anyhow!("{e}: give --out-dtype"),
        MatrixError::ResultTooWide { .. } => {
            anyhow::anyhow!("{e}: give --out-dtype to cast the result, or --raw for the stored integers")
        }
        e => e.into(),
    })?;
    let seconds = t.elapsed().as_secs_f64();
    let shape = if batched { out_shape } else { out_shape[1..].to_vec() };
    let mut f = AtomicFile::create(&args.output)?;
    match values {
        Applied::F32(v) => f.write(|w| write_npy_slice(w, &shape, &v))?,
        Applied::F64(v) => f.write(|w| write_npy_slice(w, &shape, &v))?,
        Applied::I64(v) => f.write(|w| write_npy_slice(w, &shape, &v))?,
        _ => bail!("convmat apply cannot write this result type"),
    }
    f.commit()?;
    let report = Report { output: args.output.display().to_string(), shape, format, seconds };
    if !args.quiet {
        eprintln!("{}: {:?} ({}), computed in {:.3} s", report.output, report.shape, report.format, report.seconds);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
