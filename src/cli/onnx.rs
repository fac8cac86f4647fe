//! `convmat onnx`: list an ONNX model's nodes with shapes, parameters and whether convmat builds them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use convmat_onnx::{Model, NodeKind};

use super::args::{parse_shape, show_shape, Dims};

/// List every node of an ONNX model: op, input and output shapes, parameters, and its role.
#[derive(Debug, Args)]
#[command(after_help = "\
Shapes are of one sample (the batch dimension dropped). Roles: affine (convmat builds its matrix: Conv,
ConvTranspose, Gemm, MatMul/Add/Mul with constants, BatchNormalization, AveragePool, GlobalAveragePool,
Pad), identity (Flatten, Reshape, Identity, Dropout, Squeeze, Unsqueeze), nonlinearity (Relu, MaxPool,
Softmax, ...), constant (folded at load), unsupported (with the reason).

Examples:
  convmat onnx cnn.onnx
  convmat onnx model.onnx --input-shape 3,32,32 --json   # a model with dynamic height and width")]
pub struct OnnxArgs {
    /// The ONNX model.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,

    /// Shape of one input sample (C,H,W), for models whose input shape is dynamic.
    #[arg(long, value_name = "C,H,W", value_parser = parse_shape)]
    input_shape: Option<Dims>,

    /// Print JSON {"inputs", "nodes": [{"name", "op", "input_shape", "output_shape", "params", "affine"}]}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: OnnxArgs) -> Result<()> {
    let model = Model::load(&args.model)?;
    let summary = model.summary(args.input_shape.as_ref().map(|d| d.0.as_slice()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    for i in &summary.inputs {
        println!("input {} [{}] -> {}", i.name, i.declared.join(", "), show_shape(&i.shape));
    }
    let shape = |s: &Option<Vec<usize>>| s.as_deref().map(show_shape).unwrap_or_else(|| "-".into());
    let width = summary.nodes.iter().filter(|n| n.kind != NodeKind::Constant).map(|n| n.name.len()).max().unwrap_or(4);
    let constants = summary.nodes.iter().filter(|n| n.kind == NodeKind::Constant).count();
    for n in summary.nodes.iter().filter(|n| n.kind != NodeKind::Constant) {
        let mut note = match &n.kind {
            NodeKind::Unsupported(why) => format!("UNSUPPORTED: {why}"),
            k => k.as_str().to_string(),
        };
        for key in ["expression", "folded_into", "pad_folded"] {
            if let Some(v) = n.params.get(key).and_then(|v| v.as_str()) {
                note.push_str(&format!("  {key}={v}"));
            }
        }
        println!(
            "{:<width$}  {:<18} {:>12} -> {:<12} {note}",
            n.name,
            n.op,
            shape(&n.input_shape),
            shape(&n.output_shape)
        );
    }
    if constants > 0 {
        println!("({constants} constant nodes folded at load; --json lists them)");
    }
    Ok(())
}
