//! `convmat run` on a quantized model: exact integer arithmetic, stored integers in the trace.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use convmat_io::{write_npy_slice, AtomicFile};
use convmat_net::write_trace_with;
use convmat_onnx::{Model, QRun, QTensor, QuantReference};

use super::args::show_shape;

fn write(w: &mut impl std::io::Write, t: &QTensor) -> std::io::Result<()> {
    match t {
        QTensor::Int { shape, data, .. } => write_npy_slice(w, shape, data),
        QTensor::Float { shape, data } => write_npy_slice(w, shape, data),
    }
}

/// Runs a quantized model: float inputs quantized by the model's own QuantizeLinear, integer graph
/// inputs taken as stored integers of their type.
pub fn run(
    model: &Model,
    x: convmat_io::Tensor,
    output: Option<&Path>,
    trace: Option<&Path>,
    reference: QuantReference,
) -> Result<()> {
    let input = match model.input_quant_type() {
        Some(ty) => {
            let data: Vec<i64> = x.data.iter().map(|&v| v as i64).collect();
            if let Some((i, &v)) = x
                .data
                .iter()
                .enumerate()
                .find(|(_, v)| **v != v.trunc() || !(ty.min() as f64..=ty.max() as f64).contains(*v))
            {
                anyhow::bail!(
                    "--input value {i} is {v}: the model's input takes {ty} stored integers [{}, {}]",
                    ty.min(),
                    ty.max()
                );
            }
            QTensor::Int { ty, shape: x.shape.clone(), data }
        }
        None => QTensor::Float { shape: x.shape.clone(), data: x.data.iter().map(|&v| v as f32).collect() },
    };
    let batched = model.sample_shape(&x.shape) != x.shape;
    let t = Instant::now();
    let QRun { outputs, trace: traced } = model.run_quantized(input, reference, trace.is_some())?;
    let seconds = t.elapsed().as_secs_f64();
    let y = &outputs[0];
    if let Some(o) = output {
        let mut f = AtomicFile::create(o)?;
        f.write(|w| write(w, y))?;
        f.commit()?;
    }
    if let Some(dir) = trace {
        let entries = traced.iter().map(|t| (t.node.clone(), t.op.clone(), t.tensor.clone(), t.value.shape().to_vec()));
        let records = write_trace_with(dir, entries.collect(), |k, w| write(w, &traced[k].value))?;
        eprintln!("trace: {} tensors and trace.json in {}", records.len(), dir.display());
    }
    let kind = match y {
        QTensor::Int { ty, .. } => format!("{ty} stored integers"),
        QTensor::Float { .. } => "float32".to_string(),
    };
    eprintln!(
        "{} {} in {:.3} s (quantized, exact integers, {reference}'s requantisation; {kind}){}",
        if batched { "output" } else { "output of one sample" },
        show_shape(y.shape()),
        seconds,
        output.map(|o| format!(", written to {}", o.display())).unwrap_or_default()
    );
    Ok(())
}
