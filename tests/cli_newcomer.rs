//! What a newcomer's first hour trips over, run as the user runs it: a pipe closed by `head`, a build
//! killed while writing, and the mistakes that get an answer saying what was probably meant.

use std::io::Read;
use std::process::{Command, Stdio};

mod common;
use common::{bad, convmat, Dir};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_convmat"));
    c.env_remove("RUST_BACKTRACE");
    c
}

/// A 16->16 3x3 weight of ones (its values do not matter here).
fn weight(d: &Dir) -> String {
    d.npy("w.npy", &[16, 16, 3, 3], &vec![1.0; 16 * 16 * 9])
}

#[test]
fn a_closed_stdout_ends_every_printing_route_quietly() {
    let d = Dir::new();
    let w = weight(&d);
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/onnx/tests/golden/torch_wide.onnx");
    // println! (text), serde printing (--json), a model's listing: each into a pipe already closed
    let runs: [&[&str]; 5] = [
        &["shape", "--input-shape", "1,32,32", "Conv2d(1, 6, 5)", "MaxPool2d(2)"],
        &["svd", "--weight", &w, "--input-shape", "16,8,8", "--padding", "1", "--all", "--json"],
        &["onnx", model],
        &["onnx", model, "--json"],
        &["demo"],
    ];
    for args in runs {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // the reader is gone before the first write: EPIPE every time, no race
        let o = bin().args(args).stdout(writer).stderr(Stdio::piped()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} printed on stderr: {err}");
    }
    // `| head -c 10`: the reader takes a little and leaves
    let mut child = bin()
        .args(["svd", "--weight", &w, "--input-shape", "16,8,8", "--padding", "1", "--all", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(&head[..2], b"{\"");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The files a process has open inside `dir` (Linux `/proc/PID/fd`).
#[cfg(target_os = "linux")]
fn open_in(pid: u32, dir: &std::path::Path) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return vec![] };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|p| p.starts_with(dir))
        .map(|p| p.display().to_string())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn a_build_killed_while_writing_leaves_nothing() {
    let d = Dir::new();
    let w = weight(&d);
    d.npy("out.mtx", &[1], &[1.0]); // an existing output, to stay intact
    let old = std::fs::read(d.p("out.mtx")).unwrap();
    let before = d.listing();
    // 9.4 M entries as Matrix Market text (~240 MB): seconds of writing to catch it in
    let mut child = bin()
        .args(["build", "--weight", &w, "--input-shape", "16,64,64", "--padding", "1", "-o", &d.s("out.mtx")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = d.0.path().canonicalize().unwrap();
    let mut writing = vec![];
    while writing.is_empty() && child.try_wait().unwrap().is_none() {
        writing = open_in(child.id(), &dir).into_iter().filter(|p| !p.ends_with(".npy")).collect();
    }
    assert!(!writing.is_empty(), "the build ended before it was seen writing");
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    assert_eq!(d.listing(), before, "a killed build left {writing:?} behind");
    assert_eq!(std::fs::read(d.p("out.mtx")).unwrap(), old);
}

#[test]
fn a_missing_output_folder_is_named() {
    let d = Dir::new();
    let w = weight(&d);
    let png = d.s("docs/spy.png");
    let folder = format!("the folder '{}' does not exist", d.s("docs"));
    bad(&["spy", "--weight", &w, "--input-shape", "16,8,8", "-o", &png], &[&folder]);
    bad(&["build", "--weight", &w, "--input-shape", "16,8,8", "-o", &d.s("nodir/a.npz")], &["the folder", "nodir"]);
}

#[test]
fn an_input_shape_without_channels_or_with_the_batch_says_what_was_meant() {
    let d = Dir::new();
    let w = d.npy("w3.npy", &[16, 3, 3, 3], &vec![1.0; 16 * 27]);
    for (shape, what) in [("32,32", "lacks the channel dimension"), ("1,3,32,32", "includes the batch dimension")] {
        let args = ["build", "--weight", &w, "--input-shape", shape, "-o", "a.npz"];
        bad(&args, &[what, "(C, *spatial) of one sample", "probably [3, 32, 32]"]);
    }
}

#[test]
fn a_weight_in_another_layout_gets_the_reading_that_fits() {
    let d = Dir::new();
    // ConvTranspose2d(3, 16, 3) weight (C_in, C_out, k, k) taken as a convolution
    let wt = d.npy("wt.npy", &[3, 16, 3, 3], &vec![1.0; 3 * 16 * 9]);
    let shape = "3,8,8";
    bad(&["build", "--weight", &wt, "--input-shape", shape, "-o", "a.npz"], &["transposed=True", "--transposed"]);
    let (code, ..) = convmat(&["build", "--weight", &wt, "--input-shape", shape, "--transposed", "-o", &d.s("a.npz")]);
    assert_eq!(code, 0);
    // TensorFlow (kh, kw, C_in, C_out) = (5, 5, 3, 16) on 3x4x4: impossible as PyTorch's reading
    let tf = d.npy("tf.npy", &[5, 5, 3, 16], &vec![1.0; 5 * 5 * 3 * 16]);
    bad(
        &["build", "--weight", &tf, "--input-shape", "3,6,6", "-o", "a.npz"],
        &["TensorFlow", "w.transpose(3, 2, 0, 1)"],
    );
}
