//! Whole networks in fixed point (`Graph::run_fixed`) against an independent emulation with apytypes,
//! layer by layer: every block's stored integers and its per-channel overflow counts (products,
//! accumulators, results), for Nearest / Floor / Convergent x Saturate / Wrap, narrow and full-precision
//! accumulators, a bias type, a Gemm, a GlobalAveragePool and a residual Add.
//! Goldens: xtask/oracle/fixed_net_golden.py.

use std::path::{Path, PathBuf};

use convmat_net::{Formats, Tensor};
use convmat_onnx::{BlockOptions, Model};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fixed")
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn check(name: &str) {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap()).unwrap();
    let x = convmat_io::read_array(&dir().join(doc["input"].as_str().unwrap())).unwrap();
    let model = Model::load(dir().join(doc["model"].as_str().unwrap())).unwrap();
    let net = model.network(Some(&x.shape[1..]), &BlockOptions::default()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    let mut overflows = [0u64; 3];
    for case in cases {
        let formats: Formats = serde_json::from_value(case["formats"].clone()).unwrap();
        let modes = format!(
            "{} {}",
            formats.default.rounding.as_deref().unwrap(),
            formats.default.overflow.as_deref().unwrap()
        );
        let run = net
            .graph()
            .run_fixed(&net, vec![Tensor::new(x.shape.clone(), x.data.clone())], &formats, true)
            .unwrap_or_else(|e| panic!("{name} {modes}: {e}"));
        let layers = case["layers"].as_object().unwrap();
        for (node, want) in layers {
            let rec = run.report.iter().find(|r| &r.node == node).unwrap_or_else(|| panic!("{name}: no node {node}"));
            let format = want["format"].as_str().unwrap();
            assert_eq!(rec.result.as_deref(), Some(format), "{name} {modes} {node}: result format");
            let f: convmat_numeric::QFormat = format.parse().unwrap();
            let traced = run.trace.iter().find(|t| &t.node == node).unwrap();
            let got: Vec<i64> = traced.value.data.iter().map(|&v| (v * 2f64.powi(f.frac_bits())) as i64).collect();
            assert_eq!(got, ints(&want["stored"]), "{name} {modes} {node}: stored integers");
            for (k, key) in ["products", "accumulators", "results"].iter().enumerate() {
                let counts: Vec<i64> =
                    rec.channels.iter().map(|c| [c.products, c.accumulators, c.results][k] as i64).collect();
                assert_eq!(counts, ints(&want[*key]), "{name} {modes} {node}: {key} overflows per channel");
                overflows[k] += counts.iter().sum::<i64>() as u64;
            }
        }
        let f: convmat_numeric::QFormat = case["output_format"].as_str().unwrap().parse().unwrap();
        let got: Vec<i64> = run.outputs[0].data.iter().map(|&v| (v * 2f64.powi(f.frac_bits())) as i64).collect();
        assert_eq!(got, ints(&case["output"]), "{name} {modes}: output");
    }
    // the cases exercise every count
    assert!(overflows.iter().all(|&c| c > 0), "{name}: {overflows:?}");
}

#[test]
fn small_cnn_matches_apytypes_layer_by_layer() {
    check("cnn");
}

#[test]
fn residual_block_matches_apytypes_layer_by_layer() {
    check("residual");
}
