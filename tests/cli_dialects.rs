//! `convmat apply` in every rounding and overflow dialect, on documented vectors: Vitis HLS's
//! `ap_fixed<3,2,·,AP_SAT>` examples and hls4ml #68, through a 1x1 identity layer so the cast is all
//! that acts.

use convmat::io::read_array;

mod common;
use common::{bad_in, ok, Dir};

/// `convmat apply` of the identity Conv1d(1, 1, 1) to `x` with `flags`; the real values out.
fn identity(d: &Dir, x: &[f64], flags: &[&str]) -> Vec<f64> {
    let w = d.npy("w.npy", &[1, 1, 1], &[1.0]);
    let xp = d.npy("x.npy", &[1, 1, x.len()], x);
    let out = d.s("y.npy");
    ok(&[&["apply", "--weight", &w, "--input", &xp, "-o", &out, "--quiet"][..], flags].concat());
    read_array(&d.p("y.npy")).unwrap().data
}

#[test]
fn vitis_examples_through_apply() {
    let d = Dir::new();
    // UG1399: ap_fixed<3,2,Q,AP_SAT> of 1.25 and -1.25 (exact in q4.4, and the weight 1 is exact)
    for (q, expect) in [
        ("AP_RND", [1.5, -1.0]),
        ("AP_RND_ZERO", [1.0, -1.0]),
        ("AP_RND_MIN_INF", [1.0, -1.5]),
        ("AP_RND_INF", [1.5, -1.5]),
    ] {
        let ty = format!("ap_fixed<3,2,{q},AP_SAT>");
        assert_eq!(identity(&d, &[1.25, -1.25], &["--dtype", "q4.4", "--out-dtype", &ty]), expect, "{ty}");
        // the same modes as flags on a plain type, and a flag that agrees with the type
        let flags = ["--dtype", "q4.4", "--out-dtype", "q2.1", "--rounding", q, "--overflow", "AP_SAT"];
        assert_eq!(identity(&d, &[1.25, -1.25], &flags), expect, "{q} as a flag");
        let agree = ["--dtype", "q4.4", "--out-dtype", &ty, "--rounding", q];
        assert_eq!(identity(&d, &[1.25, -1.25], &agree), expect, "{ty} --rounding {q}");
    }
    // ties toward -inf and symmetric saturation: -2.25 saturates to -1.5, not -2
    let flags = ["--dtype", "q4.4", "--out-dtype", "q2.1", "--rounding", "AP_RND_MIN_INF", "--overflow", "AP_SAT_SYM"];
    assert_eq!(identity(&d, &[1.25, -1.25, -2.25], &flags), [1.0, -1.5, -1.5]);
}

#[test]
fn hls4ml_issue_68_through_apply() {
    let d = Dir::new();
    // 8.99 in q8.8 is 8.98828125; ap_fixed<10,4> truncates and wraps it to -7.015625
    assert_eq!(identity(&d, &[8.99], &["--dtype", "q8.8", "--out-dtype", "ap_fixed<10,4>"]), [-7.015625]);
    let sat = ["--dtype", "q8.8", "--out-dtype", "ap_fixed<10,4,AP_TRN_ZERO,AP_SAT>"];
    assert_eq!(identity(&d, &[8.99], &sat), [7.984375]);
    // an ap_fixed input type quantizes the inputs with its own modes (AP_TRN, AP_WRAP), as HLS does
    assert_eq!(identity(&d, &[8.99], &["--dtype", "ap_fixed<10,4>", "--raw"]), [-449.0 * 64.0]);
    // and MATLAB's constructor (Nearest, Saturate) for a type without modes
    assert_eq!(identity(&d, &[8.99], &["--dtype", "numerictype(1,10,6)", "--raw"]), [511.0 * 64.0]);
}

#[test]
fn dialect_errors_get_one_line() {
    let d = Dir::new();
    let w = d.npy("w.npy", &[1, 1, 1], &[1.0]);
    let x = d.npy("x.npy", &[1, 1, 2], &[0.5, 0.25]);
    let out = d.s("out.npy");
    let apply = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> =
            ["apply", "--weight", &w, "--input", &x, "-o", &out, "--dtype", "q4.4"].map(String::from).to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    for (extra, fragments) in [
        (
            &["--out-dtype", "ap_fixed<8,3,AP_RND,AP_SAT>", "--rounding", "floor"][..],
            &["rounding 'floor' conflicts with the rounding 'nearest'", "ap_fixed<8,3,AP_RND,AP_SAT>"][..],
        ),
        (&["--out-dtype", "ap_fixed<8,3>", "--overflow", "saturate"], &["overflow 'saturate' conflicts", "'wrap'"]),
        (
            &["--out-dtype", "q4.4", "--rounding", "HALF_SIDEWAYS"],
            &["invalid rounding 'HALF_SIDEWAYS'", "AP_RND_MIN_INF"],
        ),
        (&["--out-dtype", "q4.4", "--overflow", "clip"], &["invalid overflow 'clip'", "AP_WRAP_SM"]),
        (&["--out-dtype", "ap_fixed<0,0>"], &["--out-dtype 'ap_fixed<0,0>'", "word length 0"]),
        (&["--out-dtype", "ap_ufixed<8,3,AP_RND,AP_WRAP_SM>"], &["AP_WRAP_SM"]),
        (&["--out-dtype", "uq4.4", "--overflow", "wrap_sm"], &["wrap_sm"]),
        (&["--acc-dtype", "ap_fixed<8,3,AP_CEIL>"], &["--acc-dtype", "'AP_CEIL'"]),
    ] {
        let args = apply(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bad_in(&d, &args, fragments);
    }
}
