//! `convmat build`: the exact matrix of a layer, to a file SciPy / NumPy / Matrix Market tools read.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use convmat_io::{write_mtx, write_npy, write_sparse_npz, AtomicFile, Extra, NpyElement, SparseFormat, SparseParts};
use convmat_matrix::{Affine, Conv, MatrixFormat, MatrixOptions};
use convmat_numeric::{Dtype, QFormat, Scalar};
use serde::Serialize;
use sprs::CsMatI;

use super::layer::LayerArgs;

/// Build the exact matrix A of a layer (flatten(layer(x)) = A·flatten(x) + b) and write it to a file.
#[derive(Debug, Args)]
#[command(after_help = "\
The output format follows the extension of -o: .npz = sparse (SciPy save_npz layout: data,
indices, indptr, format, shape; plus `bias`, the expanded bias, one value per row, unless
--affine), .npy = dense, .mtx = Matrix Market coordinate. --format overrides (csr, csc, dense).
With --dtype qI.F the weights are quantized as MATLAB's fi(w, 1, I+F, F) and the matrix holds the
stored integers (int64, with a `qformat` key in npz); the bias is stored at the product's fraction
length (key `bias_qformat`, e.g. q2.14 for q1.7), so over stored inputs x, A·x + b is the exact
accumulator and [A | b]'s homogeneous coordinate is the integer 1; --real writes the real values
instead.

Examples:
  # the sparse CSR of a Conv2d, with the bias as an extra column
  convmat build --weight w.npy --bias b.npy --input-shape 3,32,32 --padding 1 --affine -o A.npz

  # a PyTorch state_dict saved with safetensors.torch.save_file, layer conv1
  convmat build --weights model.safetensors --layer conv1 --input-shape 3,32,32 --stride 2 \\
      -o A.npz

  # the doubly-block-circulant matrix of a circular-padded layer, dense
  convmat build --weight w.npy --input-shape 2,5,5 \\
      --layer \"Conv2d(2, 3, 3, padding=1, padding_mode='circular', bias=False)\" -o A.npy

  # MATLAB conv2(X, H, 'same') as a matrix, in Q1.7 stored integers, rows 0..1000 only
  convmat build --weight h.npy --input-shape 1,64,64 --flip --shape same --dtype q1.7 \\
      --rows 0..1000 -o A.mtx

Python: A = scipy.sparse.load_npz('A.npz'); y = A @ x.ravel() + np.load('A.npz')['bias']")]
pub struct BuildArgs {
    #[command(flatten)]
    layer: LayerArgs,
    /// Output file: .npz (sparse), .npy (dense) or .mtx (Matrix Market).
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Storage: csr, csc or dense (default: from the extension; csr for .npz and .mtx).
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    format: Option<MatrixFormat>,
    /// Element type: f32 (default), f64, or a fixed-point format qI.F (e.g. q1.7, q8.8).
    #[arg(long, default_value = "f32", value_name = "DTYPE", value_parser = super::args::parse_dtype)]
    dtype: Dtype,
    /// With a fixed-point --dtype: write the real values (float64) instead of the stored integers.
    #[arg(long)]
    real: bool,
    /// Append the bias as a last column: [A | b] · [x; 1] = A·x + b.
    #[arg(long)]
    affine: bool,
    /// With --affine, also append the row [0 … 0 1], so affine layers compose by matrix product.
    #[arg(long, requires = "affine")]
    homogeneous: bool,
    /// Build only rows R0..R1 of the full matrix (shards stack to it).
    #[arg(long, value_name = "R0..R1")]
    rows: Option<String>,
    /// Drop entries whose weight is exactly zero (kept by default, so the pattern is the geometry's).
    #[arg(long)]
    drop_zeros: bool,
    /// Refuse to build when the estimated memory exceeds this (bytes; K, M, G suffixes).
    #[arg(long, value_name = "BYTES")]
    max_memory: Option<String>,
    /// Print {rows, cols, nnz, bytes, build_seconds, write_seconds, ...} as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress or summary on stderr.
    #[arg(long)]
    quiet: bool,
}

#[derive(Serialize)]
struct Report {
    layer: String,
    output: String,
    format: &'static str,
    dtype: String,
    rows: usize,
    cols: usize,
    nnz: usize,
    bytes: u64,
    build_seconds: f64,
    write_seconds: f64,
}

fn parse_format(text: &str) -> Result<MatrixFormat, String> {
    text.parse().map_err(|e: convmat_shape::ShapeError| e.to_string())
}

pub fn run(args: BuildArgs) -> Result<()> {
    let ext = args.output.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    if !matches!(ext.as_str(), "npz" | "npy" | "mtx") {
        bail!(
            "invalid output '{}': the extension must be .npz (sparse), .npy (dense) or .mtx (Matrix Market)",
            args.output.display()
        );
    }
    let format = args.format.unwrap_or(if ext == "npy" { MatrixFormat::Dense } else { MatrixFormat::Csr });
    if (format == MatrixFormat::Dense) != (ext == "npy") {
        bail!("--format {format} cannot be written as .{ext}: dense goes to .npy, csr/csc to .npz or .mtx");
    }
    let dtype = args.dtype;
    if args.real && !matches!(dtype, Dtype::Fixed(_)) {
        bail!("--real applies to fixed-point dtypes (qI.F) only");
    }
    let resolved = args.layer.resolve()?;
    let affine = match (args.affine, args.homogeneous) {
        (false, _) => Affine::None,
        (true, false) => Affine::Column,
        (true, true) => Affine::Homogeneous,
    };
    let mut opts = MatrixOptions::default().affine(affine).drop_zeros(args.drop_zeros);
    if let Some(r) = &args.rows {
        opts = opts.rows(convmat_shape::parse_range("--rows", r)?);
    }
    // estimate before allocating: an upper bound of the bytes
    let est = resolved.estimate(format, dtype, &opts);
    let (rows, cols, estimate) = (est.rows, est.cols, est.bytes);
    let limit = match &args.max_memory {
        Some(m) => Some(convmat_shape::parse_bytes("--max-memory", m)?),
        None => convmat_matrix::available_memory(),
    };
    if let Some(limit) = limit.filter(|&l| estimate > l) {
        bail!(
            "the matrix needs about {estimate} bytes, more than the {limit} bytes {}; build it in shards with --rows R0..R1{}, or use the matrix-free route (convmat check / apply never form it)",
            if args.max_memory.is_some() { "allowed by --max-memory" } else { "of memory available" },
            if format == MatrixFormat::Dense { ", the sparse format (-o A.npz)" } else { "" }
        );
    }
    let progress = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let p = indicatif::ProgressBar::new_spinner();
        p.set_message(format!("building {rows} x {cols} matrix"));
        p.enable_steady_tick(std::time::Duration::from_millis(120));
        p
    });
    let report = match dtype {
        Dtype::F32 => write_conv(&resolved.conv::<f32>()?, &opts, format, &args.output, None, progress.as_ref())?,
        Dtype::F64 => write_conv(&resolved.conv::<f64>()?, &opts, format, &args.output, None, progress.as_ref())?,
        Dtype::Fixed(q) if args.real => {
            write_conv(&resolved.fixed(q, q)?.real_conv(), &opts, format, &args.output, Some(q), progress.as_ref())?
        }
        Dtype::Fixed(q) => {
            write_conv(&resolved.stored_integers(q)?, &opts, format, &args.output, Some(q), progress.as_ref())?
        }
        other => bail!("unsupported --dtype {other}"),
    };
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let report = Report { layer: resolved.description(), dtype: dtype.to_string(), ..report };
    if !args.quiet {
        eprintln!(
            "{}: {} x {} {}, nnz {}, {} bytes; built in {:.3} s, written in {:.3} s",
            report.output,
            report.rows,
            report.cols,
            report.format,
            report.nnz,
            report.bytes,
            report.build_seconds,
            report.write_seconds
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn write_conv<T: Scalar + NpyElement + std::fmt::Display>(
    conv: &Conv<T>,
    opts: &MatrixOptions,
    format: MatrixFormat,
    out: &Path,
    q: Option<QFormat>,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Report> {
    let t = Instant::now();
    let integer = T::DTYPE.starts_with("int");
    let report = |rows, cols, nnz, fmt, build: f64, write: f64| -> Result<Report> {
        Ok(Report {
            layer: String::new(),
            output: out.display().to_string(),
            format: fmt,
            dtype: String::new(),
            rows,
            cols,
            nnz,
            bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
            build_seconds: build,
            write_seconds: write,
        })
    };
    if format == MatrixFormat::Dense {
        let a = conv.dense_with(opts)?;
        let build = t.elapsed().as_secs_f64();
        if let Some(p) = progress {
            p.set_message(format!("writing {}", out.display()));
        }
        let t = Instant::now();
        let mut f = AtomicFile::create(out)?;
        f.write(|w| write_npy(w, a.shape(), a.iter().copied()))?;
        f.commit()?;
        let nnz = a.iter().filter(|v| !v.is_zero()).count();
        return report(a.nrows(), a.ncols(), nnz, "dense", build, t.elapsed().as_secs_f64());
    }
    let m: CsMatI<T, u32, usize> =
        if format == MatrixFormat::Csc { conv.csc_with(opts)? } else { conv.csr_with(opts)? };
    let build = t.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.set_message(format!("writing {} ({} non-zeros)", out.display(), m.nnz()));
    }
    let t = Instant::now();
    let indptr = m.indptr();
    let parts = SparseParts {
        format: if m.is_csr() { SparseFormat::Csr } else { SparseFormat::Csc },
        shape: (m.rows(), m.cols()),
        indptr: indptr.raw_storage(),
        indices: m.indices(),
        data: m.data(),
    };
    let mut f = AtomicFile::create(out)?;
    if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("mtx")) {
        f.write(|w| write_mtx(w, &parts, integer))?;
    } else {
        let bias: Option<Vec<f64>> = (opts.affine == Affine::None)
            .then(|| conv.expanded_bias())
            .flatten()
            .map(|b| b.iter().map(|v| v.to_f64()).collect());
        let bias = bias.map(|b| match &opts.rows {
            Some(r) => b[r.clone()].to_vec(),
            None => b,
        });
        let qtext = q.map(|q| q.to_string());
        // stored-integer biases are at the product's fraction length (FixedConv::stored_conv)
        let bias_qtext = q.and_then(|q| q.product(q).ok()).map(|p| p.to_string());
        let mut extras = Vec::new();
        if let Some(b) = &bias {
            extras.push(("bias", Extra::F64(b)));
        }
        if let (Some(t), true) = (&qtext, integer) {
            extras.push(("qformat", Extra::Text(t)));
        }
        if let (Some(t), true, true) = (&bias_qtext, integer, bias.is_some()) {
            extras.push(("bias_qformat", Extra::Text(t)));
        }
        f.write(|w| write_sparse_npz(w, &parts, &extras).map(drop))?;
    }
    f.commit()?;
    report(m.rows(), m.cols(), m.nnz(), parts.format.as_str(), build, t.elapsed().as_secs_f64())
}
