//! `convmat run --fixed FORMATS.json`: the graph in fixed point (convmat-net's `Graph::run_fixed`), its
//! report as a table and as JSON.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use convmat_io::{write_npy_slice, AtomicFile};
use convmat_net::{Arithmetic, FixedRun, Formats, LayerReport, Tensor};
use convmat_onnx::{BlockOptions, Model};
use serde::Serialize;

use super::args::show_shape;

/// What `--report` writes.
#[derive(Serialize)]
struct Report<'a> {
    model: String,
    formats: String,
    input_shape: &'a [usize],
    output_format: Option<String>,
    sqnr_db: Option<f64>,
    seconds: f64,
    layers: &'a [LayerReport],
}

/// Reads a formats file: one line naming the file when it is not one.
pub fn read_formats(path: &Path) -> Result<Formats> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading --fixed {}", path.display()))?;
    Formats::from_json(&text).with_context(|| format!("{}", path.display()))
}

/// Runs the model in fixed point and writes what was asked.
pub fn run(
    model_path: &Path,
    model: &Model,
    x: convmat_io::Tensor,
    formats: &Formats,
    (output, report, trace): (Option<&PathBuf>, Option<&PathBuf>, Option<&PathBuf>),
    fixed_path: &Path,
) -> Result<()> {
    let sample = model.sample_shape(&x.shape);
    let batched = sample != x.shape;
    let network = model.network(Some(&sample), &BlockOptions::default())?;
    let t = Instant::now();
    let FixedRun { outputs, formats: out_formats, reference, trace: traced, report: layers } =
        network.graph().run_fixed(&network, vec![Tensor::new(x.shape.clone(), x.data)], formats, trace.is_some())?;
    let seconds = t.elapsed().as_secs_f64();
    let y = &outputs[0];
    let shape = if batched { y.shape.clone() } else { y.shape[1..].to_vec() };
    if let Some(o) = output {
        let mut f = AtomicFile::create(o)?;
        f.write(|w| write_npy_slice(w, &shape, &y.data))?;
        f.commit()?;
    }
    let sqnr = {
        let (mut s, mut e) = (0.0, 0.0);
        for (&a, &r) in y.data.iter().zip(&reference[0].data) {
            let r = f64::from(r);
            s += r * r;
            e += (a - r) * (a - r);
        }
        (e > 0.0).then(|| 10.0 * (s / e).log10())
    };
    if let Some(r) = report {
        let rep = Report {
            model: model_path.display().to_string(),
            formats: fixed_path.display().to_string(),
            input_shape: &x.shape,
            output_format: out_formats[0].map(|f| f.to_string()),
            sqnr_db: sqnr,
            seconds,
            layers: &layers,
        };
        let mut f = AtomicFile::create(r)?;
        f.write(|w| serde_json::to_writer_pretty(w, &rep).map_err(std::io::Error::other))?;
        f.commit()?;
    }
    if let Some(dir) = trace {
        let records = convmat_net::write_trace(dir, &traced)?;
        eprintln!("trace: {} tensors and trace.json in {}", records.len(), dir.display());
    }
    print!("{}", table(&layers));
    eprintln!(
        "{} {} in {:.3} s (fixed point, {}), SQNR {} against float32{}{}",
        if batched { "output" } else { "output of one sample" },
        show_shape(&shape),
        seconds,
        out_formats[0].map_or_else(|| "real values".to_string(), |f| f.to_string()),
        db(sqnr),
        output.map(|o| format!(", written to {}", o.display())).unwrap_or_default(),
        report.map(|r| format!(", report in {}", r.display())).unwrap_or_default(),
    );
    Ok(())
}

fn db(v: Option<f64>) -> String {
    v.map_or_else(|| "exact".to_string(), |v| format!("{v:.1} dB"))
}

/// The human table: every block, every node that casts or runs through float.
fn table(layers: &[LayerReport]) -> String {
    let mut rows = vec![[
        "node".to_string(),
        "op".into(),
        "arith".into(),
        "input".into(),
        "weight".into(),
        "accumulator".into(),
        "result".into(),
        "SQNR".into(),
        "ovf prod/acc/res".into(),
    ]];
    for l in layers {
        if l.arithmetic == Arithmetic::Exact && l.modes.is_none() && l.op != "Add" {
            continue;
        }
        let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        rows.push([
            l.node.clone(),
            l.op.clone(),
            l.arithmetic.as_str().into(),
            s(&l.input),
            s(&l.weight),
            s(&l.accumulator),
            l.result.clone().unwrap_or_else(|| "real".into()),
            db(l.sqnr_db),
            format!("{}/{}/{}", l.products, l.accumulators, l.results),
        ]);
    }
    let widths: Vec<usize> = (0..9).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(v, &w)| format!("{v:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
