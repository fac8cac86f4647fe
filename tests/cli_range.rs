//! `convmat range` as a user runs it: the NumPy brute-force goldens (xtask/oracle/range_golden.py), the
//! witnesses reproduced by `convmat apply` with an accumulator exactly that wide (and one bit narrower
//! wrapping), and bad input.

use serde_json::Value;

mod common;
use common::{bad, ok, Dir};

fn list(v: &Value) -> String {
    v.as_array().unwrap().iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

#[test]
fn golden_ranges_from_numpy_brute_force() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/range/range_golden.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let d = Dir::new();
        let shape: Vec<usize> = ints(&case["weight_shape"]).iter().map(|&v| v as usize).collect();
        let w: Vec<f64> = ints(&case["weight"]).iter().map(|&v| v as f64).collect();
        let wpath = d.npy("w.npy", &shape, &w);
        let mut args: Vec<String> = vec![
            "range".into(),
            "--weight".into(),
            wpath,
            "--input-shape".into(),
            list(&case["input_shape"]),
            "--input-dtype".into(),
            case["input_dtype"].as_str().unwrap().into(),
            "--input-zero-point".into(),
            case["input_zero_point"].to_string(),
            "--weight-zero-point".into(),
            case["weight_zero_point"].to_string(),
            "--json".into(),
        ];
        if let Some(b) = case.get("bias") {
            let b: Vec<f64> = ints(b).iter().map(|&v| v as f64).collect();
            args.extend(["--bias".into(), d.npy("b.npy", &[b.len()], &b)]);
        }
        for (key, flag) in [
            ("stride", "--stride"),
            ("padding", "--padding"),
            ("dilation", "--dilation"),
            ("output_padding", "--output-padding"),
            ("input_range", "--input-range"),
        ] {
            if let Some(v) = case.get(key) {
                args.extend([flag.into(), list(v)]);
            }
        }
        if let Some(g) = case.get("groups") {
            args.extend(["--groups".into(), g.to_string()]);
        }
        if let Some(m) = case.get("padding_mode") {
            args.extend(["--padding-mode".into(), m.as_str().unwrap().into()]);
        }
        if case.get("transposed").and_then(Value::as_bool) == Some(true) {
            args.push("--transposed".into());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let report: Value = serde_json::from_str(&ok(&argv)).unwrap();
        let channels = report["channels"].as_array().unwrap();
        let got_min: Vec<i64> = channels.iter().map(|c| c["min"].as_i64().unwrap()).collect();
        let got_max: Vec<i64> = channels.iter().map(|c| c["max"].as_i64().unwrap()).collect();
        assert_eq!(got_min, ints(&case["expected_min"]), "{name}: min");
        assert_eq!(got_max, ints(&case["expected_max"]), "{name}: max");
        assert_eq!(report["input_min"].as_i64(), case["input_min"].as_i64(), "{name}");
        assert_eq!(report["input_max"].as_i64(), case["input_max"].as_i64(), "{name}");
        let widest = channels.iter().map(|c| c["bits"].as_u64().unwrap()).max().unwrap();
        assert_eq!(report["bits"].as_u64(), Some(widest), "{name}");
        assert!(widest <= report["datatype_bits"].as_u64().unwrap(), "{name}");
        if name == "qonnx_border" {
            assert_eq!(channels[0]["max_at_border"], Value::Bool(true));
            assert_eq!(channels[0]["max_output"], serde_json::json!([0, 4]));
        }
    }
}

/// Reads an int64 or float64 `.npy` written by convmat as f64 values.
fn read(path: &std::path::Path) -> Vec<f64> {
    convmat::io::read_array(path).unwrap().data
}

#[test]
fn witnesses_reproduce_the_bound_through_apply_and_one_bit_less_wraps() {
    let d = Dir::new();
    // Conv2d(2, 3, 3, padding=1) with int8-range weights and a bias, int8 inputs
    let shape = [3usize, 2, 3, 3];
    let w: Vec<f64> = (0..54).map(|i| ((i * 37 % 255) as f64) - 127.0).collect();
    let wpath = d.npy("w.npy", &shape, &w);
    let bpath = d.npy("b.npy", &[3], &[1000.0, -3000.0, 7.0]);
    let dir = d.s("wit");
    let out = ok(&[
        "range",
        "--weight",
        &wpath,
        "--bias",
        &bpath,
        "--input-shape",
        "2,5,5",
        "--padding",
        "1",
        "--input-dtype",
        "q8.0",
        "--witness",
        &dir,
        "--json",
    ]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let index: Value = serde_json::from_str(&std::fs::read_to_string(d.p("wit/index.json")).unwrap()).unwrap();
    assert_eq!(index.as_array().unwrap().len(), 6);
    assert_eq!(report["witness"], index);
    let mut widest = [0u64; 3];
    for entry in index.as_array().unwrap() {
        let ch = entry["channel"].as_u64().unwrap() as usize;
        let value = entry["value"].as_i64().unwrap();
        // the signed width of this value alone: the channel's width is the wider of its min's and max's
        let need = u64::from(if value >= 0 { 65 - value.leading_zeros() } else { 65 - (!value).leading_zeros() });
        widest[ch] = widest[ch].max(need);
        let output: Vec<usize> =
            entry["output"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let flat = (output[0] * 5 + output[1]) * 5 + output[2];
        let x = d.p(&format!("wit/{}", entry["file"].as_str().unwrap())).display().to_string();
        let run = |acc: Option<u64>, y: &str| {
            let mut args = vec![
                "apply",
                "--weight",
                &wpath,
                "--bias",
                &bpath,
                "--input",
                &x,
                "--padding",
                "1",
                "--dtype",
                "q8.0",
                "--raw",
                "--quiet",
            ];
            let acc_dtype = acc.map(|b| format!("s{b},0"));
            if let Some(a) = &acc_dtype {
                args.extend(["--acc-dtype", a, "--overflow", "wrap"]);
            }
            let out = d.s(y);
            args.extend(["-o", &out]);
            ok(&args);
            read(&d.p(y))[flat]
        };
        assert_eq!(run(None, "yf.npy"), value as f64, "{entry}: full precision");
        assert_eq!(run(Some(need), "y.npy"), value as f64, "{entry}: at {need} bits");
        assert_ne!(run(Some(need - 1), "y1.npy"), value as f64, "{entry}: one bit narrower must wrap");
    }
    for (ch, w) in widest.iter().enumerate() {
        assert_eq!(report["channels"][ch]["bits"].as_u64(), Some(*w), "channel {ch}");
    }
    // the table names the layer, every channel, and the layer's summary
    let table = ok(&[
        "range",
        "--weight",
        &wpath,
        "--bias",
        &bpath,
        "--input-shape",
        "2,5,5",
        "--padding",
        "1",
        "--input-dtype",
        "q8.0",
    ]);
    assert!(table.contains("Conv2d(2, 3, 3, padding=1)"), "{table}");
    assert!(table.contains("data-type bound 21"), "{table}"); // 8 + 8 + ceil(log2(18 + 1))
}

#[test]
fn bad_input_is_one_line_with_exit_2() {
    let d = Dir::new();
    let w = d.npy("w.npy", &[1, 1, 2], &[1.0, -1.0]);
    let base = ["range", "--weight", &w, "--input-shape", "1,4"];
    let run = |extra: &[&str], fragments: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        bad(&args, fragments);
    };
    run(&["--input-dtype", "int7x"], &["--input-dtype 'int7x'", "qI.F"]);
    run(&["--input-dtype", "q8.0", "--input-range", "2,1"], &["input range 2,1 is empty"]);
    run(&["--input-dtype", "q8.0", "--input-range", ""], &["invalid input range ''"]);
    run(&["--input-dtype", "q8.0", "--input-range", "-500,1"], &["outside q8.0's values [-128, 127]"]);
    run(&["--input-dtype", "uq8.0", "--input-zero-point", "-1"], &["input zero point -1 is outside uq8.0"]);
    run(&["--input-dtype", "q8.0", "--weight-zero-point", "9"], &["weight zero point 9 is outside q2.0"]);
    run(&["--input-dtype", "q8.0", "--weight-dtype", "q1.x"], &["--weight-dtype 'q1.x'"]);
    let half = d.npy("h.npy", &[1, 1, 2], &[0.5, 1.0]);
    bad(
        &["range", "--weight", &half, "--input-shape", "1,4", "--input-dtype", "q8.0"],
        &["weight value 0 is 0.5", "weight format"],
    );
}
