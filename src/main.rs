//! The `convmat` command line: see `convmat --help`. Everything is in the library's [`convmat::cli`], which
//! the Python package's `convmat` command enters too.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(convmat::cli::main(std::env::args_os()))
}
