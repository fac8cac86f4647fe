use convmat_matrix::MatrixError;

/// Everything that can be wrong with a graph or with a run of it. Each message names the node (or
/// tensor), the numbers and what would be valid, on one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A node reads a tensor that a later node writes: the nodes are not in topological order, or
    /// they form a cycle.
    #[error("node '{node}' reads '{tensor}', which node '{writer}' (later in the graph) writes: the graph has a cycle or its nodes are not in topological order")]
    Cycle {
        /// The reading node.
        node: String,
        /// The tensor.
        tensor: String,
        /// The node that writes it, later.
        writer: String,
    },
    /// A node reads a tensor that no graph input and no node writes.
    #[error("node '{node}' reads '{tensor}', which no graph input and no node writes")]
    Unwritten {
        /// The reading node.
        node: String,
        /// The tensor.
        tensor: String,
    },
    /// Two writers of one tensor.
    #[error("node '{node}' writes '{tensor}', which {first} already writes: every tensor has one writer")]
    Rewritten {
        /// The second writer.
        node: String,
        /// The tensor.
        tensor: String,
        /// The first writer (a node or `the graph input`).
        first: String,
    },
    /// A graph output that nothing writes.
    #[error("the graph output '{tensor}' is written by no node and is no graph input")]
    Output {
        /// The tensor.
        tensor: String,
    },
    /// A node whose operands or declared outputs do not fit its op.
    #[error("node '{node}' ({op}): {what}")]
    Shape {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// What does not fit, with the shapes.
        what: String,
    },
    /// An input of the wrong shape, or the wrong number of inputs, given to a run.
    #[error(
        "input '{input}' has shape {got:?}; the graph takes {expected:?} per sample (give (N, {}) or one sample)",
        dims(expected)
    )]
    Input {
        /// The graph input.
        input: String,
        /// One sample's shape the graph takes.
        expected: Vec<usize>,
        /// The shape given.
        got: Vec<usize>,
    },
    /// A run given the wrong number of inputs.
    #[error("the graph has {expected} inputs ({names}); {got} were given")]
    InputCount {
        /// How many the graph takes.
        expected: usize,
        /// Their names.
        names: String,
        /// How many were given.
        got: usize,
    },
    /// A block's map could not be built (its source's error, naming the node).
    #[error("node '{node}' ({op}): {source}")]
    Block {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// What the block source reported.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A block's spectral norm failed, or the caller's monitor cancelled it.
    #[error("node '{node}' ({op}): {source}")]
    Norm {
        /// The block's node.
        node: String,
        /// Its op.
        op: String,
        /// The spectrum library's error.
        source: Box<convmat_spectrum::SpectrumError>,
    },
    /// A block's product failed.
    #[error("node '{node}' ({op}): {source}")]
    Matrix {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// The operator's error.
        source: Box<MatrixError>,
    },
}

fn dims(shape: &[usize]) -> String {
    shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
}

impl NetError {
    /// Whether the caller's monitor stopped a norm ([`NetError::Norm`] holding `Cancelled`).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Norm { source, .. } if matches!(**source, convmat_spectrum::SpectrumError::Cancelled))
    }

    pub(crate) fn shape(node: &str, op: &str, what: impl Into<String>) -> Self {
        Self::Shape { node: node.into(), op: op.into(), what: what.into() }
    }
}

/// Writing a trace failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The trace folder exists and holds files.
    #[error("{}: the trace folder exists and is not empty (give a new or empty folder)", path.display())]
    NotEmpty {
        /// The folder.
        path: std::path::PathBuf,
    },
    /// A file system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing an array failed.
    #[error(transparent)]
    Write(#[from] convmat_io::IoError),
    /// A trace folder's `trace.json` that is not a trace.
    #[error("{}: {what}", path.display())]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        what: String,
    },
}
