//! A PyTorch `Sequential(...)` chain read into the graph record, and its norms ([`sequential_norms`]):
//! the chain is the special case of a graph whose nodes each read the one before.

use std::cell::RefCell;

use convmat_matrix::ConvLayer;
use convmat_shape::{propagate, ConvSpec, Layer, LayerOptions, PoolKind};
use convmat_spectrum::{Monitor, SpectrumError};
use serde_json::{Map, Value as Json};
use thiserror::Error;

use crate::block::{BlockMap, Csr};
use crate::norms::{NetworkNorms, ASSUMED};
use crate::role::{numel, Junction, Nonlinearity, Role};
use crate::{BlockSource, Graph, NetError, Node, Port};

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

/// The short op name of a layer (`Conv2d`, `ConvTranspose1d`, `Linear`, `MaxPool2d`, ...).
fn op_name(layer: &Layer) -> String {
    let text = layer.to_string();
    text.split('(').next().unwrap_or_default().to_string()
}

/// An elementwise layer's role by PyTorch's semantics with its default arguments (the expression's
/// arguments are not kept), and whether its Lipschitz constant depends on those arguments; `None` for
/// the identities (Identity, Dropout in eval mode).
fn elementwise(name: &str) -> Option<(Nonlinearity, bool)> {
    Some(match name {
        "ReLU" => (Nonlinearity::Relu, false),
        "ReLU6" => (Nonlinearity::Clip { min: Some(0.0), max: Some(6.0) }, false),
        // 1-Lipschitz whatever min_val and max_val
        "Hardtanh" => (Nonlinearity::Clip { min: Some(-1.0), max: Some(1.0) }, false),
        "LeakyReLU" => (Nonlinearity::LeakyRelu { alpha: 0.01 }, true),
        "ELU" => (Nonlinearity::Elu { alpha: 1.0 }, true),
        // torch's SELU constants
        "SELU" => (Nonlinearity::Selu { alpha: 1.673_263_242_354_377_3, gamma: 1.050_700_987_355_480_5 }, false),
        // slope at most 1 whatever alpha
        "CELU" => (Nonlinearity::Celu { alpha: 1.0 }, false),
        // the tanh approximation's constant bounds both
        "GELU" => (Nonlinearity::Gelu { tanh: false }, false),
        "Mish" => (Nonlinearity::Mish, false),
        "Sigmoid" => (Nonlinearity::Sigmoid, false),
        "Tanh" => (Nonlinearity::Tanh, false),
        "Hardswish" => (Nonlinearity::HardSwish, false),
        "Hardsigmoid" => (Nonlinearity::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }, false),
        // slope at most 1 whatever beta
        "Softplus" => (Nonlinearity::Softplus, false),
        "Softsign" => (Nonlinearity::Softsign, false),
        // 1-Lipschitz along any axis
        "Softmax" => (Nonlinearity::Softmax { axis: 1, coerce: true }, false),
        // over all axes from 1: 1 + √n bounds it along any axis
        "LogSoftmax" => (Nonlinearity::LogSoftmax { axis: 1, coerce: true }, false),
        _ => return None,
    })
}

/// The averaging matrix of an average pool on `input` `(C, *spatial)`: per dimension, output `o`
/// averages `span(d, o) = (start, end, size)` (the inputs `start..end`, divided by `size` counted with
/// the pads, as PyTorch's `count_include_pad=True`).
fn average(input: &[usize], output: &[usize], span: impl Fn(usize, usize) -> (usize, usize, usize)) -> Csr {
    let (c, sp) = (input[0], &input[1..]);
    let (plane_in, plane_out) = (numel(sp), numel(output));
    let (mut indptr, mut indices, mut data) = (vec![0usize], Vec::new(), Vec::new());
    for ch in 0..c {
        for o in 0..plane_out {
            // the output's index per dimension, row-major
            let mut rest = o;
            let mut idx = vec![0; output.len()];
            for d in (0..output.len()).rev() {
                idx[d] = rest % output[d];
                rest /= output[d];
            }
            let spans: Vec<(usize, usize, usize)> = idx.iter().enumerate().map(|(d, &i)| span(d, i)).collect();
            let divisor: usize = spans.iter().map(|s| s.2).product();
            let mut cols = vec![ch * plane_in];
            for (d, &(a, b, _)) in spans.iter().enumerate() {
                let stride = numel(&sp[d + 1..]);
                cols = cols.iter().flat_map(|&base| (a..b).map(move |p| base + p * stride)).collect();
            }
            for col in cols {
                indices.push(col as u32);
                data.push(1.0 / divisor.max(1) as f64);
            }
            indptr.push(indices.len());
        }
    }
    Csr::new((c * plane_out, c * plane_in), indptr, indices, data)
}

/// The chain's block source: each block's map built from the `state_dict` when the run reaches it.
struct ChainBlocks<'w, W> {
    layers: Vec<(usize, Layer, Vec<usize>)>,
    weight: RefCell<&'w mut W>,
    /// The first error, with its layer (the graph's error type cannot carry the chain's).
    failure: RefCell<Option<NetworkError>>,
}

impl<W: FnMut(&str) -> Result<(Vec<usize>, Vec<f64>), String>> ChainBlocks<'_, W> {
    fn build(&self, node: &Node) -> Result<BlockMap, NetworkError> {
        let index: usize = node.name.parse().expect("chain blocks are named by their index");
        let (_, layer, input) = self.layers.iter().find(|(i, ..)| *i == index).expect("a block of the chain");
        let text = layer.to_string();
        let fail = |error| NetworkError::Layer { index, layer: text.clone(), error };
        let weight = |key: String| {
            {
                let mut w = self.weight.borrow_mut();
                (*w)(&key)
            }
            .map_err(|why| NetworkError::Weight { index, layer: text.clone(), key, why })
        };
        Ok(match layer {
            Layer::Conv(spec) => {
                let (shape, values) = weight(format!("{index}.weight"))?;
                let options = LayerOptions::spec_for(spec, &shape)
                    .map(|s| LayerOptions::from_spec(&s))
                    .map_err(|e| fail(convmat_matrix::MatrixError::from(e)))?;
                let layer = ConvLayer::new(&shape, values, None, input, &options).map_err(fail)?;
                BlockMap::Conv { layer, scale: None, shift: None }
            }
            Layer::Linear { in_features, out_features, .. } => {
                let (shape, values) = weight(format!("{index}.weight"))?;
                if shape != [*out_features, *in_features] {
                    // the same message as a 1x1 convolution of that weight would give
                    let spec = ConvSpec::new(1, *in_features, *out_features, [1]);
                    let e = LayerOptions::spec_for(&spec, &[shape.clone(), vec![1]].concat())
                        .err()
                        .map(convmat_matrix::MatrixError::from)
                        .unwrap_or_else(|| convmat_matrix::MatrixError::Dimension {
                            what: "Linear weight",
                            expected: format!("({out_features}, {in_features})"),
                            got: shape.clone(),
                        });
                    return Err(fail(e));
                }
                let positions = numel(&input[..input.len() - 1]);
                let rows = *out_features;
                BlockMap::Dense {
                    weight: values,
                    rows,
                    cols: *in_features,
                    reps: positions,
                    bias: vec![0.0; rows * positions],
                }
            }
            Layer::Pool(p) => {
                let out = &node.output_shapes[0][1..];
                let sp = &input[1..];
                let matrix = average(input, out, |d, o| {
                    let start = (o * p.stride[d]) as isize - p.padding[d] as isize;
                    let end = (start + p.kernel_size[d] as isize).min((sp[d] + p.padding[d]) as isize);
                    let size = (end - start) as usize;
                    (start.max(0) as usize, end.min(sp[d] as isize) as usize, size)
                });
                BlockMap::Sparse { bias: vec![0.0; matrix.rows()], matrix }
            }
            Layer::AdaptivePool { .. } => {
                let out = &node.output_shapes[0][1..];
                let sp = &input[1..];
                let matrix = average(input, out, |d, o| {
                    let (a, b) = (o * sp[d] / out[d], ((o + 1) * sp[d]).div_ceil(out[d]));
                    (a, b, b - a)
                });
                BlockMap::Sparse { bias: vec![0.0; matrix.rows()], matrix }
            }
            _ => unreachable!("only affine layers and average pools are blocks"),
        })
    }
}

impl<W: FnMut(&str) -> Result<(Vec<usize>, Vec<f64>), String>> BlockSource for ChainBlocks<'_, W> {
    fn block(&self, _: usize, node: &Node) -> Result<BlockMap, Box<dyn std::error::Error + Send + Sync>> {
        self.build(node).map_err(|e| {
            let text = e.to_string();
            *self.failure.borrow_mut() = Some(e);
            text.into()
        })
    }
}

/// Each block of a `Sequential` chain with its certified spectral norm, the products and the chain's
/// Lipschitz bound ([`NetworkNorms`], the table [`Graph::norms`] gives any graph). `layers` as
/// [`convmat_shape::parse_layer`] reads them, `input_shape` one sample `(C, *spatial)`, `weight(key)`
/// the tensor of a PyTorch `state_dict` name, as `(shape, values)`: convolution and `Linear` layer `i`
/// read `i.weight` (the bias plays no part in a norm), `PReLU` its slopes. The chain becomes a graph:
/// convolutions, `Linear` (its `(out, in)` matrix once per position before its last dimension) and
/// average pools (PyTorch's `count_include_pad=True`) are blocks; `Flatten`, `Identity` and dropout
/// reshapes; max pools and elementwise layers nonlinearities with PyTorch's default arguments (the
/// expression's are not kept, so LeakyReLU's and ELU's constants are unknown); SiLU is `x · Sigmoid(x)`.
/// `on_layer(i, n, name)` is called before block `i` of `n`; `monitor` watches each norm.
///
/// # Errors
/// [`NetworkError::Chain`] for shapes that do not fit, [`NetworkError::Weight`] for a weight not found,
/// [`NetworkError::Layer`] for one that does not fit its layer, [`NetworkError::Unsupported`] for
/// `BatchNorm` (fold it into the convolution before it first) and an adaptive max pool whose output
/// sizes do not divide its input's, [`NetworkError::Spectrum`] for a failed or cancelled norm.
pub fn sequential_norms(
    layers: &[Layer],
    input_shape: &[usize],
    mut weight: impl FnMut(&str) -> Result<(Vec<usize>, Vec<f64>), String>,
    tol: f64,
    monitor: &Monitor<'_>,
    mut on_layer: impl FnMut(usize, usize, &str),
) -> Result<NetworkNorms, NetworkError> {
    let shapes = propagate(input_shape, layers)?;
    let mut nodes: Vec<Node> = Vec::new();
    let mut blocks = Vec::new();
    let mut acts: Vec<(usize, String)> = Vec::new();
    let mut prev = "input".to_string();
    for (index, layer) in layers.iter().enumerate() {
        let input = if index == 0 { input_shape.to_vec() } else { shapes[index - 1].output.clone() };
        let output = shapes[index].output.clone();
        let (name, op) = (index.to_string(), op_name(layer));
        let unsupported = |why: &str| NetworkError::Unsupported { index, layer: layer.to_string(), why: why.into() };
        let mut params = Map::new();
        let role = match layer {
            Layer::Conv(_)
            | Layer::Linear { .. }
            | Layer::Pool(convmat_shape::PoolSpec { kind: PoolKind::Avg, .. }) => {
                blocks.push((index, layer.clone(), input.clone()));
                Role::Block
            }
            Layer::AdaptivePool { kind: PoolKind::Avg, .. } => {
                blocks.push((index, layer.clone(), input.clone()));
                Role::Block
            }
            Layer::BatchNorm { .. } => {
                return Err(unsupported(
                    "BatchNorm is not read here: fold it into the convolution before it \
                     (torch.nn.utils.fusion.fuse_conv_bn_eval), or export the model to ONNX, whose view folds it",
                ));
            }
            Layer::Pool(p) => Role::Nonlinearity(Nonlinearity::MaxPool {
                kernel: p.kernel_size.clone(),
                strides: p.stride.clone(),
                dilations: p.dilation.clone(),
                pads_begin: p.padding.clone(),
                output: output[1..].to_vec(),
            }),
            Layer::AdaptivePool { .. } => {
                // fixed windows exactly when each output size divides its input size
                let k: Option<Vec<usize>> =
                    input[1..].iter().zip(&output[1..]).map(|(&i, &o)| (o > 0 && i % o == 0).then(|| i / o)).collect();
                let Some(k) = k else {
                    return Err(unsupported(
                        "an adaptive max pool whose output sizes do not divide the input's has windows of \
                         different sizes, which no MaxPool of the graph record is: pick output sizes that divide it",
                    ));
                };
                Role::Nonlinearity(Nonlinearity::MaxPool {
                    kernel: k.clone(),
                    strides: k.clone(),
                    dilations: vec![1; k.len()],
                    pads_begin: vec![0; k.len()],
                    output: output[1..].to_vec(),
                })
            }
            Layer::Flatten { .. } => Role::Junction(Junction::Reshape),
            Layer::Elementwise { name: e } if e == "SiLU" => {
                // x · σ(x): two nodes, which the bound reads as one map
                let gate = format!("{index}.sigmoid");
                nodes.push(node(
                    &gate,
                    "Sigmoid",
                    Role::Nonlinearity(Nonlinearity::Sigmoid),
                    &prev,
                    &output,
                    Map::new(),
                ));
                acts.push((index, op.clone()));
                let mut mul = node(&name, &op, Role::Nonlinearity(Nonlinearity::Mul), &prev, &output, params);
                mul.inputs.push(gate);
                nodes.push(mul);
                prev = name;
                continue;
            }
            Layer::Elementwise { name: e } if e == "PReLU" => {
                let key = format!("{index}.weight");
                let (shape, slope) = weight(&key).map_err(|why| NetworkError::Weight {
                    index,
                    layer: layer.to_string(),
                    key: key.clone(),
                    why,
                })?;
                let n = numel(&shape);
                if n != 1 && n != input[0] {
                    return Err(unsupported(&format!(
                        "'{key}' holds {n} slopes; PReLU takes 1 or one per channel ({})",
                        input[0]
                    )));
                }
                // one per channel: broadcast on axis 1 of (N, C, ...)
                let mut shape = vec![n];
                shape.extend(std::iter::repeat_n(1, input.len() - 1));
                Role::Nonlinearity(Nonlinearity::PRelu { slope, shape })
            }
            Layer::Elementwise { name: e } => match elementwise(e) {
                Some((f, assumed)) => {
                    if assumed {
                        params.insert(ASSUMED.into(), Json::Bool(true));
                    }
                    Role::Nonlinearity(f)
                }
                None => Role::Junction(Junction::Reshape),
            },
            _ => return Err(unsupported("a layer the network view does not know")),
        };
        if !matches!(role, Role::Block | Role::Junction(_)) || matches!(layer, Layer::Elementwise { .. }) {
            acts.push((index, op.clone()));
        }
        nodes.push(node(&name, &op, role, &prev, &output, params));
        prev = name;
    }
    let graph =
        Graph { inputs: vec![Port { name: "input".into(), shape: input_shape.to_vec() }], nodes, outputs: vec![prev] };
    let source = ChainBlocks { layers: blocks, weight: RefCell::new(&mut weight), failure: RefCell::new(None) };
    let result = graph.norms(&source, tol, monitor, |i, n, name| on_layer(i, n, name));
    let mut norms = match result {
        Ok(n) => n,
        Err(e) => {
            if let Some(f) = source.failure.borrow_mut().take() {
                return Err(f);
            }
            return Err(match e {
                NetError::Norm { node, source, .. } => {
                    let index: usize = node.parse().unwrap_or_default();
                    NetworkError::Spectrum { index, layer: layers[index].to_string(), error: *source }
                }
                other => NetworkError::Unsupported { index: 0, layer: "the chain".into(), why: other.to_string() },
            });
        }
    };
    // the layers as written, and everything after each block up to the next one but Flatten
    for row in &mut norms.layers {
        let index: usize = row.name.parse().unwrap_or_default();
        row.nodes = vec![layers[index].to_string()];
        let next = norms_next_block(&graph, index);
        row.activations = acts.iter().filter(|(i, _)| *i > index && *i < next).map(|(_, op)| op.clone()).collect();
    }
    Ok(norms)
}

/// The index of the first block after layer `index` (the chain's length when none).
fn norms_next_block(graph: &Graph, index: usize) -> usize {
    graph.blocks().filter_map(|(_, n)| n.name.parse::<usize>().ok()).find(|&i| i > index).unwrap_or(usize::MAX)
}

fn node(name: &str, op: &str, role: Role, input: &str, output: &[usize], params: Map<String, Json>) -> Node {
    Node {
        name: name.into(),
        op: op.into(),
        role,
        inputs: vec![input.into()],
        outputs: vec![name.into()],
        output_shapes: vec![output.to_vec()],
        folded: Vec::new(),
        params,
    }
}
