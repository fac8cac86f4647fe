//! Replays the committed fuzz corpora (fuzz/seeds/TARGET: hand-made seeds plus the minimized corpus of
//! the libFuzzer runs; fuzz/regressions/TARGET: inputs that once crashed) through the same harness the
//! fuzz targets run (fuzz/harness.rs), so CI checks every one in seconds without libFuzzer.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

/// Runs `f` on every file of the target's corpora; fails naming each input that panics.
fn replay(target: &str, f: fn(&[u8]), at_least: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        inputs.extend(entries.map(|e| e.unwrap().path()));
    }
    inputs.sort();
    assert!(inputs.len() >= at_least, "{target}: only {} corpus files", inputs.len());
    let failed: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let bytes = std::fs::read(path).unwrap();
            std::panic::catch_unwind(|| f(&bytes)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: {} of {} inputs panic: {failed:#?}", failed.len(), inputs.len());
}

#[test]
fn npy_corpus() {
    replay("npy", harness::npy, 10);
}

#[test]
fn npz_corpus() {
    replay("npz", harness::npz, 3);
}

#[test]
fn safetensors_corpus() {
    replay("safetensors", harness::safetensors, 2);
}

#[test]
fn layer_corpus() {
    replay("layer", harness::layer, 40);
}

#[test]
fn qformat_corpus() {
    replay("qformat", harness::qformat, 5);
}

#[test]
fn onnx_corpus() {
    replay("onnx", harness::onnx, 20);
}

#[test]
fn args_corpus() {
    replay("args", harness::args, 20);
}
