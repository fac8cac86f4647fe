//! What each fuzz target does with its input, shared by the libFuzzer targets (fuzz_targets/*.rs) and
//! the corpus replay test of the normal test suite (tests/fuzz_corpus.rs), so CI checks every committed
//! seed and crash through exactly the entry points that were fuzzed.
//!
//! Every function takes arbitrary bytes and must return without panicking: a reader or parser may
//! reject its input only with an error. The asserts are invariants that hold for every accepted input.
#![allow(dead_code)] // each fuzz target uses one function

use std::path::PathBuf;

use convmat_io::IoError;
use convmat_io::{npz_keys, read_array, read_npz, read_safetensors, read_safetensors_layer, safetensors_layers};
use convmat_numeric::{Overflow, QFormat, Rounding};
use convmat_onnx::Model;
use convmat_shape::{
    parse_bytes, parse_counts, parse_dims, parse_layer, parse_range, parse_tolerance, propagate, split_sequential,
    Geometry, Layer,
};

/// The readers take paths, as the CLI and Python do: each input is written to a file in a directory
/// of this process (`$CONVMAT_FUZZ_DIR` or the temp dir), named `name`.
fn file(name: &str, data: &[u8]) -> PathBuf {
    let dir = std::env::var_os("CONVMAT_FUZZ_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = dir.join(format!("convmat-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("fuzz scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, data).expect("fuzz scratch file");
    path
}

/// `prod(shape)`, for the invariant that a tensor holds exactly that many values.
fn count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n))
}

fn check_tensor(t: &convmat_io::Tensor) {
    assert_eq!(Some(t.data.len()), count(&t.shape), "shape {:?} vs {} values", t.shape, t.data.len());
}

/// `.npy`: header (magic, version, header length, dict) and data, through `read_array`.
pub fn npy(data: &[u8]) {
    if let Ok(t) = read_array(&file("a.npy", data)) {
        check_tensor(&t);
    }
}

/// `.npz` (zip of `.npy`): key listing, the lone-array rule and every key, through the readers.
pub fn npz(data: &[u8]) {
    let path = file("a.npz", data);
    let _ = read_npz(&path, None);
    if let Ok(keys) = npz_keys(&path) {
        for key in keys.iter().take(8) {
            if let Ok(t) = read_npz(&path, Some(key)) {
                check_tensor(&t);
            }
        }
    }
}

/// safetensors: the header (JSON with dtypes, shapes, offsets) and every tensor, through the readers.
pub fn safetensors(data: &[u8]) {
    let path = file("a.safetensors", data);
    // a name that is never there: the error lists every tensor the file has
    let names = match read_safetensors(&path, "\u{0}convmat-fuzz-absent") {
        Err(IoError::Missing { available, .. }) => available,
        _ => Vec::new(),
    };
    for name in names.iter().take(8) {
        if let Ok(t) = read_safetensors(&path, name) {
            check_tensor(&t);
        }
    }
    if let Ok(layers) = safetensors_layers(&path) {
        for layer in layers.iter().take(4) {
            let _ = read_safetensors_layer(&path, layer);
        }
    }
}

/// Layer expressions, one per line, as `convmat shape` takes them; a first line of comma-separated
/// integers is the sample shape pushed through the layers that parse. Small convolutions also get
/// their geometry and tap map walked.
pub fn layer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let input: Option<Vec<usize>> = text
        .lines()
        .next()
        .and_then(|l| l.split(',').map(|d| d.trim().parse().ok()).collect::<Option<Vec<usize>>>())
        .filter(|dims| (1..=6).contains(&dims.len()));
    if input.is_some() {
        lines.next();
    }
    let layers: Vec<Layer> = lines.take(16).filter_map(|l| parse_layer(l).ok()).collect();
    for layer in &layers {
        // what the CLI prints reads back as a layer that prints the same
        let printed = layer.to_string();
        let again = parse_layer(&printed).unwrap_or_else(|e| panic!("{layer:?} prints as `{printed}`: {e}"));
        assert_eq!(again.to_string(), printed, "{layer:?} does not read back");
    }
    let Some(input) = input else { return };
    let _ = propagate(&input, &layers);
    for layer in &layers {
        let Layer::Conv(spec) = layer else { continue };
        let Some(spatial) = input.get(1..).filter(|s| s.len() == spec.rank()) else { continue };
        let Ok(g) = Geometry::new(spec, spatial) else { continue };
        // the tap map's tables grow with the sizes: walk small layers only (the CLI checks its memory
        // estimate before building a matrix)
        let small =
            |v: &[usize]| v.iter().try_fold(spec.kernel_len(), |a, &n| a.checked_mul(n)).is_some_and(|n| n <= 1 << 16);
        if small(g.input_spatial()) && small(g.output_spatial()) {
            let taps = g.tap_map();
            for w in 0..taps.windows_len() {
                taps.for_each_read(w, |_, r| assert!(r.is_none_or(|r| r < taps.grid_len())));
            }
        }
    }
}

/// Fixed-point format strings and the arithmetic on them: `FORMAT [ROUNDING [OVERFLOW [FORMAT2 [numbers...]]]]`,
/// whitespace-separated. Every result must lie in its format's range.
pub fn qformat(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut words = text.split_whitespace();
    let Some(Ok(q)) = words.next().map(str::parse::<QFormat>) else { return };
    let printed = q.to_string();
    assert_eq!(printed.parse::<QFormat>().ok(), Some(q), "{q:?} prints as {printed}");
    let rounding = words.next().and_then(|w| w.parse::<Rounding>().ok()).unwrap_or_default();
    let overflow = words.next().and_then(|w| w.parse::<Overflow>().ok()).unwrap_or_default();
    let other = words.next().and_then(|w| w.parse::<QFormat>().ok()).unwrap_or(q);
    let in_range = |f: QFormat, r: i128| assert!((f.raw_min()..=f.raw_max()).contains(&r), "{r} outside {f}");
    let mut prev = 0i128;
    for w in words.take(16) {
        if let Ok(v) = w.parse::<f64>() {
            let r = q.quantize(v, rounding, overflow);
            in_range(q, r);
            let _ = q.to_f64(r);
            in_range(other, other.requantize(r, q.frac_bits(), rounding, overflow));
            in_range(q, q.add(r, prev, overflow));
            prev = r;
        }
        if let Ok(raw) = w.parse::<i128>() {
            in_range(q, q.overflow(raw, overflow));
            in_range(other, other.requantize(raw, q.frac_bits(), rounding, overflow));
        }
        if let Ok(n) = w.parse::<usize>() {
            let _ = q.sum_of(n);
        }
    }
    if let Ok(p) = q.product(other) {
        assert_eq!(p.frac_bits(), q.frac_bits() + other.frac_bits());
    }
}

/// An ONNX model (protobuf), as `Model::load` reads it (external data is not followed): the summary
/// of its graph and the convolution each node applies.
pub fn onnx(data: &[u8]) {
    let Ok(model) = Model::from_bytes(data, std::path::Path::new("fuzz.onnx"), None) else { return };
    let _ = model.summary(None);
    for name in model.node_names().into_iter().take(8) {
        let _ = model.conv_layer(name, None);
    }
}

/// The typed text of the command line, each line through every parser: `--input-shape` (`parse_dims`),
/// `--stride`/`--dilation`/`--output-padding` (`parse_counts`), `--rows` (`parse_range`),
/// `--max-memory` (`parse_bytes`), `--tol` (`parse_tolerance`), and the whole text as one
/// `Sequential(...)` (`split_sequential`) whose layers go to `parse_layer`. What is accepted must print
/// back to the same value.
pub fn args(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let join = |v: &[usize], sep: &str| v.iter().map(usize::to_string).collect::<Vec<_>>().join(sep);
    for line in text.lines().take(16) {
        if let Ok(dims) = parse_dims(line) {
            assert!(!dims.is_empty() && !dims.contains(&0), "{line:?} gave {dims:?}");
            assert!(count(&dims).is_some(), "{line:?} gave {dims:?}, whose product overflows");
            assert_eq!(parse_dims(&join(&dims, "x")).as_ref(), Ok(&dims), "{line:?}");
        }
        if let Ok(counts) = parse_counts("--stride", line) {
            assert_eq!(parse_counts("--stride", &join(&counts, ",")).as_ref(), Ok(&counts), "{line:?}");
        }
        if let Ok(rows) = parse_range("--rows", line) {
            assert!(rows.start < rows.end, "{line:?} gave {rows:?}");
            let printed = format!("{}..{}", rows.start, rows.end);
            assert_eq!(parse_range("--rows", &printed), Ok(rows), "{line:?}");
        }
        if let Ok(bytes) = parse_bytes("--max-memory", line) {
            assert_eq!(parse_bytes("--max-memory", &bytes.to_string()), Ok(bytes), "{line:?}");
        }
        if let Ok(tol) = parse_tolerance("--tol", line) {
            assert!(tol >= 0.0, "{line:?} gave {tol}");
            assert_eq!(parse_tolerance("--tol", &format!("{tol:e}")), Ok(tol), "{line:?}");
        }
    }
    if let Ok(layers) = split_sequential(&[text]) {
        for layer in layers.iter().take(16) {
            let _ = parse_layer(layer);
        }
    }
}
