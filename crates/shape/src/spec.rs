use std::fmt;
use std::str::FromStr;

use crate::ShapeError;

/// The largest spatial rank convmat handles (PyTorch's `Conv3d`).
pub const MAX_RANK: usize = 3;

/// How a padded border is filled, as PyTorch's `padding_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PaddingMode {
    /// Zeros (PyTorch's default): padded taps read nothing.
    #[default]
    Zeros,
    /// Mirror without repeating the edge (`F.pad(mode='reflect')`); needs padding < input size.
    Reflect,
    /// Repeat the edge value (`F.pad(mode='replicate')`).
    Replicate,
    /// Wrap around (`F.pad(mode='circular')`); needs padding <= input size.
    Circular,
}

impl PaddingMode {
    /// All modes, in PyTorch's documentation order.
    pub const ALL: [PaddingMode; 4] = [Self::Zeros, Self::Reflect, Self::Replicate, Self::Circular];

    /// The PyTorch spelling (`zeros`, `reflect`, `replicate`, `circular`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zeros => "zeros",
            Self::Reflect => "reflect",
            Self::Replicate => "replicate",
            Self::Circular => "circular",
        }
    }

    /// Maps a coordinate of the padded axis (`-pad_begin ..= n - 1 + pad_end`, given relative to the
    /// unpadded start) to the input coordinate it reads, or `None` for a zero-padded position.
    ///
    /// Exactly `F.pad`'s index semantics for paddings that PyTorch accepts (reflect: pad < n;
    /// circular: pad <= n); outside those limits reflect keeps folding and circular keeps wrapping.
    #[inline]
    pub fn remap(self, i: isize, n: usize) -> Option<usize> {
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        let j = match self {
            Self::Zeros => return None,
            Self::Replicate => i.clamp(0, n - 1),
            Self::Circular => i.rem_euclid(n),
            Self::Reflect => {
                if n == 1 {
                    0
                } else {
                    let period = 2 * (n - 1);
                    let m = i.rem_euclid(period);
                    if m < n {
                        m
                    } else {
                        period - m
                    }
                }
            }
        };
        Some(j as usize)
    }
}

impl fmt::Display for PaddingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaddingMode {
    type Err = ShapeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| ShapeError::Invalid {
            param: "padding_mode",
            value: format!("'{s}'"),
            valid: "expected one of 'zeros', 'reflect', 'replicate', 'circular'".into(),
        })
    }
}

/// Padding as a layer definition states it; resolved to concrete begin/end amounts by [`crate::Geometry`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Padding {
    /// Explicit amounts before and after each spatial dimension. Covers PyTorch's int and tuple forms
    /// (`begin == end`) and ONNX `pads` (see [`Padding::onnx`]).
    Explicit {
        /// Padding before each spatial dimension.
        begin: Vec<usize>,
        /// Padding after each spatial dimension.
        end: Vec<usize>,
    },
    /// PyTorch `padding='same'`: output size equals input size; stride must be 1; total padding
    /// `dilation * (kernel - 1)` per dimension, the odd extra pixel at the end.
    Same,
    /// ONNX `SAME_UPPER`: output `ceil(input / stride)`, the odd extra pixel at the end.
    SameUpper,
    /// ONNX `SAME_LOWER`: output `ceil(input / stride)`, the odd extra pixel at the beginning.
    SameLower,
    /// PyTorch `padding='valid'`: no padding (the default, same as `padding=0`).
    #[default]
    Valid,
}

impl Padding {
    /// The same amount on both sides of every dimension (`padding=p`).
    pub fn uniform(p: usize) -> Self {
        Self::symmetric([p])
    }

    /// One amount per dimension, the same on both sides (`padding=(ph, pw)`). One value means every
    /// dimension.
    pub fn symmetric(per_dim: impl AsRef<[usize]>) -> Self {
        let v = per_dim.as_ref().to_vec();
        Self::Explicit { begin: v.clone(), end: v }
    }

    /// ONNX `pads`: all begins, then all ends (`[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`).
    ///
    /// # Errors
    /// An odd number of values.
    pub fn onnx(pads: impl AsRef<[usize]>) -> Result<Self, ShapeError> {
        let pads = pads.as_ref();
        if pads.len() % 2 != 0 || pads.is_empty() {
            return Err(ShapeError::Invalid {
                param: "pads",
                value: format!("{pads:?}"),
                valid: "ONNX pads need 2 values per spatial dimension (all begins, then all ends)".into(),
            });
        }
        let (begin, end) = pads.split_at(pads.len() / 2);
        Ok(Self::Explicit { begin: begin.to_vec(), end: end.to_vec() })
    }

    /// Reads the command-line / PyTorch spelling: `same`, `valid`, `same_upper`, `same_lower`, one int,
    /// one int per dimension, or `2 * rank` ints in ONNX order, comma separated.
    ///
    /// # Errors
    /// Anything else, naming the text.
    pub fn parse(text: &str, rank: usize) -> Result<Self, ShapeError> {
        let t = text.trim().trim_matches(|c| c == '\'' || c == '"');
        match t.to_ascii_lowercase().as_str() {
            "same" => return Ok(Self::Same),
            "valid" => return Ok(Self::Valid),
            "same_upper" => return Ok(Self::SameUpper),
            "same_lower" => return Ok(Self::SameLower),
            _ => {}
        }
        let invalid = || ShapeError::Invalid {
            param: "padding",
            value: format!("'{text}'"),
            valid: format!(
                "expected 'same', 'valid', 'same_upper', 'same_lower', one non-negative int, {rank} ints \
                 (one per dim) or {} ints (ONNX pads: begins then ends), comma separated",
                2 * rank
            ),
        };
        let inner = t.trim_matches(|c| c == '(' || c == ')' || c == '[' || c == ']').trim_end();
        // one trailing comma as in Python's `(1,)`; an empty part elsewhere (`1,,2`) is a typo
        let inner = inner.strip_suffix(',').unwrap_or(inner);
        let vals = crate::parse_counts("padding", inner).map_err(|_| invalid())?;
        match vals.len() {
            1 => Ok(Self::uniform(vals[0])),
            n if n == rank => Ok(Self::symmetric(vals)),
            n if n == 2 * rank => Self::onnx(vals),
            _ => Err(invalid()),
        }
    }

    /// Concrete `(begin, end)` per dimension for an input of spatial size `input`.
    pub(crate) fn resolve(
        &self,
        input: &[usize],
        kernel: &[usize],
        stride: &[usize],
        dilation: &[usize],
    ) -> (Vec<usize>, Vec<usize>) {
        let rank = input.len();
        let mut begin = vec![0; rank];
        let mut end = vec![0; rank];
        for d in 0..rank {
            // saturating: Geometry::new reports sizes that overflow, after resolving
            let eff = dilation[d].saturating_mul(kernel[d].saturating_sub(1)).saturating_add(1);
            let (b, e) = match self {
                Self::Explicit { begin, end } => (broadcast_at(begin, d), broadcast_at(end, d)),
                Self::Valid => (0, 0),
                Self::Same => {
                    let total = eff - 1;
                    (total / 2, total - total / 2)
                }
                Self::SameUpper | Self::SameLower => {
                    let out = input[d].div_ceil(stride[d]);
                    let total =
                        (out.saturating_sub(1)).saturating_mul(stride[d]).saturating_add(eff).saturating_sub(input[d]);
                    let small = total / 2;
                    if matches!(self, Self::SameUpper) {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    }
                }
            };
            begin[d] = b;
            end[d] = e;
        }
        (begin, end)
    }

    fn check_arity(&self, rank: usize) -> Result<(), ShapeError> {
        if let Self::Explicit { begin, end } = self {
            check_len("padding", begin, rank)?;
            check_len("padding", end, rank)?;
        }
        Ok(())
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit { begin, end } if begin == end => write!(f, "{}", tuple(begin)),
            Self::Explicit { begin, end } => {
                let all: Vec<usize> = begin.iter().chain(end).copied().collect();
                write!(f, "pads{}", tuple(&all))
            }
            Self::Same => f.write_str("'same'"),
            Self::SameUpper => f.write_str("'same_upper'"),
            Self::SameLower => f.write_str("'same_lower'"),
            Self::Valid => f.write_str("'valid'"),
        }
    }
}

fn tuple(v: &[usize]) -> String {
    match v {
        [x] => x.to_string(),
        _ => format!("({})", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

fn broadcast_at(v: &[usize], d: usize) -> usize {
    if v.len() == 1 {
        v[0]
    } else {
        v[d]
    }
}

pub(crate) fn check_len(param: &'static str, v: &[usize], rank: usize) -> Result<(), ShapeError> {
    if v.len() == 1 || v.len() == rank {
        Ok(())
    } else {
        Err(ShapeError::Arity { param, expected: rank, got: v.len() })
    }
}

fn expand(v: &[usize], rank: usize) -> Vec<usize> {
    if v.len() == 1 {
        vec![v[0]; rank]
    } else {
        v.to_vec()
    }
}

/// A convolution layer: everything `torch.nn.Conv{1,2,3}d` / `ConvTranspose{1,2,3}d` take, with
/// PyTorch's names and defaults, for any spatial rank (rank is data, not a type).
///
/// Per-dimension parameters accept one value (used for every dimension) or one per dimension, like
/// PyTorch's ints-or-tuples. Setters never fail; [`ConvSpec::validate`] (called by
/// [`crate::Geometry::new`]) checks everything.
///
/// ```
/// use convmat_shape::{ConvSpec, Padding, PaddingMode};
/// // Conv2d(6, 16, 3, padding='same', padding_mode='circular')
/// let spec = ConvSpec::new(2, 6, 16, [3])
///     .with_padding(Padding::Same)
///     .with_padding_mode(PaddingMode::Circular);
/// assert_eq!(spec.weight_shape(), vec![16, 6, 3, 3]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvSpec {
    rank: usize,
    in_channels: usize,
    out_channels: usize,
    kernel_size: Vec<usize>,
    stride: Vec<usize>,
    padding: Padding,
    dilation: Vec<usize>,
    groups: usize,
    bias: bool,
    padding_mode: PaddingMode,
    transposed: bool,
    output_padding: Vec<usize>,
}

impl ConvSpec {
    /// `Conv{rank}d(in_channels, out_channels, kernel_size)` with PyTorch's defaults: stride 1,
    /// padding 0, dilation 1, groups 1, bias, zeros padding.
    pub fn new(rank: usize, in_channels: usize, out_channels: usize, kernel_size: impl AsRef<[usize]>) -> Self {
        Self {
            rank,
            in_channels,
            out_channels,
            kernel_size: expand(kernel_size.as_ref(), rank),
            stride: vec![1; rank],
            padding: Padding::uniform(0),
            dilation: vec![1; rank],
            groups: 1,
            bias: true,
            padding_mode: PaddingMode::Zeros,
            transposed: false,
            output_padding: vec![0; rank],
        }
    }

    /// `ConvTranspose{rank}d(in_channels, out_channels, kernel_size)` with PyTorch's defaults.
    pub fn new_transposed(
        rank: usize,
        in_channels: usize,
        out_channels: usize,
        kernel_size: impl AsRef<[usize]>,
    ) -> Self {
        Self { transposed: true, ..Self::new(rank, in_channels, out_channels, kernel_size) }
    }

    /// The layer a weight tensor describes: `(C_out, C_in/groups, *k)` for a convolution,
    /// `(C_in, C_out/groups, *k)` for a transposed one. The rank is `weight_shape.len() - 2`.
    ///
    /// # Errors
    /// A weight with fewer than 3 or more than 5 dimensions, a zero dimension, or `groups` so large
    /// that the channel count `groups × weight_shape[1]` overflows.
    pub fn from_weight_shape(weight_shape: &[usize], groups: usize, transposed: bool) -> Result<Self, ShapeError> {
        if !(3..=MAX_RANK + 2).contains(&weight_shape.len()) {
            return Err(ShapeError::Invalid {
                param: "weight shape",
                value: format!("{weight_shape:?}"),
                valid: "a convolution weight has 3, 4 or 5 dimensions (C_out, C_in/groups, *kernel)".into(),
            });
        }
        if let Some(i) = weight_shape.iter().position(|&d| d == 0) {
            return Err(ShapeError::Invalid {
                param: "weight shape",
                value: format!("{weight_shape:?}"),
                valid: format!("dimension {i} is 0; every dimension must be at least 1"),
            });
        }
        let rank = weight_shape.len() - 2;
        let k = &weight_shape[2..];
        let g = groups.max(1);
        // the weight's dimension 1 holds channels per group: the layer's channels are g times it
        let channels = weight_shape[1].checked_mul(g).ok_or_else(|| ShapeError::Invalid {
            param: "groups",
            value: groups.to_string(),
            valid: format!(
                "groups times the weight's dimension 1 ({}) is more channels than fit in usize; groups divides \
                 the channel counts",
                weight_shape[1]
            ),
        })?;
        Ok(if transposed {
            Self::new_transposed(rank, weight_shape[0], channels, k).with_groups(groups)
        } else {
            Self::new(rank, channels, weight_shape[0], k).with_groups(groups)
        })
    }

    /// Sets `stride`.
    pub fn with_stride(mut self, stride: impl AsRef<[usize]>) -> Self {
        self.stride = expand(stride.as_ref(), self.rank);
        self
    }
    /// Sets `padding`.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    /// Sets `dilation`.
    pub fn with_dilation(mut self, dilation: impl AsRef<[usize]>) -> Self {
        self.dilation = expand(dilation.as_ref(), self.rank);
        self
    }
    /// Sets `groups`.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
    /// Sets whether the layer has a bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// Sets `padding_mode`.
    pub fn with_padding_mode(mut self, mode: PaddingMode) -> Self {
        self.padding_mode = mode;
        self
    }
    /// Sets `output_padding` (transposed convolutions only).
    pub fn with_output_padding(mut self, output_padding: impl AsRef<[usize]>) -> Self {
        self.output_padding = expand(output_padding.as_ref(), self.rank);
        self
    }

    /// Number of spatial dimensions (1, 2 or 3).
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// `in_channels`.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }
    /// `out_channels`.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }
    /// `kernel_size`, one value per spatial dimension.
    pub fn kernel_size(&self) -> &[usize] {
        &self.kernel_size
    }
    /// `stride`, one value per spatial dimension.
    pub fn stride(&self) -> &[usize] {
        &self.stride
    }
    /// `padding`, as stated.
    pub fn padding(&self) -> &Padding {
        &self.padding
    }
    /// `dilation`, one value per spatial dimension.
    pub fn dilation(&self) -> &[usize] {
        &self.dilation
    }
    /// Per kernel tap (row-major over the kernel, as the weight stores them), its spatial offset per
    /// axis: the tap's index times the dilation.
    ///
    /// ```
    /// let spec = convmat_shape::ConvSpec::new(2, 1, 1, [2, 3]).with_dilation([2, 1]);
    /// assert_eq!(spec.tap_offsets()[4], vec![2, 1]); // tap (1, 1)
    /// ```
    pub fn tap_offsets(&self) -> Vec<Vec<usize>> {
        let (ks, dil) = (&self.kernel_size, &self.dilation);
        let k: usize = ks.iter().product();
        (0..k)
            .map(|t| {
                let mut rest = t;
                let mut o = vec![0; ks.len()];
                for a in (0..ks.len()).rev() {
                    o[a] = (rest % ks[a]) * dil[a];
                    rest /= ks[a];
                }
                o
            })
            .collect()
    }
    /// `groups`.
    pub fn groups(&self) -> usize {
        self.groups
    }
    /// Whether the layer has a bias.
    pub fn bias(&self) -> bool {
        self.bias
    }
    /// `padding_mode`.
    pub fn padding_mode(&self) -> PaddingMode {
        self.padding_mode
    }
    /// Whether this is a transposed convolution.
    pub fn is_transposed(&self) -> bool {
        self.transposed
    }
    /// `output_padding`, one value per spatial dimension.
    pub fn output_padding(&self) -> &[usize] {
        &self.output_padding
    }

    /// Number of kernel taps per (output channel, input channel) pair: `prod(kernel_size)`.
    pub fn kernel_len(&self) -> usize {
        self.kernel_size.iter().product()
    }

    /// The weight shape PyTorch uses: `(C_out, C_in/groups, *k)`, or `(C_in, C_out/groups, *k)` when
    /// transposed. Meaningful once [`validate`](Self::validate) passes.
    pub fn weight_shape(&self) -> Vec<usize> {
        let g = self.groups.max(1);
        let mut s = if self.transposed {
            vec![self.in_channels, self.out_channels / g]
        } else {
            vec![self.out_channels, self.in_channels / g]
        };
        s.extend_from_slice(&self.kernel_size);
        s
    }

    /// Number of learnable parameters (weight and bias), as `sum(p.numel() for p in layer.parameters())`;
    /// `usize::MAX` when the count does not fit (no such layer fits in memory).
    pub fn parameter_count(&self) -> usize {
        let weight = self.weight_shape().iter().try_fold(1usize, |a, &n| a.checked_mul(n));
        weight.and_then(|w| w.checked_add(if self.bias { self.out_channels } else { 0 })).unwrap_or(usize::MAX)
    }

    /// Checks a weight tensor's shape against the layer.
    ///
    /// # Errors
    /// [`ShapeError::WeightShape`] naming both shapes.
    pub fn check_weight_shape(&self, shape: &[usize]) -> Result<(), ShapeError> {
        let expected = self.weight_shape();
        if shape == expected.as_slice() {
            Ok(())
        } else {
            Err(ShapeError::WeightShape {
                expected,
                got: shape.to_vec(),
                layout: if self.transposed { "C_in, C_out/groups, *kernel" } else { "C_out, C_in/groups, *kernel" },
            })
        }
    }

    /// Checks a bias length against `out_channels`.
    ///
    /// # Errors
    /// [`ShapeError::BiasLength`].
    pub fn check_bias_len(&self, len: usize) -> Result<(), ShapeError> {
        if len == self.out_channels {
            Ok(())
        } else {
            Err(ShapeError::BiasLength { expected: self.out_channels, got: len })
        }
    }

    /// Checks everything that does not depend on the input size, with PyTorch's rules.
    ///
    /// # Errors
    /// The first violated rule, naming the parameter and the numbers.
    pub fn validate(&self) -> Result<(), ShapeError> {
        let r = self.rank;
        if !(1..=MAX_RANK).contains(&r) {
            return Err(ShapeError::Rank { rank: r });
        }
        for (param, v) in [
            ("kernel_size", &self.kernel_size),
            ("stride", &self.stride),
            ("dilation", &self.dilation),
            ("output_padding", &self.output_padding),
        ] {
            if v.len() != r {
                return Err(ShapeError::Arity { param, expected: r, got: v.len() });
            }
        }
        self.padding.check_arity(r)?;
        for (param, c) in
            [("in_channels", self.in_channels), ("out_channels", self.out_channels), ("groups", self.groups)]
        {
            if c == 0 {
                return Err(ShapeError::Zero { param, dim: None });
            }
        }
        for (param, v) in [("kernel_size", &self.kernel_size), ("stride", &self.stride), ("dilation", &self.dilation)] {
            if let Some(d) = v.iter().position(|&x| x == 0) {
                return Err(ShapeError::Zero { param, dim: Some(d) });
            }
        }
        for (param, c) in [("in_channels", self.in_channels), ("out_channels", self.out_channels)] {
            if c % self.groups != 0 {
                return Err(ShapeError::Groups { param, channels: c, groups: self.groups });
            }
        }
        if self.padding == Padding::Same && self.stride.iter().any(|&s| s != 1) {
            return Err(ShapeError::SameWithStride { stride: self.stride.clone() });
        }
        if self.transposed {
            if self.padding_mode != PaddingMode::Zeros {
                return Err(ShapeError::Transposed {
                    what: format!(
                        "only padding_mode='zeros' is supported (as in PyTorch), got '{}'",
                        self.padding_mode
                    ),
                });
            }
            if !matches!(self.padding, Padding::Explicit { .. } | Padding::Valid) {
                return Err(ShapeError::Transposed {
                    what: format!("padding={} is not supported; give explicit amounts", self.padding),
                });
            }
            for d in 0..r {
                let op = self.output_padding[d];
                if op != 0 && op >= self.stride[d] && op >= self.dilation[d] {
                    return Err(ShapeError::OutputPadding {
                        dim: d,
                        output_padding: op,
                        stride: self.stride[d],
                        dilation: self.dilation[d],
                    });
                }
            }
        } else if self.output_padding.iter().any(|&p| p != 0) {
            return Err(ShapeError::Invalid {
                param: "output_padding",
                value: format!("{:?}", self.output_padding),
                valid: "output_padding applies to transposed convolutions only; use 0".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for ConvSpec {
    /// The PyTorch constructor expression for this layer (non-default arguments only).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.transposed { "ConvTranspose" } else { "Conv" };
        write!(
            f,
            "{name}{}d({}, {}, {}",
            self.rank,
            self.in_channels,
            self.out_channels,
            tuple_or_one(&self.kernel_size)
        )?;
        if self.stride.iter().any(|&s| s != 1) {
            write!(f, ", stride={}", tuple_or_one(&self.stride))?;
        }
        match &self.padding {
            Padding::Explicit { begin, end } if begin != end => {
                // ONNX order (all begins, then all ends): 2 * rank ints, which parse_layer reads back
                let side = |v: &[usize]| (0..self.rank).map(|d| broadcast_at(v, d)).collect::<Vec<_>>();
                write!(f, ", padding={}", tuple(&[side(begin), side(end)].concat()))?;
            }
            p if *p != Padding::uniform(0) && *p != Padding::symmetric(vec![0; self.rank]) => {
                write!(f, ", padding={p}")?;
            }
            _ => {}
        }
        if self.output_padding.iter().any(|&s| s != 0) {
            write!(f, ", output_padding={}", tuple_or_one(&self.output_padding))?;
        }
        if self.dilation.iter().any(|&s| s != 1) {
            write!(f, ", dilation={}", tuple_or_one(&self.dilation))?;
        }
        if self.groups != 1 {
            write!(f, ", groups={}", self.groups)?;
        }
        if !self.bias {
            f.write_str(", bias=False")?;
        }
        if self.padding_mode != PaddingMode::Zeros {
            write!(f, ", padding_mode='{}'", self.padding_mode)?;
        }
        f.write_str(")")
    }
}

fn tuple_or_one(v: &[usize]) -> String {
    if !v.is_empty() && v.iter().all(|&x| x == v[0]) {
        v[0].to_string()
    } else {
        tuple(v)
    }
}

/// The output shape of a true convolution, as MATLAB's `conv`, `conv2` and `convn` name it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TrueConvShape {
    /// The full convolution: output `n + k - 1` (MATLAB's default).
    #[default]
    Full,
    /// The central part, the size of the input: output `n`, starting at `floor(k / 2)` of the full one.
    Same,
    /// Only the parts computed without padding: output `n - k + 1`.
    Valid,
}

impl TrueConvShape {
    /// The MATLAB spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Same => "same",
            Self::Valid => "valid",
        }
    }

    /// The padding under which cross-correlation with the *flipped* kernel equals true convolution of
    /// this shape (dilation widens the kernel as usual).
    pub fn padding(self, kernel: &[usize], dilation: &[usize]) -> Padding {
        // saturating: an invalid (empty or overflowing) kernel gives a padding Geometry::new rejects
        let eff: Vec<usize> = kernel
            .iter()
            .zip(dilation)
            .map(|(&k, &d)| d.saturating_mul(k.saturating_sub(1)).saturating_add(1))
            .collect();
        match self {
            Self::Full => {
                let p: Vec<usize> = eff.iter().map(|e| e - 1).collect();
                Padding::Explicit { begin: p.clone(), end: p }
            }
            Self::Same => Padding::Explicit {
                begin: eff.iter().map(|e| e - 1 - e / 2).collect(),
                end: eff.iter().map(|e| e / 2).collect(),
            },
            Self::Valid => Padding::Valid,
        }
    }
}

impl FromStr for TrueConvShape {
    type Err = ShapeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Self::Full),
            "same" => Ok(Self::Same),
            "valid" => Ok(Self::Valid),
            _ => Err(ShapeError::Invalid {
                param: "shape",
                value: format!("'{s}'"),
                valid: "expected 'full', 'same' or 'valid'".into(),
            }),
        }
    }
}
