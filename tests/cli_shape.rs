//! `convmat shape` as a user runs it: the built binary, its stdout, stderr and exit code.

mod common;
use common::{bad, convmat};

const LENET: &[&str] = &[
    "shape",
    "--input-shape",
    "1,32,32",
    "Conv2d(1, 6, 3)",
    "MaxPool2d(2)",
    "Conv2d(6, 16, 3)",
    "MaxPool2d(2)",
    "Flatten()",
];

#[test]
fn table_shows_each_layer() {
    let (code, out, err) = convmat(LENET);
    assert_eq!(code, 0, "{err}");
    let flatten = out.lines().find(|l| l.starts_with("Flatten()")).expect("Flatten row");
    assert!(flatten.contains(" 576 "), "{flatten}");
    assert!(
        out.lines().any(|l| l.starts_with("Conv2d(6, 16, 3)") && l.contains("16x13x13") && l.ends_with(" 880")),
        "{out}"
    );
}

#[test]
fn json_has_layers_with_outputs() {
    let mut args = LENET.to_vec();
    args.push("--json");
    let (code, out, err) = convmat(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is JSON");
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5);
    assert_eq!(layers[4]["output"], serde_json::json!([576]));
    assert_eq!(layers[2]["params"], 880);
    assert_eq!(v["params"], 940);
}

#[test]
fn sequential_is_split() {
    let (code, out, err) = convmat(&[
        "shape",
        "--input-shape",
        "16,7,7",
        "--json",
        "nn.Sequential(nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(), nn.Conv2d(8, 4, (3, 1), padding=(1, 0)))",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outs: Vec<_> = v["layers"].as_array().unwrap().iter().map(|l| l["output"].clone()).collect();
    assert_eq!(outs, [serde_json::json!([8, 14, 14]), serde_json::json!([8, 14, 14]), serde_json::json!([4, 14, 14])]);
}

#[test]
fn bad_input_gets_one_clear_line() {
    let s = |layers: &[&'static str]| {
        let mut v = vec!["shape", "--input-shape", "1,32,32"];
        v.extend_from_slice(layers);
        v
    };
    bad(&s(&["Conv2d(1, 6, kernel_sise=3)"]), &["no argument 'kernel_sise'", "column 14", "kernel_size"]);
    bad(&s(&["Conv2d(1, 6 3)"]), &["expected ',' or ')'", "column 13"]);
    bad(&s(&["Conv2d(1, 6, 3"]), &["missing ')'"]);
    bad(&s(&["Conv9d(1, 6, 3)"]), &["unknown layer 'Conv9d'"]);
    bad(&s(&["Conv2d(1, 6, 3, padding='same', stride=2)"]), &["padding='same'", "strided"]);
    bad(&s(&["Conv2d(1, 6, 3, padding_mode='mirror')"]), &["'mirror'", "'reflect'"]);
    bad(&s(&["Conv2d(1, 6, 3, groups=4)"]), &["in_channels=1 is not divisible by groups=4"]);
    bad(&s(&["Conv2d(3, 6, 3)"]), &["layer 1", "3 channels", "[1, 32, 32]"]);
    bad(&s(&["Conv2d(1, 6, 40)"]), &["input size 32", "dilated kernel 40"]);
    bad(&s(&["Conv2d(1, 6, 3, padding=32, padding_mode='reflect')"]), &["reflect", "padding 32", "input size 32"]);
    bad(&s(&["Flatten()", "Linear(100, 10)"]), &["layer 2", "in_features is 100", "Linear(1024, ...)"]);
    bad(&s(&["MaxPool2d(2, padding=2)"]), &["at most half the kernel size"]);
    bad(&["shape", "--input-shape", "1,a,32", "Flatten()"], &["'1,a,32' is not a shape"]);
    bad(&["shape", "--input-shape", "1,0,32", "Flatten()"], &["positive integers"]);
    bad(&["shape", "Flatten()"], &["--input-shape"]);
}

#[test]
fn help_has_worked_examples() {
    let (code, out, _) = convmat(&["shape", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Examples:") && out.contains("convmat shape --input-shape 1,32,32"), "{out}");
}
