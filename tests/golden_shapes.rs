//! Shape chains against PyTorch (tests/golden/shapes.json, written by xtask/oracle/shapes.py).

use convmat::shape::{parse_layer, propagate, Layer};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/shapes.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read shapes.json")).expect("parse shapes.json")
}

fn dims(v: &Value) -> Vec<usize> {
    v.as_array().expect("array").iter().map(|x| x.as_u64().expect("uint") as usize).collect()
}

#[test]
fn chains_match_pytorch() {
    let doc = golden();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "catalog shrank to {}", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let input = dims(&case["input"]);
        let layers: Vec<Layer> = case["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| parse_layer(t.as_str().unwrap()).unwrap_or_else(|e| panic!("{name}: {e}")))
            .collect();
        let got = propagate(&input, &layers);
        if let Some(fails_at) = case.get("fails_at") {
            let err = got.expect_err(&format!("{name}: PyTorch refuses this chain ({})", case["torch_error"]));
            assert_eq!(err.index as u64, fails_at.as_u64().unwrap(), "{name}: {err}");
        } else {
            let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            let outputs: Vec<Vec<usize>> = case["outputs"].as_array().unwrap().iter().map(dims).collect();
            let params: Vec<usize> = dims(&case["params"]);
            assert_eq!(got.iter().map(|s| s.output.clone()).collect::<Vec<_>>(), outputs, "{name}");
            assert_eq!(got.iter().map(|s| s.params).collect::<Vec<_>>(), params, "{name}");
        }
    }
}

#[test]
fn lenet_error_names_the_right_size() {
    let layers: Vec<Layer> =
        ["Conv2d(1, 6, 5)", "MaxPool2d(2)", "Conv2d(6, 16, 5)", "MaxPool2d(2)", "Flatten()", "Linear(16*6*6, 120)"]
            .iter()
            .map(|t| parse_layer(t).unwrap())
            .collect();
    let e = propagate(&[1, 32, 32], &layers).unwrap_err().to_string();
    assert_eq!(e, "layer 6 (Linear(576, 120)): in_features is 576 but 400 features reach it; write Linear(400, ...)");
}
