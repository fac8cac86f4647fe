use std::path::PathBuf;

use convmat_matrix::MatrixError;
use convmat_shape::ShapeError;

/// Everything that can go wrong reading an ONNX model or turning its nodes into matrices. Each message
/// names the node, the value and what would be valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not an ONNX model (truncated or corrupt protobuf, no graph).
    #[error("{}: not a valid ONNX model: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What the decoder found.
        reason: String,
    },
    /// The model's default-domain opset is older than 7.
    #[error(
        "the model imports ONNX opset {version}; convmat reads opset 7 and later (re-export it with a newer opset)"
    )]
    Opset {
        /// The opset version.
        version: i64,
    },
    /// A tensor's stored data does not match its declared type or shape.
    #[error("tensor '{name}': {what}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// A tensor stored in an external file that may not or cannot be read.
    #[error("tensor '{name}': external data '{location}': {what}")]
    ExternalData {
        /// The tensor's name.
        name: String,
        /// The `location` the model gives.
        location: String,
        /// What is wrong.
        what: String,
    },
    /// A node reads a value that no initializer, graph input or earlier node provides.
    #[error("node '{node}' ({op}) reads '{input}', which no initializer, graph input or earlier node provides")]
    MissingValue {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// The missing value.
        input: String,
    },
    /// A node operand that must be a constant (a weight, a pads tensor) is computed at run time.
    #[error("node '{node}' ({op}): input '{input}' ({role}) must be a constant (an initializer or a folded constant subgraph)")]
    NotConstant {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// The input.
        input: String,
        /// What the input is for.
        role: &'static str,
    },
    /// No node has that name.
    #[error("the model has no node named '{name}'; {}", near_text(near))]
    UnknownNode {
        /// The name asked for.
        name: String,
        /// Names of nodes that come close (or the first few nodes).
        near: Vec<String>,
    },
    /// The graph input's shape is not static and no input shape was given. The message says what is
    /// missing in words every front end shares; each adds how its users give it (the CLI's
    /// `--input-shape C,H,W`, Python's `input_shape=(C, H, W)`) from [`dims`](Self::DynamicShape::dims)
    /// and [`example`](Self::DynamicShape::example).
    #[error("the graph input '{input}' has a dynamic shape {shape}: give the input shape ({}) of one sample, without the batch dimension", dims.join(", "))]
    DynamicShape {
        /// The input's name.
        input: String,
        /// Its shape as declared (`[batch, 3, height, width]`), or `(none declared)`.
        shape: String,
        /// The dimensions to give, one letter each: `["C", "H", "W"]` (`C`, `C L`, `C H W`, `C D H W`).
        dims: Vec<String>,
        /// A shape to show as an example: the declared static dimensions, 32 for the dynamic ones.
        example: Vec<usize>,
    },
    /// An input shape override that does not fit the graph input.
    #[error("input shape {given:?} does not fit graph input '{input}' of shape {declared}: {what}")]
    InputShape {
        /// The input's name.
        input: String,
        /// The declared shape.
        declared: String,
        /// The override.
        given: Vec<usize>,
        /// What is wrong.
        what: String,
    },
    /// An op convmat cannot represent (or cannot represent with these operands).
    #[error("node '{node}' ({op}) is not supported: {what}")]
    Unsupported {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// Why.
        what: String,
    },
    /// An attribute value that is invalid or that convmat does not support.
    #[error("node '{node}' ({op}): attribute {attr}={value}: {valid}")]
    Attribute {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// The attribute.
        attr: String,
        /// Its value.
        value: String,
        /// What would be valid.
        valid: String,
    },
    /// Shapes that do not fit the op.
    #[error("node '{node}' ({op}): {what}")]
    Shape {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// What does not fit.
        what: String,
    },
    /// The layer's geometry is invalid (from convmat's shape rules).
    #[error("node '{node}' ({op}): {source}")]
    Geometry {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// The rule that failed.
        source: Box<ShapeError>,
    },
    /// Building the layer's matrix failed.
    #[error("node '{node}' ({op}): {source}")]
    Matrix {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// The builder's error.
        source: Box<MatrixError>,
    },
    /// A graph that is not one chain of layers (a branch, a residual Add of two activations).
    #[error("node '{node}' ({op}) reads '{input}', which is not the output of the layer before it; export handles chains of layers only")]
    Branch {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// The value it reads.
        input: String,
    },
    /// A quantized node's scale, zero point or bias that its op does not allow (a zero, negative or NaN
    /// scale, a zero point outside its type, a bias that is not int32, a per-axis scale of the wrong
    /// length).
    #[error("node '{node}' ({op}): {what}")]
    Quantization {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// What is wrong, naming the input and the value.
        what: String,
    },
    /// The accumulator range of a quantized node could not be computed.
    #[error("node '{node}' ({op}): {source}")]
    Range {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// What the range analysis reported.
        source: Box<convmat_matrix::RangeError>,
    },
    /// The model's graph record does not validate, or a run of it failed (an input of the wrong shape).
    #[error(transparent)]
    Graph(Box<convmat_net::NetError>),
    /// Writing an exported block failed.
    #[error(transparent)]
    Write(#[from] convmat_io::IoError),
}

/// The letters naming one sample's dimensions: `C`, then `L`, `H W` or `D H W`.
pub(crate) fn sample_dims(rank: usize) -> Vec<String> {
    let spatial: &[&str] = match rank {
        0 | 1 => &[],
        2 => &["L"],
        3 => &["H", "W"],
        4 => &["D", "H", "W"],
        _ => return (0..rank).map(|d| format!("d{d}")).collect(),
    };
    std::iter::once("C").chain(spatial.iter().copied()).map(String::from).collect()
}

fn near_text(near: &[String]) -> String {
    if near.is_empty() {
        "the model has no nodes".into()
    } else {
        format!("nodes with close names: {}", near.join(", "))
    }
}

impl OnnxError {
    pub(crate) fn attr(
        node: &str,
        op: &str,
        attr: &str,
        value: impl std::fmt::Display,
        valid: impl Into<String>,
    ) -> Self {
        Self::Attribute {
            node: node.into(),
            op: op.into(),
            attr: attr.into(),
            value: value.to_string(),
            valid: valid.into(),
        }
    }

    pub(crate) fn unsupported(node: &str, op: &str, what: impl Into<String>) -> Self {
        Self::Unsupported { node: node.into(), op: op.into(), what: what.into() }
    }

    pub(crate) fn shape(node: &str, op: &str, what: impl Into<String>) -> Self {
        Self::Shape { node: node.into(), op: op.into(), what: what.into() }
    }

    pub(crate) fn tensor(name: &str, what: impl Into<String>) -> Self {
        Self::Tensor { name: name.into(), what: what.into() }
    }
}
