//! `convmat._native.OnnxModel`: an ONNX model read, listed and cut into affine blocks by convmat-onnx,
//! through the calls `convmat onnx` (`Model::load`, `Model::summary`) and `convmat export`
//! (`Model::affine_layers`, `Model::export`) make.
//!
//! Node parameters and activations are `serde_json` maps in the library: they cross into Python as
//! the JSON text `convmat onnx --json` prints, so both show the same values under the same keys.

use std::path::PathBuf;
use std::sync::Arc;

use convmat_matrix::MatrixFormat;
use convmat_net::{Precision, Run, Tensor};
use convmat_onnx::{AffineLayer, BlockOptions, Csr, Model, OnnxError};
use convmat_shape::Padding;
use numpy::{IntoPyArray, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use crate::matrix::check_memory;
use crate::{heavy, msg, Res};

/// A model read from a `.onnx` file (its graph and initializers, weights decoded per call).
#[pyclass(frozen, module = "convmat._native")]
pub struct OnnxModel {
    // shared with the worker thread of an interruptible call (`norms`)
    model: Arc<Model>,
}

/// Index arrays as SciPy keeps them without a copy: int32 when every index fits, else int64.
enum Index {
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// One block's matrix in the requested format, ready for NumPy.
enum Matrix {
    Dense(ndarray::Array2<f64>),
    Sparse { data: Vec<f64>, indices: Index, indptr: Index, shape: (usize, usize), csr: bool },
}

impl Matrix {
    fn new(m: Csr, format: MatrixFormat) -> Res<Self> {
        let shape = m.shape();
        if format == MatrixFormat::Dense {
            let bytes = (shape.0 as u64).saturating_mul(shape.1 as u64).saturating_mul(8);
            check_memory(bytes, &format!("the dense {} x {} block", shape.0, shape.1), "use format='csr'")?;
            let mut a = ndarray::Array2::<f64>::zeros(shape);
            for (r, row) in m.outer_iterator().enumerate() {
                for (c, &v) in row.iter() {
                    a[(r, c)] = v;
                }
            }
            return Ok(Self::Dense(a));
        }
        let m = if format == MatrixFormat::Csc { m.to_other_storage() } else { m };
        let csr = m.is_csr();
        let (indptr, indices, data) = m.into_raw_storage();
        let narrow = shape.0.max(shape.1) < i32::MAX as usize && data.len() < i32::MAX as usize;
        let (indices, indptr) = if narrow {
            (
                Index::I32(indices.into_iter().map(|i| i as i32).collect()),
                Index::I32(indptr.into_iter().map(|i| i as i32).collect()),
            )
        } else {
            (
                Index::I64(indices.into_iter().map(i64::from).collect()),
                Index::I64(indptr.into_iter().map(|i| i as i64).collect()),
            )
        };
        Ok(Self::Sparse { data, indices, indptr, shape, csr })
    }

    /// A dense array, or `(data, indices, indptr, shape, format)` for SciPy (as `matrix` returns).
    fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        fn index(py: Python<'_>, i: Index) -> PyResult<Py<PyAny>> {
            match i {
                Index::I32(v) => v.into_pyarray(py).into_py_any(py),
                Index::I64(v) => v.into_pyarray(py).into_py_any(py),
            }
        }
        match self {
            Self::Dense(a) => a.into_pyarray(py).into_py_any(py),
            Self::Sparse { data, indices, indptr, shape, csr } => {
                (data.into_pyarray(py), index(py, indices)?, index(py, indptr)?, shape, if csr { "csr" } else { "csc" })
                    .into_py_any(py)
            }
        }
    }
}

/// A block and its matrix converted, before it meets the GIL again.
struct Block {
    layer: AffineLayer,
    matrix: Matrix,
    activations: String,
}

/// An ONNX error's message, with how Python callers give what is missing (the library's message names
/// it in words every front end shares; the CLI adds `--input-shape` instead).
fn onnx_msg(e: OnnxError) -> String {
    match &e {
        OnnxError::DynamicShape { dims, example, .. } => {
            let tuple =
                |v: Vec<String>| if v.len() == 1 { format!("({},)", v[0]) } else { format!("({})", v.join(", ")) };
            let ex = example.iter().map(usize::to_string).collect();
            format!("{e}; pass input_shape={}, for example input_shape={}", tuple(dims.clone()), tuple(ex))
        }
        _ => e.to_string(),
    }
}

fn block(layer: Result<AffineLayer, OnnxError>, format: MatrixFormat) -> Res<Block> {
    let mut layer = layer.map_err(onnx_msg)?;
    let m = std::mem::replace(&mut layer.matrix, Csr::zero((0, 0)));
    let activations = serde_json::to_string(&layer.activations).map_err(msg)?;
    Ok(Block { matrix: Matrix::new(m, format)?, layer, activations })
}

#[pymethods]
impl OnnxModel {
    /// Reads the model file (external data relative to its folder), as `convmat onnx` does.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let model = heavy(py, || Model::load(&path).map_err(onnx_msg))?;
        Ok(Self { model: Arc::new(model) })
    }

    /// The file the model was read from.
    #[getter]
    fn path(&self) -> PathBuf {
        self.model.path().to_path_buf()
    }

    /// The default-domain opset the model imports.
    #[getter]
    fn opset(&self) -> i64 {
        self.model.opset()
    }

    /// `{"inputs", "nodes"}` as JSON text: exactly what `convmat onnx --json` prints.
    #[pyo3(signature = (input_shape))]
    fn summary(&self, py: Python<'_>, input_shape: Option<Vec<usize>>) -> PyResult<String> {
        heavy(py, || {
            let summary = self.model.summary(input_shape.as_deref()).map_err(onnx_msg)?;
            serde_json::to_string(&summary).map_err(msg)
        })
    }

    /// Every affine block's certified spectral norm and the products, as JSON text: exactly what
    /// `convmat svd --weights MODEL.onnx --json` prints (without its `model` and `seconds`). Ctrl-C stops it.
    #[pyo3(signature = (input_shape, tol))]
    fn norms(&self, py: Python<'_>, input_shape: Option<Vec<usize>>, tol: f64) -> PyResult<String> {
        convmat_spectrum::check_tolerance("tol", tol).map_err(|e| crate::error(msg(e)))?;
        let model = Arc::clone(&self.model);
        crate::spectrum::interruptible(py, move |m| {
            let norms = model.block_norms(input_shape.as_deref(), &BlockOptions::default(), tol, m, |_, _, _| {});
            serde_json::to_string(&norms.map_err(onnx_msg)?).map_err(msg)
        })
    }

    /// Every affine block in order, as `convmat export` cuts them: a list of
    /// `(name, op, nodes, input_shape, output_shape, activations_json, matrix, bias)`, each block built
    /// with the GIL released and handed to NumPy before the next is built.
    #[pyo3(signature = (input_shape, fold_batchnorm, format))]
    fn affine_layers(
        &self,
        py: Python<'_>,
        input_shape: Option<Vec<usize>>,
        fold_batchnorm: bool,
        format: &str,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let format = format.parse::<MatrixFormat>().map_err(|e| crate::error(e.to_string()))?;
        let opts = BlockOptions::default().fold_batchnorm(fold_batchnorm);
        let mut layers = heavy(py, || self.model.affine_layers(input_shape.as_deref(), &opts).map_err(onnx_msg))?;
        let mut out = Vec::with_capacity(layers.len());
        while let Some(b) = heavy(py, || layers.next().map(|l| block(l, format)).transpose())? {
            let l = b.layer;
            out.push(
                (
                    l.name,
                    l.op,
                    l.nodes,
                    l.input_shape,
                    l.output_shape,
                    b.activations,
                    b.matrix.into_python(py)?,
                    l.bias.into_pyarray(py),
                )
                    .into_py_any(py)?,
            );
        }
        Ok(out)
    }

    /// One Conv / ConvTranspose / AveragePool / Pad node as the library's `ConvLayer` (as `convmat build
    /// --weights MODEL.onnx --layer NODE` resolves it), taken apart into `convmat.Conv`'s arguments:
    /// `(weight, bias, stride, padding, dilation, groups, padding_mode, transposed, output_padding,
    /// input_shape)`, the padding as `2 x dims` ints (begins, then ends) or `same_upper` / `same_lower` / ...
    #[pyo3(signature = (node_name, input_shape))]
    fn conv_layer(&self, py: Python<'_>, node_name: &str, input_shape: Option<Vec<usize>>) -> PyResult<Py<PyAny>> {
        let layer = heavy(py, || self.model.conv_layer(node_name, input_shape.as_deref()).map_err(onnx_msg))?;
        let g = layer.geometry();
        let spec = g.spec();
        let weight = ndarray::ArrayD::from_shape_vec(spec.weight_shape(), layer.weight().to_vec())
            .map_err(|e| crate::error(e.to_string()))?;
        let padding = match spec.padding() {
            Padding::Explicit { begin, end } => begin.iter().chain(end).copied().collect::<Vec<_>>().into_py_any(py)?,
            Padding::Same => "same".into_py_any(py)?,
            Padding::SameUpper => "same_upper".into_py_any(py)?,
            Padding::SameLower => "same_lower".into_py_any(py)?,
            Padding::Valid => "valid".into_py_any(py)?,
            other => return Err(crate::error(format!("node '{node_name}': padding {other} has no convmat.Conv form"))),
        };
        (
            weight.into_pyarray(py),
            layer.bias().map(|b| b.to_vec().into_pyarray(py)),
            spec.stride().to_vec(),
            padding,
            spec.dilation().to_vec(),
            spec.groups(),
            spec.padding_mode().to_string(),
            spec.is_transposed(),
            spec.output_padding().to_vec(),
            g.input_shape(),
        )
            .into_py_any(py)
    }

    /// Writes every block as `out_dir/NNN_name.npz` plus `out_dir/manifest.json`, as `convmat export`
    /// does; returns the manifest's `blocks` as JSON text.
    #[pyo3(signature = (out_dir, input_shape, fold_batchnorm))]
    fn export(
        &self,
        py: Python<'_>,
        out_dir: PathBuf,
        input_shape: Option<Vec<usize>>,
        fold_batchnorm: bool,
    ) -> PyResult<String> {
        let opts = BlockOptions::default().fold_batchnorm(fold_batchnorm);
        heavy(py, || {
            let blocks = self.model.export(&out_dir, input_shape.as_deref(), &opts).map_err(onnx_msg)?;
            serde_json::to_string(&blocks).map_err(msg)
        })
    }

    /// The model as a graph of blocks, junctions and nonlinearities: the records of `manifest.json`'s
    /// `graph` list (without files), as JSON text.
    #[pyo3(signature = (input_shape, fold_batchnorm))]
    fn graph(&self, py: Python<'_>, input_shape: Option<Vec<usize>>, fold_batchnorm: bool) -> PyResult<String> {
        let opts = BlockOptions::default().fold_batchnorm(fold_batchnorm);
        heavy(py, || {
            let network = self.model.network(input_shape.as_deref(), &opts).map_err(onnx_msg)?;
            serde_json::to_string(&network.graph_records()).map_err(msg)
        })
    }

    /// The model run on `x` (`(N, *sample)` or one sample) in `dtype` (`float32` / `float64`), every
    /// block through convmat's operator: `(output, trace)` with `trace` a list of
    /// `(tensor, node, op, array)` in graph order (empty unless `trace`).
    #[pyo3(signature = (x, trace, dtype))]
    fn run(&self, py: Python<'_>, x: PyReadonlyArrayDyn<'_, f64>, trace: bool, dtype: &str) -> PyResult<Py<PyAny>> {
        let precision: Precision = dtype.parse().map_err(crate::error)?;
        let x = x.as_array();
        let shape = x.shape().to_vec();
        let data: Vec<f64> = x.iter().copied().collect();
        fn finish<T: convmat_matrix::Float + numpy::Element>(
            py: Python<'_>,
            run: Run<T>,
            batched: bool,
        ) -> PyResult<Py<PyAny>> {
            let array = |t: Tensor<T>, drop_batch: bool| -> PyResult<Py<PyAny>> {
                let shape = if drop_batch { t.shape[1..].to_vec() } else { t.shape.clone() };
                let a = ndarray::ArrayD::from_shape_vec(shape, t.data).map_err(|e| crate::error(e.to_string()))?;
                a.into_pyarray(py).into_py_any(py)
            };
            let y = run.outputs.into_iter().next().ok_or_else(|| crate::error("the graph has no output"))?;
            let mut traced = Vec::with_capacity(run.trace.len());
            for t in run.trace {
                traced.push((t.tensor, t.node, t.op, array(t.value, false)?).into_py_any(py)?);
            }
            (array(y, !batched)?, traced).into_py_any(py)
        }
        let model = &self.model;
        let batched = model.sample_shape(&shape) != shape;
        let opts = BlockOptions::default();
        match precision {
            Precision::Float32 => {
                let input = Tensor::new(shape, data.iter().map(|&v| v as f32).collect());
                let run = heavy(py, || model.run(input, &opts, trace).map_err(onnx_msg))?;
                finish(py, run, batched)
            }
            _ => {
                let input = Tensor::new(shape, data);
                let run = heavy(py, || model.run(input, &opts, trace).map_err(onnx_msg))?;
                finish(py, run, batched)
            }
        }
    }
    /// The model run in fixed point with a formats file's JSON text (`convmat run --fixed`):
    /// `(output, output_format, report_json, trace)`, the report the list of per-node records
    /// `--report` writes under `layers`.
    #[pyo3(signature = (x, formats, trace))]
    fn run_fixed(
        &self,
        py: Python<'_>,
        x: PyReadonlyArrayDyn<'_, f64>,
        formats: &str,
        trace: bool,
    ) -> PyResult<Py<PyAny>> {
        let formats = convmat_net::Formats::from_json(formats).map_err(|e| crate::error(e.to_string()))?;
        let x = x.as_array();
        let shape = x.shape().to_vec();
        let data: Vec<f64> = x.iter().copied().collect();
        let model = &self.model;
        let sample = model.sample_shape(&shape);
        let batched = sample != shape;
        let run = heavy(py, || {
            let network = model.network(Some(&sample), &BlockOptions::default()).map_err(onnx_msg)?;
            network.graph().run_fixed(&network, vec![Tensor::new(shape, data)], &formats, trace).map_err(msg)
        })?;
        let array = |t: Tensor<f64>, drop_batch: bool| -> PyResult<Py<PyAny>> {
            let shape = if drop_batch { t.shape[1..].to_vec() } else { t.shape.clone() };
            let a = ndarray::ArrayD::from_shape_vec(shape, t.data).map_err(|e| crate::error(e.to_string()))?;
            a.into_pyarray(py).into_py_any(py)
        };
        let report = serde_json::to_string(&run.report).map_err(|e| crate::error(e.to_string()))?;
        let format = run.formats[0].map(|f| f.to_string());
        let mut traced = Vec::with_capacity(run.trace.len());
        for t in run.trace {
            traced.push((t.tensor, t.node, t.op, array(t.value, false)?).into_py_any(py)?);
        }
        let y = run.outputs.into_iter().next().ok_or_else(|| crate::error("the graph has no output"))?;
        (array(y, !batched)?, format, report, traced).into_py_any(py)
    }

    /// Writes the model lowered to dense Gemm (or MatMul + Add) blocks and its nonlinearities, as
    /// `convmat lower` does; returns `{"model", "output", "blocks", "bytes"}` as JSON text.
    // the keyword arguments of `Model.lower`, one each
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (out_path, input_shape, form, max_dense_bytes, keep_input_shape, max_pool))]
    fn lower(
        &self,
        py: Python<'_>,
        out_path: PathBuf,
        input_shape: Option<Vec<usize>>,
        form: &str,
        max_dense_bytes: Option<u64>,
        keep_input_shape: bool,
        max_pool: &str,
    ) -> PyResult<String> {
        let form = form.parse::<convmat_onnx::Form>().map_err(|e| crate::error(e.to_string()))?;
        let max_pool = max_pool.parse::<convmat_onnx::MaxPoolForm>().map_err(|e| crate::error(e.to_string()))?;
        let options = convmat_onnx::LowerOptions::default()
            .input_shape(input_shape)
            .form(form)
            .max_dense_bytes(max_dense_bytes)
            .keep_input_shape(keep_input_shape)
            .max_pool(max_pool);
        heavy(py, || {
            let report = self.model.lower(&options).and_then(|l| l.write(&out_path)).map_err(onnx_msg)?;
            serde_json::to_string(&report).map_err(msg)
        })
    }
}
