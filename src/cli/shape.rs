//! `convmat shape`: propagate a sample shape through a chain of PyTorch layers.

use anyhow::{Context, Result};
use clap::Args;
use convmat_shape::{parse_layer, propagate, split_sequential, Layer};
use serde::Serialize;

use super::args::{parse_shape, show_shape, Dims};

/// Print every layer's output shape and parameter count for a chain of PyTorch layers.
#[derive(Debug, Args)]
#[command(after_help = "\
Each LAYER is a PyTorch constructor expression with positional and keyword arguments as in torch.nn
(integer arithmetic such as 16*6*6 is allowed; 'nn.' and 'torch.nn.' prefixes are ignored). A single
nn.Sequential(...) expression is split into its layers. Shapes are of one sample, without the batch.

Known layers: Conv1d-3d, ConvTranspose1d-3d, MaxPool1d-3d, AvgPool1d-3d, AdaptiveAvgPool1d-3d,
AdaptiveMaxPool1d-3d, BatchNorm1d-3d, Flatten, Linear, and shape-preserving activations/dropout.

Examples:
  # why is it nn.Linear(16*6*6, 120)?
  convmat shape --input-shape 1,32,32 'Conv2d(1, 6, 3)' 'MaxPool2d(2)' 'Conv2d(6, 16, 3)' \\
      'MaxPool2d(2)' 'Flatten()'

  # a ResNet stem, as JSON
  convmat shape --input-shape 3,224,224 --json \\
      'Conv2d(3, 64, 7, stride=2, padding=3, bias=False)' 'MaxPool2d(3, 2, 1)'

  # a whole model pasted from Python
  convmat shape --input-shape 16,7,7 \\
    'nn.Sequential(nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU())'

  # circular 'same' padding and a Linear that does not fit: the error says the size it should be
  convmat shape --input-shape 6,15,15 \\
      \"Conv2d(6, 16, kernel_size=3, padding='same', padding_mode='circular')\" \\
      'Flatten()' 'Linear(100, 10)'")]
pub struct ShapeArgs {
    /// Shape of one input sample: C,L or C,H,W or C,D,H,W.
    #[arg(long, value_name = "C,H,W", value_parser = parse_shape)]
    input_shape: Dims,

    /// Print a JSON object {input, layers: [{layer, output, features, params}], params} instead of a table.
    #[arg(long)]
    json: bool,

    /// Layers, in order, as PyTorch constructor expressions.
    #[arg(value_name = "LAYER", required = true)]
    layers: Vec<String>,
}

#[derive(Serialize)]
struct Row {
    layer: String,
    output: Vec<usize>,
    features: usize,
    params: usize,
}

#[derive(Serialize)]
struct Report {
    input: Vec<usize>,
    layers: Vec<Row>,
    params: usize,
}

pub fn run(args: ShapeArgs) -> Result<()> {
    let texts = split_sequential(&args.layers)?;
    let layers: Vec<Layer> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| parse_layer(t).with_context(|| format!("layer {}", i + 1)))
        .collect::<Result<_>>()?;
    let input = args.input_shape.0;
    let shapes = propagate(&input, &layers)?;
    let rows: Vec<Row> = shapes
        .into_iter()
        .map(|s| Row { features: s.output.iter().product(), layer: s.layer, output: s.output, params: s.params })
        .collect();
    let report = Report { params: rows.iter().map(|r| r.params).sum(), input, layers: rows };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let width = report.layers.iter().map(|r| r.layer.len()).max().unwrap_or(0).max(5);
    println!("{:<width$}  {:<16} {:>12} {:>12}", "layer", "output", "features", "params");
    println!(
        "{:<width$}  {:<16} {:>12} {:>12}",
        "input",
        show_shape(&report.input),
        report.input.iter().product::<usize>(),
        ""
    );
    for r in &report.layers {
        println!("{:<width$}  {:<16} {:>12} {:>12}", r.layer, show_shape(&r.output), r.features, r.params);
    }
    println!("{:<width$}  {:<16} {:>12} {:>12}", "total", "", "", report.params);
    Ok(())
}
