//! The command line as a user runs it: real files in a temporary directory, the built binary, its exit
//! code, stdout, stderr and the files it leaves.

use std::path::Path;

use convmat::io::{read_array, read_npz};
use convmat::matrix::{Accumulation, Conv, FixedConv};
use convmat::numeric::QFormat;
use convmat::shape::{ConvSpec, Geometry, Padding};

mod common;
use common::{bad_in, convmat, ok, Dir};

/// Multiples of 1/8 in [-1, 1] (exact in f32) from the workspace's seeded generator.
fn seq(n: usize, seed: u64) -> Vec<f64> {
    convmat::numeric::SeededRng::new(seed).small_ints(n, 8).into_iter().map(|v| v / 8.0).collect()
}

/// A 3->4 3x3 layer's files: weight, bias.
fn layer_files(d: &Dir) -> (String, String, Vec<f64>, Vec<f64>) {
    let (w, b) = (seq(4 * 3 * 9, 1), seq(4, 2));
    (d.npy("w.npy", &[4, 3, 3, 3], &w), d.npy("b.npy", &[4], &b), w, b)
}

fn expected(w: &[f64], b: &[f64], stride: usize, pad: usize) -> Conv<f64> {
    let spec = ConvSpec::new(2, 3, 4, [3]).with_stride([stride]).with_padding(Padding::uniform(pad));
    Conv::new(Geometry::new(&spec, &[7, 6]).unwrap(), w.to_vec(), Some(b.to_vec())).unwrap()
}

fn dense_of_npz(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let shape = read_npz(path, Some("shape")).unwrap().data;
    let (r, c) = (shape[0] as usize, shape[1] as usize);
    let indptr = read_npz(path, Some("indptr")).unwrap().data;
    let indices = read_npz(path, Some("indices")).unwrap().data;
    let data = read_npz(path, Some("data")).unwrap().data;
    let format = std::fs::read(path).unwrap();
    let csc = format.windows(3).any(|w| w == b"csc");
    let mut out = vec![0.0; r * c];
    for major in 0..indptr.len() - 1 {
        for k in indptr[major] as usize..indptr[major + 1] as usize {
            let (i, j) = if csc { (indices[k] as usize, major) } else { (major, indices[k] as usize) };
            out[i * c + j] = data[k];
        }
    }
    (vec![r, c], out)
}

#[test]
fn build_writes_every_format() {
    let d = Dir::new();
    let (w, b, wv, bv) = layer_files(&d);
    let conv = expected(&wv, &bv, 2, 1);
    let dense = conv.dense();
    let base =
        ["build", "--weight", &w, "--bias", &b, "--input-shape", "3,7,6", "--stride", "2", "--padding", "1", "--quiet"];
    // csr npz with the expanded bias
    let out = ok(&[&base[..], &["-o", &d.s("a.npz"), "--json"]].concat());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["rows", "cols", "nnz", "bytes", "build_seconds", "write_seconds"] {
        assert!(report.get(key).is_some(), "JSON lacks {key}: {out}");
    }
    assert_eq!(report["rows"], conv.rows());
    let (shape, values) = dense_of_npz(&d.p("a.npz"));
    assert_eq!(shape, vec![conv.rows(), conv.cols()]);
    assert_eq!(values, dense.iter().map(|&v| v as f32 as f64).collect::<Vec<_>>());
    assert_eq!(read_npz(&d.p("a.npz"), Some("bias")).unwrap().data, conv.expanded_bias().unwrap());
    let mut keys = convmat::io::npz_keys(&d.p("a.npz")).unwrap();
    keys.sort();
    assert_eq!(keys, ["bias", "data", "format", "indices", "indptr", "shape"]);
    // csc, affine: the last column is the bias and there is no separate bias key
    ok(&[&base[..], &["-o", &d.s("c.npz"), "--format", "csc", "--affine", "--dtype", "f64"]].concat());
    let (shape, values) = dense_of_npz(&d.p("c.npz"));
    assert_eq!(shape, vec![conv.rows(), conv.cols() + 1]);
    assert_eq!(values[conv.cols()], conv.expanded_bias().unwrap()[0]);
    assert!(read_npz(&d.p("c.npz"), Some("bias")).is_err());
    // dense npy, f64
    ok(&[&base[..], &["-o", &d.s("a.npy"), "--dtype", "f64"]].concat());
    let t = read_array(&d.p("a.npy")).unwrap();
    assert_eq!(t.shape, vec![conv.rows(), conv.cols()]);
    assert_eq!(t.data, dense.iter().copied().collect::<Vec<_>>());
    // Matrix Market: header, size line, 1-based entries
    ok(&[&base[..], &["-o", &d.s("a.mtx")]].concat());
    let text = std::fs::read_to_string(d.p("a.mtx")).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('%'));
    let size: Vec<usize> = lines.next().unwrap().split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(&size[..2], &[conv.rows(), conv.cols()]);
    assert_eq!(size[2], lines.count());
    assert!(text.starts_with("%%MatrixMarket matrix coordinate real general"));
    // row shards stack to the full matrix
    ok(&[&base[..], &["-o", &d.s("r0.npz"), "--rows", "0..10"]].concat());
    ok(&[&base[..], &["-o", &d.s("r1.npz"), "--rows", &format!("10..{}", conv.rows())]].concat());
    let (_, r0) = dense_of_npz(&d.p("r0.npz"));
    let (_, r1) = dense_of_npz(&d.p("r1.npz"));
    assert_eq!([r0, r1].concat(), values_f32(&dense));
    // fixed point: stored integers with the format recorded
    ok(&[&base[..], &["-o", &d.s("q.npz"), "--dtype", "q1.7"]].concat());
    let (_, q) = dense_of_npz(&d.p("q.npz"));
    assert!(q.iter().all(|v| v.fract() == 0.0 && v.abs() <= 128.0));
    assert!(std::fs::read(d.p("q.npz")).unwrap().windows(4).any(|w| w == b"q1.7"));
    // a transposed layer and a --layer expression
    let wt = d.npy("wt.npy", &[3, 2, 2, 2], &seq(24, 5));
    ok(&[
        "build",
        "--weight",
        &wt,
        "--input-shape",
        "3,4,4",
        "--transposed",
        "--stride",
        "2",
        "-o",
        &d.s("t.npz"),
        "--quiet",
    ]);
    let (shape, _) = dense_of_npz(&d.p("t.npz"));
    assert_eq!(shape, vec![2 * 8 * 8, 3 * 4 * 4]);
    ok(&[
        "build",
        "--weight",
        &w,
        "--input-shape",
        "3,5,5",
        "--layer",
        "Conv2d(3, 4, 3, padding=1, padding_mode='circular', bias=False)",
        "-o",
        &d.s("circ.npz"),
        "--quiet",
    ]);
    // every output reads all 3 x 9 taps (circular padding never drops one)
    assert_eq!(read_npz(&d.p("circ.npz"), Some("data")).unwrap().data.len(), 4 * 25 * 27);
}

fn values_f32(a: &ndarray::Array2<f64>) -> Vec<f64> {
    a.iter().map(|&v| v as f32 as f64).collect()
}

#[test]
fn build_reads_safetensors_state_dicts() {
    let d = Dir::new();
    let (wv, bv) = (seq(4 * 3 * 9, 1), seq(4, 2));
    let to_bytes = |v: &[f64]| v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect::<Vec<u8>>();
    let (wb, bb) = (to_bytes(&wv), to_bytes(&bv));
    let tensors = vec![
        (
            "conv1.weight".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4, 3, 3, 3], &wb).unwrap(),
        ),
        (
            "conv1.bias".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &bb).unwrap(),
        ),
    ];
    safetensors::serialize_to_file(tensors, None, &d.p("m.safetensors")).unwrap();
    let st = d.s("m.safetensors");
    ok(&[
        "build",
        "--weights",
        &st,
        "--layer",
        "conv1",
        "--input-shape",
        "3,7,6",
        "--stride",
        "2",
        "--padding",
        "1",
        "-o",
        &d.s("a.npz"),
        "--quiet",
    ]);
    let conv = expected(&wv, &bv, 2, 1);
    assert_eq!(read_npz(&d.p("a.npz"), Some("bias")).unwrap().data, conv.expanded_bias().unwrap());
    let (code, _, err) =
        convmat(&["build", "--weights", &st, "--layer", "conv9", "--input-shape", "3,7,6", "-o", &d.s("x.npz")]);
    assert_eq!(code, 2);
    assert!(err.contains("no layer 'conv9'") && err.contains("conv1"), "{err}");
}

#[test]
fn check_apply_shape_demo_run() {
    let d = Dir::new();
    let (w, b, wv, bv) = layer_files(&d);
    let out = ok(&[
        "check",
        "--weight",
        &w,
        "--bias",
        &b,
        "--input-shape",
        "3,7,6",
        "--padding",
        "1",
        "--padding-mode",
        "reflect",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["max_relative_error"].as_f64().unwrap() < 1e-5);
    // apply, float: equals the library's layer
    let x = seq(2 * 3 * 7 * 6, 9);
    let xp = d.npy("x.npy", &[2, 3, 7, 6], &x);
    ok(&[
        "apply",
        "--weight",
        &w,
        "--bias",
        &b,
        "--input",
        &xp,
        "--stride",
        "2",
        "--padding",
        "1",
        "--dtype",
        "f64",
        "-o",
        &d.s("y.npy"),
        "--quiet",
    ]);
    let y = read_array(&d.p("y.npy")).unwrap();
    let conv = expected(&wv, &bv, 2, 1);
    assert_eq!(y.shape, vec![2, 4, 4, 3]);
    let xa = ndarray::Array2::from_shape_vec((2, conv.cols()), x.clone()).unwrap();
    assert_eq!(y.data, conv.forward(xa.view()).unwrap().into_iter().collect::<Vec<_>>());
    // apply, q1.7 with an output cast: the library's FixedConv, bit for bit
    ok(&[
        "apply",
        "--weight",
        &w,
        "--input",
        &xp,
        "--dtype",
        "q1.7",
        "--out-dtype",
        "q1.7",
        "--rounding",
        "floor",
        "--raw",
        "-o",
        &d.s("q.npy"),
        "--quiet",
    ]);
    let q: QFormat = "q1.7".parse().unwrap();
    let g = Geometry::new(&ConvSpec::new(2, 3, 4, [3]).with_bias(false), &[7, 6]).unwrap();
    let fc = FixedConv::new(g, &wv, None, q, q).unwrap();
    let xq = ndarray::Array2::from_shape_vec((2, 3 * 42), fc.quantize_input(&x)).unwrap();
    let expect =
        fc.apply(xq.view(), Accumulation::Full).unwrap().cast(q, "floor".parse().unwrap(), "saturate".parse().unwrap());
    assert_eq!(read_array(&d.p("q.npy")).unwrap().data, expect.raw.iter().map(|&v| v as f64).collect::<Vec<_>>());
    // one sample in, one sample out; narrow accumulator
    let x1 = d.npy("x1.npy", &[3, 7, 6], &x[..3 * 42]);
    ok(&[
        "apply",
        "--weight",
        &w,
        "--input",
        &x1,
        "--dtype",
        "q1.7",
        "--acc-dtype",
        "q2.6",
        "--overflow",
        "wrap",
        "-o",
        &d.s("n.npy"),
        "--quiet",
    ]);
    assert_eq!(read_array(&d.p("n.npy")).unwrap().shape, vec![4, 5, 4]);
    // shape and demo
    assert!(ok(&["shape", "--input-shape", "3,7,6", "Conv2d(3, 4, 3)", "Flatten()"]).contains("80"));
    assert!(ok(&["demo"]).contains("All matrices agree"));
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for sub in ["build", "check", "apply", "svd", "shape", "demo"] {
        let out = ok(&[sub, "--help"]);
        assert!(out.contains("Examples:"), "{sub} --help has no examples");
    }
}

#[test]
fn bad_input_gets_one_clear_line_and_leaves_files_alone() {
    let d = Dir::new();
    let (w, b, _, _) = layer_files(&d);
    std::fs::write(d.p("out.npz"), b"previous output").unwrap();
    std::fs::write(d.p("junk.npy"), b"this is not numpy").unwrap();
    let mut trunc = std::fs::read(d.p("w.npy")).unwrap();
    trunc.truncate(trunc.len() - 10);
    std::fs::write(d.p("trunc.npy"), trunc).unwrap();
    let mut complex = convmat::io::npy_header("<c8", &[2]);
    complex.extend([0u8; 16]);
    std::fs::write(d.p("complex.npy"), complex).unwrap();
    let mut strings = convmat::io::npy_header("<U3", &[1]);
    strings.extend([0u8; 12]);
    std::fs::write(d.p("str.npy"), strings).unwrap();
    let out = d.s("out.npz");
    let build = |extra: &[&str]| {
        let mut v = vec!["build", "--input-shape", "3,7,6", "-o", out.as_str()];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (build(&["--weight", &d.s("missing.npy")]), vec!["missing.npy", "No such file"]),
        (build(&["--weight", &d.s("")]), vec!["weight"]),
        (build(&["--weight", &d.s("trunc.npy")]), vec!["trunc.npy", "truncated"]),
        (build(&["--weight", &d.s("junk.npy")]), vec!["junk.npy", "not a valid .npy"]),
        (build(&["--weight", &d.s("complex.npy")]), vec!["complex.npy", "unsupported dtype"]),
        (build(&["--weight", &d.s("str.npy")]), vec!["str.npy", "unsupported dtype"]),
        (build(&["--weight", &w, "--groups", "2"]), vec!["3 channels but the layer takes 6"]),
        (
            build(&["--weight", &d.npy("w3.npy", &[3, 3, 3, 3], &seq(81, 3)), "--groups", "2"]),
            vec!["out_channels=3 is not divisible by groups=2"],
        ),
        (
            build(&["--weight", &w, "--bias", &d.npy("b3.npy", &[3], &[1.0, 2.0, 3.0])]),
            vec!["bias has 3 values, expected 4"],
        ),
        (build(&["--weight", &w, "--stride", "0"]), vec!["stride must be at least 1, got 0"]),
        (build(&["--weight", &w, "--padding", "-1"]), vec!["padding '-1'"]),
        (build(&["--weight", &w, "--padding", "same", "--stride", "2"]), vec!["padding='same'", "strided"]),
        (
            build(&["--weight", &w, "--padding", "6", "--padding-mode", "reflect"]),
            vec!["reflect", "padding 6", "input size 6"],
        ),
        (build(&["--weight", &w, "--dilation", "4"]), vec!["dilated kernel 9"]),
        (build(&["--weight", &w, "--dtype", "q1.x"]), vec!["--dtype", "'q1.x'", "qI.F"]),
        (build(&["--weight", &w, "--padding-mode", "mirror"]), vec!["'mirror'"]),
        (build(&["--weight", &w, "--rows", "10..5"]), vec!["--rows '10..5'"]),
        (build(&["--weight", &w, "--max-memory", "1K"]), vec!["needs about", "--rows"]),
        (
            vec!["build", "--weight", &w, "--input-shape", "3,7", "-o", &out].into_iter().map(String::from).collect(),
            vec!["has 1 spatial dims", "3 dims"],
        ),
        (
            vec!["build", "--weight", &w, "--input-shape", "3,x,7", "-o", &out].into_iter().map(String::from).collect(),
            vec!["'3,x,7' is not a shape"],
        ),
        (
            vec!["build", "--weight", &w, "--input-shape", "3,7,6", "-o", &d.s("nodir/a.npz")]
                .into_iter()
                .map(String::from)
                .collect(),
            vec!["nodir/a.npz", "No such file"],
        ),
        (
            vec!["build", "--weight", &w, "--input-shape", "3,7,6", "-o", &d.s("a.txt")]
                .into_iter()
                .map(String::from)
                .collect(),
            vec!["a.txt", ".npz"],
        ),
        (
            vec!["apply", "--weight", &w, "--bias", &b, "--input", &d.s("missing.npy"), "-o", &d.s("y.npy")]
                .into_iter()
                .map(String::from)
                .collect(),
            vec!["missing.npy"],
        ),
        (
            vec!["check", "--weight", &w, "--input-shape", "4,7,6"].into_iter().map(String::from).collect(),
            vec!["4 channels", "takes 3"],
        ),
    ];
    for (args, fragments) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bad_in(&d, &args, fragments);
    }
}

#[test]
fn a_successful_write_replaces_the_file_whole() {
    let d = Dir::new();
    let (w, _, _, _) = layer_files(&d);
    std::fs::write(d.p("out.npz"), vec![b'x'; 10_000_000]).unwrap();
    ok(&["build", "--weight", &w, "--input-shape", "3,7,6", "-o", &d.s("out.npz"), "--quiet"]);
    let size = std::fs::metadata(d.p("out.npz")).unwrap().len();
    assert!(size < 100_000, "old bytes survived: {size}");
    assert!(read_npz(&d.p("out.npz"), Some("data")).is_ok());
    assert!(d.listing().iter().all(|f| !f.ends_with(".tmp")), "{:?}", d.listing());
}

#[test]
fn svd_writes_descending_values_and_reports_the_method() {
    let d = Dir::new();
    let w = d.npy("w.npy", &[2, 2, 3, 3], &seq(36, 4));
    // circular: all values by FFT
    let out = ok(&[
        "svd",
        "--weight",
        &w,
        "--input-shape",
        "2,4,4",
        "--padding",
        "1",
        "--padding-mode",
        "circular",
        "--all",
        "-o",
        &d.s("s.npy"),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["method"].as_str(), v["count"].as_u64()), (Some("fft"), Some(32)));
    let s = read_array(&d.p("s.npy")).unwrap().data;
    assert_eq!(s.len(), 32);
    assert!(s.windows(2).all(|p| p[0] >= p[1]));
    // zero padding: the norm by Lanczos, with the circular bound above it
    let out = ok(&["svd", "--weight", &w, "--input-shape", "2,6,6", "--padding", "1", "--norm", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["method"].as_str(), v["start"].as_str()), (Some("lanczos"), Some("symbol")));
    assert!(v["circular_upper_bound"].as_f64().unwrap() >= v["values"][0].as_f64().unwrap());
    // top k by dense SVD agrees with the top of --all
    let out = ok(&[
        "svd",
        "--weight",
        &w,
        "--input-shape",
        "2,6,6",
        "--padding",
        "1",
        "--top",
        "3",
        "--method",
        "dense",
        "--json",
    ]);
    let dense: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!((dense["values"][0].as_f64().unwrap() - v["values"][0].as_f64().unwrap()).abs() < 1e-8);
    // the certified interval holds the dense σ₁, and --bounds gives every σ_j a bound above it
    let out = ok(&[
        "svd",
        "--weight",
        &w,
        "--input-shape",
        "2,6,6",
        "--padding",
        "1",
        "--norm",
        "--tol",
        "1e-6",
        "--bounds",
        "--json",
    ]);
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s1 = dense["values"][0].as_f64().unwrap();
    let (lo, up) = (c["lower"].as_f64().unwrap(), c["upper"].as_f64().unwrap());
    assert!(lo <= s1 * (1.0 + 1e-12) && s1 <= up * (1.0 + 1e-12), "{s1} outside [{lo}, {up}]");
    assert!(["exact", "kato-temple", "interlacing"].contains(&c["certificate"].as_str().unwrap()), "{c}");
    let all = ok(&[
        "svd",
        "--weight",
        &w,
        "--input-shape",
        "2,6,6",
        "--padding",
        "1",
        "--all",
        "--method",
        "dense",
        "--json",
    ]);
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    let bounds = c["upper_bounds"].as_array().unwrap();
    assert_eq!(bounds.len(), 2 * 6 * 6, "one bound per singular value: min(rows, cols)");
    for (b, s) in bounds.iter().zip(all["values"].as_array().unwrap()) {
        assert!(b.as_f64().unwrap() >= s.as_f64().unwrap() - 1e-12 * s1, "bound {b} below {s}");
    }
    // reflect padding: residual-only, no upper bound; --bounds alone refuses it
    let out = ok(&[
        "svd",
        "--weight",
        &w,
        "--input-shape",
        "2,6,6",
        "--padding",
        "1",
        "--padding-mode",
        "reflect",
        "--norm",
        "--tol",
        "1e-4",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((r["certificate"].as_str(), r["upper"].as_f64()), (Some("residual-only"), None));
    let (code, _, err) = convmat(&[
        "svd",
        "--weight",
        &w,
        "--input-shape",
        "2,6,6",
        "--padding",
        "1",
        "--padding-mode",
        "reflect",
        "--bounds",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no interlacing bounds") && err.contains("reflect"), "{err}");
    for top in ["500", "0"] {
        let (code, _, err) = convmat(&["svd", "--weight", &w, "--input-shape", "2,6,6", "--top", top]);
        assert_eq!(code, 2);
        assert!(err.contains(&format!("asked for {top} singular values: ask for 1 to 32")), "{err}");
    }
    let (code, _, err) =
        convmat(&["svd", "--weight", &w, "--input-shape", "2,6,6", "--padding", "1", "--norm", "--method", "fft"]);
    assert_eq!(code, 2);
    assert!(err.contains("FFT method does not apply") && err.contains("zeros"), "{err}");
}

/// `--weights MODEL.onnx --layer NODE`: the node's attributes and the graph's shapes make the layer;
/// the matrix reproduces onnxruntime's output recorded in the ONNX goldens, and `apply` does too.
#[test]
fn build_and_apply_read_an_onnx_node() {
    let d = Dir::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/onnx/tests/golden");
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let case = cases["cases"].as_array().unwrap().iter().find(|c| c["name"] == "conv2d_pads_asym").unwrap();
    let model = dir.join(case["file"].as_str().unwrap()).display().to_string();
    let node = case["node"].as_str().unwrap();
    let floats = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>();
    let (x, y) = (floats(&case["inputs"][0]), floats(&case["outputs"][0]));
    ok(&["build", "--weights", &model, "--layer", node, "-o", &d.s("a.npz"), "--quiet"]);
    let (shape, a) = dense_of_npz(&d.p("a.npz"));
    assert_eq!(shape, vec![y.len(), x.len()]);
    let bias = read_npz(&d.p("a.npz"), Some("bias")).unwrap().data;
    for (r, want) in y.iter().enumerate() {
        let got = (0..x.len()).map(|c| a[r * x.len() + c] * x[c]).sum::<f64>() + bias[r];
        assert!((got - want).abs() < 1e-5, "row {r}: {got} vs onnxruntime {want}");
    }
    let input_shape: Vec<usize> =
        case["input_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let xf = d.npy("x.npy", &input_shape, &x);
    ok(&[
        "apply",
        "--weights",
        &model,
        "--layer",
        node,
        "--input",
        &xf,
        "-o",
        &d.s("y.npy"),
        "--dtype",
        "f64",
        "--quiet",
    ]);
    let got = read_array(&d.p("y.npy")).unwrap().data;
    assert!(got.iter().zip(&y).all(|(g, w)| (g - w).abs() < 1e-5), "{got:?} vs {y:?}");
    // a node that does not exist: one line naming the ones that do
    let (code, _, err) = convmat(&["build", "--weights", &model, "--layer", "convv", "-o", &d.s("b.npz")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("convv") && err.contains("conv"), "{err}");
    assert!(!d.p("b.npz").exists());
    // flags contradict the node's own attributes
    let (code, _, err) =
        convmat(&["build", "--weights", &model, "--layer", node, "--stride", "2", "-o", &d.s("b.npz")]);
    assert_eq!(code, 2);
    assert!(err.contains("comes from the node"), "{err}");
}
