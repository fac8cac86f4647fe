//! Whole networks as graphs of exact blocks: the one network record every reader produces (the ONNX
//! reader of `convmat-onnx`, or a user building a graph by hand) and every consumer shares.
//!
//! A [`Graph`] holds its nodes in topological order; each reads and writes named tensors and has one
//! [`Role`]:
//! - **block**: an exact affine map of one computed tensor (a convolution, a dense or sparse matrix, a
//!   diagonal), built on demand by a [`BlockSource`] when a run reaches it, one at a time;
//! - **junction** ([`Junction`]): `Add` / `Sub` of two computed tensors, `Concat`, `Split`, `Slice`,
//!   `Transpose`, and the reshapes that keep the row-major order;
//! - **nonlinearity** ([`Nonlinearity`]): Relu, Clip, Sigmoid, HardSwish, Gelu, Erf, MaxPool, Softmax,
//!   LayerNormalization, the product of two computed tensors, ..., each by ONNX semantics.
//!
//! [`Graph::norms`] certifies every block's spectral norm and bounds the whole graph's Lipschitz
//! constant node by node ([`Graph::lipschitz_bound`]); [`sequential_norms`] reads a PyTorch
//! `Sequential(...)` chain into a graph and gives the same table.
//!
//! [`Graph::validate`] checks the record (cycles, tensors read before written, shapes at junctions);
//! [`Graph::run`] evaluates it on a batch in `f32` or `f64`, every block through convmat's
//! [`Operator`](convmat_matrix::Operator), with an optional trace of every tensor in graph order.
//!
//! ```
//! use convmat_net::{BlockMap, BlockSource, Graph, Junction, Node, Port, Role, Tensor};
//! use serde_json::Map;
//!
//! // y = x + 2x: a block (a diagonal of 2s) and a residual Add
//! struct Twice;
//! impl BlockSource for Twice {
//!     fn block(&self, _: usize, _: &Node) -> Result<BlockMap, Box<dyn std::error::Error + Send + Sync>> {
//!         Ok(BlockMap::Diagonal { scale: vec![2.0; 3], shift: vec![0.0; 3] })
//!     }
//! }
//! let node = |name: &str, role, inputs: &[&str], output: &str| Node {
//!     name: name.into(), op: name.into(), role,
//!     inputs: inputs.iter().map(|s| s.to_string()).collect(), outputs: vec![output.into()],
//!     output_shapes: vec![vec![3]], folded: vec![], params: Map::new(),
//! };
//! let graph = Graph {
//!     inputs: vec![Port { name: "x".into(), shape: vec![3] }],
//!     nodes: vec![node("double", Role::Block, &["x"], "d"), node("add", Role::Junction(Junction::Add), &["x", "d"], "y")],
//!     outputs: vec!["y".into()],
//! };
//! let run = graph.run(&Twice, vec![Tensor::new(vec![1, 3], vec![1.0f32, 2.0, 3.0])], false)?;
//! assert_eq!(run.outputs[0].data, [3.0, 6.0, 9.0]);
//! # Ok::<(), convmat_net::NetError>(())
//! ```
//!
//! # Errors
//! Everything a graph or an input can get wrong is a [`NetError`] naming the node and the numbers.
#![warn(missing_docs)]

mod block;
mod calibrate;
mod chain;
mod diff;
mod error;
mod eval;
mod fixed;
mod graph;
mod lipschitz;
mod norms;
mod role;
mod trace;

pub use block::{BlockMap, Csr};
pub use calibrate::{best_precision, CalibrateOptions, Calibration, LayerRange};
pub use chain::{sequential_norms, NetworkError};
pub use convmat_spectrum::{Certificate, Monitor, NormInterval, SpectrumError};
pub use diff::{diff_traces, TensorDiff, TraceDiff};
pub use error::{NetError, TraceError};
pub use eval::{BlockSource, Run, Tensor, Traced};
pub use fixed::{Arithmetic, ChannelReport, FixedError, FixedRun, Formats, LayerFormats, LayerReport};
pub use graph::{Graph, Node, Port};
pub use lipschitz::{GraphBound, Lipschitz, ERF, GELU, GELU_TANH, MISH, SILU};
pub use norms::{block_norm, BlockInterval, BlockNorm, NetworkNorms, NormMethod, ASSUMED, DENSE_FALLBACK};
pub use role::{broadcast, Junction, Kind, Nonlinearity, Precision, Role};
pub use trace::{write_trace, write_trace_with, TraceRecord};
