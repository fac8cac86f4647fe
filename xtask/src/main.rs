//! `cargo xtask`: project automation.
//!
//! - `cargo xtask golden`: regenerate `tests/golden/cases/*.json` from `tests/golden/catalog.json` with
//!   the Python oracles in `xtask/oracle/` (PyTorch, NumPy/SciPy), print the table of cases, then run the
//!   golden tests. Needs a Python with torch, numpy and scipy (`CONVMAT_PYTHON`, default `python3`).
//! - `cargo xtask golden --check`: without Python, fail if any golden file is missing, stale (its
//!   recorded case differs from the catalog's) or orphaned, naming the files and the command to run.
//! - `cargo xtask test`: every test, the README's one command: `cargo test --workspace`, the golden
//!   check, then the Python package (crates/python) built with maturin into a venv under
//!   `target/python-venv` (numpy, scipy, pytest, hypothesis, maturin and `dask[distributed]` from the package index; never
//!   torch) and its pytest suite. `CONVMAT_PYTHON_BASE` names the interpreter that creates the venv
//!   (default `python3`).
//! - `cargo xtask bench-peers`: run the criterion bench `peers` and the Python peers in
//!   `xtask/oracle/peers/` on the same layers, one after the other, and print the ratio table README shows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["golden"] => golden(),
        ["golden", "--check"] => check().map(|n| println!("golden files: all {n} cases present and fresh")),
        ["bench-peers"] => bench_peers(),
        ["test"] => test(),
        _ => bail!("usage: cargo xtask golden [--check] | cargo xtask test | cargo xtask bench-peers"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Names the missing, stale and orphaned golden files; returns the number of cases when all is well.
fn check() -> Result<usize> {
    let dir = root().join("tests/golden");
    let catalog = read_json(&dir.join("catalog.json"))?;
    let cases = catalog["cases"].as_array().context("catalog.json has no `cases` list")?;
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().context("a case without a name")?;
        if !names.insert(name.to_string()) {
            problems.push(format!("duplicate case name {name}"));
        }
        let path = dir.join("cases").join(format!("{name}.json"));
        match read_json(&path) {
            Err(_) => problems.push(format!("missing: {}", path.display())),
            Ok(doc) if &doc["case"] != case => problems.push(format!("stale: {}", path.display())),
            Ok(_) => {}
        }
    }
    for entry in std::fs::read_dir(dir.join("cases"))? {
        let path = entry?.path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if path.extension().is_some_and(|e| e == "json") && !names.contains(&stem) {
            problems.push(format!("orphaned (not in catalog.json): {}", path.display()));
        }
    }
    if !problems.is_empty() {
        bail!(
            "golden files do not match tests/golden/catalog.json:\n  {}\nrun `CONVMAT_PYTHON=/path/to/venv/bin/python cargo xtask golden` to regenerate them",
            problems.join("\n  ")
        );
    }
    Ok(cases.len())
}

fn run(what: &str, cmd: &mut Command) -> Result<()> {
    println!("\n== {what}");
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The Python packages the tests need, from the package index (never torch: too large for CI).
/// `dask[distributed]` (`convmat[dask]`'s extra) installs in about 11 s; `onnx`, `omlt==1.2.2`, `pyomo` and
/// `highspy` (test_lower.py's MILP proofs, about 25 s of tests) in about 17 s.
const PYTHON_TEST_DEPS: &[&str] = &[
    "numpy",
    "scipy",
    "pytest",
    "hypothesis",
    "maturin>=1.9,<2",
    "dask[distributed]",
    "onnx",
    "omlt==1.2.2",
    "pyomo",
    "highspy",
];

fn test() -> Result<()> {
    let root = root();
    run("cargo test --workspace", Command::new(env!("CARGO")).args(["test", "--workspace"]).current_dir(&root))?;
    println!("\n== golden files");
    println!("golden files: all {} cases present and fresh", check()?);
    let venv = root.join("target/python-venv");
    let bin = venv.join("bin");
    let py = bin.join("python");
    if !py.exists() {
        let base = std::env::var("CONVMAT_PYTHON_BASE").unwrap_or_else(|_| "python3".into());
        run("python venv", Command::new(&base).args(["-m", "venv"]).arg(&venv))?;
    }
    let probe =
        Command::new(&py).args(["-c", "import numpy, scipy, pytest, hypothesis, maturin, dask.distributed"]).output();
    if !matches!(probe, Ok(o) if o.status.success()) {
        run(
            "pip install (Python test dependencies)",
            Command::new(&py).args(["-m", "pip", "install", "--quiet"]).args(PYTHON_TEST_DEPS),
        )?;
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // --release: the extension shares the release build of `cargo run --release -- demo` (the root crate
    // names the features pyo3 unifies, see Cargo.toml), so after the demo only pyo3 and the bindings
    // compile; a debug extension would rebuild every workspace crate a second time in the dev profile.
    run(
        "maturin develop --release (crates/python into target/python-venv)",
        Command::new(bin.join("maturin"))
            .args(["develop", "--release", "--quiet", "--manifest-path", "crates/python/Cargo.toml"])
            .env("VIRTUAL_ENV", &venv)
            .env("PATH", &path)
            .current_dir(&root),
    )?;
    run(
        "pytest crates/python/tests",
        Command::new(&py).args(["-m", "pytest", "-q", "crates/python/tests"]).current_dir(&root),
    )?;
    println!("\nall tests passed");
    Ok(())
}

fn golden() -> Result<()> {
    let root = root();
    let py = std::env::var("CONVMAT_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&py).args(["-c", "import torch, numpy, scipy, apytypes, safetensors"]).status();
    if !matches!(probe, Ok(s) if s.success()) {
        bail!(
            "the oracles need PyTorch, NumPy, SciPy, apytypes and safetensors in `{py}`: create a venv \
             (python3 -m venv target/oracle-venv && target/oracle-venv/bin/pip install torch numpy scipy \
             apytypes fxpmath safetensors) and run `CONVMAT_PYTHON=target/oracle-venv/bin/python cargo xtask golden`"
        );
    }
    // orphans are removed so the directory mirrors the catalog
    let catalog = read_json(&root.join("tests/golden/catalog.json"))?;
    let names: BTreeSet<String> = catalog["cases"]
        .as_array()
        .context("catalog.json has no `cases` list")?
        .iter()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    let cases_dir = root.join("tests/golden/cases");
    std::fs::create_dir_all(&cases_dir)?;
    for entry in std::fs::read_dir(&cases_dir)? {
        let path = entry?.path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if !names.contains(stem) {
            std::fs::remove_file(&path)?;
        }
    }
    let status = Command::new(&py).arg(root.join("xtask/oracle/golden.py")).arg(&root).status()?;
    if !status.success() {
        bail!("xtask/oracle/golden.py failed");
    }
    let n = check()?;
    println!("{:<48} {:<12} {:<28} {:>8}", "case", "kind", "oracle", "bytes");
    for name in &names {
        let path = cases_dir.join(format!("{name}.json"));
        let doc = read_json(&path)?;
        let bytes = std::fs::metadata(&path)?.len();
        println!(
            "{:<48} {:<12} {:<28} {:>8}",
            name,
            doc["case"]["kind"].as_str().unwrap_or("?"),
            doc["oracle"].as_str().unwrap_or("?"),
            bytes
        );
    }
    println!("{n} cases; now checking convmat against them");
    // files written by the CLI must load in SciPy/NumPy and reproduce PyTorch
    let status =
        Command::new(env!("CARGO")).args(["build", "--release", "--bin", "convmat"]).current_dir(&root).status()?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let status = Command::new(&py)
        .arg(root.join("xtask/oracle/cli_roundtrip.py"))
        .arg(root.join("target/release/convmat"))
        .status()?;
    if !status.success() {
        bail!("files written by convmat build do not reproduce PyTorch (xtask/oracle/cli_roundtrip.py)");
    }
    let status = Command::new(env!("CARGO")).args(["test", "--test", "golden"]).current_dir(&root).status()?;
    if !status.success() {
        bail!("convmat disagrees with some golden cases (see above)");
    }
    Ok(())
}

/// (case, nnz-bearing peers to run, dense peers to run), as named in bench_peers.py.
const PEER_CASES: &[(&str, &[&str], &[&str])] = &[
    ("cifar_in", &["numpy_csr", "seed_c2s"], &["torch_identity", "seed_affine"]),
    ("lenet2", &["numpy_csr", "seed_c2s"], &["torch_identity", "seed_affine"]),
    ("cifar_mid", &["numpy_csr", "seed_c2s"], &[]),
    ("resnet_s2", &["numpy_csr", "seed_c2s"], &[]),
    ("resnet_56", &["numpy_csr", "seed_c2s"], &[]),
];

/// Median seconds of a criterion benchmark, from its estimates file.
fn criterion_median(root: &Path, group: &str, id: &str) -> Result<f64> {
    let path = root.join("target/criterion").join(group).join(id).join("new/estimates.json");
    let v = read_json(&path)?;
    v["median"]["point_estimate"].as_f64().map(|ns| ns / 1e9).context("no median in criterion estimates")
}

/// Seconds one peer takes (bench_peers.py prints `builder case seconds nnz nnz_per_s peak_rss_mb`).
fn peer_seconds(py: &str, peers: &Path, builder: &str, case: &str) -> Option<(f64, u64)> {
    let out =
        Command::new(py).arg(peers.join("bench_peers.py")).args([builder, case]).current_dir(peers).output().ok()?;
    let line = String::from_utf8_lossy(&out.stdout).lines().last()?.to_string();
    let f: Vec<&str> = line.split_whitespace().collect();
    Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

fn bench_peers() -> Result<()> {
    let root = root();
    let peers = root.join("xtask/oracle/peers");
    let py = std::env::var("CONVMAT_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(env!("CARGO"))
        .args(["bench", "--bench", "peers", "--", "--noplot"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("cargo bench --bench peers failed");
    }
    println!("\nCSR f32 build time, median of 10 (convmat) vs one in-process run (Python peers), same machine, one after the other:\n");
    println!("| layer | nnz | convmat | nnz/s | numpy_csr | ratio | seed_c2s | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (case, sparse, _) in PEER_CASES {
        let ours = criterion_median(&root, "peers_csr", case)?;
        let mut cells = Vec::new();
        let mut nnz = 0;
        for b in *sparse {
            match peer_seconds(&py, &peers, b, case) {
                Some((s, n)) => {
                    // numpy_csr (listed first) stores exactly A; seed_c2s also stores padding and bias
                    if nnz == 0 {
                        nnz = n;
                    }
                    cells.push(format!("{s:.3} s | {:.0}x", s / ours));
                }
                None => cells.push("failed | -".into()),
            }
        }
        println!("| {case} | {nnz} | {:.4} s | {:.2e} | {} |", ours, nnz as f64 / ours, cells.join(" | "));
    }
    println!("\nDense f32 build time:\n");
    println!("| layer | convmat | torch_identity | ratio | seed_affine | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (case, _, dense) in PEER_CASES.iter().filter(|c| !c.2.is_empty()) {
        let ours = criterion_median(&root, "peers_dense", case)?;
        let cells: Vec<String> = dense
            .iter()
            .map(|b| match peer_seconds(&py, &peers, b, case) {
                Some((s, _)) => format!("{s:.3} s | {:.0}x", s / ours),
                None => "failed | -".into(),
            })
            .collect();
        println!("| {case} | {:.4} s | {} |", ours, cells.join(" | "));
    }
    Ok(())
}
