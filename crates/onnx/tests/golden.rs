//! Goldens from `xtask/oracle/onnx_golden.py` (onnxruntime, cross-checked by torch and onnx.reference):
//! every block built from a model, composed with the nonlinearities between them, reproduces the model's
//! outputs; each convolution-like node alone reproduces its single-node model; bad models give one error.

use std::path::{Path, PathBuf};

use convmat_onnx::{Activation, BlockOptions, Model, NodeKind, OnnxError};
use serde_json::Value;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(golden("cases.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn ints(v: &Value) -> Vec<usize> {
    v.as_array().map(|a| a.iter().map(|x| x.as_u64().unwrap() as usize).collect()).unwrap_or_default()
}

fn matvec(m: &convmat_onnx::Csr, x: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(m.cols(), x.len(), "matrix columns vs input length");
    let (indptr, idx, data) = (m.indptr().raw_storage().to_vec(), m.indices(), m.data());
    (0..m.rows())
        .map(|r| (indptr[r]..indptr[r + 1]).map(|k| data[k] * x[idx[k] as usize]).sum::<f64>() + b[r])
        .collect()
}

/// A nonlinearity, by the test's own hand (Relu, Tanh, 2-d MaxPool).
fn activate(act: &Activation, x: Vec<f64>) -> Vec<f64> {
    match act.op.as_str() {
        "Relu" => x.into_iter().map(|v| v.max(0.0)).collect(),
        "Tanh" => x.into_iter().map(f64::tanh).collect(),
        "MaxPool" => {
            let (s, o) = (&act.input_shape, &act.output_shape);
            assert_eq!(s.len(), 3, "2-d max pool");
            let k = ints(&act.params["kernel_shape"]);
            let st = act.params.get("strides").map(ints).unwrap_or_else(|| k.clone());
            let pads = act.params.get("pads").map(ints).unwrap_or(vec![0; 4]);
            let mut y = vec![f64::NEG_INFINITY; o.iter().product()];
            for c in 0..o[0] {
                for i in 0..o[1] {
                    for j in 0..o[2] {
                        let out = &mut y[(c * o[1] + i) * o[2] + j];
                        for a in 0..k[0] {
                            for b in 0..k[1] {
                                let (r, q) = (
                                    (i * st[0] + a) as isize - pads[0] as isize,
                                    (j * st[1] + b) as isize - pads[1] as isize,
                                );
                                if r >= 0 && q >= 0 && (r as usize) < s[1] && (q as usize) < s[2] {
                                    *out = out.max(x[(c * s[1] + r as usize) * s[2] + q as usize]);
                                }
                            }
                        }
                    }
                }
            }
            y
        }
        other => panic!("the test has no {other}"),
    }
}

fn close(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: lengths");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 2e-5 * scale, "{name}[{i}]: convmat {g}, oracle {w}");
    }
}

#[test]
fn blocks_composed_reproduce_every_model() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let model = Model::load(golden(case["file"].as_str().unwrap())).unwrap();
        let layers: Vec<_> = model
            .affine_layers(None, &BlockOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!layers.is_empty(), "{name}: no block");
        assert_eq!(layers[0].input_shape, ints(&case["input_shape"]), "{name}: input shape");
        for (x, y) in case["inputs"].as_array().unwrap().iter().zip(case["outputs"].as_array().unwrap()) {
            let mut v = floats(x);
            for l in &layers {
                assert_eq!(l.matrix.cols(), l.input_shape.iter().product::<usize>(), "{name}/{}", l.name);
                v = matvec(&l.matrix, &v, &l.bias);
                for a in &l.activations {
                    v = activate(a, v);
                }
            }
            close(name, &v, &floats(y));
        }
    }
}

#[test]
fn batchnorm_unfolded_gives_the_same_outputs_with_more_blocks() {
    for name in ["torch_cnn", "gemm_batchnorm"] {
        let model = Model::load(golden(&format!("{name}.onnx"))).unwrap();
        let folded = model.affine_layers(None, &BlockOptions::default()).unwrap().len();
        let layers: Vec<_> = model
            .affine_layers(None, &BlockOptions::default().fold_batchnorm(false))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(layers.len() > folded, "{name}: --no-fold keeps BatchNorm blocks");
        let case = cases().into_iter().find(|c| c["name"] == name).unwrap();
        let mut v = floats(&case["inputs"][0]);
        for l in &layers {
            v = matvec(&l.matrix, &v, &l.bias);
            for a in &l.activations {
                v = activate(a, v);
            }
        }
        close(name, &v, &floats(&case["outputs"][0]));
    }
}

#[test]
fn each_conv_node_alone_is_its_model() {
    for case in cases() {
        let Some(node) = case["node"].as_str() else { continue };
        let name = case["name"].as_str().unwrap();
        let model = Model::load(golden(case["file"].as_str().unwrap())).unwrap();
        let layer = match model.conv_layer(node, None) {
            Ok(c) => c,
            Err(OnnxError::Unsupported { what, .. }) if name == "avgpool_exclude_pad_ceil" => {
                assert!(what.contains("divide"), "{what}");
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let conv = layer.conv::<f64>().unwrap();
        let a = conv.csr().unwrap();
        let bias = conv.expanded_bias().unwrap_or_else(|| vec![0.0; a.rows()]);
        // the typed case folds a Mul and an Add after the Conv: compare the conv alone to the Conv's math
        if name == "typed_initializers" {
            assert_eq!((a.rows(), a.cols()), (3 * 5 * 3, 2 * 4 * 4), "{name}");
            continue;
        }
        let (indptr, idx, data) = (a.indptr().raw_storage().to_vec(), a.indices(), a.data());
        for (x, y) in case["inputs"].as_array().unwrap().iter().zip(case["outputs"].as_array().unwrap()) {
            let x = floats(x);
            let v: Vec<f64> = (0..a.rows())
                .map(|r| {
                    (indptr[r] as usize..indptr[r + 1] as usize).map(|k| data[k] * x[idx[k] as usize]).sum::<f64>()
                        + bias[r]
                })
                .collect();
            close(name, &v, &floats(y));
        }
        assert_eq!(conv.geometry().output_shape(), ints(&case["output_shape"]), "{name}: output shape");
    }
}

#[test]
fn torch_cnn_listing_names_roles_and_folds() {
    let model = Model::load(golden("torch_cnn.onnx")).unwrap();
    let s = model.summary(None).unwrap();
    assert_eq!(s.inputs[0].shape, vec![1, 12, 12]);
    assert_eq!(s.inputs[0].declared, vec!["batch", "1", "12", "12"]);
    let kinds: Vec<(&str, &NodeKind)> = s.nodes.iter().map(|n| (n.op.as_str(), &n.kind)).collect();
    assert!(kinds.contains(&("Relu", &NodeKind::Nonlinearity)));
    assert!(kinds.contains(&("MaxPool", &NodeKind::Nonlinearity)));
    assert!(kinds.contains(&("Gemm", &NodeKind::Affine)));
    assert!(kinds.contains(&("Pad", &NodeKind::Affine)), "reflect padding arrives as a Pad");
    let pad = s.nodes.iter().find(|n| n.op == "Pad").unwrap();
    assert_eq!(pad.params["mode"], "reflect");
    assert!(pad.params["folded_into"].as_str().unwrap().contains("conv2"));
    let gemm = s.nodes.iter().find(|n| n.op == "Gemm" && n.name.contains("fc1")).unwrap();
    assert_eq!((gemm.input_shape.clone().unwrap(), gemm.output_shape.clone().unwrap()), (vec![54], vec![16]));
    // blocks: conv1(+bn1), conv2(+pad, bn2), fc1(+bn3), fc2
    let layers: Vec<_> =
        model.affine_layers(None, &BlockOptions::default()).unwrap().collect::<Result<_, _>>().unwrap();
    let ops: Vec<&str> = layers.iter().map(|l| l.op.as_str()).collect();
    assert_eq!(ops, ["Conv", "Conv", "Gemm", "Gemm"]);
    assert_eq!(layers[0].activations.iter().map(|a| a.op.as_str()).collect::<Vec<_>>(), ["Relu", "MaxPool"]);
    assert!(layers[1].nodes.iter().any(|n| n.contains("Pad")), "{:?}", layers[1].nodes);
    assert!(layers[2].nodes.iter().any(|n| n.contains("bn3")), "{:?}", layers[2].nodes);
    assert!(layers[3].activations.is_empty());
    // the conv2 node alone: the reflect Pad before it folded into its padding mode
    let conv2 = s.nodes.iter().find(|n| n.op == "Conv" && n.name.contains("conv2")).unwrap();
    let layer = model.conv_layer(&conv2.name, None).unwrap();
    assert_eq!(layer.geometry().input_shape(), vec![4, 6, 6]);
    assert_eq!(layer.description(), "Conv2d(4, 6, 3, stride=2, padding=(1, 1), padding_mode='reflect')");
}

fn err_text(r: Result<impl std::fmt::Debug, OnnxError>) -> String {
    r.expect_err("an error").to_string()
}

#[test]
fn bad_models_give_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(golden("torch_cnn.onnx")).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = err_text(Model::load(&truncated));
    assert!(e.contains("not a valid ONNX model") && e.contains("truncated"), "{e}");
    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"\xff\xff\xff\xff not protobuf").unwrap();
    assert!(err_text(Model::load(&corrupt)).contains("not a valid ONNX model"));
    let text = dir.path().join("text.onnx");
    std::fs::write(&text, b"").unwrap();
    assert!(err_text(Model::load(&text)).contains("no graph"));

    let m = Model::load(golden("bad/missing_initializer.onnx")).unwrap();
    let e = err_text(m.summary(None));
    assert!(e.contains("'W'") && e.contains("no initializer"), "{e}");

    let m = Model::load(golden("conv2d_group.onnx")).unwrap();
    let e = err_text(m.conv_layer("cnv", None));
    assert!(e.contains("no node named 'cnv'") && e.contains("conv"), "{e}");

    let m = Model::load(golden("bad/dynamic_shape.onnx")).unwrap();
    let e = m.summary(None).expect_err("dynamic");
    assert!(e.to_string().contains("[N, 1, H, W]: give the input shape (C, H, W)"), "{e}");
    assert!(!e.to_string().contains("--input-shape"), "no front end's spelling in the library: {e}");
    match e {
        OnnxError::DynamicShape { dims, example, .. } => {
            assert_eq!((dims, example), (vec!["C".into(), "H".into(), "W".into()], vec![1, 32, 32]))
        }
        other => panic!("{other}"),
    }
    let s = m.summary(Some(&[1, 6, 5])).unwrap();
    assert_eq!(s.nodes[0].output_shape, Some(vec![2, 4, 3]));
    let e = err_text(m.summary(Some(&[2, 6, 5])));
    assert!(e.contains("static dimension is 1"), "{e}");

    let m = Model::load(golden("bad/unsupported_op.onnx")).unwrap();
    let s = m.summary(None).unwrap();
    assert!(matches!(s.nodes[1].kind, NodeKind::Unsupported(_)));
    let e = err_text(m.affine_layers(None, &BlockOptions::default()).map(|_| ()));
    assert!(e.contains("'the_hardmax' (Hardmax) is not supported"), "{e}");
    let out = dir.path().join("out");
    assert!(m.export(&out, None, &BlockOptions::default()).is_err());
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(), "no partial export");

    for (file, what) in [("bad/external_dotdot.onnx", "'..'"), ("bad/external_absolute.onnx", "absolute")] {
        let e = err_text(Model::load(golden(file)));
        assert!(e.contains("external data") && e.contains(what), "{file}: {e}");
    }
}

#[test]
fn export_writes_blocks_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cnn");
    let m = Model::load(golden("torch_cnn.onnx")).unwrap();
    let blocks = m.export(&out, None, &BlockOptions::default()).unwrap();
    assert_eq!(blocks.len(), 4);
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest["blocks"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["nonlinearity"], "Relu");
    assert_eq!(entries[3]["nonlinearity"], Value::Null);
    for e in entries {
        let file = out.join(e["file"].as_str().unwrap());
        let keys = convmat_io::npz_keys(&file).unwrap();
        for k in ["data", "indices", "indptr", "format", "shape", "bias"] {
            assert!(keys.iter().any(|x| x == k), "{file:?} lacks {k}");
        }
        let bias = convmat_io::read_npz(&file, Some("bias")).unwrap();
        assert_eq!(bias.data.len(), e["rows"].as_u64().unwrap() as usize);
    }
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names.iter().all(|n| !n.starts_with('.')), "no temporary files left: {names:?}");
}

/// Corrupted models (bytes flipped, truncated, varints bumped): an error or a listing, never a panic.
#[test]
fn mutated_models_never_panic() {
    let original = std::fs::read(golden("torch_cnn.onnx")).unwrap();
    let mut rng = convmat_numeric::Xorshift64::new(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next_u64();
    let (mut ok, mut err) = (0, 0);
    for round in 0..1500 {
        let mut bytes = original.clone();
        // the graph structure lives outside the big weight blobs: aim at the first 6 KB most of the time
        let span = if round % 4 == 0 { bytes.len() } else { bytes.len().min(6000) };
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % span;
            bytes[i] = match next() % 3 {
                0 => bytes[i] ^ (1 << (next() % 8)),
                1 => bytes[i].wrapping_add(1),
                _ => next() as u8,
            };
        }
        if round % 10 == 0 {
            bytes.truncate((next() as usize) % bytes.len());
        }
        let r = Model::from_bytes(&bytes, Path::new("mutated.onnx"), None).and_then(|m| {
            m.summary(None)?;
            m.affine_layers(None, &BlockOptions::default()).map(|l| l.len())
        });
        match r {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    assert!(ok > 0 && err > 0, "both outcomes occur: {ok} ok, {err} errors");
}

#[test]
fn torch_circular_padding_folds_into_the_conv() {
    // torch writes padding_mode='circular' as Slice + Concat per spatial axis: one wrap padding of the Conv
    for (file, description) in [
        ("torch_circular1d.onnx", "Conv1d(2, 3, 3, padding=1, padding_mode='circular')"),
        ("torch_circular2d.onnx", "Conv2d(2, 3, 3, padding=(1, 2), padding_mode='circular')"),
        (
            "torch_circular2d_opset9.onnx",
            "Conv2d(2, 3, (3, 2), stride=(1, 2), padding=(2, 1), padding_mode='circular')",
        ),
        ("torch_circular3d.onnx", "Conv3d(1, 2, 3, padding=(1, 1, 1), padding_mode='circular')"),
    ] {
        let model = Model::load(golden(file)).unwrap();
        let s = model.summary(None).unwrap();
        for n in s.nodes.iter().filter(|n| n.op == "Slice" || n.op == "Concat") {
            assert_eq!(n.kind, NodeKind::Affine, "{file}: {}", n.name);
            assert_eq!(n.params["folded_into"], "/Conv", "{file}: {}", n.name);
        }
        let layer = model.conv_layer("/Conv", None).unwrap();
        assert_eq!(layer.description(), description, "{file}");
        let layers: Vec<_> =
            model.affine_layers(None, &BlockOptions::default()).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(layers.len(), 1, "{file}");
        assert_eq!(layers[0].nodes.len(), s.nodes.iter().filter(|n| n.op != "Constant").count(), "{file}");
    }
    // asymmetric F.pad (2-input Concats) folded into a Conv; one that a Tanh separates stays a block
    let model = Model::load(golden("torch_circular_pads.onnx")).unwrap();
    let layers: Vec<_> =
        model.affine_layers(None, &BlockOptions::default()).unwrap().collect::<Result<_, _>>().unwrap();
    let ops: Vec<&str> = layers.iter().map(|l| l.op.as_str()).collect();
    assert_eq!(ops, ["Conv", "Concat", "Conv", "Conv"]);
    let s = model.summary(None).unwrap();
    let pad = s.nodes.iter().find(|n| n.name == layers[1].name).unwrap();
    assert_eq!((pad.params["mode"].as_str(), ints(&pad.params["pads"])), (Some("circular"), vec![2, 1, 0, 1]));
    let conv1 = s.nodes.iter().find(|n| n.op == "Conv").unwrap();
    let layer = model.conv_layer(&conv1.name, None).unwrap();
    assert_eq!(layer.geometry().input_shape(), vec![2, 7, 8]);
    assert!(
        layer.description().contains("stride=2, padding=(1, 0, 0, 2), padding_mode='circular'"),
        "{}",
        layer.description()
    );
}

#[test]
fn a_slice_concat_that_is_not_circular_padding_is_refused_by_name() {
    // head and tail swapped, a tail short of the end, a step of 2, a Concat on another axis than the Slices'
    for file in ["concat_not_circular", "concat_short_tail", "concat_step2", "concat_other_axis"] {
        let m = Model::load(golden(&format!("bad/{file}.onnx"))).unwrap();
        let s = m.summary(None).unwrap();
        assert!(s.nodes.iter().filter(|n| n.op == "Slice" || n.op == "Concat").all(|n| !n.affine), "{file}");
        let e = err_text(m.affine_layers(None, &BlockOptions::default()).map(|_| ()));
        assert!(e.contains("'head' (Slice) is not supported") && e.contains("circular"), "{file}: {e}");
    }
}

#[test]
fn a_residual_add_is_listed_as_a_junction_naming_both_operands() {
    let m = Model::load(golden("bad/residual.onnx")).unwrap();
    let s = m.summary(None).unwrap();
    let add = s.nodes.iter().find(|n| n.op == "Add").unwrap();
    let NodeKind::Unsupported(why) = &add.kind else { panic!("{:?}", add.kind) };
    assert!(
        why.contains("junction") && why.contains("'/conv2/Conv'") && why.contains("'x' (the graph input)"),
        "{why}"
    );
    assert_eq!(add.params["joins"], serde_json::json!(["/conv2/Conv", "x"]));
    assert_eq!(add.params["inputs"].as_array().unwrap().len(), 2);
    assert_eq!(add.output_shape, Some(vec![2, 5, 5]));
    let e = err_text(m.affine_layers(None, &BlockOptions::default()).map(|_| ()));
    assert!(e.contains("'/Add' (Add)") && e.contains("chains of layers only"), "{e}");
}
