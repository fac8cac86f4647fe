use thiserror::Error;

/// What can be wrong with a layer, an input shape or a weight.
///
/// Every message names the offending parameter and the numbers involved, so a command-line user can fix
/// the call from the message alone.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// Spatial rank outside `1..=3`.
    #[error("spatial rank must be 1, 2 or 3, got {rank}")]
    Rank {
        /// The rank asked for.
        rank: usize,
    },
    /// A per-dimension parameter has the wrong number of values.
    #[error("{param} has {got} values, expected 1 or {expected} (one per spatial dimension)")]
    Arity {
        /// Parameter name, as in PyTorch (`stride`, `kernel_size`, ...).
        param: &'static str,
        /// Number of spatial dimensions.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// A parameter that must be positive is zero.
    #[error("{param} must be at least 1, got 0{}", dim_suffix(*.dim))]
    Zero {
        /// Parameter name.
        param: &'static str,
        /// Spatial dimension, when the parameter is per dimension.
        dim: Option<usize>,
    },
    /// Channels not divisible by groups.
    #[error("{param}={channels} is not divisible by groups={groups}")]
    Groups {
        /// `in_channels` or `out_channels`.
        param: &'static str,
        /// The channel count.
        channels: usize,
        /// The group count.
        groups: usize,
    },
    /// The (padded) input is smaller than the dilated kernel along a dimension.
    #[error(
        "input size {input} (padded {padded}) in spatial dim {dim} is smaller than the dilated kernel \
         {effective} (kernel_size {kernel}, dilation {dilation})"
    )]
    InputTooSmall {
        /// Spatial dimension.
        dim: usize,
        /// Input size along `dim`.
        input: usize,
        /// Input size plus both paddings.
        padded: usize,
        /// `dilation * (kernel - 1) + 1`.
        effective: usize,
        /// Kernel size along `dim`.
        kernel: usize,
        /// Dilation along `dim`.
        dilation: usize,
    },
    /// A padding that the padding mode cannot produce from this input.
    #[error(
        "padding_mode='{mode}' needs padding {rule} the input size: got padding {pad} for input size \
         {input} in spatial dim {dim}"
    )]
    PaddingTooLarge {
        /// `reflect` or `circular`.
        mode: &'static str,
        /// `< ` or `<=`, spelled out.
        rule: &'static str,
        /// Spatial dimension.
        dim: usize,
        /// The larger of the two paddings along `dim`.
        pad: usize,
        /// Input size along `dim`.
        input: usize,
    },
    /// `padding='same'` with a stride other than 1 (PyTorch refuses it).
    #[error(
        "padding='same' is not supported for strided convolutions (stride {stride:?}); use stride 1, \
         explicit padding, or ONNX 'same_upper'/'same_lower'"
    )]
    SameWithStride {
        /// The stride given.
        stride: Vec<usize>,
    },
    /// A combination PyTorch does not allow for transposed convolutions.
    #[error("transposed convolution: {what}")]
    Transposed {
        /// What is not allowed and what would be.
        what: String,
    },
    /// `output_padding` not smaller than stride or dilation.
    #[error(
        "output_padding {output_padding} in spatial dim {dim} must be smaller than either stride {stride} \
         or dilation {dilation}"
    )]
    OutputPadding {
        /// Spatial dimension.
        dim: usize,
        /// The output padding given.
        output_padding: usize,
        /// Stride along `dim`.
        stride: usize,
        /// Dilation along `dim`.
        dilation: usize,
    },
    /// The layer would produce an empty output.
    #[error("output size along spatial dim {dim} would be {size}; the layer produces no output for input {input:?}")]
    EmptyOutput {
        /// Spatial dimension.
        dim: usize,
        /// The computed size (may be negative).
        size: i64,
        /// The spatial input size.
        input: Vec<usize>,
    },
    /// A size computed from the layer's options (dilated kernel, padded or transposed output) that does
    /// not fit in `usize`.
    #[error("dimension {dim}: the {what} overflows {bits}-bit sizes (input {input:?}); use smaller kernel, stride, padding or dilation values")]
    SizeOverflow {
        /// The spatial dimension.
        dim: usize,
        /// Which size: `dilated kernel`, `padded input`, `transposed output`.
        what: &'static str,
        /// The spatial input size.
        input: Vec<usize>,
        /// Pointer width.
        bits: u32,
    },
    /// A shape whose element count does not fit in `usize`.
    #[error("shape {shape:?} has more elements than fit in {bits}-bit indices")]
    TooLarge {
        /// The shape.
        shape: Vec<usize>,
        /// Pointer width.
        bits: u32,
    },
    /// A weight tensor whose shape contradicts the layer.
    #[error("weight shape {got:?} does not match the layer: expected {expected:?} ({layout})")]
    WeightShape {
        /// Shape required by the layer.
        expected: Vec<usize>,
        /// Shape given.
        got: Vec<usize>,
        /// The layout, spelled out.
        layout: &'static str,
    },
    /// A bias whose length is not the number of output channels.
    #[error("bias has {got} values, expected {expected} (one per output channel)")]
    BiasLength {
        /// `out_channels`.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// An input shape that does not fit the layer.
    #[error("{layer} expects input {expected}, got {got:?}")]
    InputShape {
        /// The layer, as written.
        layer: String,
        /// What it expects, spelled out.
        expected: String,
        /// The shape it was given.
        got: Vec<usize>,
    },
    /// An input sample whose channel count is not the layer's.
    #[error("input shape {input:?} has {got} channels but the layer takes {expected} (weight shape {weight:?})")]
    Channels {
        /// The input sample shape `(C, *spatial)`.
        input: Vec<usize>,
        /// Its channel count.
        got: usize,
        /// The layer's input channels.
        expected: usize,
        /// The weight's shape.
        weight: Vec<usize>,
    },
    /// An input shape that is not one sample's `(C, *spatial)`: no channels, or a batch dimension.
    #[error(
        "input shape {input:?} has {} spatial dims (a {}-d convolution's weight has {} dims) but weight shape \
         {weight:?} is a {}-d convolution's: the input shape {problem}; it is (C, *spatial) of one sample, so \
         probably {meant:?}",
        input.len().saturating_sub(1), input.len().saturating_sub(1), input.len() + 1, weight.len().saturating_sub(2)
    )]
    InputLayout {
        /// The input shape given.
        input: Box<[usize]>,
        /// The weight's shape.
        weight: Box<[usize]>,
        /// `lacks the channel dimension` or `includes the batch dimension`.
        problem: &'static str,
        /// The input shape probably meant.
        meant: Box<[usize]>,
    },
    /// An error whose cause is probably a weight read in the wrong layout (channels only the transposed,
    /// plain or TensorFlow reading fits, a kernel larger than the input): the reading that fits.
    #[error("{error}; {hint}")]
    Misread {
        /// The error the reading asked for gives.
        error: Box<ShapeError>,
        /// The reading that fits, and how to get it.
        hint: String,
    },
    /// A `Linear` whose `in_features` does not match the size reaching it.
    #[error("in_features is {got} but {expected} features reach it; write Linear({expected}, ...)")]
    LinearFeatures {
        /// The layer, as written.
        layer: String,
        /// The size that reaches it (what `in_features` should be).
        expected: usize,
        /// `in_features` as written.
        got: usize,
    },
    /// Any other invalid parameter value.
    #[error("invalid {param} {value}: {valid}")]
    Invalid {
        /// Parameter name.
        param: &'static str,
        /// The value, as given.
        value: String,
        /// What would be valid.
        valid: String,
    },
}

fn dim_suffix(dim: Option<usize>) -> String {
    dim.map(|d| format!(" in spatial dim {d}")).unwrap_or_default()
}

/// A layer expression that could not be parsed or bound to a layer.
///
/// `column` is the 1-based character position of the offending text in `text`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("column {column} of `{text}`: {message}")]
pub struct ParseError {
    /// The whole expression.
    pub text: String,
    /// 1-based column of the offending text.
    pub column: usize,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// A shape chain that fails at one layer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("layer {index} ({layer}): {error}")]
pub struct ChainError {
    /// 1-based index of the failing layer.
    pub index: usize,
    /// The layer, as written.
    pub layer: String,
    /// Why it fails (shown in this error's message, so not chained as a source).
    pub error: ShapeError,
}
