//! `convmat range`: the exact accumulator range of a quantized layer per output channel, the inputs that
//! reach it, and the published bounds beside it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use convmat_io::{write_npy_slice, AtomicFile};
use convmat_matrix::{accumulator_range, AccumulatorRange, ConvLayer, Extremum, InputRange, RangeOptions};
use convmat_numeric::{Dialect, QFormat};
use serde::Serialize;

use super::layer::LayerArgs;

/// Exact accumulator range per output channel of a quantized layer over an input box, with the inputs
/// that reach it, beside the data-type, A2Q and A2Q+ widths.
#[derive(Debug, Args)]
#[command(after_help = "\
The accumulator is sum((x - x_zp) * (w - w_zp)) + bias in stored integers at the product's fraction
length (f_w + f_x), as ONNX QLinearConv / ConvInteger and integer hardware compute it: zero padding
contributes nothing, reflect / replicate / circular padding reads real inputs (taps that land on one
input are summed first). Weights are quantized to --weight-dtype like MATLAB's fi (nearest, saturate)
or, without it, must be integers. The bias is taken exactly in stored units of the product
(round(b * 2^(f_w + f_x)), as ONNX's int32 bias; `convmat apply` saturates it to the product's word as
MATLAB's fi does, so the two agree while the bias fits that word).
Inputs span --input-dtype's stored integers, or --input-range LO,HI (real units) quantized to it.

Per channel: min and max (exact), whether each is reached only at a border row (rows with taps in
padding), the signed width that holds them, A2Q and A2Q+ (from ||w - w_zp||_1, ignoring bias and
borders); per layer: the widest channel and the data-type bound w_x + w_w + ceil(log2 N).

--json prints {layer, input_shape, input_format, weight_format, input_min, input_max, input_zero_point,
weight_zero_point, frac_bits, bits, bits_channel, datatype_bits, a2q_bits, a2q_plus_bits, accumulator,
channels: [{channel, min, max, min_at_border, max_at_border, at_border, bits, l1_norm, a2q_bits,
a2q_plus_bits, hls4ml, min_output, max_output}], witness}: values are stored integers of the accumulator;
accumulator the proposed accumulator (bits wide, frac_bits fraction) in every dialect (q, matlab,
ap_fixed, hls4ml, qonnx), hls4ml each channel's as hls4ml's precision string; *_output the output
index (C_out, *spatial) that reaches the value; witness (with --witness) lists the files written.

--witness DIR writes DIR/c{channel}_{min,max}.npy: one input sample (int64 stored integers of the input
format, shape --input-shape) that reaches the value, and DIR/index.json. `convmat apply` with
--dtype the input format (real values: stored integers times 2^-F), --acc-dtype s{bits},{frac_bits}
--overflow wrap --raw reproduces it at that output; one bit narrower it wraps.

--weights MODEL.onnx [--layer NODE]: the quantized convolutions and matrix products of an ONNX model
(QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger, and DequantizeLinear -> Conv / MatMul as
onnxruntime fuses them), types, zero points (per output channel too) and the int32 bias from the model;
--input-range is then in stored integers, and --input-dtype, --weight-dtype and the zero-point flags
are refused (the model gives them). Without --layer, every quantized node: --json prints {model,
layers: [report + node, op, form]}. A matrix product x @ W of K inputs is the Conv1d(K, N, 1) of one
row of x.

Examples:
  convmat range --weight w.npy --input-shape 64,56,56 --padding 1 --input-dtype q8.0
  convmat range --weight w.npy --bias b.npy --input-shape 3,32,32 --input-dtype uq8.0 \\
      --input-zero-point 128 --weight-dtype q8.0 --witness wit --json
  convmat range --weights model_int8.onnx --layer conv1 --json")]
pub struct RangeArgs {
    #[command(flatten)]
    layer: LayerArgs,
    /// The inputs' format: qI.F (q8.0 = int8), uqI.F (uq8.0 = uint8), sW,F or uW,F (an ONNX model
    /// gives its own).
    #[arg(long, value_name = "DTYPE", required_unless_present = "weights")]
    input_dtype: Option<String>,
    /// A narrower input box in real units: LO,HI (e.g. 0,6).
    #[arg(long, value_name = "LO,HI", allow_hyphen_values = true)]
    input_range: Option<String>,
    /// The weights' format (weights quantized to it); default: integer weights as they are.
    #[arg(long, value_name = "qI.F")]
    weight_dtype: Option<String>,
    /// The inputs' zero point (a stored integer of --input-dtype).
    #[arg(long, value_name = "Z", default_value_t = 0, allow_hyphen_values = true)]
    input_zero_point: i64,
    /// The weights' zero point (a stored integer of the weight format).
    #[arg(long, value_name = "Z", default_value_t = 0, allow_hyphen_values = true)]
    weight_zero_point: i64,
    /// Write, per channel, an input reaching the minimum and one reaching the maximum to DIR.
    #[arg(long, value_name = "DIR")]
    witness: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Channel {
    channel: usize,
    min: i128,
    max: i128,
    min_at_border: bool,
    max_at_border: bool,
    at_border: bool,
    bits: u32,
    l1_norm: u128,
    a2q_bits: u32,
    a2q_plus_bits: u32,
    /// The channel's accumulator width as hls4ml's precision string (`fixed<W,I>`).
    hls4ml: String,
    min_output: Vec<usize>,
    max_output: Vec<usize>,
}

#[derive(Serialize)]
struct WitnessFile {
    channel: usize,
    extremum: &'static str,
    file: String,
    value: i128,
    output: Vec<usize>,
}

#[derive(Serialize)]
struct Report {
    /// The ONNX node (quantized models).
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    /// Its op.
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<String>,
    /// The quantized form it was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    form: Option<String>,
    /// Per output channel weight zero points, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    weight_zero_points: Option<Vec<i64>>,
    layer: String,
    input_shape: Vec<usize>,
    input_format: String,
    weight_format: String,
    input_min: i64,
    input_max: i64,
    input_zero_point: i64,
    weight_zero_point: i64,
    frac_bits: i32,
    bits: u32,
    bits_channel: usize,
    datatype_bits: u32,
    a2q_bits: u32,
    a2q_plus_bits: u32,
    /// The layer's accumulator (the worst channel's width, the products' fraction) in every dialect.
    accumulator: BTreeMap<&'static str, String>,
    channels: Vec<Channel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    witness: Option<Vec<WitnessFile>>,
}

fn qformat(flag: &str, text: &str) -> Result<QFormat> {
    text.parse::<QFormat>().with_context(|| format!("invalid --{flag} '{text}'"))
}

/// The output index `(C_out, *spatial)` of a flat output (matrix row).
fn output_index(layer: &ConvLayer, row: usize) -> Vec<usize> {
    let shape = layer.geometry().output_shape();
    let mut index = vec![0; shape.len()];
    let mut rest = row;
    for (i, &n) in shape.iter().enumerate().rev() {
        index[i] = rest % n.max(1);
        rest /= n.max(1);
    }
    index
}

pub fn run(args: RangeArgs) -> Result<()> {
    if let Some(model) = args.layer.onnx_model() {
        return run_onnx(&args, model);
    }
    let input_dtype = args.input_dtype.as_deref().context("--input-dtype is required with --weight")?;
    let mut options = RangeOptions::new(qformat("input-dtype", input_dtype)?);
    options.weight_format = args.weight_dtype.as_deref().map(|w| qformat("weight-dtype", w)).transpose()?;
    options.input_range =
        args.input_range.as_deref().map(|r| r.parse::<InputRange>().context("--input-range")).transpose()?;
    options.input_zero_point = args.input_zero_point;
    options.weight_zero_point = args.weight_zero_point;
    let layer = args.layer.resolve()?;
    let range = accumulator_range(&layer, &options)?;
    let witness = args.witness.as_deref().map(|dir| write_witnesses(dir, &layer, &range)).transpose()?;
    let report = report(&layer, &range, witness)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// `--weights MODEL.onnx [--layer NODE]`: the quantized nodes' ranges, types and zero points from the model.
fn run_onnx(args: &RangeArgs, path: &Path) -> Result<()> {
    for (flag, given) in [
        ("--input-dtype", args.input_dtype.is_some()),
        ("--weight-dtype", args.weight_dtype.is_some()),
        ("--input-zero-point", args.input_zero_point != 0),
        ("--weight-zero-point", args.weight_zero_point != 0),
    ] {
        if given {
            bail!("{flag} is not taken with --weights MODEL.onnx: the model gives the types and zero points of its quantized nodes");
        }
    }
    let model = convmat_onnx::Model::load(path)?;
    let shape = args.layer.input_shape.as_ref().map(|d| d.0.as_slice());
    let input_range =
        args.input_range.as_deref().map(|r| r.parse::<InputRange>().context("--input-range")).transpose()?;
    let layers = match args.layer.layer.as_slice() {
        [] => model.quantized_layers(shape)?,
        [name] => vec![model.quantized_layer(name, shape)?],
        more => bail!("--layer takes one node of an ONNX model; {} were given", more.len()),
    };
    if layers.is_empty() {
        bail!(
            "{} has no quantized convolution or matrix product (QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger, or Conv / MatMul between DequantizeLinear nodes)",
            path.display()
        );
    }
    if args.witness.is_some() && layers.len() > 1 {
        bail!("--witness writes one layer's inputs: give --layer NODE with it");
    }
    let mut reports = Vec::with_capacity(layers.len());
    for q in &layers {
        let range = q.accumulator_range(input_range)?;
        let layer = q.conv_layer()?;
        let witness = args.witness.as_deref().map(|dir| write_witnesses(dir, &layer, &range)).transpose()?;
        let mut r = report(&layer, &range, witness)?;
        r.node = Some(q.name.clone());
        r.op = Some(q.op.clone());
        r.form = Some(q.form.to_string());
        let zps = range.weight_zero_points();
        r.weight_zero_points = (zps.len() > 1).then(|| zps.to_vec());
        reports.push(r);
    }
    if args.json {
        let text = if args.layer.layer.is_empty() {
            serde_json::to_string_pretty(&serde_json::json!({"model": path.display().to_string(), "layers": reports}))?
        } else {
            serde_json::to_string_pretty(&reports[0])?
        };
        println!("{text}");
    } else {
        for (k, r) in reports.iter().enumerate() {
            if k > 0 {
                println!();
            }
            println!(
                "node '{}' ({}, {})",
                r.node.as_deref().unwrap_or_default(),
                r.op.as_deref().unwrap_or_default(),
                r.form.as_deref().unwrap_or_default()
            );
            print_table(r);
        }
    }
    Ok(())
}

/// A signed accumulator of `bits` bits with the products' `frac_bits`, in every dialect convmat prints.
fn dialects(bits: u32, frac_bits: i32) -> Result<BTreeMap<&'static str, String>> {
    let format = QFormat::new(true, bits, frac_bits)?;
    Ok(Dialect::ALL.iter().map(|&d| (d.as_str(), format.to_dialect(d))).collect())
}

fn report(layer: &ConvLayer, range: &AccumulatorRange, witness: Option<Vec<WitnessFile>>) -> Result<Report> {
    let mut channels = Vec::with_capacity(range.channels().len());
    for (channel, c) in range.channels().iter().enumerate() {
        channels.push(Channel {
            channel,
            min: c.min,
            max: c.max,
            min_at_border: c.min_at_border,
            max_at_border: c.max_at_border,
            at_border: c.at_border(),
            bits: c.bits,
            l1_norm: c.l1_norm,
            a2q_bits: c.a2q_bits,
            a2q_plus_bits: c.a2q_plus_bits,
            hls4ml: QFormat::new(true, c.bits, range.frac_bits())?.to_dialect(Dialect::Hls4ml),
            min_output: output_index(layer, range.witness_row(channel, Extremum::Min)?),
            max_output: output_index(layer, range.witness_row(channel, Extremum::Max)?),
        });
    }
    let bits_channel = channels.iter().position(|c| c.bits == range.bits_layer()).unwrap_or(0);
    let (input_min, input_max) = range.input_bounds();
    let (input_zero_point, weight_zero_point) = range.zero_points();
    Ok(Report {
        node: None,
        op: None,
        form: None,
        weight_zero_points: None,
        layer: layer.description(),
        input_shape: layer.geometry().input_shape(),
        input_format: range.input_format().to_string(),
        weight_format: range.weight_format().to_string(),
        input_min,
        input_max,
        input_zero_point,
        weight_zero_point,
        frac_bits: range.frac_bits(),
        bits: range.bits_layer(),
        bits_channel,
        datatype_bits: range.datatype_bits(),
        a2q_bits: range.a2q_bits(),
        a2q_plus_bits: range.a2q_plus_bits(),
        accumulator: dialects(range.bits_layer(), range.frac_bits())?,
        channels,
        witness,
    })
}

/// Writes every channel's two witnesses and the index, each file atomically.
fn write_witnesses(dir: &Path, layer: &ConvLayer, range: &AccumulatorRange) -> Result<Vec<WitnessFile>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating --witness directory {}", dir.display()))?;
    let shape = layer.geometry().input_shape();
    let mut index = Vec::with_capacity(2 * range.channels().len());
    for (channel, c) in range.channels().iter().enumerate() {
        for which in Extremum::ALL {
            let x = range.witness(channel, which)?;
            let name = format!("c{channel}_{which}.npy");
            let mut f = AtomicFile::create(&dir.join(&name))?;
            f.write(|w| write_npy_slice(w, &shape, &x))?;
            f.commit()?;
            let output = output_index(layer, range.witness_row(channel, which)?);
            index.push(WitnessFile { channel, extremum: which.as_str(), file: name, value: c.value(which), output });
        }
    }
    let mut f = AtomicFile::create(&dir.join("index.json"))?;
    let text = serde_json::to_string_pretty(&index)?;
    f.write(|w| w.write_all(text.as_bytes()))?;
    f.commit()?;
    Ok(index)
}

fn print_table(r: &Report) {
    let shape: Vec<String> = r.input_shape.iter().map(usize::to_string).collect();
    println!(
        "{} on {}: inputs {} in [{}, {}] (zero point {}), weights {} (zero point {}); accumulator in stored \
         integers at fraction {}",
        r.layer,
        shape.join("x"),
        r.input_format,
        r.input_min,
        r.input_max,
        r.input_zero_point,
        r.weight_format,
        match &r.weight_zero_points {
            Some(z) => format!("{z:?} per channel"),
            None => r.weight_zero_point.to_string(),
        },
        r.frac_bits
    );
    println!("{:>7} {:>14} {:>14} {:>9} {:>5} {:>5} {:>5}", "channel", "min", "max", "reached", "bits", "A2Q", "A2Q+");
    for c in &r.channels {
        let at = match (c.min_at_border, c.max_at_border) {
            (false, false) => "interior",
            (true, true) => "border",
            (true, false) => "border-",
            (false, true) => "border+",
        };
        println!(
            "{:>7} {:>14} {:>14} {:>9} {:>5} {:>5} {:>5}",
            c.channel, c.min, c.max, at, c.bits, c.a2q_bits, c.a2q_plus_bits
        );
    }
    println!(
        "layer: {} bits (channel {}); data-type bound {}, A2Q {}, A2Q+ {}",
        r.bits, r.bits_channel, r.datatype_bits, r.a2q_bits, r.a2q_plus_bits
    );
    if let Some(w) = &r.witness {
        println!("witnesses: {} inputs and index.json written", w.len());
    }
}
