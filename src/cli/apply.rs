//! `convmat apply`: a layer applied to an input file, in float or fixed point (bit-exact with MATLAB fi).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use convmat_io::{read_array, write_npy, AtomicFile};
use convmat_matrix::Accumulation;
use convmat_numeric::{Dtype, Overflow, QFormat, Rounding};
use ndarray::{ArrayD, IxDyn};
use serde::Serialize;

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

Examples:
  # MATLAB: y = fi(conv(fi(x,1,8,7), fi(w,1,8,7)), 1, 8, 7) as im2col + matrix multiply
  convmat apply --weight w.npy --input x.npy --padding 1 --dtype q1.7 --out-dtype q1.7 -o y.npy

  # 16-bit weights, 8-bit activations, a 16-bit accumulator that wraps, stored integers out
  convmat apply --weight w.npy --input x.npy --dtype q1.7 --weight-dtype q1.15 --acc-dtype q4.12 \\
      --overflow wrap --out-dtype q1.7 --rounding floor --raw -o y.npy

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
    /// f32, f64, or the inputs' fixed-point format qI.F (e.g. q1.7).
    #[arg(long, default_value = "f32", value_name = "DTYPE", value_parser = super::args::parse_dtype)]
    dtype: Dtype,
    /// Fixed-point format of the weights (default: --dtype).
    #[arg(long, value_name = "qI.F")]
    weight_dtype: Option<String>,
    /// Cast the result to this fixed-point format (default: the exact accumulator).
    #[arg(long, value_name = "qI.F")]
    out_dtype: Option<String>,
    /// Rounding of the output cast: nearest (MATLAB's default: ties toward +inf), round, convergent,
    /// floor, ceil or zero.
    #[arg(long, default_value = "nearest")]
    rounding: String,
    /// Overflow of the output cast: saturate (default) or wrap.
    #[arg(long, default_value = "saturate")]
    overflow: String,
    /// A narrow accumulator format: every product and partial sum is re-cast to it.
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

fn qformat(flag: &str, text: &str) -> Result<QFormat> {
    text.parse::<QFormat>().with_context(|| format!("invalid --{flag} '{text}'"))
}

pub fn run(args: ApplyArgs) -> Result<()> {
    if args.output.extension().and_then(|e| e.to_str()) != Some("npy") {
        bail!("invalid output '{}': apply writes .npy", args.output.display());
    }
    let x = read_array(&args.input).context("reading --input")?;
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
    let n = if batched { x.shape[0] } else { 1 };
    let mut out_shape = vec![n];
    out_shape.extend(r.geometry().output_shape());
    let rounding: Rounding = args.rounding.parse()?;
    let overflow: Overflow = args.overflow.parse()?;
    let t = Instant::now();
    let (values, format): (Values, String) = match args.dtype {
        Dtype::F32 | Dtype::F64 => {
            if args.out_dtype.is_some() || args.acc_dtype.is_some() || args.weight_dtype.is_some() || args.raw {
                bail!("--weight-dtype, --out-dtype, --acc-dtype and --raw need a fixed-point --dtype such as q1.7");
            }
            let mut in_shape = vec![n];
            in_shape.extend(&sample);
            let y = if args.dtype == Dtype::F64 {
                let xa = ArrayD::from_shape_vec(IxDyn(&in_shape), x.data)?;
                Values::F64(r.conv::<f64>()?.conv_unfold(xa.view())?.into_iter().collect())
            } else {
                let xa = ArrayD::from_shape_vec(IxDyn(&in_shape), x.data.iter().map(|&v| v as f32).collect())?;
                Values::F32(r.conv::<f32>()?.conv_unfold(xa.view())?.into_iter().collect())
            };
            // as before: the spelling of the float dtypes the summary has always used
            (y, if args.dtype == Dtype::F64 { "f64" } else { "f32" }.to_string())
        }
        Dtype::Fixed(xf) => {
            let wf = match &args.weight_dtype {
                Some(w) => qformat("weight-dtype", w)?,
                None => xf,
            };
            let fc = r.fixed(wf, xf)?;
            let xq = ndarray::Array2::from_shape_vec((n, fc.raw_conv().cols()), fc.quantize_input(&x.data))?;
            let acc = match &args.acc_dtype {
                Some(a) => Accumulation::Narrow { format: qformat("acc-dtype", a)?, rounding, overflow },
                None => Accumulation::Full,
            };
            let mut y = fc.apply(xq.view(), acc)?;
            if let Some(o) = &args.out_dtype {
                y = y.cast(qformat("out-dtype", o)?, rounding, overflow);
            }
            let format = y.format.to_string();
            if args.raw {
                if !y.format.fits_i64() {
                    bail!(
                        "the result format {} has {} bits, beyond int64; give --out-dtype",
                        y.format,
                        y.format.word_bits()
                    );
                }
                (Values::I64(y.raw.iter().map(|&v| v as i64).collect()), format)
            } else {
                let v = y.to_f64().map_err(|e| {
                    anyhow::anyhow!("{e}; give --out-dtype to cast the result, or --raw for the stored integers")
                })?;
                (Values::F64(v.into_iter().collect()), format)
            }
        }
        _ => bail!("unsupported --dtype {}", args.dtype),
    };
    let seconds = t.elapsed().as_secs_f64();
    let shape = if batched { out_shape } else { out_shape[1..].to_vec() };
    let mut f = AtomicFile::create(&args.output)?;
    match values {
        Values::F32(v) => write_npy(f.writer(), &shape, v),
        Values::F64(v) => write_npy(f.writer(), &shape, v),
        Values::I64(v) => write_npy(f.writer(), &shape, v),
    }
    .with_context(|| format!("writing {}", args.output.display()))?;
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

enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}
