//! `convmat lower` as a user runs it: the built binary on the committed goldens (crates/onnx/tests/golden,
//! made by xtask/oracle/lower_golden.py and onnx_golden.py), its exit code, JSON and files. What the written
//! weights are is checked against torch in crates/onnx/tests/lower.rs.

use std::path::Path;

mod common;
use common::{bad, ok, Dir};

fn golden(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/onnx/tests/golden").join(name).display().to_string()
}

#[test]
fn json_report_has_the_contract_keys() {
    let d = Dir::new();
    let out = d.s("out.onnx");
    let text = ok(&["lower", &golden("lower/cnn_b.onnx"), "-o", &out, "--form", "matmul", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // (serde_json's Value sorts keys)
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["blocks", "bytes", "model", "output", "seconds"]);
    assert!(text.find("\"model\"") < text.find("\"blocks\""), "printed in the documented order: {text}");
    assert_eq!(v["output"], out.as_str());
    assert_eq!(v["bytes"].as_u64().unwrap(), std::fs::metadata(&out).unwrap().len());
    let blocks = v["blocks"].as_array().unwrap();
    let rows: Vec<(&str, &str, u64, u64)> = blocks
        .iter()
        .map(|b| {
            let keys: Vec<&String> = b.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["bytes", "cols", "name", "op", "rows"]);
            (
                b["name"].as_str().unwrap(),
                b["op"].as_str().unwrap(),
                b["rows"].as_u64().unwrap(),
                b["cols"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("/conv1/Conv", "Conv", 64, 192), ("/conv2/Conv", "Conv", 64, 64), ("/fc/Gemm", "Gemm", 3, 64)]);
    assert_eq!(blocks[0]["bytes"], 4 * 64 * 193);
    assert_eq!(d.listing(), ["out.onnx"], "no temporary file left");
}

#[test]
fn text_report_names_every_block() {
    let d = Dir::new();
    let text = ok(&["lower", &golden("lower/cnn_c.onnx"), "-o", &d.s("c.onnx"), "--keep-input-shape"]);
    for part in ["/conv1/Conv  Conv -> gemm  200 x 100", "/pool/AveragePool", "/fc/Gemm", "wrote"] {
        assert!(text.contains(part), "{part} in: {text}");
    }
}

#[test]
fn bad_input_gets_one_line_and_no_file() {
    let d = Dir::new();
    let out = d.s("out.onnx");
    let a = golden("lower/cnn_a.onnx");
    bad(
        &["lower", &a, "-o", &out, "--max-dense-bytes", "1K"],
        &["/conv1/Conv", "576 x 144 (334080 bytes)", "1024 bytes"],
    );
    bad(&["lower", &a, "-o", &out, "--max-dense-bytes", "lots"], &["--max-dense-bytes", "lots"]);
    bad(&["lower", &a, "-o", &out, "--form", "conv"], &["conv", "gemm, matmul"]);
    bad(&["lower", &a, "-o", &out, "--max-pool", "avg"], &["avg", "keep, relu"]);
    bad(&["lower", &a, "-o", &d.s("")], &["is a directory"]);
    bad(&["lower", &golden("bad/unsupported_op.onnx"), "-o", &out], &["is not supported"]);
    bad(&["lower", &golden("bad/dynamic_shape.onnx"), "-o", &out], &["dynamic shape", "--input-shape"]);
    let cut = d.s("cut.onnx");
    let bytes = std::fs::read(&a).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    bad(&["lower", &cut, "-o", &out], &["cut.onnx", "not a valid ONNX model"]);
    assert_eq!(d.listing(), ["cut.onnx"], "no output, no temporary file");
    // an existing output survives a refused run
    std::fs::write(&out, b"old").unwrap();
    bad(&["lower", &a, "-o", &out, "--max-dense-bytes", "1K"], &["over the limit"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
}

#[test]
fn graphs_lower_with_their_junctions() {
    let d = Dir::new();
    let text = ok(&["lower", &golden("lower/dense_block.onnx"), "-o", &d.s("dense.onnx"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let blocks: Vec<(&str, u64, u64)> = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["rows"].as_u64().unwrap(), b["cols"].as_u64().unwrap()))
        .collect();
    // the second Conv reads the 7 channels the first Concat joined; the pool the 11 of the second
    assert_eq!(
        blocks,
        [("/conv1/Conv", 144, 108), ("/conv2/Conv", 144, 252), ("/pool/AveragePool", 99, 396), ("/fc/Gemm", 3, 99)]
    );
    let text = ok(&["lower", &golden("lower/activations.onnx"), "-o", &d.s("acts.onnx"), "--max-pool", "relu"]);
    for part in ["/pool/MaxPool/max0  MaxPool -> gemm  108 x 72", "/pool/MaxPool/max  MaxPool -> gemm  18 x 54"] {
        assert!(text.contains(part), "{part} in: {text}");
    }
    assert_eq!(d.listing(), ["acts.onnx", "dense.onnx"]);
}

#[test]
fn help_has_examples() {
    assert!(ok(&["lower", "--help"]).contains("Examples:"));
}
