//! Quantized layers read from ONNX models (`xtask/oracle/quant_golden.py` builds the models): each
//! node's record (types, zero points, scales, bias, geometry), its exact accumulator range against the
//! oracle's NumPy brute force, and bad quantization parameters as one error naming node and value.

use std::path::{Path, PathBuf};

use convmat_onnx::{Model, QuantForm, QuantType};
use serde_json::Value;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/quant").join(name)
}

fn doc() -> Value {
    serde_json::from_str(&std::fs::read_to_string(golden("quant_range.json")).unwrap()).unwrap()
}

fn ints(v: &Value) -> Vec<i128> {
    v.as_array().unwrap().iter().map(|x| i128::from(x.as_i64().unwrap())).collect()
}

#[test]
fn accumulator_ranges_match_numpy_brute_force() {
    let doc = doc();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let model = Model::load(golden(case["model"].as_str().unwrap())).unwrap();
        let node = case["node"].as_str().unwrap();
        let q = model.quantized_layer(node, None).unwrap();
        assert_eq!(q.input.zero_point_at(0), case["input_zero_point"].as_i64().unwrap(), "{node}");
        assert_eq!(
            (q.input.ty.min(), q.input.ty.max()),
            (case["input_min"].as_i64().unwrap(), case["input_max"].as_i64().unwrap())
        );
        let r = q.accumulator_range(None).unwrap();
        let (mins, maxs): (Vec<i128>, Vec<i128>) = r.channels().iter().map(|c| (c.min, c.max)).unzip();
        assert_eq!(mins, ints(&case["expected_min"]), "{} {node} minima", case["model"]);
        assert_eq!(maxs, ints(&case["expected_max"]), "{} {node} maxima", case["model"]);
        // every layer lists the model's quantized nodes
        let all = model.quantized_layers(None).unwrap();
        assert_eq!(all.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), [node]);
    }
}

#[test]
fn records_carry_types_zero_points_scales_and_the_fused_nodes() {
    let m = Model::load(golden("qlinearconv_u8.onnx")).unwrap();
    let q = m.quantized_layer("qconv", None).unwrap();
    assert_eq!(q.form, QuantForm::QOperator);
    assert_eq!((q.input.ty, q.weight.ty), (QuantType::Uint8, QuantType::Int8));
    assert_eq!(q.output.as_ref().unwrap().ty, QuantType::Uint8);
    assert_eq!(q.weight.scale.len(), 4);
    assert_eq!(q.weight.axis, Some(0));
    assert_eq!(q.weight_shape, [4, 3, 3, 3]);
    assert_eq!(q.bias.as_ref().unwrap().len(), 4);
    assert_eq!((q.input_shape.as_slice(), q.output_shape.as_slice()), (&[3, 6, 5][..], &[4, 3, 5][..]));
    assert_eq!(q.expression, "Conv2d(3, 4, 3, stride=(2, 1), padding=(1, 1))");
    // x_scale · w_scale[c] / y_scale in f32, in that order
    let y = q.output.as_ref().unwrap();
    let m0 = q.input.scale[0] * q.weight.scale[0] / y.scale[0];
    assert_eq!(q.multipliers().unwrap()[0], m0);

    let m = Model::load(golden("qdq_conv.onnx")).unwrap();
    let q = m.quantized_layer("conv", None).unwrap();
    assert_eq!(q.form, QuantForm::Qdq);
    assert_eq!(q.nodes, ["dq_x", "dq_w", "dq_b", "conv", "q_y"]);
    assert_eq!((q.input.ty, q.input.zero_point_at(0)), (QuantType::Int8, -3));
    assert_eq!(q.output.as_ref().map(|o| (o.ty, o.zero_point_at(0))), Some((QuantType::Uint8, 10)));

    let m = Model::load(golden("convinteger.onnx")).unwrap();
    let q = m.quantized_layer("convint", None).unwrap();
    assert_eq!(q.form, QuantForm::Integer);
    assert!(q.output.is_none() && q.weight.scale.is_empty());
    assert_eq!((q.input.zero_point_at(0), q.weight.zero_point_at(3)), (100, 3));

    let m = Model::load(golden("qlinearmatmul.onnx")).unwrap();
    let q = m.quantized_layer("qmatmul", None).unwrap();
    assert!(q.is_matmul());
    assert_eq!((q.weight_shape.as_slice(), q.output_shape.as_slice()), (&[6, 4][..], &[3, 4][..]));
    assert_eq!(q.weight.axis, Some(1));
}

#[test]
fn a_node_that_is_not_quantized_lists_those_that_are() {
    let m = Model::load(golden("qlinearconv_u8.onnx")).unwrap();
    let e = m.quantized_layer("quant", None).unwrap_err().to_string();
    assert!(e.contains("not a quantized convolution") && e.contains("the model's: qconv"), "{e}");
}

#[test]
fn bad_quantization_parameters_are_one_line_naming_node_and_value() {
    let doc = doc();
    for (file, expect) in doc["bad"].as_object().unwrap() {
        let m = Model::load(golden(&format!("bad/{file}"))).unwrap();
        let e = m.quantized_layers(None).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{file}: {e}");
        for fragment in expect.as_array().unwrap() {
            assert!(e.contains(fragment.as_str().unwrap()), "{file}: {e}");
        }
    }
}

/// A tensor of the golden npz as the run's kind: stored integers for integer arrays, float32 otherwise.
fn npz_tensor(file: &Path, key: &str) -> convmat_onnx::QTensor {
    let spec = PathBuf::from(format!("{}:{key}", file.display()));
    let t = convmat_io::read_array(&spec).unwrap();
    if t.dtype.starts_with("float") {
        convmat_onnx::QTensor::Float { shape: t.shape, data: t.data.iter().map(|&v| v as f32).collect() }
    } else {
        let ty = match t.dtype.as_str() {
            "uint8" => QuantType::Uint8,
            "int8" => QuantType::Int8,
            _ => QuantType::Int32,
        };
        convmat_onnx::QTensor::Int { ty, shape: t.shape, data: t.data.iter().map(|&v| v as i64).collect() }
    }
}

/// The values of a run's tensor, comparable with the golden's whatever the integer type.
fn values(t: &convmat_onnx::QTensor) -> (Vec<usize>, Vec<f64>) {
    match t {
        convmat_onnx::QTensor::Int { shape, data, .. } => (shape.clone(), data.iter().map(|&v| v as f64).collect()),
        convmat_onnx::QTensor::Float { shape, data } => (shape.clone(), data.iter().map(|&v| f64::from(v)).collect()),
    }
}

#[test]
fn quantized_runs_match_onnxruntime_bit_for_bit() {
    let doc = doc();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 7);
    for run in runs {
        let name = run["model"].as_str().unwrap();
        let model = Model::load(golden(name)).unwrap();
        let npz = golden(&name.replace(".onnx", ".npz"));
        let x = npz_tensor(&npz, "x");
        let out = model.run_quantized(x, Default::default(), true).unwrap();
        let want = values(&npz_tensor(&npz, "y"));
        assert_eq!(values(&out.outputs[0]), want, "{name}: output");
        for t in run["traced"].as_array().unwrap() {
            let t = t.as_str().unwrap();
            let got = out.trace.iter().find(|r| r.tensor == t).unwrap_or_else(|| panic!("{name}: {t} not traced"));
            assert_eq!(values(&got.value), values(&npz_tensor(&npz, &format!("trace/{t}"))), "{name}: {t}");
        }
    }
}
