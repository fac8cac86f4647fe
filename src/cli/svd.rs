//! `convmat svd`: singular values of a layer (all, the top k, or the spectral norm).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use convmat_io::{read_array, write_npy, AtomicFile};
use convmat_matrix::Conv;
use convmat_net::{sequential_norms, NetworkNorms};
use convmat_onnx::{BlockOptions, OnnxError};
use convmat_shape::Layer;
use convmat_spectrum::{
    interlacing_upper_bounds_with, singular_values_with, Certificate, Method, Request, SpectrumError, StartVector,
};
use serde::Serialize;

use super::layer::LayerArgs;
use super::watch::Watch;

/// Singular values of a layer's matrix: exact by FFT for circular padding, Lanczos or dense otherwise.
#[derive(Debug, Args)]
#[command(after_help = "\
Methods: fft is exact for circular padding (the layer is block-diagonal in the Fourier basis;
strides that divide the input are folded into the channels). lanczos finds the top k of any layer
without forming the matrix, to a relative residual --tol: the norm by single-vector Lanczos started
at the kernel's top Fourier mode (stride 1), k > 1 by block Lanczos, which returns repeated values
as often as they occur; for a zero-padded layer (k >= 8) on a Chebyshev filter of AᵀA cut below the
wanted values, which spreads a crowded top apart, with the values and their residuals from A itself.
dense computes all of a small layer. auto takes fft when it applies, dense when all (or most)
values of a small matrix are wanted, else lanczos, and says which. For zero padding the report
adds the norm of the circular layer on the padded grid, an upper bound.
S.npy holds float64 values in descending order; --all gives min(rows, cols) of them.

Certified norm: --norm reports an interval lower <= σ₁ <= upper and stops when
(upper - lower) / lower <= --tol. A zero-padded layer (any stride, dilation, groups, transposed) is a
sub-block of circular convolutions C_m on grids m, so σ_j <= σ_j(C_m) for every j (--bounds prints
these for every j, the minimum over 4 grids); once they separate the top cluster, the Ritz vectors'
residuals bound σ₁ from above (kato-temple). Reflect/replicate padding embed in no circulant: only
the residual statement holds (residual-only, no upper bound).

Whole network: --weights MODEL.onnx without --layer gives every affine layer's norm as an interval
(lower, upper, certificate) and the product of the upper bounds, an upper bound of the network's
Lipschitz constant when the nonlinearities between the layers are 1-Lipschitz (AutoLip). The product
of the lower bounds is NOT a lower bound of the network's constant. The same for a PyTorch chain:
--layer \"Sequential(...)\" with --weights holding its state_dict (safetensors or npz: layer i's
weight is the tensor i.weight, as torch names the children of nn.Sequential) and --input-shape.
Conv and Linear layers are affine; BatchNorm must be folded into the convolution first.
Graphs (residual Add, Concat, Split, channel shuffles) are read too, and the report adds the graph's
own bound (JSON graph_upper), node by node: branches summed at Add/Sub, concatenations by the root of
the sum of squares, each nonlinearity's constant multiplied in; an op with no global constant (a
product of two computed tensors, LayerNormalization) is named in graph_conditional_on. Each layer says
how its interval was found (method: diagonal, closed-form, dense-svd, per-group, certified,
power-iteration) and whether --tol was met (tol_met; tol_missed lists those that were not).

Long runs show progress on stderr on a terminal (not with --quiet or --json); Ctrl-C stops them between
steps: exit code 130, one line, no output file.

Examples:
  # the Lipschitz constant of a layer, certified to a relative width of 1e-6
  convmat svd --weight w.npy --input-shape 64,56,56 --padding 1 --norm --tol 1e-6 --json

  # every layer of an ONNX model: norm intervals and the AutoLip product
  convmat svd --weights model.onnx --tol 1e-6

  # every layer of a PyTorch Sequential, its state_dict saved by safetensors.torch.save_file
  convmat svd --weights weights.safetensors --input-shape 3,32,32 \\
      --layer \"Sequential(Conv2d(3, 16, 3, padding=1), ReLU(), Conv2d(16, 16, 3, stride=2))\"

  # interlacing upper bounds of every singular value
  convmat svd --weight w.npy --input-shape 16,32,32 --padding 1 --bounds -o bounds.npy

  # all 65,536 singular values of a circular layer, exactly
  convmat svd --weight w.npy --input-shape 64,32,32 --padding 1 --padding-mode circular \\
      --all -o S.npy

  # the top 300, as torch.svd_lowrank(A, q=300) would estimate them
  convmat svd --weights model.safetensors --layer conv2 --input-shape 16,32,32 --padding 1 \\
      --top 300 -o S.npy")]
pub struct SvdArgs {
    #[command(flatten)]
    layer: LayerArgs,
    /// All min(rows, cols) singular values.
    #[arg(long, group = "what")]
    all: bool,
    /// The largest K.
    #[arg(long, value_name = "K", group = "what")]
    top: Option<usize>,
    /// The largest only (the spectral norm, the layer's Lipschitz constant).
    #[arg(long, group = "what")]
    norm: bool,
    /// auto, fft, lanczos or dense.
    #[arg(long, default_value = "auto")]
    method: String,
    /// Lanczos: stop when every wanted value's residual ||Aᵀu - σv|| is below tol·σ₁; --norm: when
    /// the certified interval's relative width is (or, residual-only, the residual).
    #[arg(long, default_value_t = 1e-10)]
    tol: f64,
    /// Also the interlacing upper bound of every σ_j (alone: only those; -o then writes them).
    #[arg(long)]
    bounds: bool,
    /// Output .npy (float64, descending).
    #[arg(short, long, value_name = "S.npy")]
    output: Option<PathBuf>,
    /// Also draw the values against their index (log scale), with the circular upper bound, as PNG.
    #[arg(long, value_name = "S.png", value_parser = super::spy::parse_png)]
    plot: Option<PathBuf>,
    /// Print {layer, method, count, values, iterations, residual, start, circular_upper_bound, lower,
    /// upper, certificate, cluster, upper_bounds, seconds} as JSON.
    #[arg(long)]
    json: bool,
    /// No progress line on stderr (shown on a terminal otherwise, without --json).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Serialize)]
struct Report {
    layer: String,
    method: &'static str,
    count: usize,
    values: Vec<f64>,
    iterations: usize,
    residual: f64,
    start: Option<&'static str>,
    circular_upper_bound: Option<f64>,
    lower: Option<f64>,
    upper: Option<f64>,
    certificate: Option<&'static str>,
    cluster: usize,
    upper_bounds: Option<Vec<f64>>,
    seconds: f64,
}

pub fn run(args: SvdArgs) -> Result<()> {
    let chain = args.layer.chain()?;
    let whole_model = (args.layer.onnx_model().is_some() && args.layer.layer.is_empty()) || chain.is_some();
    let request = match (args.all, args.top, args.norm) {
        (true, None, false) => Some(Request::All),
        (false, Some(k), false) => Some(Request::Top(k)),
        (false, None, true) => Some(Request::Norm),
        (false, None, false) if args.bounds || whole_model => None,
        _ => bail!("say what to compute: --all, --top K, --norm or --bounds"),
    };
    let method: Method = args.method.parse().map_err(anyhow::Error::msg)?;
    convmat_spectrum::check_tolerance("--tol", args.tol)?;
    // Ctrl-C is ours from here on: pressed while the layer is read, it stops the run at its first step
    let watch = Watch::new(!args.quiet && !args.json)?;
    if whole_model {
        return network(&args, &watch, chain);
    }
    if let Some(o) = &args.output {
        if o.extension().and_then(|e| e.to_str()) != Some("npy") {
            bail!("invalid output '{}': svd writes .npy", o.display());
        }
    }
    let r = args.layer.resolve()?;
    // the spectrum is A's: the bias plays no part
    let conv = Conv::new(r.geometry().clone(), r.weight().to_vec(), None)?;
    let t = Instant::now();
    let bounds = if args.bounds {
        let all = conv.rows().min(conv.cols());
        watch.stage("interlacing bounds");
        let b = watch.run(|m| interlacing_upper_bounds_with(&conv, all, m))?;
        if b.is_none() && request.is_none() {
            bail!(
                "no interlacing bounds for {}: only zero padding (any stride, dilation, groups, transposed) and \
                 circular padding embed in a circulant; reflect and replicate padding do not",
                r.description()
            );
        }
        b
    } else {
        None
    };
    let report = match request {
        Some(request) => {
            watch.stage(match request {
                Request::Norm => "spectral norm",
                _ => "singular values",
            });
            let s = watch.run(|m| singular_values_with(&conv, request, method, args.tol, m))?;
            watch.finish();
            Report {
                layer: r.description(),
                method: s.method.as_str(),
                count: s.values.len(),
                values: s.values,
                iterations: s.iterations,
                residual: s.residual,
                start: s.start.map(StartVector::as_str),
                circular_upper_bound: s.circular_upper_bound,
                lower: s.lower,
                upper: s.upper,
                certificate: Some(s.certificate.as_str()),
                cluster: s.cluster,
                upper_bounds: bounds,
                seconds: t.elapsed().as_secs_f64(),
            }
        }
        None => {
            let b = bounds.expect("checked above");
            Report {
                layer: r.description(),
                method: "interlacing",
                count: 0,
                values: Vec::new(),
                iterations: 0,
                residual: 0.0,
                start: None,
                circular_upper_bound: None,
                lower: None,
                upper: b.first().copied(),
                certificate: None,
                cluster: 0,
                upper_bounds: Some(b),
                seconds: t.elapsed().as_secs_f64(),
            }
        }
    };
    if let (Some(p), Some(_)) = (&args.plot, request) {
        super::spy::write_spectrum(p, &report.values, report.circular_upper_bound, &report.layer)?;
    }
    if let Some(o) = &args.output {
        let data = if request.is_some() { &report.values } else { report.upper_bounds.as_ref().expect("bounds") };
        let mut f = AtomicFile::create(o)?;
        f.write(|w| write_npy(w, &[data.len()], data.iter().copied()))?;
        f.commit()?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let list = |v: &[f64]| {
        let shown: Vec<String> = v.iter().take(8).map(|v| format!("{v:.6e}")).collect();
        format!("{}{}", shown.join(" "), if v.len() > 8 { " ..." } else { "" })
    };
    if request.is_some() {
        println!(
            "{}: {} singular value(s) by {} in {:.3} s{}: {}",
            report.layer,
            report.count,
            report.method,
            report.seconds,
            if report.iterations > 0 {
                format!(" ({} iterations, residual {:.1e})", report.iterations, report.residual)
            } else {
                String::new()
            },
            list(&report.values),
        );
        let cert = report.certificate.unwrap_or_default();
        match (report.lower, report.upper) {
            (Some(lo), Some(up)) if cert == Certificate::KatoTemple.as_str() => println!(
                "σ₁ in [{lo:.9e}, {up:.9e}] (relative width {:.1e}; kato-temple: interlacing separates the top {})",
                (up - lo) / lo,
                report.cluster
            ),
            (Some(lo), Some(up)) if cert == Certificate::Exact.as_str() => {
                println!("σ₁ = {lo:.9e} ({cert}: lower = upper{})", if up > lo { " up to rounding" } else { "" })
            }
            (Some(lo), Some(up)) => println!(
                "σ₁ in [{lo:.9e}, {up:.9e}] (relative width {:.1e}; {cert}: no cluster separated, the upper bound is \
                 σ₁'s interlacing bound)",
                (up - lo) / lo
            ),
            (Some(lo), None) => println!(
                "σ₁ >= {lo:.9e} (residual-only: this padding embeds in no circulant; each value is within its \
                 residual of a singular value, nothing bounds σ₁ from above)"
            ),
            _ => {}
        }
        if let Some(b) = report.circular_upper_bound {
            println!("upper bound (circular convolution on the padded grid): {b:.6e}");
        }
    } else {
        println!("{}: interlacing upper bounds in {:.3} s", report.layer, report.seconds);
    }
    match &report.upper_bounds {
        Some(b) => println!("interlacing upper bounds of σ_1..σ_{}: {}", b.len(), list(b)),
        None if args.bounds => println!("no interlacing upper bounds: this padding embeds in no circulant"),
        None => {}
    }
    Ok(())
}

#[derive(Serialize)]
struct NetworkReport<'a> {
    model: String,
    #[serde(flatten)]
    norms: &'a NetworkNorms,
    seconds: f64,
}

/// `--weights MODEL.onnx` without `--layer`, or `--layer "Sequential(...)" --weights STATE_DICT`: every
/// affine layer's norm interval and the products.
fn network(args: &SvdArgs, watch: &Watch, chain: Option<Vec<Layer>>) -> Result<()> {
    let l = &args.layer;
    if args.all || args.top.is_some() || args.bounds || args.output.is_some() || args.plot.is_some() {
        bail!(
            "the network view (--weights MODEL.onnx without --layer, or --layer \"Sequential(...)\") reports every \
             affine layer's norm: drop --all, --top, --bounds, -o and --plot, or pick one layer"
        );
    }
    if args.method != "auto" {
        bail!(
            "invalid --method {} for the network view: each layer's method is chosen by its kind (drop --method)",
            args.method
        );
    }
    let t = Instant::now();
    let stage = |i: usize, n: usize, name: &str| watch.stage(&format!("layer {}/{n} {name}", i + 1));
    let (source, norms) = match chain {
        None => {
            let model_path = l.onnx_model().context("the network view needs --weights MODEL.onnx")?;
            l.check_onnx_only()?;
            let model = convmat_onnx::Model::load(model_path)?;
            let input = l.input_shape.as_ref().map(|d| d.0.as_slice());
            let norms = watch.run(|m| {
                model.block_norms(input, &BlockOptions::default(), args.tol, m, stage).map_err(|e| match e {
                    OnnxError::Graph(g) if g.is_cancelled() => anyhow::Error::from(SpectrumError::Cancelled),
                    e => e.into(),
                })
            })?;
            (model_path, norms)
        }
        Some(layers) => {
            let weights = l.chain_weights()?;
            let Some(input) = &l.input_shape else {
                bail!("--input-shape is required: the shape of one input sample, e.g. 3,32,32 (C,H,W)");
            };
            // each tensor by its state_dict name, read as --weight FILE:NAME reads it
            let read = |key: &str| {
                read_array(&PathBuf::from(format!("{}:{key}", weights.display())))
                    .map(|t| (t.shape, t.data))
                    .map_err(|e| e.to_string())
            };
            let norms = watch.run(|m| {
                sequential_norms(&layers, &input.0, read, args.tol, m, stage).map_err(|e| match e.is_cancelled() {
                    true => anyhow::Error::from(SpectrumError::Cancelled), // Ctrl-C: main's exit 130
                    false => e.into(),
                })
            })?;
            (weights, norms)
        }
    };
    watch.finish();
    let seconds = t.elapsed().as_secs_f64();
    let model_path = source;
    if args.json {
        let report = NetworkReport { model: model_path.display().to_string(), norms: &norms, seconds };
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!("{}: {} affine layers, norms in {seconds:.3} s", model_path.display(), norms.layers.len());
    let width = norms.layers.iter().map(|b| b.name.len()).chain([5]).max().unwrap_or(5);
    println!(
        "  {:<width$}  {:<18} {:>13}  {:>15}  {:>15}  {:<15}  then",
        "layer", "op", "matrix", "lower", "upper", "certificate"
    );
    for b in &norms.layers {
        println!(
            "  {:<width$}  {:<18} {:>13}  {:>15.9e}  {:>15.9e}  {:<15}  {}",
            b.name,
            b.op,
            format!("{}x{}", b.rows, b.cols),
            b.lower,
            b.upper,
            b.certificate.as_str(),
            if b.activations.is_empty() { "-".to_string() } else { b.activations.join(",") }
        );
    }
    println!(
        "product of the upper bounds {:.9e}: an upper bound of the network's Lipschitz constant (2-norm) when \
         every nonlinearity between the layers is 1-Lipschitz (AutoLip)",
        norms.product_upper
    );
    if !norms.not_one_lipschitz.is_empty() {
        println!(
            "  not known to be 1-Lipschitz: {}; multiply by their Lipschitz constants",
            norms.not_one_lipschitz.join(", ")
        );
    }
    println!(
        "product of the lower bounds {:.9e}: NOT a lower bound of the network's Lipschitz constant (the layers' top \
         directions need not line up); the bound's value had every layer sat at its lower end",
        norms.product_lower
    );
    if let Some(b) = norms.largest.map(|i| &norms.layers[i]) {
        println!("largest layer norm: {} ({}), at most {:.9e}", b.name, b.op, b.upper);
    }
    let methods: Vec<String> = norms.layers.iter().map(|b| format!("{} {}", b.name, b.method)).collect();
    println!("methods: {}", methods.join(", "));
    if !norms.tol_missed.is_empty() {
        println!(
            "--tol {:e} not met by {} of {} layers: {} (their intervals are certified, only wider)",
            args.tol,
            norms.tol_missed.len(),
            norms.layers.len(),
            norms.tol_missed.join(", ")
        );
    }
    println!(
        "graph bound {:.9e}: an upper bound of the whole graph's Lipschitz constant (2-norm), node by node: branches \
         summed, concatenations by the root of the sum of squares, each nonlinearity's constant multiplied in",
        norms.graph_upper
    );
    if !norms.graph_conditional_on.is_empty() {
        println!(
            "  conditional: it counts these as 1-Lipschitz in each operand, which they need not be: {}",
            norms.graph_conditional_on.join("; ")
        );
    }
    Ok(())
}
