//! Hostile values for every size, range and shape flag of every subcommand (issue 16): huge, negative,
//! overflowing and empty. Each must end in exit code 2 with one line naming the value, never a panic,
//! a wrapped number or an allocation beyond the memory there is. The binary is the dev build, with
//! overflow checks on.

mod common;

use common::{bad, Dir};

const HUGE: &str = "99999999999999999999"; // past u64
const MAX: &str = "18446744073709551615"; // usize::MAX: parses, then overflows any arithmetic

/// The layer of tests/cli.rs's cases: Conv2d(3, 4, 3) on 3x7x6.
fn weight(d: &Dir) -> String {
    d.npy("w.npy", &[4, 3, 3, 3], &vec![0.5; 4 * 3 * 9])
}

/// `convmat SUBCOMMAND --weight W --input-shape 3,7,6 EXTRA...` expecting a clean error with `fragments`.
fn layer_bad(d: &Dir, sub: &str, extra: &[&str], fragments: &[&str]) {
    let (w, out) = (weight(d), d.s(if sub == "spy" { "out.png" } else { "out.npz" }));
    let mut args = vec![sub, "--weight", &w, "--input-shape", "3,7,6"];
    args.extend_from_slice(extra);
    if sub == "build" || sub == "spy" {
        args.extend_from_slice(&["-o", &out]);
    }
    bad(&args, fragments);
    assert_eq!(d.listing(), ["w.npy"], "{args:?} wrote a file");
}

#[test]
fn input_shapes() {
    let d = Dir::new();
    let w = weight(&d);
    let onnx = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/onnx/tests/golden/conv2d_group.onnx");
    let out = d.s("out.npz");
    let cases: &[(&str, &[&str])] = &[
        (HUGE, &["is not a shape", "larger than 18446744073709551615"]),
        ("3,4294967296,4294967296", &["product of the dimensions"]),
        ("1,,2", &["part 2 is empty"]),
        ("3,7,", &["part 3 is empty"]),
        ("", &["part 1 is empty"]),
        ("3,0,6", &["part 2 is 0"]),
        ("3,-1,6", &["'-1' is negative"]),
    ];
    for (shape, fragments) in cases {
        bad(&["build", "--weight", &w, "--input-shape", shape, "-o", &out], fragments);
        bad(&["shape", "--input-shape", shape, "Conv2d(3, 4, 3)"], fragments);
        bad(&["onnx", onnx, "--input-shape", shape], fragments);
        bad(&["export", onnx, "-o", &d.s("blocks"), "--input-shape", shape], fragments);
    }
    // a shape that parses but whose matrix does not fit: refused before allocating
    bad(
        &["build", "--weight", &w, "--input-shape", "3,100000,100000", "--max-memory", "1G", "-o", &out],
        &["needs about", "--max-memory"],
    );
    assert_eq!(d.listing(), ["w.npy"]);
}

#[test]
fn per_dimension_flags() {
    let d = Dir::new();
    for flag in ["--stride", "--dilation", "--output-padding"] {
        let valid = "non-negative integers";
        layer_bad(&d, "build", &[flag, HUGE], &[&format!("invalid {flag} '{HUGE}'"), "larger than", valid]);
        layer_bad(&d, "build", &[&format!("{flag}=-1")], &[&format!("invalid {flag} '-1'"), "negative"]);
        layer_bad(&d, "build", &[flag, "1,,2"], &[&format!("invalid {flag} '1,,2'"), "part 2 is empty"]);
        layer_bad(&d, "build", &[flag, ""], &[&format!("invalid {flag} ''"), "part 1 is empty"]);
    }
    // usize::MAX parses, then must not overflow the geometry
    layer_bad(&d, "build", &["--dilation", MAX], &["dimension 0: the dilated kernel overflows"]);
    layer_bad(&d, "build", &["--padding", MAX], &["dimension 0: the padded input (input + padding) overflows"]);
    layer_bad(&d, "build", &["--padding", "4294967296"], &["more elements than fit"]);
    layer_bad(&d, "build", &["--output-padding", MAX], &["transposed convolutions only"]);
    layer_bad(&d, "build", &["--padding", HUGE], &["invalid padding"]);
    layer_bad(&d, "build", &["--padding=-1"], &["invalid padding '-1'"]);
    layer_bad(&d, "build", &["--padding", "1,,2"], &["invalid padding '1,,2'"]);
    // groups: the channel count groups × weight dim 1 overflowed (a panic before)
    layer_bad(&d, "build", &["--groups", MAX], &["invalid groups 18446744073709551615"]);
    layer_bad(&d, "build", &["--groups", HUGE], &["--groups", "too large"]);
    layer_bad(&d, "build", &["--groups", "0"], &["groups must be at least 1"]);
    // the same flags reach check, svd, spy and apply through one resolver
    layer_bad(&d, "check", &["--stride", HUGE], &["invalid --stride"]);
    layer_bad(&d, "svd", &["--norm", "--groups", MAX], &["invalid groups"]);
    layer_bad(&d, "spy", &["--dilation=-1"], &["invalid --dilation '-1'"]);
}

#[test]
fn rows_and_memory() {
    let d = Dir::new();
    for (rows, fragment) in [
        ("0..0", "R0 = 0 is not below R1 = 0"),
        ("10..5", "R0 = 10 is not below R1 = 5"),
        ("3:1", "no '..'"),
        ("", "no '..'"),
        ("..5", "part 1 is empty"),
        ("0..99999999999999999999", "larger than"),
    ] {
        layer_bad(&d, "build", &["--rows", rows], &[&format!("invalid --rows '{rows}'"), fragment]);
    }
    layer_bad(&d, "build", &["--rows", "100..200"], &["rows 100..200 are out of range", "80 rows"]);
    // a shard past the matrix that the estimate sees first
    layer_bad(&d, "build", &["--rows", &format!("0..{MAX}"), "--max-memory", "1G"], &["needs about"]);
    for (size, fragment) in [
        ("1e400", "larger than 18446744073709551615"),
        ("99999999999999999999G", "larger than"),
        ("16777216T", "larger than"),
        ("inf", "larger than"),
        ("nan", "not a number"),
        ("", "part 1 is empty"),
        ("8Q", "not a number"),
    ] {
        layer_bad(&d, "build", &["--max-memory", size], &[&format!("invalid --max-memory '{size}'"), fragment]);
    }
    layer_bad(&d, "build", &["--max-memory=-1"], &["invalid --max-memory '-1'", "negative"]);
}

#[test]
fn counts_and_tolerances() {
    let d = Dir::new();
    layer_bad(&d, "check", &["--samples", MAX], &["random inputs", "more than", "memory available"]);
    layer_bad(&d, "check", &["--samples", HUGE], &["--samples", "too large"]);
    layer_bad(&d, "check", &["--tol", "nan"], &["invalid --tol 'nan'", "not a number"]);
    layer_bad(&d, "check", &["--tol=-1"], &["invalid --tol '-1'", "negative"]);
    layer_bad(&d, "check", &["--seed", HUGE], &["--seed", "too large"]);
    layer_bad(&d, "svd", &["--top", MAX], &["asked for 18446744073709551615 singular values", "1 to 80"]);
    layer_bad(&d, "svd", &["--top", "0"], &["asked for 0 singular values"]);
    layer_bad(&d, "svd", &["--top", HUGE], &["--top", "too large"]);
    for tol in ["nan", "inf", "0", "1e400"] {
        layer_bad(&d, "svd", &["--norm", "--tol", tol], &["invalid --tol", "between 0 and 1"]);
    }
    // matrix-free, but its vectors (3 x 10^10 columns) do not fit: refused before allocating
    let w = weight(&d);
    for what in [&["--norm"][..], &["--top", "3"], &["--bounds"]] {
        let mut args = vec!["svd", "--weight", &w, "--input-shape", "3,100000,100000"];
        args.extend_from_slice(what);
        bad(&args, &["vectors of the", "more than", "memory available"]);
    }
    // a padding whose output (10^11 values from a 3x7x6 input) does not fit: refused before allocating
    layer_bad(&d, "check", &["--padding", "100000"], &["the 160007200080 x 126 matrix", "memory available"]);
    let e = Dir::new();
    let x = e.npy("x.npy", &[2, 3, 7, 6], &vec![0.25; 2 * 3 * 7 * 6]);
    for dtype in ["f32", "q1.7"] {
        let y = e.s("y.npy");
        let args = ["apply", "--weight", &w, "--input", &x, "-o", &y, "--padding", "100000", "--dtype", dtype];
        bad(&args, &["a batch of 2 through the 160007200080 x 126 operator", "memory available"]);
        assert_eq!(e.listing(), ["x.npy"]);
    }
    for size in ["0", "1x0", "99999x99999", HUGE, MAX, "5x", ""] {
        layer_bad(&d, "spy", &["--size", size], &["--size"]);
    }
    for dtype in ["q2147483647.1", "q1.2147483647", "q99999999999999999999.1", "q200.200", ""] {
        layer_bad(&d, "build", &["--dtype", dtype], &["--dtype"]);
    }
}

#[test]
fn spy_refuses_a_picture_it_would_take_hours_to_draw() {
    // 3 -> 3 channels 3x3 on 100000 x 100000: 2.4e12 stored entries, each of which spy would visit
    let d = Dir::new();
    let w = weight(&d);
    let out = d.s("out.png");
    bad(&["spy", "--weight", &w, "--input-shape", "3,100000,100000", "-o", &out], &["stored entries", "smaller input"]);
    assert_eq!(d.listing(), ["w.npy"]);
}
