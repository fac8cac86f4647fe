//! `convmat svd` as a long run meets a user: Ctrl-C stops it cleanly (exit 130, one line, no file).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Dir;

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_long_svd_with_130_and_writes_nothing() {
    let d = Dir::new();
    // 64 -> 64 3x3 on 56x56: the top 300 at a residual of 1e-14 takes minutes
    let n = 64 * 64 * 9;
    let w: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5).collect();
    let w = d.npy("w.npy", &[64, 64, 3, 3], &w);
    let out = d.s("S.npy");
    let args = ["svd", "--weight", &w, "--input-shape", "64,56,56", "--padding", "1", "--top", "300", "--tol", "1e-14"];
    let child = Command::new(env!("CARGO_BIN_EXE_convmat"))
        .args(args)
        .args(["-o", &out])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // let it read the weight and start iterating, then press Ctrl-C
    std::thread::sleep(Duration::from_secs(3));
    let sent = Instant::now();
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let result = child.wait_with_output().unwrap();
    let waited = sent.elapsed();
    let err = String::from_utf8(result.stderr).unwrap();
    assert_eq!(result.status.code(), Some(130), "stderr: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
    assert!(result.stdout.is_empty());
    assert_eq!(d.listing(), vec!["w.npy"], "no output file, no temporary left");
    // stopped between steps: a step of this layer takes well under a second, even unoptimised
    assert!(waited < Duration::from_secs(20), "took {waited:?} to stop");
}

fn golden(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/onnx/tests/golden").join(name).display().to_string()
}

/// The whole-network view on the exported torch models: each layer's interval holds the norm of the
/// block's matrix as onnxruntime computes it (xtask/oracle/network_norms.py, float32, so 1e-6 relative),
/// and the product of the upper bounds is reported.
#[test]
fn network_view_brackets_every_layer_of_the_onnx_goldens() {
    let oracle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden("network_norms.json")).unwrap()).unwrap();
    for model in ["torch_cnn", "torch_transpose", "torch_wide"] {
        let out = common::ok(&["svd", "--weights", &golden(&format!("{model}.onnx")), "--json", "--tol", "1e-6"]);
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        let layers = r["layers"].as_array().unwrap();
        let expect = oracle[model]["blocks"].as_array().unwrap();
        assert_eq!(layers.len(), expect.len(), "{model}: layers");
        let mut product = 1.0;
        for (got, want) in layers.iter().zip(expect) {
            let name = want["name"].as_str().unwrap();
            assert_eq!(got["name"], want["name"], "{model}");
            assert_eq!((&got["rows"], &got["cols"]), (&want["rows"], &want["cols"]), "{model} {name}");
            let s = want["sigma1"].as_f64().unwrap();
            let (lo, up) = (got["lower"].as_f64().unwrap(), got["upper"].as_f64().unwrap());
            assert!(lo <= s * (1.0 + 1e-6) && s * (1.0 - 1e-6) <= up, "{model} {name}: {s} not in [{lo}, {up}]");
            assert!(lo <= up, "{model} {name}");
            product *= up;
        }
        let p = r["product_upper"].as_f64().unwrap();
        assert!((p - product).abs() <= 1e-12 * product, "{model}: product {p} vs {product}");
        // each factor is bracketed, so is the product of the true norms
        let want = oracle[model]["product"].as_f64().unwrap();
        let low = r["product_lower"].as_f64().unwrap();
        assert!(low <= want * (1.0 + 1e-5) && want * (1.0 - 1e-5) <= p, "{model}: {want} not in [{low}, {p}]");
        assert_eq!(r["not_one_lipschitz"], serde_json::json!([]), "{model}: ReLU, 2x2 MaxPool, Tanh are 1-Lipschitz");
        if model == "torch_wide" {
            // above the dense limit: the certified matrix-free norm, BatchNorm folded into the weights
            let certs: Vec<&str> = layers.iter().map(|l| l["certificate"].as_str().unwrap()).collect();
            assert!(certs[..2].iter().all(|c| ["kato-temple", "interlacing"].contains(c)), "{certs:?}");
            assert_eq!(layers[0]["nodes"], serde_json::json!(["/conv1/Conv", "/bn1/BatchNormalization"]));
        }
    }
    let human = common::ok(&["svd", "--weights", &golden("torch_cnn.onnx")]);
    for text in ["/conv1/Conv", "/fc2/Gemm", "product of the upper bounds", "NOT a lower bound", "largest layer norm"] {
        assert!(human.contains(text), "{text}: {human}");
    }
}

#[test]
fn network_view_refuses_what_it_does_not_compute() {
    let model = golden("torch_cnn.onnx");
    for extra in
        [&["--top", "3"][..], &["--all"], &["--bounds"], &["-o", "S.npy"], &["--method", "fft"], &["--padding", "1"]]
    {
        let mut args = vec!["svd", "--weights", &model];
        args.extend_from_slice(extra);
        common::bad(&args, &[]);
    }
}

fn sequential_golden(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sequential").join(name).display().to_string()
}

/// The network view of a PyTorch chain, `--layer "Sequential(...)" --weights STATE_DICT`, against dense SVDs
/// of the layers' matrices as torch builds them (xtask/oracle/sequential_norms.py): each interval holds its
/// layer's norm, from the safetensors and the npz state_dict alike, with the ONNX view's JSON keys; the
/// GELU is listed as not 1-Lipschitz, ReLU and the non-overlapping MaxPool are not.
#[test]
fn sequential_network_view_brackets_every_layer() {
    let oracle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sequential_golden("norms.json")).unwrap()).unwrap();
    let chain = oracle["sequential"].as_str().unwrap();
    for file in ["weights.safetensors", "weights.npz"] {
        let weights = sequential_golden(file);
        let args = ["svd", "--layer", chain, "--weights", &weights, "--input-shape", "3,24,24", "--tol", "1e-6"];
        let r: serde_json::Value = serde_json::from_str(&common::ok(&[&args[..], &["--json"]].concat())).unwrap();
        let (layers, expect) = (r["layers"].as_array().unwrap(), oracle["layers"].as_array().unwrap());
        assert_eq!(layers.len(), expect.len(), "{file}");
        for (got, want) in layers.iter().zip(expect) {
            for key in ["name", "op", "rows", "cols"] {
                assert_eq!(got[key], want[key], "{file} {key}");
            }
            let s = want["sigma1"].as_f64().unwrap();
            let (lo, up) = (got["lower"].as_f64().unwrap(), got["upper"].as_f64().unwrap());
            assert!(
                lo <= s * (1.0 + 1e-9) && s <= up * (1.0 + 1e-9),
                "{file} {}: {s} not in [{lo}, {up}]",
                want["name"]
            );
        }
        let product: f64 = layers.iter().map(|l| l["upper"].as_f64().unwrap()).product();
        assert!((r["product_upper"].as_f64().unwrap() - product).abs() <= 1e-12 * product);
        assert_eq!(r["not_one_lipschitz"], serde_json::json!(["3 (GELU)"]));
        assert_eq!(layers[2]["activations"], serde_json::json!(["ReLU", "MaxPool2d"]));
        assert_eq!(layers[0]["certificate"], "interlacing"); // above the dense limit: matrix-free
        assert_eq!(layers[3]["certificate"], "exact");
        let human = common::ok(&args);
        for text in ["Conv2d", "Linear", "product of the upper bounds", "3 (GELU)", "largest layer norm"] {
            assert!(human.contains(text), "{text}: {human}");
        }
    }
}

#[test]
fn sequential_network_view_refuses_bad_input_in_one_line() {
    let chain = "Sequential(Conv2d(3, 8, 3, padding=1), ReLU(), Conv2d(8, 8, 3, padding=1, padding_mode='reflect'))";
    let st = sequential_golden("weights.safetensors");
    let base = ["svd", "--layer", chain, "--input-shape", "3,24,24"];
    common::bad(&base, &["needs --weights STATE_DICT.safetensors"]);
    common::bad(&[&base[..], &["--weights", &st, "--top", "3"]].concat(), &["network view", "drop --all, --top"]);
    common::bad(&[&base[..], &["--weights", &st, "--stride", "2"]].concat(), &["drop", "--stride"]);
    // layers counted from 1 as `convmat shape` counts them; the tensor by its state_dict name
    let run = |chain: &str, fragments: &[&str]| {
        common::bad(&["svd", "--layer", chain, "--weights", &st, "--input-shape", "3,24,24"], fragments)
    };
    run("Sequential(Conv2d(3, 8, 3, padding=1), ReLU(), Linear(8, 8))", &["layer 3 (Linear(8, 8))", "24 features"]);
    run(
        "Sequential(Conv2d(3, 8, 3, padding=1), ReLU(), ReLU(), Conv2d(8, 8, 3))",
        &["layer 4", "'3.weight'", "0.weight"],
    );
    run("Sequential(Conv2d(3, 8, 3, padding=1), BatchNorm2d(8))", &["layer 2", "BatchNorm", "fold"]);
    run("Sequential(Conv2d(3, 8, 5))", &["layer 1", "weight"]);
    common::bad(&["svd", "--layer", chain, "--weights", &st, "--input-shape", "4,24,24"], &["layer 1"]);
}
