//! Loading a model and walking its graph: shape inference through the supported ops, constant
//! folding, and each node's role (affine, identity, nonlinearity, folded constant, unsupported).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message;
use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use crate::fold::{self, broadcast, FOLDABLE};
use crate::layers::{ConvParts, PadParts, PoolParts};
use crate::node::Node;
use crate::proto::{DimValue, GraphProto, ModelProto};
use crate::tensor::{decode, Tensor};
use crate::OnnxError;

/// The most elements one input sample may have (2^40): shapes derived from it stay far from overflow.
const MAX_SAMPLE: usize = 1 << 40;

/// Ops read as a nonlinearity between affine blocks (named, never built).
pub const NONLINEARITIES: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Sigmoid",
    "HardSigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Softplus",
    "Softsign",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Mish",
    "HardSwish",
    "ThresholdedRelu",
    "Clip",
    "Abs",
    "Sign",
    "Exp",
    "Log",
    "Sqrt",
    "Erf",
    "Round",
    "Floor",
    "Ceil",
    "MaxPool",
    "GlobalMaxPool",
    "LpPool",
    "GlobalLpPool",
    "LRN",
    "LayerNormalization",
    "Pow",
    "Reciprocal",
];

/// Ops that are the identity on the flattened (row-major, NCHW) vector.
pub const IDENTITIES: &[&str] = &["Flatten", "Reshape", "Identity", "Dropout", "Squeeze", "Unsqueeze"];

/// Ops convmat turns into an affine map.
pub const AFFINE_OPS: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "BatchNormalization",
    "AveragePool",
    "GlobalAveragePool",
    "Pad",
    "ReduceMean",
];

/// What a node is to convmat.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeKind {
    /// An affine map convmat builds (Conv, Gemm, BatchNormalization, AveragePool, Pad, ...).
    Affine,
    /// The identity on the flattened vector (Flatten, Reshape, Identity, Dropout, Squeeze, Unsqueeze).
    Identity,
    /// A nonlinearity between affine blocks (Relu, MaxPool, Softmax, ...).
    Nonlinearity,
    /// Part of a constant subgraph, folded at load.
    Constant,
    /// An op convmat cannot represent here, with the reason.
    Unsupported(String),
}

impl NodeKind {
    /// The role as one word: `affine`, `identity`, `nonlinearity`, `constant`, `unsupported`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Affine => "affine",
            Self::Identity => "identity",
            Self::Nonlinearity => "nonlinearity",
            Self::Constant => "constant",
            Self::Unsupported(_) => "unsupported",
        }
    }
}

/// One node as `convmat onnx` lists it. Shapes are of one sample (the batch dimension dropped).
#[derive(Clone, Debug, Serialize)]
pub struct NodeInfo {
    /// The node's name (its first output's name when the model leaves it empty).
    pub name: String,
    /// The op type.
    pub op: String,
    /// The shape of the activation it reads, `None` for constants and unknown shapes.
    pub input_shape: Option<Vec<usize>>,
    /// The shape it produces.
    pub output_shape: Option<Vec<usize>>,
    /// Attributes and derived facts (weight shape, the PyTorch expression, the role, folding).
    pub params: Map<String, Json>,
    /// Whether convmat builds this node's matrix (alone or folded into a neighbour).
    pub affine: bool,
    /// The role.
    #[serde(skip)]
    pub kind: NodeKind,
}

/// A graph input (one that is not an initializer) with the per-sample shape used.
#[derive(Clone, Debug, Serialize)]
pub struct InputInfo {
    /// The input's name.
    pub name: String,
    /// The shape as declared, dynamic dimensions by their names.
    pub declared: Vec<String>,
    /// The shape of one sample used for inference (batch dimension dropped).
    pub shape: Vec<usize>,
}

/// Everything `convmat onnx` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The graph inputs.
    pub inputs: Vec<InputInfo>,
    /// Every node, in order.
    pub nodes: Vec<NodeInfo>,
}

/// An ONNX model read from a file: the graph and its initializers, not yet decoded.
#[derive(Debug)]
pub struct Model {
    path: PathBuf,
    dir: Option<PathBuf>,
    opset: i64,
    pub(crate) graph: GraphProto,
    pub(crate) init: HashMap<String, usize>,
}

impl Model {
    /// Reads a model file (protobuf), external data relative to its folder.
    ///
    /// # Errors
    /// A missing file; bytes that are not an ONNX model; an opset older than 7.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, OnnxError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Io { path: path.into(), source })?;
        let dir = path.parent().map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() });
        Self::from_bytes(&bytes, path, dir)
    }

    /// Reads a model from bytes; `path` names it in errors, `dir` holds its external data (if any).
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn from_bytes(bytes: &[u8], path: &Path, dir: Option<PathBuf>) -> Result<Self, OnnxError> {
        let fail = |reason: String| OnnxError::Format { path: path.into(), reason };
        let m = ModelProto::decode(bytes).map_err(|e| fail(format!("{e} (truncated or corrupt protobuf)")))?;
        let graph = m.graph.ok_or_else(|| fail("the file has no graph (is it an ONNX model?)".into()))?;
        if m.ir_version <= 0 {
            return Err(fail(format!("ir_version {} (an ONNX model has ir_version >= 1)", m.ir_version)));
        }
        let opset = m
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .unwrap_or(1);
        if opset < 7 {
            return Err(OnnxError::Opset { version: opset });
        }
        for t in graph.initializer.iter().filter(|t| t.data_location == crate::proto::DATA_LOCATION_EXTERNAL) {
            crate::tensor::check_external(t)?;
        }
        let init = graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Ok(Self { path: path.into(), dir, opset, graph, init })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The default-domain opset version.
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// Node names, in graph order.
    pub fn node_names(&self) -> Vec<&str> {
        self.graph.node.iter().map(|p| Node::new(p).name).collect()
    }

    /// Every node with op, shapes, parameters and role; `input_shape` (one sample: `C,H,W`) overrides
    /// the first graph input's shape and is needed only when it is dynamic.
    ///
    /// # Errors
    /// A dynamic input without `input_shape`; a missing value; a node whose shapes do not fit.
    pub fn summary(&self, input_shape: Option<&[usize]>) -> Result<Summary, OnnxError> {
        let a = Analysis::new(self, input_shape)?;
        Ok(Summary { inputs: a.inputs.clone(), nodes: a.infos })
    }

    pub(crate) fn decode_init(&self, i: usize) -> Result<Tensor, OnnxError> {
        decode(&self.graph.initializer[i], self.dir.as_deref())
    }

    /// Names of nodes close to `name` (shared prefix or small edit distance), for error messages.
    pub(crate) fn near_names(&self, name: &str) -> Vec<String> {
        let names = self.node_names();
        let mut scored: Vec<(usize, &str)> =
            names.iter().map(|n| (distance(&n.to_lowercase(), &name.to_lowercase()), *n)).collect();
        scored.sort();
        let limit = (name.chars().count() / 2).max(3);
        let mut near: Vec<String> =
            scored.iter().filter(|(d, _)| *d <= limit).take(8).map(|(_, n)| n.to_string()).collect();
        if near.is_empty() {
            near = names.iter().take(8).map(|n| n.to_string()).collect();
        }
        near
    }

    /// The index of the node called `name`.
    pub(crate) fn node_index(&self, name: &str) -> Result<usize, OnnxError> {
        self.graph
            .node
            .iter()
            .position(|p| Node::new(p).name == name)
            .ok_or_else(|| OnnxError::UnknownNode { name: name.into(), near: self.near_names(name) })
    }
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A value of the graph during the walk.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    /// A computed activation with its full shape (batch dimension 1 first).
    Act(Vec<usize>),
    /// Initializer `i`, not decoded yet.
    Init(usize),
    /// A folded constant.
    Const(Tensor),
    /// A value whose shape convmat could not infer (after an unsupported op).
    Unknown,
}

/// The walk over a model's graph on one input shape.
pub(crate) struct Analysis<'m> {
    pub model: &'m Model,
    pub inputs: Vec<InputInfo>,
    pub values: HashMap<String, Val>,
    pub infos: Vec<NodeInfo>,
    /// How many nodes (and graph outputs) read each value.
    pub consumers: HashMap<String, usize>,
    /// Node index -> index of the Pad node folded into it.
    pub pad_into: HashMap<usize, usize>,
    /// Per node: its parts, when it is a convolution-like node.
    pub convs: HashMap<usize, ConvParts>,
    /// Slices of activations with constant arguments (candidates for torch's circular padding).
    pub slices: HashMap<usize, fold::SliceArgs>,
    /// The last Concat of each recognized circular padding (torch's Slice + Concat) -> its parts.
    pub circular: HashMap<usize, Circular>,
    /// Split nodes: the full shape of each output.
    pub splits: HashMap<usize, Vec<Vec<usize>>>,
    /// ReduceMean nodes: the axes they average over (never the batch axis 0).
    pub reduce_axes: HashMap<usize, Vec<usize>>,
}

/// torch's export of `padding_mode='circular'`: per spatial axis, `Concat([x[.., -b:], x, x[.., :e]])`
/// (Slice nodes on the activation with constant arguments), read as one wrap padding.
#[derive(Clone, Debug)]
pub(crate) struct Circular {
    /// The value padded.
    pub input: String,
    /// The amounts, mode [`PaddingMode::Circular`](convmat_shape::PaddingMode::Circular).
    pub pad: PadParts,
    /// The Slice and inner Concat nodes that belong to it (graph order), not the last Concat.
    pub members: Vec<usize>,
}

impl<'m> Analysis<'m> {
    pub fn new(model: &'m Model, input_shape: Option<&[usize]>) -> Result<Self, OnnxError> {
        let g = &model.graph;
        let mut values = HashMap::new();
        for (name, &i) in &model.init {
            values.insert(name.clone(), Val::Init(i));
        }
        let mut inputs = Vec::new();
        for vi in g.input.iter().filter(|v| !model.init.contains_key(&v.name)) {
            // the declared dimensions: positive sizes known, symbolic ones (batch, ...) as written
            let declared_dims =
                vi.r#type.as_ref().and_then(|t| t.tensor_type.as_ref()).and_then(|t| t.shape.as_ref()).map(|s| &s.dim);
            let dims: Vec<Option<usize>> = declared_dims
                .into_iter()
                .flatten()
                .map(|d| match d.value {
                    Some(DimValue::DimValue(v)) if v > 0 => Some(v as usize),
                    _ => None,
                })
                .collect();
            let declared: Vec<String> = declared_dims
                .into_iter()
                .flatten()
                .map(|d| match &d.value {
                    Some(DimValue::DimValue(v)) => v.to_string(),
                    Some(DimValue::DimParam(p)) => p.clone(),
                    None => "?".into(),
                })
                .collect();
            let shown = format!("[{}]", declared.join(", "));
            let first = inputs.is_empty();
            let sample: Vec<usize> = match (input_shape.filter(|_| first), dims.len()) {
                (Some(given), r) => {
                    if r != 0 && r != given.len() + 1 {
                        return Err(OnnxError::InputShape {
                            input: vi.name.clone(),
                            declared: shown,
                            given: given.to_vec(),
                            what: format!(
                                "the input has {} dimensions after the batch one, the shape gives {}",
                                r.saturating_sub(1),
                                given.len()
                            ),
                        });
                    }
                    if let Some((d, s)) = dims.iter().skip(1).zip(given).find(|(d, s)| d.is_some_and(|d| d != **s)) {
                        return Err(OnnxError::InputShape {
                            input: vi.name.clone(),
                            declared: shown,
                            given: given.to_vec(),
                            what: format!("a static dimension is {} but the shape gives {s}", d.unwrap_or(0)),
                        });
                    }
                    given.to_vec()
                }
                (None, 0) => {
                    return Err(OnnxError::DynamicShape {
                        input: vi.name.clone(),
                        shape: "(none declared)".into(),
                        dims: crate::error::sample_dims(3),
                        example: vec![3, 32, 32],
                    })
                }
                (None, _) => {
                    let rest: Option<Vec<usize>> = dims[1..].iter().copied().collect();
                    match rest {
                        Some(r) => r,
                        None => {
                            return Err(OnnxError::DynamicShape {
                                input: vi.name.clone(),
                                shape: shown,
                                dims: crate::error::sample_dims(dims.len() - 1),
                                example: dims[1..].iter().map(|d| d.unwrap_or(32)).collect(),
                            });
                        }
                    }
                }
            };
            if crate::fold::checked_len(&sample).is_none_or(|n| n > MAX_SAMPLE) {
                return Err(OnnxError::InputShape {
                    input: vi.name.clone(),
                    declared: shown,
                    given: sample,
                    what: format!("one sample has more than {MAX_SAMPLE} elements"),
                });
            }
            let mut full = vec![1];
            full.extend_from_slice(&sample);
            values.insert(vi.name.clone(), Val::Act(full));
            inputs.push(InputInfo { name: vi.name.clone(), declared, shape: sample });
        }
        let mut consumers: HashMap<String, usize> = HashMap::new();
        for p in &g.node {
            for i in p.input.iter().filter(|s| !s.is_empty()) {
                *consumers.entry(i.clone()).or_default() += 1;
            }
        }
        for o in &g.output {
            *consumers.entry(o.name.clone()).or_default() += 1;
        }
        let mut a = Self {
            model,
            inputs,
            values,
            infos: Vec::with_capacity(g.node.len()),
            consumers,
            pad_into: HashMap::new(),
            convs: HashMap::new(),
            slices: HashMap::new(),
            circular: HashMap::new(),
            splits: HashMap::new(),
            reduce_axes: HashMap::new(),
        };
        let mut producer: HashMap<String, usize> = HashMap::new();
        for (i, p) in g.node.iter().enumerate() {
            let node = Node::new(p);
            for inp in p.input.iter().filter(|s| !s.is_empty()) {
                if !a.values.contains_key(inp) {
                    return Err(OnnxError::MissingValue {
                        node: node.name.into(),
                        op: node.op().into(),
                        input: inp.clone(),
                    });
                }
            }
            let info = a.visit(i, node, &producer)?;
            a.infos.push(info);
            for o in p.output.iter().filter(|s| !s.is_empty()) {
                producer.insert(o.clone(), i);
            }
        }
        Ok(a)
    }

    /// The full (batch-first) shape of an activation input, or `None`.
    pub fn act_shape(&self, name: &str) -> Option<&[usize]> {
        match self.values.get(name) {
            Some(Val::Act(s)) => Some(s),
            _ => None,
        }
    }

    /// The shape of a constant without decoding it.
    pub fn const_shape(&self, name: &str) -> Option<Vec<usize>> {
        match self.values.get(name)? {
            Val::Init(i) => self.model.graph.initializer[*i].dims.iter().map(|&d| usize::try_from(d).ok()).collect(),
            Val::Const(t) => Some(t.shape.clone()),
            _ => None,
        }
    }

    /// A constant's value (decoding an initializer), or `None` for a computed value.
    pub fn constant(&self, name: &str) -> Option<Result<Tensor, OnnxError>> {
        match self.values.get(name)? {
            Val::Init(i) => Some(self.model.decode_init(*i)),
            Val::Const(t) => Some(Ok(t.clone())),
            _ => None,
        }
    }

    /// Input `i` of `node` as a constant, with an error naming its role when it is computed or absent.
    pub fn const_input(&self, node: &Node<'_>, i: usize, role: &'static str) -> Result<Tensor, OnnxError> {
        let name = node
            .input(i)
            .ok_or_else(|| OnnxError::shape(node.name, node.op(), format!("input {i} ({role}) is missing")))?;
        self.constant(name).unwrap_or_else(|| {
            Err(OnnxError::NotConstant { node: node.name.into(), op: node.op().into(), input: name.into(), role })
        })
    }

    pub fn is_const(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Val::Init(_) | Val::Const(_)))
    }

    fn set_outputs(&mut self, node: &Node<'_>, v: Val) {
        for o in node.p.output.iter().filter(|s| !s.is_empty()) {
            self.values.insert(o.clone(), v.clone());
        }
    }

    fn visit(&mut self, i: usize, node: Node<'m>, producer: &HashMap<String, usize>) -> Result<NodeInfo, OnnxError> {
        let op = node.op();
        let mut info = NodeInfo {
            name: node.name.into(),
            op: op.into(),
            input_shape: None,
            output_shape: None,
            params: node.attributes_json(),
            affine: false,
            kind: NodeKind::Constant,
        };
        info.params.remove("value");
        let present: Vec<&str> = node.p.input.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        let acts: Vec<&str> = present.iter().copied().filter(|n| !self.is_const(n)).collect();
        let custom = !node.p.domain.is_empty()
            && node.p.domain != "ai.onnx"
            && !(node.p.domain == "com.microsoft" && crate::quant::CONTRIB_OPS.contains(&op));
        if !custom
            && (op == "Constant" || (acts.is_empty() && FOLDABLE.contains(&op)) || (op == "Shape" && !acts.is_empty()))
        {
            let t = if op == "Shape" && !acts.is_empty() {
                match self.values.get(acts[0]) {
                    Some(Val::Act(s)) => fold::shape_of(&node, s),
                    _ => {
                        self.set_outputs(&node, Val::Unknown);
                        info.kind = NodeKind::Unsupported("the shape of its input is unknown".into());
                        return Ok(self.finish(info));
                    }
                }
            } else {
                let tensors: Vec<Option<Tensor>> = node
                    .p
                    .input
                    .iter()
                    .map(|n| if n.is_empty() { Ok(None) } else { self.constant(n).transpose() })
                    .collect::<Result<_, _>>()?;
                let refs: Vec<Option<&Tensor>> = tensors.iter().map(Option::as_ref).collect();
                fold::fold(&node, &refs, self.model.opset)?
            };
            info.output_shape = Some(t.shape.clone());
            self.set_outputs(&node, Val::Const(t));
            return Ok(self.finish(info));
        }
        let x = acts.first().copied();
        let shape = x.and_then(|x| self.act_shape(x)).map(<[usize]>::to_vec);
        let (Some(x), Some(s)) = (x, shape) else {
            info.kind = if custom {
                NodeKind::Unsupported(format!("custom domain '{}'", node.p.domain))
            } else {
                // blame the node whose output has no known shape
                let blamed = acts.iter().find(|v| self.act_shape(v).is_none()).and_then(|v| {
                    let &p = producer.get(*v)?;
                    Some(format!(
                        "its input '{v}' has no known shape: it comes from node '{}' ({}), which is not supported",
                        self.infos[p].name, self.infos[p].op
                    ))
                });
                classify(op, blamed.as_deref().unwrap_or("its input's shape is unknown"))
            };
            self.set_outputs(&node, Val::Unknown);
            return Ok(self.finish(info));
        };
        info.input_shape = Some(s[1..].to_vec());
        if custom {
            info.kind = NodeKind::Unsupported(format!("custom domain '{}'", node.p.domain));
            self.set_outputs(&node, Val::Unknown);
            return Ok(self.finish(info));
        }
        let (kind, out) = self.shape_op(i, &node, x, &s, &acts, producer, &mut info.params)?;
        if let Some(c) = self.circular.get(&i) {
            // a circular padding reads the tensor it pads, not its first Slice
            info.input_shape = self.act_shape(&c.input).map(|s| s[1..].to_vec());
        }
        info.kind = kind;
        info.output_shape = out.as_ref().map(|o| o.get(1..).unwrap_or_default().to_vec());
        match self.splits.get(&i) {
            Some(shapes) => {
                for (o, sh) in node.p.output.iter().zip(shapes.clone()) {
                    self.values.insert(o.clone(), Val::Act(sh));
                }
            }
            None => self.set_outputs(&node, out.map_or(Val::Unknown, Val::Act)),
        }
        Ok(self.finish(info))
    }

    fn finish(&self, mut info: NodeInfo) -> NodeInfo {
        info.affine = matches!(info.kind, NodeKind::Affine | NodeKind::Identity);
        info.params.insert("role".into(), json!(info.kind.as_str()));
        if let NodeKind::Unsupported(why) = &info.kind {
            info.params.insert("unsupported".into(), json!(why));
        }
        info
    }

    /// The role and output shape of an op on activation `x` of full shape `s`.
    #[allow(clippy::too_many_arguments)]
    fn shape_op(
        &mut self,
        i: usize,
        node: &Node<'m>,
        x: &str,
        s: &[usize],
        acts: &[&str],
        producer: &HashMap<String, usize>,
        params: &mut Map<String, Json>,
    ) -> Result<(NodeKind, Option<Vec<usize>>), OnnxError> {
        let (name, op) = (node.name, node.op());
        let unsupported = |why: &str| (NodeKind::Unsupported(why.into()), None);
        if acts.len() > 1 && !matches!(op, "Concat") {
            // where each computed operand comes from: the node that writes it, or the graph input itself
            let joins: Vec<String> = acts
                .iter()
                .map(|v| producer.get(*v).map_or_else(|| v.to_string(), |&p| self.infos[p].name.clone()))
                .collect();
            let operands: Vec<String> = acts
                .iter()
                .map(|v| match producer.get(*v) {
                    Some(&p) => format!("'{v}' (from node '{}')", self.infos[p].name),
                    None => format!("'{v}' (the graph input)"),
                })
                .collect();
            params.insert("inputs".into(), json!(acts));
            params.insert("joins".into(), json!(joins));
            let why = if matches!(op, "Add" | "Sub" | "Sum") {
                format!(
                    "a junction (residual connection) of {}: affine in its operands together, not one map of one input; export handles chains of layers only",
                    operands.join(" and ")
                )
            } else {
                format!("more than one computed operand ({}): not one affine map of one input", operands.join(", "))
            };
            let out = if matches!(op, "Add" | "Sub" | "Mul" | "Div" | "QLinearAdd" | "QLinearMul") {
                let shapes: Vec<&[usize]> = acts.iter().filter_map(|a| self.act_shape(a)).collect();
                shapes.iter().skip(1).try_fold(shapes[0].to_vec(), |acc, t| broadcast(&acc, t))
            } else if op == "QLinearConcat" {
                let shapes: Option<Vec<&[usize]>> = acts.iter().map(|a| self.act_shape(a)).collect();
                shapes.and_then(|sh| {
                    let a = fold::axis(node, node.int("axis")?, sh[0].len()).ok()?;
                    let mut out = sh[0].to_vec();
                    out[a] = sh.iter().map(|t| t.get(a).copied().unwrap_or(0)).sum();
                    Some(out)
                })
            } else {
                None
            };
            if crate::quant::is_quantized_op(op) {
                return Ok((NodeKind::Unsupported(crate::quant::QUANT_WHY.into()), out));
            }
            return Ok((NodeKind::Unsupported(why), out));
        }
        Ok(match op {
            "Conv" | "ConvTranspose" => {
                let mut parts = ConvParts::from_conv(self, node, s)?;
                if op == "Conv" {
                    if let Some(&p) = producer.get(x).filter(|_| self.consumers.get(x) == Some(&1)) {
                        let pnode = Node::new(&self.model.graph.node[p]);
                        let pad = match self.circular.get(&p) {
                            Some(c) => Some(c.pad.clone()),
                            None if pnode.op() == "Pad" => Some(PadParts::from_node(self, &pnode)?),
                            None => None,
                        };
                        if let Some(fused) = pad.and_then(|pad| parts.fuse_pad(&pad)) {
                            parts = fused;
                            self.pad_into.insert(i, p);
                            params.insert("pad_folded".into(), json!(pnode.name));
                            let members = self.circular.get(&p).map(|c| c.members.clone()).unwrap_or_default();
                            for m in members.into_iter().chain([p]) {
                                self.infos[m].params.insert("folded_into".into(), json!(name));
                            }
                        }
                    }
                }
                let geometry = parts.geometry()?;
                params.insert("weight_shape".into(), json!(parts.weight_shape));
                params.insert("bias".into(), json!(parts.has_bias()));
                params.insert("expression".into(), json!(geometry.spec().to_string()));
                let mut out = vec![1];
                out.extend(geometry.output_shape());
                self.convs.insert(i, parts);
                (NodeKind::Affine, Some(out))
            }
            "QLinearConv" | "ConvInteger" => {
                let (w_at, b_at) = if op == "QLinearConv" { (3, Some(8)) } else { (1, None) };
                let parts = ConvParts::from_conv_inputs(self, node, s, w_at, b_at)?;
                let geometry = parts.geometry()?;
                params.insert("weight_shape".into(), json!(parts.weight_shape));
                params.insert("bias".into(), json!(parts.has_bias()));
                params.insert("expression".into(), json!(geometry.spec().to_string()));
                let mut out = vec![1];
                out.extend(geometry.output_shape());
                (NodeKind::Unsupported(crate::quant::QUANT_WHY.into()), Some(out))
            }
            "QLinearMatMul" | "MatMulInteger" => {
                let at = if op == "QLinearMatMul" { 3 } else { 1 };
                match node.input(at).and_then(|b| self.const_shape(b)) {
                    Some(b) if node.input(0) == Some(x) && b.len() == 2 && s.last() == Some(&b[0]) => {
                        let mut out = s.to_vec();
                        *out.last_mut().expect("rank >= 1") = b[1];
                        params.insert("weight_shape".into(), json!(b));
                        (NodeKind::Unsupported(crate::quant::QUANT_WHY.into()), Some(out))
                    }
                    _ => unsupported("only x @ W with a constant 2-d W whose rows match x's last dimension"),
                }
            }
            "QuantizeLinear" | "DequantizeLinear" | "QLinearLeakyRelu" | "QLinearSigmoid" => {
                (NodeKind::Unsupported(crate::quant::QUANT_WHY.into()), Some(s.to_vec()))
            }
            "QLinearGlobalAveragePool" if node.int("channels_last").unwrap_or(0) == 0 && s.len() >= 3 => {
                let mut out = s[..2].to_vec();
                out.extend(std::iter::repeat_n(1, s.len() - 2));
                (NodeKind::Unsupported(crate::quant::QUANT_WHY.into()), Some(out))
            }
            "Pad" => {
                let pad = PadParts::from_node(self, node)?;
                params.insert("mode".into(), json!(pad.mode_name));
                params.insert("pads".into(), json!([pad.begin.clone(), pad.end.clone()].concat()));
                let parts = ConvParts::from_pad(node, &pad, s)?;
                let mut out = vec![1];
                out.extend(parts.geometry()?.output_shape());
                self.convs.insert(i, parts);
                (NodeKind::Affine, Some(out))
            }
            "AveragePool" | "GlobalAveragePool" => {
                let pool = PoolParts::from_node(node, s)?;
                let parts = ConvParts::from_pool(node, &pool, s)?;
                let mut out = vec![1];
                out.extend(parts.geometry()?.output_shape());
                self.convs.insert(i, parts);
                (NodeKind::Affine, Some(out))
            }
            "MaxPool" | "GlobalMaxPool" | "LpPool" | "GlobalLpPool" => {
                let pool = PoolParts::from_node(node, s)?;
                let mut out = s[..2].to_vec();
                out.extend(&pool.out);
                (NodeKind::Nonlinearity, Some(out))
            }
            "Gemm" => {
                if s.len() != 2 {
                    return Ok(unsupported(&format!("Gemm reads a matrix; its input has shape {:?}", &s[1..])));
                }
                if node.input(0) != Some(x) || node.int("transA").unwrap_or(0) != 0 {
                    return Ok(unsupported("the computed operand must be A, not transposed (transA=0)"));
                }
                let b = self.const_shape(node.input(1).unwrap_or_default()).unwrap_or_default();
                let trans_b = node.int("transB").unwrap_or(0) != 0;
                if b.len() != 2 || b[usize::from(trans_b)] != s[1] {
                    return Err(OnnxError::shape(
                        name,
                        op,
                        format!(
                            "B of shape {b:?} (transB={}) does not take an input of {} features",
                            u8::from(trans_b),
                            s[1]
                        ),
                    ));
                }
                let n = b[usize::from(!trans_b)];
                params.insert("weight_shape".into(), json!(b));
                (NodeKind::Affine, Some(vec![1, n]))
            }
            "MatMul" => {
                let b = node.input(1).and_then(|b| self.const_shape(b));
                match b {
                    Some(b) if node.input(0) == Some(x) && b.len() == 2 && s.last() == Some(&b[0]) => {
                        let mut out = s.to_vec();
                        *out.last_mut().expect("rank >= 1") = b[1];
                        params.insert("weight_shape".into(), json!(b));
                        (NodeKind::Affine, Some(out))
                    }
                    _ => unsupported("only x @ W with a constant 2-d W whose rows match x's last dimension"),
                }
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let c = present_other(node, x);
                let cs = c.and_then(|c| self.const_shape(c)).unwrap_or_default();
                if op == "Div" && node.input(0) != Some(x) {
                    return Ok(unsupported("dividing a constant by the activation is not affine"));
                }
                match broadcast(s, &cs) {
                    Some(out) if out == s => {
                        params.insert("constant_shape".into(), json!(cs));
                        (NodeKind::Affine, Some(out))
                    }
                    _ => unsupported(&format!(
                        "the constant of shape {cs:?} does not broadcast onto the activation {s:?} without growing it"
                    )),
                }
            }
            "BatchNormalization" => {
                if node.int("training_mode").unwrap_or(0) != 0 {
                    return Ok(unsupported("training_mode=1 (batch statistics) is not an affine map"));
                }
                if s.len() < 2 {
                    return Err(OnnxError::shape(name, op, format!("input of shape {s:?} has no channel dimension")));
                }
                for (k, role) in [(1, "scale"), (2, "B"), (3, "mean"), (4, "var")] {
                    let cs = node.input(k).and_then(|c| self.const_shape(c));
                    match cs {
                        Some(cs) if cs.iter().product::<usize>() == s[1] => {}
                        Some(cs) => {
                            return Err(OnnxError::shape(
                                name,
                                op,
                                format!("{role} has shape {cs:?}; expected {} values (one per channel)", s[1]),
                            ))
                        }
                        None => {
                            return Err(OnnxError::NotConstant {
                                node: name.into(),
                                op: op.into(),
                                input: node.input(k).unwrap_or_default().into(),
                                role,
                            })
                        }
                    }
                }
                (NodeKind::Affine, Some(s.to_vec()))
            }
            "Flatten" | "Reshape" | "Identity" | "Dropout" | "Squeeze" | "Unsqueeze" => {
                let out = match op {
                    "Flatten" => {
                        let a = fold::axis(node, node.int("axis").unwrap_or(1), s.len() + 1)?;
                        let too_big = || OnnxError::shape(name, op, format!("{s:?} has too many elements"));
                        vec![
                            fold::checked_len(&s[..a]).ok_or_else(too_big)?,
                            fold::checked_len(&s[a..]).ok_or_else(too_big)?,
                        ]
                    }
                    "Reshape" => {
                        let Some(target) = node.input(1).and_then(|t| self.constant(t)) else {
                            return Ok(unsupported(
                                "the target shape is computed at run time, not folded to a constant",
                            ));
                        };
                        fold::reshape_target(node, s, &target?.to_i64(), node.int("allowzero").unwrap_or(0) != 0)?
                    }
                    "Squeeze" | "Unsqueeze" => {
                        let axes = if self.model.opset >= 13 {
                            match node.input(1) {
                                Some(_) => Some(self.const_input(node, 1, "axes")?.to_i64()),
                                None => None,
                            }
                        } else {
                            node.ints("axes").map(<[i64]>::to_vec)
                        };
                        fold::squeeze_shape(node, s, axes.as_deref(), op == "Unsqueeze")?
                    }
                    _ => s.to_vec(),
                };
                if out.first() != Some(&1) {
                    return Ok(unsupported(&format!(
                        "the output shape {out:?} does not keep the batch dimension first"
                    )));
                }
                (NodeKind::Identity, Some(out))
            }
            "Slice" => {
                let consts: Vec<Option<Tensor>> = match (1..node.p.input.len())
                    .map(|k| node.input(k).map_or(Some(Ok(None)), |n| self.constant(n).map(|t| t.map(Some))))
                    .collect::<Option<Result<Vec<_>, _>>>()
                {
                    Some(c) => c?,
                    None => return Ok(unsupported("its starts, ends, axes or steps are computed at run time")),
                };
                let refs: Vec<Option<&Tensor>> =
                    std::iter::once(None).chain(consts.iter().map(Option::as_ref)).collect();
                let args = fold::slice_args(node, &refs, self.model.opset, s.len())?;
                let out = fold::slice_shape(&args, s);
                self.slices.insert(i, args);
                // shapes flow on only while they stay one non-empty sample
                let out = Some(out).filter(|o| o[0] == 1 && !o.contains(&0));
                (NodeKind::Unsupported(SLICE_WHY.into()), out)
            }
            "Concat" if self.circular_pad(node, producer).is_some() => {
                let c = self.circular_pad(node, producer).expect("checked");
                self.circular_concat(i, node, c, params)?
            }
            "Concat" => {
                let shapes: Option<Vec<Vec<usize>>> = present_inputs(node)
                    .iter()
                    .map(|n| self.act_shape(n).map(<[usize]>::to_vec).or_else(|| self.const_shape(n)))
                    .collect();
                let out = shapes.and_then(|sh| {
                    let a = fold::axis(node, node.int("axis").unwrap_or(0), s.len()).ok()?;
                    let mut out = sh[0].clone();
                    out[a] = sh.iter().map(|t| t.get(a).copied().unwrap_or(0)).sum();
                    Some(out)
                });
                (
                    NodeKind::Unsupported(
                        "concatenating computed tensors is read only as torch's circular padding (Concat of Slices of one tensor's last and first elements around it along one spatial axis)".into(),
                    ),
                    out,
                )
            }
            "Transpose" => {
                let r = s.len();
                let perm: Vec<usize> = match node.ints("perm") {
                    Some(p) => p.iter().map(|&a| fold::axis(node, a, r)).collect::<Result<_, _>>()?,
                    None => (0..r).rev().collect(),
                };
                let mut seen = vec![false; r];
                if perm.len() != r || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
                    return Err(OnnxError::attr(
                        name,
                        op,
                        "perm",
                        format!("{perm:?}"),
                        format!("a permutation of 0..{r}"),
                    ));
                }
                if perm[0] != 0 {
                    return Ok(unsupported(&format!("perm {perm:?} moves the batch axis 0")));
                }
                params.insert("perm".into(), json!(perm));
                (NodeKind::Unsupported(JUNCTION_WHY.into()), Some(perm.iter().map(|&p| s[p]).collect()))
            }
            "Split" => {
                let a = fold::axis(node, node.int("axis").unwrap_or(0), s.len())?;
                let n_out = node.p.output.len().max(1);
                let given: Option<Vec<i64>> = match node.input(1) {
                    Some(_) => Some(self.const_input(node, 1, "split")?.to_i64()),
                    None => node.ints("split").map(<[i64]>::to_vec),
                };
                let sizes = match given {
                    Some(v) => fold::non_negative(name, op, "split", &v)?,
                    None => {
                        // equal pieces, the last one smaller when the axis does not divide (opset 18)
                        let k = s[a].div_ceil(n_out);
                        (0..n_out).map(|j| k.min(s[a].saturating_sub(j * k))).collect()
                    }
                };
                if sizes.len() != n_out || sizes.iter().sum::<usize>() != s[a] || a == 0 {
                    return Err(OnnxError::shape(
                        name,
                        op,
                        format!("pieces {sizes:?} for {n_out} outputs do not split axis {a} of {:?}", &s[1..]),
                    ));
                }
                let shapes: Vec<Vec<usize>> = sizes
                    .iter()
                    .map(|&k| {
                        let mut o = s.to_vec();
                        o[a] = k;
                        o
                    })
                    .collect();
                params.insert("axis".into(), json!(a));
                params.insert("split".into(), json!(sizes));
                let first = shapes[0].clone();
                self.splits.insert(i, shapes);
                (NodeKind::Unsupported(JUNCTION_WHY.into()), Some(first))
            }
            "ReduceMean" => {
                let axes: Option<Vec<i64>> = if self.model.opset >= 18 {
                    match node.input(1) {
                        Some(_) => Some(self.const_input(node, 1, "axes")?.to_i64()),
                        None => None,
                    }
                } else {
                    node.ints("axes").map(<[i64]>::to_vec)
                };
                let r = s.len();
                let mut axes: Vec<usize> = match axes.filter(|a| !a.is_empty()) {
                    Some(a) => a.iter().map(|&x| fold::axis(node, x, r)).collect::<Result<_, _>>()?,
                    None if node.int("noop_with_empty_axes").unwrap_or(0) != 0 => vec![],
                    None => (0..r).collect(),
                };
                axes.sort_unstable();
                axes.dedup();
                if axes.contains(&0) {
                    return Ok(unsupported("it averages over the batch axis 0"));
                }
                let keep = node.int("keepdims").unwrap_or(1) != 0;
                let out: Vec<usize> = (0..r)
                    .filter_map(|d| match (axes.contains(&d), keep) {
                        (false, _) => Some(s[d]),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect();
                params.insert("axes".into(), json!(axes));
                self.reduce_axes.insert(i, axes);
                (NodeKind::Affine, Some(out))
            }
            op if NONLINEARITIES.contains(&op) => (NodeKind::Nonlinearity, Some(s.to_vec())),
            _ => unsupported("convmat has no affine form for this op and does not know it as a nonlinearity"),
        })
    }
}

/// Why a rearrangement of a computed tensor is not part of a chain.
const JUNCTION_WHY: &str = "a junction of the graph (a rearrangement of a computed tensor): `convmat run` and the `graph` of `convmat export` take it; a chain of layers does not";

/// Why a Slice of an activation is not read on its own.
const SLICE_WHY: &str =
    "a Slice of a computed tensor is read only as part of torch's circular padding (Concat of the tensor's last and first elements around it along one spatial axis)";

impl Analysis<'_> {
    /// The circular padding a Concat completes (torch's `padding_mode='circular'`), merged with the one
    /// on another axis it pads, or `None` when the Concat and its Slices do not match the pattern exactly:
    /// inputs `[tail, x, head]` (or `[tail, x]`, `[x, head]`) where `tail = Slice(x)` takes the last `b`
    /// and `head = Slice(x)` the first `e` elements of the Concat's spatial axis (step 1, `1 <= b, e <=`
    /// the axis' size), each Slice read by this Concat only.
    fn circular_pad(&self, node: &Node<'_>, producer: &HashMap<String, usize>) -> Option<Circular> {
        let ins = present_inputs(node);
        if ins.len() != node.p.input.len() || !(2..=3).contains(&ins.len()) {
            return None;
        }
        let g = &self.model.graph;
        let slice_of = |v: &str| -> Option<(usize, &str)> {
            let &p = producer.get(v)?;
            self.slices.contains_key(&p).then(|| (p, Node::new(&g.node[p]).input(0).unwrap_or_default()))
        };
        let (tail, x, head) = match ins[..] {
            [t, x, h] => (Some(t), x, Some(h)),
            [t, x] if slice_of(t).is_some_and(|(_, d)| d == x) => (Some(t), x, None),
            [x, h] => (None, x, Some(h)),
            _ => return None,
        };
        let s = self.act_shape(x)?;
        let r = s.len();
        let ax = fold::axis(node, node.int("axis")?, r).ok().filter(|&a| a >= 2 && (3..=5).contains(&r))?;
        let dim = s[ax];
        // (the Slice node, how many elements it takes)
        let take = |v: &str, is_tail: bool| -> Option<(usize, usize)> {
            let (p, d) = slice_of(v)?;
            let args = &self.slices[&p];
            if d != x || self.consumers.get(v) != Some(&1) || args.axes != [ax] || args.steps != [1] {
                return None;
            }
            let (b, n) = fold::slice_range(dim, args.starts[0], args.ends[0], 1);
            let fits = if is_tail { b as usize + n == dim } else { b == 0 };
            (n > 0 && fits).then_some((p, n))
        };
        let tail = tail.map(|t| take(t, true)).map_or(Some(None), |t| t.map(Some))?;
        let head = head.map(|h| take(h, false)).map_or(Some(None), |h| h.map(Some))?;
        let d = ax - 2;
        let mut members: Vec<usize> = tail.iter().chain(&head).map(|&(p, _)| p).collect();
        let (b, e) = (tail.map_or(0, |t| t.1), head.map_or(0, |h| h.1));
        let readers = 1 + members.len();
        // the padding of another axis just before it (torch pads one axis after the other)
        let inner = producer
            .get(x)
            .filter(|_| self.consumers.get(x) == Some(&readers))
            .and_then(|&p| Some((p, self.circular.get(&p)?)))
            .filter(|(_, c)| c.pad.begin[d] == 0 && c.pad.end[d] == 0);
        let (input, mut pad) = match inner {
            Some((p, c)) => {
                members.extend(c.members.iter().copied().chain([p]));
                (c.input.clone(), c.pad.clone())
            }
            None => {
                let zeros = vec![0; r - 2];
                let pad = PadParts {
                    begin: zeros.clone(),
                    end: zeros,
                    mode: convmat_shape::PaddingMode::Circular,
                    mode_name: "circular".into(),
                };
                (x.to_string(), pad)
            }
        };
        pad.begin[d] = b;
        pad.end[d] = e;
        members.sort_unstable();
        Some(Circular { input, pad, members })
    }
}

impl Analysis<'_> {
    /// Records a recognized circular padding ending at Concat `i`: a Pad-like block of its own (or folded
    /// into the Conv that reads it), its Slices and inner Concats marked as part of it.
    fn circular_concat(
        &mut self,
        i: usize,
        node: &Node<'_>,
        c: Circular,
        params: &mut Map<String, Json>,
    ) -> Result<(NodeKind, Option<Vec<usize>>), OnnxError> {
        let full = self.act_shape(&c.input).expect("an activation").to_vec();
        let parts = ConvParts::from_pad(node, &c.pad, &full)?;
        let mut out = vec![1];
        out.extend(parts.geometry()?.output_shape());
        params.insert("mode".into(), json!(c.pad.mode_name));
        params.insert("pads".into(), json!([c.pad.begin.clone(), c.pad.end.clone()].concat()));
        for &m in &c.members {
            let mut info = self.infos[m].clone();
            info.kind = NodeKind::Affine;
            info.params.remove("unsupported");
            info.params.insert("folded_into".into(), json!(node.name));
            self.infos[m] = self.finish(info);
            self.convs.remove(&m);
            self.circular.remove(&m);
        }
        self.convs.insert(i, parts);
        self.circular.insert(i, c);
        Ok((NodeKind::Affine, Some(out)))
    }
}

fn present_inputs<'a>(node: &Node<'a>) -> Vec<&'a str> {
    node.p.input.iter().map(String::as_str).filter(|s| !s.is_empty()).collect()
}

fn present_other<'a>(node: &Node<'a>, x: &str) -> Option<&'a str> {
    present_inputs(node).into_iter().find(|n| *n != x)
}

fn classify(op: &str, why: &str) -> NodeKind {
    if NONLINEARITIES.contains(&op) {
        NodeKind::Nonlinearity
    } else if IDENTITIES.contains(&op) {
        NodeKind::Identity
    } else if AFFINE_OPS.contains(&op) {
        NodeKind::Unsupported(why.into())
    } else {
        NodeKind::Unsupported("convmat has no affine form for this op and does not know it as a nonlinearity".into())
    }
}
