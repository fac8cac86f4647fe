//! Lowering a model to the ONNX that MILP encoders and verifiers read: every affine block (BatchNorm,
//! Pad and constant Add / Mul folded) written as one dense `Gemm` (or `MatMul` + `Add`), the
//! nonlinearities between blocks kept as the ONNX ops they were, the graph input flat.
//!
//! The plan ([`Model::lower`]) is checked and sized before any matrix is built; [`Lowered::write`]
//! then streams the protobuf: the small messages first (nodes, inputs, outputs), then each block's
//! weights as `raw_data`, built one block at a time and written row by row, so memory holds one
//! block's sparse matrix and a few MiB of dense rows whatever the model's size.
//!
//! The graph is built by [`GraphBuilder`], one method per kind of step (an affine block, a
//! nonlinearity); a junction of two paths (a residual `Add`, a channel `Concat`) becomes one more
//! method writing `Add` / `Concat(axis=1)` of the flat vectors it joins.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;
use serde::Serialize;

use crate::blocks::{Activation, AffineLayer, AffineLayers, BlockOptions, Csr};
use crate::node::Node;
use crate::proto::{
    attribute_type as at, data_type, AttributeProto, DimValue, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use crate::{Model, OnnxError};

/// The opset a lowered model imports at least (Softmax's per-axis semantics; every op written here
/// exists there).
const MIN_OPSET: i64 = 13;
/// The IR version of opset 13 (ONNX 1.8).
const IR_VERSION: i64 = 7;
/// Protobuf messages stop at 2 GiB: `onnx.load` and onnxruntime refuse larger files without external
/// data, which the verifiers' readers do not follow.
const MAX_FILE: u64 = (1 << 31) - 1;
/// Ops applied elementwise: written on the flat vector as they were.
const ELEMENTWISE: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "Tanh",
    "Softplus",
    "Softsign",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Mish",
    "HardSwish",
    "ThresholdedRelu",
    "Abs",
    "Sign",
    "Exp",
    "Log",
    "Sqrt",
    "Erf",
    "Round",
    "Floor",
    "Ceil",
];

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
    layers: AffineLayers<'m>,
    /// The graph without the block weights and biases.
    graph: GraphProto,
    /// The initializers streamed from blocks, in file order.
    streamed: Vec<Streamed>,
    blocks: Vec<LoweredBlock>,
    form: Form,
    opset: i64,
    /// Bytes of the file.
    bytes: u64,
}

/// An initializer whose bytes come from a block.
#[derive(Clone, Debug)]
struct Streamed {
    /// Index of the block in [`AffineLayers`] order.
    layer: usize,
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

impl Model {
    /// Plans this model's lowering to the ONNX verifiers read (see the module docs): checks every node
    /// and sizes every block before building any, refusing dense weights over the limit.
    ///
    /// # Errors
    /// As [`affine_layers`](Self::affine_layers); a nonlinearity this writer cannot carry (named); dense
    /// weights over [`LowerOptions::max_dense_bytes`] or the memory available (naming the largest block
    /// and its size); a file over protobuf's 2 GiB.
    pub fn lower(&self, options: &LowerOptions) -> Result<Lowered<'_>, OnnxError> {
        let input_shape = options.input_shape.as_deref();
        let layers = self.affine_layers(input_shape, &BlockOptions::default())?;
        let outlines = layers.outlines();
        let summary = self.summary(input_shape)?;
        let input = summary.inputs.first().ok_or_else(|| OnnxError::Format {
            path: self.path().into(),
            reason: "the graph has no input to lower".into(),
        })?;
        if outlines.is_empty() {
            return Err(OnnxError::unsupported(
                &input.name,
                "input",
                "the model has no affine block and no nonlinearity: nothing to lower",
            ));
        }
        let opset = self.opset().max(MIN_OPSET);
        let output_name = self.graph.output.first().map(|o| o.name.clone()).filter(|n| !n.is_empty());

        let mut b = GraphBuilder::new(&input.name, output_name.as_deref());
        let mut x = b.input(&input.name, &input.shape, options.keep_input_shape);
        let mut blocks = Vec::new();
        let mut streamed = Vec::new();
        for (k, layer) in outlines.iter().enumerate() {
            if layer.op != "Identity" {
                let (y, s) = b.affine(&x, k, layer, options.form);
                x = y;
                streamed.extend(s);
                let (rows, cols) = dims(layer);
                blocks.push(LoweredBlock {
                    name: layer.name.clone(),
                    op: layer.op.clone(),
                    rows,
                    cols,
                    bytes: (rows as u64).saturating_mul(cols as u64).saturating_add(rows as u64).saturating_mul(4),
                });
            }
            for act in &layer.activations {
                x = b.activation(self, &x, act)?;
            }
        }
        let out_len = outlines.last().map(|l| l.output_shape.iter().product()).unwrap_or(0);
        let graph = b.finish(x, out_len);
        check_size(&blocks, options.max_dense_bytes.or_else(convmat_matrix::available_memory))?;
        let mut lowered = Lowered { model: self, layers, graph, streamed, blocks, form: options.form, opset, bytes: 0 };
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

fn dims(layer: &AffineLayer) -> (usize, usize) {
    (layer.output_shape.iter().product(), layer.input_shape.iter().product())
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
        let mut layer: Option<(usize, AffineLayer)> = None;
        let mut buf = Vec::new();
        for s in &streamed {
            while layer.as_ref().is_none_or(|(k, _)| *k != s.layer) {
                let k = layer.as_ref().map_or(0, |(k, _)| k + 1);
                let next = self.layers.next().expect("planned blocks exist")?;
                layer = Some((k, next));
            }
            let (_, l) = layer.as_ref().expect("set above");
            check_built(l, &s.dims, s.part)?;
            let mut t = Vec::new();
            encode_key(5, WireType::LengthDelimited, &mut t);
            encode_varint(s.encoded_len(), &mut t);
            s.header().encode(&mut t).expect("a Vec grows");
            encode_key(9, WireType::LengthDelimited, &mut t);
            encode_varint(s.raw_len(), &mut t);
            w.write_all(&t).map_err(&io)?;
            match s.part {
                Part::Bias => {
                    let bytes: Vec<u8> = l.bias.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect();
                    w.write_all(&bytes).map_err(&io)?;
                }
                Part::Matrix => write_dense(w, &l.matrix, &mut buf).map_err(&io)?,
                Part::Transposed => {
                    let csc: Csr = l.matrix.to_other_storage();
                    write_dense(w, &csc, &mut buf).map_err(&io)?;
                }
            }
        }
        Ok(())
    }
}

/// Checks that a built block has the shape its outline promised.
fn check_built(l: &AffineLayer, dims: &[i64], part: Part) -> Result<(), OnnxError> {
    let (r, c) = l.matrix.shape();
    let want: Vec<i64> = match part {
        Part::Matrix => vec![r as i64, c as i64],
        Part::Transposed => vec![c as i64, r as i64],
        Part::Bias => vec![l.bias.len() as i64],
    };
    if want != dims {
        return Err(OnnxError::shape(
            &l.name,
            &l.op,
            format!("the block built is {r} x {c} with {} biases, its outline said {dims:?}", l.bias.len()),
        ));
    }
    Ok(())
}

/// Writes a compressed matrix's outer dimension by outer dimension as dense little-endian f32 rows
/// (rows of a CSR, columns of a CSC), a few MiB at a time.
fn write_dense(w: &mut impl Write, m: &Csr, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let inner = m.inner_dims();
    let row_bytes = inner * 4;
    let per_chunk = ((4 << 20) / row_bytes.max(1)).max(1);
    let indptr = m.indptr();
    let indptr = indptr.raw_storage();
    let (indices, data) = (m.indices(), m.data());
    let outer = m.outer_dims();
    let mut start = 0;
    while start < outer {
        let end = (start + per_chunk).min(outer);
        buf.clear();
        buf.resize((end - start) * row_bytes, 0);
        for r in start..end {
            let row = &mut buf[(r - start) * row_bytes..(r - start + 1) * row_bytes];
            for k in indptr[r]..indptr[r + 1] {
                let c = indices[k] as usize * 4;
                row[c..c + 4].copy_from_slice(&(data[k] as f32).to_le_bytes());
            }
        }
        w.write_all(buf)?;
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
/// initializers (reshape targets) kept, the block weights left to the stream.
///
/// Every value is a flat `[N, n]` float tensor between steps. A graph with junctions adds one method
/// per junction: `add(a, b)` writing `Add(a, b)` and `concat(values)` writing `Concat(axis = 1)`, which
/// is the channel concatenation of the row-major (NCHW) samples.
pub(crate) struct GraphBuilder {
    used: HashSet<String>,
    graph: GraphProto,
    /// The name the final value takes (the original graph output's), reserved.
    output: String,
}

impl GraphBuilder {
    fn new(input: &str, output: Option<&str>) -> Self {
        let mut used = HashSet::new();
        used.insert(input.to_string());
        let output = output.filter(|o| *o != input).unwrap_or("output").to_string();
        used.insert(output.clone());
        Self { used, graph: GraphProto { name: "convmat_lowered".into(), ..Default::default() }, output }
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

    /// One affine block on `x`: its node(s) and the initializers to stream.
    fn affine(&mut self, x: &str, k: usize, layer: &AffineLayer, form: Form) -> (String, Vec<Streamed>) {
        let (rows, cols) = dims(layer);
        let base = if layer.name.is_empty() { format!("block{k}") } else { layer.name.clone() };
        let w = self.fresh(&format!("{base}.weight"));
        let b = self.fresh(&format!("{base}.bias"));
        let bias = Streamed { layer: k, name: b.clone(), dims: vec![rows as i64], part: Part::Bias };
        match form {
            Form::Gemm => {
                let attrs = vec![
                    float_attr("alpha", 1.0),
                    float_attr("beta", 1.0),
                    int_attr("transA", 0),
                    int_attr("transB", 1),
                ];
                let y = self.node("Gemm", &base, vec![x.into(), w.clone(), b], attrs);
                let weight = Streamed { layer: k, name: w, dims: vec![rows as i64, cols as i64], part: Part::Matrix };
                (y, vec![weight, bias])
            }
            Form::MatMul => {
                let m = self.node("MatMul", &base, vec![x.into(), w.clone()], vec![]);
                let y = self.node("Add", &format!("{base}/bias"), vec![m, b], vec![]);
                let weight =
                    Streamed { layer: k, name: w, dims: vec![cols as i64, rows as i64], part: Part::Transposed };
                (y, vec![weight, bias])
            }
        }
    }

    /// A nonlinearity on `x`, as the op it was: on the flat vector when elementwise (or a Softmax over
    /// the whole sample), otherwise between a `Reshape` to its input shape and a `Flatten`.
    fn activation(&mut self, model: &Model, x: &str, act: &Activation) -> Result<String, OnnxError> {
        let i = model.node_index(&act.name)?;
        let p = &model.graph.node[i];
        let node = Node::new(p);
        if let Some(extra) = p.input.iter().skip(1).find(|s| !s.is_empty()) {
            return Err(OnnxError::unsupported(
                &act.name,
                &act.op,
                format!("lowering carries nonlinearities without operands; input '{extra}' (PRelu's slope, Clip's min or max) is not written yet"),
            ));
        }
        let attrs: Vec<AttributeProto> = p.attribute.clone();
        let softmax = matches!(act.op.as_str(), "Softmax" | "LogSoftmax");
        let rank = act.input_shape.len();
        let flat_ok = ELEMENTWISE.contains(&act.op.as_str())
            || (softmax && rank <= 1)
            // before opset 13 Softmax flattens from `axis` (default 1): over the whole sample
            || (softmax && model.opset() < 13 && node.int("axis").unwrap_or(1) == 1);
        if flat_ok {
            let attrs = if softmax { vec![int_attr("axis", 1)] } else { attrs };
            return Ok(self.node(&act.op, &act.name, vec![x.into()], attrs));
        }
        if softmax && model.opset() < 13 {
            return Err(OnnxError::unsupported(
                &act.name,
                &act.op,
                "a Softmax before opset 13 over part of the sample (axis > 1) is not written by lowering",
            ));
        }
        let mut target = vec![-1i64];
        target.extend(act.input_shape.iter().map(|&d| d as i64));
        let shape_name = self.fresh(&format!("{}/shape", act.name));
        self.graph.initializer.push(TensorProto {
            dims: vec![target.len() as i64],
            data_type: data_type::INT64,
            int64_data: target,
            name: shape_name.clone(),
            ..Default::default()
        });
        let r = self.node("Reshape", &format!("{}/Reshape", act.name), vec![x.into(), shape_name], vec![]);
        let y = self.node(&act.op, &act.name, vec![r], attrs);
        Ok(self.node("Flatten", &format!("{}/Flatten", act.name), vec![y], vec![int_attr("axis", 1)]))
    }

    /// The graph with `x` renamed to the reserved output name and declared `[N, len]`.
    fn finish(mut self, x: String, len: usize) -> GraphProto {
        let out = self.output.clone();
        if let Some(last) = self.graph.node.last_mut().filter(|n| n.output.first() == Some(&x)) {
            last.output[0] = out.clone();
        } else {
            // the input itself (a model whose only block was folded away): an Identity names it
            let name = self.fresh("Identity_output");
            self.graph.node.push(NodeProto {
                input: vec![x],
                output: vec![out.clone()],
                name,
                op_type: "Identity".into(),
                ..Default::default()
            });
        }
        self.graph.output.push(value_info(&out, &[len]));
        self.graph
    }
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

fn float_attr(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: at::FLOAT, f, ..Default::default() }
}
