//! The `convmat` command line: its subcommands and [`main`], the entry of the binary and of the Python
//! package's `convmat` command.

use anyhow::Result;
use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

mod apply;
mod args;
mod build;
mod calibrate;
mod check;
mod demo;
mod diff;
mod export;
mod fixed;
mod layer;
mod lower;
mod onnx;
mod qrun;
mod range;
mod run;
mod shape;
mod spy;
mod svd;
mod times;
mod watch;

/// Turn a convolution layer into the exact matrix it applies (PyTorch semantics), and characterize it.
#[derive(Debug, Parser)]
#[command(name = "convmat", version, about, long_about = None, propagate_version = true, max_term_width = 150)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Apply(apply::ApplyArgs),
    Build(build::BuildArgs),
    Calibrate(calibrate::CalibrateArgs),
    Check(check::CheckArgs),
    Demo(demo::DemoArgs),
    Diff(diff::DiffArgs),
    Export(export::ExportArgs),
    Lower(lower::LowerArgs),
    Onnx(onnx::OnnxArgs),
    Range(range::RangeArgs),
    Run(run::RunArgs),
    Shape(shape::ShapeArgs),
    Spy(spy::SpyArgs),
    Svd(svd::SvdArgs),
}

/// How a CLI user supplies what a library error says is missing, when it is a flag: appended to the
/// error line (the library's message names the missing input shape in words every front end shares).
pub fn hint(e: &anyhow::Error) -> Option<String> {
    match e.chain().find_map(|c| c.downcast_ref::<convmat_onnx::OnnxError>())? {
        convmat_onnx::OnnxError::DynamicShape { dims, example, .. } => {
            let ex: Vec<String> = example.iter().map(usize::to_string).collect();
            Some(format!("pass --input-shape {} (for example --input-shape {})", dims.join(","), ex.join(",")))
        }
        _ => None,
    }
}

/// Runs one subcommand.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Apply(a) => apply::run(a),
        Command::Build(a) => build::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Check(a) => check::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Export(a) => export::run(a),
        Command::Lower(a) => lower::run(a),
        Command::Onnx(a) => onnx::run(a),
        Command::Range(a) => range::run(a),
        Command::Run(a) => run::run(a),
        Command::Shape(a) => shape::run(a),
        Command::Spy(a) => spy::run(a),
        Command::Svd(a) => svd::run(a),
    }
}

/// The status of a command whose reader stopped reading (`convmat ... | head -1`): success, as ripgrep
/// does. The reader chose to stop; nothing failed, and `set -o pipefail` scripts keep working.
pub const CLOSED_STDOUT: u8 = 0;

/// The whole command line, `argv[0]` included: parses, runs, prints, and returns the exit status (0, 2 for
/// bad input, 130 after Ctrl-C). The `convmat` binary and the Python package's `convmat` command both
/// enter here, so the two cannot drift.
pub fn main<I, T>(argv: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    quiet_on_closed_stdout();
    let args = match Cli::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            // clap's message is a paragraph, then usage; keep the paragraph, on one line.
            let text = e.render().to_string();
            let message = text.split("\n\n").next().unwrap_or_default();
            let message = message.trim_start_matches("error: ").split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("error: {message} (see 'convmat --help')");
            return 2;
        }
    };
    match run(args) {
        Ok(()) => 0,
        Err(e) if e.chain().any(is_broken_pipe) => CLOSED_STDOUT,
        Err(e) if e.chain().any(|c| matches!(c.downcast_ref(), Some(convmat_spectrum::SpectrumError::Cancelled))) => {
            eprintln!("interrupted (Ctrl-C): stopped between steps, nothing written");
            130
        }
        Err(e) => {
            // One line: what is wrong, which value, what would be valid.
            let mut msg = format!("{e:#}").replace('\n', " ");
            if let Some(hint) = hint(&e) {
                msg = format!("{msg}; {hint}");
            }
            eprintln!("error: {msg}");
            2
        }
    }
}

/// A write error that means the reader of stdout has gone (`| head`): from `write!` on a locked stdout,
/// or wrapped by a library that names the path it wrote.
fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let io = e.downcast_ref::<std::io::Error>().or_else(|| match e.downcast_ref::<convmat_io::IoError>() {
        Some(convmat_io::IoError::Os { error, .. }) => Some(error),
        _ => None,
    });
    io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Every `println!` of every subcommand, handled once: Rust ignores SIGPIPE, so a closed stdout makes
/// `println!` panic ("failed printing to stdout: Broken pipe"); that one panic ends the process quietly
/// with [`CLOSED_STDOUT`]. Any other panic keeps the default report.
fn quiet_on_closed_stdout() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install_quiet_hook);
}

fn install_quiet_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload.downcast_ref::<String>().map(String::as_str).or(payload.downcast_ref::<&str>().copied());
        // std's message: "failed printing to stdout: Broken pipe (os error 32)" (strerror's text: Rust
        // never calls setlocale, so it is the C locale's)
        if text.is_some_and(|t| t.starts_with("failed printing to stdout") && t.contains("Broken pipe")) {
            std::process::exit(CLOSED_STDOUT.into());
        }
        default(info);
    }));
}
