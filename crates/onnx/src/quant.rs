//! Quantized convolutions and matrix products of ONNX models, read as one record each
//! ([`QuantLayer`]): the stored integer weight, the zero points and scales of input, weight (per
//! tensor or per output channel) and output, the int32 bias, the types, and the layer options.
//!
//! Read from the QOperator ops (`QLinearConv`, `QLinearMatMul`), the integer ops (`ConvInteger`,
//! `MatMulInteger`, with the `Cast` → `Mul` by a constant scale the model applies to their int32
//! result), and the QDQ pattern `DequantizeLinear(w) → Conv ← DequantizeLinear(x)` (`→ QuantizeLinear`)
//! that onnxruntime fuses into one integer kernel. Every scale is checked (positive and finite), every
//! zero point against its tensor's type, every per-axis tensor's length, the bias' type (int32).

use std::collections::HashMap;

use convmat_matrix::{accumulator_range_per_channel, AccumulatorRange, ConvLayer, InputRange, RangeOptions};
use convmat_numeric::QFormat;
use convmat_shape::LayerOptions;
use serde::Serialize;

use crate::fold;
use crate::graph::{Analysis, Val};
use crate::layers::ConvParts;
use crate::node::Node;
use crate::proto::data_type as dt;
use crate::tensor::Tensor;
use crate::{Model, OnnxError};

/// onnxruntime's contrib ops (domain `com.microsoft`) that its quantizer writes around quantized
/// convolutions: read for their shapes.
pub(crate) const CONTRIB_OPS: &[&str] = &[
    "QLinearAdd",
    "QLinearMul",
    "QLinearConcat",
    "QLinearGlobalAveragePool",
    "QLinearAveragePool",
    "QLinearLeakyRelu",
    "QLinearSigmoid",
    "QGemm",
];

/// Why a float run or export does not take a quantized op.
pub(crate) const QUANT_WHY: &str = "a quantized op: `convmat range --weights MODEL.onnx` reads the quantized convolutions and matrix products; float runs and exports do not take it";

/// ONNX's 4-bit integer types (opset 21).
const UINT4: i32 = 21;
const INT4: i32 = 22;

/// Whether `op` computes on quantized tensors.
pub(crate) fn is_quantized_op(op: &str) -> bool {
    op.starts_with("QLinear")
        || matches!(op, "QuantizeLinear" | "DequantizeLinear" | "ConvInteger" | "MatMulInteger" | "QGemm")
}

/// The stored-integer type of a quantized tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum QuantType {
    /// int4 (opset 21).
    Int4,
    /// uint4 (opset 21).
    Uint4,
    /// int8.
    Int8,
    /// uint8.
    Uint8,
    /// int16 (opset 21).
    Int16,
    /// uint16 (opset 21).
    Uint16,
    /// int32 (biases, the integer ops' accumulators).
    Int32,
}

impl QuantType {
    /// The type of an ONNX data type code, `None` for a type that is not a quantized integer.
    pub fn from_onnx(data_type: i32) -> Option<Self> {
        Some(match data_type {
            dt::INT8 => Self::Int8,
            dt::UINT8 => Self::Uint8,
            dt::INT16 => Self::Int16,
            dt::UINT16 => Self::Uint16,
            dt::INT32 => Self::Int32,
            INT4 => Self::Int4,
            UINT4 => Self::Uint4,
            _ => return None,
        })
    }

    /// Its bits.
    pub fn bits(self) -> u32 {
        match self {
            Self::Int4 | Self::Uint4 => 4,
            Self::Int8 | Self::Uint8 => 8,
            Self::Int16 | Self::Uint16 => 16,
            Self::Int32 => 32,
        }
    }

    /// Whether it is signed.
    pub fn signed(self) -> bool {
        matches!(self, Self::Int4 | Self::Int8 | Self::Int16 | Self::Int32)
    }

    /// Its smallest value.
    pub fn min(self) -> i64 {
        if self.signed() {
            -(1i64 << (self.bits() - 1))
        } else {
            0
        }
    }

    /// Its largest value.
    pub fn max(self) -> i64 {
        if self.signed() {
            (1i64 << (self.bits() - 1)) - 1
        } else {
            (1i64 << self.bits()) - 1
        }
    }

    /// Its ONNX name (`int8`, `uint8`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Int4 => "int4",
            Self::Uint4 => "uint4",
            Self::Int8 => "int8",
            Self::Uint8 => "uint8",
            Self::Int16 => "int16",
            Self::Uint16 => "uint16",
            Self::Int32 => "int32",
        }
    }

    /// The same integers as convmat's fixed-point format (fraction 0: `q8.0` for int8, `uq8.0` for
    /// uint8).
    pub fn format(self) -> QFormat {
        QFormat::new(self.signed(), self.bits(), 0).expect("4 to 32 bits, fraction 0")
    }

    /// `v` saturated to the type.
    pub fn saturate(self, v: i64) -> i64 {
        v.clamp(self.min(), self.max())
    }
}

impl std::fmt::Display for QuantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a quantized tensor maps to real values: `real = (q - zero_point) · scale`, per tensor (one
/// value each) or per channel along `axis`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quantization {
    /// The quantized tensor's name in the model.
    pub tensor: String,
    /// Its stored-integer type.
    #[serde(rename = "type")]
    pub ty: QuantType,
    /// The scales (empty where the op has none: ConvInteger's and MatMulInteger's operands).
    pub scale: Vec<f32>,
    /// The zero points (stored integers of the type).
    pub zero_point: Vec<i64>,
    /// The axis of a per-axis quantization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub axis: Option<usize>,
}

impl Quantization {
    /// Channel `c`'s zero point (the one zero point of a per-tensor quantization).
    pub fn zero_point_at(&self, c: usize) -> i64 {
        match self.zero_point.len() {
            0 => 0,
            1 => self.zero_point[0],
            _ => self.zero_point[c],
        }
    }

    /// Channel `c`'s scale (the one scale of a per-tensor quantization; 1 where there is none).
    pub fn scale_at(&self, c: usize) -> f32 {
        match self.scale.len() {
            0 => 1.0,
            1 => self.scale[0],
            _ => self.scale[c],
        }
    }
}

/// Which of ONNX's quantized forms a layer was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum QuantForm {
    /// `QLinearConv` / `QLinearMatMul`: integer inputs, requantised integer output.
    QOperator,
    /// `ConvInteger` / `MatMulInteger`: integer inputs, the int32 accumulator out.
    Integer,
    /// `DequantizeLinear` → `Conv` / `MatMul` (→ `QuantizeLinear`), fused by onnxruntime.
    Qdq,
}

impl QuantForm {
    /// `qoperator`, `integer` or `qdq`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QOperator => "qoperator",
            Self::Integer => "integer",
            Self::Qdq => "qdq",
        }
    }
}

impl std::fmt::Display for QuantForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One quantized convolution or matrix product: `acc = Σ (x - x_zp)·(w - w_zp[c]) + bias[c]` in
/// integers, then (QOperator, QDQ with a `QuantizeLinear` after) `y = saturate(round(acc ·
/// x_scale · w_scale[c] / y_scale) + y_zp)`.
#[derive(Clone, Debug, Serialize)]
pub struct QuantLayer {
    /// The main node (the `QLinearConv`, `ConvInteger`, or the QDQ pattern's `Conv` / `MatMul`).
    pub name: String,
    /// Its op.
    pub op: String,
    /// The form it was read from.
    pub form: QuantForm,
    /// Every model node the layer stands for, in graph order.
    pub nodes: Vec<String>,
    /// The input's quantization (per tensor).
    pub input: Quantization,
    /// The weight's quantization (per tensor or per output channel).
    pub weight: Quantization,
    /// The output's quantization; `None` for the integer ops (their int32 accumulator is the output)
    /// and a QDQ pattern without a `QuantizeLinear` after it.
    pub output: Option<Quantization>,
    /// For the integer ops, the float scale the model multiplies their int32 result by (`Cast` →
    /// `Mul` by a constant), one per output channel or one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_scale: Option<Vec<f32>>,
    /// The weight's shape: `(C_out, C_in / groups, *kernel)`, or `(K, N)` for a matrix product.
    pub weight_shape: Vec<usize>,
    /// The stored weight integers, row-major in `weight_shape`.
    #[serde(skip)]
    pub weight_values: Vec<i64>,
    /// The int32 bias, one per output channel.
    #[serde(skip)]
    pub bias: Option<Vec<i64>>,
    /// One sample's input shape.
    pub input_shape: Vec<usize>,
    /// One sample's output shape.
    pub output_shape: Vec<usize>,
    /// The layer as a PyTorch expression (a matrix product `x @ W` as `Linear(K, N)`).
    pub expression: String,
    /// The convolution's options (`None` for a matrix product).
    #[serde(skip)]
    pub options: Option<LayerOptions>,
}

impl QuantLayer {
    /// Whether it is a matrix product (`x @ W` on the last axis) rather than a convolution.
    pub fn is_matmul(&self) -> bool {
        self.options.is_none()
    }

    /// The output channels (`C_out`, or `N` of a matrix product).
    pub fn out_channels(&self) -> usize {
        if self.is_matmul() {
            self.weight_shape[1]
        } else {
            self.weight_shape[0]
        }
    }

    /// Per output channel the requantisation multiplier `x_scale · w_scale[c] / y_scale`, in float32 in
    /// that order, as onnxruntime's CPU kernels form it; `None` without an output quantization.
    pub fn multipliers(&self) -> Option<Vec<f32>> {
        let y = self.output.as_ref()?;
        let xs = self.input.scale_at(0);
        Some((0..self.out_channels()).map(|c| xs * self.weight.scale_at(c) / y.scale_at(0)).collect())
    }

    /// The weight zero point of each output channel.
    pub fn weight_zero_points(&self) -> Vec<i64> {
        (0..self.out_channels()).map(|c| self.weight.zero_point_at(c)).collect()
    }

    /// The layer as convmat's [`ConvLayer`] on its stored integers (weights `w` as stored, not minus
    /// their zero points; the int32 bias): a matrix product `x @ W` of `K` inputs as the 1x1
    /// convolution `Conv1d(K, N, 1)` on a `(K, 1)` input (one row of `x`).
    ///
    /// # Errors
    /// A layer convmat's shape rules refuse.
    pub fn conv_layer(&self) -> Result<ConvLayer, OnnxError> {
        let bias = self.bias.as_ref().map(|b| b.iter().map(|&v| v as f64).collect());
        let fail =
            |source| OnnxError::Matrix { node: self.name.clone(), op: self.op.clone(), source: Box::new(source) };
        match &self.options {
            Some(options) => {
                let w = self.weight_values.iter().map(|&v| v as f64).collect();
                ConvLayer::new(&self.weight_shape, w, bias, &self.input_shape, options).map_err(fail)
            }
            None => {
                let (k, n) = (self.weight_shape[0], self.weight_shape[1]);
                let w = (0..n).flat_map(|r| (0..k).map(move |c| self.weight_values[c * n + r] as f64)).collect();
                ConvLayer::new(&[n, k, 1], w, bias, &[k, 1], &LayerOptions::new()).map_err(fail)
            }
        }
    }

    /// The exact accumulator range of every output channel over the input type's stored integers (or
    /// `input_range`, in stored integers), the zero points and types the model gives.
    ///
    /// # Errors
    /// An input range outside the input type; the errors of [`conv_layer`](Self::conv_layer).
    pub fn accumulator_range(&self, input_range: Option<InputRange>) -> Result<AccumulatorRange, OnnxError> {
        let layer = self.conv_layer()?;
        let mut options = RangeOptions::new(self.input.ty.format());
        options.input_range = input_range;
        options.weight_format = Some(self.weight.ty.format());
        options.input_zero_point = self.input.zero_point_at(0);
        let zps = self.weight_zero_points();
        let zps = if zps.iter().all(|&z| z == zps[0]) { vec![zps[0]] } else { zps };
        accumulator_range_per_channel(&layer, &options, &zps).map_err(|source| OnnxError::Range {
            node: self.name.clone(),
            op: self.op.clone(),
            source: Box::new(source),
        })
    }
}

impl Model {
    /// Whether the model computes on quantized activations (QuantizeLinear, QLinearConv, ConvInteger,
    /// a DequantizeLinear of a computed tensor, ...): `convmat run` then runs it in integers.
    pub fn is_quantized(&self) -> bool {
        // a DequantizeLinear of a stored weight alone (weight-only quantization) folds into a float model
        self.graph.node.iter().any(|p| {
            is_quantized_op(&p.op_type)
                && (p.op_type != "DequantizeLinear" || p.input.first().is_some_and(|x| !self.init.contains_key(x)))
        })
    }

    /// The stored-integer type of the first graph input, when it is a quantized integer type.
    pub fn input_quant_type(&self) -> Option<QuantType> {
        let vi = self.graph.input.iter().find(|v| !self.init.contains_key(&v.name))?;
        QuantType::from_onnx(vi.r#type.as_ref()?.tensor_type.as_ref()?.elem_type)
    }

    /// Every quantized convolution and matrix product of the model, in graph order (see
    /// [`QuantLayer`]). `input_shape` (one sample) is needed only when the input's shape is dynamic.
    ///
    /// # Errors
    /// The errors of [`summary`](Self::summary); a scale that is zero, negative or not finite, a zero
    /// point outside its tensor's type, a bias that is not int32, a per-axis tensor of the wrong
    /// length, named with the node and the value.
    pub fn quantized_layers(&self, input_shape: Option<&[usize]>) -> Result<Vec<QuantLayer>, OnnxError> {
        let a = Analysis::new(self, input_shape)?;
        let r = Reader::new(&a);
        let mut out = Vec::new();
        for i in 0..self.graph.node.len() {
            if let Some(l) = r.read(i)? {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// The quantized convolution or matrix product whose main node is `name`.
    ///
    /// # Errors
    /// A name no node has; a node that is not a quantized convolution or matrix product (the message
    /// lists those the model has); the errors of [`quantized_layers`](Self::quantized_layers).
    pub fn quantized_layer(&self, name: &str, input_shape: Option<&[usize]>) -> Result<QuantLayer, OnnxError> {
        let i = self.node_index(name)?;
        let a = Analysis::new(self, input_shape)?;
        let r = Reader::new(&a);
        if let Some(l) = r.read(i)? {
            return Ok(l);
        }
        let node = Node::new(&self.graph.node[i]);
        let mut names = Vec::new();
        for j in 0..self.graph.node.len() {
            if let Ok(Some(l)) = r.read(j) {
                names.push(l.name);
            }
        }
        let have = if names.is_empty() {
            "the model has none".to_string()
        } else {
            format!("the model's: {}", names.join(", "))
        };
        Err(OnnxError::unsupported(
            node.name,
            node.op(),
            format!(
                "not a quantized convolution or matrix product (QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger, or a Conv / MatMul between DequantizeLinear nodes); {have}"
            ),
        ))
    }
}

/// The float scale after an integer op, and the `Cast` and `Mul` nodes that apply it.
type ScaleAfter = (Vec<f32>, Vec<String>);

/// The graph's wiring, for reading patterns around a node.
pub(crate) struct Reader<'a, 'm> {
    a: &'a Analysis<'m>,
    /// Value -> the node that writes it.
    producer: HashMap<&'m str, usize>,
    /// Value -> the nodes that read it.
    readers: HashMap<&'m str, Vec<usize>>,
}

impl<'a, 'm> Reader<'a, 'm> {
    pub(crate) fn new(a: &'a Analysis<'m>) -> Self {
        let mut producer = HashMap::new();
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in a.model.graph.node.iter().enumerate() {
            for o in p.output.iter().filter(|s| !s.is_empty()) {
                producer.insert(o.as_str(), i);
            }
            for v in p.input.iter().filter(|s| !s.is_empty()) {
                readers.entry(v.as_str()).or_default().push(i);
            }
        }
        Self { a, producer, readers }
    }

    fn node(&self, i: usize) -> Node<'m> {
        Node::new(&self.a.model.graph.node[i])
    }

    /// The node writing `v` when its op is `op`.
    fn producer_op(&self, v: &str, op: &str) -> Option<Node<'m>> {
        let &p = self.producer.get(v)?;
        Some(self.node(p)).filter(|n| n.op() == op)
    }

    /// The data type of a constant stored as an initializer.
    fn init_type(&self, v: &str) -> Option<i32> {
        match self.a.values.get(v)? {
            Val::Init(i) => Some(self.a.model.graph.initializer[*i].data_type),
            _ => None,
        }
    }

    /// The stored type of a computed tensor, where the model says: a graph input's element type, or
    /// the output type of the QuantizeLinear that writes it.
    fn act_type(&self, v: &str) -> Option<QuantType> {
        if let Some(q) = self.producer_op(v, "QuantizeLinear") {
            return match q.input(2) {
                Some(z) => self.init_type(z).and_then(QuantType::from_onnx),
                None => {
                    Some(QuantType::from_onnx(q.int("output_dtype").unwrap_or(0) as i32).unwrap_or(QuantType::Uint8))
                }
            };
        }
        let g = &self.a.model.graph;
        let vi = g.input.iter().find(|i| i.name == v)?;
        QuantType::from_onnx(vi.r#type.as_ref()?.tensor_type.as_ref()?.elem_type)
    }

    /// How many nodes read value `v`.
    pub(crate) fn readers_of(&self, v: &str) -> usize {
        self.readers.get(v).map_or(0, Vec::len)
    }

    /// The quantized type of a constant stored as an initializer.
    pub(crate) fn init_quant_type(&self, v: &str) -> Option<QuantType> {
        self.init_type(v).and_then(QuantType::from_onnx)
    }

    /// Reads node `i` as a quantized layer, `None` when it is not one.
    pub(crate) fn read(&self, i: usize) -> Result<Option<QuantLayer>, OnnxError> {
        let node = self.node(i);
        match node.op() {
            "QLinearConv" => self.conv(node, QuantForm::QOperator).map(Some),
            "ConvInteger" => self.conv(node, QuantForm::Integer).map(Some),
            "QLinearMatMul" => self.matmul(node, QuantForm::QOperator).map(Some),
            "MatMulInteger" => self.matmul(node, QuantForm::Integer).map(Some),
            "Conv" | "MatMul" => self.qdq(node),
            _ => Ok(None),
        }
    }

    fn fail(&self, node: &Node<'_>, what: String) -> OnnxError {
        OnnxError::Quantization { node: node.name.into(), op: node.op().into(), what }
    }

    /// The quantization of `tensor` from `node`'s inputs `scale_at` and `zp_at` (absent: no scale /
    /// zero point 0). `tensor_ty` is the tensor's type where known apart from its zero point;
    /// `channels` allows a per-axis quantization of that many values along `axis`.
    #[allow(clippy::too_many_arguments)]
    fn quantization(
        &self,
        node: &Node<'_>,
        role: &str,
        tensor: &str,
        scale_at: Option<usize>,
        zp_at: Option<usize>,
        tensor_ty: Option<QuantType>,
        per_axis: Option<(usize, usize, &str)>,
    ) -> Result<Quantization, OnnxError> {
        let channels_text = |n: usize| match per_axis {
            Some((c, _, what)) => format!("{n} values; {role} takes one, or one per {what} ({c})"),
            None => format!("{n} values; {role} is quantized per tensor (one value)"),
        };
        let count_ok = |n: usize| n == 1 || per_axis.is_some_and(|(c, _, _)| n == c);
        let scale = match scale_at.and_then(|k| node.input(k).map(|v| (k, v))) {
            Some((k, v)) => {
                let t = self.a.const_input(node, k, "scale")?.to_f64();
                if !count_ok(t.len()) {
                    return Err(self.fail(node, format!("{role} scale '{v}' has {}", channels_text(t.len()))));
                }
                if let Some((j, s)) = t.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
                    return Err(self.fail(
                        node,
                        format!("{role} scale '{v}' is {s} (value {j}): a scale must be a positive finite number"),
                    ));
                }
                t.iter().map(|&s| s as f32).collect()
            }
            None => Vec::new(),
        };
        let (zero_point, zp_ty) = match zp_at.and_then(|k| node.input(k).map(|v| (k, v))) {
            Some((k, v)) => {
                let t = self.a.const_input(node, k, "zero point")?.to_i64();
                let ty = match self.init_type(v) {
                    Some(code) => Some(QuantType::from_onnx(code).ok_or_else(|| {
                        self.fail(
                            node,
                            format!(
                                "{role} zero point '{v}' is {}: a zero point is int8, uint8, int16, uint16, int4, uint4 or int32",
                                dt::name(code)
                            ),
                        )
                    })?),
                    None => None,
                };
                if !count_ok(t.len()) || (!scale.is_empty() && t.len() != scale.len() && t.len() != 1) {
                    return Err(self.fail(node, format!("{role} zero point '{v}' has {}", channels_text(t.len()))));
                }
                (t, ty)
            }
            None => (vec![0], None),
        };
        let ty = tensor_ty.or(zp_ty).unwrap_or(QuantType::Uint8);
        if let Some((j, z)) = zero_point.iter().enumerate().find(|(_, z)| !(ty.min()..=ty.max()).contains(*z)) {
            return Err(self.fail(
                node,
                format!(
                    "{role} zero point {z} (value {j}) is outside {ty}'s range [{}, {}] (the type of '{tensor}')",
                    ty.min(),
                    ty.max()
                ),
            ));
        }
        let axis = per_axis.filter(|_| scale.len() > 1 || zero_point.len() > 1).map(|(_, a, _)| a);
        Ok(Quantization { tensor: tensor.into(), ty, scale, zero_point, axis })
    }

    /// A constant integer tensor (a weight) with its type.
    fn int_const(
        &self,
        node: &Node<'_>,
        k: usize,
        role: &'static str,
    ) -> Result<(Tensor, Option<QuantType>), OnnxError> {
        let t = self.a.const_input(node, k, role)?;
        let v = node.input(k).unwrap_or_default();
        let ty = match self.init_type(v) {
            Some(code) => Some(QuantType::from_onnx(code).ok_or_else(|| {
                self.fail(
                    node,
                    format!(
                        "{role} '{v}' is {}: a quantized {role} is int8, uint8, int16, uint16, int4 or uint4",
                        dt::name(code)
                    ),
                )
            })?),
            None => None,
        };
        if matches!(t.values, crate::tensor::Values::Float(_)) {
            return Err(self.fail(node, format!("{role} '{v}' holds floats: a quantized {role} holds integers")));
        }
        Ok((t, ty))
    }

    /// The int32 bias input `k` of `node`.
    fn bias(&self, node: &Node<'_>, k: usize, channels: usize) -> Result<Option<Vec<i64>>, OnnxError> {
        let Some(v) = node.input(k) else { return Ok(None) };
        let t = self.a.const_input(node, k, "bias")?;
        let code = self.init_type(v);
        if code.is_some_and(|c| c != dt::INT32) || matches!(t.values, crate::tensor::Values::Float(_)) {
            let ty = code.map_or_else(|| "float".to_string(), dt::name);
            return Err(self.fail(node, format!("bias '{v}' is {ty}: a quantized convolution's bias is int32")));
        }
        if t.len() != channels {
            return Err(
                self.fail(node, format!("bias '{v}' has {} values; the layer has {channels} output channels", t.len()))
            );
        }
        Ok(Some(t.to_i64()))
    }

    /// The shape of the activation `x` that `node` reads.
    fn act_shape(&self, node: &Node<'_>, x: &str) -> Result<Vec<usize>, OnnxError> {
        self.a
            .act_shape(x)
            .map(<[usize]>::to_vec)
            .ok_or_else(|| OnnxError::shape(node.name, node.op(), format!("the shape of its input '{x}' is unknown")))
    }

    /// A `Cast` to float → `Mul` by a constant after an integer op's output: the scale, and the nodes.
    /// The nodes a layer stands for and, for ConvInteger / MatMulInteger, the float scale after it.
    fn nodes_and_scale(
        &self,
        node: &Node<'m>,
        form: QuantForm,
        channels: usize,
    ) -> Result<(Vec<String>, Option<Vec<f32>>), OnnxError> {
        let mut nodes = vec![node.name.to_string()];
        if form != QuantForm::Integer {
            return Ok((nodes, None));
        }
        Ok(match self.output_scale(node.p.output.first().map_or("", String::as_str), channels)? {
            Some((scale, more)) => {
                nodes.extend(more);
                (nodes, Some(scale))
            }
            None => (nodes, None),
        })
    }

    fn output_scale(&self, out: &str, channels: usize) -> Result<Option<ScaleAfter>, OnnxError> {
        let only = |v: &str| -> Option<Node<'m>> {
            match self.readers.get(v).map(Vec::as_slice) {
                Some([r]) => Some(self.node(*r)),
                _ => None,
            }
        };
        let Some(cast) = only(out).filter(|n| n.op() == "Cast" && n.int("to") == Some(dt::FLOAT as i64)) else {
            return Ok(None);
        };
        let Some(c) = cast.p.output.first() else { return Ok(None) };
        let Some(mul) = only(c).filter(|n| n.op() == "Mul") else { return Ok(None) };
        let other = mul.p.input.iter().find(|v| *v != c).map(String::as_str).unwrap_or_default();
        let Some(t) = self.a.constant(other) else { return Ok(None) };
        let s = t?.to_f64();
        if s.len() != 1 && s.len() != channels {
            return Ok(None);
        }
        Ok(Some((s.iter().map(|&v| v as f32).collect(), vec![cast.name.to_string(), mul.name.to_string()])))
    }

    fn conv(&self, node: Node<'m>, form: QuantForm) -> Result<QuantLayer, OnnxError> {
        let x = node.input(0).ok_or_else(|| OnnxError::shape(node.name, node.op(), "input x is missing"))?;
        let s = self.act_shape(&node, x)?;
        let (w_at, b_at) = if form == QuantForm::QOperator { (3, Some(8)) } else { (1, None) };
        let parts = ConvParts::from_conv_inputs(self.a, &node, &s, w_at, b_at)?;
        let geometry = parts.geometry()?;
        let c_out = parts.weight_shape[0];
        let w = node.input(w_at).unwrap_or_default();
        let (wt, w_ty) = self.int_const(&node, w_at, "weight")?;
        let x_ty = self.act_type(x);
        let per_channel = Some((c_out, 0, "output channel"));
        let (input, weight, output, bias) = if form == QuantForm::QOperator {
            let y = node.p.output.first().cloned().unwrap_or_default();
            (
                self.quantization(&node, "x", x, Some(1), Some(2), x_ty, None)?,
                self.quantization(&node, "w", w, Some(4), Some(5), w_ty, per_channel)?,
                Some(self.quantization(&node, "y", &y, Some(6), Some(7), None, None)?),
                self.bias(&node, 8, c_out)?,
            )
        } else {
            (
                self.quantization(&node, "x", x, None, Some(2), x_ty, None)?,
                self.quantization(&node, "w", w, None, Some(3), w_ty, per_channel)?,
                None,
                None,
            )
        };
        let (nodes, output_scale) = self.nodes_and_scale(&node, form, c_out)?;
        Ok(QuantLayer {
            name: node.name.into(),
            op: node.op().into(),
            form,
            nodes,
            input,
            weight,
            output,
            output_scale,
            weight_shape: parts.weight_shape.clone(),
            weight_values: wt.to_i64(),
            bias,
            input_shape: s[1..].to_vec(),
            output_shape: geometry.output_shape(),
            expression: geometry.spec().to_string(),
            options: Some(parts.options()),
        })
    }

    fn matmul(&self, node: Node<'m>, form: QuantForm) -> Result<QuantLayer, OnnxError> {
        let x = node.input(0).ok_or_else(|| OnnxError::shape(node.name, node.op(), "input A is missing"))?;
        let s = self.act_shape(&node, x)?;
        let b_at = if form == QuantForm::QOperator { 3 } else { 1 };
        let b = node.input(b_at).unwrap_or_default();
        let (bt, b_ty) = self.int_const(&node, b_at, "weight")?;
        if bt.shape.len() != 2 || s.last() != Some(&bt.shape[0]) {
            return Err(OnnxError::unsupported(
                node.name,
                node.op(),
                format!("B of shape {:?} on A of shape {:?}: only x @ W with a constant 2-d W whose rows match x's last dimension", bt.shape, &s[1..]),
            ));
        }
        let (k, n) = (bt.shape[0], bt.shape[1]);
        let x_ty = self.act_type(x);
        let per_column = Some((n, 1, "column of B"));
        let (input, weight, output) = if form == QuantForm::QOperator {
            let y = node.p.output.first().cloned().unwrap_or_default();
            (
                self.quantization(&node, "a", x, Some(1), Some(2), x_ty, None)?,
                self.quantization(&node, "b", b, Some(4), Some(5), b_ty, per_column)?,
                Some(self.quantization(&node, "y", &y, Some(6), Some(7), None, None)?),
            )
        } else {
            (
                self.quantization(&node, "a", x, None, Some(2), x_ty, None)?,
                self.quantization(&node, "b", b, None, Some(3), b_ty, per_column)?,
                None,
            )
        };
        let mut out = s[1..].to_vec();
        *out.last_mut().expect("rank >= 1") = n;
        let (nodes, output_scale) = self.nodes_and_scale(&node, form, n)?;
        Ok(QuantLayer {
            name: node.name.into(),
            op: node.op().into(),
            form,
            nodes,
            input,
            weight,
            output,
            output_scale,
            weight_shape: vec![k, n],
            weight_values: bt.to_i64(),
            bias: None,
            input_shape: s[1..].to_vec(),
            output_shape: out,
            expression: format!("Linear({k}, {n}, bias=False)"),
            options: None,
        })
    }

    /// The QDQ pattern around a Conv or MatMul: `DequantizeLinear` of a computed tensor as its input,
    /// of a constant integer weight as its weight (and of an int32 constant as a Conv's bias), and an
    /// optional `QuantizeLinear`, its output's only reader. `None` when the node is not in one.
    fn qdq(&self, node: Node<'m>) -> Result<Option<QuantLayer>, OnnxError> {
        let op = node.op();
        let (Some(x), Some(w)) = (node.input(0), node.input(1)) else { return Ok(None) };
        let Some(dq_x) = self.producer_op(x, "DequantizeLinear") else { return Ok(None) };
        let Some(dq_w) = self.producer_op(w, "DequantizeLinear") else { return Ok(None) };
        let (Some(xq), Some(wq)) = (dq_x.input(0), dq_w.input(0)) else { return Ok(None) };
        if self.a.is_const(xq) || !self.a.is_const(wq) {
            return Ok(None);
        }
        let dq_b = match node.input(2).filter(|_| op == "Conv") {
            None => None,
            Some(b) => match self.producer_op(b, "DequantizeLinear") {
                Some(d) if d.input(0).is_some_and(|v| self.a.is_const(v)) => Some(d),
                _ => return Ok(None),
            },
        };
        let out = node.p.output.first().map_or("", String::as_str);
        let q_y = match self.readers.get(out).map(Vec::as_slice) {
            Some([r]) => Some(self.node(*r)).filter(|n| n.op() == "QuantizeLinear"),
            _ => None,
        };
        let s = self.act_shape(&node, x)?;
        let x_ty = self.act_type(xq);
        let input = self.quantization(&dq_x, "x", xq, Some(1), Some(2), x_ty, None)?;
        let (wt, w_ty) = self.int_const(&dq_w, 0, "weight")?;
        let output = match &q_y {
            Some(q) => {
                let y = q.p.output.first().map_or("", String::as_str);
                Some(self.quantization(q, "y", y, Some(1), Some(2), None, None)?)
            }
            None => None,
        };
        let w_axis = |rank: usize| fold::axis(&dq_w, dq_w.int("axis").unwrap_or(1), rank);
        let (weight_shape, options, input_shape, output_shape, expression, c_out, axis) = if op == "Conv" {
            let parts = ConvParts::from_conv(self.a, &node, &s)?;
            let geometry = parts.geometry()?;
            let c = parts.weight_shape[0];
            let axis = w_axis(parts.weight_shape.len())?;
            (
                parts.weight_shape.clone(),
                Some(parts.options()),
                s[1..].to_vec(),
                geometry.output_shape(),
                geometry.spec().to_string(),
                c,
                (axis, 0),
            )
        } else {
            if wt.shape.len() != 2 || s.last() != Some(&wt.shape[0]) {
                return Ok(None);
            }
            let (k, n) = (wt.shape[0], wt.shape[1]);
            let mut o = s[1..].to_vec();
            *o.last_mut().expect("rank >= 1") = n;
            let axis = w_axis(2)?;
            (vec![k, n], None, s[1..].to_vec(), o, format!("Linear({k}, {n}, bias=False)"), n, (axis, 1))
        };
        let weight =
            self.quantization(&dq_w, "w", wq, Some(1), Some(2), w_ty, Some((c_out, axis.1, "output channel")))?;
        if weight.scale.len() > 1 && axis.0 != axis.1 {
            return Err(self.fail(
                &dq_w,
                format!(
                    "per-axis weight quantization along axis {}: {op}'s output channels lie along axis {}",
                    axis.0, axis.1
                ),
            ));
        }
        let bias = match &dq_b {
            Some(d) => self.bias(d, 0, c_out)?,
            None => None,
        };
        let mut nodes: Vec<String> = vec![dq_x.name.into(), dq_w.name.into()];
        nodes.extend(dq_b.map(|d| d.name.to_string()));
        nodes.push(node.name.into());
        nodes.extend(q_y.map(|q| q.name.to_string()));
        Ok(Some(QuantLayer {
            name: node.name.into(),
            op: op.into(),
            form: QuantForm::Qdq,
            nodes,
            input,
            weight,
            output,
            output_scale: None,
            weight_shape,
            weight_values: wt.to_i64(),
            bias,
            input_shape,
            output_shape,
            expression,
            options,
        }))
    }
}

/// `DequantizeLinear` of constants: `(x - zero_point) · scale` in float32 as onnxruntime computes it,
/// per tensor or along `axis`.
pub(crate) fn dequantize(
    node: &Node<'_>,
    x: &Tensor,
    scale: &Tensor,
    zp: Option<&Tensor>,
) -> Result<Tensor, OnnxError> {
    let (name, op) = (node.name, node.op());
    if node.int("block_size").unwrap_or(0) != 0 {
        return Err(OnnxError::unsupported(name, op, "blocked quantization (block_size) is not read"));
    }
    let s = scale.to_f64();
    let z = zp.map_or_else(|| vec![0], Tensor::to_i64);
    let q = x.to_i64();
    let channel = per_axis(node, &x.shape, s.len(), z.len())?;
    let v = q
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let c = channel(i);
            let (s, z) = (s[c.min(s.len() - 1)] as f32, z[c.min(z.len() - 1)]);
            ((q - z) as f32 * s) as f64
        })
        .collect();
    Ok(Tensor::float(x.shape.clone(), v))
}

/// For a per-tensor (`n == 1`) or per-axis quantization of a tensor of `shape`, the channel of each
/// flat index.
fn per_axis(node: &Node<'_>, shape: &[usize], n: usize, nz: usize) -> Result<impl Fn(usize) -> usize, OnnxError> {
    let (name, op) = (node.name, node.op());
    if n == 0 || (nz != 1 && nz != n) {
        return Err(OnnxError::Quantization {
            node: name.into(),
            op: op.into(),
            what: format!("{n} scales and {nz} zero points: give one of each, or as many zero points as scales"),
        });
    }
    let (dim, inner) = if n == 1 {
        (1, 1)
    } else {
        let a = fold::axis(node, node.int("axis").unwrap_or(1), shape.len())?;
        if shape[a] != n {
            return Err(OnnxError::Quantization {
                node: name.into(),
                op: op.into(),
                what: format!("{n} scales along axis {a} of a tensor of shape {shape:?}: the axis has {}", shape[a]),
            });
        }
        (n, shape[a + 1..].iter().product::<usize>())
    };
    Ok(move |i: usize| (i / inner) % dim)
}
