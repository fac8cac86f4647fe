//! The Lipschitz bound of whole graphs (`graph_upper`) against an independent lower estimate: the
//! largest spectral norm of the torch Jacobian over 18 points (xtask/oracle/graph_lipschitz.py, float64
//! autograd + NumPy SVD). Any Lipschitz constant is at least every Jacobian norm, so an unconditional
//! bound below the estimate would be wrong; a conditional one names the ops it rests on.

use std::path::{Path, PathBuf};

use convmat_net::{Monitor, NormMethod};
use convmat_onnx::{BlockOptions, Model};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/graphs")
}

#[test]
fn graph_bounds_hold_the_jacobian_norms() {
    let oracle: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("lipschitz.json")).unwrap()).unwrap();
    let models = oracle["models"].as_object().unwrap();
    assert!(models.len() >= 12, "{}", models.len());
    // the ops with no global constant each model holds (squeeze-and-excitation products, LayerNorm,
    // the Erf GELU's product x · (1 + erf(x / √2)) as torch writes it)
    let conditional = ["mobilenetv3_block", "silu_se", "convnext_block"];
    for (name, want) in models {
        let j = want["jacobian_norm"].as_f64().unwrap();
        let model = Model::load(dir().join(format!("{name}.onnx"))).unwrap();
        let n = model
            .block_norms(None, &BlockOptions::default(), 1e-8, &Monitor::new(), |_, _, _| {})
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let up = n.graph_upper;
        eprintln!(
            "{name}: graph_upper {up:.6} >= max ||J|| {j:.6} (ratio {:.2}), {:?}",
            up / j,
            n.graph_conditional_on
        );
        assert_eq!(
            !n.graph_conditional_on.is_empty(),
            conditional.contains(&name.as_str()),
            "{name}: {:?}",
            n.graph_conditional_on
        );
        if !conditional.contains(&name.as_str()) {
            assert!(up >= j * (1.0 - 1e-9), "{name}: bound {up} below the Jacobian norm {j}");
        }
        // every block certified to the tolerance asked for
        assert!(n.tol_missed.is_empty(), "{name}: {:?}", n.tol_missed);
        for b in &n.layers {
            assert!(b.lower <= b.upper && b.upper.is_finite(), "{name} {}: [{}, {}]", b.name, b.lower, b.upper);
        }
    }
}

/// The structured methods name themselves: a depthwise convolution is split per group, a global
/// average pool (ReduceMean / GlobalAveragePool) has disjoint rows.
#[test]
fn structured_blocks_say_how_they_were_certified() {
    let model = Model::load(dir().join("mobilenetv2_block.onnx")).unwrap();
    let n = model.block_norms(None, &BlockOptions::default(), 1e-10, &Monitor::new(), |_, _, _| {}).unwrap();
    let methods: Vec<(String, NormMethod)> = n.layers.iter().map(|b| (b.name.clone(), b.method)).collect();
    assert!(methods.iter().any(|(_, m)| *m == NormMethod::PerGroup), "{methods:?}");
    let model = Model::load(dir().join("head.onnx")).unwrap();
    let n = model.block_norms(None, &BlockOptions::default(), 1e-10, &Monitor::new(), |_, _, _| {}).unwrap();
    let mean = n.layers.iter().find(|b| b.op == "ReduceMean").expect("the head's mean");
    assert_eq!(mean.method, NormMethod::ClosedForm);
    // the mean over 4x4 positions: 1/√16 exactly
    assert!((mean.lower - 0.25).abs() < 1e-15 && (mean.upper - 0.25).abs() < 1e-15, "{mean:?}");
}
