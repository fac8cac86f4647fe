//! `convmat._native.cli_main`: the `convmat` command that `pip install` puts on PATH runs the Rust CLI
//! itself (`convmat::cli::main`), so the command and the binary cannot drift.

use pyo3::prelude::*;

/// Runs the command line on `argv` (`sys.argv`, the program name first) with the GIL released and
/// returns its exit status: 0, 2 for bad input, 130 after Ctrl-C.
#[pyfunction]
pub fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> u8 {
    py.detach(|| convmat::cli::main(argv))
}
