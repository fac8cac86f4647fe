//! Quantized ONNX models through the CLI (goldens of `xtask/oracle/quant_golden.py`): `convmat range
//! --weights MODEL.onnx` against NumPy brute force, `convmat run` against onnxruntime bit for bit,
//! `convmat diff` naming the first diverging tensor, and bad quantization parameters.

use serde_json::Value;

mod common;
use common::{bad, bad_in, ok, Dir};

fn golden(name: &str) -> String {
    format!("{}/crates/onnx/tests/golden/quant/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn doc() -> Value {
    serde_json::from_str(&std::fs::read_to_string(golden("quant_range.json")).unwrap()).unwrap()
}

#[test]
fn range_of_quantized_nodes_matches_brute_force() {
    for case in doc()["cases"].as_array().unwrap() {
        let model = golden(case["model"].as_str().unwrap());
        let node = case["node"].as_str().unwrap();
        let r: Value = serde_json::from_str(&ok(&["range", "--weights", &model, "--layer", node, "--json"])).unwrap();
        let mins: Vec<&Value> = r["channels"].as_array().unwrap().iter().map(|c| &c["min"]).collect();
        let maxs: Vec<&Value> = r["channels"].as_array().unwrap().iter().map(|c| &c["max"]).collect();
        assert_eq!(mins, case["expected_min"].as_array().unwrap().iter().collect::<Vec<_>>(), "{model}");
        assert_eq!(maxs, case["expected_max"].as_array().unwrap().iter().collect::<Vec<_>>(), "{model}");
        assert_eq!(r["node"], node);
        assert_eq!(r["input_zero_point"], case["input_zero_point"]);
        // without --layer: every quantized node of the model, here the one
        let all: Value = serde_json::from_str(&ok(&["range", "--weights", &model, "--json"])).unwrap();
        assert_eq!(all["layers"][0]["channels"], r["channels"], "{model}");
    }
    let r: Value = serde_json::from_str(&ok(&["range", "--weights", &golden("tiny_cnn_qop.onnx"), "--json"])).unwrap();
    assert_eq!(r["layers"].as_array().unwrap().len(), 5, "the torch CNN's five QLinearConv nodes");
}

#[test]
fn run_is_bit_exact_with_onnxruntime_and_diff_finds_no_divergence() {
    let d = Dir::new();
    for run in doc()["runs"].as_array().unwrap() {
        let name = run["model"].as_str().unwrap();
        let npz = golden(&name.replace(".onnx", ".npz"));
        let y = d.s(&name.replace(".onnx", "_y.npy"));
        let trace = d.s(&name.replace(".onnx", "_trace"));
        ok(&["run", &golden(name), "--input", &format!("{npz}:x"), "-o", &y, "--trace", &trace]);
        let got = convmat_io::read_array(std::path::Path::new(&y)).unwrap();
        let want = convmat_io::read_array(std::path::Path::new(&format!("{npz}:y"))).unwrap();
        assert_eq!((got.shape, got.data), (want.shape, want.data), "{name}");
        // a trace compared with itself: nothing diverges
        let same = ok(&["diff", &trace, &trace]);
        assert!(same.contains("all identical"), "{name}: {same}");
    }
}

#[test]
fn diff_names_the_first_diverging_tensor_and_its_steps() {
    let d = Dir::new();
    let write = |dir: &str, values: [&[f64]; 3]| {
        std::fs::create_dir_all(d.p(dir)).unwrap();
        let names = ["a", "b", "c"];
        let mut records = Vec::new();
        for (k, (n, v)) in names.iter().zip(values).enumerate() {
            d.npy(&format!("{dir}/{k}.npy"), &[v.len()], v);
            records.push(serde_json::json!({"node": format!("n{k}"), "op": "QLinearConv", "tensor": n, "shape": [v.len()], "file": format!("{k}.npy")}));
        }
        std::fs::write(d.p(&format!("{dir}/trace.json")), serde_json::to_string(&records).unwrap()).unwrap();
    };
    write("ta", [&[1.0, 2.0, 3.0], &[5.0, 6.0, 7.0, 8.0], &[0.0]]);
    write("tb", [&[1.0, 2.0, 3.0], &[5.0, 7.0, 7.0, 10.0], &[1.0]]);
    let out = ok(&["diff", &d.s("ta"), &d.s("tb")]);
    assert!(out.contains("first diverging tensor: 'b' (node 'n1', QLinearConv): 2 of 4 elements differ"), "{out}");
    assert!(
        out.contains("1 by 1 step, 1 by 2 steps") && out.contains("1 identical before it, 1 of the 1 after it differ"),
        "{out}"
    );
    let j: Value = serde_json::from_str(&ok(&["diff", &d.s("ta"), &d.s("tb"), "--json"])).unwrap();
    assert_eq!((j["first"].as_u64(), j["tensors"][1]["steps"]["2"].as_u64()), (Some(1), Some(1)));
    bad(&["diff", &d.s("ta"), &d.s("nowhere")], &["trace.json"]);
}

#[test]
fn bad_quantization_parameters_are_one_line_and_write_nothing() {
    let d = Dir::new();
    for (file, expect) in doc()["bad"].as_object().unwrap() {
        let model = golden(&format!("bad/{file}"));
        let fragments: Vec<&str> = expect.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        bad(&["range", "--weights", &model], &fragments);
        let x = d.npy("x.npy", &[1, 3, 6, 5], &[0.5; 90]);
        std::fs::write(d.p("out.npz"), b"keep").unwrap();
        bad_in(&d, &["run", &model, "--input", &x, "-o", &d.s("y.npy")], &[fragments[0]]);
    }
    let q = golden("qlinearconv_u8.onnx");
    bad(
        &["range", "--weights", &q, "--input-dtype", "q8.0"],
        &["--input-dtype is not taken with --weights MODEL.onnx"],
    );
    bad(&["range", "--weights", &q, "--layer", "quant"], &["not a quantized convolution", "the model's: qconv"]);
}
