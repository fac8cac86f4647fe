//! The whole network at a glance: each affine layer's spectral norm with what certifies it, and the
//! product of the upper bounds (AutoLip, Virmaux and Scaman 2018), so a user sees which layer dominates
//! the network's Lipschitz bound. One table for every front: [`NetworkNorms::new`] assembles it from the
//! layers' norms (the ONNX reader's blocks, or a `Sequential(...)` chain through [`sequential_norms`]),
//! and [`conv_norm`] is the norm every convolution layer gets.

use std::time::Instant;

use convmat_matrix::{Conv, ConvLayer, MatrixOptions};
use convmat_shape::{propagate, ConvSpec, Layer, LayerOptions};
use serde::Serialize;
use sprs::CsMatI;
use thiserror::Error;

use crate::{
    certified_norm_with, csr_norm, Certificate, Monitor, NormInterval, SpectrumError, Start, SPARSE_DENSE_LIMIT,
};

/// One affine layer's spectral norm: `lower <= ||A||_2 <= upper` for the layer's matrix `A` (the bias
/// plays no part). The JSON keys of `convmat svd --json`'s network view.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BlockNorm {
    /// The layer's name: the main ONNX node, or the `state_dict` prefix in a `Sequential` (`0`, `2`).
    pub name: String,
    /// Its op (`Conv`, `Gemm` in ONNX; `Conv2d`, `Linear` in a `Sequential`).
    pub op: String,
    /// Every node folded into the block (ONNX), or the layer as written (`Sequential`).
    pub nodes: Vec<String>,
    /// The shape it reads (one sample).
    pub input_shape: Vec<usize>,
    /// The shape it produces.
    pub output_shape: Vec<usize>,
    /// Matrix rows.
    pub rows: usize,
    /// Matrix columns.
    pub cols: usize,
    /// A lower bound of the layer's spectral norm (a Rayleigh quotient, or the exact value).
    pub lower: f64,
    /// An upper bound of it.
    pub upper: f64,
    /// What the interval rests on: `exact` (dense SVD, or a diagonal block), `kato-temple` /
    /// `interlacing` (a convolution's certified norm, computed matrix-free), `norm-inequality`
    /// (`min(||A||_F, sqrt(||A||_1 ||A||_∞))` above a power-iteration Rayleigh quotient).
    #[serde(serialize_with = "certificate_name")]
    pub certificate: Certificate,
    /// Lanczos or power-iteration steps (0 for the direct methods).
    pub iterations: usize,
    /// The nonlinearities that follow the layer, by op.
    pub activations: Vec<String>,
    /// Seconds spent on this layer.
    pub seconds: f64,
}

impl BlockNorm {
    /// A row of the table: `name` and `op` of a layer whose `rows x cols` matrix maps `input_shape` to
    /// `output_shape` and has the norm interval `norm` (an upper bound of `None` is reported as
    /// infinite), found in `seconds`. No nonlinearities follow yet (see [`activations`](Self::activations)).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        op: String,
        nodes: Vec<String>,
        input_shape: Vec<usize>,
        output_shape: Vec<usize>,
        (rows, cols): (usize, usize),
        norm: &NormInterval,
        seconds: f64,
    ) -> Self {
        Self {
            name,
            op,
            nodes,
            input_shape,
            output_shape,
            rows,
            cols,
            lower: norm.lower,
            upper: norm.upper.unwrap_or(f64::INFINITY),
            certificate: norm.certificate,
            iterations: norm.iterations,
            activations: Vec::new(),
            seconds,
        }
    }
}

fn certificate_name<S: serde::Serializer>(c: &Certificate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str())
}

/// Every affine layer's norm and their products.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct NetworkNorms {
    /// The layers in order.
    pub layers: Vec<BlockNorm>,
    /// `∏ upper`: an upper bound of the network's Lipschitz constant in the 2-norm when every
    /// nonlinearity between the layers is 1-Lipschitz (AutoLip, Virmaux and Scaman 2018), which
    /// [`not_one_lipschitz`](Self::not_one_lipschitz) lists the exceptions to.
    pub product_upper: f64,
    /// `∏ lower`: the same product at the lower ends. NOT a lower bound of the network's Lipschitz
    /// constant (the layers' top singular directions need not line up, and the nonlinearities can cut
    /// them); it shows how much of the AutoLip bound's size is owed to the per-layer bounds' widths.
    pub product_lower: f64,
    /// The index in `layers` of the largest upper bound (the layer that dominates the product).
    pub largest: Option<usize>,
    /// The nonlinearities not known to be 1-Lipschitz, as `name (op)`: where one is listed,
    /// `product_upper` bounds the network only after multiplying by its constant.
    pub not_one_lipschitz: Vec<String>,
}

impl NetworkNorms {
    /// The table of `layers`: the products of their bounds and the largest.
    pub fn new(layers: Vec<BlockNorm>, not_one_lipschitz: Vec<String>) -> Self {
        let largest = (0..layers.len()).max_by(|&i, &j| layers[i].upper.total_cmp(&layers[j].upper));
        Self {
            product_upper: layers.iter().map(|b| b.upper).product(),
            product_lower: layers.iter().map(|b| b.lower).product(),
            largest,
            layers,
            not_one_lipschitz,
        }
    }
}

/// The spectral norm of one convolution layer with a two-sided bound, as the network view gives it: a
/// matrix of at most [`SPARSE_DENSE_LIMIT`] entries is built and gets [`csr_norm`] (exact); a larger
/// one gets [`certified_norm_with`] on its matrix-free operator, and where no embedding certifies an upper
/// bound (reflect / replicate padding), the norm inequality of its built matrix above the Rayleigh quotient.
///
/// # Errors
/// As [`certified_norm_with`] and [`csr_norm`] (also [`SpectrumError::Cancelled`]).
pub fn conv_norm(conv: &Conv<f64>, tol: f64, monitor: &Monitor<'_>) -> Result<NormInterval, SpectrumError> {
    let built = || -> Result<NormInterval, SpectrumError> {
        let m: CsMatI<f64, u32, usize> = conv.csr_with(&MatrixOptions::default())?;
        csr_norm(&m, tol, monitor)
    };
    if conv.rows().saturating_mul(conv.cols()) <= SPARSE_DENSE_LIMIT {
        return built();
    }
    let n = certified_norm_with(conv, tol, Start::Auto, monitor)?;
    match n.upper {
        Some(_) => Ok(n),
        None => {
            let m = built()?;
            Ok(NormInterval { lower: n.lower.max(m.lower), ..m })
        }
    }
}

/// What stops a `Sequential(...)` network view. Messages count layers from 1, as [`propagate`] does;
/// `index` is 0-based, the `state_dict` prefix.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The chain's shapes do not fit (the layer and why, from [`propagate`]).
    #[error(transparent)]
    Chain(#[from] convmat_shape::ChainError),
    /// A layer's weight could not be had: `key` is the `state_dict` name looked for.
    #[error("layer {} ({layer}): no weight '{key}': {why}", .index + 1)]
    Weight {
        /// 0-based index in the chain (the `state_dict` prefix).
        index: usize,
        /// The layer as written.
        layer: String,
        /// The tensor name looked up (`0.weight`).
        key: String,
        /// Why not (the reader's message).
        why: String,
    },
    /// A layer the view does not compute.
    #[error("layer {} ({layer}): {why}", .index + 1)]
    Unsupported {
        /// 0-based index in the chain.
        index: usize,
        /// The layer as written.
        layer: String,
        /// What to do instead.
        why: String,
    },
    /// A weight that does not fit its layer.
    #[error("layer {} ({layer}): {error}", .index + 1)]
    Layer {
        /// 0-based index in the chain.
        index: usize,
        /// The layer as written.
        layer: String,
        /// The layer's error (in this message, so not chained as a source).
        error: convmat_matrix::MatrixError,
    },
    /// A norm that failed (or was cancelled).
    #[error("layer {} ({layer}): {error}", .index + 1)]
    Spectrum {
        /// 0-based index in the chain.
        index: usize,
        /// The layer as written.
        layer: String,
        /// The spectrum's error (in this message, so not chained as a source).
        error: SpectrumError,
    },
}

impl NetworkError {
    /// Whether the caller's [`Monitor`] stopped the run.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Spectrum { error: SpectrumError::Cancelled, .. })
    }
}

/// Whether a parameter-free layer of a chain is 1-Lipschitz in the 2-norm; `None` when it is affine or
/// not known. ReLU, ReLU6, Hardtanh, Sigmoid, Hardsigmoid, Tanh, Softsign, Softplus, Softmax and the
/// identities (Identity, Dropout in eval mode, Flatten) are; a max or average pool whose windows do not
/// overlap (stride at least the kernel, no dilation) is, and so is an adaptive pool whose output sizes
/// divide the input's. Anything else (GELU, SiLU, ELU, LeakyReLU whose slope the expression may set, ...)
/// is not known to be.
fn one_lipschitz(layer: &Layer, input: &[usize]) -> bool {
    const ONE_LIPSCHITZ: &[&str] = &[
        "ReLU",
        "ReLU6",
        "Hardtanh",
        "Sigmoid",
        "Hardsigmoid",
        "Tanh",
        "Softsign",
        "Softplus",
        "Softmax",
        "Identity",
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
    ];
    match layer {
        Layer::Elementwise { name } => ONE_LIPSCHITZ.contains(&name.as_str()),
        Layer::Flatten { .. } => true,
        Layer::Pool(p) => {
            p.dilation.iter().all(|&d| d == 1) && p.kernel_size.iter().zip(&p.stride).all(|(k, s)| s >= k)
        }
        Layer::AdaptivePool { output, .. } => {
            output.iter().zip(input.iter().skip(1)).all(|(o, &n)| o.is_none_or(|o| o > 0 && n % o == 0))
        }
        _ => false,
    }
}

/// The short op name of a layer (`Conv2d`, `ConvTranspose1d`, `Linear`, `MaxPool2d`, ...).
fn op_name(layer: &Layer) -> String {
    let text = layer.to_string();
    text.split('(').next().unwrap_or_default().to_string()
}

/// Each affine layer of a `Sequential` chain with its certified spectral norm, and the products
/// ([`NetworkNorms`]). `layers` as [`convmat_shape::parse_layer`] reads them, `input_shape` one sample
/// `(C, *spatial)`, `weight(key)` the tensor of a PyTorch `state_dict` name, as `(shape, values)`:
/// convolution and `Linear` layer `i` read `i.weight` (the bias plays no part in a norm). Convolutions get
/// [`conv_norm`]; a `Linear(in, out)` is the 1x1 convolution of its `(out, in)` weight over the positions
/// before its last dimension. Nonlinearities and pools are listed after the layer they follow, with
/// those not known to be 1-Lipschitz in [`NetworkNorms::not_one_lipschitz`]; `Flatten` is a
/// reshape. `on_layer(i, n, name)` is called before affine layer `i` of `n`; `monitor` watches each norm.
///
/// # Errors
/// [`NetworkError::Chain`] for shapes that do not fit, [`NetworkError::Weight`] for a weight not found,
/// [`NetworkError::Layer`] for one that does not fit its layer, [`NetworkError::Unsupported`] for
/// `BatchNorm` (fold it into the convolution before it first), [`NetworkError::Spectrum`] for a failed
/// or cancelled norm.
pub fn sequential_norms(
    layers: &[Layer],
    input_shape: &[usize],
    mut weight: impl FnMut(&str) -> Result<(Vec<usize>, Vec<f64>), String>,
    tol: f64,
    monitor: &Monitor<'_>,
    mut on_layer: impl FnMut(usize, usize, &str),
) -> Result<NetworkNorms, NetworkError> {
    let shapes = propagate(input_shape, layers)?;
    let affine = layers.iter().filter(|l| matches!(l, Layer::Conv(_) | Layer::Linear { .. })).count();
    let (mut table, mut not_one_lipschitz) = (Vec::<BlockNorm>::with_capacity(affine), Vec::new());
    for (index, layer) in layers.iter().enumerate() {
        let input = if index == 0 { input_shape } else { &shapes[index - 1].output };
        let output = &shapes[index].output;
        let text = layer.to_string();
        let op = op_name(layer);
        let conv = match layer {
            Layer::Conv(spec) => Some((spec.clone(), input.to_vec())),
            Layer::Linear { in_features, out_features, .. } => {
                // positions before the last dimension, each mapped by the same (out, in) matrix
                let positions = input.iter().rev().skip(1).product::<usize>();
                Some((ConvSpec::new(1, *in_features, *out_features, [1]), vec![*in_features, positions]))
            }
            Layer::BatchNorm { .. } => {
                return Err(NetworkError::Unsupported {
                    index,
                    layer: text,
                    why: "BatchNorm is not read here: fold it into the convolution before it \
                          (torch.nn.utils.fusion.fuse_conv_bn_eval), or export the model to ONNX, whose view folds it"
                        .into(),
                });
            }
            _ => None,
        };
        let Some((spec, conv_input)) = conv else {
            if !one_lipschitz(layer, input) {
                not_one_lipschitz.push(format!("{index} ({op})"));
            }
            if let (Some(last), false) = (table.last_mut(), matches!(layer, Layer::Flatten { .. })) {
                last.activations.push(op.clone());
            }
            continue;
        };
        on_layer(table.len(), affine, &index.to_string());
        let t = Instant::now();
        let key = format!("{index}.weight");
        let (shape, values) =
            weight(&key).map_err(|why| NetworkError::Weight { index, layer: text.clone(), key: key.clone(), why })?;
        let fail = |error| NetworkError::Layer { index, layer: text.clone(), error };
        let shape = match layer {
            // Linear's (out, in) as the 1x1 convolution's (out, in, 1)
            Layer::Linear { .. } => [shape, vec![1]].concat(),
            _ => shape,
        };
        let options = LayerOptions::spec_for(&spec, &shape)
            .map(|s| LayerOptions::from_spec(&s))
            .map_err(|e| fail(convmat_matrix::MatrixError::from(e)))?;
        let conv = ConvLayer::new(&shape, values, None, &conv_input, &options).and_then(|l| l.conv::<f64>());
        let conv = conv.map_err(fail)?;
        let norm = conv_norm(&conv, tol, monitor).map_err(|error| NetworkError::Spectrum {
            index,
            layer: text.clone(),
            error,
        })?;
        table.push(BlockNorm::new(
            index.to_string(),
            op,
            vec![text],
            input.to_vec(),
            output.clone(),
            (conv.rows(), conv.cols()),
            &norm,
            t.elapsed().as_secs_f64(),
        ));
    }
    Ok(NetworkNorms::new(table, not_one_lipschitz))
}
