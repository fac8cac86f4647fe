//! Every case of tests/golden/catalog.json against the values its oracle (PyTorch, SciPy) produced,
//! stored in tests/golden/cases/<name>.json by `cargo xtask golden`. No Python needed here.

use std::path::{Path, PathBuf};

use convmat::matrix::{convmtx2, fold, unfold, Accumulation, Affine, Conv, FixedConv, MatrixOptions};
use convmat::numeric::{Overflow, QFormat, Rounding, Scalar};
use convmat::shape::{parse_layer, propagate, ConvSpec, Geometry, Padding, PaddingMode, TrueConvShape};
use ndarray::{Array2, Array3, ArrayD, IxDyn};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn uints(v: &Value) -> Vec<usize> {
    v.as_array().expect("array").iter().map(|x| x.as_u64().expect("uint") as usize).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

/// Relative tolerances per precision, in one place. The catalog's inputs are multiples of 1/8, so every
/// value is exact in both precisions and the tolerance is zero.
const TOLERANCE: &[(&str, f64)] = &[("float32", 0.0), ("float64", 0.0)];

fn tolerance<T: Scalar>() -> f64 {
    TOLERANCE.iter().find(|(d, _)| *d == T::DTYPE).map_or(0.0, |t| t.1)
}

fn assert_close<T: Scalar>(what: &str, got: impl IntoIterator<Item = T>, expect: &[f64]) -> Result<(), String> {
    let got: Vec<f64> = got.into_iter().map(T::to_f64).collect();
    if got.len() != expect.len() {
        return Err(format!("{what}: {} values, expected {}", got.len(), expect.len()));
    }
    let tol = tolerance::<T>();
    for (i, (g, e)) in got.iter().zip(expect).enumerate() {
        if (g - e).abs() > tol * e.abs().max(1.0) {
            return Err(format!("{what} ({}): value {i} is {g}, expected {e}", T::DTYPE));
        }
    }
    Ok(())
}

fn per_dim(v: Option<&Value>, rank: usize, default: usize) -> Vec<usize> {
    match v {
        None => vec![default; rank],
        Some(Value::Array(a)) => a.iter().map(|x| x.as_u64().unwrap() as usize).collect(),
        Some(x) => vec![x.as_u64().unwrap() as usize; rank],
    }
}

/// The layer a catalog entry describes.
fn spec_of(case: &Value) -> ConvSpec {
    let rank = case["input"].as_array().unwrap().len() - 1;
    let (cin, cout) = (case["in_channels"].as_u64().unwrap() as usize, case["out_channels"].as_u64().unwrap() as usize);
    let k = per_dim(case.get("kernel_size"), rank, 1);
    let transposed = case.get("transposed").and_then(Value::as_bool).unwrap_or(false);
    let mut spec =
        if transposed { ConvSpec::new_transposed(rank, cin, cout, k) } else { ConvSpec::new(rank, cin, cout, k) };
    spec = spec
        .with_stride(per_dim(case.get("stride"), rank, 1))
        .with_dilation(per_dim(case.get("dilation"), rank, 1))
        .with_groups(case.get("groups").map_or(1, |g| g.as_u64().unwrap() as usize))
        .with_bias(case.get("bias").and_then(Value::as_bool).unwrap_or(false));
    if transposed {
        spec = spec.with_output_padding(per_dim(case.get("output_padding"), rank, 0));
    }
    if let Some(mode) = case.get("padding_mode") {
        spec = spec.with_padding_mode(mode.as_str().unwrap().parse::<PaddingMode>().unwrap());
    }
    let padding = match (case.get("pads"), case.get("padding")) {
        (Some(p), _) => Padding::onnx(uints(p)).unwrap(),
        (None, Some(Value::String(s))) => Padding::parse(s, rank).unwrap(),
        (None, p) => Padding::symmetric(per_dim(p, rank, 0)),
    };
    spec.with_padding(padding)
}

fn golden_dense(m: &Value) -> Array2<f64> {
    let shape = uints(&m["shape"]);
    let a = sprs::CsMat::new((shape[0], shape[1]), uints(&m["indptr"]), uints(&m["indices"]), floats(&m["data"]));
    a.to_dense()
}

/// A sparse matrix as dense f64 values, row-major (generic: sprs's own `to_dense` needs num-traits).
fn densify<T: Scalar>(m: &sprs::CsMatI<T, u32, u32>) -> Vec<f64> {
    let mut out = vec![0.0; m.rows() * m.cols()];
    for (&v, (r, c)) in m.iter() {
        out[r as usize * m.cols() + c as usize] = v.to_f64();
    }
    out
}

fn check_conv<T: Scalar>(case: &Value, exp: &Value) -> Result<(), String> {
    let spec = spec_of(case);
    let input = uints(&case["input"]);
    let geometry = Geometry::new(&spec, &input[1..]).map_err(|e| e.to_string())?;
    if geometry.output_shape() != uints(&exp["output_shape"]) {
        return Err(format!("output shape {:?}, PyTorch {:?}", geometry.output_shape(), exp["output_shape"]));
    }
    spec.check_weight_shape(&uints(&exp["weight_shape"])).map_err(|e| e.to_string())?;
    let cast = |v: &Value| floats(v).into_iter().map(T::from_f64).collect::<Vec<T>>();
    let bias = (!exp["bias"].is_null()).then(|| cast(&exp["bias"]));
    let conv = Conv::new(geometry, cast(&exp["weight"]), bias).map_err(|e| e.to_string())?;
    // the layer's output on the probes
    for (x, y) in exp["x"].as_array().unwrap().iter().zip(exp["y"].as_array().unwrap()) {
        let x = Array2::from_shape_vec((1, conv.cols()), cast(x)).unwrap();
        let got = conv.forward(x.view()).map_err(|e| e.to_string())?;
        assert_close::<T>("A·x + b", got.iter().map(|&v| T::from_f64(T::acc_to_f64(v))), &floats(y))?;
    }
    let Some(m) = exp.get("matrix") else { return Ok(()) };
    let expect = golden_dense(m);
    let dense = conv.dense();
    assert_close::<T>("dense", dense.iter().copied(), expect.as_slice().unwrap())?;
    let csr = densify(&conv.csr().map_err(|e| e.to_string())?);
    assert_close::<f64>("csr", csr, expect.as_slice().unwrap())?;
    let csc = densify(&conv.csc().map_err(|e| e.to_string())?);
    assert_close::<f64>("csc", csc, expect.as_slice().unwrap())?;
    // a middle shard of the affine form is that slice of [A | b]
    let rows = conv.rows();
    let (r0, r1) = (rows / 3, (2 * rows / 3).max(rows / 3 + 1));
    let shard = conv
        .csr_with::<u32, u32>(&MatrixOptions::default().affine(Affine::Column).rows(r0..r1))
        .map_err(|e| e.to_string())?;
    let shard = densify(&shard);
    let b = conv.expanded_bias().unwrap_or_else(|| vec![T::ZERO; rows]);
    let mut expect_shard = Vec::new();
    for (r, bias) in b.iter().enumerate().take(r1).skip(r0) {
        expect_shard.extend(expect.row(r).iter().copied());
        expect_shard.push(bias.to_f64());
    }
    assert_close::<f64>("affine row shard", shard, &expect_shard)
}

fn check_unfold(case: &Value, exp: &Value) -> Result<(), String> {
    let input = uints(&case["input"]);
    let spec = ConvSpec::new(2, input[0], 1, uints(&case["kernel_size"]))
        .with_stride(uints(&case["stride"]))
        .with_dilation(uints(&case["dilation"]))
        .with_padding(Padding::symmetric(uints(&case["padding"])));
    let g = Geometry::new(&spec, &input[1..]).map_err(|e| e.to_string())?;
    let x = ArrayD::from_shape_vec(IxDyn(&[2, input[0], input[1], input[2]]), floats(&exp["x"])).unwrap();
    let cols = unfold(&g, x.view()).map_err(|e| e.to_string())?;
    assert_close::<f64>("unfold", cols.iter().copied(), &floats(&exp["cols"]))?;
    let s = uints(&exp["cols_shape"]);
    let other = Array3::from_shape_vec((s[0], s[1], s[2]), floats(&exp["other"])).unwrap();
    let folded = fold(&g, other.view()).map_err(|e| e.to_string())?;
    assert_close::<f64>("fold", folded.iter().copied(), &floats(&exp["folded"]))
}

fn check_true_conv(case: &Value, exp: &Value) -> Result<(), String> {
    let (xs, hs) = (uints(&exp["x_shape"]), uints(&exp["h_shape"]));
    let shape: TrueConvShape = case["shape"].as_str().unwrap().parse().unwrap();
    let spec = ConvSpec::new(xs.len(), 1, 1, &hs).with_bias(false);
    let conv = Conv::true_convolution(&spec, shape, &xs, &floats(&exp["h"]), None).map_err(|e| e.to_string())?;
    if conv.geometry().output_spatial() != uints(&exp["y_shape"]) {
        return Err(format!("shape {:?}, SciPy {:?}", conv.geometry().output_spatial(), exp["y_shape"]));
    }
    let x = Array2::from_shape_vec((1, conv.cols()), floats(&exp["x"])).unwrap();
    assert_close::<f64>("true convolution", conv.apply(x.view()).unwrap().iter().copied(), &floats(&exp["y"]))
}

fn check_convmtx2(case: &Value, exp: &Value) -> Result<(), String> {
    let hs = uints(&exp["h_shape"]);
    let h = Array2::from_shape_vec((hs[0], hs[1]), floats(&exp["h"])).unwrap();
    let (m, n) = (case["m"].as_u64().unwrap() as usize, case["n"].as_u64().unwrap() as usize);
    let t = convmtx2(h.view(), m, n).map_err(|e| e.to_string())?;
    if t.shape() != uints(&exp["t_shape"]).as_slice() {
        return Err(format!("shape {:?}, expected {:?}", t.shape(), exp["t_shape"]));
    }
    assert_close::<f64>("convmtx2", t.iter().copied(), &floats(&exp["t"]))
}

fn ints(v: &Value) -> Vec<i128> {
    v.as_array().expect("array").iter().map(|x| x.as_i64().expect("int") as i128).collect()
}

fn check_fixed_conv(case: &Value, exp: &Value) -> Result<(), String> {
    let spec = spec_of(case);
    let input = uints(&case["input"]);
    let geometry = Geometry::new(&spec, &input[1..]).map_err(|e| e.to_string())?;
    let fmt = |k: &str| case[k].as_str().unwrap().parse::<QFormat>().map_err(|e| e.to_string());
    let bias = (!exp["bias"].is_null()).then(|| floats(&exp["bias"]));
    let conv =
        FixedConv::new(geometry, &floats(&exp["weight"]), bias.as_deref(), fmt("weight_format")?, fmt("input_format")?)
            .map_err(|e| e.to_string())?;
    let w: Vec<i128> = conv.raw_conv().weight().iter().map(|&v| v as i128).collect();
    if w != ints(&exp["w_raw"]) {
        return Err("quantized weights differ".into());
    }
    if let (Some(b), Some(expect)) = (conv.bias_raw(), exp.get("b_raw")) {
        if b != ints(expect).as_slice() {
            return Err("quantized bias differs".into());
        }
    }
    let rounding: Rounding = case["rounding"].as_str().unwrap().parse().unwrap();
    let overflow: Overflow = case["overflow"].as_str().unwrap().parse().unwrap();
    for (i, x) in exp["x"].as_array().unwrap().iter().enumerate() {
        let xq = conv.quantize_input(&floats(x));
        if xq.iter().map(|&v| v as i128).collect::<Vec<_>>() != ints(&exp["x_raw"][i]) {
            return Err(format!("quantized input {i} differs"));
        }
        let x = Array2::from_shape_vec((1, xq.len()), xq).unwrap();
        if let Some(acc) = case.get("acc_format") {
            let format: QFormat = acc.as_str().unwrap().parse().unwrap();
            let y =
                conv.apply(x.view(), Accumulation::Narrow { format, rounding, overflow }).map_err(|e| e.to_string())?;
            if y.raw.row(0).to_vec() != ints(&exp["y_acc_raw"][i]) {
                return Err(format!(
                    "narrow accumulator, sample {i}: {:?} vs {}",
                    y.raw.row(0).to_vec(),
                    exp["y_acc_raw"][i]
                ));
            }
        } else {
            let y = conv.apply(x.view(), Accumulation::Full).map_err(|e| e.to_string())?;
            // our accumulator keeps the product's fraction length, as the oracle's values do
            if y.raw.row(0).to_vec() != ints(&exp["y_raw"][i]) {
                return Err(format!("exact accumulator, sample {i}"));
            }
            // the stored-integer matrix (build --dtype qI.F): A·x + b over stored inputs is the same
            let stored = conv.stored_conv().map_err(|e| e.to_string())?;
            let a = stored.dense();
            let b = stored.expanded_bias();
            let ax: Vec<i128> = (0..a.nrows())
                .map(|r| {
                    a.row(r).iter().zip(x.row(0)).map(|(&w, &v)| w as i128 * v as i128).sum::<i128>()
                        + b.as_ref().map_or(0, |b| b[r] as i128)
                })
                .collect();
            if ax != ints(&exp["y_raw"][i]) {
                return Err(format!("stored-integer matrix A·x + b, sample {i}"));
            }
            let out = y.cast(fmt("out_format")?, rounding, overflow);
            if out.raw.row(0).to_vec() != ints(&exp["y_out_raw"][i]) {
                return Err(format!("output cast {rounding}/{overflow}, sample {i}"));
            }
        }
    }
    Ok(())
}

fn check_spectrum(case: &Value, exp: &Value) -> Result<(), String> {
    use convmat::spectrum::{lanczos, singular_values, Method, Request};
    let spec = spec_of(case).with_bias(false);
    let input = uints(&case["input"]);
    let geometry = Geometry::new(&spec, &input[1..]).map_err(|e| e.to_string())?;
    let conv = Conv::new(geometry, floats(&exp["weight"]), None).map_err(|e| e.to_string())?;
    let expect = floats(&exp["singular_values"]);
    let scale = expect[0];
    let all = singular_values(&conv, Request::All, Method::Auto, 1e-12).map_err(|e| e.to_string())?;
    let circular = spec.padding_mode() == PaddingMode::Circular;
    if (all.method == Method::Fft) != circular {
        return Err(format!("auto chose {} for padding_mode {}", all.method, spec.padding_mode()));
    }
    for (i, (g, e)) in all.values.iter().zip(&expect).enumerate() {
        if (g - e).abs() > SPECTRUM_TOLERANCE * scale {
            return Err(format!("{} value {i}: {g} vs NumPy {e}", all.method));
        }
    }
    if all.values.len() != expect.len() {
        return Err(format!("{} values, NumPy {}", all.values.len(), expect.len()));
    }
    if circular {
        // circular spectra repeat values (conjugate frequencies): single-vector Lanczos sees each once
        return Ok(());
    }
    let top = lanczos(&conv, 5, 1e-12).map_err(|e| e.to_string())?;
    for (i, (g, e)) in top.values.iter().zip(&expect).enumerate() {
        if (g - e).abs() > LANCZOS_TOLERANCE * scale {
            return Err(format!("lanczos top value {i}: {g} vs NumPy {e}"));
        }
    }
    Ok(())
}

/// Spectra: exact methods (FFT, dense SVD) to 1e-10 of the largest value; Lanczos to 1e-8.
const SPECTRUM_TOLERANCE: f64 = 1e-10;
const LANCZOS_TOLERANCE: f64 = 1e-8;

fn check_shape_chain(case: &Value, exp: &Value) -> Result<(), String> {
    let input = uints(&case["input"]);
    let layers = case["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| parse_layer(t.as_str().unwrap()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    match (propagate(&input, &layers), exp.get("fails_at")) {
        (Err(e), Some(at)) if e.index as u64 == at.as_u64().unwrap() => Ok(()),
        (Err(e), _) => Err(format!("convmat refuses ({e}); PyTorch: {:?}", exp.get("fails_at"))),
        (Ok(_), Some(_)) => Err(format!("convmat accepts a chain PyTorch refuses: {}", exp["torch_error"])),
        (Ok(got), None) => {
            let outputs: Vec<Vec<usize>> = exp["outputs"].as_array().unwrap().iter().map(uints).collect();
            let got_out: Vec<Vec<usize>> = got.iter().map(|s| s.output.clone()).collect();
            let got_params: Vec<usize> = got.iter().map(|s| s.params).collect();
            if got_out != outputs || got_params != uints(&exp["params"]) {
                return Err(format!("shapes {got_out:?} params {got_params:?}, PyTorch {outputs:?} {}", exp["params"]));
            }
            Ok(())
        }
    }
}

/// Every case of the catalog, each reported on its own (`cargo test --test golden -- --nocapture` prints
/// a line per case); `CONVMAT_GOLDEN=fixed_q17 cargo test --test golden` runs only the cases whose name
/// contains the text.
#[test]
fn every_catalog_case_matches_its_oracle() {
    let catalog: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("catalog.json")).unwrap()).unwrap();
    let cases = catalog["cases"].as_array().unwrap();
    let only = std::env::var("CONVMAT_GOLDEN").ok();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let path = dir().join("cases").join(format!("{name}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            failures.push(format!("{name}: missing {} (run `cargo xtask golden`)", path.display()));
            continue;
        };
        let doc: Value = serde_json::from_str(&text).unwrap();
        if &doc["case"] != case {
            failures.push(format!("{name}: stale golden file (run `cargo xtask golden`)"));
            continue;
        }
        let exp = &doc["expected"];
        let result = match case["kind"].as_str().unwrap() {
            "conv" => check_conv::<f64>(case, exp).and_then(|_| check_conv::<f32>(case, exp)),
            "unfold" => check_unfold(case, exp),
            "true_conv" => check_true_conv(case, exp),
            "convmtx2" => check_convmtx2(case, exp),
            "shape_chain" => check_shape_chain(case, exp),
            "fixed_conv" => check_fixed_conv(case, exp),
            "spectrum" => check_spectrum(case, exp),
            other => Err(format!("unknown kind {other}")),
        };
        match result {
            Ok(()) => println!("golden {name}: ok"),
            Err(e) => {
                println!("golden {name}: FAILED: {e}");
                failures.push(format!("{name} [{}]: {e}", doc["oracle"].as_str().unwrap_or("?")));
            }
        }
    }
    assert!(cases.len() >= 97, "the catalog shrank to {} cases", cases.len());
    assert!(failures.is_empty(), "{} of {} golden cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
