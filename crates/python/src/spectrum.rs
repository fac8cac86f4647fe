//! `singular_values`: the layer's spectrum by `convmat_spectrum`, and `network_norms`: a `Sequential`
//! chain's per-layer certified norms; both interruptible by Ctrl-C.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use convmat_matrix::Conv;
use convmat_spectrum::{Method, Monitor, Request, Spectrum};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::layer::Layer;
use crate::matrix::check_memory;
use crate::{heavy, msg, panic_message, Res};

/// Runs `f` on a worker thread and waits with the GIL released, checking for signals every 100 ms,
/// so Ctrl-C raises `KeyboardInterrupt` within a second. The worker gets a [`Monitor`] whose cancel
/// flag the interrupt sets: the library stops at its next step, and the thread ends soon after
/// (waited for up to a second, so an interrupted call does not leave a core busy).
pub(crate) fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    f: impl FnOnce(&Monitor<'_>) -> Res<T> + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    std::thread::Builder::new()
        .name("convmat-spectrum".into())
        .spawn(move || {
            let monitor = Monitor::new().cancel_on(&flag);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&monitor)))
                .map_err(|p| panic_message(p.as_ref()));
            let _ = tx.send(r.and_then(|r| r));
        })
        .map_err(|e| crate::error(format!("cannot start a thread: {e}")))?;
    let mut rx = rx;
    loop {
        // the receiver moves into the GIL-free closure and back (it is Send, not Sync)
        let (got, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(100)), rx));
        rx = back;
        match got {
            Ok(r) => return r.map_err(crate::error),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(interrupt) = py.check_signals() {
                    cancel.store(true, Ordering::Relaxed);
                    py.detach(move || rx.recv_timeout(Duration::from_secs(1)).ok());
                    return Err(interrupt);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(crate::error("internal error in convmat: the spectrum thread ended without a result"))
            }
        }
    }
}

/// The float64 layer for matrix-free work, refused when its vectors alone would not fit in memory.
pub(crate) fn operator_conv(layer: &Layer, input_shape: &[usize]) -> Res<Conv<f64>> {
    let l = layer.resolve(input_shape)?;
    let (rows, cols) = (l.geometry().rows() as u64, l.geometry().cols() as u64);
    // a few vectors of each side (Lanczos keeps more, in blocks it sizes itself)
    check_memory(
        rows.saturating_add(cols).saturating_mul(8 * 4),
        &format!("the vectors of the {rows} x {cols} operator"),
        "the layer is too large for this machine",
    )?;
    l.conv::<f64>().map_err(msg)
}

/// Singular values as a dict: `values` (descending), `method`, `iterations`, `residual`, `start`,
/// `circular_upper_bound`. `k = None` means all; `norm` asks for the largest alone.
#[pyfunction]
#[pyo3(signature = (layer, input_shape, k, norm, tol, method))]
pub fn singular_values<'py>(
    py: Python<'py>,
    layer: &Layer,
    input_shape: Vec<usize>,
    k: Option<usize>,
    norm: bool,
    tol: f64,
    method: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let request = match (k, norm) {
        (_, true) => Request::Norm,
        (Some(k), false) => Request::Top(k),
        (None, false) => Request::All,
    };
    let method: Method = method.parse().map_err(crate::error)?;
    convmat_spectrum::check_tolerance("tol", tol).map_err(|e| crate::error(msg(e)))?;
    let conv = heavy(py, || operator_conv(layer, &input_shape))?;
    let s: Spectrum = interruptible(py, move |m| {
        convmat_spectrum::singular_values_with(&conv, request, method, tol, m).map_err(msg)
    })?;
    let d = PyDict::new(py);
    d.set_item("values", numpy::IntoPyArray::into_pyarray(s.values, py))?;
    d.set_item("method", s.method.as_str())?;
    d.set_item("iterations", s.iterations)?;
    d.set_item("residual", s.residual)?;
    d.set_item("start", s.start.map(|s| s.as_str()))?;
    d.set_item("circular_upper_bound", s.circular_upper_bound)?;
    d.set_item("lower", s.lower)?;
    d.set_item("upper", s.upper)?;
    d.set_item("certificate", s.certificate.as_str())?;
    d.set_item("upper_bounds", numpy::IntoPyArray::into_pyarray(s.upper_bounds, py))?;
    Ok(d)
}

/// A chain's affine layers with their certified spectral norms and the products, as JSON text with the
/// keys of `convmat svd --json`'s network view. `layers`: the layer expressions (or one
/// `Sequential(...)`); `weights`: the `state_dict` tensors by name, as float64 arrays.
#[pyfunction]
#[pyo3(signature = (layers, input_shape, weights, tol))]
pub fn network_norms(
    py: Python<'_>,
    layers: Vec<String>,
    input_shape: Vec<usize>,
    weights: HashMap<String, numpy::PyReadonlyArrayDyn<'_, f64>>,
    tol: f64,
) -> PyResult<String> {
    convmat_spectrum::check_tolerance("tol", tol).map_err(|e| crate::error(msg(e)))?;
    let texts = convmat_shape::split_sequential(&layers).map_err(|e| crate::error(msg(e)))?;
    let layers = texts
        .iter()
        .enumerate()
        .map(|(i, t)| convmat_shape::parse_layer(t).map_err(|e| crate::error(format!("layer {}: {e}", i + 1))))
        .collect::<PyResult<Vec<_>>>()?;
    let mut tensors: HashMap<String, (Vec<usize>, Vec<f64>)> = HashMap::with_capacity(weights.len());
    for (name, a) in weights {
        let a = a.as_array();
        tensors.insert(name, (a.shape().to_vec(), a.iter().copied().collect()));
    }
    interruptible(py, move |m| {
        let weight = |key: &str| {
            let mut names: Vec<&String> = tensors.keys().collect();
            names.sort();
            let names = names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            tensors.get(key).cloned().ok_or_else(|| format!("the weights have no '{key}'; they have: {names}"))
        };
        let norms = convmat_net::sequential_norms(&layers, &input_shape, weight, tol, m, |_, _, _| {});
        serde_json::to_string(&norms.map_err(msg)?).map_err(msg)
    })
}
