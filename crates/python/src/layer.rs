//! `convmat._native.Layer`: a layer's weights and options, resolved on an input shape per call by the
//! library's front door (`LayerOptions` -> `ConvLayer`), as the CLI resolves its flags.

use convmat_matrix::ConvLayer;
use convmat_shape::{LayerOptions, Padding, PaddingMode, TrueConvShape};
use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::{msg, Res};

/// A layer as PyTorch's constructor states it, with its weights (f64, as read).
#[pyclass(frozen, module = "convmat._native")]
pub struct Layer {
    weight_shape: Vec<usize>,
    weight: Vec<f64>,
    bias: Option<Vec<f64>>,
    options: LayerOptions,
}

#[pymethods]
impl Layer {
    /// `weight`, `bias`: float64 arrays; `padding`: the text `Padding::parse` reads ("1", "1,2",
    /// "same", "valid", ONNX pads "0,1,1,0"); the rest as PyTorch names them.
    #[new]
    #[pyo3(signature = (weight, bias, stride, padding, dilation, groups, padding_mode, transposed, output_padding, flip=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        weight: PyReadonlyArrayDyn<'_, f64>,
        bias: Option<PyReadonlyArrayDyn<'_, f64>>,
        stride: Vec<usize>,
        padding: String,
        dilation: Vec<usize>,
        groups: usize,
        padding_mode: String,
        transposed: bool,
        output_padding: Vec<usize>,
        flip: Option<String>,
    ) -> PyResult<Self> {
        let bias = match bias {
            Some(b) if b.ndim() != 1 => {
                return Err(crate::error(format!(
                    "bias has shape {:?}: expected a vector, one value per output channel",
                    b.shape()
                )))
            }
            Some(b) => Some(b.as_array().iter().copied().collect()),
            None => None,
        };
        let weight_shape = weight.shape().to_vec();
        let options = (|| -> Res<LayerOptions> {
            let rank = weight_shape.len().saturating_sub(2).max(1);
            Ok(LayerOptions::new()
                .with_stride(stride)
                .with_padding(Padding::parse(&padding, rank).map_err(msg)?)
                .with_dilation(dilation)
                .with_groups(groups)
                .with_padding_mode(padding_mode.parse::<PaddingMode>().map_err(msg)?)
                .with_transposed(transposed)
                .with_output_padding(output_padding)
                .with_flip(flip.map(|f| f.parse::<TrueConvShape>()).transpose().map_err(msg)?))
        })()
        .map_err(crate::error)?;
        let layer = Self { weight: weight.as_array().iter().copied().collect(), weight_shape, bias, options };
        layer.description()?;
        Ok(layer)
    }

    /// The PyTorch expression of the layer, e.g. `Conv2d(3, 16, 3, padding=1)`.
    fn description(&self) -> PyResult<String> {
        let spec = self.options.spec(&self.weight_shape).map_err(|e| crate::error(e.to_string()))?;
        if let Some(b) = &self.bias {
            spec.check_bias_len(b.len()).map_err(|e| crate::error(e.to_string()))?;
        }
        Ok(spec.with_bias(self.bias.is_some()).to_string())
    }

    /// The output shape `(C_out, *spatial)` on one input sample `(C, *spatial)`.
    fn output_shape(&self, input_shape: Vec<usize>) -> PyResult<Vec<usize>> {
        self.resolve(&input_shape).map(|r| r.geometry().output_shape()).map_err(crate::error)
    }

    /// `(rows, cols)` of the matrix on one input sample.
    fn matrix_shape(&self, input_shape: Vec<usize>) -> PyResult<(usize, usize)> {
        self.resolve(&input_shape).map(|r| (r.geometry().rows(), r.geometry().cols())).map_err(crate::error)
    }

    /// A warning's text when this reading of the weight is implausible on `input_shape` though valid (the
    /// library's `LayerOptions::doubt`: a TensorFlow-layout weight, say), else None.
    fn doubt(&self, input_shape: Vec<usize>) -> Option<String> {
        let bias_len = self.bias.as_ref().map(Vec::len);
        self.options.geometry(&self.weight_shape, bias_len, &input_shape).ok()?;
        self.options.doubt(&self.weight_shape, &input_shape)
    }

    /// The weight's shape.
    #[getter]
    fn weight_shape(&self) -> Vec<usize> {
        self.weight_shape.clone()
    }
}

impl Layer {
    /// Everything checked against everything on one input sample `(C, *spatial)`.
    pub(crate) fn resolve(&self, input_shape: &[usize]) -> Res<ConvLayer> {
        ConvLayer::new(&self.weight_shape, self.weight.clone(), self.bias.clone(), input_shape, &self.options)
            .map_err(msg)
    }
}
