//! Two traces of a run compared tensor by tensor in graph order: the first tensor whose values differ
//! (the "first diverging node"), how many elements, by how many steps.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::{TraceError, TraceRecord};

/// One tensor both traces hold, compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorDiff {
    /// The node that wrote it (in the first trace).
    pub node: String,
    /// Its op.
    pub op: String,
    /// The tensor's name.
    pub tensor: String,
    /// Its shape in the first trace.
    pub shape: Vec<usize>,
    /// Its elements.
    pub elements: usize,
    /// How many differ (all of them when the shapes differ).
    pub differ: usize,
    /// The largest `|a - b|` (`f64::INFINITY` when the shapes differ).
    pub max_diff: f64,
    /// For tensors of integers (stored integers): how many elements differ by each number of steps,
    /// `{"1": 5, "2": 1}`; empty otherwise.
    pub steps: BTreeMap<u64, usize>,
    /// The shape in the second trace, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_shape: Option<Vec<usize>>,
}

/// What [`diff_traces`] finds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceDiff {
    /// Every tensor both traces hold, in the first trace's order.
    pub tensors: Vec<TensorDiff>,
    /// The index in `tensors` of the first that differs.
    pub first: Option<usize>,
    /// Tensors only the first trace holds.
    pub only_first: Vec<String>,
    /// Tensors only the second trace holds.
    pub only_second: Vec<String>,
}

impl TraceDiff {
    /// The first tensor that differs, in graph order.
    pub fn first_diverging(&self) -> Option<&TensorDiff> {
        self.first.map(|i| &self.tensors[i])
    }
}

fn records(dir: &Path) -> Result<Vec<TraceRecord>, TraceError> {
    let path = dir.join("trace.json");
    let text = std::fs::read_to_string(&path).map_err(|source| TraceError::Io { path: path.clone(), source })?;
    serde_json::from_str(&text)
        .map_err(|e| TraceError::Format { path, what: format!("not a trace.json of convmat run --trace ({e})") })
}

/// Compares two trace folders (`convmat run --trace`'s `trace.json` and `.npy` files, or any written in
/// that layout) tensor by tensor, matching tensors by name, in the first trace's (graph) order.
///
/// # Errors
/// A folder without a readable `trace.json`; an `.npy` file that cannot be read.
pub fn diff_traces(first: &Path, second: &Path) -> Result<TraceDiff, TraceError> {
    let (a, b) = (records(first)?, records(second)?);
    let by_name: std::collections::HashMap<&str, &TraceRecord> = b.iter().map(|r| (r.tensor.as_str(), r)).collect();
    let mut tensors = Vec::new();
    let mut only_first = Vec::new();
    for ra in &a {
        let Some(rb) = by_name.get(ra.tensor.as_str()) else {
            only_first.push(ra.tensor.clone());
            continue;
        };
        let ta = convmat_io::read_array(&first.join(&ra.file))?;
        let tb = convmat_io::read_array(&second.join(&rb.file))?;
        let elements = ta.data.len();
        let mut d = TensorDiff {
            node: ra.node.clone(),
            op: ra.op.clone(),
            tensor: ra.tensor.clone(),
            shape: ta.shape.clone(),
            elements,
            differ: 0,
            max_diff: 0.0,
            steps: BTreeMap::new(),
            other_shape: None,
        };
        if ta.shape != tb.shape {
            d.differ = elements;
            d.max_diff = f64::INFINITY;
            d.other_shape = Some(tb.shape.clone());
        } else {
            let integers = ta.data.iter().chain(&tb.data).all(|v| v.fract() == 0.0);
            for (&x, &y) in ta.data.iter().zip(&tb.data) {
                let same = x == y || (x.is_nan() && y.is_nan());
                if !same {
                    d.differ += 1;
                    let diff = (x - y).abs();
                    d.max_diff = if diff.is_nan() { f64::NAN } else { d.max_diff.max(diff) };
                    if integers {
                        *d.steps.entry(diff as u64).or_default() += 1;
                    }
                }
            }
        }
        tensors.push(d);
    }
    let names: std::collections::HashSet<&str> = a.iter().map(|r| r.tensor.as_str()).collect();
    let only_second = b.iter().filter(|r| !names.contains(r.tensor.as_str())).map(|r| r.tensor.clone()).collect();
    let first = tensors.iter().position(|t| t.differ > 0);
    Ok(TraceDiff { tensors, first, only_first, only_second })
}
