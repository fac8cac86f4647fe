//! `convmat._native.Layer`: a layer's weights and options, resolved on an input shape per call.

use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::{msg, ConvmatError, Res};

/// A layer as PyTorch's constructor states it, with its weights (f64, as read).
#[pyclass(frozen, module = "convmat._native")]
pub struct Layer {
    weight_shape: Vec<usize>,
    weight: Vec<f64>,
    bias: Option<Vec<f64>>,
    stride: Vec<usize>,
    padding: String,
    dilation: Vec<usize>,
    groups: usize,
    padding_mode: String,
    transposed: bool,
    output_padding: Vec<usize>,
}

/// What every builder needs: the geometry on one input shape and the weights.
pub(crate) struct Resolved {
    pub geometry: Geometry,
    pub weight: Vec<f64>,
    pub bias: Option<Vec<f64>>,
}

#[pymethods]
impl Layer {
    /// `weight`, `bias`: float64 arrays; `padding`: the text `Padding::parse` reads ("1", "1,2",
    /// "same", "valid", ONNX pads "0,1,1,0"); the rest as PyTorch names them.
    #[new]
    #[pyo3(signature = (weight, bias, stride, padding, dilation, groups, padding_mode, transposed, output_padding))]
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
    ) -> PyResult<Self> {
        let bias = match bias {
            Some(b) if b.ndim() != 1 => {
                return Err(ConvmatError::new_err(format!(
                    "bias has shape {:?}: expected a vector, one value per output channel",
                    b.shape()
                )))
            }
            Some(b) => Some(b.as_array().iter().copied().collect()),
            None => None,
        };
        let layer = Self {
            weight_shape: weight.shape().to_vec(),
            weight: weight.as_array().iter().copied().collect(),
            bias,
            stride,
            padding,
            dilation,
            groups,
            padding_mode,
            transposed,
            output_padding,
        };
        layer.spec().map_err(ConvmatError::new_err)?;
        Ok(layer)
    }

    /// The PyTorch expression of the layer, e.g. `Conv2d(3, 16, kernel_size=3, padding=1)`.
    fn description(&self) -> PyResult<String> {
        self.spec().map(|s| s.to_string()).map_err(ConvmatError::new_err)
    }

    /// The output shape `(C_out, *spatial)` on one input sample `(C, *spatial)`.
    fn output_shape(&self, input_shape: Vec<usize>) -> PyResult<Vec<usize>> {
        self.resolve(&input_shape).map(|r| r.geometry.output_shape()).map_err(ConvmatError::new_err)
    }

    /// `(rows, cols)` of the matrix on one input sample.
    fn matrix_shape(&self, input_shape: Vec<usize>) -> PyResult<(usize, usize)> {
        self.resolve(&input_shape).map(|r| (r.geometry.rows(), r.geometry.cols())).map_err(ConvmatError::new_err)
    }

    /// The weight's shape.
    #[getter]
    fn weight_shape(&self) -> Vec<usize> {
        self.weight_shape.clone()
    }
}

impl Layer {
    /// The validated spec, without an input shape.
    // Until the front door's `LayerOptions::spec` lands this mirrors the CLI's flag handling.
    fn spec(&self) -> Res<ConvSpec> {
        let ws = &self.weight_shape;
        if self.groups == 0 {
            return Err("invalid groups 0: expected a positive integer".into());
        }
        let mut spec = ConvSpec::from_weight_shape(ws, self.groups, self.transposed).map_err(msg)?;
        let rank = spec.rank();
        let per_dim = |name: &str, v: &[usize], min: usize| -> Res<()> {
            if !(v.len() == 1 || v.len() == rank) || v.iter().any(|&x| x < min) {
                return Err(format!(
                    "invalid {name} {v:?}: expected one integer >= {min} or {rank} of them (one per spatial dim)"
                ));
            }
            Ok(())
        };
        if !self.stride.is_empty() {
            per_dim("stride", &self.stride, 1)?;
            spec = spec.with_stride(&self.stride);
        }
        if !self.dilation.is_empty() {
            per_dim("dilation", &self.dilation, 1)?;
            spec = spec.with_dilation(&self.dilation);
        }
        spec = spec.with_padding(Padding::parse(&self.padding, rank).map_err(msg)?);
        spec = spec.with_padding_mode(self.padding_mode.parse::<PaddingMode>().map_err(msg)?);
        if !self.output_padding.is_empty() && self.output_padding.iter().any(|&p| p != 0) {
            if !self.transposed {
                return Err(format!(
                    "invalid output_padding {:?}: output_padding applies to transposed convolutions only",
                    self.output_padding
                ));
            }
            per_dim("output_padding", &self.output_padding, 0)?;
            spec = spec.with_output_padding(&self.output_padding);
        }
        spec.validate().map_err(msg)?;
        spec.check_weight_shape(ws).map_err(msg)?;
        if let Some(b) = &self.bias {
            spec.check_bias_len(b.len()).map_err(msg)?;
        }
        Ok(spec.with_bias(self.bias.is_some()))
    }

    /// Everything checked against everything on one input sample `(C, *spatial)`.
    pub(crate) fn resolve(&self, input_shape: &[usize]) -> Res<Resolved> {
        let spec = self.spec()?;
        let rank = spec.rank();
        if input_shape.len() != rank + 1 {
            return Err(format!(
                "invalid input_shape {input_shape:?}: the {rank}-d layer {spec} takes one sample (C, *{rank} spatial sizes), without the batch"
            ));
        }
        if input_shape[0] != spec.in_channels() {
            return Err(format!(
                "input_shape {input_shape:?} has {} channels but the layer {spec} takes {} (weight shape {:?})",
                input_shape[0],
                spec.in_channels(),
                self.weight_shape
            ));
        }
        if let Some(w) = self.weight.iter().find(|w| !w.is_finite()) {
            return Err(format!("the weight holds {w}: every weight must be a finite number"));
        }
        if let Some(b) = self.bias.iter().flatten().find(|b| !b.is_finite()) {
            return Err(format!("the bias holds {b}: every bias value must be a finite number"));
        }
        let geometry = Geometry::new(&spec, &input_shape[1..]).map_err(msg)?;
        Ok(Resolved { geometry, weight: self.weight.clone(), bias: self.bias.clone() })
    }
}
