//! `convmat calibrate`: observed ranges on a calibration batch, certified accumulator ranges, and a
//! proposed formats file for `convmat run --fixed` (convmat-net's `Graph::calibrate`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use convmat_io::{read_array, AtomicFile};
use convmat_net::{CalibrateOptions, Calibration, Tensor};
use convmat_onnx::{BlockOptions, Model};

/// Propose per-layer fixed-point types for a model from a calibration batch: MATLAB's best precision
/// for the observed ranges, accumulators from the certified range.
#[derive(Debug, Args)]
#[command(after_help = "\
Each block's weights and result get the type of --word-length bits whose integer part holds the largest
magnitude (MATLAB fi's best precision), from the weights and from the batch's observed outputs; the graph
input and every Add, Concat and float nonlinearity get a result type the same way. Each accumulator comes
from the block's certified range over every input its input type can hold (never from the observed
values), at the product's fraction length, or in --acc-word-length bits. FORMATS.json is what
`convmat run --fixed` takes; --report writes the observed and certified ranges per channel, the % of each
range used and hls4ml precision strings.

Examples:
  convmat calibrate resnet18.onnx --input batch.npy --word-length 16 -o formats.json
  convmat run resnet18.onnx --input x.npy --fixed formats.json --report report.json")]
pub struct CalibrateArgs {
    /// The ONNX model.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    /// The calibration batch: (N, *sample) or one sample.
    #[arg(long, value_name = "X")]
    input: PathBuf,
    /// Word length of inputs, weights and results.
    #[arg(long, default_value_t = 8, value_name = "BITS")]
    word_length: u32,
    /// Word length of the accumulators (default: the certified width, no product rounded).
    #[arg(long, value_name = "BITS")]
    acc_word_length: Option<u32>,
    /// Write the proposed formats here (.json).
    #[arg(short, long, value_name = "FORMATS.json")]
    output: PathBuf,
    /// Write the ranges and proposals per layer and channel here (.json).
    #[arg(long, value_name = "REPORT.json")]
    report: Option<PathBuf>,
}

pub fn run(args: CalibrateArgs) -> Result<()> {
    for p in std::iter::once(&args.output).chain(&args.report) {
        if p.extension().and_then(|e| e.to_str()) != Some("json") {
            bail!("invalid output '{}': calibrate writes .json", p.display());
        }
    }
    let x = read_array(&args.input).context("reading --input")?;
    let model = Model::load(&args.model)?;
    let sample = model.sample_shape(&x.shape);
    let network = model.network(Some(&sample), &BlockOptions::default())?;
    let mut options = CalibrateOptions::new(args.word_length);
    options.acc_word_length = args.acc_word_length;
    let cal = network.graph().calibrate(&network, vec![Tensor::new(x.shape.clone(), x.data)], &options)?;
    let mut f = AtomicFile::create(&args.output)?;
    f.write(|w| serde_json::to_writer_pretty(w, &cal.formats).map_err(std::io::Error::other))?;
    f.commit()?;
    if let Some(r) = &args.report {
        let mut f = AtomicFile::create(r)?;
        f.write(|w| serde_json::to_writer_pretty(w, &cal).map_err(std::io::Error::other))?;
        f.commit()?;
    }
    print!("{}", table(&cal));
    eprintln!(
        "{} layers typed from {} sample{} (input observed {:.4} .. {:.4}: {}), written to {}",
        cal.layers.len(),
        x.shape.first().filter(|_| sample != x.shape).copied().unwrap_or(1),
        if sample != x.shape && x.shape[0] != 1 { "s" } else { "" },
        cal.input_range[0],
        cal.input_range[1],
        cal.formats.input.as_deref().unwrap_or("-"),
        args.output.display()
    );
    Ok(())
}

fn table(cal: &Calibration) -> String {
    let mut rows = vec![[
        "node".to_string(),
        "op".into(),
        "observed".into(),
        "result".into(),
        "used".into(),
        "weight".into(),
        "certified acc".into(),
        "accumulator".into(),
    ]];
    let g = |v: f64| format!("{v:.4}");
    for l in &cal.layers {
        let cert = if l.certified.is_empty() {
            "-".to_string()
        } else {
            let lo = l.certified.iter().map(|c| c[0]).fold(f64::INFINITY, f64::min);
            let hi = l.certified.iter().map(|c| c[1]).fold(f64::NEG_INFINITY, f64::max);
            format!("{} .. {}", g(lo), g(hi))
        };
        let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        rows.push([
            l.node.clone(),
            l.op.clone(),
            format!("{} .. {}", g(l.observed_layer[0]), g(l.observed_layer[1])),
            s(&l.proposed.result),
            l.result_range_used.map_or_else(|| "-".into(), |u| format!("{u:.0}%")),
            s(&l.proposed.weight),
            cert,
            s(&l.proposed.accumulator),
        ]);
    }
    let widths: Vec<usize> = (0..8).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(v, &w)| format!("{v:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
