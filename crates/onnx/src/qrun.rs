//! Running a quantized model in exact integer arithmetic, as onnxruntime's CPU kernels compute it:
//! every convolution and matrix product accumulates `Σ (x - x_zp)·(w - w_zp[c]) + bias` in integers
//! through convmat's exact integer matrix ([`FixedConv`], never float fake-quantisation), then
//! requantises with onnxruntime's float32 arithmetic (`round_half_even(f32(acc) · m[c]) + y_zp`,
//! saturated, `m[c] = x_scale · w_scale[c] / y_scale` formed in float32), or `onnx.reference`'s (the
//! same multiplier, the product in float64).
//!
//! The QDQ pattern `DequantizeLinear → Conv / MatMul → QuantizeLinear` runs as the one integer kernel
//! onnxruntime fuses it into. Other ops: `QuantizeLinear` / `DequantizeLinear` (per tensor or per
//! axis), `QLinearAdd`, `QLinearGlobalAveragePool`, `QLinearConcat` (onnxruntime's contrib ops, their
//! float32 arithmetic), `MaxPool` and `Relu` on stored integers or floats, reshapes, and the float
//! `Cast` / `Add` / `Mul` after an integer op.

use std::collections::{HashMap, HashSet};

use convmat_matrix::{Accumulation, FixedConv};
use convmat_numeric::QFormat;
use ndarray::Array2;

use crate::graph::{Analysis, NodeKind};
use crate::layers::PoolParts;
use crate::node::Node;
use crate::quant::{QuantForm, QuantLayer, QuantType, Reader};
use crate::{Model, OnnxError};

/// A tensor of a quantized run: stored integers of a type, or float32 values; the batch first.
#[derive(Clone, Debug, PartialEq)]
pub enum QTensor {
    /// Stored integers (int32 for the integer ops' accumulators).
    Int {
        /// The type.
        ty: QuantType,
        /// The shape.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<i64>,
    },
    /// float32 values.
    Float {
        /// The shape.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<f32>,
    },
}

impl QTensor {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Self::Int { shape, .. } | Self::Float { shape, .. } => shape,
        }
    }

    fn with_shape(self, s: Vec<usize>) -> Self {
        match self {
            Self::Int { ty, data, .. } => Self::Int { ty, shape: s, data },
            Self::Float { data, .. } => Self::Float { shape: s, data },
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Int { data, .. } => data.len(),
            Self::Float { data, .. } => data.len(),
        }
    }
}

/// Whose requantisation arithmetic a quantized run reproduces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuantReference {
    /// onnxruntime's CPU kernels: the product `f32(acc) · m` in float32.
    #[default]
    Onnxruntime,
    /// `onnx.reference`: the same float32 multiplier, the product in float64.
    Onnx,
}

impl std::str::FromStr for QuantReference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "onnxruntime" | "ort" => Ok(Self::Onnxruntime),
            "onnx" => Ok(Self::Onnx),
            _ => Err(format!("'{s}' is not a reference; valid: onnxruntime, onnx")),
        }
    }
}

impl std::fmt::Display for QuantReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Onnxruntime => "onnxruntime",
            Self::Onnx => "onnx",
        })
    }
}

/// One tensor a traced quantized run recorded, in graph order.
#[derive(Clone, Debug)]
pub struct QTraced {
    /// The node that wrote it (a fused QDQ block: its Conv / MatMul).
    pub node: String,
    /// Its op.
    pub op: String,
    /// The tensor's name.
    pub tensor: String,
    /// Its values.
    pub value: QTensor,
}

/// What a quantized run returns.
#[derive(Clone, Debug)]
pub struct QRun {
    /// The graph outputs, in order.
    pub outputs: Vec<QTensor>,
    /// With tracing, every tensor every node wrote, in graph order.
    pub trace: Vec<QTraced>,
}

/// Round half to even (onnxruntime's conversions under the default rounding mode, NumPy's `rint`).
fn rint(v: f64) -> i64 {
    v.round_ties_even() as i64
}

/// `saturate(round_half_even(f32(acc) · m) + zp)`, the product in float32 (onnxruntime) or float64.
fn requantize(acc: i64, m: f32, zp: i64, ty: QuantType, reference: QuantReference) -> i64 {
    let v = match reference {
        QuantReference::Onnxruntime => f64::from(acc as f32 * m),
        QuantReference::Onnx => acc as f64 * f64::from(m),
    };
    ty.saturate(rint(v).saturating_add(zp))
}

/// The quantization parameters of a constant-input op, read once per node.
struct Params {
    scale: Vec<f32>,
    zp: Vec<i64>,
    ty: QuantType,
}

impl Model {
    /// Runs a quantized model on one input (`(N, *sample)` or one sample): float inputs as float32,
    /// integer inputs as stored integers of their type. Every quantized convolution and matrix
    /// product in exact integers, requantised as `reference` does; `trace` keeps every tensor.
    ///
    /// # Errors
    /// An input that does not fit the graph input; an op a quantized run does not take (named with
    /// its node); the errors of [`quantized_layers`](Self::quantized_layers).
    pub fn run_quantized(&self, input: QTensor, reference: QuantReference, trace: bool) -> Result<QRun, OnnxError> {
        let sample = self.sample_shape(input.shape());
        let batched = sample.len() != input.shape().len();
        let n = if batched { input.shape()[0] } else { 1 };
        let a = Analysis::new(self, Some(&sample))?;
        let plan = Plan::new(&a)?;
        let per = input.len() / n.max(1);
        let mut outputs: Vec<QTensor> = Vec::new();
        let mut traced: Vec<QTraced> = Vec::new();
        for k in 0..n {
            let mut shape = vec![1];
            shape.extend(&sample);
            let x = match &input {
                QTensor::Int { ty, data, .. } => {
                    QTensor::Int { ty: *ty, shape, data: data[k * per..(k + 1) * per].to_vec() }
                }
                QTensor::Float { data, .. } => QTensor::Float { shape, data: data[k * per..(k + 1) * per].to_vec() },
            };
            let (outs, tr) = plan.run_one(x, reference, trace)?;
            if k == 0 {
                outputs = outs;
                traced = tr;
            } else {
                for (o, v) in outputs.iter_mut().zip(outs) {
                    append(o, v);
                }
                for (o, v) in traced.iter_mut().zip(tr) {
                    append(&mut o.value, v.value);
                }
            }
        }
        if !batched {
            for o in outputs.iter_mut() {
                let s = o.shape()[1..].to_vec();
                *o = o.clone().with_shape(s);
            }
        }
        Ok(QRun { outputs, trace: traced })
    }
}

/// Appends `v` to `o` along the batch axis.
fn append(o: &mut QTensor, v: QTensor) {
    match (o, v) {
        (QTensor::Int { shape, data, .. }, QTensor::Int { data: d, .. }) => {
            shape[0] += 1;
            data.extend(d);
        }
        (QTensor::Float { shape, data }, QTensor::Float { data: d, .. }) => {
            shape[0] += 1;
            data.extend(d);
        }
        _ => unreachable!("one node writes one kind of tensor"),
    }
}

/// What each node does in a quantized run.
struct Plan<'a, 'm> {
    a: &'a Analysis<'m>,
    /// Main node index -> its quantized layer (QOperator, integer, or fused QDQ).
    layers: HashMap<usize, QuantLayer>,
    /// Nodes a fused QDQ layer stands for (its DequantizeLinear of x when the layer is its only
    /// reader, its QuantizeLinear after): not run on their own.
    fused: HashSet<usize>,
    /// A fused QDQ layer: the tensor it reads (the quantized x) and the tensor it writes.
    io: HashMap<usize, (String, String)>,
    /// Other ops between DequantizeLinear and QuantizeLinear that onnxruntime runs on stored integers
    /// (Add as QLinearAdd, GlobalAveragePool as QLinearGlobalAveragePool; MaxPool and reshapes when
    /// both sides share scale and zero point): node -> its DequantizeLinear nodes and QuantizeLinear.
    qdq_ops: HashMap<usize, (Vec<usize>, usize)>,
}

/// The ops onnxruntime runs between DequantizeLinear and QuantizeLinear on stored integers.
const QDQ_OPS: &[&str] = &["Add", "GlobalAveragePool", "MaxPool", "Flatten", "Reshape", "Squeeze", "Unsqueeze"];

impl<'a, 'm> Plan<'a, 'm> {
    fn new(a: &'a Analysis<'m>) -> Result<Self, OnnxError> {
        let r = Reader::new(a);
        let g = &a.model.graph;
        let index: HashMap<&str, usize> = g.node.iter().enumerate().map(|(i, p)| (Node::new(p).name, i)).collect();
        let mut layers = HashMap::new();
        let mut fused = HashSet::new();
        let mut io = HashMap::new();
        for i in 0..g.node.len() {
            let Some(l) = r.read(i)? else { continue };
            if l.form == QuantForm::Qdq {
                let Some(out) = &l.output else { continue };
                let node = Node::new(&g.node[i]);
                let x_dq = l.nodes[0].as_str();
                if r.readers_of(node.input(0).unwrap_or_default()) == 1 {
                    fused.insert(index[x_dq]);
                }
                let q = l.nodes.last().expect("the QuantizeLinear");
                fused.insert(index[q.as_str()]);
                io.insert(i, (l.input.tensor.clone(), out.tensor.clone()));
            }
            layers.insert(i, l);
        }
        let mut qdq_ops = HashMap::new();
        let producer: HashMap<&str, usize> =
            g.node.iter().enumerate().flat_map(|(i, p)| p.output.iter().map(move |o| (o.as_str(), i))).collect();
        for (i, p) in g.node.iter().enumerate() {
            let node = Node::new(p);
            if !QDQ_OPS.contains(&node.op()) || a.infos[i].kind == NodeKind::Constant {
                continue;
            }
            let acts: Vec<&str> =
                p.input.iter().map(String::as_str).filter(|v| !v.is_empty() && !a.is_const(v)).collect();
            let dqs: Option<Vec<usize>> = acts
                .iter()
                .map(|v| producer.get(v).copied().filter(|&d| g.node[d].op_type == "DequantizeLinear"))
                .collect();
            let out = p.output.first().map_or("", String::as_str);
            let q = match r.readers_of(out) {
                1 => g
                    .node
                    .iter()
                    .position(|n| n.op_type == "QuantizeLinear" && n.input.first().is_some_and(|v| v == out)),
                _ => None,
            };
            let (Some(dqs), Some(q)) = (dqs, q) else { continue };
            if dqs.is_empty() || (node.op() == "Add") != (dqs.len() == 2) {
                continue;
            }
            let same = |d: usize| {
                let (dn, qn) = (Node::new(&g.node[d]), Node::new(&g.node[q]));
                let c = |n: &Node<'_>, k: usize| {
                    n.input(k).and_then(|v| a.constant(v)).and_then(Result::ok).map(|t| t.to_f64())
                };
                c(&dn, 1) == c(&qn, 1)
                    && c(&dn, 2).unwrap_or_else(|| vec![0.0]) == c(&qn, 2).unwrap_or_else(|| vec![0.0])
            };
            if !matches!(node.op(), "Add" | "GlobalAveragePool") && !same(dqs[0]) {
                continue;
            }
            for (&d, v) in dqs.iter().zip(&acts) {
                if r.readers_of(v) == 1 {
                    fused.insert(d);
                }
            }
            fused.insert(q);
            qdq_ops.insert(i, (dqs, q));
        }
        Ok(Self { a, layers, fused, io, qdq_ops })
    }

    /// An op between DequantizeLinear and QuantizeLinear, on the stored integers the DequantizeLinear
    /// nodes read, writing the QuantizeLinear's output.
    fn qdq_op<'v>(
        &self,
        node: &Node<'_>,
        dqs: &[usize],
        q: usize,
        get: &dyn Fn(&str) -> Result<&'v QTensor, OnnxError>,
    ) -> Result<(String, QTensor), OnnxError> {
        let g = &self.a.model.graph;
        let qn = Node::new(&g.node[q]);
        let dn: Vec<Node<'_>> = dqs.iter().map(|&d| Node::new(&g.node[d])).collect();
        let out = qn.p.output.first().cloned().unwrap_or_default();
        let shape = self.a.act_shape(&out).map(<[usize]>::to_vec);
        let xs: Vec<&QTensor> = dn.iter().map(|d| get(d.input(0).unwrap_or_default())).collect::<Result<_, _>>()?;
        let ty = match xs[0] {
            QTensor::Int { ty, .. } => *ty,
            QTensor::Float { .. } => return Err(OnnxError::unsupported(dn[0].name, dn[0].op(), "it reads floats")),
        };
        let py = self.params(&qn, 1, 2, ty)?;
        let y = match node.op() {
            "Add" => {
                let (pa, pb) = (self.params(&dn[0], 1, 2, ty)?, self.params(&dn[1], 1, 2, ty)?);
                qlinear_add(node, xs[0], &pa, xs[1], &pb, &py, shape)?
            }
            "GlobalAveragePool" => {
                let px = self.params(&dn[0], 1, 2, ty)?;
                qlinear_gap(xs[0], &px, &py, shape)?
            }
            _ => {
                let get_int = |v: &str| -> Result<&'v QTensor, OnnxError> {
                    if v == node.input(0).unwrap_or_default() {
                        Ok(xs[0])
                    } else {
                        get(v)
                    }
                };
                self.op(node, &get_int, shape)?
            }
        };
        Ok((out, y))
    }

    fn run_one(
        &self,
        x: QTensor,
        reference: QuantReference,
        trace: bool,
    ) -> Result<(Vec<QTensor>, Vec<QTraced>), OnnxError> {
        let a = self.a;
        let g = &a.model.graph;
        let mut values: HashMap<String, QTensor> = HashMap::new();
        let input = a.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
        values.insert(input, x);
        let mut traced = Vec::new();
        for (i, p) in g.node.iter().enumerate() {
            let node = Node::new(p);
            if a.infos[i].kind == NodeKind::Constant || self.fused.contains(&i) {
                continue;
            }
            let get = |v: &str| -> Result<&QTensor, OnnxError> {
                values.get(v).ok_or_else(|| {
                    OnnxError::unsupported(
                        node.name,
                        node.op(),
                        format!("its input '{v}' was not computed in this quantized run"),
                    )
                })
            };
            let (out_name, out) = if let Some((dqs, q)) = self.qdq_ops.get(&i) {
                self.qdq_op(&node, dqs, *q, &get)?
            } else if let Some(l) = self.layers.get(&i) {
                let (xin, yout) = self.io.get(&i).cloned().unwrap_or_else(|| {
                    (node.input(0).unwrap_or_default().to_string(), p.output.first().cloned().unwrap_or_default())
                });
                let y = layer(l, get(&xin)?, reference)?;
                (yout, y)
            } else {
                let out_name = p.output.first().cloned().unwrap_or_default();
                let shape = a.act_shape(&out_name).map(<[usize]>::to_vec);
                let y = self.op(&node, &get, shape)?;
                (out_name, y)
            };
            if trace {
                let op = self.layers.get(&i).map_or(node.op(), |l| l.op.as_str());
                traced.push(QTraced {
                    node: node.name.into(),
                    op: op.into(),
                    tensor: out_name.clone(),
                    value: out.clone(),
                });
            }
            values.insert(out_name, out);
        }
        let outputs = g
            .output
            .iter()
            .map(|o| {
                values.get(&o.name).cloned().ok_or_else(|| {
                    OnnxError::unsupported(&o.name, "output", "the graph output was not computed in this quantized run")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((outputs, traced))
    }

    fn params(&self, node: &Node<'_>, scale_at: usize, zp_at: usize, default: QuantType) -> Result<Params, OnnxError> {
        let scale: Vec<f32> = self.a.const_input(node, scale_at, "scale")?.to_f64().iter().map(|&v| v as f32).collect();
        if let Some((j, s)) = scale.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return Err(OnnxError::Quantization {
                node: node.name.into(),
                op: node.op().into(),
                what: format!(
                    "scale '{}' is {s} (value {j}): a scale must be a positive finite number",
                    node.input(scale_at).unwrap_or_default()
                ),
            });
        }
        let (zp, ty) = match node.input(zp_at) {
            Some(v) => {
                let t = self.a.const_input(node, zp_at, "zero point")?.to_i64();
                let ty = Reader::new(self.a).init_quant_type(v).unwrap_or(default);
                (t, ty)
            }
            None => (vec![0], default),
        };
        Ok(Params { scale, zp, ty })
    }

    /// Every op other than the quantized layers, on one sample.
    fn op<'v>(
        &self,
        node: &Node<'_>,
        get: &dyn Fn(&str) -> Result<&'v QTensor, OnnxError>,
        out_shape: Option<Vec<usize>>,
    ) -> Result<QTensor, OnnxError> {
        let (name, op) = (node.name, node.op());
        let x_name = node.input(0).unwrap_or_default();
        let shape = || out_shape.clone().ok_or_else(|| OnnxError::shape(name, op, "its output shape is unknown"));
        let unsupported = |why: &str| Err(OnnxError::unsupported(name, op, why.to_string()));
        let float = |t: &QTensor| -> Result<Vec<f32>, OnnxError> {
            match t {
                QTensor::Float { data, .. } => Ok(data.clone()),
                QTensor::Int { .. } => {
                    Err(OnnxError::unsupported(name, op, "it reads stored integers where it takes floats"))
                }
            }
        };
        let int = |t: &QTensor| -> Result<(QuantType, Vec<i64>), OnnxError> {
            match t {
                QTensor::Int { ty, data, .. } => Ok((*ty, data.clone())),
                QTensor::Float { .. } => {
                    Err(OnnxError::unsupported(name, op, "it reads floats where it takes stored integers"))
                }
            }
        };
        Ok(match op {
            "QuantizeLinear" => {
                let x = get(x_name)?;
                let xs = x.shape().to_vec();
                let v = float(x)?;
                let p = self.params(node, 1, 2, QuantType::Uint8)?;
                let ch = channel_map(node, &xs, p.scale.len())?;
                let data = v
                    .iter()
                    .enumerate()
                    .map(|(i, &f)| {
                        let c = ch(i);
                        let z = p.zp[c.min(p.zp.len() - 1)];
                        p.ty.saturate(rint(f64::from(f / p.scale[c])).saturating_add(z))
                    })
                    .collect();
                QTensor::Int { ty: p.ty, shape: xs, data }
            }
            "DequantizeLinear" => {
                let x = get(x_name)?;
                let xs = x.shape().to_vec();
                let (ty, v) = int(x)?;
                let p = self.params(node, 1, 2, ty)?;
                let ch = channel_map(node, &xs, p.scale.len())?;
                let data = v
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| {
                        let c = ch(i);
                        (q - p.zp[c.min(p.zp.len() - 1)]) as f32 * p.scale[c]
                    })
                    .collect();
                QTensor::Float { shape: xs, data }
            }
            "QLinearAdd" => {
                let (a, b) = (get(x_name)?, get(node.input(3).unwrap_or_default())?);
                let ta = int(a)?.0;
                let (pa, pb, pc) = (self.params(node, 1, 2, ta)?, self.params(node, 4, 5, ta)?, self.params(node, 6, 7, ta)?);
                qlinear_add(node, a, &pa, b, &pb, &pc, out_shape.clone())?
            }
            "QLinearGlobalAveragePool" => {
                let x = get(x_name)?;
                let ty = int(x)?.0;
                let (px, py) = (self.params(node, 1, 2, ty)?, self.params(node, 3, 4, ty)?);
                qlinear_gap(x, &px, &py, out_shape.clone())?
            }
            "QLinearConcat" => {
                let py = self.params(node, 0, 1, QuantType::Uint8)?;
                let axis = crate::fold::axis(node, node.int("axis").unwrap_or(1), self.a.act_shape(node.input(2).unwrap_or_default()).map_or(4, <[usize]>::len))?;
                let out = shape()?;
                let mut parts = Vec::new();
                for k in (2..node.p.input.len()).step_by(3) {
                    let t = get(node.input(k).unwrap_or_default())?;
                    let (_, v) = int(t)?;
                    let px = self.params(node, k + 1, k + 2, py.ty)?;
                    let same = px.scale[0] == py.scale[0] && px.zp[0] == py.zp[0];
                    // onnxruntime requantises through a table: quantize(dequantize(q)) in float32
                    let v: Vec<i64> = if same {
                        v
                    } else {
                        v.iter()
                            .map(|&q| {
                                let f = (q - px.zp[0]) as f32 * px.scale[0];
                                py.ty.saturate(rint(f64::from(f / py.scale[0])).saturating_add(py.zp[0]))
                            })
                            .collect()
                    };
                    parts.push((t.shape().to_vec(), v));
                }
                let outer: usize = out[..axis].iter().product();
                let mut data = Vec::with_capacity(out.iter().product());
                for o in 0..outer {
                    for (s, v) in &parts {
                        let chunk: usize = s[axis..].iter().product();
                        data.extend_from_slice(&v[o * chunk..(o + 1) * chunk]);
                    }
                }
                QTensor::Int { ty: py.ty, shape: out, data }
            }
            "MaxPool" | "GlobalMaxPool" => {
                let x = get(x_name)?;
                let xs = x.shape().to_vec();
                let pool = PoolParts::from_node(node, &xs)?;
                match x {
                    QTensor::Int { ty, data, .. } => {
                        QTensor::Int { ty: *ty, shape: shape()?, data: max_pool(data, &xs, &pool, i64::MIN) }
                    }
                    QTensor::Float { data, .. } => {
                        QTensor::Float { shape: shape()?, data: max_pool(data, &xs, &pool, f32::NEG_INFINITY) }
                    }
                }
            }
            "Relu" => match get(x_name)? {
                QTensor::Float { shape, data } => QTensor::Float { shape: shape.clone(), data: data.iter().map(|v| v.max(0.0)).collect() },
                QTensor::Int { .. } => return unsupported("a Relu of stored integers (its zero point is not in the graph)"),
            },
            "Flatten" | "Reshape" | "Identity" | "Dropout" | "Squeeze" | "Unsqueeze" => get(x_name)?.clone().with_shape(shape()?),
            "Cast" => {
                let x = get(x_name)?;
                let to = node.int("to").unwrap_or(0) as i32;
                match (x, to) {
                    (QTensor::Int { shape, data, .. }, crate::proto::data_type::FLOAT) => {
                        QTensor::Float { shape: shape.clone(), data: data.iter().map(|&v| v as f32).collect() }
                    }
                    _ => return unsupported("a quantized run casts stored integers to float only"),
                }
            }
            "Add" | "Mul" | "Sub" | "Div" => {
                let operand = |k: usize| -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
                    let v = node.input(k).unwrap_or_default();
                    match self.a.constant(v) {
                        Some(t) => {
                            let t = t?;
                            let mut s = t.shape.clone();
                            if s.is_empty() {
                                s.push(1);
                            }
                            Ok((s, t.to_f64().iter().map(|&x| x as f32).collect()))
                        }
                        None => {
                            let t = get(v)?;
                            Ok((t.shape().to_vec(), float(t)?))
                        }
                    }
                };
                let ((sa, a), (sb, b)) = (operand(0)?, operand(1)?);
                let out = shape()?;
                let (ia, ib) = (crate::fold::broadcast_index(&sa, &out), crate::fold::broadcast_index(&sb, &out));
                let n: usize = out.iter().product();
                let f = |x: f32, y: f32| match op {
                    "Add" => x + y,
                    "Sub" => x - y,
                    "Mul" => x * y,
                    _ => x / y,
                };
                QTensor::Float { shape: out, data: (0..n).map(|e| f(a[ia(e)], b[ib(e)])).collect() }
            }
            _ => {
                return unsupported(
                    "a quantized run takes QuantizeLinear, DequantizeLinear, QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger, the QDQ Conv / MatMul / Add / GlobalAveragePool, QLinearAdd, QLinearGlobalAveragePool, QLinearConcat, MaxPool, Relu of floats, reshapes, Cast to float and float Add / Sub / Mul / Div",
                )
            }
        })
    }
}

/// onnxruntime's QLinearAdd (MLAS): `zp_c - (r_ac·zp_a + r_bc·zp_b) + r_ac·a + r_bc·b` with `r_ac =
/// s_a / s_c`, every step in float32, rounded half to even and saturated; NumPy broadcasting.
fn qlinear_add(
    node: &Node<'_>,
    a: &QTensor,
    pa: &Params,
    b: &QTensor,
    pb: &Params,
    pc: &Params,
    out: Option<Vec<usize>>,
) -> Result<QTensor, OnnxError> {
    let (QTensor::Int { data: av, shape: sa, .. }, QTensor::Int { data: bv, shape: sb, .. }) = (a, b) else {
        return Err(OnnxError::unsupported(node.name, node.op(), "it reads floats where it takes stored integers"));
    };
    if [pa.scale.len(), pb.scale.len(), pc.scale.len()].iter().any(|&n| n != 1) {
        return Err(OnnxError::unsupported(node.name, node.op(), "per-axis scales"));
    }
    let out = out.ok_or_else(|| OnnxError::shape(node.name, node.op(), "its output shape is unknown"))?;
    let (ia, ib) = (crate::fold::broadcast_index(sa, &out), crate::fold::broadcast_index(sb, &out));
    let n: usize = out.iter().product();
    let (rac, rbc) = (pa.scale[0] / pc.scale[0], pb.scale[0] / pc.scale[0]);
    let fixed = pc.zp[0] as f32 - (rac * pa.zp[0] as f32 + rbc * pb.zp[0] as f32);
    let data = (0..n)
        .map(|e| {
            let v = fixed + rac * av[ia(e)] as f32 + rbc * bv[ib(e)] as f32;
            pc.ty.saturate(rint(f64::from(v)))
        })
        .collect();
    Ok(QTensor::Int { ty: pc.ty, shape: out, data })
}

/// onnxruntime's QLinearGlobalAveragePool: `Σ x - zp_x·N` per channel, times `s_x / (s_y · N)` in
/// float32, requantised.
fn qlinear_gap(x: &QTensor, px: &Params, py: &Params, out: Option<Vec<usize>>) -> Result<QTensor, OnnxError> {
    let QTensor::Int { data, shape, .. } = x else { unreachable!("checked by the caller") };
    let inner: usize = shape[2..].iter().product();
    let m = px.scale[0] / (py.scale[0] * inner as f32);
    let data = data
        .chunks(inner.max(1))
        .map(|c| {
            let acc = c.iter().sum::<i64>() - px.zp[0] * inner as i64;
            requantize(acc, m, py.zp[0], py.ty, QuantReference::Onnxruntime)
        })
        .collect();
    let mut s = shape[..2].to_vec();
    s.extend(std::iter::repeat_n(1, shape.len() - 2));
    Ok(QTensor::Int { ty: py.ty, shape: out.unwrap_or(s), data })
}

/// The channel of each flat index of a tensor of `shape` quantized with `n` scales along the node's
/// `axis` (default 1), or 0 for one scale.
fn channel_map(node: &Node<'_>, shape: &[usize], n: usize) -> Result<Box<dyn Fn(usize) -> usize>, OnnxError> {
    if n <= 1 {
        return Ok(Box::new(|_| 0));
    }
    let a = crate::fold::axis(node, node.int("axis").unwrap_or(1), shape.len())?;
    if shape[a] != n {
        return Err(OnnxError::Quantization {
            node: node.name.into(),
            op: node.op().into(),
            what: format!("{n} scales along axis {a} of a tensor of shape {shape:?}: the axis has {}", shape[a]),
        });
    }
    let inner: usize = shape[a + 1..].iter().product();
    Ok(Box::new(move |i| (i / inner) % n))
}

/// The largest value of each window (pads never chosen), `(1, C, *spatial)` in.
fn max_pool<T: Copy + PartialOrd>(x: &[T], s: &[usize], p: &PoolParts, lowest: T) -> Vec<T> {
    let r = s.len() - 2;
    let c = s[1];
    let ins = &s[2..];
    let n_out: usize = p.out.iter().product();
    let n_in: usize = ins.iter().product();
    let mut y = Vec::with_capacity(c * n_out);
    for ch in 0..c {
        for o in 0..n_out {
            let mut idx = vec![0usize; r];
            let mut rest = o;
            for d in (0..r).rev() {
                idx[d] = rest % p.out[d];
                rest /= p.out[d];
            }
            let mut best = lowest;
            let k: usize = p.kernel.iter().product();
            for t in 0..k {
                let mut rem = t;
                let mut flat = 0usize;
                let mut inside = true;
                for d in (0..r).rev() {
                    let td = rem % p.kernel[d];
                    rem /= p.kernel[d];
                    let pos = (idx[d] * p.stride[d] + td * p.dilation[d]) as isize - p.pad_begin[d] as isize;
                    if pos < 0 || pos as usize >= ins[d] {
                        inside = false;
                        break;
                    }
                    let stride: usize = ins[d + 1..].iter().product();
                    flat += pos as usize * stride;
                }
                if inside {
                    let v = x[ch * n_in + flat];
                    if v > best {
                        best = v;
                    }
                }
            }
            y.push(best);
        }
    }
    y
}

/// A quantized layer on one sample's stored integers `x`: the exact accumulator through the integer
/// matrix, then requantised (or the int32 accumulator for the integer ops).
fn layer(l: &QuantLayer, x: &QTensor, reference: QuantReference) -> Result<QTensor, OnnxError> {
    let QTensor::Int { data, shape, .. } = x else {
        return Err(OnnxError::unsupported(
            &l.name,
            &l.op,
            "its input holds floats; a quantized layer reads stored integers",
        ));
    };
    let fail = |source| OnnxError::Matrix { node: l.name.clone(), op: l.op.clone(), source: Box::new(source) };
    let conv = l.conv_layer()?;
    let channels = l.out_channels();
    let zps = l.weight_zero_points();
    // w - w_zp[c] on the layer's (C_out, C_in/g, *k) weights
    let per = conv.weight().len() / channels;
    let w: Vec<f64> = conv.weight().iter().enumerate().map(|(i, &v)| v - zps[i / per] as f64).collect();
    let bits = |t: QuantType| QFormat::new(true, t.bits() + 1, 0).expect("at most 33 bits");
    let fixed = FixedConv::new(conv.geometry().clone(), &w, None, bits(l.weight.ty), bits(l.input.ty)).map_err(fail)?;
    let cols = conv.geometry().cols();
    let x_zp = l.input.zero_point_at(0);
    let xs: Vec<i64> = data.iter().map(|&v| v - x_zp).collect();
    let rows_in = xs.len() / cols;
    let xa = Array2::from_shape_vec((rows_in, cols), xs).expect("whole rows");
    let acc = fixed.apply(xa.view(), Accumulation::Full).map_err(fail)?.raw;
    // rows of the product: a convolution's (C_out, *spatial), one row per input row of a matrix product
    let (n_rows, n_out) = (acc.nrows(), acc.ncols());
    let per_out = n_out / channels;
    let bias = l.bias.as_deref();
    let mut out_shape = vec![shape[0]];
    out_shape.extend(&l.output_shape);
    let channel = |j: usize| if l.is_matmul() { j } else { j / per_out };
    let mut accs = Vec::with_capacity(n_rows * n_out);
    for r in 0..n_rows {
        for j in 0..n_out {
            let c = channel(j);
            accs.push((acc[[r, j]] + i128::from(bias.map_or(0, |b| b[c]))) as i64);
        }
    }
    Ok(match (&l.output, l.multipliers()) {
        (Some(y), Some(m)) => {
            let data = accs
                .iter()
                .enumerate()
                .map(|(e, &v)| {
                    let c = channel(e % n_out);
                    requantize(v, m[c], y.zero_point_at(0), y.ty, reference)
                })
                .collect();
            QTensor::Int { ty: y.ty, shape: out_shape, data }
        }
        _ => QTensor::Int { ty: QuantType::Int32, shape: out_shape, data: accs },
    })
}
