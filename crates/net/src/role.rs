//! What each node of a graph is: a block, a junction or a nonlinearity, with the typed parameters its
//! ONNX semantics need, and the output shapes those semantics give.
//!
//! Axes are those of the whole tensor, batch first (ONNX's convention: axis 1 is the channel axis).

use serde::{Deserialize, Serialize};

/// The role of a node, as one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An exact affine map of one computed tensor.
    Block,
    /// An affine map of several computed tensors (or a rearrangement of one).
    Junction,
    /// Everything else, by ONNX semantics.
    Nonlinearity,
}

impl Kind {
    /// `block`, `junction` or `nonlinearity`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Junction => "junction",
            Self::Nonlinearity => "nonlinearity",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's role with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// An exact affine map `flatten(y) = A · flatten(x) + b` of one computed tensor, built on demand by
    /// a [`BlockSource`](crate::BlockSource).
    Block,
    /// A junction.
    Junction(Junction),
    /// A nonlinearity.
    Nonlinearity(Nonlinearity),
}

impl Role {
    /// The role as one word.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Block => Kind::Block,
            Self::Junction(_) => Kind::Junction,
            Self::Nonlinearity(_) => Kind::Nonlinearity,
        }
    }
}

/// Affine maps of several computed tensors, and rearrangements of one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "junction")]
#[non_exhaustive]
pub enum Junction {
    /// `a + b`, NumPy broadcasting (a residual connection).
    Add,
    /// `a - b`, NumPy broadcasting.
    Sub,
    /// The inputs side by side along `axis`.
    Concat {
        /// The axis (1: channels).
        axis: usize,
    },
    /// One input cut along `axis` into consecutive pieces of `sizes`, one output each.
    Split {
        /// The axis.
        axis: usize,
        /// The pieces' sizes, summing to the axis' size.
        sizes: Vec<usize>,
    },
    /// Regularly spaced elements along some axes: on axis `axes[i]`, `counts[i]` elements from
    /// `starts[i]` in steps of `steps[i]` (negative: backwards).
    Slice {
        /// The axes sliced (never the batch axis 0).
        axes: Vec<usize>,
        /// First index on each.
        starts: Vec<usize>,
        /// Step on each (non-zero).
        steps: Vec<i64>,
        /// Elements kept on each.
        counts: Vec<usize>,
    },
    /// Axes permuted: output axis `i` is input axis `perm[i]` (`perm[0] = 0`, the batch stays first).
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// The same values in the same (row-major) order under the node's output shape: Flatten, Reshape,
    /// Squeeze, Unsqueeze, Identity, Dropout (inference).
    Reshape,
}

/// Nonlinear ops, each with ONNX semantics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "nonlinearity")]
#[non_exhaustive]
pub enum Nonlinearity {
    /// `max(x, 0)`.
    Relu,
    /// `x` if `x >= 0` else `alpha · x`.
    LeakyRelu {
        /// The negative slope.
        alpha: f64,
    },
    /// `x` if `x >= 0` else `slope · x`, the slope broadcast onto the input (NumPy rules, full shape).
    PRelu {
        /// The slopes.
        slope: Vec<f64>,
        /// Their shape.
        shape: Vec<usize>,
    },
    /// `x` if `x > 0` else `alpha · (exp(x) - 1)`.
    Elu {
        /// The scale of the negative part.
        alpha: f64,
    },
    /// `min(max(x, min), max)`; a missing bound does not clip (Relu6: `0, 6`).
    Clip {
        /// The lower bound.
        min: Option<f64>,
        /// The upper bound.
        max: Option<f64>,
    },
    /// `max(0, min(1, alpha · x + beta))`.
    HardSigmoid {
        /// The slope.
        alpha: f64,
        /// The offset.
        beta: f64,
    },
    /// `x · max(0, min(1, x / 6 + 1 / 2))`.
    HardSwish,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `ln(1 + exp(x))`.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// The error function (torch's exact GELU is `0.5 · x · (1 + erf(x / √2))`).
    Erf,
    /// `0.5 · x · (1 + erf(x / √2))`, or its tanh approximation.
    Gelu {
        /// `approximate="tanh"`.
        tanh: bool,
    },
    /// `|x|`.
    Abs,
    /// `exp(x)`.
    Exp,
    /// `√x`.
    Sqrt,
    /// `1 / x`.
    Reciprocal,
    /// `x ^ exponent` (a constant exponent, as LayerNorm patterns square).
    Pow {
        /// The exponent.
        exponent: f64,
    },
    /// The largest value of each window, pads never chosen (ONNX MaxPool).
    MaxPool {
        /// Window size per spatial dimension.
        kernel: Vec<usize>,
        /// Step per spatial dimension.
        strides: Vec<usize>,
        /// Dilation per spatial dimension.
        dilations: Vec<usize>,
        /// Padding before each spatial dimension.
        pads_begin: Vec<usize>,
        /// The output's spatial size (it holds ceil_mode and the end padding).
        output: Vec<usize>,
    },
    /// The largest value of each channel.
    GlobalMaxPool,
    /// `exp(x) / sum(exp(x))` along `axis` (opset 13 and later), or over all axes from `axis` on
    /// (`coerce`: opsets before 13).
    Softmax {
        /// The axis.
        axis: usize,
        /// Whether the axes from `axis` on are one.
        coerce: bool,
    },
    /// `log(softmax(x))`, the same axes.
    LogSoftmax {
        /// The axis.
        axis: usize,
        /// Whether the axes from `axis` on are one.
        coerce: bool,
    },
    /// `(x - mean) / √(var + epsilon) · scale + bias` over the axes from `axis` on.
    LayerNorm {
        /// The first normalized axis.
        axis: usize,
        /// Added to the variance.
        epsilon: f64,
        /// One value per normalized element (broadcast already).
        scale: Vec<f64>,
        /// One value per normalized element (broadcast already).
        bias: Vec<f64>,
    },
    /// `a · b` of two computed tensors, NumPy broadcasting (squeeze-and-excitation, SiLU's `x · σ(x)`).
    Mul,
    /// `a / b` of two computed tensors, NumPy broadcasting.
    Div,
    /// `gamma · x` if `x > 0` else `gamma · alpha · (exp(x) - 1)` (ONNX Selu).
    Selu {
        /// The scale of the negative part.
        alpha: f64,
        /// The overall scale.
        gamma: f64,
    },
    /// `max(0, x) + min(0, alpha · (exp(x / alpha) - 1))` (ONNX Celu).
    Celu {
        /// The scale.
        alpha: f64,
    },
    /// `x · tanh(ln(1 + exp(x)))`.
    Mish,
    /// `x` if `x > alpha` else 0.
    ThresholdedRelu {
        /// The threshold.
        alpha: f64,
    },
    /// `-1`, `0` or `1` by the sign of `x`.
    Sign,
    /// The natural logarithm.
    Log,
    /// The nearest integer, halves to even.
    Round,
    /// The largest integer not above `x`.
    Floor,
    /// The smallest integer not below `x`.
    Ceil,
    /// `(Σ |x|^p)^(1/p)` over each window, pads counting as zeros (ONNX LpPool).
    LpPool {
        /// The exponent.
        p: f64,
        /// Window size per spatial dimension.
        kernel: Vec<usize>,
        /// Step per spatial dimension.
        strides: Vec<usize>,
        /// Dilation per spatial dimension.
        dilations: Vec<usize>,
        /// Padding before each spatial dimension.
        pads_begin: Vec<usize>,
        /// The output's spatial size.
        output: Vec<usize>,
    },
    /// `(Σ |x|^p)^(1/p)` over each channel.
    GlobalLpPool {
        /// The exponent.
        p: f64,
    },
    /// Local response normalization across channels: `x / (bias + alpha / size · Σ x²)^beta`, the sum
    /// over the `size` channels around each (ONNX LRN).
    Lrn {
        /// Channels summed over.
        size: usize,
        /// Scale of the sum.
        alpha: f64,
        /// Exponent.
        beta: f64,
        /// Offset.
        bias: f64,
    },
}

/// NumPy broadcasting of two shapes, `None` when they do not broadcast.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let x = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
            let y = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
            match (x, y) {
                (x, y) if x == y => Some(x),
                (1, y) => Some(y),
                (x, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// The element count of a shape.
pub(crate) fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

impl Junction {
    /// The op as ONNX names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Add => "Add",
            Self::Sub => "Sub",
            Self::Concat { .. } => "Concat",
            Self::Split { .. } => "Split",
            Self::Slice { .. } => "Slice",
            Self::Transpose { .. } => "Transpose",
            Self::Reshape => "Reshape",
        }
    }

    /// The output shapes on inputs of full shapes `ins`; `declared` (the node's outputs) gives a
    /// Reshape its shape.
    pub(crate) fn output_shapes(&self, ins: &[Vec<usize>], declared: &[Vec<usize>]) -> Result<Vec<Vec<usize>>, String> {
        let arity = match self {
            Self::Add | Self::Sub => Some(2),
            Self::Concat { .. } => None,
            _ => Some(1),
        };
        if let Some(n) = arity.filter(|&n| n != ins.len()) {
            return Err(format!("reads {} computed tensors; {} takes {n}", ins.len(), self.name()));
        }
        if ins.is_empty() {
            return Err("reads no computed tensor".into());
        }
        let s = &ins[0];
        let axis_ok = |a: usize| {
            if a == 0 || a >= s.len() {
                Err(format!("axis {a} is not an axis of {s:?} other than the batch axis 0"))
            } else {
                Ok(())
            }
        };
        Ok(match self {
            Self::Add | Self::Sub => vec![broadcast(&ins[0], &ins[1])
                .ok_or_else(|| format!("operands of shapes {:?} and {:?} do not broadcast", ins[0], ins[1]))?],
            Self::Concat { axis } => {
                axis_ok(*axis)?;
                let mut out = s.clone();
                out[*axis] = 0;
                for t in ins {
                    if t.len() != s.len() || t.iter().enumerate().any(|(d, &x)| d != *axis && x != s[d]) {
                        return Err(format!("inputs of shapes {s:?} and {t:?} do not concatenate on axis {axis}"));
                    }
                    out[*axis] += t[*axis];
                }
                vec![out]
            }
            Self::Split { axis, sizes } => {
                axis_ok(*axis)?;
                if sizes.iter().sum::<usize>() != s[*axis] {
                    return Err(format!("pieces {sizes:?} do not add up to axis {axis} of {s:?}"));
                }
                sizes
                    .iter()
                    .map(|&n| {
                        let mut o = s.clone();
                        o[*axis] = n;
                        o
                    })
                    .collect()
            }
            Self::Slice { axes, starts, steps, counts } => {
                let mut out = s.clone();
                if axes.len() != starts.len() || axes.len() != steps.len() || axes.len() != counts.len() {
                    return Err("axes, starts, steps and counts differ in length".into());
                }
                for (((&a, &b), &st), &n) in axes.iter().zip(starts).zip(steps).zip(counts) {
                    axis_ok(a)?;
                    let last = b as i64 + st * (n as i64 - 1);
                    if st == 0 || (n > 0 && (b >= s[a] || last < 0 || last >= s[a] as i64)) {
                        return Err(format!("{n} elements from {b} in steps of {st} do not fit axis {a} of {s:?}"));
                    }
                    out[a] = n;
                }
                vec![out]
            }
            Self::Transpose { perm } => {
                let mut seen = vec![false; s.len()];
                if perm.len() != s.len()
                    || perm.first() != Some(&0)
                    || perm.iter().any(|&p| p >= s.len() || std::mem::replace(&mut seen[p], true))
                {
                    return Err(format!(
                        "perm {perm:?} is not a permutation of the {} axes of {s:?} keeping the batch axis 0 first",
                        s.len()
                    ));
                }
                vec![perm.iter().map(|&p| s[p]).collect()]
            }
            Self::Reshape => {
                let out = declared.first().ok_or("declares no output shape")?;
                if numel(out) != numel(s) || out.first() != s.first() {
                    return Err(format!("{s:?} cannot be reshaped to {out:?} (element counts or batch differ)"));
                }
                vec![out.clone()]
            }
        })
    }
}

impl Nonlinearity {
    /// The op's name (ONNX's where ONNX has one).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Relu => "Relu",
            Self::LeakyRelu { .. } => "LeakyRelu",
            Self::PRelu { .. } => "PRelu",
            Self::Elu { .. } => "Elu",
            Self::Clip { .. } => "Clip",
            Self::HardSigmoid { .. } => "HardSigmoid",
            Self::HardSwish => "HardSwish",
            Self::Sigmoid => "Sigmoid",
            Self::Tanh => "Tanh",
            Self::Softplus => "Softplus",
            Self::Softsign => "Softsign",
            Self::Erf => "Erf",
            Self::Gelu { .. } => "Gelu",
            Self::Abs => "Abs",
            Self::Exp => "Exp",
            Self::Sqrt => "Sqrt",
            Self::Reciprocal => "Reciprocal",
            Self::Pow { .. } => "Pow",
            Self::MaxPool { .. } => "MaxPool",
            Self::GlobalMaxPool => "GlobalMaxPool",
            Self::Softmax { .. } => "Softmax",
            Self::LogSoftmax { .. } => "LogSoftmax",
            Self::LayerNorm { .. } => "LayerNormalization",
            Self::Mul => "Mul",
            Self::Div => "Div",
            Self::Selu { .. } => "Selu",
            Self::Celu { .. } => "Celu",
            Self::Mish => "Mish",
            Self::ThresholdedRelu { .. } => "ThresholdedRelu",
            Self::Sign => "Sign",
            Self::Log => "Log",
            Self::Round => "Round",
            Self::Floor => "Floor",
            Self::Ceil => "Ceil",
            Self::LpPool { .. } => "LpPool",
            Self::GlobalLpPool { .. } => "GlobalLpPool",
            Self::Lrn { .. } => "LRN",
        }
    }

    /// The output shapes on inputs of full shapes `ins`.
    pub(crate) fn output_shapes(&self, ins: &[Vec<usize>]) -> Result<Vec<Vec<usize>>, String> {
        let arity = if matches!(self, Self::Mul | Self::Div) { 2 } else { 1 };
        if ins.len() != arity {
            return Err(format!("reads {} computed tensors; {} takes {arity}", ins.len(), self.name()));
        }
        let s = &ins[0];
        let spatial = |what: &str| {
            if s.len() < 3 {
                Err(format!("{what} reads (N, C, spatial...); its input has shape {s:?}"))
            } else {
                Ok(())
            }
        };
        Ok(vec![match self {
            Self::Mul | Self::Div => broadcast(&ins[0], &ins[1])
                .ok_or_else(|| format!("operands of shapes {:?} and {:?} do not broadcast", ins[0], ins[1]))?,
            Self::PRelu { slope, shape } => {
                if numel(shape) != slope.len() || broadcast(s, shape).as_ref() != Some(s) {
                    return Err(format!("slope of shape {shape:?} does not broadcast onto {s:?}"));
                }
                s.clone()
            }
            Self::MaxPool { kernel, strides, dilations, pads_begin, output }
            | Self::LpPool { kernel, strides, dilations, pads_begin, output, .. } => {
                spatial(self.name())?;
                let r = s.len() - 2;
                if [kernel.len(), strides.len(), dilations.len(), pads_begin.len(), output.len()]
                    .iter()
                    .any(|&n| n != r)
                {
                    return Err(format!("kernel, strides, dilations, pads and output need {r} values each"));
                }
                let mut o = s[..2].to_vec();
                o.extend(output);
                o
            }
            Self::GlobalMaxPool | Self::GlobalLpPool { .. } => {
                spatial(self.name())?;
                let mut o = s[..2].to_vec();
                o.extend(std::iter::repeat_n(1, s.len() - 2));
                o
            }
            Self::Softmax { axis, .. } | Self::LogSoftmax { axis, .. } => {
                if *axis >= s.len() {
                    return Err(format!("axis {axis} is not an axis of {s:?}"));
                }
                s.clone()
            }
            Self::Lrn { size, .. } => {
                if s.len() < 2 || *size == 0 {
                    return Err(format!(
                        "LRN of size {size} needs a positive size and (N, C, ...); its input has shape {s:?}"
                    ));
                }
                s.clone()
            }
            Self::LayerNorm { axis, scale, bias, .. } => {
                let n = numel(s.get(*axis..).unwrap_or_default());
                if *axis == 0 || *axis >= s.len() || scale.len() != n || bias.len() != n {
                    return Err(format!(
                        "axis {axis} with {} scales and {} biases does not fit {s:?}",
                        scale.len(),
                        bias.len()
                    ));
                }
                s.clone()
            }
            _ => s.clone(),
        }])
    }
}

/// The floating-point type a run computes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// `f32` (onnxruntime's precision for float32 models).
    #[default]
    Float32,
    /// `f64`.
    Float64,
}

impl Precision {
    /// `float32` or `float64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::Float64 => "float64",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "float32" | "f32" => Ok(Self::Float32),
            "float64" | "f64" => Ok(Self::Float64),
            _ => Err(format!("'{s}' is not a run precision; valid: float32, float64")),
        }
    }
}
