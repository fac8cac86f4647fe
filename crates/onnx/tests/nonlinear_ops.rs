//! The nonlinearities evaluated by ONNX semantics (Selu, Celu, Mish, ThresholdedRelu, Sign, Log, Round,
//! Floor, Ceil, LpPool, GlobalLpPool, LRN) against onnxruntime (xtask/oracle/nonlinear_ops_golden.py,
//! float32), and their Lipschitz constants against the same data: between the two samples of each
//! golden batch, `||f(x0) - f(x1)|| <= L ||x0 - x1||` for the graph bound `L` whenever it is unconditional.

use std::path::{Path, PathBuf};

use convmat_net::{Monitor, Tensor};
use convmat_onnx::{BlockOptions, Model};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ops")
}

#[test]
fn nonlinearities_match_onnxruntime() {
    let listing: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("ops.json")).unwrap()).unwrap();
    let cases = listing["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 15);
    let npz = dir().join("ops.npz");
    let mut conditional = Vec::new();
    for name in cases.keys() {
        let x = convmat_io::read_npz(&npz, Some(&format!("{name}_x"))).unwrap();
        let want = convmat_io::read_npz(&npz, Some(&format!("{name}_y"))).unwrap();
        let model = Model::load(dir().join(format!("{name}.onnx"))).unwrap();
        let run = model
            .run(Tensor::new(x.shape.clone(), x.data.clone()), &BlockOptions::default(), false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = &run.outputs[0];
        assert_eq!(got.shape, want.shape, "{name}");
        let scale = want.data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = got.data.iter().zip(&want.data).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(err <= 1e-5 * scale, "{name}: {err} against {scale}");
        // the bound between the batch's two samples
        let n = model.block_norms(None, &BlockOptions::default(), 1e-10, &Monitor::new(), |_, _, _| {}).unwrap();
        let half = |v: &[f64], k: usize| v[k * v.len() / 2..(k + 1) * v.len() / 2].to_vec();
        let dist = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let (dx, dy) = (dist(half(&x.data, 0), half(&x.data, 1)), dist(half(&want.data, 0), half(&want.data, 1)));
        if n.graph_conditional_on.is_empty() {
            assert!(dy <= n.graph_upper * dx * (1.0 + 1e-6), "{name}: {dy} > {} · {dx}", n.graph_upper);
        } else {
            conditional.push(name.clone());
        }
    }
    // the step functions, Log, a ThresholdedRelu with a non-zero threshold and LRN have no constant
    let want = ["ceil", "floor", "log", "lrn", "lrn_defaults", "round", "sign", "thresholded_relu"];
    assert_eq!(conditional, want);
}
