//! ONNX models in convmat: every layer's exact affine map, BatchNorm folded, ready for verifiers.
//!
//! - [`Model::load`] reads a `.onnx` file in pure Rust (hand-declared `prost` messages: no `protoc`, no
//!   build script, no onnxruntime): initializers in `raw_data` or the typed fields (float, double,
//!   float16, bfloat16, int8..int64, uint8..uint64, bool), external data files beside the model (absolute
//!   paths and `..` refused), `Constant` nodes, opsets 7 and later.
//! - [`Model::summary`] walks the graph on one input shape: shape inference through the supported ops,
//!   constant folding of the small integer subgraphs `torch.onnx.export` writes (Constant /
//!   ConstantOfShape / Concat / Reshape / Slice / Transpose / Cast / Shape / Gather / Unsqueeze feeding a
//!   Pad's pads or a Reshape's target), and each node's role ([`NodeKind`]).
//! - [`Model::conv_layer`] maps one Conv / ConvTranspose / AveragePool / Pad node's attributes onto
//!   convmat's layer options (pads begin/end, SAME_UPPER / SAME_LOWER / VALID, group, dilations,
//!   output_padding, output_shape; a Pad before a Conv folded into its padding mode).
//! - [`Model::affine_layers`] and [`Model::export`] cut the model into affine blocks (BatchNormalization
//!   folded into the Conv / ConvTranspose / Gemm before it, constant Add / Sub / Mul / Div folded too),
//!   separated by the nonlinearities that follow each, one block in memory at a time.
//! - [`Model::lower`] rewrites the model for MILP encoders and verifiers: every block one dense `Gemm`
//!   (or `MatMul` + `Add`), the nonlinearities kept, the input flat, streamed into one `.onnx` file.
//!
//! Shapes are of one sample (`C, H, W`): the batch dimension is taken as 1 and dropped. Flattening is
//! row-major (NCHW), as `torch.flatten` and ONNX `Flatten` order it.
//!
//! ```no_run
//! let model = convmat_onnx::Model::load("cnn.onnx")?;
//! for node in model.summary(None)?.nodes {
//!     println!("{} {} {:?} -> {:?}", node.name, node.op, node.input_shape, node.output_shape);
//! }
//! let layer = model.conv_layer("/conv1/Conv", None)?;    // a ConvLayer: attributes mapped to LayerOptions
//! let a = layer.conv::<f64>()?.csr()?;                   // its matrix
//! # let _ = a;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors
//! Everything a model can get wrong is an [`OnnxError`] naming the node, the value and what would be
//! valid; nothing here panics on file contents, and nothing is allocated from a size the file claims
//! beyond the bytes it holds.
#![warn(missing_docs)]

mod blocks;
mod error;
mod fold;
mod graph;
mod layers;
mod lower;
mod network;
mod node;
mod norms;
pub mod proto;
mod qrun;
mod quant;
mod tensor;

pub use blocks::{write_block, Activation, AffineLayer, AffineLayers, BlockOptions, Csr, ExportedBlock};
pub use convmat_net::{BlockNorm, NetworkNorms};
pub use error::OnnxError;
pub use graph::{InputInfo, Model, NodeInfo, NodeKind, Summary, AFFINE_OPS, IDENTITIES, NONLINEARITIES};
pub use lower::{Form, FormError, LowerOptions, LowerReport, Lowered, LoweredBlock, MaxPoolForm, MaxPoolFormError};
pub use network::Network;
pub use qrun::{QRun, QTensor, QTraced, QuantReference};
pub use quant::{QuantForm, QuantLayer, QuantType, Quantization};
pub use tensor::{Tensor, Values};

use convmat_matrix::ConvLayer;
use graph::Analysis;

impl Model {
    /// The convolution a node applies, as the front door's [`ConvLayer`] (its attributes mapped onto
    /// [`convmat_shape::LayerOptions`]), resolved on the graph's shapes: a Conv or ConvTranspose (with
    /// the Pad before it folded into its padding), an AveragePool / GlobalAveragePool (a depthwise
    /// convolution of `1 / kernel size`; only when every window has the same divisor), or a Pad (a
    /// depthwise identity convolution with the pad's mode). `input_shape` (one sample, `C,H,W`) is needed
    /// only when the model's input shape is dynamic.
    ///
    /// # Errors
    /// A name no node has (the error lists the close ones); a node that is not convolution-like; the
    /// errors of [`summary`](Self::summary).
    pub fn conv_layer(&self, node_name: &str, input_shape: Option<&[usize]>) -> Result<ConvLayer, OnnxError> {
        let i = self.node_index(node_name)?;
        let a = Analysis::new(self, input_shape)?;
        let info = &a.infos[i];
        if let NodeKind::Unsupported(why) = &info.kind {
            return Err(OnnxError::unsupported(&info.name, &info.op, why.clone()));
        }
        let parts = a.convs.get(&i).ok_or_else(|| {
            OnnxError::unsupported(
                &info.name,
                &info.op,
                "not a convolution; `convmat export` builds Gemm, MatMul, BatchNormalization and the other affine nodes",
            )
        })?;
        let scale = match parts.row_scale() {
            Some(scale) if scale.iter().any(|&s| s != scale[0]) => {
                return Err(OnnxError::unsupported(
                    &info.name,
                    &info.op,
                    "windows at the border divide by fewer taps (count_include_pad=0 or ceil_mode), so this pool is not one convolution; `convmat export` builds it exactly",
                ))
            }
            Some(scale) => scale[0],
            None => 1.0,
        };
        parts.layer(&a, scale)
    }
}
