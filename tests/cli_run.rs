//! `convmat run` as a user runs it: the built binary on the committed graph goldens
//! (crates/onnx/tests/golden/graphs, made by xtask/oracle/graph_golden.py from onnxruntime).

use std::path::Path;

use convmat::io::{read_npy, read_npz};

mod common;
use common::{bad, ok, Dir};

fn golden(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/onnx/tests/golden/graphs").join(name).display().to_string()
}

/// The golden tensor `name` of `model` (its key from graphs.json).
fn tensor(model: &str, name: &str) -> convmat::io::Tensor {
    let listing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden("graphs.json")).unwrap()).unwrap();
    let key = listing["models"][model]["tensors"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()
        ["key"]
        .as_str()
        .unwrap()
        .to_string();
    read_npz(Path::new(&golden(&format!("{model}.npz"))), Some(&key)).unwrap()
}

fn rel(got: &[f64], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    got.iter().zip(want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale
}

#[test]
fn run_writes_the_output_and_a_trace_that_match_onnxruntime() {
    let d = Dir::new();
    for model in ["resnet_basic", "shufflenet_unit", "convnext_block", "inception"] {
        let x = read_npz(Path::new(&golden(&format!("{model}.npz"))), Some("x")).unwrap();
        let xin = d.npy(&format!("{model}_x.npy"), &x.shape, &x.data);
        let y = d.s(&format!("{model}_y.npy"));
        let trace = d.p(&format!("{model}_trace"));
        ok(&[
            "run",
            &golden(&format!("{model}.onnx")),
            "--input",
            &xin,
            "-o",
            &y,
            "--trace",
            &trace.display().to_string(),
        ]);
        let got = read_npy(Path::new(&y)).unwrap();
        let want = tensor(model, "y");
        assert_eq!(got.shape, want.shape);
        assert_eq!(got.dtype, "float32");
        assert!(rel(&got.data, &want.data) <= 1e-5, "{model}: {}", rel(&got.data, &want.data));
        let records: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(trace.join("trace.json")).unwrap()).unwrap();
        let records = records.as_array().unwrap();
        assert!(records.len() >= 4, "{model}: {records:?}");
        for r in records {
            let t = read_npy(&trace.join(r["file"].as_str().unwrap())).unwrap();
            assert_eq!(serde_json::json!(t.shape), r["shape"]);
            let want = tensor(model, r["tensor"].as_str().unwrap());
            assert!(rel(&t.data, &want.data) <= 1e-5, "{model} {}", r["tensor"]);
        }
        // the last record is the graph's output
        assert_eq!(records.last().unwrap()["tensor"], "y");
    }
    // float64 and one sample without the batch dimension
    let x = read_npz(Path::new(&golden("densenet_block.npz")), Some("x")).unwrap();
    let n = x.data.len() / 2;
    let xin = d.npy("one.npy", &x.shape[1..], &x.data[..n]);
    let y = d.s("one_y.npy");
    ok(&["run", &golden("densenet_block.onnx"), "--input", &xin, "-o", &y, "--dtype", "float64"]);
    let got = read_npy(Path::new(&y)).unwrap();
    let want = tensor("densenet_block", "y");
    assert_eq!((got.shape.as_slice(), got.dtype.as_str()), (&want.shape[1..], "float64"));
    assert!(rel(&got.data, &want.data[..want.data.len() / 2]) <= 1e-5);
}

#[test]
fn bad_runs_exit_2_without_files() {
    let d = Dir::new();
    let model = golden("resnet_basic.onnx");
    let x = d.npy("x.npy", &[1, 3, 6, 6], &[0.5; 108]);
    bad(&["run", &model, "--input", &x, "-o", &d.s("y.npy")], &["[3, 6, 6]", "'x'"]);
    let good = d.npy("good.npy", &[1, 4, 6, 6], &[0.5; 144]);
    // a trace folder that holds a file
    std::fs::create_dir(d.p("full")).unwrap();
    std::fs::write(d.p("full/keep.txt"), "mine").unwrap();
    bad(&["run", &model, "--input", &good, "--trace", &d.s("full")], &["not empty"]);
    assert_eq!(std::fs::read_dir(d.p("full")).unwrap().count(), 1);
    bad(&["run", &model, "--input", &good, "--dtype", "float16"], &["float16", "float32, float64"]);
    bad(&["run", &model, "--input", &good, "-o", &d.s("y.txt")], &["run writes .npy"]);
    assert_eq!(d.listing(), ["full", "good.npy", "x.npy"]);
    // an empty trace folder is filled
    std::fs::create_dir(d.p("empty")).unwrap();
    ok(&["run", &model, "--input", &good, "--trace", &d.s("empty")]);
    assert!(d.p("empty/trace.json").exists());
}
