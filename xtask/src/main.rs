//! `cargo xtask`: project automation.
//!
//! - `cargo xtask golden`: regenerate the golden files under `tests/golden/` with the Python oracles in
//!   `xtask/oracle/` (PyTorch, NumPy/SciPy, apytypes), then run the golden tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("golden") => golden(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask golden");
            bail!("unknown or missing task");
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

/// The Python that runs the oracles: `$CONVMAT_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("CONVMAT_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn golden(_args: &[String]) -> Result<()> {
    let root = root();
    let py = python();
    let probe = Command::new(&py).args(["-c", "import torch, numpy, scipy"]).status();
    if !matches!(probe, Ok(s) if s.success()) {
        bail!(
            "the oracles need PyTorch, NumPy and SciPy in `{py}`: create a venv outside the repo \
             (python3 -m venv ../venv && ../venv/bin/pip install torch numpy scipy apytypes fxpmath) \
             and run `CONVMAT_PYTHON=../venv/bin/python cargo xtask golden`"
        );
    }
    let out = root.join("tests/golden/shapes.json");
    let status = Command::new(&py)
        .arg(root.join("xtask/oracle/shapes.py"))
        .arg(&out)
        .status()
        .with_context(|| format!("running {py}"))?;
    if !status.success() {
        bail!("xtask/oracle/shapes.py failed");
    }
    println!("wrote {}", out.display());
    let status = Command::new("cargo").args(["test", "--test", "golden_shapes"]).current_dir(&root).status()?;
    if !status.success() {
        bail!("golden tests failed");
    }
    Ok(())
}
