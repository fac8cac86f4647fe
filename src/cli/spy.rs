//! `convmat spy`: a picture of a layer's matrix (sparsity pattern, magnitudes, channel blocks) as PNG.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use convmat_io::AtomicFile;
use convmat_plot::{spy_layer, PlotOptions, Size};
use serde::Serialize;

use super::layer::LayerArgs;

/// Draw a layer's matrix A as a PNG: stored entries shaded by |a| (MATLAB's spy with magnitudes), with
/// the channel blocks outlined.
#[derive(Debug, Args)]
#[command(after_help = "\
Rows are the flattened output (C_out, *out), columns the flattened input (C_in, *in): red lines
separate the output channels' row blocks and the input channels' column blocks, so each block is
one (output channel, input channel) kernel's doubly-block-Toeplitz (zero padding) or
block-circulant (circular padding) matrix. Matrices larger than the picture are max-pooled: a pixel
shows the largest |a| it covers (white: no stored entry; light grey: stored entries equal to 0).
The rows are walked in bounded chunks; the dense matrix is never formed.

Examples:
  convmat spy --weight w.npy --input-shape 3,8,8 --padding 1 -o A.png
  convmat spy --weight w.npy --input-shape 3,8,8 --padding 1 --padding-mode circular \\
      --size 1200x800 -o A.png")]
pub struct SpyArgs {
    #[command(flatten)]
    layer: LayerArgs,
    /// Output picture (.png).
    #[arg(short, long, value_name = "A.png")]
    output: PathBuf,
    /// Picture size: the longer side in pixels (the other follows the matrix's shape, within 4:1), or
    /// WIDTHxHEIGHT.
    #[arg(long, default_value = "800", value_name = "N|WxH", value_parser = parse_size)]
    size: Size,
    /// The bare matrix: no title, channel numbers, frame or colour scale.
    #[arg(long)]
    no_labels: bool,
    /// Print {layer, output, width, height, rows, cols, nnz, max_abs, entries_per_pixel, lines_every} as
    /// JSON.
    #[arg(long)]
    json: bool,
}

fn parse_size(text: &str) -> Result<Size, String> {
    text.parse().map_err(|e: convmat_plot::PlotError| e.to_string())
}

#[derive(Serialize)]
struct Report {
    layer: String,
    output: String,
    width: u32,
    height: u32,
    rows: usize,
    cols: usize,
    nnz: usize,
    max_abs: f64,
    entries_per_pixel: (f64, f64),
    lines_every: (usize, usize),
}

pub fn run(args: SpyArgs) -> Result<()> {
    let ext = args.output.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if !ext.eq_ignore_ascii_case("png") {
        bail!("invalid output '{}': spy writes a .png picture", args.output.display());
    }
    let layer = args.layer.resolve()?;
    let options = PlotOptions::default().with_size(args.size).with_labels(!args.no_labels);
    let spy = spy_layer(&layer, &options)?;
    let mut f = AtomicFile::create(&args.output)?;
    f.write(|w| spy.image.write_png(w))?;
    f.commit()?;
    let report = Report {
        layer: layer.description(),
        output: args.output.display().to_string(),
        width: spy.image.width(),
        height: spy.image.height(),
        rows: spy.shape.rows,
        cols: spy.shape.cols,
        nnz: spy.nnz,
        max_abs: spy.max_abs,
        entries_per_pixel: spy.entries_per_pixel,
        lines_every: spy.lines_every,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {} x {} matrix, {} stored entries, max |a| {:.6e} -> {} ({}x{} pixels)",
            report.layer,
            report.rows,
            report.cols,
            report.nnz,
            report.max_abs,
            report.output,
            report.width,
            report.height
        );
    }
    Ok(())
}

/// Parses an output path that must end in `.png` (so `svd --plot` fails before computing).
pub fn parse_png(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(path),
        _ => Err(format!("'{text}' is not a .png file name; the plot is written as PNG, e.g. S.png")),
    }
}

/// `svd --plot S.png`: the values against their index (log scale), with the circular upper bound.
pub fn write_spectrum(path: &std::path::Path, values: &[f64], bound: Option<f64>, layer: &str) -> Result<()> {
    let title = format!("{layer}: {} singular value{}", values.len(), if values.len() == 1 { "" } else { "s" });
    let image = convmat_plot::spectrum_plot(values, bound, &PlotOptions::default().with_title(title))?;
    let mut f = AtomicFile::create(path)?;
    f.write(|w| image.write_png(w))?;
    f.commit()?;
    Ok(())
}
