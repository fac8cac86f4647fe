//! The one runner of the command-line tests: a temporary directory of real files, and the built binary
//! run on it with its exit code, stdout and stderr. Each `tests/cli*.rs` includes it (`mod common;`).
#![allow(dead_code)] // each test file uses its own part

use std::path::PathBuf;
use std::process::Command;

use convmat::io::{write_npy, AtomicFile};

/// A temporary directory that disappears with the test.
pub struct Dir(pub tempfile::TempDir);

impl Dir {
    pub fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }
    /// A path inside the directory.
    pub fn p(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    /// The same, as a command-line argument.
    pub fn s(&self, name: &str) -> String {
        self.p(name).display().to_string()
    }
    /// Writes a float64 `.npy` of `shape` and returns its path.
    pub fn npy(&self, name: &str, shape: &[usize], data: &[f64]) -> String {
        let mut f = AtomicFile::create(&self.p(name)).unwrap();
        write_npy(f.writer(), shape, data.iter().copied()).unwrap();
        f.commit().unwrap();
        self.s(name)
    }
    /// The directory's file names, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.0.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        v.sort();
        v
    }
}

/// Runs the built `convmat` with `args`: exit code, stdout, stderr.
pub fn convmat(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_convmat")).args(args).env_remove("RUST_BACKTRACE").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Runs `convmat` and expects success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = convmat(args);
    assert_eq!(code, 0, "{args:?} failed: {err}");
    out
}

/// Runs `convmat` and expects bad input's answer: exit code 2, nothing on stdout, one line on stderr
/// holding every fragment, no panic.
pub fn bad(args: &[&str], fragments: &[&str]) {
    let (code, out, err) = convmat(args);
    assert_eq!(code, 2, "{args:?}: exit {code}, stderr {err}");
    assert!(out.is_empty(), "{args:?}: stdout {out}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{args:?}: {err}");
    for f in fragments {
        assert!(err.contains(f), "{args:?}: `{}` lacks `{f}`", err.trim_end());
    }
}

/// [`bad`], and the directory exactly as before: no output, no temporary file, an existing `out.npz`
/// intact.
pub fn bad_in(d: &Dir, args: &[&str], fragments: &[&str]) {
    let before = d.listing();
    let old = std::fs::read(d.p("out.npz")).ok();
    bad(args, fragments);
    assert_eq!(d.listing(), before, "{args:?} changed the directory");
    assert_eq!(std::fs::read(d.p("out.npz")).ok(), old, "{args:?} touched the existing output");
}
