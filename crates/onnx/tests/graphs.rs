//! Whole graphs (residual Adds, Concats, Splits, channel shuffles, squeeze-and-excitation, LayerNorm,
//! GELU, pools, heads) run through their exact blocks against onnxruntime: the output and every tensor
//! convmat's trace shares with onnxruntime's, in f32 and f64. Goldens: xtask/oracle/graph_golden.py.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use convmat_net::{Kind, Tensor};
use convmat_onnx::{BlockOptions, Model};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/graphs")
}

fn listing() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("graphs.json")).unwrap()).unwrap()
}

/// `max |got - want| / max |want|`.
fn rel(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    got.iter().zip(want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale
}

/// Every model's output and traced tensors within `tol` of onnxruntime's, computed in `T`.
fn check<T: convmat_matrix::Float>(tol: f64) {
    let listing = listing();
    let models = listing["models"].as_object().unwrap();
    assert!(models.len() >= 12, "{}", models.len());
    for (name, info) in models {
        let npz = dir().join(format!("{name}.npz"));
        let x = convmat_io::read_npz(&npz, Some("x")).unwrap();
        let model = Model::load(dir().join(format!("{name}.onnx"))).unwrap();
        let input = Tensor::new(x.shape.clone(), x.data.iter().map(|&v| T::from_f64(v)).collect());
        let run = model.run(input, &BlockOptions::default(), true).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want: HashMap<&str, &str> = info["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap(), t["key"].as_str().unwrap()))
            .collect();
        let mut compared = 0;
        for t in &run.trace {
            let Some(key) = want.get(t.tensor.as_str()) else { continue };
            let w = convmat_io::read_npz(&npz, Some(key)).unwrap();
            assert_eq!(t.value.shape, w.shape, "{name} {}", t.tensor);
            let got: Vec<f64> = t.value.data.iter().map(|v| v.to_f64()).collect();
            let e = rel(&got, &w.data);
            assert!(e <= tol, "{name}: tensor '{}' of node '{}' ({}) off by {e:.2e} relative", t.tensor, t.node, t.op);
            compared += 1;
        }
        let y = convmat_io::read_npz(&npz, Some(want["y"])).unwrap();
        let got: Vec<f64> = run.outputs[0].data.iter().map(|v| v.to_f64()).collect();
        let e = rel(&got, &y.data);
        assert!(e <= tol, "{name}: output off by {e:.2e} relative");
        // every tensor but those folded away (a BatchNorm's input, a Pad's output) is compared
        assert!(compared * 3 >= want.len() * 2, "{name}: only {compared} of {} tensors compared", want.len());
    }
}

#[test]
fn every_graph_matches_onnxruntime_in_f32() {
    check::<f32>(1e-5);
}

#[test]
fn every_graph_matches_onnxruntime_in_f64() {
    check::<f64>(1e-5);
}

#[test]
fn graphs_have_blocks_junctions_and_nonlinearities() {
    let roles = |file: &str| -> Vec<(String, Kind)> {
        let m = Model::load(dir().join(file)).unwrap();
        let net = m.network(None, &BlockOptions::default()).unwrap();
        net.graph().nodes.iter().map(|n| (n.op.clone(), n.kind())).collect()
    };
    // the residual block: BatchNorms folded into their Convs, the Add a junction
    let r = roles("resnet_basic.onnx");
    assert!(!r.iter().any(|(op, _)| op == "BatchNormalization"), "{r:?}");
    assert!(r.contains(&("Add".into(), Kind::Junction)), "{r:?}");
    // DenseNet's BatchNorm after a Concat stays a block of its own
    let d = roles("densenet_block.onnx");
    assert!(
        d.contains(&("BatchNormalization".into(), Kind::Block)) && d.contains(&("Concat".into(), Kind::Junction)),
        "{d:?}"
    );
    // squeeze-and-excitation: the product of two computed tensors is a nonlinearity
    assert!(roles("silu_se.onnx").contains(&("Mul".into(), Kind::Nonlinearity)));
    // ConvNeXt: Transpose a junction, LayerNormalization and Erf nonlinearities, MatMul a block
    let c = roles("convnext_block.onnx");
    for (op, kind) in [
        ("Transpose", Kind::Junction),
        ("LayerNormalization", Kind::Nonlinearity),
        ("Erf", Kind::Nonlinearity),
        ("MatMul", Kind::Block),
    ] {
        assert!(c.contains(&(op.into(), kind)), "{op}: {c:?}");
    }
    // the mean over the spatial axes is a block
    assert!(roles("head.onnx").contains(&("ReduceMean".into(), Kind::Block)));
}

#[test]
fn a_batch_of_any_size_and_one_sample_agree() {
    let m = Model::load(dir().join("inception.onnx")).unwrap();
    let x = convmat_io::read_npz(&dir().join("inception.npz"), Some("x")).unwrap();
    let both = m.run(Tensor::new(x.shape.clone(), x.data.clone()), &BlockOptions::default(), false).unwrap();
    let n = x.data.len() / 2;
    let one = m.run(Tensor::new(x.shape[1..].to_vec(), x.data[n..].to_vec()), &BlockOptions::default(), false).unwrap();
    let half = both.outputs[0].data.len() / 2;
    assert_eq!(one.outputs[0].shape[0], 1);
    assert_eq!(&both.outputs[0].data[half..], &one.outputs[0].data[..]);
}

#[test]
fn a_wrong_input_shape_is_one_clear_error() {
    let m = Model::load(dir().join("resnet_basic.onnx")).unwrap();
    let e = m
        .run(Tensor::new(vec![1, 3, 6, 6], vec![0.0f32; 108]), &BlockOptions::default(), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[3, 6, 6]") && e.contains("'x'"), "{e}");
}

/// Mutated graph models (bytes flipped in their structure) read, run and export with an error or a
/// result, never a panic.
#[test]
fn mutated_graphs_never_panic() {
    let mut rng = convmat_numeric::Xorshift64::new(0x2424_5151_7f4a_7c15);
    let mut next = move || rng.next_u64();
    let (mut ok, mut err) = (0, 0);
    let out = tempfile::tempdir().unwrap();
    for (k, name) in ["shufflenet_unit", "convnext_block", "densenet_block", "silu_se"].iter().enumerate() {
        let original = std::fs::read(dir().join(format!("{name}.onnx"))).unwrap();
        let x = convmat_io::read_npz(&dir().join(format!("{name}.npz")), Some("x")).unwrap();
        for round in 0..150 {
            let mut bytes = original.clone();
            let span = bytes.len().min(4000);
            for _ in 0..1 + next() % 3 {
                let i = (next() as usize) % span;
                bytes[i] = match next() % 3 {
                    0 => bytes[i] ^ (1 << (next() % 8)),
                    1 => bytes[i].wrapping_add(1),
                    _ => next() as u8,
                };
            }
            let r = Model::from_bytes(&bytes, Path::new("mutated.onnx"), None).and_then(|m| {
                let input = Tensor::new(x.shape.clone(), x.data.iter().map(|&v| v as f32).collect());
                m.run(input, &BlockOptions::default(), true)?;
                m.export(&out.path().join(format!("{k}_{round}")), Some(&x.shape[1..]), &BlockOptions::default())
            });
            match r {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    err += 1;
                }
            }
        }
    }
    assert!(ok > 0 && err > 0, "both outcomes occur: {ok} ok, {err} errors");
}
