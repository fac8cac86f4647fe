use std::fmt;
use std::str::FromStr;

use crate::geometry::spatial_names;
use crate::layout::checked_len;
use crate::parse::{Bound, Parser, ValueKind};
use crate::{ChainError, ConvSpec, Geometry, Padding, PaddingMode, ParseError, ShapeError};

/// Max or average pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// `MaxPool{N}d` / `AdaptiveMaxPool{N}d`.
    Max,
    /// `AvgPool{N}d` / `AdaptiveAvgPool{N}d`.
    Avg,
}

/// `MaxPool{N}d` / `AvgPool{N}d` with PyTorch's names and defaults (`stride` defaults to `kernel_size`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolSpec {
    /// Max or average.
    pub kind: PoolKind,
    /// Spatial rank.
    pub rank: usize,
    /// `kernel_size`, one per dimension.
    pub kernel_size: Vec<usize>,
    /// `stride`, one per dimension.
    pub stride: Vec<usize>,
    /// `padding` (both sides), one per dimension.
    pub padding: Vec<usize>,
    /// `dilation` (max pooling only), one per dimension.
    pub dilation: Vec<usize>,
    /// `ceil_mode`.
    pub ceil_mode: bool,
}

impl PoolSpec {
    /// Output spatial size, as `torch.nn.functional.{max,avg}_pool{N}d`
    /// (`pooling_output_shape` in ATen, including the ceil-mode rule that the last window must start
    /// inside the input or its left padding).
    ///
    /// # Errors
    /// Zero kernel/stride/dilation, padding above half the kernel, or an empty output.
    pub fn output_spatial(&self, input: &[usize]) -> Result<Vec<usize>, ShapeError> {
        for (param, v) in [("kernel_size", &self.kernel_size), ("stride", &self.stride), ("dilation", &self.dilation)] {
            if v.len() != self.rank {
                return Err(ShapeError::Arity { param, expected: self.rank, got: v.len() });
            }
            if let Some(d) = v.iter().position(|&x| x == 0) {
                return Err(ShapeError::Zero { param, dim: Some(d) });
            }
        }
        if self.padding.len() != self.rank {
            return Err(ShapeError::Arity { param: "padding", expected: self.rank, got: self.padding.len() });
        }
        if input.len() != self.rank {
            return Err(ShapeError::Arity { param: "input size", expected: self.rank, got: input.len() });
        }
        let mut out = Vec::with_capacity(self.rank);
        for d in 0..self.rank {
            // i128 holds every usize and the sums below; only `dil * (k - 1)` needs a check
            let (n, k, s, p, dil) = (
                input[d] as i128,
                self.kernel_size[d] as i128,
                self.stride[d] as i128,
                self.padding[d] as i128,
                self.dilation[d] as i128,
            );
            if p > k / 2 {
                return Err(ShapeError::Invalid {
                    param: "padding",
                    value: p.to_string(),
                    valid: format!(
                        "pooling padding must be at most half the kernel size ({k}/2 = {}) in dim {d}",
                        k / 2
                    ),
                });
            }
            let span = dil.checked_mul(k - 1).ok_or_else(|| crate::layout::too_large(input))?;
            let num = n + 2 * p - span - 1 + if self.ceil_mode { s - 1 } else { 0 };
            let mut o = num.div_euclid(s) + 1;
            if self.ceil_mode && (o - 1) * s >= n + p {
                o -= 1;
            }
            if o <= 0 {
                let size = i64::try_from(o).unwrap_or(i64::MIN);
                return Err(ShapeError::EmptyOutput { dim: d, size, input: input.to_vec() });
            }
            out.push(usize::try_from(o).map_err(|_| crate::layout::too_large(input))?);
        }
        Ok(out)
    }
}

/// One layer of a shape chain.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Layer {
    /// `Conv{N}d` or `ConvTranspose{N}d`.
    Conv(ConvSpec),
    /// `MaxPool{N}d` or `AvgPool{N}d`.
    Pool(PoolSpec),
    /// `AdaptiveAvgPool{N}d` / `AdaptiveMaxPool{N}d`: fixed output size (`None` keeps the input size).
    AdaptivePool {
        /// Max or average.
        kind: PoolKind,
        /// Output size per dimension.
        output: Vec<Option<usize>>,
    },
    /// `Flatten(start_dim, end_dim)`, dims counted with the batch dimension as PyTorch does.
    Flatten {
        /// First dimension to flatten (1 = first dimension of a sample).
        start_dim: i64,
        /// Last dimension to flatten (negative counts from the end).
        end_dim: i64,
    },
    /// `Linear(in_features, out_features, bias)` on the last dimension.
    Linear {
        /// `in_features`.
        in_features: usize,
        /// `out_features`.
        out_features: usize,
        /// Whether there is a bias.
        bias: bool,
    },
    /// `BatchNorm{N}d(num_features)`: shape-preserving, `2 * num_features` parameters when affine.
    BatchNorm {
        /// Spatial rank (`BatchNorm1d` accepts `(C, L)` or `(C,)`).
        rank: usize,
        /// `num_features` (the channel count it expects).
        num_features: usize,
        /// `affine`.
        affine: bool,
    },
    /// A shape-preserving layer without parameters (`ReLU`, `Dropout`, `Identity`, ...).
    Elementwise {
        /// Its name, as written.
        name: String,
    },
}

/// A layer's output shape and parameter count, as one row of `convmat shape`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerShape {
    /// The layer as PyTorch would print its constructor.
    pub layer: String,
    /// Output shape of one sample.
    pub output: Vec<usize>,
    /// Learnable parameters.
    pub params: usize,
}

const ELEMENTWISE: &[&str] = &[
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Sigmoid",
    "Tanh",
    "Hardtanh",
    "Hardswish",
    "Hardsigmoid",
    "Softplus",
    "Softsign",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "Identity",
];

impl Layer {
    /// Output shape of one sample `(C, *spatial)` (or any shape for Flatten/Linear/elementwise).
    ///
    /// # Errors
    /// An input that does not fit the layer, with what the layer expects.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, ShapeError> {
        let wrong =
            |expected: String| ShapeError::InputShape { layer: self.to_string(), expected, got: input.to_vec() };
        let spatial_input = |rank: usize, channels: Option<usize>| {
            if input.len() != rank + 1 {
                return Err(wrong(format!("(C, {}) for one sample", spatial_names(rank))));
            }
            if let Some(c) = channels {
                if input[0] != c {
                    return Err(wrong(format!("{c} channels")));
                }
            }
            Ok(&input[1..])
        };
        match self {
            Layer::Conv(spec) => {
                let spatial = spatial_input(spec.rank(), Some(spec.in_channels()))?;
                Ok(Geometry::new(spec, spatial)?.output_shape())
            }
            Layer::Pool(p) => {
                let spatial = spatial_input(p.rank, None)?;
                let mut out = vec![input[0]];
                out.extend(p.output_spatial(spatial)?);
                Ok(out)
            }
            Layer::AdaptivePool { output, .. } => {
                let spatial = spatial_input(output.len(), None)?;
                let mut out = vec![input[0]];
                out.extend(output.iter().zip(spatial).map(|(o, &n)| o.unwrap_or(n)));
                Ok(out)
            }
            Layer::Flatten { start_dim, end_dim } => {
                let batched = input.len() as i64 + 1;
                let norm = |d: i64| if d < 0 { d + batched } else { d };
                let (s, e) = (norm(*start_dim), norm(*end_dim));
                if !(1..batched).contains(&s) || !(1..batched).contains(&e) || s > e {
                    return Err(ShapeError::Invalid {
                        param: "Flatten dims",
                        value: format!("start_dim={start_dim}, end_dim={end_dim}"),
                        valid: format!(
                            "shapes are per sample (batch is dim 0): need 1 <= start_dim <= end_dim <= {} for input {input:?}",
                            batched - 1
                        ),
                    });
                }
                let (s, e) = (s as usize - 1, e as usize - 1);
                let mut out = input[..s].to_vec();
                out.push(checked_len(&input[s..=e])?);
                out.extend_from_slice(&input[e + 1..]);
                Ok(out)
            }
            Layer::Linear { in_features, out_features, .. } => {
                let Some(&last) = input.last() else {
                    return Err(wrong("at least one dimension".into()));
                };
                if last != *in_features {
                    return Err(ShapeError::LinearFeatures {
                        layer: self.to_string(),
                        expected: last,
                        got: *in_features,
                    });
                }
                let mut out = input.to_vec();
                *out.last_mut().expect("non-empty") = *out_features;
                Ok(out)
            }
            Layer::BatchNorm { rank, num_features, .. } => {
                let ok = input.len() == rank + 1 || (*rank == 1 && input.len() == 1);
                if !ok {
                    return Err(wrong(format!("(C, {}) for one sample", spatial_names(*rank))));
                }
                if input[0] != *num_features {
                    return Err(wrong(format!("{num_features} channels")));
                }
                Ok(input.to_vec())
            }
            Layer::Elementwise { .. } => Ok(input.to_vec()),
        }
    }

    /// Learnable parameters, as `sum(p.numel() for p in layer.parameters())`; `usize::MAX` when the
    /// count does not fit (no such layer fits in memory; [`propagate`] reports it as an error).
    pub fn parameter_count(&self) -> usize {
        match self {
            Layer::Conv(spec) => spec.parameter_count(),
            Layer::Linear { in_features, out_features, bias } => in_features
                .checked_mul(*out_features)
                .and_then(|w| w.checked_add(if *bias { *out_features } else { 0 }))
                .unwrap_or(usize::MAX),
            Layer::BatchNorm { num_features, affine: true, .. } => num_features.saturating_mul(2),
            _ => 0,
        }
    }
}

impl FromStr for Layer {
    type Err = ParseError;

    /// Reads a PyTorch constructor expression: `Conv2d(1, 6, 3)`, `MaxPool2d(2)`,
    /// `ConvTranspose2d(16, 8, 3, stride=2, output_padding=1)`, `Linear(16*6*6, 120)`, ...
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_layer(text)
    }
}

/// Reads a PyTorch constructor expression into a [`Layer`]; see [`Layer::from_str`].
///
/// Beyond PyTorch, `padding` also takes `'same_upper'` / `'same_lower'` (ONNX) and `2 * rank` ints in
/// ONNX `pads` order (all begins, then all ends).
///
/// # Errors
/// Unknown layers or arguments, wrong value types, invalid layer parameters, each with the column of the
/// offending text.
///
/// ```
/// use convmat_shape::{parse_layer, Layer};
/// let layer = parse_layer("Conv2d(6, 16, kernel_size=3, padding='same', padding_mode='circular')").unwrap();
/// assert_eq!(layer.output_shape(&[6, 15, 15]).unwrap(), vec![16, 15, 15]);
/// assert!(parse_layer("Conv2d(6, 16, kernel_sise=3)").unwrap_err().to_string().contains("kernel_sise"));
/// ```
pub fn parse_layer(text: &str) -> Result<Layer, ParseError> {
    let call = Parser::call(text)?;
    let name = call.name.as_str();
    let (base, rank) = split_rank(name);
    let unknown = || {
        Parser::error_at(
            text,
            call.name_at,
            format!(
                "unknown layer '{name}'; known: Conv1d-3d, ConvTranspose1d-3d, MaxPool1d-3d, AvgPool1d-3d, \
                 AdaptiveAvgPool1d-3d, AdaptiveMaxPool1d-3d, BatchNorm1d-3d, Flatten, Linear, {}",
                ELEMENTWISE.join(", ")
            ),
        )
    };
    let layer = match (base, rank) {
        ("Conv" | "ConvTranspose", Some(rank)) => {
            let transposed = base == "ConvTranspose";
            const CONV: &[&str] = &[
                "in_channels",
                "out_channels",
                "kernel_size",
                "stride",
                "padding",
                "dilation",
                "groups",
                "bias",
                "padding_mode",
                "device",
                "dtype",
            ];
            const CONVT: &[&str] = &[
                "in_channels",
                "out_channels",
                "kernel_size",
                "stride",
                "padding",
                "output_padding",
                "groups",
                "bias",
                "dilation",
                "padding_mode",
                "device",
                "dtype",
            ];
            let b = Bound::new(text, &call, if transposed { CONVT } else { CONV }, 3)?;
            let (cin, cout) = (b.usize("in_channels", 0)?, b.usize("out_channels", 0)?);
            let k = b.ints("kernel_size")?.unwrap_or_default();
            let mut spec = if transposed {
                ConvSpec::new_transposed(rank, cin, cout, &k)
            } else {
                ConvSpec::new(rank, cin, cout, &k)
            };
            if let Some(s) = b.ints("stride")? {
                spec = spec.with_stride(s);
            }
            if let Some(d) = b.ints("dilation")? {
                spec = spec.with_dilation(d);
            }
            if transposed {
                if let Some(op) = b.ints("output_padding")? {
                    spec = spec.with_output_padding(op);
                }
            }
            spec = spec.with_groups(b.usize("groups", 1)?).with_bias(b.bool("bias", true)?);
            if let Some(v) = b.raw("padding") {
                let padding = match &v.kind {
                    ValueKind::Str(s) => Padding::parse(s, rank).map_err(|e| b.error(v, e.to_string()))?,
                    _ => {
                        let p = b.ints_of("padding", v)?;
                        if p.len() == 2 * rank {
                            Padding::onnx(p).map_err(|e| b.error(v, e.to_string()))?
                        } else {
                            Padding::symmetric(p)
                        }
                    }
                };
                spec = spec.with_padding(padding);
            }
            if let Some(v) = b.raw("padding_mode") {
                let ValueKind::Str(s) = &v.kind else {
                    return Err(b.error(v, "padding_mode must be a string such as 'zeros'".into()));
                };
                spec = spec.with_padding_mode(PaddingMode::from_str(s).map_err(|e| b.error(v, e.to_string()))?);
            }
            spec.validate().map_err(|e| Parser::error_at(text, call.name_at, e.to_string()))?;
            Layer::Conv(spec)
        }
        ("MaxPool" | "AvgPool", Some(rank)) => {
            let max = base == "MaxPool";
            const MAX: &[&str] = &["kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"];
            const AVG: &[&str] =
                &["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"];
            let b = Bound::new(text, &call, if max { MAX } else { AVG }, 1)?;
            let expand = |v: Vec<usize>| if v.len() == 1 { vec![v[0]; rank] } else { v };
            let kernel_size = expand(b.ints("kernel_size")?.unwrap_or_default());
            let stride = b.ints("stride")?.map(expand).unwrap_or_else(|| kernel_size.clone());
            let padding = expand(b.ints("padding")?.unwrap_or_else(|| vec![0]));
            let dilation = if max { expand(b.ints("dilation")?.unwrap_or_else(|| vec![1])) } else { vec![1; rank] };
            let ceil_mode = b.bool("ceil_mode", false)?;
            if !max {
                b.bool("count_include_pad", true)?;
            }
            let kind = if max { PoolKind::Max } else { PoolKind::Avg };
            Layer::Pool(PoolSpec { kind, rank, kernel_size, stride, padding, dilation, ceil_mode })
        }
        ("AdaptiveAvgPool" | "AdaptiveMaxPool", Some(rank)) => {
            let max = base == "AdaptiveMaxPool";
            const NAMES: &[&str] = &["output_size", "return_indices"];
            let b = Bound::new(text, &call, if max { NAMES } else { &NAMES[..1] }, 1)?;
            let mut output = b.optional_ints("output_size")?;
            if output.len() == 1 {
                output = vec![output[0]; rank];
            }
            if output.len() != rank {
                return Err(Parser::error_at(
                    text,
                    call.name_at,
                    format!("output_size of {name} needs 1 or {rank} values, got {}", output.len()),
                ));
            }
            Layer::AdaptivePool { kind: if max { PoolKind::Max } else { PoolKind::Avg }, output }
        }
        ("BatchNorm", Some(rank)) => {
            const NAMES: &[&str] =
                &["num_features", "eps", "momentum", "affine", "track_running_stats", "device", "dtype"];
            let b = Bound::new(text, &call, NAMES, 1)?;
            Layer::BatchNorm { rank, num_features: b.usize("num_features", 0)?, affine: b.bool("affine", true)? }
        }
        ("Flatten", None) => {
            let b = Bound::new(text, &call, &["start_dim", "end_dim"], 0)?;
            Layer::Flatten { start_dim: b.int("start_dim", 1)?, end_dim: b.int("end_dim", -1)? }
        }
        ("Linear", None) => {
            let b = Bound::new(text, &call, &["in_features", "out_features", "bias", "device", "dtype"], 2)?;
            Layer::Linear {
                in_features: b.usize("in_features", 0)?,
                out_features: b.usize("out_features", 0)?,
                bias: b.bool("bias", true)?,
            }
        }
        _ if ELEMENTWISE.contains(&name) => Layer::Elementwise { name: name.to_string() },
        _ => return Err(unknown()),
    };
    Ok(layer)
}

/// `Conv2d` -> (`Conv`, Some(2)); names without a `1d`/`2d`/`3d` suffix -> (name, None).
fn split_rank(name: &str) -> (&str, Option<usize>) {
    for (suffix, r) in [("1d", 1), ("2d", 2), ("3d", 3)] {
        if let Some(base) = name.strip_suffix(suffix) {
            return (base, Some(r));
        }
    }
    (name, None)
}

impl fmt::Display for Layer {
    /// The PyTorch constructor expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[usize]| {
            if v.iter().all(|&x| Some(&x) == v.first()) && !v.is_empty() {
                v[0].to_string()
            } else {
                format!("({})", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "))
            }
        };
        match self {
            Layer::Conv(spec) => write!(f, "{spec}"),
            Layer::Pool(p) => {
                let name = if p.kind == PoolKind::Max { "MaxPool" } else { "AvgPool" };
                write!(f, "{name}{}d({}", p.rank, list(&p.kernel_size))?;
                if p.stride != p.kernel_size {
                    write!(f, ", stride={}", list(&p.stride))?;
                }
                if p.padding.iter().any(|&x| x != 0) {
                    write!(f, ", padding={}", list(&p.padding))?;
                }
                if p.dilation.iter().any(|&x| x != 1) {
                    write!(f, ", dilation={}", list(&p.dilation))?;
                }
                if p.ceil_mode {
                    f.write_str(", ceil_mode=True")?;
                }
                f.write_str(")")
            }
            Layer::AdaptivePool { kind, output } => {
                let name = if *kind == PoolKind::Max { "AdaptiveMaxPool" } else { "AdaptiveAvgPool" };
                let o: Vec<String> = output.iter().map(|o| o.map_or("None".into(), |v| v.to_string())).collect();
                if o.len() == 1 {
                    write!(f, "{name}1d({})", o[0])
                } else {
                    write!(f, "{name}{}d(({}))", o.len(), o.join(", "))
                }
            }
            Layer::Flatten { start_dim, end_dim } => {
                if (*start_dim, *end_dim) == (1, -1) {
                    f.write_str("Flatten()")
                } else {
                    write!(f, "Flatten({start_dim}, {end_dim})")
                }
            }
            Layer::Linear { in_features, out_features, bias } => {
                write!(f, "Linear({in_features}, {out_features}{})", if *bias { "" } else { ", bias=False" })
            }
            Layer::BatchNorm { rank, num_features, affine } => {
                write!(f, "BatchNorm{rank}d({num_features}{})", if *affine { "" } else { ", affine=False" })
            }
            Layer::Elementwise { name } => write!(f, "{name}()"),
        }
    }
}

/// Propagates one sample's shape `(C, *spatial)` through `layers`, reporting each layer's output shape
/// and parameter count.
///
/// # Errors
/// The first layer that does not fit what reaches it, with its 1-based index.
///
/// ```
/// use convmat_shape::{parse_layer, propagate};
/// let layers: Vec<_> = ["Conv2d(1, 6, 3)", "MaxPool2d(2)", "Conv2d(6, 16, 3)", "MaxPool2d(2)", "Flatten()"]
///     .iter().map(|s| parse_layer(s).unwrap()).collect();
/// let shapes = propagate(&[1, 32, 32], &layers).unwrap();
/// assert_eq!(shapes.last().unwrap().output, vec![576]); // so nn.Linear(16*6*6, 120)
/// ```
pub fn propagate<'a>(
    input: &[usize],
    layers: impl IntoIterator<Item = &'a Layer>,
) -> Result<Vec<LayerShape>, ChainError> {
    let mut shape = input.to_vec();
    let mut out = Vec::new();
    let mut total = 0usize;
    checked_len(input).map_err(|error| ChainError { index: 0, layer: "input".into(), error })?;
    for (i, layer) in layers.into_iter().enumerate() {
        let fail = |error| ChainError { index: i + 1, layer: layer.to_string(), error };
        shape = layer.output_shape(&shape).map_err(fail)?;
        // every count a caller sums or multiplies (features, parameters, their total) fits usize
        checked_len(&shape).map_err(fail)?;
        let params = layer.parameter_count();
        total = total.checked_add(params).filter(|_| params != usize::MAX).ok_or_else(|| {
            fail(ShapeError::Invalid {
                param: "parameter count",
                value: if params == usize::MAX {
                    format!("more than {}", usize::MAX)
                } else {
                    format!("{params}, bringing the total beyond {}", usize::MAX)
                },
                valid: format!("a network whose parameters fit {} bits", usize::BITS),
            })
        })?;
        out.push(LayerShape { layer: layer.to_string(), output: shape.clone(), params });
    }
    Ok(out)
}
