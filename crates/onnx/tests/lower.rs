//! `Model::lower` on goldens from `xtask/oracle/lower_golden.py` (torch and onnxruntime): every written
//! Gemm / MatMul weight and bias equals the block's identity-basis Jacobian computed by torch, the lowered
//! network evaluated by hand reproduces onnxruntime's outputs of the original, the graph is written the way
//! the verifiers' readers need it, and bad input leaves no file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use convmat_onnx::proto::{attribute_type, decode_model, DimValue, ModelProto, NodeProto, TensorProto};
use convmat_onnx::{BlockOptions, Form, LowerOptions, MaxPoolForm, Model, OnnxError};
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
    // the unsupported node is named
    assert!(msg.starts_with("node '"), "{msg}");
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

fn graph_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(golden("lower/graphs.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["cases"].as_array().unwrap().clone()
}

/// The dense `rows x cols` Jacobian of block `k` of a graph case and its bias, as torch computed them.
fn graph_jacobian(case: &str, k: usize) -> (usize, usize, Vec<f64>, Vec<f64>) {
    let npz = golden("lower/graph_jacobians.npz");
    let get = |key: &str| convmat_io::read_npz(&npz, Some(&format!("{case}.{k}.{key}"))).unwrap().data;
    let shape = get("shape");
    let (rows, cols) = (shape[0] as usize, shape[1] as usize);
    let mut dense = vec![0.0; rows * cols];
    for (i, v) in get("index").iter().zip(get("value")) {
        dense[*i as usize] = v;
    }
    (rows, cols, dense, get("bias"))
}

#[test]
fn graph_blocks_are_the_torch_jacobians() {
    for case in graph_cases() {
        let name = case["name"].as_str().unwrap();
        for form in [Form::Gemm, Form::MatMul] {
            let options = LowerOptions::default().form(form).max_pool(MaxPoolForm::Relu);
            let (m, report, _) = lower(&golden(&format!("lower/{name}.onnx")), &options);
            let g = m.graph.as_ref().unwrap();
            for (k, block) in case["blocks"].as_array().unwrap().iter().enumerate() {
                let node = block["node"].as_str().unwrap();
                let what = format!("{name} {form} {node}");
                let at = g.node.iter().position(|n| n.name == node).unwrap_or_else(|| panic!("{what}: no node"));
                let n = &g.node[at];
                let (rows, cols, want, bias) = graph_jacobian(name, k);
                let (w, b) = match form {
                    Form::Gemm => (&n.input[1], &n.input[2]),
                    _ => (&n.input[1], &g.node[at + 1].input[1]),
                };
                let got = f32s(init(&m, w));
                let got: Vec<f64> = if form == Form::Gemm {
                    got
                } else {
                    (0..rows * cols).map(|i| got[(i % cols) * rows + i / cols]).collect()
                };
                close(&what, &got, &want, 1e-6);
                close(&format!("{what} bias"), &f32s(init(&m, b)), &bias, 1e-6);
                let r = report.blocks.iter().find(|b| b.name == node).unwrap();
                assert_eq!((r.rows, r.cols), (rows, cols), "{what}: report");
            }
        }
    }
}

/// A lowered graph evaluated by hand on one flat sample: Gemm, MatMul, Add / Sub (of a bias or of two
/// values), Concat on axis 1, Relu, LeakyRelu, PRelu, Clip, Flatten, Identity.
fn evaluate_graph(m: &ModelProto, x: &[f64]) -> Vec<f64> {
    use std::collections::HashMap;
    let g = m.graph.as_ref().unwrap();
    let mut v: HashMap<&str, Vec<f64>> = HashMap::new();
    v.insert(g.input[0].name.as_str(), x.to_vec());
    let get = |v: &HashMap<&str, Vec<f64>>, name: &str| -> Vec<f64> {
        match v.get(name) {
            Some(x) => x.clone(),
            None => {
                let t = init(m, name);
                if t.raw_data.is_empty() {
                    t.float_data.iter().map(|&f| f as f64).collect()
                } else {
                    f32s(t)
                }
            }
        }
    };
    for n in &g.node {
        let a = get(&v, &n.input[0]);
        let out: Vec<f64> = match n.op_type.as_str() {
            "Gemm" => {
                let (w, b) = (get(&v, &n.input[1]), get(&v, &n.input[2]));
                let cols = a.len();
                (0..b.len()).map(|r| (0..cols).map(|c| w[r * cols + c] * a[c]).sum::<f64>() + b[r]).collect()
            }
            "MatMul" => {
                let w = get(&v, &n.input[1]);
                let (k, rows) = (a.len(), w.len() / a.len());
                (0..rows).map(|r| (0..k).map(|c| w[c * rows + r] * a[c]).sum::<f64>()).collect()
            }
            "Add" | "Sub" => {
                let b = get(&v, &n.input[1]);
                assert_eq!(a.len(), b.len(), "{}: flat operands of one size", n.name);
                let sign = if n.op_type == "Add" { 1.0 } else { -1.0 };
                a.iter().zip(&b).map(|(a, b)| a + sign * b).collect()
            }
            "Concat" => {
                assert_eq!(attr(n, "axis").i, 1, "{}: concatenated along the flat axis", n.name);
                n.input.iter().flat_map(|i| get(&v, i)).collect()
            }
            "Relu" => a.iter().map(|a| a.max(0.0)).collect(),
            "LeakyRelu" => {
                let alpha = attr(n, "alpha").f as f64;
                a.iter().map(|&a| if a >= 0.0 { a } else { alpha * a }).collect()
            }
            "PRelu" => {
                let slope = get(&v, &n.input[1]);
                assert_eq!(slope.len(), a.len(), "{}: one slope per element", n.name);
                a.iter().zip(&slope).map(|(&a, &s)| if a >= 0.0 { a } else { s * a }).collect()
            }
            "Clip" => {
                let bound = |k: usize| n.input.get(k).filter(|s| !s.is_empty()).map(|s| get(&v, s)[0]);
                let (lo, hi) = (bound(1).unwrap_or(f64::NEG_INFINITY), bound(2).unwrap_or(f64::INFINITY));
                a.iter().map(|a| a.max(lo).min(hi)).collect()
            }
            "Flatten" | "Identity" => a,
            op => panic!("unexpected op {op} in {}", n.name),
        };
        v.insert(n.output[0].as_str(), out);
    }
    v[g.output[0].name.as_str()].clone()
}

#[test]
fn lowered_graphs_compute_what_onnxruntime_computes_on_the_originals() {
    for case in graph_cases() {
        let name = case["name"].as_str().unwrap();
        for form in [Form::Gemm, Form::MatMul] {
            for keep in [false, true] {
                let options = LowerOptions::default().form(form).keep_input_shape(keep).max_pool(MaxPoolForm::Relu);
                let (m, _, _) = lower(&golden(&format!("lower/{name}.onnx")), &options);
                for (x, y) in case["inputs"].as_array().unwrap().iter().zip(case["outputs"].as_array().unwrap()) {
                    let got = evaluate_graph(&m, &floats(x));
                    close(&format!("{name} {form} keep={keep}"), &got, &floats(y), 1e-5);
                }
            }
        }
    }
}

#[test]
fn junctions_are_written_on_flat_vectors_and_operands_explicitly() {
    let ops =
        |m: &ModelProto| -> Vec<String> { m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect() };
    let inits = |m: &ModelProto| -> HashSet<String> {
        m.graph.as_ref().unwrap().initializer.iter().map(|t| t.name.clone()).collect()
    };
    // bad/residual.onnx, once refused as no chain, lowers: the second Conv's output plus the input
    let (m, _, _) = lower(&golden("bad/residual.onnx"), &LowerOptions::default());
    assert_eq!(ops(&m), ["Gemm", "Relu", "Gemm", "Add", "Relu"]);
    let g = m.graph.as_ref().unwrap();
    assert_eq!(g.node[3].input, [g.node[2].output[0].clone(), "x".to_string()]);
    // the residual Add joins two computed vectors
    let (m, report, _) = lower(&golden("lower/resnet_block.onnx"), &LowerOptions::default());
    assert_eq!(ops(&m), ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Add", "Relu", "Gemm"]);
    let g = m.graph.as_ref().unwrap();
    let add = g.node.iter().find(|n| n.op_type == "Add").unwrap();
    assert_eq!(add.input.len(), 2);
    assert!(add.input.iter().all(|i| !inits(&m).contains(i)), "both operands computed: {:?}", add.input);
    assert_eq!(add.input[1], g.node[1].output[0], "the skip reads the first Relu's output");
    assert_eq!(report.blocks.len(), 4, "BatchNorms folded into their Convs");
    // the dense block's channel concatenations: Concat(axis=1) of the flat input and the flat conv output
    let (m, _, _) = lower(&golden("lower/dense_block.onnx"), &LowerOptions::default());
    assert_eq!(ops(&m), ["Gemm", "Relu", "Concat", "Gemm", "Relu", "Concat", "Gemm", "Gemm"]);
    let g = m.graph.as_ref().unwrap();
    let cat = &g.node[2];
    assert_eq!(cat.input, [g.input[0].name.clone(), g.node[1].output[0].clone()]);
    // PRelu's slope per element, LeakyRelu's alpha, Clip's bounds: explicit
    let (m, _, _) = lower(&golden("lower/activations.onnx"), &LowerOptions::default());
    let g = m.graph.as_ref().unwrap();
    let prelu = g.node.iter().find(|n| n.op_type == "PRelu").unwrap();
    let slope = init(&m, &prelu.input[1]);
    assert_eq!(slope.dims, [3 * 6 * 6]);
    for (c, want) in [0.1f32, -0.3, 0.5].into_iter().enumerate() {
        assert!(slope.float_data[c * 36..(c + 1) * 36].iter().all(|&s| s == want), "channel {c}");
    }
    let leaky = g.node.iter().find(|n| n.op_type == "LeakyRelu").unwrap();
    assert_eq!((attr(leaky, "alpha").r#type, attr(leaky, "alpha").f), (attribute_type::FLOAT, 0.2));
    let clip = g.node.iter().find(|n| n.op_type == "Clip").unwrap();
    let bounds: Vec<f32> = clip.input[1..].iter().map(|b| init(&m, b).float_data[0]).collect();
    assert_eq!(bounds, [0.0, 6.0]);
    assert!(ops(&m).contains(&"MaxPool".to_string()));
    // --max-pool relu: Gemm and Relu only around the pool
    let (m, report, _) = lower(&golden("lower/activations.onnx"), &LowerOptions::default().max_pool(MaxPoolForm::Relu));
    let got = ops(&m);
    assert!(got.iter().all(|o| ["Gemm", "Relu", "PRelu", "LeakyRelu", "Clip"].contains(&o.as_str())), "{got:?}");
    // 2x2 windows: two levels of pairwise maxima and the block writing them
    let pool: Vec<(&str, usize, usize)> =
        report.blocks.iter().filter(|b| b.op == "MaxPool").map(|b| (b.name.as_str(), b.rows, b.cols)).collect();
    assert_eq!(
        pool,
        [("/pool/MaxPool/max0", 18 * 6, 72), ("/pool/MaxPool/max1", 18 * 3, 18 * 6), ("/pool/MaxPool/max", 18, 18 * 3)]
    );
}

/// `max |got - want| / max |want|`.
fn rel(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    got.iter().zip(want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale
}

#[test]
fn every_graph_golden_lowers_to_what_onnxruntime_computes() {
    let dir = golden("graphs");
    let listing: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("graphs.json")).unwrap()).unwrap();
    let out = tempfile::tempdir().unwrap();
    for (name, info) in listing["models"].as_object().unwrap() {
        let npz = dir.join(format!("{name}.npz"));
        let x = convmat_io::read_npz(&npz, Some("x")).unwrap();
        let y = convmat_io::read_npz(
            &npz,
            Some(
                info["tensors"].as_array().unwrap().iter().find(|t| t["name"] == "y").unwrap()["key"].as_str().unwrap(),
            ),
        )
        .unwrap();
        for max_pool in [MaxPoolForm::Keep, MaxPoolForm::Relu] {
            let path = out.path().join(format!("{name}_{max_pool}.onnx"));
            let options = LowerOptions::default().max_pool(max_pool);
            Model::load(dir.join(format!("{name}.onnx")))
                .unwrap()
                .lower(&options)
                .and_then(|l| l.write(&path))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // the lowered file read back and run by convmat's graph runner (checked against onnxruntime
            // in tests/graphs.rs), on the flat input
            let n = x.shape[0];
            let flat = convmat_net::Tensor::new(vec![n, x.data.len() / n], x.data.clone());
            let run = Model::load(&path).unwrap().run(flat, &BlockOptions::default(), false).unwrap();
            let e = rel(&run.outputs[0].data, &y.data);
            assert!(e <= 1e-5, "{name} max_pool={max_pool}: off by {e:.2e} relative");
        }
    }
}
