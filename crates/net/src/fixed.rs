//! A whole graph in fixed point: every block through convmat's fixed-point apply (MATLAB `fi` semantics,
//! [`ConvLayer::apply`]) with its own weight, bias, accumulator and result types, the nonlinearities
//! that are exact on stored values (Relu, MaxPool, Clip, the rearranging junctions) on them, the others
//! through `f64` and cast back, with per-layer and per-channel overflow counts, extremes and the SQNR
//! against a float run of the same graph in the same walk.
//!
//! The formats file ([`Formats`], `FORMATS.json`):
//! ```json
//! {"input": "q1.7",
//!  "default": {"weight": "q1.7", "result": "q4.12", "rounding": "nearest", "overflow": "saturate"},
//!  "layers": {"conv1": {"weight": "q2.6", "bias": "q4.12", "accumulator": "q8.14"},
//!             "relu6": {"result": "uq3.5"}}}
//! ```
//! `input`: the graph input's type (without one the input stays real and the first block needs an
//! `input` type). Per layer (by node name; `default` for every block): `input` (the block's input is
//! re-cast to it; default: the tensor's own format, so nothing is lost), `weight` (required for a
//! block), `bias` (the bias is first quantized to it; default: straight into the product's format as
//! `convmat apply` does), `accumulator` (a narrow accumulator; default: full precision), `result` (the
//! cast of the result; default: the accumulator's format), `rounding` and `overflow` (of the
//! accumulator's and the result's casts, as `convmat apply --rounding --overflow`). Any type in any
//! dialect (`q1.7`, `fi(1,8,7)`, `ap_fixed<8,1,AP_RND,AP_SAT>`, `fixed<8,1>`); a type that carries
//! modes uses them. Junctions and nonlinearities take `result`, `rounding` and `overflow` only.

use std::collections::{BTreeMap, HashMap};

use convmat_matrix::{accumulator_range, Applied, ApplyOptions, ApplyTypes, ConvLayer, MatrixError, RangeOptions};
use convmat_numeric::{Dtype, FixedType, Modes, NumericError, Overflow, QFormat, Rounding};
use convmat_shape::LayerOptions;
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::eval::{eval_node, junction, nonlinearity, Batch};
use crate::role::{numel, Junction, Kind, Nonlinearity, Role};
use crate::{BlockMap, BlockSource, Graph, NetError, Node, Tensor, Traced};

/// One layer's types and modes as `FORMATS.json` writes them: any dialect's text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerFormats {
    /// A block's input type (its input is re-cast to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// A block's weight type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
    /// A block's bias type (the bias is quantized to it first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
    /// A block's narrow accumulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulator: Option<String>,
    /// The type the node's result is cast to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Rounding of the accumulator's and the result's casts (any dialect's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<String>,
    /// Overflow of the accumulator's and the result's casts (any dialect's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overflow: Option<String>,
}

/// `FORMATS.json`: the graph input's type, defaults for every block and types per layer (node name):
/// `{"input": "q1.7", "default": {"weight": "q1.7", "result": "q4.12"}, "layers": {"conv1": {"weight":
/// "q2.6", "bias": "q4.12", "accumulator": "q8.14"}, "relu6": {"result": "uq3.5"}}}`. Per layer:
/// `input` (a block's input is re-cast to it; default: the tensor's own format), `weight` (required for a
/// block), `bias` (quantized to it first), `accumulator` (narrow; default: full precision), `result`,
/// `rounding`, `overflow` (of the accumulator's and the result's casts); junctions and nonlinearities take
/// `result`, `rounding`, `overflow` only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Formats {
    /// The graph input's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// What every block takes unless its layer entry says otherwise.
    #[serde(default)]
    pub default: LayerFormats,
    /// Per node name.
    #[serde(default)]
    pub layers: BTreeMap<String, LayerFormats>,
}

/// A formats file or a fixed-point run that cannot go on; one line naming the layer, the key and the
/// value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixedError {
    /// Not the JSON of a formats file.
    #[error("the formats are not valid: {what} (expected {{\"input\": TYPE, \"default\": {{...}}, \"layers\": {{NODE: {{\"weight\", \"bias\", \"accumulator\", \"result\", \"input\", \"rounding\", \"overflow\"}}}}}})")]
    Json {
        /// serde's message, with the line and column.
        what: String,
    },
    /// A layer entry names no node of the graph.
    #[error("the formats name layer '{layer}', which the graph does not have (its blocks: {blocks})")]
    UnknownLayer {
        /// The name.
        layer: String,
        /// The graph's blocks, the first ones.
        blocks: String,
    },
    /// A type, rounding or overflow that does not parse.
    #[error("layer '{layer}': \"{key}\": {source}")]
    Text {
        /// The layer (`default`, `input` or a node name).
        layer: String,
        /// The key.
        key: &'static str,
        /// Why.
        source: NumericError,
    },
    /// A key that does not apply to the node.
    #[error("layer '{layer}' is a {kind} ({op}): \"{key}\" applies to blocks only (a {kind} takes \"result\", \"rounding\", \"overflow\")")]
    NotBlock {
        /// The node.
        layer: String,
        /// Its role.
        kind: Kind,
        /// Its op.
        op: String,
        /// The key.
        key: &'static str,
    },
    /// A block without a weight type, or reading real values without an input type.
    #[error("layer '{layer}' has no \"{key}\" type (give it in \"layers\".\"{layer}\" or in \"default\"){why}")]
    Missing {
        /// The node.
        layer: String,
        /// The key.
        key: &'static str,
        /// Why it is needed here.
        why: String,
    },
    /// A weight or bias the type cannot hold.
    #[error("layer '{layer}': {what} {value} does not fit its type {format} (range {min} .. {max}): give at least {int_bits} integer bits (e.g. {suggest})")]
    Range {
        /// The node.
        layer: String,
        /// `weight` or `bias`.
        what: &'static str,
        /// The value.
        value: f64,
        /// The type.
        format: String,
        /// Its smallest value.
        min: f64,
        /// Its largest value.
        max: f64,
        /// Integer bits (sign included) that hold every value at the same fraction length.
        int_bits: i32,
        /// A type that does.
        suggest: String,
    },
    /// A result wider than the 53 bits a tensor of real values holds exactly.
    #[error("layer '{layer}': its {what} {format} is wider than 53 bits, which real values between layers hold exactly: give a narrower \"result\"")]
    TooWide {
        /// The node.
        layer: String,
        /// What.
        what: &'static str,
        /// The format.
        format: String,
    },
    /// The fixed-point apply failed.
    #[error("layer '{layer}': {source}")]
    Matrix {
        /// The node.
        layer: String,
        /// Why.
        source: MatrixError,
    },
    /// A layer's certified accumulator range could not be computed.
    #[error("layer '{layer}': its certified accumulator range: {what}")]
    Certified {
        /// The node.
        layer: String,
        /// Why.
        what: String,
    },
    /// The graph or the run.
    #[error(transparent)]
    Net(#[from] NetError),
}

impl Formats {
    /// Reads a formats file's text.
    ///
    /// # Errors
    /// [`FixedError::Json`]: not JSON, an unknown key, a value that is not a string.
    pub fn from_json(text: &str) -> Result<Self, FixedError> {
        serde_json::from_str(text).map_err(|e| FixedError::Json { what: e.to_string() })
    }
}

/// A layer's types, parsed, with the default filled in.
#[derive(Clone, Copy, Debug, Default)]
struct Types {
    input: Option<FixedType>,
    weight: Option<FixedType>,
    bias: Option<FixedType>,
    accumulator: Option<FixedType>,
    result: Option<FixedType>,
    rounding: Option<Rounding>,
    overflow: Option<Overflow>,
}

impl Types {
    fn parse(layer: &str, f: &LayerFormats) -> Result<Self, FixedError> {
        let text = |key: &'static str, v: &Option<String>| -> Result<Option<FixedType>, FixedError> {
            v.as_deref()
                .map(|t| t.parse::<FixedType>().map_err(|source| FixedError::Text { layer: layer.into(), key, source }))
                .transpose()
        };
        Ok(Self {
            input: text("input", &f.input)?,
            weight: text("weight", &f.weight)?,
            bias: text("bias", &f.bias)?,
            accumulator: text("accumulator", &f.accumulator)?,
            result: text("result", &f.result)?,
            rounding: f
                .rounding
                .as_deref()
                .map(|t| t.parse().map_err(|source| FixedError::Text { layer: layer.into(), key: "rounding", source }))
                .transpose()?,
            overflow: f
                .overflow
                .as_deref()
                .map(|t| t.parse().map_err(|source| FixedError::Text { layer: layer.into(), key: "overflow", source }))
                .transpose()?,
        })
    }

    fn or(self, d: Types) -> Types {
        Types {
            input: self.input.or(d.input),
            weight: self.weight.or(d.weight),
            bias: self.bias.or(d.bias),
            accumulator: self.accumulator.or(d.accumulator),
            result: self.result.or(d.result),
            rounding: self.rounding.or(d.rounding),
            overflow: self.overflow.or(d.overflow),
        }
    }
}

/// How a node computed in a fixed-point run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Arithmetic {
    /// A block through the fixed-point apply.
    Fixed,
    /// On the stored values, exactly (Relu, MaxPool, Clip, Add, Concat, reshapes, ...).
    Exact,
    /// Through `f64` on the real values, then cast to its result type (named in the report).
    Float,
}

impl Arithmetic {
    /// `fixed`, `exact` or `float`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::Exact => "exact",
            Self::Float => "float",
        }
    }
}

/// One output channel of a layer in a fixed-point run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelReport {
    /// Products whose cast into the narrow accumulator saturated or wrapped.
    pub products: u64,
    /// Accumulations (outputs) in which a partial sum (or the bias' cast) saturated or wrapped.
    pub accumulators: u64,
    /// Results whose cast to the result type saturated or wrapped.
    pub results: u64,
    /// The smallest accumulator value seen (real units).
    pub accumulator_min: f64,
    /// The largest accumulator value seen.
    pub accumulator_max: f64,
    /// The smallest result seen.
    pub result_min: f64,
    /// The largest result seen.
    pub result_max: f64,
}

/// One node of a fixed-point run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// The node's name.
    pub node: String,
    /// Its op.
    pub op: String,
    /// Its role.
    pub kind: Kind,
    /// How it computed.
    pub arithmetic: Arithmetic,
    /// The input's type as the block read it (`q` dialect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The weights' type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
    /// The bias' type, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
    /// The accumulator's type (the full-precision one without a narrow accumulator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accumulator: Option<String>,
    /// Whether the narrow accumulator was proven to hold every partial sum of every input of its
    /// input type (the certified range): its counts are then zero by proof, and it ran as the exact sum.
    #[serde(default)]
    pub certified: bool,
    /// The result's type (`null`: real values, after a float node without a type).
    pub result: Option<String>,
    /// The casts' rounding and overflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modes: Option<String>,
    /// Signal-to-quantization-noise ratio of the result against the float run, in dB (`null`: equal).
    pub sqnr_db: Option<f64>,
    /// Products that overflowed, all channels.
    pub products: u64,
    /// Accumulations that overflowed, all channels.
    pub accumulators: u64,
    /// Results that overflowed, all channels.
    pub results: u64,
    /// Per output channel (blocks and casting nodes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelReport>,
}

/// What [`Graph::run_fixed`] returns.
#[derive(Clone, Debug)]
pub struct FixedRun {
    /// The graph outputs (real values of their formats).
    pub outputs: Vec<Tensor<f64>>,
    /// Their formats (`None`: real values).
    pub formats: Vec<Option<QFormat>>,
    /// The float run's outputs, computed in the same walk (`f32`).
    pub reference: Vec<Tensor<f32>>,
    /// With tracing, every tensor of the fixed-point run in graph order.
    pub trace: Vec<Traced<f64>>,
    /// One record per node, in graph order.
    pub report: Vec<LayerReport>,
}

/// A tensor of the walk: the fixed-point run's values, their format, the float run's values.
#[derive(Clone, Debug)]
struct Value {
    fixed: Tensor<f64>,
    format: Option<QFormat>,
    float: Tensor<f32>,
}

impl Batch for Value {
    fn shape(&self) -> &[usize] {
        &self.fixed.shape
    }
    fn set_shape(&mut self, shape: Vec<usize>) {
        self.float.shape.clone_from(&shape);
        self.fixed.shape = shape;
    }
}

const ONE_LINE: usize = 6;

impl Graph {
    /// Evaluates the graph in fixed point with `formats` (see [`Formats`] and [`LayerFormats`]), and beside it in
    /// `f32` for the SQNR of every node.
    ///
    /// A block's result is bit-exact with [`ConvLayer::apply`] (`convmat apply`) of its layer (a
    /// BatchNorm or scale folded into its weights and bias, a Gemm as the 1x1 `Conv1d` of its matrix) on
    /// the block's input with the same types, rounding and overflow, its bias first quantized to the
    /// `bias` type when one is given.
    ///
    /// # Errors
    /// A formats entry naming no node, a type that does not parse or that cannot hold a layer's weights,
    /// a block without a weight type; the errors of [`run`](Self::run).
    pub fn run_fixed(
        &self,
        blocks: &dyn BlockSource,
        inputs: Vec<Tensor<f64>>,
        formats: &Formats,
        trace: bool,
    ) -> Result<FixedRun, FixedError> {
        let default = Types::parse("default", &formats.default)?;
        let mut per: HashMap<&str, Types> = HashMap::new();
        for (name, f) in &formats.layers {
            let Some(node) = self.nodes.iter().find(|n| &n.name == name) else {
                let names: Vec<&str> = self.blocks().map(|(_, n)| n.name.as_str()).collect();
                let more = if names.len() > ONE_LINE { ", ..." } else { "" };
                let blocks = format!("{}{more}", names[..names.len().min(ONE_LINE)].join(", "));
                return Err(FixedError::UnknownLayer { layer: name.clone(), blocks });
            };
            let t = Types::parse(name, f)?;
            if node.kind() != Kind::Block {
                for (key, given) in [
                    ("input", t.input.is_some()),
                    ("weight", t.weight.is_some()),
                    ("bias", t.bias.is_some()),
                    ("accumulator", t.accumulator.is_some()),
                ] {
                    if given {
                        return Err(FixedError::NotBlock {
                            layer: name.clone(),
                            kind: node.kind(),
                            op: node.op.clone(),
                            key,
                        });
                    }
                }
            }
            per.insert(name.as_str(), t);
        }
        let input_type = formats
            .input
            .as_deref()
            .map(|t| {
                t.parse::<FixedType>().map_err(|source| FixedError::Text {
                    layer: "input".into(),
                    key: "input",
                    source,
                })
            })
            .transpose()?;
        let inputs = inputs
            .into_iter()
            .map(|t| {
                let float = Tensor::new(t.shape.clone(), t.data.iter().map(|&v| v as f32).collect());
                let (fixed, format) = match input_type {
                    Some(ty) => {
                        let m = ty.modes(None, None).map_err(|source| FixedError::Text {
                            layer: "input".into(),
                            key: "input",
                            source,
                        })?;
                        let f = ty.format;
                        (
                            Tensor::new(
                                t.shape,
                                t.data.iter().map(|&v| f.to_f64(f.quantize(v, m.rounding, m.overflow))).collect(),
                            ),
                            Some(f),
                        )
                    }
                    None => (t, None),
                };
                Ok(Value { fixed, format, float })
            })
            .collect::<Result<Vec<_>, FixedError>>()?;
        let mut report = Vec::with_capacity(self.nodes.len());
        // the walk's errors are NetErrors: a fixed-point error crosses as a block error naming the node
        let mut failed: Option<FixedError> = None;
        let walked = self.walk(inputs, trace, |i, node, ins, n| {
            let types = per.get(node.name.as_str()).copied().unwrap_or_default();
            let types = if node.kind() == Kind::Block {
                types.or(default)
            } else {
                types.or(Types { rounding: default.rounding, overflow: default.overflow, ..Types::default() })
            };
            match eval_fixed(blocks, i, node, ins, n, &types) {
                Ok((outs, rec)) => {
                    report.push(rec);
                    Ok(outs)
                }
                Err(FixedError::Net(e)) => Err(e),
                Err(e) => {
                    let msg = e.to_string();
                    failed = Some(e);
                    Err(NetError::shape(&node.name, &node.op, msg))
                }
            }
        });
        let (outputs, traced) = match walked {
            Ok(w) => w,
            Err(e) => return Err(failed.take().unwrap_or(FixedError::Net(e))),
        };
        let trace = traced
            .into_iter()
            .map(|(i, tensor, v)| Traced {
                node: self.nodes[i].name.clone(),
                op: self.nodes[i].op.clone(),
                tensor,
                value: v.fixed,
            })
            .collect();
        let formats = outputs.iter().map(|v| v.format).collect();
        let reference = outputs.iter().map(|v| v.float.clone()).collect();
        let outputs = outputs.into_iter().map(|v| v.fixed).collect();
        Ok(FixedRun { outputs, formats, reference, trace, report })
    }
}

/// `10 log10(Σ ref² / Σ (x - ref)²)`; `None` when equal.
fn sqnr(x: &[f64], reference: &[f32]) -> Option<f64> {
    let (mut s, mut e) = (0.0f64, 0.0f64);
    for (&a, &r) in x.iter().zip(reference) {
        let r = f64::from(r);
        s += r * r;
        e += (a - r) * (a - r);
    }
    (e > 0.0).then(|| 10.0 * (s / e).log10())
}

/// Per-channel tallies of one node's casts.
struct Tally {
    channels: Vec<ChannelReport>,
}

impl Tally {
    fn new(c: usize) -> Self {
        let blank = ChannelReport {
            accumulator_min: f64::INFINITY,
            accumulator_max: f64::NEG_INFINITY,
            result_min: f64::INFINITY,
            result_max: f64::NEG_INFINITY,
            ..ChannelReport::default()
        };
        Self { channels: vec![blank; c] }
    }

    fn finish(mut self) -> Vec<ChannelReport> {
        for c in &mut self.channels {
            for v in [&mut c.accumulator_min, &mut c.accumulator_max, &mut c.result_min, &mut c.result_max] {
                if !v.is_finite() {
                    *v = 0.0;
                }
            }
        }
        self.channels
    }
}

/// `(channels, values per channel per sample)` of a batch `(N, C, ...)` (or `(N, F)`: `F` channels).
fn channels_of(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 | 1 => (1, numel(shape).max(1)),
        _ => (shape[1], numel(&shape[2..])),
    }
}

/// Stored integers of `from_frac` cast to `ty` with `modes`, counted per channel, as real values.
fn cast(raw: &[i128], from_frac: i32, to: QFormat, modes: Modes, shape: &[usize], tally: &mut Tally) -> Vec<f64> {
    let (c, per) = channels_of(shape);
    let wide = QFormat::new(true, 128, to.frac_bits()).expect("128-bit word");
    raw.iter()
        .enumerate()
        .map(|(k, &r)| {
            let v = to.requantize(r, from_frac, modes.rounding, modes.overflow);
            let ch = &mut tally.channels[(k / per) % c];
            if wide.requantize(r, from_frac, modes.rounding, modes.overflow) != v {
                ch.results += 1;
            }
            let real = to.to_f64(v);
            ch.result_min = ch.result_min.min(real);
            ch.result_max = ch.result_max.max(real);
            real
        })
        .collect()
}

/// Real values of `from` as stored integers.
fn stored(x: &[f64], from: QFormat) -> Vec<i128> {
    let s = 2f64.powi(from.frac_bits());
    x.iter().map(|&v| (v * s) as i128).collect()
}

fn check53(layer: &str, what: &'static str, f: QFormat) -> Result<(), FixedError> {
    if f.word_bits() > 53 {
        return Err(FixedError::TooWide { layer: layer.into(), what, format: f.to_string() });
    }
    Ok(())
}

/// Checks that `ty` holds every value of `values` (rounded by its modes) without overflow.
fn check_holds(layer: &str, what: &'static str, values: &[f64], ty: FixedType, modes: Modes) -> Result<(), FixedError> {
    let f = ty.format;
    let wide = QFormat::new(true, 128, f.frac_bits()).expect("128-bit word");
    let rounded: Vec<i128> = values.iter().map(|&v| wide.quantize(v, modes.rounding, Overflow::Saturate)).collect();
    let Some(k) = rounded.iter().position(|&r| r < f.raw_min() || r > f.raw_max()) else { return Ok(()) };
    let (lo, hi) = rounded.iter().fold((0i128, 0i128), |(a, b), &r| (a.min(r), b.max(r)));
    let int_bits = convmat_matrix::signed_bits(lo, hi) as i32 - f.frac_bits();
    Err(FixedError::Range {
        layer: layer.into(),
        what,
        value: values[k],
        format: ty.to_string(),
        min: f.to_f64(f.raw_min()),
        max: f.to_f64(f.raw_max()),
        int_bits,
        suggest: format!("q{int_bits}.{}", f.frac_bits()),
    })
}

/// Whether a narrow accumulator `acc` provably never rounds or overflows on this layer, for every input
/// of format `input`, so that the narrow loop equals the exact sum: its fraction at least the product's,
/// the weights quantized by fi's constructor (as the certified range quantizes them), the bias inside the
/// product's word (where `FixedConv` would saturate it), every single product and every channel's
/// certified accumulator range ([`accumulator_range`](convmat_matrix::accumulator_range), bias included)
/// inside `acc`. Every partial sum lies in its row's certified range: each term's range holds 0, so a
/// partial sum's extremes are between the bias and the whole sum's.
pub(crate) fn certified(layer: &ConvLayer, input: QFormat, weight: QFormat, modes: Modes, acc: QFormat) -> bool {
    let Ok(product) = weight.product(input) else { return false };
    let up = acc.frac_bits() - product.frac_bits();
    if !(0..=64).contains(&up) || modes != Modes::MATLAB || !acc.signed() {
        return false;
    }
    let fits = |v: i128| v.checked_mul(1i128 << up).is_some_and(|v| v >= acc.raw_min() && v <= acc.raw_max());
    let wide = QFormat::new(true, 128, product.frac_bits()).expect("128-bit word");
    if layer.bias().is_some_and(|b| {
        b.iter().any(|&v| {
            let r = wide.quantize(v, Rounding::Nearest, Overflow::Saturate);
            r < product.raw_min() || r > product.raw_max()
        })
    }) {
        return false;
    }
    let max_w = layer
        .weight()
        .iter()
        .map(|&w| weight.quantize(w, Rounding::Nearest, Overflow::Saturate).unsigned_abs())
        .max()
        .unwrap_or(0);
    let max_x = input.raw_min().unsigned_abs().max(input.raw_max().unsigned_abs());
    let Some(p) = max_w.checked_mul(max_x).and_then(|p| i128::try_from(p).ok()) else { return false };
    if !fits(p) || !fits(-p) {
        return false;
    }
    let mut opts = RangeOptions::new(input);
    opts.weight_format = Some(weight);
    match accumulator_range(layer, &opts) {
        Ok(r) => r.channels().iter().all(|c| fits(c.min) && fits(c.max)),
        Err(_) => false,
    }
}

/// A block's map as one convolution layer, when it is one: a convolution with a per-channel scale and
/// shift folded into its weights and bias, or a Gemm (`reps = 1`) as the 1x1 `Conv1d` of its matrix.
pub(crate) fn as_layer(map: &BlockMap) -> Result<Option<ConvLayer>, MatrixError> {
    match map {
        BlockMap::Conv { layer, scale: None, shift: None } => Ok(Some(layer.clone())),
        BlockMap::Conv { layer, scale, shift } => {
            let c = layer.geometry().spec().out_channels();
            let rows = layer.geometry().rows();
            let per = rows / c.max(1);
            let uniform = |v: &Option<Vec<f64>>| v.as_ref().is_none_or(|v| (0..rows).all(|r| v[r] == v[r / per * per]));
            if !uniform(scale) || !uniform(shift) {
                return Ok(None);
            }
            let s = |ch: usize| scale.as_ref().map_or(1.0, |s| s[ch * per]);
            let t = |ch: usize| shift.as_ref().map_or(0.0, |t| t[ch * per]);
            let k = layer.weight().len() / c.max(1);
            let weight = layer.weight().iter().enumerate().map(|(i, &w)| w * s(i / k)).collect();
            // a bias only where the layer or the shift has one: a bias term widens the accumulator
            let bias = (layer.bias().is_some() || shift.is_some())
                .then(|| (0..c).map(|ch| layer.bias().map_or(0.0, |b| b[ch]) * s(ch) + t(ch)).collect());
            layer.with_weights(weight, bias).map(Some)
        }
        BlockMap::Dense { weight, rows, cols, reps: 1, bias } => ConvLayer::new(
            &[*rows, *cols, 1],
            weight.clone(),
            Some(bias.clone()),
            &[*cols, 1],
            &LayerOptions::default(),
        )
        .map(Some),
        _ => Ok(None),
    }
}

fn eval_fixed(
    blocks: &dyn BlockSource,
    i: usize,
    node: &Node,
    ins: &[&Value],
    n: usize,
    types: &Types,
) -> Result<(Vec<Value>, LayerReport), FixedError> {
    let floats: Vec<&Tensor<f32>> = ins.iter().map(|v| &v.float).collect();
    // the float run, from the float run's own inputs
    let float_outs = match &node.role {
        Role::Block => {
            let fail = |source| NetError::Block { node: node.name.clone(), op: node.op.clone(), source };
            let map = blocks.block(i, node).map_err(fail)?;
            let y = map.apply(&floats[0].data).map_err(|e| NetError::Matrix {
                node: node.name.clone(),
                op: node.op.clone(),
                source: Box::new(e),
            })?;
            let shape = crate::graph::full(n, &node.output_shapes[0]);
            let out = vec![Tensor::new(shape, y)];
            return block(node, map, ins, n, types, out);
        }
        _ => eval_node(blocks, i, node, &floats, n)?,
    };
    let fixed: Vec<&Tensor<f64>> = ins.iter().map(|v| &v.fixed).collect();
    let formats: Vec<Option<QFormat>> = ins.iter().map(|v| v.format).collect();
    let all = formats.iter().copied().collect::<Option<Vec<QFormat>>>();
    let shapes: Vec<Vec<usize>> = node.output_shapes.iter().map(|s| crate::graph::full(n, s)).collect();
    let modes = |ty: FixedType| {
        ty.modes(types.rounding, types.overflow).map_err(|source| FixedError::Text {
            layer: node.name.clone(),
            key: "result",
            source,
        })
    };
    // values computed on the real values and the format they are exact in (None: through float)
    let (outs, format, arithmetic): (Vec<Tensor<f64>>, Option<QFormat>, Arithmetic) = match &node.role {
        Role::Junction(j @ (Junction::Add | Junction::Sub)) => match all {
            Some(f) => {
                // MATLAB's full-precision sum: the longer fraction, one more integer bit than the wider
                let frac = f[0].frac_bits().max(f[1].frac_bits());
                let int = f[0].int_bits().max(f[1].int_bits()) + 1;
                let signed = f[0].signed() || f[1].signed() || matches!(j, Junction::Sub);
                let sum = QFormat::new(signed, (int + frac).max(2) as u32, frac)
                    .map_err(|source| FixedError::Text { layer: node.name.clone(), key: "result", source })?;
                check53(&node.name, "exact sum", sum)?;
                (junction(j, &fixed, shapes), Some(sum), Arithmetic::Exact)
            }
            None => (junction(j, &fixed, shapes), None, Arithmetic::Float),
        },
        Role::Junction(j @ Junction::Concat { .. }) => match all {
            Some(f) => {
                let frac = f.iter().map(|f| f.frac_bits()).max().unwrap_or(0);
                let int = f.iter().map(|f| f.int_bits()).max().unwrap_or(1);
                let signed = f.iter().any(|f| f.signed());
                let common = QFormat::new(signed, (int + frac).max(2) as u32, frac)
                    .map_err(|source| FixedError::Text { layer: node.name.clone(), key: "result", source })?;
                check53(&node.name, "common format", common)?;
                (junction(j, &fixed, shapes), Some(common), Arithmetic::Exact)
            }
            None => (junction(j, &fixed, shapes), None, Arithmetic::Float),
        },
        Role::Junction(j) => (junction(j, &fixed, shapes), formats[0], Arithmetic::Exact),
        Role::Nonlinearity(f) => {
            let out = shapes.into_iter().next().expect("one output");
            match (f, formats[0]) {
                (Nonlinearity::Relu | Nonlinearity::MaxPool { .. } | Nonlinearity::GlobalMaxPool, Some(x)) => {
                    (vec![nonlinearity(f, &fixed, out)], Some(x), Arithmetic::Exact)
                }
                (Nonlinearity::Clip { min, max }, Some(x)) => {
                    // bounds inside the format (the lower rounded up, the upper down): the result stays in it
                    let q = |v: f64, r| x.to_f64(x.quantize(v, r, Overflow::Saturate));
                    let clip = Nonlinearity::Clip {
                        min: min.map(|m| q(m, Rounding::Ceiling)),
                        max: max.map(|m| q(m, Rounding::Floor)),
                    };
                    (vec![nonlinearity(&clip, &fixed, out)], Some(x), Arithmetic::Exact)
                }
                (Nonlinearity::Mul, _)
                    if all.as_ref().is_some_and(|f| f[0].product(f[1]).is_ok_and(|p| p.word_bits() <= 53)) =>
                {
                    let p = all.as_ref().expect("checked");
                    (vec![nonlinearity(f, &fixed, out)], Some(p[0].product(p[1]).expect("checked")), Arithmetic::Exact)
                }
                _ => {
                    // not exact on stored values: through f64, then back to the input's format unless a
                    // result type is given
                    (vec![nonlinearity(f, &fixed, out)], None, Arithmetic::Float)
                }
            }
        }
        Role::Block => unreachable!("handled above"),
    };
    // the cast: a result type given, or a float node back to its input's format
    let target = match (types.result, arithmetic) {
        (Some(t), _) => Some(t),
        (None, Arithmetic::Float) if format.is_none() => formats[0].map(FixedType::plain),
        _ => None,
    };
    let mut rec = LayerReport {
        node: node.name.clone(),
        op: node.op.clone(),
        kind: node.kind(),
        arithmetic,
        input: None,
        weight: None,
        bias: None,
        accumulator: None,
        certified: false,
        result: format.map(|f| f.to_string()),
        modes: None,
        sqnr_db: None,
        products: 0,
        accumulators: 0,
        results: 0,
        channels: Vec::new(),
    };
    let (outs, format) = match target {
        Some(ty) => {
            let m = modes(ty)?;
            check53(&node.name, "result", ty.format)?;
            let mut cast_outs = Vec::with_capacity(outs.len());
            let mut tallies = Vec::new();
            for t in outs {
                let mut tally = Tally::new(channels_of(&t.shape).0);
                let data = match format {
                    Some(f) => cast(&stored(&t.data, f), f.frac_bits(), ty.format, m, &t.shape, &mut tally),
                    None => {
                        // real values: quantize each (the count: values beyond the type)
                        let wide = QFormat::new(true, 128, ty.format.frac_bits()).expect("128-bit word");
                        let (c, per) = channels_of(&t.shape);
                        t.data
                            .iter()
                            .enumerate()
                            .map(|(k, &v)| {
                                let q = ty.format.quantize(v, m.rounding, m.overflow);
                                let ch = &mut tally.channels[(k / per) % c];
                                if wide.quantize(v, m.rounding, Overflow::Saturate) != q {
                                    ch.results += 1;
                                }
                                let r = ty.format.to_f64(q);
                                ch.result_min = ch.result_min.min(r);
                                ch.result_max = ch.result_max.max(r);
                                r
                            })
                            .collect()
                    }
                };
                tallies.push(tally);
                cast_outs.push(Tensor::new(t.shape, data));
            }
            let ch = tallies.into_iter().next().map(Tally::finish).unwrap_or_default();
            rec.results = ch.iter().map(|c| c.results).sum();
            rec.channels = ch;
            rec.result = Some(ty.format.to_string());
            rec.modes = Some(m.to_string());
            (cast_outs, Some(ty.format))
        }
        None => (outs, format),
    };
    rec.sqnr_db = sqnr(&outs[0].data, &float_outs[0].data);
    let values = outs.into_iter().zip(float_outs).map(|(fixed, float)| Value { fixed, format, float }).collect();
    Ok((values, rec))
}

/// A block in fixed point: the layer through [`ConvLayer::apply`] (raw accumulators) or, with a narrow
/// accumulator, through [`FixedConv::apply_narrow_counted`](convmat_matrix::FixedConv::apply_narrow_counted),
/// then the result cast, counted.
fn block(
    node: &Node,
    map: BlockMap,
    ins: &[&Value],
    n: usize,
    types: &Types,
    float_out: Vec<Tensor<f32>>,
) -> Result<(Vec<Value>, LayerReport), FixedError> {
    let name = node.name.as_str();
    let x = ins[0];
    let shape = crate::graph::full(n, &node.output_shapes[0]);
    let matrix = |source| FixedError::Matrix { layer: name.into(), source };
    let text = |key, source| FixedError::Text { layer: name.into(), key, source };
    let mut rec = LayerReport {
        node: node.name.clone(),
        op: node.op.clone(),
        kind: Kind::Block,
        arithmetic: Arithmetic::Fixed,
        input: None,
        weight: None,
        bias: None,
        accumulator: None,
        certified: false,
        result: None,
        modes: None,
        sqnr_db: None,
        products: 0,
        accumulators: 0,
        results: 0,
        channels: Vec::new(),
    };
    let Some(layer) = as_layer(&map).map_err(matrix)? else {
        // a sparse or diagonal map: through f64, then the result type
        let y = map.apply(&x.fixed.data).map_err(matrix)?;
        rec.arithmetic = Arithmetic::Float;
        let (data, format) = match types.result {
            Some(ty) => {
                let m = ty.modes(types.rounding, types.overflow).map_err(|s| text("result", s))?;
                check53(name, "result", ty.format)?;
                let mut tally = Tally::new(channels_of(&shape).0);
                let wide = QFormat::new(true, 128, ty.format.frac_bits()).expect("128-bit word");
                let (c, per) = channels_of(&shape);
                let d = y
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| {
                        let q = ty.format.quantize(v, m.rounding, m.overflow);
                        let ch = &mut tally.channels[(k / per) % c];
                        if wide.quantize(v, m.rounding, Overflow::Saturate) != q {
                            ch.results += 1;
                        }
                        ty.format.to_f64(q)
                    })
                    .collect();
                rec.channels = tally.finish();
                rec.results = rec.channels.iter().map(|c| c.results).sum();
                rec.modes = Some(m.to_string());
                (d, Some(ty.format))
            }
            None => (y, None),
        };
        rec.result = format.map(|f| f.to_string());
        let fixed = Tensor::new(shape, data);
        rec.sqnr_db = sqnr(&fixed.data, &float_out[0].data);
        let float = float_out.into_iter().next().expect("one output");
        return Ok((vec![Value { fixed, format, float }], rec));
    };
    let weight =
        types.weight.ok_or_else(|| FixedError::Missing { layer: name.into(), key: "weight", why: String::new() })?;
    let input = match (types.input, x.format) {
        (Some(t), _) => t,
        (None, Some(f)) => FixedType::plain(f),
        (None, None) => {
            return Err(FixedError::Missing {
                layer: name.into(),
                key: "input",
                why: ": it reads real values (the graph input without an \"input\" type, or a float node's result)"
                    .into(),
            })
        }
    };
    let wm = weight.modes(None, None).map_err(|s| text("weight", s))?;
    check_holds(name, "weight", layer.weight(), weight, wm)?;
    let layer = match (types.bias, layer.bias()) {
        (Some(bt), Some(b)) => {
            let bm = bt.modes(None, None).map_err(|s| text("bias", s))?;
            check_holds(name, "bias", b, bt, bm)?;
            let q: Vec<f64> =
                b.iter().map(|&v| bt.format.to_f64(bt.format.quantize(v, bm.rounding, bm.overflow))).collect();
            layer.with_weights(layer.weight().to_vec(), Some(q)).map_err(matrix)?
        }
        _ => layer,
    };
    let mut at = ApplyTypes::default();
    at.input = Some(input);
    at.weight = Some(weight);
    at.accumulator = types.accumulator;
    at.rounding = types.rounding;
    at.overflow = types.overflow;
    let mut options = ApplyOptions::new(Dtype::Fixed(input.format)).with_types(&at).map_err(matrix)?;
    options.raw = true;
    let (c, per) = channels_of(&shape);
    let mut tally = Tally::new(c);
    // the accumulators, stored integers
    let (acc, acc_format): (Vec<i128>, QFormat) = match types.accumulator {
        None => {
            let out = layer.apply(&x.fixed.data, n, &options).map_err(|e| match e {
                MatrixError::ResultTooWide { format, .. } => {
                    FixedError::TooWide { layer: name.into(), what: "full-precision accumulator", format }
                }
                e => matrix(e),
            })?;
            let f: QFormat = out.format.parse().map_err(|s| text("accumulator", s))?;
            match out.values {
                Applied::I64(v) => (v.into_iter().map(i128::from).collect(), f),
                _ => unreachable!("raw results are stored integers"),
            }
        }
        Some(a) if certified(&layer, input.format, weight.format, wm, a.format) => {
            // the narrow loop would equal the exact sum (no cast rounds or overflows, proven above): the
            // fast full-precision path, its stored integers re-expressed in the accumulator's fraction
            rec.certified = true;
            let mut full = options;
            (full.accumulator, full.accumulator_modes) = (None, None);
            let out = layer.apply(&x.fixed.data, n, &full).map_err(matrix)?;
            let f: QFormat = out.format.parse().map_err(|s| text("accumulator", s))?;
            let up = a.format.frac_bits() - f.frac_bits();
            match out.values {
                Applied::I64(v) => (v.into_iter().map(|r| i128::from(r) << up).collect(), a.format),
                _ => unreachable!("raw results are stored integers"),
            }
        }
        Some(a) => {
            let fc = layer.fixed_conv(&options).map_err(matrix)?;
            let xq = fc.quantize_input(&x.fixed.data);
            let xv = ArrayView2::from_shape((n, fc.raw_conv().cols()), &xq).expect("whole samples");
            let m = options.accumulator_modes.unwrap_or(Modes::new(options.rounding, options.overflow));
            let (y, counts) = fc.apply_narrow_counted(xv, a.format, m.rounding, m.overflow).map_err(matrix)?;
            for (ch, (p, s)) in tally.channels.iter_mut().zip(counts.products.iter().zip(&counts.accumulators)) {
                ch.products = *p;
                ch.accumulators = *s;
            }
            (y.raw.into_raw_vec_and_offset().0, a.format)
        }
    };
    for (k, &r) in acc.iter().enumerate() {
        let ch = &mut tally.channels[(k / per) % c];
        let v = acc_format.to_f64(r);
        ch.accumulator_min = ch.accumulator_min.min(v);
        ch.accumulator_max = ch.accumulator_max.max(v);
    }
    let (data, format) = match types.result {
        Some(rt) => {
            let m = rt.modes(types.rounding, types.overflow).map_err(|s| text("result", s))?;
            check53(name, "result", rt.format)?;
            rec.modes = Some(m.to_string());
            (cast(&acc, acc_format.frac_bits(), rt.format, m, &shape, &mut tally), rt.format)
        }
        None => {
            check53(name, "accumulator (the result without a \"result\" type)", acc_format)?;
            let d: Vec<f64> = acc.iter().map(|&r| acc_format.to_f64(r)).collect();
            for (k, &v) in d.iter().enumerate() {
                let ch = &mut tally.channels[(k / per) % c];
                ch.result_min = ch.result_min.min(v);
                ch.result_max = ch.result_max.max(v);
            }
            (d, acc_format)
        }
    };
    rec.channels = tally.finish();
    rec.products = rec.channels.iter().map(|c| c.products).sum();
    rec.accumulators = rec.channels.iter().map(|c| c.accumulators).sum();
    rec.results = rec.channels.iter().map(|c| c.results).sum();
    rec.input = Some(input.format.to_string());
    rec.weight = Some(weight.format.to_string());
    rec.bias = types.bias.map(|b| b.format.to_string());
    rec.accumulator = Some(acc_format.to_string());
    rec.result = Some(format.to_string());
    let fixed = Tensor::new(shape, data);
    rec.sqnr_db = sqnr(&fixed.data, &float_out[0].data);
    let float = float_out.into_iter().next().expect("one output");
    Ok((vec![Value { fixed, format: Some(format), float }], rec))
}
