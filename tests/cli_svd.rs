//! `convmat svd` as a long run meets a user: Ctrl-C stops it cleanly (exit 130, one line, no file).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Dir;

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_long_svd_with_130_and_writes_nothing() {
    let d = Dir::new();
    // 64 -> 64 3x3 on 56x56: the top 300 at a residual of 1e-14 takes minutes
    let n = 64 * 64 * 9;
    let w: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5).collect();
    let w = d.npy("w.npy", &[64, 64, 3, 3], &w);
    let out = d.s("S.npy");
    let args = ["svd", "--weight", &w, "--input-shape", "64,56,56", "--padding", "1", "--top", "300", "--tol", "1e-14"];
    let child = Command::new(env!("CARGO_BIN_EXE_convmat"))
        .args(args)
        .args(["-o", &out])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // let it read the weight and start iterating, then press Ctrl-C
    std::thread::sleep(Duration::from_secs(3));
    let sent = Instant::now();
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let result = child.wait_with_output().unwrap();
    let waited = sent.elapsed();
    let err = String::from_utf8(result.stderr).unwrap();
    assert_eq!(result.status.code(), Some(130), "stderr: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
    assert!(result.stdout.is_empty());
    assert_eq!(d.listing(), vec!["w.npy"], "no output file, no temporary left");
    // stopped between steps: a step of this layer takes well under a second, even unoptimised
    assert!(waited < Duration::from_secs(20), "took {waited:?} to stop");
}
