//! Lowering a model to the ONNX that MILP encoders and verifiers read: every affine block (BatchNorm,
//! Pad and constant Add / Mul folded) written as one dense `Gemm` (or `MatMul` + `Add`), the
//! nonlinearities between blocks kept as the ONNX ops they were, the graph input flat.
//!
//! The model is read as convmat-net's graph record ([`Model::network`]), chains and graphs alike; the
//! plan ([`Model::lower`]) is checked and sized before any matrix is built; [`Lowered::write`] then
//! streams the protobuf: the small messages first (nodes, inputs, outputs), then each block's weights
//! as `raw_data`, built one block at a time and written row by row, so memory holds one block's sparse
//! matrix and a few MiB of dense rows whatever the model's size.
//!
//! The graph is built by [`GraphBuilder`], one method per kind of node of the record: a block, a
//! junction (a residual `Add` / `Sub` and a channel `Concat` as `Add` / `Sub` / `Concat(axis=1)` of the
//! flat vectors they join; Split, Slice, Transpose as 0/1 selection blocks), a nonlinearity (its
//! operands written explicitly).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;
use serde::Serialize;

use convmat_net::{BlockMap, BlockSource, Graph, Junction, Node as NetNode, Nonlinearity, Port, Role, Tensor};

use crate::blocks::{BlockOptions, Csr};
use crate::proto::{
    attribute_type as at, data_type, AttributeProto, DimValue, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use crate::{Model, Network, OnnxError};

/// The opset a lowered model imports at least (Softmax's per-axis semantics; every op written here
/// exists there).
const MIN_OPSET: i64 = 13;
/// The IR version of opset 13 (ONNX 1.8).
const IR_VERSION: i64 = 7;
/// Protobuf messages stop at 2 GiB: `onnx.load` and onnxruntime refuse larger files without external
/// data, which the verifiers' readers do not follow.
const MAX_FILE: u64 = (1 << 31) - 1;
/// How an affine block is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Form {
    /// One `Gemm` (`alpha = beta = 1`, `transA = 0`, `transB = 1`: `B` is the block's matrix as it
    /// applies, `rows x cols`), the bias as `C`.
    #[default]
    Gemm,
    /// `MatMul` by the transposed matrix (`cols x rows`), then `Add` of the bias.
    MatMul,
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Gemm => "gemm",
            Self::MatMul => "matmul",
        })
    }
}

/// A form name that is neither `gemm` nor `matmul`.
#[derive(Debug, thiserror::Error)]
#[error("form '{0}' is not known; valid forms: gemm, matmul")]
pub struct FormError(pub String);

impl std::str::FromStr for Form {
    type Err = FormError;
    fn from_str(s: &str) -> Result<Self, FormError> {
        match s.to_ascii_lowercase().as_str() {
            "gemm" => Ok(Self::Gemm),
            "matmul" => Ok(Self::MatMul),
            _ => Err(FormError(s.into())),
        }
    }
}

/// How a `MaxPool` / `GlobalMaxPool` is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MaxPoolForm {
    /// As the op it was, between a `Reshape` to its input shape and a `Flatten` (onnxruntime,
    /// `onnx.reference` and Marabou read it).
    #[default]
    Keep,
    /// As `Gemm` + `Relu` layers: each window's maximum by a tree of pairwise maxima,
    /// `max(a, b) = relu(a - b) + relu(b) - relu(-b)`, for readers that take nothing else (OMLT 1.2.2,
    /// gurobi-machinelearning 1.7).
    Relu,
}

impl std::fmt::Display for MaxPoolForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Keep => "keep",
            Self::Relu => "relu",
        })
    }
}

/// A max-pool form name that is neither `keep` nor `relu`.
#[derive(Debug, thiserror::Error)]
#[error("max-pool form '{0}' is not known; valid forms: keep, relu")]
pub struct MaxPoolFormError(pub String);

impl std::str::FromStr for MaxPoolForm {
    type Err = MaxPoolFormError;
    fn from_str(s: &str) -> Result<Self, MaxPoolFormError> {
        match s.to_ascii_lowercase().as_str() {
            "keep" => Ok(Self::Keep),
            "relu" => Ok(Self::Relu),
            _ => Err(MaxPoolFormError(s.into())),
        }
    }
}

/// What [`Model::lower`] writes.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct LowerOptions {
    /// The shape of one input sample (`C, H, W`), for models whose input shape is dynamic.
    pub input_shape: Option<Vec<usize>>,
    /// The most bytes the dense weights (f32) may take; `None`: the memory available.
    pub max_dense_bytes: Option<u64>,
    /// `Gemm` or `MatMul` + `Add`.
    pub form: Form,
    /// Declare the original input shape (`[N, C, H, W]`) behind a leading `Flatten`, instead of the
    /// flat `[N, C·H·W]`.
    pub keep_input_shape: bool,
    /// How max pools are written.
    pub max_pool: MaxPoolForm,
}

impl LowerOptions {
    /// Sets [`input_shape`](Self::input_shape).
    pub fn input_shape(mut self, shape: Option<Vec<usize>>) -> Self {
        self.input_shape = shape;
        self
    }
    /// Sets [`max_dense_bytes`](Self::max_dense_bytes).
    pub fn max_dense_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_dense_bytes = bytes;
        self
    }
    /// Sets [`form`](Self::form).
    pub fn form(mut self, form: Form) -> Self {
        self.form = form;
        self
    }
    /// Sets [`keep_input_shape`](Self::keep_input_shape).
    pub fn keep_input_shape(mut self, keep: bool) -> Self {
        self.keep_input_shape = keep;
        self
    }
    /// Sets [`max_pool`](Self::max_pool).
    pub fn max_pool(mut self, form: MaxPoolForm) -> Self {
        self.max_pool = form;
        self
    }
}

/// One affine block as written.
#[derive(Clone, Debug, Serialize)]
pub struct LoweredBlock {
    /// The block's main node (and the written `Gemm` / `MatMul` node's name).
    pub name: String,
    /// The main node's op in the original model.
    pub op: String,
    /// Matrix rows (outputs per sample).
    pub rows: usize,
    /// Matrix columns (inputs per sample).
    pub cols: usize,
    /// Bytes of its weight and bias as written (f32).
    pub bytes: u64,
}

/// What [`Lowered::write`] wrote.
#[derive(Clone, Debug, Serialize)]
pub struct LowerReport {
    /// The model read.
    pub model: String,
    /// The file written.
    pub output: String,
    /// Every affine block, in order.
    pub blocks: Vec<LoweredBlock>,
    /// Bytes of the file written.
    pub bytes: u64,
}

/// A model's lowering, checked and sized, nothing built yet: [`write`](Self::write) builds and
/// streams it.
pub struct Lowered<'m> {
    model: &'m Model,
    network: Network<'m>,
    /// The graph without the block weights and biases.
    graph: GraphProto,
    /// Where each written matrix comes from.
    sources: Vec<Source>,
    /// The initializers streamed from sources, in file order.
    streamed: Vec<Streamed>,
    blocks: Vec<LoweredBlock>,
    form: Form,
    opset: i64,
    /// Bytes of the file.
    bytes: u64,
}

/// Where a written matrix and bias come from.
#[derive(Clone, Debug)]
enum Source {
    /// The network's block at this node index, built when the stream reaches it.
    Block(usize),
    /// A small matrix made while planning (a junction's 0/1 selection), with its bias.
    Built {
        /// The graph node it stands for.
        node: usize,
        /// Taken when written.
        matrix: Option<Box<Csr>>,
        bias: Vec<f64>,
    },
}

/// An initializer whose bytes come from a [`Source`].
#[derive(Clone, Debug)]
struct Streamed {
    /// Index into [`Lowered::sources`].
    source: usize,
    name: String,
    dims: Vec<i64>,
    part: Part,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// The matrix, `rows x cols` (Gemm's `B` with `transB = 1`).
    Matrix,
    /// The matrix transposed, `cols x rows` (MatMul's `B`).
    Transposed,
    /// The bias.
    Bias,
}

impl Streamed {
    fn header(&self) -> TensorProto {
        TensorProto {
            dims: self.dims.clone(),
            data_type: data_type::FLOAT,
            name: self.name.clone(),
            ..Default::default()
        }
    }

    fn raw_len(&self) -> u64 {
        self.dims.iter().map(|&d| d as u64).product::<u64>() * 4
    }

    /// The encoded `TensorProto`'s length.
    fn encoded_len(&self) -> u64 {
        let raw = self.raw_len();
        self.header().encoded_len() as u64 + 1 + encoded_len_varint(raw) as u64 + raw
    }
}

fn graph_error(e: convmat_net::NetError) -> OnnxError {
    OnnxError::Graph(Box::new(e))
}

impl Model {
    /// Plans this model's lowering to the ONNX verifiers read (see the module docs): reads the model
    /// as convmat-net's graph record ([`Model::network`]), checks every node and sizes every block
    /// before building any, refusing dense weights over the limit.
    ///
    /// # Errors
    /// As [`network`](Self::network); a model of more than one input; a node this writer cannot carry
    /// (named); dense weights over [`LowerOptions::max_dense_bytes`] or the memory available (naming
    /// the largest block and its size); a file over protobuf's 2 GiB.
    pub fn lower(&self, options: &LowerOptions) -> Result<Lowered<'_>, OnnxError> {
        let network = self.network(options.input_shape.as_deref(), &BlockOptions::default())?;
        let g = network.graph();
        let shapes = g.shapes().map_err(graph_error)?;
        let input = match g.inputs.as_slice() {
            [one] => one,
            [] => {
                return Err(OnnxError::Format {
                    path: self.path().into(),
                    reason: "the graph has no input to lower".into(),
                })
            }
            [_, second, ..] => {
                return Err(OnnxError::unsupported(
                    &second.name,
                    "input",
                    format!("the graph has {} inputs; lowering writes models of one input", g.inputs.len()),
                ))
            }
        };
        if g.nodes.is_empty() {
            return Err(OnnxError::unsupported(
                &input.name,
                "input",
                "the model has no affine block and no nonlinearity: nothing to lower",
            ));
        }
        let opset = self.opset().max(MIN_OPSET);
        let names: Vec<String> = self.graph.output.iter().map(|o| o.name.clone()).collect();
        let mut b = GraphBuilder::new(&input.name, &names, options.form, options.max_pool);
        let mut values: HashMap<&str, String> = HashMap::new();
        values.insert(&input.name, b.input(&input.name, &input.shape, options.keep_input_shape));
        for (i, n) in g.nodes.iter().enumerate() {
            let ins: Vec<String> = n.inputs.iter().map(|t| values[t.as_str()].clone()).collect();
            let in_shapes: Vec<&[usize]> = n.inputs.iter().map(|t| shapes[t.as_str()].as_slice()).collect();
            let outs = b.step(self, i, n, &ins, &in_shapes)?;
            for (t, v) in n.outputs.iter().zip(outs) {
                values.insert(t, v);
            }
        }
        let outputs = g
            .outputs
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let name = names.get(k).cloned().unwrap_or_default();
                (name, values[t.as_str()].clone(), shapes[t.as_str()].iter().product())
            })
            .collect();
        let (graph, sources, streamed, blocks) = b.finish(outputs);
        check_size(&blocks, options.max_dense_bytes.or_else(convmat_matrix::available_memory))?;
        let mut lowered =
            Lowered { model: self, network, graph, sources, streamed, blocks, form: options.form, opset, bytes: 0 };
        lowered.bytes = lowered.model_len();
        if lowered.bytes > MAX_FILE {
            let largest = largest(&lowered.blocks).expect("a file that large has blocks");
            return Err(OnnxError::shape(
                &largest.name,
                &largest.op,
                format!(
                    "the lowered model would be {} bytes, over the 2 GiB a protobuf file can hold (onnx and onnxruntime refuse it); this block, the largest, is {} x {} ({} bytes)",
                    lowered.bytes, largest.rows, largest.cols, largest.bytes
                ),
            ));
        }
        Ok(lowered)
    }
}

fn largest(blocks: &[LoweredBlock]) -> Option<&LoweredBlock> {
    blocks.iter().max_by_key(|b| b.bytes)
}

/// Refuses dense weights over `limit` bytes, naming the largest block.
fn check_size(blocks: &[LoweredBlock], limit: Option<u64>) -> Result<(), OnnxError> {
    let total: u128 = blocks.iter().map(|b| u128::from(b.bytes)).sum();
    match (limit, largest(blocks)) {
        (Some(limit), Some(big)) if total > u128::from(limit) => Err(OnnxError::shape(
            &big.name,
            &big.op,
            format!(
                "the lowered model's dense weights take {total} bytes (f32, {} blocks), over the limit of {limit} bytes (max dense bytes; by default the memory available); this block, the largest, is {} x {} ({} bytes)",
                blocks.len(),
                big.rows,
                big.cols,
                big.bytes
            ),
        )),
        _ => Ok(()),
    }
}

impl Lowered<'_> {
    /// Every affine block as it will be written, in order.
    pub fn blocks(&self) -> &[LoweredBlock] {
        &self.blocks
    }

    /// The size of the file [`write`](Self::write) writes, in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The form of the affine blocks.
    pub fn form(&self) -> Form {
        self.form
    }

    /// The model's header: everything but the graph.
    fn header(&self) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: self.opset }],
            producer_name: "convmat".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: None,
        }
    }

    fn graph_len(&self) -> u64 {
        let small = self.graph.encoded_len() as u64;
        small
            + self
                .streamed
                .iter()
                .map(|s| {
                    let n = s.encoded_len();
                    1 + encoded_len_varint(n) as u64 + n
                })
                .sum::<u64>()
    }

    fn model_len(&self) -> u64 {
        let g = self.graph_len();
        self.header().encoded_len() as u64 + 1 + encoded_len_varint(g) as u64 + g
    }

    /// Builds each block and writes the model to `path` atomically (a temporary file renamed over it
    /// on success: no partial file, an existing one untouched on error).
    ///
    /// # Errors
    /// `path` is a directory or cannot be written; a block's weights cannot be read.
    pub fn write(self, path: &Path) -> Result<LowerReport, OnnxError> {
        let mut f = convmat_io::AtomicFile::create(path)?;
        let (model, blocks, bytes) = (self.model.path().display().to_string(), self.blocks.clone(), self.bytes);
        let target = path.to_path_buf();
        let mut counting = Counting { inner: f.writer(), n: 0 };
        self.stream(&mut counting, |source| OnnxError::Io { path: target.clone(), source })?;
        if counting.n != bytes {
            return Err(OnnxError::shape(
                &model,
                "model",
                format!("wrote {} bytes where the plan sized {bytes} (a bug: please report it)", counting.n),
            ));
        }
        f.commit()?;
        Ok(LowerReport { model, output: path.display().to_string(), blocks, bytes })
    }

    /// Streams the model's protobuf to `w`; write errors come back as [`OnnxError::Io`] naming the
    /// model read ([`write`](Self::write) names its target instead).
    ///
    /// # Errors
    /// A block's weights cannot be read; `w` fails.
    pub fn write_to(self, w: &mut impl Write) -> Result<(), OnnxError> {
        let path: PathBuf = self.model.path().to_path_buf();
        self.stream(w, |source| OnnxError::Io { path: path.clone(), source })
    }

    fn stream(mut self, w: &mut impl Write, io: impl Fn(std::io::Error) -> OnnxError) -> Result<(), OnnxError> {
        let mut head = self.header().encode_to_vec();
        encode_key(7, WireType::LengthDelimited, &mut head);
        encode_varint(self.graph_len(), &mut head);
        self.graph.encode(&mut head).expect("a Vec grows");
        w.write_all(&head).map_err(&io)?;
        let streamed = std::mem::take(&mut self.streamed);
        // the matrix being written (one at a time: the previous one is dropped before the next is built)
        let mut current: Option<(usize, Csr, Vec<f64>)> = None;
        let mut buf = Vec::new();
        for s in &streamed {
            if current.as_ref().is_none_or(|(k, ..)| *k != s.source) {
                drop(current.take());
                let (m, b) = self.build(s.source)?;
                current = Some((s.source, m, b));
            }
            let (_, m, bias) = current.as_ref().expect("set above");
            self.check_built(s.source, m, bias, &s.dims, s.part)?;
            let mut t = Vec::new();
            encode_key(5, WireType::LengthDelimited, &mut t);
            encode_varint(s.encoded_len(), &mut t);
            s.header().encode(&mut t).expect("a Vec grows");
            encode_key(9, WireType::LengthDelimited, &mut t);
            encode_varint(s.raw_len(), &mut t);
            w.write_all(&t).map_err(&io)?;
            match s.part {
                Part::Bias => {
                    let bytes: Vec<u8> = bias.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect();
                    w.write_all(&bytes).map_err(&io)?;
                }
                Part::Matrix => write_dense(w, m, &mut buf).map_err(&io)?,
                Part::Transposed => {
                    let csc: Csr = m.to_other_storage();
                    write_dense(w, &csc, &mut buf).map_err(&io)?;
                }
            }
        }
        Ok(())
    }

    /// The graph node a source stands for.
    fn source_node(&self, source: usize) -> &convmat_net::Node {
        let i = match &self.sources[source] {
            Source::Block(i) | Source::Built { node: i, .. } => *i,
        };
        &self.network.graph().nodes[i]
    }

    /// Builds (or takes) a source's matrix and bias.
    fn build(&mut self, source: usize) -> Result<(Csr, Vec<f64>), OnnxError> {
        match &mut self.sources[source] {
            Source::Block(i) => {
                let i = *i;
                let n = &self.network.graph().nodes[i];
                self.network.block(i)?.to_csr().map_err(|e| OnnxError::Matrix {
                    node: n.name.clone(),
                    op: n.op.clone(),
                    source: Box::new(e),
                })
            }
            Source::Built { matrix, bias, .. } => {
                Ok((*matrix.take().expect("each source is written once"), std::mem::take(bias)))
            }
        }
    }

    /// Checks that a built block has the shape its plan promised.
    fn check_built(&self, source: usize, m: &Csr, bias: &[f64], dims: &[i64], part: Part) -> Result<(), OnnxError> {
        let (r, c) = m.shape();
        let want: Vec<i64> = match part {
            Part::Matrix => vec![r as i64, c as i64],
            Part::Transposed => vec![c as i64, r as i64],
            Part::Bias => vec![bias.len() as i64],
        };
        if want != dims {
            let n = self.source_node(source);
            return Err(OnnxError::shape(
                &n.name,
                &n.op,
                format!("the block built is {r} x {c} with {} biases, its plan said {dims:?}", bias.len()),
            ));
        }
        Ok(())
    }
}

/// Writes a compressed matrix's outer dimension by outer dimension as dense little-endian f32 rows
/// (rows of a CSR, columns of a CSC), a few MiB at a time. The buffer is zeroed once; after each chunk
/// only the entries it set are cleared again, so a sparse matrix costs one pass of writes, not a
/// `memset` of every chunk besides.
fn write_dense(w: &mut impl Write, m: &Csr, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let inner = m.inner_dims();
    let row_bytes = inner * 4;
    let per_chunk = ((4 << 20) / row_bytes.max(1)).max(1);
    let indptr = m.indptr();
    let indptr = indptr.raw_storage();
    let (indices, data) = (m.indices(), m.data());
    let outer = m.outer_dims();
    buf.clear();
    let mut start = 0;
    while start < outer {
        let end = (start + per_chunk).min(outer);
        let len = (end - start) * row_bytes;
        if buf.len() != len {
            buf.clear();
            buf.resize(len, 0);
        }
        let rows = |r: usize| (r - start) * row_bytes;
        for r in start..end {
            for k in indptr[r]..indptr[r + 1] {
                let c = rows(r) + indices[k] as usize * 4;
                buf[c..c + 4].copy_from_slice(&(data[k] as f32).to_le_bytes());
            }
        }
        w.write_all(buf)?;
        for r in start..end {
            for &col in &indices[indptr[r]..indptr[r + 1]] {
                let c = rows(r) + col as usize * 4;
                buf[c..c + 4].fill(0);
            }
        }
        start = end;
    }
    Ok(())
}

/// A writer that counts the bytes it passes on.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(b)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The lowered graph as it is planned: nodes with unique non-empty names, values in SSA, the small
/// initializers (reshape targets, slopes, bounds) kept, the block weights left to the stream.
///
/// Every value is a flat `[N, n]` float tensor between steps (a sample in row-major order), so a
/// residual `Add` / `Sub` of two equal shapes is `Add` / `Sub` of the flat vectors, a channel `Concat`
/// (axis 1) is `Concat(axis = 1)` of them, and every other rearrangement (Split, Slice, Transpose, a
/// Concat on another axis, an operand broadcast onto the other's shape) is a 0/1 selection matrix
/// written as one more affine block, its rows read off convmat-net's own evaluation of the junction.
pub(crate) struct GraphBuilder {
    used: HashSet<String>,
    graph: GraphProto,
    form: Form,
    max_pool: MaxPoolForm,
    sources: Vec<Source>,
    streamed: Vec<Streamed>,
    blocks: Vec<LoweredBlock>,
    /// The graph input's name.
    input: String,
}

impl GraphBuilder {
    fn new(input: &str, outputs: &[String], form: Form, max_pool: MaxPoolForm) -> Self {
        let mut used = HashSet::new();
        used.insert(input.to_string());
        used.extend(outputs.iter().filter(|o| !o.is_empty()).cloned());
        Self {
            used,
            graph: GraphProto { name: "convmat_lowered".into(), ..Default::default() },
            form,
            max_pool,
            sources: Vec::new(),
            streamed: Vec::new(),
            blocks: Vec::new(),
            input: input.into(),
        }
    }

    /// `base`, or `base_1`, `base_2`, ... when taken (node, value and initializer names share one set).
    fn fresh(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "node" } else { base };
        let mut name = base.to_string();
        let mut k = 0;
        while !self.used.insert(name.clone()) {
            k += 1;
            name = format!("{base}_{k}");
        }
        name
    }

    fn node(&mut self, op: &str, name: &str, inputs: Vec<String>, attribute: Vec<AttributeProto>) -> String {
        let name = self.fresh(name);
        let out = self.fresh(&format!("{name}_output"));
        self.graph.node.push(NodeProto {
            input: inputs,
            output: vec![out.clone()],
            name,
            op_type: op.into(),
            domain: String::new(),
            attribute,
        });
        out
    }

    /// A small float initializer of `dims` (`[]`: a scalar), named after `base`.
    fn constant(&mut self, base: &str, dims: &[usize], values: Vec<f32>) -> String {
        let name = self.fresh(base);
        self.graph.initializer.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            float_data: values,
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    /// The graph input: flat `[N, C·H·W]`, or `[N, C, H, W]` and a `Flatten`.
    fn input(&mut self, name: &str, shape: &[usize], keep: bool) -> String {
        let flat = shape.iter().product::<usize>();
        let dims = if keep { shape.to_vec() } else { vec![flat] };
        self.graph.input.push(value_info(name, &dims));
        if keep {
            self.node("Flatten", "Flatten_input", vec![name.into()], vec![int_attr("axis", 1)])
        } else {
            name.into()
        }
    }

    /// Node `i` of the graph record on the flat values `ins` (of sample shapes `in_shapes`): the flat
    /// values of its outputs.
    fn step(
        &mut self,
        model: &Model,
        i: usize,
        n: &NetNode,
        ins: &[String],
        in_shapes: &[&[usize]],
    ) -> Result<Vec<String>, OnnxError> {
        match &n.role {
            Role::Block => {
                let (rows, cols) = (numel(&n.output_shapes[0]), numel(in_shapes[0]));
                Ok(vec![self.affine(&ins[0], Source::Block(i), &n.name, &n.op, rows, cols)])
            }
            Role::Junction(j) => self.junction(i, n, j, ins, in_shapes),
            Role::Nonlinearity(f) => self.nonlinearity(model, i, n, f, ins, in_shapes).map(|v| vec![v]),
            _ => Err(OnnxError::unsupported(&n.name, &n.op, "lowering does not know this node's role")),
        }
    }

    /// One affine block on `x`: its node(s) and the initializers to stream.
    fn affine(&mut self, x: &str, source: Source, name: &str, op: &str, rows: usize, cols: usize) -> String {
        let k = self.sources.len();
        self.sources.push(source);
        let base = if name.is_empty() { format!("block{k}") } else { name.to_string() };
        let w = self.fresh(&format!("{base}.weight"));
        let b = self.fresh(&format!("{base}.bias"));
        let bias = Streamed { source: k, name: b.clone(), dims: vec![rows as i64], part: Part::Bias };
        let (y, node) = match self.form {
            Form::Gemm => {
                let attrs = vec![
                    float_attr("alpha", 1.0),
                    float_attr("beta", 1.0),
                    int_attr("transA", 0),
                    int_attr("transB", 1),
                ];
                let y = self.node("Gemm", &base, vec![x.into(), w.clone(), b], attrs);
                let weight = Streamed { source: k, name: w, dims: vec![rows as i64, cols as i64], part: Part::Matrix };
                self.streamed.extend([weight, bias]);
                (y, self.graph.node.len() - 1)
            }
            Form::MatMul => {
                let m = self.node("MatMul", &base, vec![x.into(), w.clone()], vec![]);
                let at = self.graph.node.len() - 1;
                let y = self.node("Add", &format!("{base}/bias"), vec![m, b], vec![]);
                let weight =
                    Streamed { source: k, name: w, dims: vec![cols as i64, rows as i64], part: Part::Transposed };
                self.streamed.extend([weight, bias]);
                (y, at)
            }
        };
        self.blocks.push(LoweredBlock {
            name: self.graph.node[node].name.clone(),
            op: op.into(),
            rows,
            cols,
            bytes: (rows as u64).saturating_mul(cols as u64).saturating_add(rows as u64).saturating_mul(4),
        });
        y
    }

    /// A 0/1 selection on `x` (`cols` values): output `r` is `x[index[r]]`, written as an affine block
    /// standing for graph node `i`.
    fn select(&mut self, x: &str, i: usize, name: &str, op: &str, index: &[usize], cols: usize) -> String {
        let rows: Vec<Vec<(usize, f64)>> = index.iter().map(|&c| vec![(c, 1.0)]).collect();
        self.built(x, i, name, op, &rows, cols)
    }

    /// A matrix made here (`rows`: each row's sparse entries; no bias) on `x` (`cols` values), written
    /// as an affine block standing for graph node `i`.
    fn built(&mut self, x: &str, i: usize, name: &str, op: &str, rows: &[Vec<(usize, f64)>], cols: usize) -> String {
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        let (mut indices, mut data) = (Vec::new(), Vec::new());
        indptr.push(0);
        for row in rows {
            let mut row = row.clone();
            row.sort_by_key(|&(c, _)| c);
            for (c, v) in row {
                if indices.len() > indptr[indptr.len() - 1] && indices.last() == Some(&(c as u32)) {
                    *data.last_mut().expect("an entry") += v;
                } else {
                    indices.push(c as u32);
                    data.push(v);
                }
            }
            indptr.push(indices.len());
        }
        let matrix = Csr::new((rows.len(), cols), indptr, indices, data);
        let source = Source::Built { node: i, matrix: Some(Box::new(matrix)), bias: vec![0.0; rows.len()] };
        self.affine(x, source, name, op, rows.len(), cols)
    }

    /// A max pool as `Gemm` + `Relu` layers ([`MaxPoolForm::Relu`]): per level, the windows' values
    /// paired, each pair `(a, b)` giving the rows `a - b`, `b`, `-b` (an unpaired `a`: `a`, `-a`) of a
    /// block and a `Relu`, so `max(a, b) = relu(a - b) + relu(b) - relu(-b)` (and `a = relu(a) -
    /// relu(-a)`) is a linear form of the next level; a last block writes the maxima.
    fn max_pool_relu(
        &mut self,
        i: usize,
        n: &NetNode,
        f: &Nonlinearity,
        x: &str,
        s: &[usize],
    ) -> Result<String, OnnxError> {
        type Lin = Vec<(usize, f64)>;
        let windows = windows(f, s).ok_or_else(|| {
            OnnxError::unsupported(
                &n.name,
                &n.op,
                "a window holds no input element (padding only); write it with --max-pool keep",
            )
        })?;
        let scaled = |a: &Lin, k: f64| -> Lin { a.iter().map(|&(c, v)| (c, v * k)).collect() };
        let mut terms: Vec<Vec<Lin>> = windows.iter().map(|w| w.iter().map(|&j| vec![(j, 1.0)]).collect()).collect();
        let (mut x, mut cols, mut level) = (x.to_string(), numel(s), 0);
        while terms.iter().any(|t| t.len() > 1) {
            let mut rows: Vec<Lin> = Vec::new();
            for t in &mut terms {
                let mut next = Vec::with_capacity(t.len().div_ceil(2));
                for pair in t.chunks(2) {
                    let r = rows.len();
                    match pair {
                        [a, b] => {
                            rows.push(a.iter().copied().chain(scaled(b, -1.0)).collect());
                            rows.extend([b.clone(), scaled(b, -1.0)]);
                            next.push(vec![(r, 1.0), (r + 1, 1.0), (r + 2, -1.0)]);
                        }
                        [a, ..] => {
                            rows.extend([a.clone(), scaled(a, -1.0)]);
                            next.push(vec![(r, 1.0), (r + 1, -1.0)]);
                        }
                        [] => {}
                    }
                }
                *t = next;
            }
            let y = self.built(&x, i, &format!("{}/max{level}", n.name), &n.op, &rows, cols);
            x = self.node("Relu", &format!("{}/relu{level}", n.name), vec![y], vec![]);
            cols = rows.len();
            level += 1;
        }
        let rows: Vec<Lin> = terms.into_iter().map(|mut t| t.pop().unwrap_or_default()).collect();
        Ok(self.built(&x, i, &format!("{}/max", n.name), &n.op, &rows, cols))
    }

    /// A junction on flat values.
    fn junction(
        &mut self,
        i: usize,
        n: &NetNode,
        j: &Junction,
        ins: &[String],
        in_shapes: &[&[usize]],
    ) -> Result<Vec<String>, OnnxError> {
        Ok(match j {
            Junction::Reshape => vec![ins[0].clone()],
            Junction::Add | Junction::Sub => {
                let operands = self.broadcast(i, n, ins, in_shapes)?;
                vec![self.node(j.name(), &n.name, operands, vec![])]
            }
            Junction::Concat { axis: 1 } => vec![self.node("Concat", &n.name, ins.to_vec(), vec![int_attr("axis", 1)])],
            Junction::Concat { .. } => {
                let cat = self.node("Concat", &format!("{}/flat", n.name), ins.to_vec(), vec![int_attr("axis", 1)]);
                let offsets: Vec<usize> = in_shapes
                    .iter()
                    .scan(0, |acc, s| {
                        let at = *acc;
                        *acc += numel(s);
                        Some(at)
                    })
                    .collect();
                let cols = in_shapes.iter().map(|s| numel(s)).sum();
                let map = index_maps(n, &n.role, in_shapes)?;
                let index: Vec<usize> = map[0].iter().map(|&(k, e)| offsets[k] + e).collect();
                vec![self.select(&cat, i, &n.name, &n.op, &index, cols)]
            }
            Junction::Split { .. } | Junction::Slice { .. } | Junction::Transpose { .. } => {
                let cols = numel(in_shapes[0]);
                let maps = index_maps(n, &n.role, in_shapes)?;
                let mut outs = Vec::with_capacity(maps.len());
                for (o, map) in maps.iter().enumerate() {
                    let index: Vec<usize> = map.iter().map(|&(_, e)| e).collect();
                    let name = if maps.len() > 1 { format!("{}/{o}", n.name) } else { n.name.clone() };
                    outs.push(self.select(&ins[0], i, &name, &n.op, &index, cols));
                }
                outs
            }
            _ => return Err(OnnxError::unsupported(&n.name, &n.op, "lowering does not write this junction")),
        })
    }

    /// The two operands of an elementwise binary node as flat values of its output's size: an operand
    /// of another shape is broadcast by a selection block.
    fn broadcast(
        &mut self,
        i: usize,
        n: &NetNode,
        ins: &[String],
        in_shapes: &[&[usize]],
    ) -> Result<Vec<String>, OnnxError> {
        let out = &n.output_shapes[0];
        if in_shapes.iter().all(|s| *s == out.as_slice()) {
            return Ok(ins.to_vec());
        }
        let mut operands = Vec::with_capacity(2);
        for (k, (x, s)) in ins.iter().zip(in_shapes).enumerate() {
            if *s == out.as_slice() {
                operands.push(x.clone());
                continue;
            }
            let index = reads(n, &Role::Junction(Junction::Add), in_shapes, k)?.swap_remove(0);
            let index = index.into_iter().collect::<Option<Vec<usize>>>().ok_or_else(|| {
                OnnxError::shape(&n.name, &n.op, "a broadcast element reads no operand (a bug: please report it)")
            })?;
            operands.push(self.select(x, i, &format!("{}/broadcast{k}", n.name), &n.op, &index, numel(s)));
        }
        Ok(operands)
    }

    /// A nonlinearity on `x`, as the op it was, its operands written explicitly: on the flat vector
    /// when elementwise (or a Softmax over the whole sample), otherwise between a `Reshape` to its
    /// input shape and a `Flatten`.
    fn nonlinearity(
        &mut self,
        model: &Model,
        i: usize,
        n: &NetNode,
        f: &Nonlinearity,
        ins: &[String],
        in_shapes: &[&[usize]],
    ) -> Result<String, OnnxError> {
        let x = ins[0].clone();
        let s = in_shapes[0];
        let name = n.name.as_str();
        let op = f.name();
        Ok(match f {
            Nonlinearity::Relu
            | Nonlinearity::Sigmoid
            | Nonlinearity::Tanh
            | Nonlinearity::Softplus
            | Nonlinearity::Softsign
            | Nonlinearity::Erf
            | Nonlinearity::Abs
            | Nonlinearity::Exp
            | Nonlinearity::Sqrt
            | Nonlinearity::Reciprocal
            | Nonlinearity::HardSwish => self.node(op, name, vec![x], vec![]),
            Nonlinearity::LeakyRelu { alpha } | Nonlinearity::Elu { alpha } => {
                self.node(op, name, vec![x], vec![float_attr("alpha", *alpha as f32)])
            }
            Nonlinearity::HardSigmoid { alpha, beta } => {
                self.node(op, name, vec![x], vec![float_attr("alpha", *alpha as f32), float_attr("beta", *beta as f32)])
            }
            Nonlinearity::Gelu { tanh } => {
                let approximate = if *tanh { "tanh" } else { "none" };
                self.node(op, name, vec![x], vec![string_attr("approximate", approximate)])
            }
            Nonlinearity::PRelu { .. } => {
                // every element's slope, from convmat-net's own PRelu on -1s: PRelu(-1) = -slope
                let negative = evaluate(n, f, in_shapes, -1.0)?;
                let slope =
                    self.constant(&format!("{name}.slope"), &[numel(s)], negative.iter().map(|v| -v as f32).collect());
                self.node(op, name, vec![x, slope], vec![])
            }
            Nonlinearity::Clip { min, max } => {
                let mut inputs = vec![x];
                for (bound, key) in [(min, "min"), (max, "max")] {
                    inputs.push(match bound {
                        Some(v) => self.constant(&format!("{name}.{key}"), &[], vec![*v as f32]),
                        None => String::new(),
                    });
                }
                while inputs.last().is_some_and(String::is_empty) {
                    inputs.pop();
                }
                self.node(op, name, inputs, vec![])
            }
            Nonlinearity::Pow { exponent } => {
                let e = self.constant(&format!("{name}.exponent"), &[], vec![*exponent as f32]);
                self.node(op, name, vec![x, e], vec![])
            }
            Nonlinearity::MaxPool { .. } | Nonlinearity::GlobalMaxPool if self.max_pool == MaxPoolForm::Relu => {
                self.max_pool_relu(i, n, f, &x, s)?
            }
            Nonlinearity::MaxPool { .. } | Nonlinearity::GlobalMaxPool => {
                let p = &model.graph.node[model.node_index(name)?];
                self.reshaped(op, name, &x, s, vec![], p.attribute.clone())
            }
            Nonlinearity::Softmax { axis, coerce } | Nonlinearity::LogSoftmax { axis, coerce } => {
                if s.len() <= 1 || (*coerce && *axis == 1) {
                    self.node(op, name, vec![x], vec![int_attr("axis", 1)])
                } else if *coerce {
                    return Err(OnnxError::unsupported(
                        name,
                        op,
                        "a Softmax before opset 13 over part of the sample (axis > 1) is not written by lowering",
                    ));
                } else {
                    self.reshaped(op, name, &x, s, vec![], vec![int_attr("axis", *axis as i64)])
                }
            }
            Nonlinearity::LayerNorm { axis, epsilon, scale, bias } => {
                let norm = &s[axis - 1..];
                let sc = self.constant(&format!("{name}.scale"), norm, scale.iter().map(|&v| v as f32).collect());
                let b = self.constant(&format!("{name}.bias"), norm, bias.iter().map(|&v| v as f32).collect());
                let attrs = vec![int_attr("axis", *axis as i64), float_attr("epsilon", *epsilon as f32)];
                self.reshaped(op, name, &x, s, vec![sc, b], attrs)
            }
            Nonlinearity::Mul | Nonlinearity::Div => {
                let operands = self.broadcast(i, n, ins, in_shapes)?;
                self.node(op, name, operands, vec![])
            }
            _ => return Err(OnnxError::unsupported(name, &n.op, "lowering does not write this nonlinearity")),
        })
    }

    /// `op` on `x` reshaped to `[-1, *shape]`, flattened after.
    fn reshaped(
        &mut self,
        op: &str,
        name: &str,
        x: &str,
        shape: &[usize],
        operands: Vec<String>,
        attrs: Vec<AttributeProto>,
    ) -> String {
        let mut target = vec![-1i64];
        target.extend(shape.iter().map(|&d| d as i64));
        let shape_name = self.fresh(&format!("{name}/shape"));
        self.graph.initializer.push(TensorProto {
            dims: vec![target.len() as i64],
            data_type: data_type::INT64,
            int64_data: target,
            name: shape_name.clone(),
            ..Default::default()
        });
        let r = self.node("Reshape", &format!("{name}/Reshape"), vec![x.into(), shape_name], vec![]);
        let mut inputs = vec![r];
        inputs.extend(operands);
        let y = self.node(op, name, inputs, attrs);
        self.node("Flatten", &format!("{name}/Flatten"), vec![y], vec![int_attr("axis", 1)])
    }

    /// The graph with its outputs `(name, value, length)`: the node writing each value renamed to the
    /// original output's name (an `Identity` where a value is the input or another output), declared
    /// `[N, length]`.
    #[allow(clippy::type_complexity)]
    fn finish(
        mut self,
        outputs: Vec<(String, String, usize)>,
    ) -> (GraphProto, Vec<Source>, Vec<Streamed>, Vec<LoweredBlock>) {
        // value -> the output name it took
        let mut renamed: HashMap<String, String> = HashMap::new();
        for (name, value, len) in outputs {
            let taken = name.is_empty() || name == self.input || self.graph.output.iter().any(|o| o.name == name);
            let name = if taken { self.fresh("output") } else { name };
            let written = self.graph.node.iter().any(|n| n.output.contains(&value));
            match renamed.get(&value) {
                None if written => {
                    for n in &mut self.graph.node {
                        for v in n.input.iter_mut().chain(n.output.iter_mut()) {
                            if *v == value {
                                *v = name.clone();
                            }
                        }
                    }
                    renamed.insert(value, name.clone());
                }
                source => {
                    let source = source.cloned().unwrap_or(value);
                    let node = self.fresh(&format!("{name}/Identity"));
                    self.graph.node.push(NodeProto {
                        input: vec![source],
                        output: vec![name.clone()],
                        name: node,
                        op_type: "Identity".into(),
                        ..Default::default()
                    });
                }
            }
            self.graph.output.push(value_info(&name, &[len]));
        }
        (self.graph, self.sources, self.streamed, self.blocks)
    }
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// The input elements (flat, row-major `C, *spatial`) of each window of a max pool on `s`, outputs
/// in row-major order; `None` when a window holds none.
fn windows(f: &Nonlinearity, s: &[usize]) -> Option<Vec<Vec<usize>>> {
    let (channels, spatial) = (s.first().copied().unwrap_or(1), s.get(1..).unwrap_or_default());
    let plane = numel(spatial);
    let mut out = Vec::new();
    match f {
        Nonlinearity::GlobalMaxPool => {
            out.extend((0..channels).map(|c| (c * plane..(c + 1) * plane).collect::<Vec<_>>()));
        }
        Nonlinearity::MaxPool { kernel, strides, dilations, pads_begin, output } => {
            let unravel = |mut flat: usize, dims: &[usize]| -> Vec<usize> {
                let mut idx = vec![0; dims.len()];
                for d in (0..dims.len()).rev() {
                    idx[d] = flat % dims[d];
                    flat /= dims[d];
                }
                idx
            };
            for c in 0..channels {
                for o in 0..numel(output) {
                    let at = unravel(o, output);
                    let mut window = Vec::new();
                    for k in 0..numel(kernel) {
                        let tap = unravel(k, kernel);
                        let mut flat = 0usize;
                        let mut inside = true;
                        for d in 0..spatial.len() {
                            let i = (at[d] * strides[d] + tap[d] * dilations[d]) as i64 - pads_begin[d] as i64;
                            inside &= i >= 0 && (i as usize) < spatial[d];
                            flat = flat * spatial[d] + i.max(0) as usize;
                        }
                        if inside {
                            window.push(c * plane + flat);
                        }
                    }
                    out.push(window);
                }
            }
        }
        _ => return None,
    }
    out.iter().all(|w| !w.is_empty()).then_some(out)
}

/// A block source for one-node graphs of junctions and nonlinearities, which build none.
struct NoBlocks;

impl BlockSource for NoBlocks {
    fn block(&self, _: usize, n: &NetNode) -> Result<BlockMap, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("node '{}' is not a block", n.name).into())
    }
}

/// `n` alone, with `role`, as a graph of inputs `in0, in1, ...` of sample shapes `in_shapes`, run in
/// f64 on one sample of each input (`fill(k)`); its outputs.
fn run_alone(
    n: &NetNode,
    role: &Role,
    in_shapes: &[&[usize]],
    fill: impl Fn(usize, usize) -> Vec<f64>,
) -> Result<Vec<Vec<f64>>, OnnxError> {
    let inputs: Vec<Port> =
        in_shapes.iter().enumerate().map(|(k, s)| Port { name: format!("in{k}"), shape: s.to_vec() }).collect();
    let outputs: Vec<String> = (0..n.output_shapes.len()).map(|o| format!("out{o}")).collect();
    let node = NetNode {
        name: n.name.clone(),
        op: n.op.clone(),
        role: role.clone(),
        inputs: inputs.iter().map(|p| p.name.clone()).collect(),
        outputs: outputs.clone(),
        output_shapes: n.output_shapes.clone(),
        folded: Vec::new(),
        params: Default::default(),
    };
    let tensors = in_shapes
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let mut shape = vec![1];
            shape.extend_from_slice(s);
            Tensor::new(shape, fill(k, numel(s)))
        })
        .collect();
    let graph = Graph { inputs, nodes: vec![node], outputs };
    let run = graph.run(&NoBlocks, tensors, false).map_err(graph_error)?;
    Ok(run.outputs.into_iter().map(|t| t.data).collect())
}

/// Which element of input `k` each output element of `n` (evaluated as `role`) reads, per output
/// tensor, read off convmat-net's evaluation on input `k` holding its indices (plus one, exact in f64)
/// and the other inputs zeros.
fn reads(n: &NetNode, role: &Role, in_shapes: &[&[usize]], k: usize) -> Result<Vec<Vec<Option<usize>>>, OnnxError> {
    let outs =
        run_alone(
            n,
            role,
            in_shapes,
            |j, len| {
                if j == k {
                    (1..=len).map(|v| v as f64).collect()
                } else {
                    vec![0.0; len]
                }
            },
        )?;
    Ok(outs.iter().map(|out| out.iter().map(|&v| (v > 0.0).then(|| v as usize - 1)).collect()).collect())
}

/// Which input element each output element of a rearranging node reads, `(input, flat index)` per
/// output tensor.
fn index_maps(n: &NetNode, role: &Role, in_shapes: &[&[usize]]) -> Result<Vec<Vec<(usize, usize)>>, OnnxError> {
    let mut maps: Vec<Vec<Option<(usize, usize)>>> = n.output_shapes.iter().map(|s| vec![None; numel(s)]).collect();
    for k in 0..in_shapes.len() {
        for (map, read) in maps.iter_mut().zip(reads(n, role, in_shapes, k)?) {
            for (m, r) in map.iter_mut().zip(read) {
                if m.is_none() {
                    *m = r.map(|e| (k, e));
                }
            }
        }
    }
    maps.into_iter()
        .map(|map| {
            map.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| {
                OnnxError::shape(&n.name, &n.op, "an output element reads no input (a bug: please report it)")
            })
        })
        .collect()
}

/// A nonlinearity's output on inputs all equal to `value`.
fn evaluate(n: &NetNode, f: &Nonlinearity, in_shapes: &[&[usize]], value: f64) -> Result<Vec<f64>, OnnxError> {
    let outs = run_alone(n, &Role::Nonlinearity(f.clone()), in_shapes, |_, len| vec![value; len])?;
    Ok(outs.into_iter().next().unwrap_or_default())
}

/// A float tensor value `[N, *dims]`, `N` dynamic.
fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let mut dim = vec![Dimension { value: Some(DimValue::DimParam("N".into())) }];
    dim.extend(dims.iter().map(|&d| Dimension { value: Some(DimValue::DimValue(d as i64)) }));
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor { elem_type: data_type::FLOAT, shape: Some(TensorShapeProto { dim }) }),
        }),
    }
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: at::INT, i, ..Default::default() }
}

fn string_attr(name: &str, s: &str) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: at::STRING, s: s.as_bytes().to_vec(), ..Default::default() }
}

fn float_attr(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: at::FLOAT, f, ..Default::default() }
}
