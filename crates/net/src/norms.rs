//! The network's norms, one table for every reader: each block's spectral norm as a certified interval
//! with the method that found it ([`block_norm`]), the AutoLip product of the upper bounds, and the
//! graph's own Lipschitz bound ([`Graph::lipschitz_bound`]). [`Graph::norms`] computes it for any graph
//! (an ONNX model read by `convmat-onnx`, a graph built by hand); [`sequential_norms`] reads a
//! `Sequential(...)` chain into a graph and computes the same table.

use std::time::Instant;

use convmat_matrix::{Conv, MatrixError, MatrixOptions};
use convmat_shape::{ConvSpec, Geometry};
use convmat_spectrum::{
    certified_norm_with, csr_norm, dense_singular_values, Certificate, Monitor, NormInterval, SpectrumError, Start,
    SPARSE_DENSE_LIMIT,
};
use serde::Serialize;

use crate::block::{BlockMap, Csr};
use crate::role::Kind;
use crate::{BlockSource, Graph, NetError};

/// How a block's interval was found: the JSON `method` of `convmat svd`'s network view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum NormMethod {
    /// A diagonal map: the largest magnitude of its entries (exact).
    Diagonal,
    /// A matrix whose rows (or columns) have disjoint supports, as a global or non-overlapping average
    /// pool has: `AAᵀ` (or `AᵀA`) is diagonal, so the norm is the largest row (column) norm (exact).
    ClosedForm,
    /// The dense SVD of the built matrix (faer), with a rounding bound `16·max(m, n)·ε` relative on
    /// either side.
    DenseSvd,
    /// A grouped (depthwise) convolution: block diagonal, one convolution per group, so its norm is the
    /// largest of the groups' norms, each found by the other methods.
    PerGroup,
    /// The certified norm of the matrix-free operator (`convmat_spectrum::certified_norm_with`:
    /// interlacing with circulant embeddings, Kato-Temple).
    Certified,
    /// A built matrix too large for a dense SVD: power iteration below, the norm inequality above.
    PowerIteration,
}

impl NormMethod {
    /// `diagonal`, `closed-form`, `dense-svd`, `per-group`, `certified` or `power-iteration`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Diagonal => "diagonal",
            Self::ClosedForm => "closed-form",
            Self::DenseSvd => "dense-svd",
            Self::PerGroup => "per-group",
            Self::Certified => "certified",
            Self::PowerIteration => "power-iteration",
        }
    }
}

impl std::fmt::Display for NormMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A block's norm interval and how it was found.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BlockInterval {
    /// `lower <= ||A||₂ <= upper`.
    pub norm: NormInterval,
    /// The method.
    pub method: NormMethod,
}

/// When the certified norm misses `tol`, matrices up to this many entries get a dense SVD instead (about
/// ten seconds here for a 2048 x 2048 layer, against tens of seconds for a wide interval).
pub const DENSE_FALLBACK: usize = 6_000_000;

/// Groups of a grouped convolution up to this many matrix entries get a dense SVD; larger ones the
/// certified norm (hundreds of depthwise channels each as a dense SVD would take minutes).
const GROUP_DENSE: usize = 65_536;

fn exact(value: f64) -> NormInterval {
    NormInterval {
        value,
        lower: value,
        upper: Some(value),
        certificate: Certificate::Exact,
        cluster: 0,
        iterations: 0,
        residual: 0.0,
        start: None,
        upper_bounds: Vec::new(),
    }
}

/// The dense SVD's value widened by its rounding bound: a backward stable SVD returns the singular
/// values of `A + E` with `||E|| <= p(m, n)·ε·||A||`, `p` a modest function; `16·max(m, n)` here.
fn rounded(value: f64, rows: usize, cols: usize) -> NormInterval {
    let d = 16.0 * rows.max(cols) as f64 * f64::EPSILON;
    NormInterval { lower: value * (1.0 - d), upper: Some(value * (1.0 + d)), ..exact(value) }
}

/// The spectral norm of one block's linear part (its bias plays no part) with a two-sided bound, using
/// its structure:
/// - a diagonal: exact ([`NormMethod::Diagonal`]);
/// - a matrix with disjoint row (or column) supports, e.g. a global or non-overlapping average pool:
///   the largest row (column) norm, exact ([`NormMethod::ClosedForm`]);
/// - a grouped convolution (depthwise included): the largest of its groups' norms ([`NormMethod::PerGroup`]);
/// - up to [`SPARSE_DENSE_LIMIT`] entries: the dense SVD ([`NormMethod::DenseSvd`]);
/// - a larger convolution: its certified norm, matrix-free ([`NormMethod::Certified`]), BatchNorm and
///   constant scales folded into its weights; reflect / replicate padding: the norm inequality of the
///   built matrix ([`NormMethod::PowerIteration`]). When the interval is wider than `tol` relative and
///   the matrix has at most [`DENSE_FALLBACK`] entries, the dense SVD replaces it.
///
/// # Errors
/// As the spectrum functions ([`SpectrumError::Cancelled`] when `monitor` stops the run).
pub fn block_norm(map: &BlockMap, tol: f64, monitor: &Monitor<'_>) -> Result<BlockInterval, SpectrumError> {
    match map {
        BlockMap::Diagonal { scale, .. } => Ok(BlockInterval {
            norm: exact(scale.iter().fold(0.0, |m: f64, s| m.max(s.abs()))),
            method: NormMethod::Diagonal,
        }),
        BlockMap::Dense { weight, rows, cols, .. } => {
            // reps copies along the diagonal: the norm of one
            let m: Csr = Csr::new(
                (*rows, *cols),
                (0..=*rows).map(|r| r * cols).collect(),
                (0..rows * cols).map(|e| (e % cols) as u32).collect(),
                weight.clone(),
            );
            matrix_norm(&m, tol, monitor)
        }
        BlockMap::Sparse { matrix, .. } => matrix_norm(matrix, tol, monitor),
        BlockMap::Conv { layer, scale, .. } => match folded(&layer.conv::<f64>()?, scale.as_deref())? {
            Some(conv) => conv_norm(&conv, tol, monitor),
            None => matrix_norm(&map.to_csr()?.0, tol, monitor),
        },
        // `BlockMap` is non-exhaustive only for other crates
    }
}

/// An explicit matrix: closed form, dense SVD or power iteration.
fn matrix_norm(m: &Csr, tol: f64, monitor: &Monitor<'_>) -> Result<BlockInterval, SpectrumError> {
    cancelled(monitor)?;
    if let Some(v) = disjoint_norm(m) {
        return Ok(BlockInterval { norm: exact(v), method: NormMethod::ClosedForm });
    }
    let n = csr_norm(m, tol, monitor)?;
    Ok(match n.certificate {
        Certificate::Exact => {
            BlockInterval { norm: rounded(n.value, m.rows(), m.cols()), method: NormMethod::DenseSvd }
        }
        _ => BlockInterval { norm: n, method: NormMethod::PowerIteration },
    })
}

/// The norm of a matrix whose columns each hold at most one entry (rows with disjoint supports, so
/// `AAᵀ` is diagonal: the largest row norm) or whose rows each hold at most one (the largest column
/// norm); `None` otherwise.
fn disjoint_norm(m: &Csr) -> Option<f64> {
    let ip = m.indptr();
    let ip = ip.raw_storage();
    let mut per_col = vec![0u32; m.cols()];
    let mut col_sq = vec![0.0f64; m.cols()];
    for (e, &c) in m.indices().iter().enumerate() {
        per_col[c as usize] += 1;
        col_sq[c as usize] += m.data()[e] * m.data()[e];
    }
    if per_col.iter().all(|&n| n <= 1) {
        let rows = ip.windows(2).map(|w| m.data()[w[0]..w[1]].iter().map(|v| v * v).sum::<f64>());
        return Some(rows.fold(0.0, f64::max).sqrt());
    }
    if ip.windows(2).all(|w| w[1] - w[0] <= 1) {
        return Some(col_sq.iter().copied().fold(0.0, f64::max).sqrt());
    }
    None
}

/// The convolution with per-output-channel `scale` folded into its weights and no bias; `None` when
/// the scale varies within a channel.
fn folded(conv: &Conv<f64>, scale: Option<&[f64]>) -> Result<Option<Conv<f64>>, MatrixError> {
    let spec = conv.geometry().spec();
    let (c_out, c_in, groups) = (spec.out_channels(), spec.in_channels(), spec.groups());
    let mut w = conv.weight().to_vec();
    if let Some(scale) = scale {
        let per_channel = conv.rows() / c_out;
        let channel: Vec<f64> = (0..c_out).map(|o| scale[o * per_channel]).collect();
        if (0..conv.rows()).any(|r| scale[r] != channel[r / per_channel]) {
            return Ok(None);
        }
        let taps: usize = spec.kernel_size().iter().product();
        for (e, v) in w.iter_mut().enumerate() {
            let o = if spec.is_transposed() {
                // (C_in, C_out / groups, *k)
                let (i, j) = (e / (c_out / groups * taps), (e / taps) % (c_out / groups));
                i / (c_in / groups) * (c_out / groups) + j
            } else {
                // (C_out, C_in / groups, *k)
                e / (c_in / groups * taps)
            };
            *v *= channel[o];
        }
    }
    Conv::new(conv.geometry().clone(), w, None).map(Some)
}

/// A convolution's norm: per group when grouped, else [`single_norm`].
fn conv_norm(conv: &Conv<f64>, tol: f64, monitor: &Monitor<'_>) -> Result<BlockInterval, SpectrumError> {
    let spec = conv.geometry().spec();
    let g = spec.groups();
    if g == 1 {
        return single_norm(conv, SPARSE_DENSE_LIMIT, tol, monitor);
    }
    // block diagonal: group k's outputs read only group k's inputs, rows and columns contiguous
    let (ci, co, rank) = (spec.in_channels() / g, spec.out_channels() / g, spec.rank());
    let one = if spec.is_transposed() {
        ConvSpec::new_transposed(rank, ci, co, spec.kernel_size())
    } else {
        ConvSpec::new(rank, ci, co, spec.kernel_size())
    }
    .with_stride(spec.stride())
    .with_padding(spec.padding().clone())
    .with_dilation(spec.dilation())
    .with_padding_mode(spec.padding_mode())
    .with_output_padding(spec.output_padding())
    .with_bias(false);
    let geometry = Geometry::new(&one, conv.geometry().input_spatial()).map_err(MatrixError::from)?;
    let len = conv.weight().len() / g;
    let mut best: Option<NormInterval> = None;
    let (mut lower, mut iterations) = (0.0f64, 0);
    for k in 0..g {
        let part = Conv::new(geometry.clone(), conv.weight()[k * len..(k + 1) * len].to_vec(), None)?;
        let n = single_norm(&part, GROUP_DENSE, tol, monitor)?.norm;
        lower = lower.max(n.lower);
        iterations += n.iterations;
        let up = n.upper.unwrap_or(f64::INFINITY);
        if best.as_ref().is_none_or(|b| up > b.upper.unwrap_or(f64::INFINITY)) {
            best = Some(n);
        }
    }
    let best = best.unwrap_or_else(|| exact(0.0));
    let value = best.value.max(lower);
    Ok(BlockInterval { norm: NormInterval { value, lower, iterations, ..best }, method: NormMethod::PerGroup })
}

/// One convolution (no groups left to split): dense up to `dense` entries, else certified, with the
/// dense fallback when `tol` is missed.
fn single_norm(
    conv: &Conv<f64>,
    dense: usize,
    tol: f64,
    monitor: &Monitor<'_>,
) -> Result<BlockInterval, SpectrumError> {
    let entries = conv.rows().saturating_mul(conv.cols());
    let built = || -> Result<Csr, SpectrumError> { Ok(conv.csr_with(&MatrixOptions::default())?) };
    if entries <= dense {
        return matrix_norm(&built()?, tol, monitor);
    }
    let n = certified_norm_with(conv, tol, Start::Auto, monitor)?;
    let mut out = match n.upper {
        Some(_) => BlockInterval { norm: n, method: NormMethod::Certified },
        None => {
            let m = matrix_norm(&built()?, tol, monitor)?;
            BlockInterval { norm: NormInterval { lower: n.lower.max(m.norm.lower), ..m.norm }, method: m.method }
        }
    };
    if !meets(&out.norm, tol) && entries <= DENSE_FALLBACK {
        cancelled(monitor)?;
        let s = dense_singular_values(conv)?;
        out = BlockInterval {
            norm: rounded(s.first().copied().unwrap_or(0.0), conv.rows(), conv.cols()),
            method: NormMethod::DenseSvd,
        };
    }
    Ok(out)
}

fn cancelled(monitor: &Monitor<'_>) -> Result<(), SpectrumError> {
    if monitor.is_cancelled() {
        Err(SpectrumError::Cancelled)
    } else {
        Ok(())
    }
}

/// Whether an interval's relative width is at most `tol` (an exact one always is).
fn meets(n: &NormInterval, tol: f64) -> bool {
    match n.upper {
        _ if n.certificate == Certificate::Exact => true,
        Some(up) => up - n.lower <= tol * n.lower.max(f64::MIN_POSITIVE),
        None => false,
    }
}

/// One block's spectral norm: `lower <= ||A||_2 <= upper` for the block's matrix `A` (the bias plays no
/// part). The JSON keys of `convmat svd --json`'s network view.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BlockNorm {
    /// The block's name: its node (ONNX: the main node), or the `state_dict` prefix in a `Sequential`.
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
    /// A lower bound of the block's spectral norm.
    pub lower: f64,
    /// An upper bound of it (infinite, `null` in JSON, when none is known).
    pub upper: f64,
    /// What the interval rests on: `exact`, `kato-temple` / `interlacing` (the certified norm),
    /// `norm-inequality`, `residual-only`.
    #[serde(serialize_with = "certificate_name")]
    pub certificate: Certificate,
    /// How it was found ([`NormMethod`]).
    pub method: NormMethod,
    /// Whether the interval's relative width `(upper - lower) / lower` is within the `tol` asked for.
    pub tol_met: bool,
    /// Lanczos or power-iteration steps (0 for the direct methods).
    pub iterations: usize,
    /// The nonlinearities applied to the block's output, in order, up to the next block or junction.
    pub activations: Vec<String>,
    /// Seconds spent on this block.
    pub seconds: f64,
}

impl BlockNorm {
    /// A row of the table: `name` and `op` of a block whose `rows x cols` matrix maps `input_shape` to
    /// `output_shape`, with the interval `b` found in `seconds`; `tol_met` against `tol`. No
    /// nonlinearities follow yet (see [`activations`](Self::activations)).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        op: String,
        nodes: Vec<String>,
        input_shape: Vec<usize>,
        output_shape: Vec<usize>,
        (rows, cols): (usize, usize),
        b: &BlockInterval,
        tol: f64,
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
            lower: b.norm.lower,
            upper: b.norm.upper.unwrap_or(f64::INFINITY),
            certificate: b.norm.certificate,
            method: b.method,
            tol_met: meets(&b.norm, tol),
            iterations: b.norm.iterations,
            activations: Vec::new(),
            seconds,
        }
    }
}

fn certificate_name<S: serde::Serializer>(c: &Certificate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str())
}

/// Every block's norm, their products and the graph's Lipschitz bound.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct NetworkNorms {
    /// The blocks in graph order.
    pub layers: Vec<BlockNorm>,
    /// `∏ upper`: for a chain, an upper bound of the network's Lipschitz constant in the 2-norm when
    /// every nonlinearity between the layers is 1-Lipschitz (AutoLip, Virmaux and Scaman 2018), which
    /// [`not_one_lipschitz`](Self::not_one_lipschitz) lists the exceptions to. For a graph with branches
    /// it is no bound: [`graph_upper`](Self::graph_upper) is.
    pub product_upper: f64,
    /// `∏ lower`: the same product at the lower ends. NOT a lower bound of the network's Lipschitz
    /// constant; it shows how much of the product is owed to the per-layer intervals' widths.
    pub product_lower: f64,
    /// The index in `layers` of the largest upper bound.
    pub largest: Option<usize>,
    /// The nonlinearities not known to be 1-Lipschitz, as `name (op)`.
    pub not_one_lipschitz: Vec<String>,
    /// An upper bound of the whole graph's Lipschitz constant in the 2-norm, node by node
    /// ([`Graph::lipschitz_bound`]): branches summed, concatenations by the root of the sum of squares,
    /// each nonlinearity's constant multiplied in. Conditional on
    /// [`graph_conditional_on`](Self::graph_conditional_on) when that is not empty.
    pub graph_upper: f64,
    /// The nodes with no known global constant, as `name (op): why`: `graph_upper` counts each as
    /// 1-Lipschitz in each operand, so it bounds the graph only where they are.
    pub graph_conditional_on: Vec<String>,
    /// The blocks whose interval is wider than the `tol` asked for, by name (see each block's `tol_met`).
    pub tol_missed: Vec<String>,
}

impl NetworkNorms {
    /// The table of `layers` with the graph's bound: the products of their bounds and the largest.
    pub fn new(layers: Vec<BlockNorm>, graph: crate::GraphBound) -> Self {
        let largest = (0..layers.len()).max_by(|&i, &j| layers[i].upper.total_cmp(&layers[j].upper));
        Self {
            product_upper: layers.iter().map(|b| b.upper).product(),
            product_lower: layers.iter().map(|b| b.lower).product(),
            largest,
            tol_missed: layers.iter().filter(|b| !b.tol_met).map(|b| b.name.clone()).collect(),
            layers,
            not_one_lipschitz: graph.not_one_lipschitz,
            graph_upper: graph.upper,
            graph_conditional_on: graph.conditional_on,
        }
    }
}

impl Graph {
    /// Every block's certified norm interval ([`block_norm`], `tol` the relative width asked for) and
    /// the graph's Lipschitz bound ([`lipschitz_bound`](Self::lipschitz_bound)) on its upper ends. Each
    /// block's map is built by `source` when its turn comes and dropped after. `on_block(i, n, name)` is
    /// called before block `i` of `n`; `monitor` watches (and may cancel) each block's run.
    ///
    /// # Errors
    /// A graph that does not validate; a block its source cannot build ([`NetError::Block`]); a norm
    /// that fails or is cancelled ([`NetError::Norm`]).
    pub fn norms(
        &self,
        source: &dyn BlockSource,
        tol: f64,
        monitor: &Monitor<'_>,
        mut on_block: impl FnMut(usize, usize, &str),
    ) -> Result<NetworkNorms, NetError> {
        let shapes = self.shapes()?;
        let count = self.blocks().count();
        let mut readers: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for t in self.nodes.iter().flat_map(|n| &n.inputs).chain(&self.outputs) {
            *readers.entry(t.as_str()).or_default() += 1;
        }
        let mut layers = Vec::with_capacity(count);
        let mut uppers = vec![f64::INFINITY; self.nodes.len()];
        for (k, (i, n)) in self.blocks().enumerate() {
            on_block(k, count, &n.name);
            let t = Instant::now();
            let map = source.block(i, n).map_err(|source| NetError::Block {
                node: n.name.clone(),
                op: n.op.clone(),
                source,
            })?;
            let b = block_norm(&map, tol, monitor).map_err(|e| NetError::Norm {
                node: n.name.clone(),
                op: n.op.clone(),
                source: Box::new(e),
            })?;
            let mut row = BlockNorm::new(
                n.name.clone(),
                n.op.clone(),
                std::iter::once(n.name.clone()).chain(n.folded.iter().cloned()).collect(),
                shapes[n.inputs[0].as_str()].clone(),
                n.output_shapes[0].clone(),
                (map.rows(), map.cols()),
                &b,
                tol,
                t.elapsed().as_secs_f64(),
            );
            drop(map);
            // the nonlinearities that follow it alone, one after the other
            let mut tensor = n.outputs[0].as_str();
            while readers.get(tensor) == Some(&1) {
                let Some(next) = self.nodes[i + 1..].iter().find(|m| m.inputs.iter().any(|x| x == tensor)) else {
                    break;
                };
                if next.kind() != Kind::Nonlinearity || next.inputs.len() != 1 {
                    break;
                }
                row.activations.push(next.op.clone());
                tensor = next.outputs[0].as_str();
            }
            uppers[i] = row.upper;
            layers.push(row);
        }
        let bound = self.lipschitz_bound(|i| uppers[i])?;
        Ok(NetworkNorms::new(layers, bound))
    }
}

/// The key in a node's `params` saying its parameters were assumed, not read (a `Sequential`
/// expression's elementwise layers keep no arguments): its constant is then unknown where it depends on
/// them.
pub const ASSUMED: &str = "assumed";
