//! `convmat onnx` and `convmat export` as a user runs them: the built binary on the committed ONNX goldens
//! (crates/onnx/tests/golden, made by xtask/oracle/onnx_golden.py), its exit code, output and files.

use std::path::{Path, PathBuf};

use convmat::io::read_npz;

mod common;
use common::{bad, ok};

fn golden(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/onnx/tests/golden").join(name).display().to_string()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(r) => r.map(|e| e.unwrap().file_name().to_string_lossy().into()).collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

#[test]
fn json_listing_has_the_contract_keys() {
    let out = ok(&["onnx", &golden("torch_cnn.onnx"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["inputs", "nodes"]);
    let nodes = v["nodes"].as_array().unwrap();
    for n in nodes {
        let mut keys: Vec<&String> = n.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["affine", "input_shape", "name", "op", "output_shape", "params"]);
    }
    let conv = nodes.iter().find(|n| n["op"] == "Conv").unwrap();
    assert_eq!(conv["input_shape"], serde_json::json!([1, 12, 12]));
    assert_eq!(conv["output_shape"], serde_json::json!([4, 12, 12]));
    assert_eq!(conv["affine"], true);
    assert_eq!(conv["params"]["expression"], "Conv2d(1, 4, 3, padding=(1, 1))");
    let relu = nodes.iter().find(|n| n["op"] == "Relu").unwrap();
    assert_eq!((relu["affine"].clone(), relu["params"]["role"].clone()), (false.into(), "nonlinearity".into()));
}

#[test]
fn table_listing_names_each_node() {
    let out = ok(&["onnx", &golden("torch_transpose.onnx")]);
    assert!(out.contains("input x [batch, 2, 7, 7] -> 2x7x7"), "{out}");
    for op in ["Conv", "Tanh", "ConvTranspose", "BatchNormalization", "AveragePool"] {
        assert!(out.contains(op), "{op} missing: {out}");
    }
    assert!(out.contains("padding_mode='replicate'"), "the edge Pad is folded into the Conv: {out}");
    // torch's circular padding (Slice + Concat per axis) is folded into the Conv too
    let out = ok(&["onnx", &golden("torch_circular2d.onnx")]);
    assert!(out.contains("Conv2d(2, 3, 3, padding=(1, 2), padding_mode='circular')"), "{out}");
    assert!(out.contains("pad_folded=/Concat_1") && !out.contains("UNSUPPORTED"), "{out}");
}

#[test]
fn export_writes_blocks_that_scipy_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir: PathBuf = dir.path().join("blocks");
    let out = ok(&["export", &golden("torch_cnn.onnx"), "-o", &out_dir.display().to_string()]);
    assert!(out.contains("wrote 4 blocks"), "{out}");
    let names = files(&out_dir);
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(names[4], "manifest.json");
    assert!(names[0].starts_with("000_") && names[0].ends_with(".npz"), "{names:?}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap()).unwrap();
    let first = &manifest["blocks"][0];
    for key in ["file", "nodes", "op", "input_shape", "output_shape", "nonlinearity"] {
        assert!(first.get(key).is_some(), "manifest lacks {key}: {first}");
    }
    let shape = read_npz(&out_dir.join(&names[0]), Some("shape")).unwrap().data;
    assert_eq!(shape, vec![4.0 * 144.0, 144.0]);
    // --no-fold keeps BatchNorm1d (torch fuses the BatchNorm2d into its Conv) as a block of its own
    let out =
        ok(&["export", &golden("torch_cnn.onnx"), "-o", &dir.path().join("nofold").display().to_string(), "--no-fold"]);
    assert!(out.contains("wrote 5 blocks"), "{out}");
}

#[test]
fn bad_models_exit_2_with_one_line_and_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let trunc = dir.path().join("t.onnx");
    let bytes = std::fs::read(golden("torch_cnn.onnx")).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() / 3]).unwrap();
    bad(&["onnx", &trunc.display().to_string()], &["not a valid ONNX model"]);
    bad(&["onnx", &golden("bad/missing_initializer.onnx")], &["'W'", "no initializer"]);
    // the library says what is missing; the CLI adds its flag
    bad(
        &["onnx", &golden("bad/dynamic_shape.onnx")],
        &["dynamic shape [N, 1, H, W]", "input shape (C, H, W)", "--input-shape C,H,W", "--input-shape 1,32,32"],
    );
    ok(&["onnx", &golden("bad/dynamic_shape.onnx"), "--input-shape", "1,6,6"]);
    bad(&["onnx", &golden("bad/external_dotdot.onnx")], &["external data", "'..'"]);
    bad(&["onnx", &golden("bad/external_absolute.onnx")], &["absolute"]);
    bad(&["onnx", &dir.path().join("nope.onnx").display().to_string()], &["nope.onnx"]);
    let out = dir.path().join("out");
    let o = out.display().to_string();
    bad(&["export", &golden("bad/unsupported_op.onnx"), "-o", &o], &["'the_hardmax' (Hardmax) is not supported"]);
    assert!(files(&out).is_empty(), "no partial export: {:?}", files(&out));
    // a residual Add: listed with both operands; export writes the graph (issue 24), the Add a junction
    let listing = ok(&["onnx", &golden("bad/residual.onnx")]);
    assert!(listing.contains("junction") && listing.contains("'/conv2/Conv'") && listing.contains("'x'"), "{listing}");
    ok(&["export", &golden("bad/residual.onnx"), "-o", &o]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let add = manifest["graph"].as_array().unwrap().iter().find(|n| n["op"] == "Add").unwrap();
    assert_eq!((add["kind"].as_str(), add["inputs"].as_array().unwrap().len()), (Some("junction"), 2));
}
