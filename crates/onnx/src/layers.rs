//! ONNX node attributes mapped onto convmat's layer options: Conv / ConvTranspose (pads begin/end,
//! auto_pad, output_padding, output_shape, group, dilations), Pad (folded into the next Conv's padding
//! mode, or a depthwise identity convolution of its own) and AveragePool / GlobalAveragePool (a depthwise
//! convolution of ones, rows scaled by the window's divisor).

use convmat_matrix::{Conv, ConvLayer};
use convmat_shape::{Geometry, LayerOptions, Padding, PaddingMode};

use crate::graph::Analysis;
use crate::node::Node;
use crate::OnnxError;

/// Where a convolution's weights come from.
#[derive(Clone, Debug)]
pub(crate) enum WeightSrc {
    /// The node's weight (and optional bias) inputs.
    Inputs { weight: String, bias: Option<String> },
    /// All ones (pooling windows, Pad's identity kernel).
    Ones,
}

/// A convolution-like node resolved on its input shape, in convmat's (PyTorch's) terms.
#[derive(Clone, Debug)]
pub(crate) struct ConvParts {
    pub node: String,
    pub op: String,
    pub weight_shape: Vec<usize>,
    pub src: WeightSrc,
    pub stride: Vec<usize>,
    pub dilation: Vec<usize>,
    pub groups: usize,
    pub padding: Padding,
    pub padding_mode: PaddingMode,
    pub transposed: bool,
    pub output_padding: Vec<usize>,
    /// One sample's input shape `(C, *spatial)`.
    pub input_shape: Vec<usize>,
    /// The bias length (from the initializer's shape), when the node has a bias.
    pub bias_len: Option<usize>,
    /// For average pooling: the window divisors.
    pub pool: Option<PoolParts>,
}

fn spatial_rank(node: &Node<'_>, s: &[usize]) -> Result<usize, OnnxError> {
    match s.len() {
        3..=5 => Ok(s.len() - 2),
        _ => Err(OnnxError::unsupported(
            node.name,
            node.op(),
            format!("its input has shape {:?}; convmat handles (N, C, 1-3 spatial dimensions)", s),
        )),
    }
}

impl ConvParts {
    pub fn has_bias(&self) -> bool {
        matches!(self.src, WeightSrc::Inputs { bias: Some(_), .. })
    }

    /// Conv / ConvTranspose on an input of full shape `s` (batch first).
    pub fn from_conv(a: &Analysis<'_>, node: &Node<'_>, s: &[usize]) -> Result<Self, OnnxError> {
        Self::from_conv_inputs(a, node, s, 1, Some(2))
    }

    /// A convolution whose weight is input `w_at` and bias input `b_at` (QLinearConv: 3 and 8,
    /// ConvInteger: 1 and none), the attributes as Conv's.
    pub fn from_conv_inputs(
        a: &Analysis<'_>,
        node: &Node<'_>,
        s: &[usize],
        w_at: usize,
        b_at: Option<usize>,
    ) -> Result<Self, OnnxError> {
        let (name, op) = (node.name, node.op());
        let rank = spatial_rank(node, s)?;
        let transposed = op == "ConvTranspose";
        let w = node.input(w_at).ok_or_else(|| OnnxError::shape(name, op, "the weight input W is missing"))?;
        let weight_shape = a.const_shape(w).ok_or_else(|| OnnxError::NotConstant {
            node: name.into(),
            op: op.into(),
            input: w.into(),
            role: "weight",
        })?;
        if weight_shape.len() != s.len() {
            return Err(OnnxError::shape(
                name,
                op,
                format!("weight of shape {weight_shape:?} does not fit an input of shape {:?} (ranks differ)", &s[1..]),
            ));
        }
        let bias_input = b_at.and_then(|b| node.input(b));
        let bias_len = bias_input.and_then(|b| a.const_shape(b)).map(|s| s.iter().product());
        let bias = match bias_input {
            Some(b) if a.is_const(b) => Some(b.to_string()),
            Some(b) => {
                return Err(OnnxError::NotConstant { node: name.into(), op: op.into(), input: b.into(), role: "bias" })
            }
            None => None,
        };
        if weight_shape.contains(&0) {
            return Err(OnnxError::shape(name, op, format!("weight of shape {weight_shape:?} has a zero dimension")));
        }
        let kernel = &weight_shape[2..];
        if let Some(k) = node.usizes("kernel_shape")? {
            if k != kernel {
                return Err(OnnxError::attr(
                    name,
                    op,
                    "kernel_shape",
                    format!("{k:?}"),
                    format!("must equal the weight's spatial dimensions {kernel:?}"),
                ));
            }
        }
        let stride = node.per_dim("strides", rank, 1)?;
        let dilation = node.per_dim("dilations", rank, 1)?;
        let groups = node.int("group").unwrap_or(1);
        let groups = usize::try_from(groups)
            .ok()
            .filter(|&g| g >= 1)
            .ok_or_else(|| OnnxError::attr(name, op, "group", groups, "a positive integer"))?;
        let pads = node.usizes("pads")?.unwrap_or_else(|| vec![0; 2 * rank]);
        check_pads(name, op, &pads, rank, "(all begins, then all ends)")?;
        let auto_pad = node.string("auto_pad").unwrap_or_default();
        let auto_pad = if auto_pad.is_empty() { "NOTSET".to_string() } else { auto_pad };
        let bad_auto =
            || OnnxError::attr(name, op, "auto_pad", &auto_pad, "one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
        let mut output_padding = vec![0; rank];
        let padding = if !transposed {
            match auto_pad.as_str() {
                "NOTSET" => Padding::onnx(&pads).map_err(|e| OnnxError::Geometry {
                    node: name.into(),
                    op: op.into(),
                    source: Box::new(e),
                })?,
                "SAME_UPPER" => Padding::SameUpper,
                "SAME_LOWER" => Padding::SameLower,
                "VALID" => Padding::Valid,
                _ => return Err(bad_auto()),
            }
        } else {
            output_padding = node.per_dim("output_padding", rank, 0)?;
            let output_shape = node.usizes("output_shape")?;
            let target: Option<Vec<usize>> = match (&output_shape, auto_pad.as_str()) {
                (Some(o), _) if o.len() >= rank => Some(o[o.len() - rank..].to_vec()),
                (Some(o), _) => {
                    return Err(OnnxError::attr(
                        name,
                        op,
                        "output_shape",
                        format!("{o:?}"),
                        format!("expected {rank} spatial sizes"),
                    ))
                }
                (None, "SAME_UPPER" | "SAME_LOWER") => {
                    Some((0..rank).map(|d| s[2 + d].saturating_mul(stride[d])).collect())
                }
                (None, "NOTSET" | "VALID") => None,
                _ => return Err(bad_auto()),
            };
            match target {
                Some(t) => {
                    let upper = auto_pad == "SAME_UPPER";
                    let mut begin = vec![0; rank];
                    let mut end = vec![0; rank];
                    for d in 0..rank {
                        let eff = dilation[d].saturating_mul(kernel[d] - 1).saturating_add(1);
                        let full = stride[d]
                            .saturating_mul(s[2 + d] - 1)
                            .saturating_add(output_padding[d])
                            .saturating_add(eff);
                        // the spec's total padding, negative when output_shape asks for more than the
                        // full output (zeros beyond it): split with floor division as the spec's reference
                        let total = full as i64 - t[d] as i64;
                        let half = total.div_euclid(2);
                        let (b, e) = if upper { (half, total - half) } else { (total - half, half) };
                        if b < 0 {
                            return Err(OnnxError::attr(
                                name,
                                op,
                                "output_shape",
                                format!("{t:?}"),
                                format!("dimension {d} would need {} zero rows before the full output (negative begin padding), which convmat cannot express; at most {full} fits without it", -b),
                            ));
                        }
                        begin[d] = b as usize;
                        if e < 0 {
                            // zeros after the full output: PyTorch's output_padding
                            output_padding[d] += (-e) as usize;
                        } else {
                            end[d] = e as usize;
                        }
                    }
                    Padding::Explicit { begin, end }
                }
                None if auto_pad == "VALID" => Padding::Valid,
                None => Padding::onnx(&pads).map_err(|e| OnnxError::Geometry {
                    node: name.into(),
                    op: op.into(),
                    source: Box::new(e),
                })?,
            }
        };
        Ok(Self {
            node: name.into(),
            op: op.into(),
            weight_shape,
            src: WeightSrc::Inputs { weight: w.into(), bias },
            stride,
            dilation,
            groups,
            padding,
            padding_mode: PaddingMode::Zeros,
            transposed,
            output_padding,
            input_shape: s[1..].to_vec(),
            bias_len,
            pool: None,
        })
    }

    /// A Pad as a depthwise 1x1 convolution of ones: the padded tensor, exactly.
    pub fn from_pad(node: &Node<'_>, pad: &PadParts, s: &[usize]) -> Result<Self, OnnxError> {
        let rank = spatial_rank(node, s)?;
        let mut weight_shape = vec![s[1], 1];
        weight_shape.extend(std::iter::repeat_n(1, rank));
        Ok(Self {
            node: node.name.into(),
            op: node.op().into(),
            weight_shape,
            src: WeightSrc::Ones,
            stride: vec![1; rank],
            dilation: vec![1; rank],
            groups: s[1],
            padding: Padding::Explicit { begin: pad.begin.clone(), end: pad.end.clone() },
            padding_mode: pad.mode,
            transposed: false,
            output_padding: vec![0; rank],
            input_shape: s[1..].to_vec(),
            bias_len: None,
            pool: None,
        })
    }

    /// An average pool as a depthwise convolution of ones (the divisors applied per row).
    pub fn from_pool(node: &Node<'_>, pool: &PoolParts, s: &[usize]) -> Result<Self, OnnxError> {
        let rank = spatial_rank(node, s)?;
        let mut weight_shape = vec![s[1], 1];
        weight_shape.extend(&pool.kernel);
        let end: Vec<usize> = (0..rank).map(|d| pool.pad_end[d] + pool.extra[d]).collect();
        Ok(Self {
            node: node.name.into(),
            op: node.op().into(),
            weight_shape,
            src: WeightSrc::Ones,
            stride: pool.stride.clone(),
            dilation: pool.dilation.clone(),
            groups: s[1],
            padding: Padding::Explicit { begin: pool.pad_begin.clone(), end },
            padding_mode: PaddingMode::Zeros,
            transposed: false,
            output_padding: vec![0; rank],
            input_shape: s[1..].to_vec(),
            bias_len: None,
            pool: Some(pool.clone()),
        })
    }

    /// This convolution with the Pad before it folded in, when one padding (and mode) expresses both.
    pub fn fuse_pad(&self, pad: &PadParts) -> Option<Self> {
        if self.transposed || self.padding_mode != PaddingMode::Zeros {
            return None;
        }
        let g = self.geometry().ok()?;
        let (pb, pe) = (g.pad_begin(), g.pad_end());
        let padding = if pad.mode == PaddingMode::Zeros {
            Padding::Explicit {
                begin: pad.begin.iter().zip(pb).map(|(a, b)| a + b).collect(),
                end: pad.end.iter().zip(pe).map(|(a, b)| a + b).collect(),
            }
        } else if pb.iter().chain(pe).all(|&p| p == 0) {
            Padding::Explicit { begin: pad.begin.clone(), end: pad.end.clone() }
        } else {
            return None;
        };
        let mut input_shape = self.input_shape.clone();
        for d in 0..pad.begin.len() {
            input_shape[d + 1] = input_shape[d + 1].checked_sub(pad.begin[d] + pad.end[d])?;
        }
        Some(Self { padding, padding_mode: pad.mode, input_shape, ..self.clone() })
    }

    /// The node's attributes as convmat's layer options: the front door every front end shares.
    pub fn options(&self) -> LayerOptions {
        LayerOptions::new()
            .with_stride(&self.stride)
            .with_dilation(&self.dilation)
            .with_padding(self.padding.clone())
            .with_groups(self.groups)
            .with_padding_mode(self.padding_mode)
            .with_transposed(self.transposed)
            .with_output_padding(&self.output_padding)
    }

    fn geometry_error(&self, source: convmat_shape::ShapeError) -> OnnxError {
        OnnxError::Geometry { node: self.node.clone(), op: self.op.clone(), source: Box::new(source) }
    }

    /// The layer on its input shape, every shape checked against the others.
    pub fn geometry(&self) -> Result<Geometry, OnnxError> {
        self.options()
            .geometry(&self.weight_shape, self.bias_len, &self.input_shape)
            .map_err(|e| self.geometry_error(e))
    }

    /// The weight and bias values.
    pub fn weights(&self, a: &Analysis<'_>) -> Result<(Vec<f64>, Option<Vec<f64>>), OnnxError> {
        match &self.src {
            WeightSrc::Ones => Ok((vec![1.0; self.weight_shape.iter().product()], None)),
            WeightSrc::Inputs { weight, bias } => {
                let w = a.constant(weight).expect("checked constant at analysis")?.to_f64();
                let b = bias
                    .as_ref()
                    .map(|b| a.constant(b).expect("checked constant at analysis").map(|t| t.to_f64()))
                    .transpose()?;
                Ok((w, b))
            }
        }
    }

    /// The layer with its weights (scaled by `scale`), through [`ConvLayer::new`].
    pub fn layer(&self, a: &Analysis<'_>, scale: f64) -> Result<ConvLayer, OnnxError> {
        let (mut w, b) = self.weights(a)?;
        if scale != 1.0 {
            w.iter_mut().for_each(|v| *v *= scale);
        }
        ConvLayer::new(&self.weight_shape, w, b, &self.input_shape, &self.options()).map_err(|source| {
            OnnxError::Matrix { node: self.node.clone(), op: self.op.clone(), source: Box::new(source) }
        })
    }

    /// The convolution with its weights, in f64.
    pub fn conv(&self, a: &Analysis<'_>) -> Result<Conv<f64>, OnnxError> {
        self.layer(a, 1.0)?.conv::<f64>().map_err(|source| OnnxError::Matrix {
            node: self.node.clone(),
            op: self.op.clone(),
            source: Box::new(source),
        })
    }

    /// For average pooling: `1 / divisor` per output row.
    pub fn row_scale(&self) -> Option<Vec<f64>> {
        let pool = self.pool.as_ref()?;
        let per_pos = pool.divisors(&self.input_shape[1..]);
        let c = self.input_shape[0];
        Some((0..c).flat_map(|_| per_pos.iter().map(|&d| 1.0 / d as f64)).collect())
    }
}

/// A Pad node's spatial amounts and mode.
#[derive(Clone, Debug)]
pub(crate) struct PadParts {
    pub begin: Vec<usize>,
    pub end: Vec<usize>,
    pub mode: PaddingMode,
    pub mode_name: String,
}

impl PadParts {
    pub fn from_node(a: &Analysis<'_>, node: &Node<'_>) -> Result<Self, OnnxError> {
        let (name, op) = (node.name, node.op());
        let s = node.input(0).and_then(|x| a.act_shape(x)).unwrap_or_default().to_vec();
        let r = s.len();
        let mode_name = node.string("mode").unwrap_or_else(|| "constant".into());
        let (mut pads, value, axes) = if a.model.opset() < 11 {
            (node.ints("pads").map(<[i64]>::to_vec).unwrap_or_default(), node.float("value").unwrap_or(0.0), None)
        } else {
            let pads = a.const_input(node, 1, "pads")?.to_i64();
            let value = match node.input(2) {
                Some(_) => {
                    let v = a.const_input(node, 2, "constant_value")?;
                    if v.is_empty() {
                        0.0
                    } else {
                        v.get_f64(0)
                    }
                }
                None => 0.0,
            };
            let axes = match node.input(3) {
                Some(_) => Some(a.const_input(node, 3, "axes")?.to_i64()),
                None => None,
            };
            (pads, value, axes)
        };
        if let Some(axes) = axes {
            if pads.len() != 2 * axes.len() {
                return Err(OnnxError::shape(name, op, format!("pads {pads:?} do not match axes {axes:?}")));
            }
            let mut full = vec![0i64; 2 * r];
            for (k, &ax) in axes.iter().enumerate() {
                let ax = crate::fold::axis(node, ax, r)?;
                full[ax] = pads[k];
                full[r + ax] = pads[axes.len() + k];
            }
            pads = full;
        }
        check_pads(name, op, &pads, r, &format!("for an input of rank {r}"))?;
        if pads.iter().any(|&p| p < 0) {
            return Err(OnnxError::unsupported(name, op, format!("negative pads {pads:?} (cropping)")));
        }
        if r < 3 || pads[0] != 0 || pads[1] != 0 || pads[r] != 0 || pads[r + 1] != 0 {
            return Err(OnnxError::unsupported(
                name,
                op,
                format!("pads {pads:?} pad the batch or channel dimension; convmat pads spatial dimensions"),
            ));
        }
        let mode = match mode_name.as_str() {
            "constant" if value == 0.0 => PaddingMode::Zeros,
            "constant" => {
                return Err(OnnxError::unsupported(
                    name,
                    op,
                    format!("constant padding with value {value} (only 0 is a padding mode)"),
                ))
            }
            "reflect" => PaddingMode::Reflect,
            "edge" => PaddingMode::Replicate,
            "wrap" => PaddingMode::Circular,
            other => return Err(OnnxError::attr(name, op, "mode", other, "one of constant, reflect, edge, wrap")),
        };
        let pads: Vec<usize> = pads.iter().map(|&p| p as usize).collect();
        Ok(Self { begin: pads[2..r].to_vec(), end: pads[r + 2..].to_vec(), mode, mode_name })
    }
}

/// A pooling node's windows resolved on its input.
#[derive(Clone, Debug)]
pub(crate) struct PoolParts {
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub dilation: Vec<usize>,
    pub pad_begin: Vec<usize>,
    pub pad_end: Vec<usize>,
    /// Extra zero padding at the end that ceil_mode's last partial window reads (never counted).
    pub extra: Vec<usize>,
    pub out: Vec<usize>,
    pub count_include_pad: bool,
}

impl PoolParts {
    pub fn from_node(node: &Node<'_>, s: &[usize]) -> Result<Self, OnnxError> {
        let (name, op) = (node.name, node.op());
        let rank = spatial_rank(node, s)?;
        let input = &s[2..];
        let global = op.starts_with("Global");
        let kernel = if global {
            input.to_vec()
        } else {
            node.usizes("kernel_shape")?
                .ok_or_else(|| OnnxError::attr(name, op, "kernel_shape", "missing", "required"))?
        };
        if kernel.len() != rank || kernel.contains(&0) {
            return Err(OnnxError::attr(
                name,
                op,
                "kernel_shape",
                format!("{kernel:?}"),
                format!("{rank} positive values"),
            ));
        }
        let stride = if global { vec![1; rank] } else { node.per_dim("strides", rank, 1)? };
        let dilation = if global { vec![1; rank] } else { node.per_dim("dilations", rank, 1)? };
        if stride.contains(&0) || dilation.contains(&0) {
            return Err(OnnxError::attr(
                name,
                op,
                "strides/dilations",
                format!("{stride:?}/{dilation:?}"),
                "positive values",
            ));
        }
        let pads = if global { vec![0; 2 * rank] } else { node.usizes("pads")?.unwrap_or_else(|| vec![0; 2 * rank]) };
        if pads.len() != 2 * rank {
            return Err(OnnxError::attr(
                name,
                op,
                "pads",
                format!("{pads:?}"),
                format!("expected {} values", 2 * rank),
            ));
        }
        let auto_pad = node.string("auto_pad").filter(|s| !s.is_empty()).unwrap_or_else(|| "NOTSET".into());
        let ceil = node.int("ceil_mode").unwrap_or(0) != 0;
        let count_include_pad = node.int("count_include_pad").unwrap_or(0) != 0;
        let (mut pad_begin, mut pad_end, mut extra, mut out) =
            (vec![0; rank], vec![0; rank], vec![0; rank], vec![0; rank]);
        for d in 0..rank {
            let (n, k, st) = (input[d], kernel[d], stride[d]);
            let eff = dilation[d].saturating_mul(k - 1).saturating_add(1);
            let (pb, pe) = match auto_pad.as_str() {
                "NOTSET" => (pads[d], pads[rank + d]),
                "VALID" => (0, 0),
                "SAME_UPPER" | "SAME_LOWER" => {
                    let o = n.div_ceil(st);
                    let total = ((o - 1).saturating_mul(st).saturating_add(eff)).saturating_sub(n);
                    if auto_pad == "SAME_UPPER" {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    }
                }
                other => {
                    return Err(OnnxError::attr(
                        name,
                        op,
                        "auto_pad",
                        other,
                        "one of NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                    ))
                }
            };
            let span = n.saturating_add(pb).saturating_add(pe);
            if span < eff {
                return Err(OnnxError::shape(
                    name,
                    op,
                    format!("the window ({eff} wide in dimension {d}) is larger than the padded input ({span})"),
                ));
            }
            let mut o = if ceil { (span - eff).div_ceil(st) + 1 } else { (span - eff) / st + 1 };
            if ceil && (o - 1).saturating_mul(st) >= n.saturating_add(pb) {
                o -= 1;
            }
            pad_begin[d] = pb;
            pad_end[d] = pe;
            extra[d] = ((o - 1).saturating_mul(st).saturating_add(eff)).saturating_sub(span);
            out[d] = o;
        }
        Ok(Self { kernel, stride, dilation, pad_begin, pad_end, extra, out, count_include_pad })
    }

    /// The divisor of each output position (row-major over the output grid).
    pub fn divisors(&self, input: &[usize]) -> Vec<usize> {
        let rank = self.kernel.len();
        let per_dim: Vec<Vec<usize>> = (0..rank)
            .map(|d| {
                let (lo, hi) = if self.count_include_pad {
                    (-(self.pad_begin[d] as isize), (input[d] + self.pad_end[d]) as isize)
                } else {
                    (0, input[d] as isize)
                };
                (0..self.out[d])
                    .map(|o| {
                        let start = (o * self.stride[d]) as isize - self.pad_begin[d] as isize;
                        (0..self.kernel[d])
                            .filter(|&j| {
                                let p = start + (j * self.dilation[d]) as isize;
                                p >= lo && p < hi
                            })
                            .count()
                    })
                    .collect()
            })
            .collect();
        let total: usize = self.out.iter().product();
        let mut v = Vec::with_capacity(total);
        for flat in 0..total {
            let mut rem = flat;
            let mut prod = 1;
            for d in (0..rank).rev() {
                prod *= per_dim[d][rem % self.out[d]].max(1);
                rem /= self.out[d];
            }
            v.push(prod);
        }
        v
    }
}

/// ONNX `pads` hold a begin and an end per dimension: `2 * rank` values, else the attribute error
/// (`why` says what the count is for).
fn check_pads<T: std::fmt::Debug>(name: &str, op: &str, pads: &[T], rank: usize, why: &str) -> Result<(), OnnxError> {
    if pads.len() == 2 * rank {
        return Ok(());
    }
    Err(OnnxError::attr(name, op, "pads", format!("{pads:?}"), format!("expected {} values {why}", 2 * rank)))
}
