//! `Model::lower` on goldens from `xtask/oracle/lower_golden.py` (torch and onnxruntime): every written
//! Gemm / MatMul weight and bias equals the block's identity-basis Jacobian computed by torch, the lowered
//! network evaluated by hand reproduces onnxruntime's outputs of the original, the graph is written the way
//! the verifiers' readers need it, and bad input leaves no file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use convmat_onnx::proto::{attribute_type, decode_model, DimValue, ModelProto, NodeProto, TensorProto};
use convmat_onnx::{Form, LowerOptions, Model, OnnxError};
use serde_json::Value;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(golden("lower/lower.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["cases"].as_array().unwrap().clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Lowers `model` into a temporary folder and decodes what was written.
fn lower(model: &Path, options: &LowerOptions) -> (ModelProto, convmat_onnx::LowerReport, u64) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let report = Model::load(model).unwrap().lower(options).unwrap().write(&out).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    (decode_model(&bytes).unwrap(), report, bytes.len() as u64)
}

fn init<'a>(m: &'a ModelProto, name: &str) -> &'a TensorProto {
    m.graph.as_ref().unwrap().initializer.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no '{name}'"))
}

fn f32s(t: &TensorProto) -> Vec<f64> {
    assert_eq!(t.data_type, 1, "{}: float", t.name);
    t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()
}

/// The dense `rows x cols` Jacobian of block `k` of a case and its bias, as torch computed them.
fn jacobian(case: &str, k: usize) -> (usize, usize, Vec<f64>, Vec<f64>) {
    let npz = golden("lower/jacobians.npz");
    let get = |key: &str| convmat_io::read_npz(&npz, Some(&format!("{case}.{k}.{key}"))).unwrap().data;
    let shape = get("shape");
    let (rows, cols) = (shape[0] as usize, shape[1] as usize);
    let mut dense = vec![0.0; rows * cols];
    for (i, v) in get("index").iter().zip(get("value")) {
        dense[*i as usize] = v;
    }
    (rows, cols, dense, get("bias"))
}

fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: {g} vs {w}");
    }
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> &'a convmat_onnx::proto::AttributeProto {
    n.attribute.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("{}: no attribute {name}", n.name))
}

/// The lowered graph's affine nodes, in order: (weight, bias, weight transposed).
fn affine_nodes(m: &ModelProto) -> Vec<(String, String, bool)> {
    let g = m.graph.as_ref().unwrap();
    let mut out = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        match n.op_type.as_str() {
            "Gemm" => out.push((n.input[1].clone(), n.input[2].clone(), false)),
            "MatMul" => {
                let add = &g.node[i + 1];
                assert_eq!(add.op_type, "Add", "MatMul followed by its bias Add");
                assert_eq!(add.input[0], n.output[0]);
                out.push((n.input[1].clone(), add.input[1].clone(), true));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn written_weights_are_the_torch_jacobians() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        for form in [Form::Gemm, Form::MatMul] {
            let (m, report, _) = lower(&golden(&format!("lower/{name}.onnx")), &LowerOptions::default().form(form));
            let nodes = affine_nodes(&m);
            assert_eq!(nodes.len(), case["blocks"].as_array().unwrap().len(), "{name}: one node per block");
            for (k, (w, b, transposed)) in nodes.iter().enumerate() {
                let (rows, cols, want, bias) = jacobian(name, k);
                let t = init(&m, w);
                let got = f32s(t);
                let what = format!("{name} {form} block {k}");
                if *transposed {
                    assert_eq!(t.dims, [cols as i64, rows as i64], "{what}: MatMul's B is cols x rows");
                    let back: Vec<f64> = (0..rows * cols).map(|i| got[(i % cols) * rows + i / cols]).collect();
                    close(&what, &back, &want, 1e-6);
                } else {
                    assert_eq!(t.dims, [rows as i64, cols as i64], "{what}: Gemm's B (transB=1) is rows x cols");
                    close(&what, &got, &want, 1e-6);
                }
                close(&format!("{what} bias"), &f32s(init(&m, b)), &bias, 1e-6);
                assert_eq!((report.blocks[k].rows, report.blocks[k].cols), (rows, cols), "{what}: report");
            }
        }
    }
}

/// The lowered chain evaluated by hand (Gemm, MatMul + Add, Relu: the only ops these cases lower to).
fn evaluate(m: &ModelProto, x: &[f64]) -> Vec<f64> {
    let g = m.graph.as_ref().unwrap();
    let mut v = x.to_vec();
    for n in &g.node {
        match n.op_type.as_str() {
            "Gemm" => {
                let (w, b) = (f32s(init(m, &n.input[1])), f32s(init(m, &n.input[2])));
                let cols = v.len();
                v = (0..b.len()).map(|r| (0..cols).map(|c| w[r * cols + c] * v[c]).sum::<f64>() + b[r]).collect();
            }
            "MatMul" => {
                let w = f32s(init(m, &n.input[1]));
                let (k, rows) = (v.len(), w.len() / v.len());
                v = (0..rows).map(|r| (0..k).map(|c| w[c * rows + r] * v[c]).sum::<f64>()).collect();
            }
            "Add" => {
                let b = f32s(init(m, &n.input[1]));
                v = v.iter().zip(&b).map(|(a, b)| a + b).collect();
            }
            "Relu" => v.iter_mut().for_each(|a| *a = a.max(0.0)),
            "Flatten" => {}
            op => panic!("unexpected op {op}"),
        }
    }
    v
}

#[test]
fn the_lowered_network_computes_what_onnxruntime_computes_on_the_original() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        for form in [Form::Gemm, Form::MatMul] {
            for keep in [false, true] {
                let options = LowerOptions::default().form(form).keep_input_shape(keep);
                let (m, _, _) = lower(&golden(&format!("lower/{name}.onnx")), &options);
                for (x, y) in case["inputs"].as_array().unwrap().iter().zip(case["outputs"].as_array().unwrap()) {
                    let got = evaluate(&m, &floats(x));
                    close(&format!("{name} {form} keep={keep}"), &got, &floats(y), 1e-5);
                }
            }
        }
    }
}

fn dims(v: &convmat_onnx::proto::ValueInfoProto) -> Vec<String> {
    let t = v.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
    assert_eq!(t.elem_type, 1, "{}: float", v.name);
    t.shape
        .as_ref()
        .unwrap()
        .dim
        .iter()
        .map(|d| match d.value.as_ref().unwrap() {
            DimValue::DimValue(v) => v.to_string(),
            DimValue::DimParam(p) => p.clone(),
        })
        .collect()
}

#[test]
fn the_graph_is_written_as_the_readers_need_it() {
    let path = golden("lower/cnn_a.onnx");
    for form in [Form::Gemm, Form::MatMul] {
        for keep in [false, true] {
            let (m, report, size) = lower(&path, &LowerOptions::default().form(form).keep_input_shape(keep));
            let what = format!("{form} keep={keep}");
            assert!(m.opset_import.iter().any(|o| o.domain.is_empty() && o.version >= 13), "{what}: opset 13+");
            assert_eq!(report.bytes, size, "{what}: the report's bytes are the file's");
            let g = m.graph.as_ref().unwrap();
            assert_eq!(g.input.len(), 1, "{what}: one graph input");
            assert_eq!(g.input[0].name, "input", "{what}: named as the original's");
            let want: Vec<&str> = if keep { vec!["N", "1", "12", "12"] } else { vec!["N", "144"] };
            assert_eq!(dims(&g.input[0]), want, "{what}: input shape, batch dynamic");
            assert_eq!(g.output.len(), 1);
            assert_eq!(g.output[0].name, "logits", "{what}: output named as the original's");
            assert_eq!(dims(&g.output[0]), ["N", "3"]);
            let names: HashSet<&str> = g.node.iter().map(|n| n.name.as_str()).collect();
            assert_eq!(names.len(), g.node.len(), "{what}: node names unique");
            assert!(!names.contains(""), "{what}: no empty node name");
            let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
            let mut want: Vec<&str> = if keep { vec!["Flatten"] } else { vec![] };
            let affine: &[&str] = if form == Form::Gemm { &["Gemm"] } else { &["MatMul", "Add"] };
            for relu in [true, true, false] {
                want.extend(affine);
                if relu {
                    want.push("Relu");
                }
            }
            assert_eq!(ops, want, "{what}: ops");
            if keep {
                assert_eq!(attr(&g.node[0], "axis").i, 1, "the leading Flatten keeps the batch");
            }
            for n in g.node.iter().filter(|n| n.op_type == "Gemm") {
                for (key, value) in [("alpha", 1.0f32), ("beta", 1.0)] {
                    let a = attr(n, key);
                    assert_eq!((a.r#type, a.f), (attribute_type::FLOAT, value), "{}: {key}", n.name);
                }
                for (key, value) in [("transA", 0), ("transB", 1)] {
                    let a = attr(n, key);
                    assert_eq!((a.r#type, a.i), (attribute_type::INT, value), "{}: {key}", n.name);
                }
            }
        }
    }
}

#[test]
fn max_pool_is_kept_between_a_reshape_and_a_flatten() {
    let (m, report, _) = lower(&golden("torch_cnn.onnx"), &LowerOptions::default());
    let g = m.graph.as_ref().unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    let at = ops.iter().position(|&o| o == "MaxPool").expect("a MaxPool");
    assert_eq!(&ops[at - 1..=at + 1], ["Reshape", "MaxPool", "Flatten"]);
    let shape = init(&m, &g.node[at - 1].input[1]);
    assert_eq!(shape.int64_data, [-1, 4, 12, 12], "reshaped to the pool's input, batch kept");
    assert_eq!(report.blocks.len(), 4);
    assert!(ops.iter().all(|o| ["Gemm", "Relu", "Reshape", "MaxPool", "Flatten"].contains(o)), "{ops:?}");
}

fn refused(model: &Path, options: &LowerOptions, out: &Path) -> String {
    let e = Model::load(model).unwrap().lower(options).and_then(|l| l.write(out));
    let msg = e.expect_err("refused").to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    msg
}

#[test]
fn bad_input_is_refused_in_one_line_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let path = golden("lower/cnn_a.onnx");
    // cnn_a: blocks 576x144, 100x576, 3x100: the largest is the first, 576 * 145 * 4 = 334080 bytes
    let msg = refused(&path, &LowerOptions::default().max_dense_bytes(Some(1000)), &out);
    for part in ["/conv1/Conv", "576 x 144", "334080 bytes", "over the limit of 1000 bytes"] {
        assert!(msg.contains(part), "{part} in: {msg}");
    }
    // an existing file is left as it was
    std::fs::write(&out, b"old").unwrap();
    refused(&path, &LowerOptions::default().max_dense_bytes(Some(1000)), &out);
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    std::fs::remove_file(&out).unwrap();
    let msg = refused(&path, &LowerOptions::default(), dir.path());
    assert!(msg.contains("is a directory"), "{msg}");
    let msg = refused(&golden("bad/unsupported_op.onnx"), &LowerOptions::default(), &out);
    assert!(msg.contains("is not supported"), "{msg}");
    let msg = refused(&golden("bad/residual.onnx"), &LowerOptions::default(), &out);
    assert!(msg.contains("chains of layers only"), "{msg}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file written");
    // a truncated model is refused when read
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(Model::load(&cut), Err(OnnxError::Format { .. })));
}

#[test]
fn forms_parse_by_name() {
    assert_eq!("gemm".parse::<Form>().unwrap(), Form::Gemm);
    assert_eq!("MatMul".parse::<Form>().unwrap(), Form::MatMul);
    let e = "conv".parse::<Form>().unwrap_err().to_string();
    assert!(e.contains("'conv'") && e.contains("gemm, matmul"), "{e}");
    assert_eq!(Form::MatMul.to_string(), "matmul");
}
